//! ip.api: `ip_route_lookup`, the way to a VIP route's stats index.

use bytes::{BufMut, BytesMut};

use super::{Message, MsgId, Reply, Request};
use crate::api::codec::{Codec, DecodeError, Reader};
use crate::api::types::{IpRoute, Prefix};

/// `ip_route_lookup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRouteLookup {
    /// `table_id`: the VRF (0 = default).
    pub table_id: u32,
    /// `exact`: 1 for an exact-match lookup, 0 for longest-prefix match.
    pub exact: u8,
    /// `prefix`.
    pub prefix: Prefix,
}

impl Codec for IpRouteLookup {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.table_id);
        buf.put_u8(self.exact);
        self.prefix.encode(buf);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("table_id");
        let table_id = r.u32()?;
        r.field("exact");
        let exact = r.u8()?;
        r.field("prefix");
        let prefix = Prefix::decode(r)?;
        Ok(IpRouteLookup {
            table_id,
            exact,
            prefix,
        })
    }
}

impl Message for IpRouteLookup {
    const ID: MsgId = MsgId::IpRouteLookup;
}

impl Request for IpRouteLookup {
    type Reply = IpRouteLookupReply;
}

/// `ip_route_lookup_reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRouteLookupReply {
    /// `retval`: -6 when no route matched, -3 for an unknown table.
    pub retval: i32,
    /// `route` (all zero on error).
    pub route: IpRoute,
}

impl Codec for IpRouteLookupReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.retval);
        self.route.encode(buf);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("retval");
        let retval = r.i32()?;
        let route = IpRoute::decode(r)?;
        Ok(IpRouteLookupReply { retval, route })
    }
}

impl Message for IpRouteLookupReply {
    const ID: MsgId = MsgId::IpRouteLookupReply;
}

impl Reply for IpRouteLookupReply {
    fn retval(&self) -> i32 {
        self.retval
    }
}
