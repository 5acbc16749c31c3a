//! memclnt.api: the socket handshake, disconnect, keepalive and
//! `control_ping`.

use bytes::{BufMut, BytesMut};

use super::{empty_message, message, retval_reply};
use crate::api::codec::{
    Codec, DecodeError, DecodeErrorKind, FixedString, Reader, decode_field, wire_struct,
};
use crate::api::types::MessageTableEntry;

/// The fixed id of `sockclnt_create` in every VPP build.
pub const SOCKCLNT_CREATE_ID: u16 = 15;
/// The fixed id of `sockclnt_create_reply` in every VPP build.
pub const SOCKCLNT_CREATE_REPLY_ID: u16 = 16;

/// Bytes of one `message_table_entry`.
const MESSAGE_TABLE_ENTRY_LEN: usize = 66;

wire_struct! {
    /// `sockclnt_create`: register a socket client under a name.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SockclntCreate {
        /// `name` (`string[64]`), shown by `show api clients`.
        pub name: String as FixedString<64>,
    }
}
message!(SockclntCreate, request SockclntCreateReply);

/// `sockclnt_create_reply`: the client handle and the message table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockclntCreateReply {
    /// `response`: 0 on success.
    pub response: i32,
    /// `index`: the client handle (`0x8000_0000 | pool index`), to send as
    /// `client_index` in every later request.
    pub index: u32,
    /// `message_table[count]`: every message of this VPP, by `name_crc`.
    pub message_table: Vec<MessageTableEntry>,
}

impl Codec for SockclntCreateReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.response);
        buf.put_u32(self.index);
        buf.put_u16(self.message_table.len() as u16);
        for e in &self.message_table {
            e.encode(buf);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let response = decode_field(r, "response")?;
        let index = decode_field(r, "index")?;
        let count: u16 = decode_field(r, "count")?;
        // Check the whole table's length before allocating for it.
        let needed = usize::from(count) * MESSAGE_TABLE_ENTRY_LEN;
        let remaining = r.remaining();
        if remaining < needed {
            let kind = DecodeErrorKind::Truncated { needed, remaining };
            return Err(r.field("message_table").error(kind));
        }
        let message_table = (0..count)
            .map(|_| decode_field(r, "message_table"))
            .collect::<Result<_, _>>()?;
        Ok(SockclntCreateReply {
            response,
            index,
            message_table,
        })
    }
}

message!(SockclntCreateReply, reply response);

wire_struct! {
    /// `sockclnt_delete`: unregister (VPP then closes the socket).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SockclntDelete {
        /// `index`: the client handle.
        pub index: u32,
    }
}
message!(SockclntDelete, request SockclntDeleteReply);

wire_struct! {
    /// `sockclnt_delete_reply`: `response` is **1** on success (VPP-WIRE A.10).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SockclntDeleteReply {
        /// `response`: 1 on success, -1 for an unknown handle.
        pub response: i32,
    }
}
message!(SockclntDeleteReply);

impl super::Reply for SockclntDeleteReply {
    fn retval(&self) -> i32 {
        // Success is 1 here; report it as 0 like every other reply.
        if self.response == 1 { 0 } else { self.response }
    }
}

empty_message!(
    /// `memclnt_keepalive`: never sent by maglev over the socket (VPP
    /// answers it on shared memory); the simulator answers it.
    MemclntKeepalive, request MemclntKeepaliveReply
);

retval_reply!(
    /// `memclnt_keepalive_reply`.
    MemclntKeepaliveReply
);

empty_message!(
    /// `control_ping`: liveness, and the end marker of dumps.
    ControlPing, request ControlPingReply
);

wire_struct! {
    /// `control_ping_reply`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ControlPingReply {
        /// `retval`.
        pub retval: i32,
        /// `client_index`: echo of the request's.
        pub client_index: u32,
        /// `vpe_pid`: VPP's process id; a change means VPP restarted.
        pub vpe_pid: u32,
    }
}
message!(ControlPingReply, reply retval);
