//! lb.api (1.2.0): the load-balancer plugin's messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::{Dump, Message, MsgId, Reply, Request, empty_message, retval_reply};
use crate::api::codec::{Codec, DecodeError, Reader};
use crate::api::types::{LbEncapType, LbSrvType, LbVip, Prefix, PrefixMatcher};

/// Reads the `pfx`, `protocol`, `port` triple that starts most LB requests.
fn decode_key(r: &mut Reader<'_>) -> Result<(Prefix, u8, u16), DecodeError> {
    r.field("pfx");
    let pfx = Prefix::decode(r)?;
    r.field("protocol");
    let protocol = r.u8()?;
    r.field("port");
    let port = r.u16()?;
    Ok((pfx, protocol, port))
}

fn encode_key(buf: &mut BytesMut, pfx: &Prefix, protocol: u8, port: u16) {
    pfx.encode(buf);
    buf.put_u8(protocol);
    buf.put_u16(port);
}

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

impl Codec for LbConf {
    fn encode(&self, buf: &mut BytesMut) {
        self.ip4_src_address.encode(buf);
        self.ip6_src_address.encode(buf);
        buf.put_u32(self.sticky_buckets_per_core);
        buf.put_u32(self.flow_timeout);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("ip4_src_address");
        let ip4_src_address = Ipv4Addr::decode(r)?;
        r.field("ip6_src_address");
        let ip6_src_address = Ipv6Addr::decode(r)?;
        r.field("sticky_buckets_per_core");
        let sticky_buckets_per_core = r.u32()?;
        r.field("flow_timeout");
        let flow_timeout = r.u32()?;
        Ok(LbConf {
            ip4_src_address,
            ip6_src_address,
            sticky_buckets_per_core,
            flow_timeout,
        })
    }
}

impl Message for LbConf {
    const ID: MsgId = MsgId::LbConf;
}

impl Request for LbConf {
    type Reply = LbConfReply;
}

retval_reply!(
    /// `lb_conf_reply`.
    LbConfReply
);

empty_message!(
    /// `lb_conf_get`.
    LbConfGet
);

impl Request for LbConfGet {
    type Reply = LbConfGetReply;
}

/// `lb_conf_get_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbConfGetReply {
    /// `retval`.
    pub retval: i32,
    /// The current values.
    pub conf: LbConf,
}

impl Codec for LbConfGetReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.retval);
        self.conf.encode(buf);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("retval");
        let retval = r.i32()?;
        let conf = LbConf::decode(r)?;
        Ok(LbConfGetReply { retval, conf })
    }
}

impl Message for LbConfGetReply {
    const ID: MsgId = MsgId::LbConfGetReply;
}

impl Reply for LbConfGetReply {
    fn retval(&self) -> i32 {
        self.retval
    }
}

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
    pub srv_type: LbSrvType,
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

impl Codec for LbAddDelVipV2 {
    fn encode(&self, buf: &mut BytesMut) {
        encode_key(buf, &self.pfx, self.protocol, self.port);
        buf.put_u32(self.encap.0);
        buf.put_u8(self.dscp);
        buf.put_u32(self.srv_type.0);
        buf.put_u16(self.target_port);
        buf.put_u16(self.node_port);
        buf.put_u32(self.new_flows_table_length);
        buf.put_u8(self.src_ip_sticky.into());
        buf.put_u8(self.is_del.into());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (pfx, protocol, port) = decode_key(r)?;
        r.field("encap");
        let encap = LbEncapType(r.u32()?);
        r.field("dscp");
        let dscp = r.u8()?;
        r.field("type");
        let srv_type = LbSrvType(r.u32()?);
        r.field("target_port");
        let target_port = r.u16()?;
        r.field("node_port");
        let node_port = r.u16()?;
        r.field("new_flows_table_length");
        let new_flows_table_length = r.u32()?;
        r.field("src_ip_sticky");
        let src_ip_sticky = r.bool()?;
        r.field("is_del");
        let is_del = r.bool()?;
        Ok(LbAddDelVipV2 {
            pfx,
            protocol,
            port,
            encap,
            dscp,
            srv_type,
            target_port,
            node_port,
            new_flows_table_length,
            src_ip_sticky,
            is_del,
        })
    }
}

impl Message for LbAddDelVipV2 {
    const ID: MsgId = MsgId::LbAddDelVipV2;
}

impl Request for LbAddDelVipV2 {
    type Reply = LbAddDelVipV2Reply;
}

retval_reply!(
    /// `lb_add_del_vip_v2_reply`.
    LbAddDelVipV2Reply
);

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

impl Codec for LbAddDelAsV2 {
    fn encode(&self, buf: &mut BytesMut) {
        encode_key(buf, &self.pfx, self.protocol, self.port);
        self.as_address.encode(buf);
        buf.put_u8(self.weight);
        buf.put_u8(self.is_del.into());
        buf.put_u8(self.is_flush.into());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (pfx, protocol, port) = decode_key(r)?;
        r.field("as_address");
        let as_address = IpAddr::decode(r)?;
        r.field("weight");
        let weight = r.u8()?;
        r.field("is_del");
        let is_del = r.bool()?;
        r.field("is_flush");
        let is_flush = r.bool()?;
        Ok(LbAddDelAsV2 {
            pfx,
            protocol,
            port,
            as_address,
            weight,
            is_del,
            is_flush,
        })
    }
}

