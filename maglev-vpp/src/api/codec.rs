//! The codec: one trait for every wire type, a bounded reader, and decode
//! errors that name the message and the field.
//!
//! Everything on VPP's binary API is a packed big-endian C struct (VPP-WIRE
//! A.3): fields back to back, no padding. [`Codec`] encodes a value into a
//! [`BytesMut`] and decodes it from a [`Reader`], a cursor over a slice that
//! never reads past its end and knows which message it is reading, so every
//! [`DecodeError`] says `message.field: what was wrong`.

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
    /// The field (dotted for nested types) being decoded.
    pub field: &'static str,
    /// What was wrong.
    pub kind: DecodeErrorKind,
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
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Sets the field name used by errors until the next call.
    pub fn field(&mut self, field: &'static str) -> &mut Self {
        self.field = field;
        self
    }

    /// An error about the current field.
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            message: self.message,
            field: self.field,
            kind,
        }
    }

    /// An invalid-value error about the current field.
    pub fn invalid(&self, value: u64, reason: &'static str) -> DecodeError {
        self.error(DecodeErrorKind::InvalidValue { value, reason })
    }

    /// Takes the next `n` bytes.
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
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a `bool` (any non-zero byte is true).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `i32`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Reads a fixed `string[N]`: up to the first NUL, or N-1 bytes when
    /// there is none (VPP does not always write the last byte); bytes after
    /// the NUL are ignored and invalid UTF-8 is replaced.
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

/// Writes a fixed `string[N]`: at most N-1 bytes (cut at a character
/// boundary), NUL-padded to N.
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
