//! The typedefs, unions and enums the messages are built from
//! (`ip_types.api`, `lb_types.api`, `fib_types.api`, `memclnt.api`).
//!
//! Enums whose values VPP may extend are kept as their raw number in a
//! newtype with named constants, so an unknown value decodes (VPP-WIRE F.3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::codec::{Codec, DecodeError, FixedString, Raw, Reader, decode_field, wire_struct};

/// `address_family` (u8): IPv4.
pub const ADDRESS_IP4: u8 = 0;
/// `address_family` (u8): IPv6.
pub const ADDRESS_IP6: u8 = 1;

/// `address`: `af` (u8) then the 16-byte `address_union` `un` (IPv4 in
/// its first 4 bytes, the rest zero). 17 bytes.
impl Codec for IpAddr {
    fn encode(&self, buf: &mut BytesMut) {
        match self {
            IpAddr::V4(a) => {
                buf.put_u8(ADDRESS_IP4);
                buf.put_slice(&a.octets());
                buf.put_bytes(0, 12);
            }
            IpAddr::V6(a) => {
                buf.put_u8(ADDRESS_IP6);
                buf.put_slice(&a.octets());
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let af = r.field("af").u8()?;
        let un: [u8; 16] = r.field("un").array()?;
        match af {
            ADDRESS_IP4 => Ok(IpAddr::V4(Ipv4Addr::new(un[0], un[1], un[2], un[3]))),
            ADDRESS_IP6 => Ok(IpAddr::V6(Ipv6Addr::from(un))),
            other => Err(r.field("af").invalid(
                other.into(),
                "address family is neither 0 (IPv4) nor 1 (IPv6)",
            )),
        }
    }
}

/// `ip4_address`: 4 raw bytes.
impl Codec for Ipv4Addr {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.octets());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ipv4Addr::from(r.array::<4>()?))
    }
}

/// `ip6_address`: 16 raw bytes.
impl Codec for Ipv6Addr {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.octets());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Ipv6Addr::from(r.array::<16>()?))
    }
}

wire_struct! {
    /// `prefix` (= `address_with_prefix`): an address and a length in bits
    /// (plain 0..=32 for IPv4). 18 bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Prefix {
        /// The address.
        pub address: IpAddr,
        /// The length in bits.
        pub len: u8,
    }
}

impl Prefix {
    /// The all-zero prefix (`0.0.0.0/0`): "dump everything" in AS dumps.
    pub const ZERO: Prefix = Prefix {
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
}

wire_struct! {
    /// `lb_vip` (lb_types.api): a VIP's key as the LB plugin reports it. 21 bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct LbVip {
        /// `pfx`.
        pub pfx: Prefix,
        /// `protocol` (`ip_proto`, u8): 255 for an all-port VIP.
        pub protocol: u8,
        /// `port`: 0 for an all-port VIP.
        pub port: u16,
    }
}

wire_struct! {
    /// `prefix_matcher`: `le`, `ge` (ignored by VPP). 2 bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct PrefixMatcher {
        /// `le`.
        pub le: u8,
        /// `ge`.
        pub ge: u8,
    }
}

/// A raw `u32` enum: the number as it is on the wire.
macro_rules! raw_u32_codec {
    ($($ty:ident),*) => {$(
        impl Codec for $ty {
            #[inline]
            fn encode(&self, buf: &mut BytesMut) {
                buf.put_u32(self.0);
            }

            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($ty(r.u32()?))
            }
        }
    )*};
}

raw_u32_codec!(LbEncapType, LbSrvType);

/// `lb_encap_type` (u32), kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LbEncapType(pub u32);

impl LbEncapType {
    /// GRE over IPv4.
    pub const GRE4: LbEncapType = LbEncapType(0);
    /// GRE over IPv6.
    pub const GRE6: LbEncapType = LbEncapType(1);
    /// L3 DSR.
    pub const L3DSR: LbEncapType = LbEncapType(2);
    /// NAT4.
    pub const NAT4: LbEncapType = LbEncapType(3);
    /// NAT6.
    pub const NAT6: LbEncapType = LbEncapType(4);
}