impl Message for LbAddDelAsV2 {
    const ID: MsgId = MsgId::LbAddDelAsV2;
}

impl Request for LbAddDelAsV2 {
    type Reply = LbAddDelAsV2Reply;
}

retval_reply!(
    /// `lb_add_del_as_v2_reply`.
    LbAddDelAsV2Reply
);

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

impl Codec for LbAsSetWeight {
    fn encode(&self, buf: &mut BytesMut) {
        encode_key(buf, &self.pfx, self.protocol, self.port);
        self.as_address.encode(buf);
        buf.put_u8(self.weight);
        buf.put_u8(self.is_flush.into());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (pfx, protocol, port) = decode_key(r)?;
        r.field("as_address");
        let as_address = IpAddr::decode(r)?;
        r.field("weight");
        let weight = r.u8()?;
        r.field("is_flush");
        let is_flush = r.bool()?;
        Ok(LbAsSetWeight {
            pfx,
            protocol,
            port,
            as_address,
            weight,
            is_flush,
        })
    }
}

impl Message for LbAsSetWeight {
    const ID: MsgId = MsgId::LbAsSetWeight;
}

impl Request for LbAsSetWeight {
    type Reply = LbAsSetWeightReply;
}

retval_reply!(
    /// `lb_as_set_weight_reply`.
    LbAsSetWeightReply
);

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

impl Codec for LbFlushVip {
    fn encode(&self, buf: &mut BytesMut) {
        encode_key(buf, &self.pfx, self.protocol, self.port);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (pfx, protocol, port) = decode_key(r)?;
        Ok(LbFlushVip {
            pfx,
            protocol,
            port,
        })
    }
}

impl Message for LbFlushVip {
    const ID: MsgId = MsgId::LbFlushVip;
}

impl Request for LbFlushVip {
    type Reply = LbFlushVipReply;
}

retval_reply!(
    /// `lb_flush_vip_reply`.
    LbFlushVipReply
);

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

impl Codec for LbVipDump {
    fn encode(&self, buf: &mut BytesMut) {
        self.pfx.encode(buf);
        self.pfx_matcher.encode(buf);
        buf.put_u8(self.protocol);
        buf.put_u16(self.port);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("pfx");
        let pfx = Prefix::decode(r)?;
        r.field("pfx_matcher");
        let pfx_matcher = PrefixMatcher::decode(r)?;
        r.field("protocol");
        let protocol = r.u8()?;
        r.field("port");
        let port = r.u16()?;
        Ok(LbVipDump {
            pfx,
            pfx_matcher,
            protocol,
            port,
        })
    }
}

impl Message for LbVipDump {
    const ID: MsgId = MsgId::LbVipDump;
}

impl Dump for LbVipDump {
    type Details = LbVipDetails;
}

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

impl Codec for LbVipDetails {
    fn encode(&self, buf: &mut BytesMut) {
        self.vip.encode(buf);
        buf.put_u32(self.encap.0);
        buf.put_u8(self.dscp);
        buf.put_u32(self.srv_type.0);
        buf.put_u16(self.target_port);
        buf.put_u16(self.flow_table_length);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let vip = LbVip::decode(r)?;
        r.field("encap");
        let encap = LbEncapType(r.u32()?);
        r.field("dscp");
        let dscp = r.u8()?;
        r.field("srv_type");
        let srv_type = LbSrvType(r.u32()?);
        r.field("target_port");
        let target_port = r.u16()?;
        r.field("flow_table_length");
        let flow_table_length = r.u16()?;
        Ok(LbVipDetails {
            vip,
            encap,
            dscp,
            srv_type,
            target_port,
            flow_table_length,
        })
    }
}

impl Message for LbVipDetails {
    const ID: MsgId = MsgId::LbVipDetails;
}

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

impl Codec for LbAsV2Dump {
    fn encode(&self, buf: &mut BytesMut) {
        encode_key(buf, &self.pfx, self.protocol, self.port);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (pfx, protocol, port) = decode_key(r)?;
        Ok(LbAsV2Dump {
            pfx,
            protocol,
            port,
        })
    }
}

impl Message for LbAsV2Dump {
    const ID: MsgId = MsgId::LbAsV2Dump;
}

impl Dump for LbAsV2Dump {
    type Details = LbAsV2Details;
}

/// `flags` bit of a live (not removed) AS.
pub const LB_AS_FLAGS_USED: u8 = 0x1;

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

impl Codec for LbAsV2Details {
    fn encode(&self, buf: &mut BytesMut) {
        self.vip.encode(buf);
        self.app_srv.encode(buf);
        buf.put_u8(self.flags);
        buf.put_u32(self.in_use_since);
        buf.put_u8(self.weight);
        buf.put_u32(self.num_buckets);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let vip = LbVip::decode(r)?;
        r.field("app_srv");
        let app_srv = IpAddr::decode(r)?;
        r.field("flags");
        let flags = r.u8()?;
        r.field("in_use_since");
        let in_use_since = r.u32()?;
        r.field("weight");
        let weight = r.u8()?;
        r.field("num_buckets");
        let num_buckets = r.u32()?;
        Ok(LbAsV2Details {
            vip,
            app_srv,
            flags,
            in_use_since,
            weight,
            num_buckets,
        })
    }
}

impl Message for LbAsV2Details {
    const ID: MsgId = MsgId::LbAsV2Details;
}
