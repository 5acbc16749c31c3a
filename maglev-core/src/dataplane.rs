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
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(format!("unknown protocol {other:?} (tcp or udp)")),
        }
    }
}

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
    /// Its source-IP stickiness.
    pub src_ip_sticky: bool,
    /// Its live ASes with their weights (removed ASes left out).
    pub ases: BTreeMap<IpAddr, u8>,
}

impl DesiredVip {
    /// What VPP reports for this VIP once it holds it.
    pub fn as_observed(&self) -> ObservedVip {
        ObservedVip {
            key: self.key,
            encap: self.encap,
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
    fn encap_follows_backend_family() {
        assert_eq!(Encap::for_backend("10.0.0.1".parse().unwrap()), Encap::Gre4);
        assert_eq!(
            Encap::for_backend("2001:db8::1".parse().unwrap()),
            Encap::Gre6
        );
    }
}
