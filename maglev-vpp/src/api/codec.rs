//! The codec: one trait for every wire type, a bounded reader, and decode
//! errors that name the message and the field.
//!
//! Everything on VPP's binary API is a packed big-endian C struct (VPP-WIRE
//! A.3): fields back to back, no padding. [`Codec`] encodes a value into a
//! [`BytesMut`] and decodes it from a [`Reader`], a cursor over a slice that
//! never reads past its end and knows which message it is reading, so every
//! [`DecodeError`] says `message.field: what was wrong`, the field dotted
//! down to the leaf (`lb_as_set_weight.pfx.address.af`).
//!
//! Plain layouts are declared once with `wire_struct!`: the struct, its
//! docs, its encoder and its decoder come from one list of fields in wire
//! order. Only counted arrays and unions are written by hand.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};

/// A wire type: encoded back to back with its neighbours, big-endian.
pub trait Codec: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, buf: &mut BytesMut);
    /// Reads one value, advancing the reader.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside the field.
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes were left after the last field.
    Trailing {
        /// How many.
        extra: usize,
    },
    /// The field holds a value the type cannot have.
    InvalidValue {
        /// The raw value.
        value: u64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The payload carries a different message id than expected.
    WrongMessageId {
        /// The id expected for this message on this connection.
        expected: u16,
        /// The id found.
        found: u16,
    },
}

/// A decode failure: which message, which field, what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decoding {message}.{field}: {kind}")]
pub struct DecodeError {
    /// The message being decoded.
    pub message: &'static str,
    /// The field being decoded, dotted through nested types down to the
    /// leaf, with VPP's names (`pfx.address.af`).
    pub field: Cow<'static, str>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// The same error, seen from the type that holds the failed value as
    /// its field `outer`: the path gains `outer.` in front.
    #[cold]
    #[must_use]
    pub fn within(mut self, outer: &'static str) -> DecodeError {
        self.field = if self.field.is_empty() {
            Cow::Borrowed(outer)
        } else {
            Cow::Owned(format!("{outer}.{}", self.field))
        };
        self
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Truncated { needed, remaining } => {
                write!(f, "truncated: needs {needed} bytes, {remaining} left")
            }
            DecodeErrorKind::Trailing { extra } => write!(f, "{extra} trailing bytes"),
            DecodeErrorKind::InvalidValue { value, reason } => {
                write!(f, "invalid value {value}: {reason}")
            }
            DecodeErrorKind::WrongMessageId { expected, found } => {
                write!(f, "message id {found}, expected {expected}")
            }
        }
    }
}

/// A bounded cursor over one message's bytes.
///
/// It carries the name of the message being decoded so that its errors can
/// name it; nested types set the field name they are read as.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
    field: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, decoding `message`.
    pub fn new(buf: &'a [u8], message: &'static str) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            message,
            field: "",
        }
    }

    /// The message being decoded.
    #[inline]
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Sets the field name used by errors until the next call.
    #[inline]
    pub fn field(&mut self, field: &'static str) -> &mut Self {
        self.field = field;
        self
    }

    /// An error about the current field.
    #[cold]
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            message: self.message,
            field: Cow::Borrowed(self.field),
            kind,
        }
    }

    /// An invalid-value error about the current field.
    pub fn invalid(&self, value: u64, reason: &'static str) -> DecodeError {
        self.error(DecodeErrorKind::InvalidValue { value, reason })
    }

    /// Takes the next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error(DecodeErrorKind::Truncated {
                needed: n,
                remaining: self.remaining(),
            }));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes the next `N` bytes as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Reads a `u8`.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a `bool` (any non-zero byte is true).
    #[inline]
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }

    /// Reads a big-endian `u16`.
    #[inline]
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `i32`.
    #[inline]
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Reads a fixed `string[N]`: up to the first NUL, or N-1 bytes when
    /// there is none (VPP does not always write the last byte); bytes after
    /// the NUL are ignored and invalid UTF-8 is replaced.
    #[inline]
    pub fn fixed_string(&mut self, n: usize) -> Result<String, DecodeError> {
        let raw = self.take(n)?;
        let end = raw
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(n.saturating_sub(1));
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    /// Reads a variable `string[]`: a u32 byte count, then the bytes.
    pub fn var_string(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let raw = self.take(n)?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    /// Fails unless every byte was read.
    #[inline]
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            self.field = "(end)";
            return Err(self.error(DecodeErrorKind::Trailing {
                extra: self.remaining(),
            }));
        }
        Ok(())
    }
}

/// Reads `T` as the field `name` of the value being decoded: an error
/// inside it is reported as `name.<its field>`.
#[inline]
pub fn decode_field<T: Codec>(r: &mut Reader<'_>, name: &'static str) -> Result<T, DecodeError> {
    r.field("");
    T::decode(r).map_err(|e| e.within(name))
}

