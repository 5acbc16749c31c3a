//! Every message maglev speaks, with its name, CRC and header shape.
//!
//! A message struct holds the fields after the common header
//! (`_vl_msg_id`, then `client_index` for requests, then `context`): the
//! header is written and read by [`encode_message`] and [`decode_message`],
//! since its values belong to the connection, not to the call.

use bytes::{BufMut, BytesMut};

use super::codec::{Codec, DecodeError, DecodeErrorKind, Reader};

mod ip;
mod lb;
mod memclnt;
mod vpe;

pub use ip::*;
pub use lb::*;
pub use memclnt::*;
pub use vpe::*;

/// Which common header a message starts with (VPP-WIRE A.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `_vl_msg_id`, `client_index`, `context` (requests, and the odd
    /// `sockclnt_create_reply`).
    WithClientIndex,
    /// `_vl_msg_id`, `context` (replies, details, and `sockclnt_create`).
    ContextOnly,
}

impl Shape {
    /// Bytes of the common header.
    pub const fn header_len(self) -> usize {
        match self {
            Shape::WithClientIndex => 10,
            Shape::ContextOnly => 6,
        }
    }
}

/// A message of VPP's binary API.
pub trait Message: Codec + Send + 'static {
    /// The message, in the table of known messages.
    const ID: MsgId;
    /// Its name, e.g. `lb_as_set_weight`.
    const NAME: &'static str = Self::ID.name();
    /// Its CRC, as VPP's API compiler computes it.
    const CRC: u32 = Self::ID.crc();
    /// Its common header.
    const SHAPE: Shape = Self::ID.shape();
}

/// A request answered by one reply.
pub trait Request: Message {
    /// The reply.
    type Reply: Reply;
}

/// A reply carrying a `retval` (0 is success).
pub trait Reply: Message {
    /// The reply's `retval` (or `response`).
    fn retval(&self) -> i32;
}

/// A dump request answered by a stream of details, ended by the reply to
/// a `control_ping` sent right after it with the same context.
pub trait Dump: Message {
    /// The details message.
    type Details: Message;
}

macro_rules! known_messages {
    ($($variant:ident = $name:literal, $crc:literal, $shape:ident;)*) => {
        /// Every message maglev knows, to index the message-id table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs, reason = "each variant is the message of the same name")]
        pub enum MsgId {
            $($variant,)*
        }

        impl MsgId {
            /// Every known message, in declaration order.
            pub const ALL: &'static [MsgId] = &[$(MsgId::$variant,)*];

            /// The message's name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(MsgId::$variant => $name,)*
                }
            }

            /// The message's CRC.
            pub const fn crc(self) -> u32 {
                match self {
                    $(MsgId::$variant => $crc,)*
                }
            }

            /// The message's common header.
            pub const fn shape(self) -> Shape {
                match self {
                    $(MsgId::$variant => Shape::$shape,)*
                }
            }
        }
    };
}

known_messages! {
    SockclntCreate = "sockclnt_create", 0x455f_b9c4, ContextOnly;
    SockclntCreateReply = "sockclnt_create_reply", 0x3516_6268, WithClientIndex;
    SockclntDelete = "sockclnt_delete", 0x8ac7_6db6, WithClientIndex;
    SockclntDeleteReply = "sockclnt_delete_reply", 0x8f38_b1ee, ContextOnly;
    MemclntKeepalive = "memclnt_keepalive", 0x5107_7d14, WithClientIndex;
    MemclntKeepaliveReply = "memclnt_keepalive_reply", 0xe8d4_e804, ContextOnly;
    ControlPing = "control_ping", 0x5107_7d14, WithClientIndex;
    ControlPingReply = "control_ping_reply", 0xf6b0_b8ca, ContextOnly;
    ShowVersion = "show_version", 0x5107_7d14, WithClientIndex;
    ShowVersionReply = "show_version_reply", 0xc919_bde1, ContextOnly;
    CliInband = "cli_inband", 0xf837_7302, WithClientIndex;
    CliInbandReply = "cli_inband_reply", 0x0587_9051, ContextOnly;
    LbConf = "lb_conf", 0x56cd_3261, WithClientIndex;
    LbConfReply = "lb_conf_reply", 0xe8d4_e804, ContextOnly;
    LbConfGet = "lb_conf_get", 0x5107_7d14, WithClientIndex;
    LbConfGetReply = "lb_conf_get_reply", 0x9234_27ac, ContextOnly;
    LbAddDelVipV2 = "lb_add_del_vip_v2", 0x7c52_0e0f, WithClientIndex;
    LbAddDelVipV2Reply = "lb_add_del_vip_v2_reply", 0xe8d4_e804, ContextOnly;
    LbAddDelAsV2 = "lb_add_del_as_v2", 0x2f1d_3b0e, WithClientIndex;
    LbAddDelAsV2Reply = "lb_add_del_as_v2_reply", 0xe8d4_e804, ContextOnly;
    LbAsSetWeight = "lb_as_set_weight", 0x2d89_bdbd, WithClientIndex;
    LbAsSetWeightReply = "lb_as_set_weight_reply", 0xe8d4_e804, ContextOnly;
    LbFlushVip = "lb_flush_vip", 0x1063_f819, WithClientIndex;
    LbFlushVipReply = "lb_flush_vip_reply", 0xe8d4_e804, ContextOnly;
    LbVipDump = "lb_vip_dump", 0x5611_0cb7, WithClientIndex;
    LbVipDetails = "lb_vip_details", 0x1329_ec9b, ContextOnly;
    LbAsV2Dump = "lb_as_v2_dump", 0x1063_f819, WithClientIndex;
    LbAsV2Details = "lb_as_v2_details", 0x9006_4aae, ContextOnly;
    IpRouteLookup = "ip_route_lookup", 0x710d_6471, WithClientIndex;
    IpRouteLookupReply = "ip_route_lookup_reply", 0x5d8f_ebcb, ContextOnly;
}

