//! ip.api: `ip_route_lookup`, the way to a VIP route's stats index.

use super::message;
use crate::api::codec::wire_struct;
use crate::api::types::{IpRoute, Prefix};

wire_struct! {
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
}
message!(IpRouteLookup, request IpRouteLookupReply);

wire_struct! {
    /// `ip_route_lookup_reply`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IpRouteLookupReply {
        /// `retval`: -6 when no route matched, -3 for an unknown table.
        pub retval: i32,
        /// `route` (all zero on error).
        pub route: IpRoute,
    }
}
message!(IpRouteLookupReply, reply retval);
