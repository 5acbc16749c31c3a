//! memclnt.api: the socket handshake, disconnect, keepalive and
//! `control_ping`.

use bytes::{BufMut, BytesMut};

use super::{Message, MsgId, Reply, Request, empty_message, retval_reply};
use crate::api::codec::{Codec, DecodeError, Reader, put_fixed_string};
use crate::api::types::MessageTableEntry;

/// The fixed id of `sockclnt_create` in every VPP build.
pub const SOCKCLNT_CREATE_ID: u16 = 15;
/// The fixed id of `sockclnt_create_reply` in every VPP build.
pub const SOCKCLNT_CREATE_REPLY_ID: u16 = 16;

/// `sockclnt_create`: register a socket client under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockclntCreate {
    /// `name` (`string[64]`), shown by `show api clients`.
    pub name: String,
}

impl Codec for SockclntCreate {
    fn encode(&self, buf: &mut BytesMut) {
        put_fixed_string(buf, &self.name, 64);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("name");
        Ok(SockclntCreate {
            name: r.fixed_string(64)?,
        })
    }
}

impl Message for SockclntCreate {
    const ID: MsgId = MsgId::SockclntCreate;
}

impl Request for SockclntCreate {
    type Reply = SockclntCreateReply;
}

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
        r.field("response");
        let response = r.i32()?;
        r.field("index");
        let index = r.u32()?;
        r.field("count");
        let count = r.u16()?;
        r.field("message_table");
        if r.remaining() < usize::from(count) * 66 {
            return Err(r.error(crate::api::codec::DecodeErrorKind::Truncated {
                needed: usize::from(count) * 66,
                remaining: r.remaining(),
            }));
        }
        let message_table = (0..count)
            .map(|_| MessageTableEntry::decode(r))
            .collect::<Result<_, _>>()?;
        Ok(SockclntCreateReply {
            response,
            index,
            message_table,
        })
    }
}

impl Message for SockclntCreateReply {
    const ID: MsgId = MsgId::SockclntCreateReply;
}

impl Reply for SockclntCreateReply {
    fn retval(&self) -> i32 {
        self.response
    }
}

/// `sockclnt_delete`: unregister (VPP then closes the socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockclntDelete {
    /// `index`: the client handle.
    pub index: u32,
}

impl Codec for SockclntDelete {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.index);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("index");
        Ok(SockclntDelete { index: r.u32()? })
    }
}

impl Message for SockclntDelete {
    const ID: MsgId = MsgId::SockclntDelete;
}

impl Request for SockclntDelete {
    type Reply = SockclntDeleteReply;
}

/// `sockclnt_delete_reply`: `response` is **1** on success (VPP-WIRE A.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockclntDeleteReply {
    /// `response`: 1 on success, -1 for an unknown handle.
    pub response: i32,
}

impl Codec for SockclntDeleteReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.response);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("response");
        Ok(SockclntDeleteReply { response: r.i32()? })
    }
}

impl Message for SockclntDeleteReply {
    const ID: MsgId = MsgId::SockclntDeleteReply;
}

impl Reply for SockclntDeleteReply {
    fn retval(&self) -> i32 {
        // Success is 1 here; report it as 0 like every other reply.
        if self.response == 1 { 0 } else { self.response }
    }
}

empty_message!(
    /// `memclnt_keepalive`: never sent by maglev over the socket (VPP
    /// answers it on shared memory); the simulator answers it.
    MemclntKeepalive
);

impl Request for MemclntKeepalive {
    type Reply = MemclntKeepaliveReply;
}

retval_reply!(
    /// `memclnt_keepalive_reply`.
    MemclntKeepaliveReply
);

empty_message!(
    /// `control_ping`: liveness, and the end marker of dumps.
    ControlPing
);

impl Request for ControlPing {
    type Reply = ControlPingReply;
}

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

impl Codec for ControlPingReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.retval);
        buf.put_u32(self.client_index);
        buf.put_u32(self.vpe_pid);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("retval");
        let retval = r.i32()?;
        r.field("client_index");
        let client_index = r.u32()?;
        r.field("vpe_pid");
        let vpe_pid = r.u32()?;
        Ok(ControlPingReply {
            retval,
            client_index,
            vpe_pid,
        })
    }
}

impl Message for ControlPingReply {
    const ID: MsgId = MsgId::ControlPingReply;
}

impl Reply for ControlPingReply {
    fn retval(&self) -> i32 {
        self.retval
    }
}
