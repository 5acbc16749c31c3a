//! The netlink route messages of maglevd's table, built and read as pure
//! code: what is added (a blackhole host route of our table and protocol),
//! what is deleted (ours only), what is dumped (one family of our table and
//! protocol), which dumped routes are ours, and errno codes in words.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::announce::Prefix;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

/// Whose routes: one table, one protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The table (`RTA_TABLE`; in the header too when it fits in a byte).
    pub(crate) table: u32,
    /// The route protocol number marking maglevd's routes.
    pub(crate) protocol: u8,
}

impl Owner {
    /// A message of our table and protocol in `family`, with no type,
    /// scope or destination yet.
    fn message(self, family: AddressFamily) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        // Tables past 255 exist only as RTA_TABLE; the kernel reads the
        // attribute first, the header's byte is the old interface.
        m.header.table = u8::try_from(self.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        m.attributes.push(RouteAttribute::Table(self.table));
        m.header.protocol = RouteProtocol::from(self.protocol);
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unspec;
        m
    }

    /// The route of `prefix`: a blackhole (traffic to the VIP that reaches
    /// the host's own stack is dropped, never routed back out), scope
    /// universe.
    pub(crate) fn route(self, prefix: Prefix) -> RouteMessage {
        let mut m = self.message(family(prefix.addr));
        m.header.kind = RouteType::BlackHole;
        set_destination(&mut m, prefix);
        m
    }

    /// What deletes our route of `prefix` and nothing else: the kernel
    /// matches the protocol (a route of another protocol is left alone),
    /// any type and (IPv4) any scope.
    pub(crate) fn delete(self, prefix: Prefix) -> RouteMessage {
        let mut m = self.message(family(prefix.addr));
        m.header.scope = RouteScope::NoWhere;
        set_destination(&mut m, prefix);
        m
    }

    /// The dump request of one family. With `NETLINK_GET_STRICT_CHK` the
    /// kernel sends only our table and protocol; without it, everything,
    /// and [`Owner::ours`] filters.
    pub(crate) fn dump(self, family: AddressFamily) -> RouteMessage {
        self.message(family)
    }

    /// The prefix of a dumped route if it is ours (our table and our
    /// protocol), whatever its type.
    pub(crate) fn ours(self, m: &RouteMessage) -> Option<Prefix> {
        let table = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(m.header.table));
        if table != self.table || u8::from(m.header.protocol) != self.protocol {
            return None;
        }
        let len = m.header.destination_prefix_length;
        let dst = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
            _ => None,
        });
        // No destination attribute: the default route of the family.
        let addr = match (dst, m.header.address_family) {
            (Some(a), _) => a,
            (None, AddressFamily::Inet) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (None, AddressFamily::Inet6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            (None, _) => return None,
        };
        // A length past the family's is no route of ours (the kernel
        // never sends one; a corrupt message may).
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Prefix { addr, len })
    }
}

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn set_destination(m: &mut RouteMessage, prefix: Prefix) {
    m.header.destination_prefix_length = prefix.len;
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(prefix.addr)));
}

/// A netlink error code (a negative errno, as the kernel sends it) in
/// words, with what to do when it is a missing privilege.
pub(crate) fn errno_words(code: i32) -> String {
    let errno = nix::errno::Errno::from_raw(code.saturating_abs());
    let words = format!("{} ({errno:?})", errno.desc());
    match errno {
        nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => {
            format!("{words}: changing routes needs CAP_NET_ADMIN")
        }
        _ => words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Owner = Owner {
        table: 200,
        protocol: 201,
    };

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix {
            addr: a.parse().unwrap(),
            len: l.parse().unwrap(),
        }
    }

    fn table_attr(m: &RouteMessage) -> Option<u32> {
        m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
    }

    #[test]
    fn a_route_is_a_blackhole_host_route_of_our_table_and_protocol() {
        let m = OURS.route(p("192.0.2.1/32"));
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.kind, RouteType::BlackHole);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(u8::from(m.header.protocol), 201);
        assert_eq!(m.header.table, 200);
        assert_eq!(table_attr(&m), Some(200));
        assert_eq!(m.header.destination_prefix_length, 32);
        assert_eq!(OURS.ours(&m), Some(p("192.0.2.1/32")));

        let m = OURS.route(p("2001:db8::1/128"));
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.destination_prefix_length, 128);
        assert_eq!(OURS.ours(&m), Some(p("2001:db8::1/128")));
    }

    #[test]
    fn a_table_past_255_is_only_in_the_attribute() {
        let big = Owner {
            table: 1000,
            protocol: 201,
        };
        let m = big.route(p("192.0.2.1/32"));
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert_eq!(table_attr(&m), Some(1000));
        assert_eq!(big.ours(&m), Some(p("192.0.2.1/32")));
        // 1000 & 0xff is 232: never mistaken for table 232.
        let small = Owner {
            table: 232,
            protocol: 201,
        };
        assert_eq!(small.ours(&m), None);
    }

    #[test]
    fn a_delete_matches_our_protocol_any_type_any_scope() {
        let m = OURS.delete(p("2001:db8::1/128"));
        assert_eq!(m.header.kind, RouteType::Unspec);
        assert_eq!(m.header.scope, RouteScope::NoWhere);
        assert_eq!(u8::from(m.header.protocol), 201);
        assert_eq!(table_attr(&m), Some(200));
    }

    #[test]
    fn a_dump_asks_for_one_family_of_our_table_and_protocol() {
        let m = OURS.dump(AddressFamily::Inet6);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        // Strict dumps reject a scope, prefix length or type filter they
        // cannot honour; ours sets none of them.
        assert_eq!(m.header.kind, RouteType::Unspec);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(table_attr(&m), Some(200));
    }

    #[test]
    fn routes_of_another_table_or_protocol_are_not_ours() {
        let other_protocol = Owner {
            table: 200,
            protocol: 42,
        };
        let other_table = Owner {
            table: 201,
            protocol: 201,
        };
        for m in [
            other_protocol.route(p("192.0.2.1/32")),
            other_table.route(p("192.0.2.1/32")),
        ] {
            assert_eq!(OURS.ours(&m), None);
        }
    }

    #[test]
    fn a_route_without_destination_is_the_default_route() {
        let mut m = OURS.dump(AddressFamily::Inet);
        m.header.kind = RouteType::BlackHole;
        assert_eq!(OURS.ours(&m), Some(p("0.0.0.0/0")));
        let m = OURS.dump(AddressFamily::Inet6);
        assert_eq!(OURS.ours(&m), Some(p("::/0")));
    }

    #[test]
    fn errno_codes_are_told_in_words() {
        assert_eq!(
            errno_words(-1),
            "Operation not permitted (EPERM): changing routes needs CAP_NET_ADMIN"
        );
        assert_eq!(errno_words(-3), "No such process (ESRCH)");
        assert_eq!(errno_words(17), "File exists (EEXIST)");
    }
}
