//! lb.api (1.2.0): the load-balancer plugin's messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{empty_message, message, retval_reply};
use crate::api::codec::{Flat, wire_struct};
use crate::api::types::{LbEncapType, LbSrvType, LbVip, Prefix, PrefixMatcher};

wire_struct! {
    /// `lb_conf`: set the global parameters.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbConf {
        /// `ip4_src_address`: source of GRE4 packets to ASes.
        pub ip4_src_address: Ipv4Addr,
        /// `ip6_src_address`: source of GRE6 packets to ASes.
        pub ip6_src_address: Ipv6Addr,
        /// `sticky_buckets_per_core` (power of two; `u32::MAX` keeps it).
        pub sticky_buckets_per_core: u32,
        /// `flow_timeout` in seconds (`u32::MAX` keeps it).
        pub flow_timeout: u32,
    }
}
message!(LbConf, request LbConfReply);

retval_reply!(
    /// `lb_conf_reply`.
    LbConfReply
);

empty_message!(
    /// `lb_conf_get`.
    LbConfGet, request LbConfGetReply
);

wire_struct! {
    /// `lb_conf_get_reply`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbConfGetReply {
        /// `retval`.
        pub retval: i32,
        /// The current values (VPP's fields after `retval`, as in `lb_conf`).
        pub conf: LbConf as Flat,
    }
}
message!(LbConfGetReply, reply retval);

wire_struct! {
    /// `lb_add_del_vip_v2`: add or delete a VIP.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbAddDelVipV2 {
        /// `pfx`.
        pub pfx: Prefix,
        /// `protocol` (255 for all-port VIPs).
        pub protocol: u8,
        /// `port` (0 for all-port VIPs).
        pub port: u16,
        /// `encap`.
        pub encap: LbEncapType,
        /// `dscp` (L3DSR only).
        pub dscp: u8,
        /// `type` (NAT only).
        pub srv_type: LbSrvType = "type",
        /// `target_port` (NAT only).
        pub target_port: u16,
        /// `node_port` (ignored by VPP).
        pub node_port: u16,
        /// `new_flows_table_length`: a power of two, never 0.
        pub new_flows_table_length: u32,
        /// `src_ip_sticky`.
        pub src_ip_sticky: bool,
        /// `is_del`.
        pub is_del: bool,
    }
}
message!(LbAddDelVipV2, request LbAddDelVipV2Reply);

retval_reply!(
    /// `lb_add_del_vip_v2_reply`.
    LbAddDelVipV2Reply
);

wire_struct! {
    /// `lb_add_del_as_v2`: add or delete an AS of a VIP.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbAddDelAsV2 {
        /// `pfx`.
        pub pfx: Prefix,
        /// `protocol`.
        pub protocol: u8,
        /// `port`.
        pub port: u16,
        /// `as_address`.
        pub as_address: IpAddr,
        /// `weight`.
        pub weight: u8,
        /// `is_del`.
        pub is_del: bool,
        /// `is_flush`.
        pub is_flush: bool,
    }
}
message!(LbAddDelAsV2, request LbAddDelAsV2Reply);

retval_reply!(
    /// `lb_add_del_as_v2_reply`.
    LbAddDelAsV2Reply
);

wire_struct! {
    /// `lb_as_set_weight`: change an AS's weight, optionally flushing its flows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbAsSetWeight {
        /// `pfx`.
        pub pfx: Prefix,
        /// `protocol`.
        pub protocol: u8,
        /// `port`.
        pub port: u16,
        /// `as_address`.
        pub as_address: IpAddr,
        /// `weight`.
        pub weight: u8,
        /// `is_flush`.
        pub is_flush: bool,
    }
}
message!(LbAsSetWeight, request LbAsSetWeightReply);

retval_reply!(
    /// `lb_as_set_weight_reply`.
    LbAsSetWeightReply
);

wire_struct! {
    /// `lb_flush_vip`: evict a VIP's sticky entries (always answers 0).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbFlushVip {
        /// `pfx`.
        pub pfx: Prefix,
        /// `protocol`.
        pub protocol: u8,
        /// `port`.
        pub port: u16,
    }
}
message!(LbFlushVip, request LbFlushVipReply);

retval_reply!(
    /// `lb_flush_vip_reply`.
    LbFlushVipReply
);

wire_struct! {
    /// `lb_vip_dump`: VPP ignores the filter and dumps every live VIP.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbVipDump {
        /// `pfx` (ignored by VPP).
        pub pfx: Prefix,
        /// `pfx_matcher` (ignored by VPP).
        pub pfx_matcher: PrefixMatcher,
        /// `protocol` (ignored by VPP).
        pub protocol: u8,
        /// `port` (ignored by VPP).
        pub port: u16,
    }
}
message!(LbVipDump, dump LbVipDetails);

impl Default for LbVipDump {
    /// What `vpp_papi` sends for `lb_vip_dump()`: zero prefix, protocol 255.
    fn default() -> Self {
        LbVipDump {
            pfx: Prefix::ZERO,
            pfx_matcher: PrefixMatcher::default(),
            protocol: 255,
            port: 0,
        }
    }
}

wire_struct! {
    /// `lb_vip_details`: one live VIP.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbVipDetails {
        /// `vip`.
        pub vip: LbVip,
        /// `encap`.
        pub encap: LbEncapType,
        /// `dscp` (aliases `srv_type`; meaningful for L3DSR only).
        pub dscp: u8,
        /// `srv_type`, as on the wire (VPP does not byte-swap it).
        pub srv_type: LbSrvType,
        /// `target_port`, as on the wire (VPP sends it byte-swapped).
        pub target_port: u16,
        /// `flow_table_length` (truncated to 16 bits by VPP).
        pub flow_table_length: u16,
    }
}
message!(LbVipDetails);

wire_struct! {
    /// `lb_as_v2_dump`: an all-zero `pfx` dumps every AS of every VIP (the
    /// only filter that works for IPv4 VIPs).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbAsV2Dump {
        /// `pfx`.
        pub pfx: Prefix,
        /// `protocol`.
        pub protocol: u8,
        /// `port`.
        pub port: u16,
    }
}
message!(LbAsV2Dump, dump LbAsV2Details);

impl Default for LbAsV2Dump {
    /// Dump all: zero prefix, protocol 0, port 0.
    fn default() -> Self {
        LbAsV2Dump {
            pfx: Prefix::ZERO,
            protocol: 0,
            port: 0,
        }
    }
}

/// `flags` bit of a live (not removed) AS.
pub const LB_AS_FLAGS_USED: u8 = 0x1;

wire_struct! {
    /// `lb_as_v2_details`: one AS of one VIP (removed ones included).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LbAsV2Details {
        /// `vip`.
        pub vip: LbVip,
        /// `app_srv`: the AS address.
        pub app_srv: IpAddr,
        /// `flags`: [`LB_AS_FLAGS_USED`] unless removed.
        pub flags: u8,
        /// `in_use_since` (meaningful only for removed ASes).
        pub in_use_since: u32,
        /// `weight`.
        pub weight: u8,
        /// `num_buckets`: new-flow table buckets pointing at this AS.
        pub num_buckets: u32,
    }
}
message!(LbAsV2Details);