impl MsgId {
    /// The runtime table key: `<name>_<crc as 8 lowercase hex digits>`.
    pub fn key(self) -> String {
        format!("{}_{:08x}", self.name(), self.crc())
    }
}

/// The per-connection values of a message's common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `_vl_msg_id`, the runtime id of the message on this connection.
    pub msg_id: u16,
    /// `client_index` (0 for messages without one).
    pub client_index: u32,
    /// `context`, the request's cookie echoed in its replies.
    pub context: u32,
}

/// Appends `msg`'s payload (common header, then its fields).
pub fn encode_message<M: Message>(msg: &M, env: Envelope, buf: &mut BytesMut) {
    buf.put_u16(env.msg_id);
    if M::SHAPE == Shape::WithClientIndex {
        buf.put_u32(env.client_index);
    }
    buf.put_u32(env.context);
    msg.encode(buf);
}

/// Decodes a whole payload as `M`, rejecting trailing bytes.
pub fn decode_message<M: Message>(payload: &[u8]) -> Result<(Envelope, M), DecodeError> {
    let mut r = Reader::new(payload, M::NAME);
    r.field("_vl_msg_id");
    let msg_id = r.u16()?;
    let client_index = if M::SHAPE == Shape::WithClientIndex {
        r.field("client_index");
        r.u32()?
    } else {
        0
    };
    r.field("context");
    let context = r.u32()?;
    let m = M::decode(&mut r)?;
    r.finish()?;
    Ok((
        Envelope {
            msg_id,
            client_index,
            context,
        },
        m,
    ))
}

/// Decodes a payload as `M`, checking that it carries `expected_id`.
pub fn decode_expected<M: Message>(payload: &[u8], expected_id: u16) -> Result<M, DecodeError> {
    let (env, m) = decode_message::<M>(payload)?;
    if env.msg_id != expected_id {
        return Err(DecodeError {
            message: M::NAME,
            field: "_vl_msg_id".into(),
            kind: DecodeErrorKind::WrongMessageId {
                expected: expected_id,
                found: env.msg_id,
            },
        });
    }
    Ok(m)
}

/// The `_vl_msg_id` of a payload, if it has one.
pub fn peek_msg_id(payload: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(payload.get(..2)?.try_into().ok()?))
}

/// The `context` of a payload in [`Shape::ContextOnly`] (replies, details).
pub fn peek_reply_context(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.get(2..6)?.try_into().ok()?))
}

/// The `client_index` and `context` of a payload in
/// [`Shape::WithClientIndex`] (requests).
pub fn peek_request_header(payload: &[u8]) -> Option<(u32, u32)> {
    Some((
        u32::from_be_bytes(payload.get(2..6)?.try_into().ok()?),
        u32::from_be_bytes(payload.get(6..10)?.try_into().ok()?),
    ))
}

/// Implements [`Message`] for a message struct, and [`Request`] (`request
/// Reply`), [`Reply`] (`reply retval_field`) or [`Dump`] (`dump Details`).
macro_rules! message {
    ($ty:ident) => {
        impl $crate::api::messages::Message for $ty {
            const ID: $crate::api::messages::MsgId = $crate::api::messages::MsgId::$ty;
        }
    };
    ($ty:ident, request $reply:ident) => {
        $crate::api::messages::message!($ty);

        impl $crate::api::messages::Request for $ty {
            type Reply = $reply;
        }
    };
    ($ty:ident, reply $retval:ident) => {
        $crate::api::messages::message!($ty);

        impl $crate::api::messages::Reply for $ty {
            fn retval(&self) -> i32 {
                self.$retval
            }
        }
    };
    ($ty:ident, dump $details:ident) => {
        $crate::api::messages::message!($ty);

        impl $crate::api::messages::Dump for $ty {
            type Details = $details;
        }
    };
}

/// Declares a message without fields after its header (and, like
/// `message!`, what it is: `request Reply`).
macro_rules! empty_message {
    ($(#[$doc:meta])* $ty:ident $(, $kind:ident $arg:ident)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $ty;

        impl $crate::api::codec::Codec for $ty {
            #[inline]
            fn encode(&self, _buf: &mut bytes::BytesMut) {}

            #[inline]
            fn decode(
                _r: &mut $crate::api::codec::Reader<'_>,
            ) -> Result<Self, $crate::api::codec::DecodeError> {
                Ok($ty)
            }
        }

        $crate::api::messages::message!($ty $(, $kind $arg)?);
    };
}

/// Declares an autoreply reply: `retval` only.
macro_rules! retval_reply {
    ($(#[$doc:meta])* $ty:ident) => {
        $crate::api::codec::wire_struct! {
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct $ty {
                /// `retval`: 0 on success, a negative `VNET_API_ERROR_*`.
                pub retval: i32,
            }
        }

        $crate::api::messages::message!($ty, reply retval);
    };
}

pub(crate) use {empty_message, message, retval_reply};
