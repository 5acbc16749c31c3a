//! The dataplane vocabulary: VIP keys, encapsulation, and the desired and
//! observed state of VPP's load balancer, as plain values.
//!
//! Both sides of the planner speak these types: [`DesiredVip`] is what the
//! config and health say VPP should hold, [`ObservedVip`] what VPP reported.
//! Maps are `BTreeMap`s keyed by [`VipKey`] and [`IpAddr`], whose orders are
//! the deterministic order of everything sent to VPP: IPv4 before IPv6,
//! numeric within a family.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::maglev::{MaglevError, MaglevTable};

/// A VIP's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

/// A protocol name that is neither `tcp` nor `udp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?} (tcp or udp)")]
pub struct UnknownProtocol(pub String);

/// The protocol number VPP stores for an all-port VIP.
pub const ANY_PROTOCOL: u8 = 255;

/// The key of a VIP in VPP: prefix, protocol and port.
///
/// It orders by address (IPv4 first, numeric), then prefix length, protocol
/// and port: the order in which VIPs are planned and programmed. `protocol`
/// is the raw number VPP stores ([`ANY_PROTOCOL`] when `port` is 0), so VIPs
/// that someone else created can be represented and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VipKey {
    /// The prefix address (host bits clear).
    pub address: IpAddr,
    /// The prefix length (32 or 128 for the VIPs maglev creates).
    pub prefix_len: u8,
    /// The IP protocol number; 255 for all-port VIPs.
    pub protocol: u8,
    /// The port; 0 for all ports.
    pub port: u16,
}

impl VipKey {
    /// The key of a host-prefix VIP, as maglev creates them. Port 0 makes an
    /// all-port VIP, whose protocol VPP always stores as 255.
    pub fn host(address: IpAddr, protocol: Option<Protocol>, port: u16) -> VipKey {
        let protocol = match protocol {
            Some(p) if port != 0 => p.number(),
            _ => ANY_PROTOCOL,
        };
        let prefix_len = if address.is_ipv4() { 32 } else { 128 };
        VipKey {
            address,
            prefix_len,
            protocol,
            port,
        }
    }

    /// Whether this is an all-port VIP.
    pub fn is_all_port(&self) -> bool {
        self.port == 0
    }

    /// Whether `other` is on the same prefix (address and length).
    pub fn same_prefix(&self, other: &VipKey) -> bool {
        self.address == other.address && self.prefix_len == other.prefix_len
    }

    /// Whether VPP refuses this VIP and `other` on one prefix because one
    /// of them is all-port (VPP's -81): an all-port VIP is alone on its
    /// prefix. The one definition of that rule, used by
    /// [`check_new_vip`] and by config validation.
    pub fn excludes(&self, other: &VipKey) -> bool {
        self.same_prefix(other) && self != other && (self.is_all_port() || other.is_all_port())
    }

    /// The keys of every VIP on this key's prefix, as a range of the
    /// key order (which sorts by prefix first).
    pub fn prefix_range(&self) -> std::ops::RangeInclusive<VipKey> {
        let lo = VipKey {
            protocol: 0,
            port: 0,
            ..*self
        };
        let hi = VipKey {
            protocol: u8::MAX,
            port: u16::MAX,
            ..*self
        };
        lo..=hi
    }
}

/// Why VPP refuses to create a VIP beside the live VIPs of its prefix.
///
/// These are the prefix rules of `lb_vip_add` in VPP's `lb.c`, checked in
/// its order; [`check_new_vip`] is their one definition, used by the
/// planner's model of VPP and by the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixConflict {
    /// The VIP already exists (VPP's -81, `VNET_API_ERROR_VALUE_EXIST`).
    #[error("VIP {0} already exists")]
    Exists(VipKey),
    /// An all-port VIP and another VIP on one prefix (VPP's -81): an
    /// all-port VIP must be alone on its prefix.
    #[error("VIP {new} cannot be beside VIP {existing}: an all-port VIP is alone on its prefix")]
    AllPortBesidePerPort {
        /// The VIP to create.
        new: VipKey,
        /// The live VIP on its prefix.
        existing: VipKey,
    },
    /// Per-port VIPs of one prefix with different types, that is different
    /// encaps (VPP's -73, `VNET_API_ERROR_INVALID_ARGUMENT`).
    #[error("VIP {new} needs the encap of VIP {existing}: the VIPs of one prefix share an encap")]
    MixedEncap {
        /// The VIP to create.
        new: VipKey,
        /// The live VIP on its prefix with another encap.
        existing: VipKey,
    },
}