macro_rules! codec_int {
    ($($ty:ty => $put:ident, $get:ident;)*) => {$(
        /// A big-endian integer.
        impl Codec for $ty {
            #[inline]
            fn encode(&self, buf: &mut BytesMut) {
                buf.$put(*self);
            }

            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$get()
            }
        }
    )*};
}

codec_int! {
    u8 => put_u8, u8;
    u16 => put_u16, u16;
    u32 => put_u32, u32;
    i32 => put_i32, i32;
}

/// `bool`: one byte, 1 or 0 (any non-zero byte reads as true).
impl Codec for bool {
    #[inline]
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8((*self).into());
    }

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
}

/// A fixed-length array (`vl_api_fib_mpls_label_t label_stack[16]`): the
/// elements back to back.
impl<T: Codec + Copy + Default, const N: usize> Codec for [T; N] {
    #[inline]
    fn encode(&self, buf: &mut BytesMut) {
        for x in self {
            x.encode(buf);
        }
    }

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut a = [T::default(); N];
        for x in &mut a {
            *x = T::decode(r)?;
        }
        Ok(a)
    }
}

/// How [`wire_struct!`] lays out a field of type `T`; a field is
/// [`Nested`] unless it says `as <layout>`.
pub(crate) trait Layout<T> {
    /// Appends `v`.
    fn encode(v: &T, buf: &mut BytesMut);
    /// Reads the field called `name`.
    fn decode(r: &mut Reader<'_>, name: &'static str) -> Result<T, DecodeError>;
}

/// The field's own [`Codec`], its errors named `name.<inner field>`.
pub(crate) struct Nested;

impl<T: Codec> Layout<T> for Nested {
    #[inline]
    fn encode(v: &T, buf: &mut BytesMut) {
        v.encode(buf);
    }

    #[inline]
    fn decode(r: &mut Reader<'_>, name: &'static str) -> Result<T, DecodeError> {
        decode_field(r, name)
    }
}

/// A Rust-only grouping: the type's fields sit directly in the outer
/// layout on the wire and keep their own names in errors
/// (`lb_conf_get_reply.flow_timeout`).
pub(crate) struct Flat;

impl<T: Codec> Layout<T> for Flat {
    #[inline]
    fn encode(v: &T, buf: &mut BytesMut) {
        v.encode(buf);
    }

    #[inline]
    fn decode(r: &mut Reader<'_>, _name: &'static str) -> Result<T, DecodeError> {
        T::decode(r)
    }
}

/// Raw bytes (`u8 x[N]`, or a union kept undecoded).
pub(crate) struct Raw;

impl<const N: usize> Layout<[u8; N]> for Raw {
    #[inline]
    fn encode(v: &[u8; N], buf: &mut BytesMut) {
        buf.put_slice(v);
    }

    #[inline]
    fn decode(r: &mut Reader<'_>, name: &'static str) -> Result<[u8; N], DecodeError> {
        r.field(name).array()
    }
}

/// A fixed `string[N]` ([`Reader::fixed_string`], [`put_fixed_string`]).
pub(crate) struct FixedString<const N: usize>;

impl<const N: usize> Layout<String> for FixedString<N> {
    #[inline]
    fn encode(v: &String, buf: &mut BytesMut) {
        put_fixed_string(buf, v, N);
    }

    #[inline]
    fn decode(r: &mut Reader<'_>, name: &'static str) -> Result<String, DecodeError> {
        r.field(name).fixed_string(N)
    }
}

/// A variable `string[]` ([`Reader::var_string`], [`put_var_string`]).
pub(crate) struct VarString;

impl Layout<String> for VarString {
    #[inline]
    fn encode(v: &String, buf: &mut BytesMut) {
        put_var_string(buf, v);
    }

    #[inline]
    fn decode(r: &mut Reader<'_>, name: &'static str) -> Result<String, DecodeError> {
        r.field(name).var_string()
    }
}

/// Declares a packed wire struct: the struct with its docs and derives,
/// and a [`Codec`] impl that encodes and decodes the fields in the order
/// written, each error named by the field's path.
///
/// A field is `name: Type`, optionally followed by `= "wire_name"` when
/// VPP's name is not a Rust one (`type`), and `as Layout` when it is not
/// [`Nested`] ([`Flat`], [`Raw`], [`FixedString`], [`VarString`]):
///
/// ```text
/// wire_struct! {
///     /// `message_table_entry`.
///     #[derive(Debug, Clone, PartialEq, Eq)]
///     pub struct MessageTableEntry {
///         /// The runtime message id.
///         pub index: u16,
///         /// `<name>_<crc8>`.
///         pub name: String as FixedString<64>,
///     }
/// }
/// ```
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty $(= $wire:literal)? $(as $layout:ty)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty, )*
        }

        impl $crate::api::codec::Codec for $name {
            #[inline]
            fn encode(&self, buf: &mut ::bytes::BytesMut) {
                $(
                    <$crate::api::codec::wire_struct!(@layout $($layout)?)
                        as $crate::api::codec::Layout<$ty>>::encode(&self.$field, buf);
                )*
            }

            #[inline]
            fn decode(
                r: &mut $crate::api::codec::Reader<'_>,
            ) -> ::std::result::Result<Self, $crate::api::codec::DecodeError> {
                ::std::result::Result::Ok($name {
                    $(
                        $field: <$crate::api::codec::wire_struct!(@layout $($layout)?)
                            as $crate::api::codec::Layout<$ty>>::decode(
                            r,
                            $crate::api::codec::wire_struct!(@wire $field $($wire)?),
                        )?,
                    )*
                })
            }
        }
    };
    (@layout) => { $crate::api::codec::Nested };
    (@layout $layout:ty) => { $layout };
    (@wire $field:ident) => { stringify!($field) };
    (@wire $field:ident $wire:literal) => { $wire };
}