impl From<maglev_core::dataplane::Encap> for LbEncapType {
    fn from(e: maglev_core::dataplane::Encap) -> Self {
        use maglev_core::dataplane::Encap;
        match e {
            Encap::Gre4 => LbEncapType::GRE4,
            Encap::Gre6 => LbEncapType::GRE6,
            Encap::Other(n) => LbEncapType(n),
        }
    }
}

impl From<LbEncapType> for maglev_core::dataplane::Encap {
    fn from(e: LbEncapType) -> Self {
        use maglev_core::dataplane::Encap;
        match e {
            LbEncapType::GRE4 => Encap::Gre4,
            LbEncapType::GRE6 => Encap::Gre6,
            LbEncapType(n) => Encap::Other(n),
        }
    }
}

/// `lb_srv_type` (u32), kept raw. In `lb_vip_details` VPP writes it without
/// byte swapping (VPP-WIRE C.3): NODEPORT shows as `0x0100_0000` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LbSrvType(pub u32);

impl LbSrvType {
    /// Cluster IP.
    pub const CLUSTERIP: LbSrvType = LbSrvType(0);
    /// Node port.
    pub const NODEPORT: LbSrvType = LbSrvType(1);
}

wire_struct! {
    /// `message_table_entry` (memclnt): a runtime id and its `name_crc` key.
    /// 66 bytes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MessageTableEntry {
        /// The runtime message id.
        pub index: u16,
        /// `<name>_<crc8>` (a `string[64]`).
        pub name: String as FixedString<64>,
    }
}

wire_struct! {
    /// `fib_mpls_label`. 7 bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct FibMplsLabel {
        /// `is_uniform`.
        pub is_uniform: u8,
        /// `label`.
        pub label: u32,
        /// `ttl`.
        pub ttl: u8,
        /// `exp`.
        pub exp: u8,
    }
}

wire_struct! {
    /// `fib_path_nh`: the next hop of a path. 28 bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct FibPathNh {
        /// `address` (an `address_union`, kept raw: its family is the path's
        /// `proto`).
        pub address: [u8; 16] as Raw,
        /// `via_label`.
        pub via_label: u32,
        /// `obj_id`.
        pub obj_id: u32,
        /// `classify_table_index`.
        pub classify_table_index: u32,
    }
}

wire_struct! {
    /// `fib_path`: one forwarding path of a route. 167 bytes; the label stack
    /// is always 16 entries on the wire.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct FibPath {
        /// `sw_if_index`.
        pub sw_if_index: u32,
        /// `table_id`.
        pub table_id: u32,
        /// `rpf_id`.
        pub rpf_id: u32,
        /// `weight`.
        pub weight: u8,
        /// `preference`.
        pub preference: u8,
        /// `type` (`fib_path_type`, u32).
        pub path_type: u32 = "type",
        /// `flags` (`fib_path_flags`, u32).
        pub flags: u32,
        /// `proto` (`fib_path_nh_proto`, u32).
        pub proto: u32,
        /// `nh`.
        pub nh: FibPathNh,
        /// `n_labels`.
        pub n_labels: u8,
        /// `label_stack[16]`.
        pub label_stack: [FibMplsLabel; 16],
    }
}

/// `ip_route`: a route with its stats index and paths (the trailing
/// variable part of `ip_route_lookup_reply`). 27 + 167·n bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRoute {
    /// `table_id`.
    pub table_id: u32,
    /// `stats_index`: the row of `/net/route/to` counting this route.
    pub stats_index: u32,
    /// `prefix`.
    pub prefix: Prefix,
    /// `paths[n_paths]`.
    pub paths: Vec<FibPath>,
}

impl Codec for IpRoute {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.table_id);
        buf.put_u32(self.stats_index);
        self.prefix.encode(buf);
        buf.put_u8(self.paths.len().min(255) as u8);
        for p in self.paths.iter().take(255) {
            p.encode(buf);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = decode_field(r, "table_id")?;
        let stats_index = decode_field(r, "stats_index")?;
        let prefix = decode_field(r, "prefix")?;
        let n: u8 = decode_field(r, "n_paths")?;
        let paths = (0..n)
            .map(|_| decode_field(r, "paths"))
            .collect::<Result<_, _>>()?;
        Ok(IpRoute {
            table_id,
            stats_index,
            prefix,
            paths,
        })
    }
}