/// Checks VPP's prefix rules for creating the VIP `key` of type `vip_type`
/// beside the live VIPs `live` (any VIPs: those on other prefixes are
/// ignored), each with its type.
///
/// The type is what VPP compares: the encap ([`Encap`] for the planner,
/// VPP's internal VIP type for the simulator). In VPP's order:
///
/// 1. a live VIP with the same key: [`PrefixConflict::Exists`];
/// 2. an all-port VIP beside any other VIP on the prefix, either way round:
///    [`PrefixConflict::AllPortBesidePerPort`];
/// 3. a per-port VIP whose type differs from the first other VIP of the
///    prefix (VPP compares with the first it finds in pool order; the rules
///    keep every VIP of a prefix of one type, so any other is the same):
///    [`PrefixConflict::MixedEncap`].
pub fn check_new_vip<T: PartialEq>(
    key: VipKey,
    vip_type: T,
    live: impl IntoIterator<Item = (VipKey, T)>,
) -> Result<(), PrefixConflict> {
    let on_prefix: Vec<(VipKey, T)> = live
        .into_iter()
        .filter(|(k, _)| k.same_prefix(&key))
        .collect();
    if on_prefix.iter().any(|(k, _)| *k == key) {
        return Err(PrefixConflict::Exists(key));
    }
    if let Some((existing, _)) = on_prefix.iter().find(|(k, _)| k.excludes(&key)) {
        return Err(PrefixConflict::AllPortBesidePerPort {
            new: key,
            existing: *existing,
        });
    }
    match on_prefix.first() {
        Some((existing, t)) if *t != vip_type => Err(PrefixConflict::MixedEncap {
            new: key,
            existing: *existing,
        }),
        _ => Ok(()),
    }
}

impl fmt::Display for VipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} ", self.address, self.prefix_len)?;
        match self.protocol {
            6 => write!(f, "tcp/{}", self.port),
            17 => write!(f, "udp/{}", self.port),
            ANY_PROTOCOL => f.write_str("all-ports"),
            n => write!(f, "proto {n}/{}", self.port),
        }
    }
}

/// A VIP's encapsulation towards its ASes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encap {
    /// GRE over IPv4: the ASes are IPv4.
    Gre4,
    /// GRE over IPv6: the ASes are IPv6.
    Gre6,
    /// Any other encapsulation VPP may report (L3DSR, NAT4, NAT6), by its
    /// `lb_encap_type` number. maglev never creates these.
    Other(u32),
}

impl Encap {
    /// The GRE encapsulation that carries packets to ASes of `address`'s
    /// family: it follows the backends, not the VIP.
    pub fn for_backend(address: IpAddr) -> Encap {
        if address.is_ipv4() {
            Encap::Gre4
        } else {
            Encap::Gre6
        }
    }
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encap::Gre4 => f.write_str("gre4"),
            Encap::Gre6 => f.write_str("gre6"),
            Encap::Other(n) => write!(f, "encap-{n}"),
        }
    }
}

/// What VPP should hold for one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVip {
    /// The VIP.
    pub key: VipKey,
    /// Encapsulation, from the backends' family.
    pub encap: Encap,
    /// Buckets of its new-flow (Maglev) table: a power of two.
    pub table_len: u32,
    /// Source-IP stickiness.
    pub src_ip_sticky: bool,
    /// Every backend of every pool, by address.
    pub ases: BTreeMap<IpAddr, DesiredAs>,
}

/// What VPP should hold for one AS of a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredAs {
    /// The effective weight (0..=100).
    pub weight: u8,
    /// Whether a weight change to this value must also tear down the AS's
    /// existing flows (the flush rule of the backend's state).
    pub flush: bool,
}

/// What VPP reported for one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedVip {
    /// The VIP.
    pub key: VipKey,
    /// Its encapsulation.
    pub encap: Encap,
    /// Buckets of its new-flow (Maglev) table.
    pub table_len: u32,
    /// Its source-IP stickiness.
    pub src_ip_sticky: bool,
    /// Its live ASes with their weights (removed ASes left out).
    pub ases: BTreeMap<IpAddr, u8>,
}

impl ObservedVip {
    /// The new-flow table VPP fills from these ASes and weights; an error
    /// only for a length that is not a power of two (which VPP refuses).
    pub fn table(&self) -> Result<MaglevTable, MaglevError> {
        MaglevTable::build(
            self.ases.iter().map(|(a, w)| (*a, *w)),
            self.table_len as usize,
        )
    }
}