pub(crate) use wire_struct;

/// Writes a fixed `string[N]`: at most N-1 bytes (cut at a character
/// boundary), NUL-padded to N.
#[inline]
pub fn put_fixed_string(buf: &mut BytesMut, s: &str, n: usize) {
    let mut end = s.len().min(n.saturating_sub(1));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    buf.put_slice(&s.as_bytes()[..end]);
    buf.put_bytes(0, n - end);
}

/// Writes a variable `string[]`: u32 byte count, then the bytes.
pub fn put_var_string(buf: &mut BytesMut, s: &str) {
    buf.put_u32(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_names_message_and_field() {
        let mut r = Reader::new(&[0, 1, 2], "lb_conf_get_reply");
        r.field("retval");
        let e = r.i32().unwrap_err();
        assert_eq!(
            e.to_string(),
            "decoding lb_conf_get_reply.retval: truncated: needs 4 bytes, 3 left"
        );
    }

    wire_struct! {
        /// An inner type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        struct Inner {
            /// A renamed field.
            kind: u32 = "type",
            /// A flag.
            on: bool,
        }
    }

    wire_struct! {
        /// An outer type.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        struct Outer {
            /// A byte.
            a: u8,
            /// Nested.
            inner: Inner,
            /// Flattened.
            flat: Inner as Flat,
            /// Raw bytes.
            raw: [u8; 2] as Raw,
            /// Fixed string.
            name: String as FixedString<4>,
            /// Array of nested.
            list: [Inner; 2],
            /// Variable string.
            text: String as VarString,
        }
    }

    fn outer() -> Outer {
        Outer {
            a: 1,
            inner: Inner { kind: 2, on: true },
            flat: Inner { kind: 3, on: false },
            raw: [4, 5],
            name: "ab".into(),
            list: [Inner { kind: 6, on: true }, Inner::default()],
            text: "hi".into(),
        }
    }

    #[test]
    fn wire_struct_lays_fields_out_in_order() {
        let mut buf = BytesMut::new();
        outer().encode(&mut buf);
        #[rustfmt::skip]
        let want: &[u8] = &[
            1,                      // a
            0, 0, 0, 2, 1,          // inner.type, inner.on
            0, 0, 0, 3, 0,          // flat: type, on
            4, 5,                   // raw
            b'a', b'b', 0, 0,       // name[4]
            0, 0, 0, 6, 1,          // list[0]
            0, 0, 0, 0, 0,          // list[1]
            0, 0, 0, 2, b'h', b'i', // text
        ];
        assert_eq!(&buf[..], want);
        let mut r = Reader::new(want, "outer");
        assert_eq!(Outer::decode(&mut r).unwrap(), outer());
        r.finish().unwrap();
    }

    #[test]
    fn wire_struct_errors_name_the_nested_field() {
        let mut buf = BytesMut::new();
        outer().encode(&mut buf);
        let field_at = |cut: usize| {
            let mut r = Reader::new(&buf[..cut], "outer");
            Outer::decode(&mut r).unwrap_err().field.into_owned()
        };
        let fields: Vec<String> = [0, 1, 5, 6, 10, 11, 13, 17, 22, 27, 31]
            .into_iter()
            .map(field_at)
            .collect();
        assert_eq!(
            fields,
            [
                "a",
                "inner.type",
                "inner.on",
                "type",
                "on",
                "raw",
                "name",
                "list.type",
                "list.type",
                "text",
                "text",
            ]
        );
    }

    #[test]
    fn fixed_strings_stop_at_nul_or_n_minus_one() {
        let mut r = Reader::new(b"ab\0garbage", "m");
        assert_eq!(r.fixed_string(10).unwrap(), "ab");
        let mut r = Reader::new(b"abcd", "m");
        assert_eq!(r.fixed_string(4).unwrap(), "abc");
        let mut buf = BytesMut::new();
        put_fixed_string(&mut buf, "héllo", 3);
        assert_eq!(&buf[..], b"h\0\0", "cut at a char boundary, NUL-terminated");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut r = Reader::new(&[1, 2], "m");
        r.u8().unwrap();
        assert_eq!(
            r.finish().unwrap_err().kind,
            DecodeErrorKind::Trailing { extra: 1 }
        );
    }
}