impl DesiredVip {
    /// What VPP reports for this VIP once it holds it.
    pub fn as_observed(&self) -> ObservedVip {
        ObservedVip {
            key: self.key,
            encap: self.encap,
            table_len: self.table_len,
            src_ip_sticky: self.src_ip_sticky,
            ases: self.ases.iter().map(|(a, x)| (*a, x.weight)).collect(),
        }
    }
}

/// What VPP reports once it holds every VIP of `desired`.
pub fn observed_from(desired: &DesiredState) -> ObservedState {
    desired.iter().map(|(k, d)| (*k, d.as_observed())).collect()
}

/// VPP's load-balancer state as far as the planner cares: VIPs by key.
pub type ObservedState = BTreeMap<VipKey, ObservedVip>;

/// The desired state of every frontend, by VIP key.
pub type DesiredState = BTreeMap<VipKey, DesiredVip>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let k = VipKey::host(v4, Some(Protocol::Tcp), 80);
        assert_eq!((k.prefix_len, k.protocol, k.port), (32, 6, 80));
        assert_eq!(k.to_string(), "192.0.2.1/32 tcp/80");
        let all = VipKey::host(v6, None, 0);
        assert_eq!((all.prefix_len, all.protocol), (128, 255));
        assert!(all.is_all_port());
        assert_eq!(all.to_string(), "2001:db8::1/128 all-ports");
        assert!(k < all, "IPv4 sorts before IPv6");
    }

    #[test]
    fn keys_sort_numerically() {
        let a = VipKey::host("10.0.0.2".parse().unwrap(), Some(Protocol::Tcp), 80);
        let b = VipKey::host("10.0.0.10".parse().unwrap(), Some(Protocol::Tcp), 80);
        assert!(a < b);
    }

    #[test]
    fn protocol_names() {
        assert_eq!("udp".parse::<Protocol>(), Ok(Protocol::Udp));
        let err = "sctp".parse::<Protocol>().unwrap_err();
        assert_eq!(err, UnknownProtocol("sctp".into()));
        assert_eq!(err.to_string(), r#"unknown protocol "sctp" (tcp or udp)"#);
    }

    fn k(a: &str, port: u16) -> VipKey {
        VipKey::host(a.parse().unwrap(), Some(Protocol::Tcp), port)
    }

    #[test]
    fn prefix_rules_in_vpp_order() {
        let http = k("192.0.2.1", 80);
        let https = k("192.0.2.1", 443);
        let all = k("192.0.2.1", 0);
        let other = k("192.0.2.2", 443);
        let live = [(http, Encap::Gre4)];
        assert_eq!(check_new_vip(https, Encap::Gre4, live), Ok(()));
        assert_eq!(
            check_new_vip(http, Encap::Gre6, live),
            Err(PrefixConflict::Exists(http)),
            "the same key is -81 before the encap is compared"
        );
        assert_eq!(
            check_new_vip(all, Encap::Gre4, live),
            Err(PrefixConflict::AllPortBesidePerPort {
                new: all,
                existing: http
            })
        );
        assert_eq!(
            check_new_vip(https, Encap::Gre4, [(all, Encap::Gre4)]),
            Err(PrefixConflict::AllPortBesidePerPort {
                new: https,
                existing: all
            })
        );
        assert_eq!(
            check_new_vip(https, Encap::Gre6, live),
            Err(PrefixConflict::MixedEncap {
                new: https,
                existing: http
            })
        );
        assert_eq!(
            check_new_vip(other, Encap::Gre6, live),
            Ok(()),
            "another prefix does not count"
        );
        let wide = VipKey {
            prefix_len: 24,
            ..https
        };
        assert_eq!(check_new_vip(wide, Encap::Gre6, live), Ok(()));
    }

    #[test]
    fn prefix_range_holds_exactly_the_prefix() {
        let p = k("192.0.2.1", 80);
        let range = p.prefix_range();
        for (key, inside) in [
            (k("192.0.2.1", 0), true),
            (k("192.0.2.1", 65535), true),
            (
                VipKey::host("192.0.2.1".parse().unwrap(), Some(Protocol::Udp), 53),
                true,
            ),
            (k("192.0.2.2", 0), false),
            (k("192.0.2.0", 65535), false),
            (
                VipKey {
                    prefix_len: 31,
                    ..p
                },
                false,
            ),
        ] {
            assert_eq!(range.contains(&key), inside, "{key}");
            assert_eq!(p.same_prefix(&key), inside, "{key}");
        }
    }

    #[test]
    fn encap_follows_backend_family() {
        assert_eq!(Encap::for_backend("10.0.0.1".parse().unwrap()), Encap::Gre4);
        assert_eq!(
            Encap::for_backend("2001:db8::1".parse().unwrap()),
            Encap::Gre6
        );
    }
}
