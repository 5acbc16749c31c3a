//! Config fingerprints: a 48-bit hash of exactly the part of the config
//! that decides a frontend's Maglev table given a health view, so that two
//! routers whose tables differ can be told apart by "different config"
//! versus "same config, different health view".
//!
//! A **frontend's** fingerprint ([`frontend_fingerprint`]) covers:
//!
//! - the VIP: address (family and 16 `ip46` bytes), protocol (none, tcp,
//!   udp), port;
//! - the resolved table length ([`Frontend::table_len`]: `auto` counts as
//!   the length it resolves to);
//! - `src-ip-sticky`;
//! - the pools, in priority order, each with its `min-up` and
//!   `min-up-to-return` resolved to member counts (`50%` of two members
//!   equals `1`), and its members in a canonical order (by address, then
//!   weight, then enabled), each as its backend's **address**, its
//!   configured weight and whether the backend is configured `enabled`.
//!
//! It does not cover names (of backends, pools or the frontend),
//! `description`, `flush-on-down`, health checks (type, timings, damping,
//! slow start: they shape the health view, not the table built from it),
//! or any state held at run time (operator disable or drain, health). A
//! weight set at run time makes a new config, so it is covered.
//!
//! The **config's** fingerprint ([`config_fingerprint`]) covers every
//! frontend's name and fingerprint, in name order: equal on two routers
//! exactly when they have the same frontends, by name, each with the same
//! fingerprint. Nothing outside `frontends` and the backends they use
//! moves it.
//!
//! Both use the FNV-1a hash of [`MaglevTable::fingerprint`](crate::maglev::MaglevTable::fingerprint),
//! keep its [`FINGERPRINT_BITS`](crate::maglev::FINGERPRINT_BITS) bits
//! (exact in a Prometheus sample) and are never 0 (which the gRPC API
//! reads as "not reported"). They depend on neither the file's layout (key
//! order, comments, defaults written or not) nor maglev's version.

use std::net::IpAddr;

use super::{Config, Frontend};
use crate::maglev::{Fnv48, ip46};

/// The fingerprint of `frontend` of `config` (see the [module](self)
/// docs for what it covers). Computed every call: daemons read the cached
/// one, [`Config::frontend_fingerprint`].
pub fn frontend_fingerprint(config: &Config, frontend: &Frontend) -> u64 {
    let mut h = Fnv48::new();
    eat_address(&mut h, frontend.address);
    h.eat(&[frontend.protocol.map_or(0, |p| p.number())]);
    h.eat(&frontend.port.to_le_bytes());
    h.eat(&frontend.table_len().to_le_bytes());
    h.eat(&[u8::from(frontend.src_ip_sticky)]);
    h.eat(&count(frontend.pools.len()));
    for pool in &frontend.pools {
        h.eat(&count(pool.min_up_count()));
        h.eat(&count(pool.min_up_to_return_count()));
        // (family, ip46, weight, enabled): sorts as the hash reads it.
        let mut members: Vec<(u8, [u8; 16], u8, bool)> = pool
            .backends
            .iter()
            .map(|(name, member)| {
                // A validated config names only backends it has; a missing
                // one still counts, as the unspecified address, disabled.
                let (address, enabled) = config
                    .backend(name)
                    .map_or((IpAddr::from([0u8; 16]), false), |b| (b.address, b.enabled));
                (family(address), ip46(address), member.weight, enabled)
            })
            .collect();
        members.sort_unstable();
        h.eat(&count(members.len()));
        for (family, raw, weight, enabled) in members {
            h.eat(&[family]);
            h.eat(&raw);
            h.eat(&[weight, u8::from(enabled)]);
        }
    }
    nonzero(h.finish())
}

/// The fingerprint of a whole config from its frontends' names and
/// fingerprints, which must come in name order (as
/// [`Config::frontends`] iterates). Daemons read the cached one,
/// [`Config::fingerprint`].
pub fn config_fingerprint<'a>(frontends: impl IntoIterator<Item = (&'a str, u64)>) -> u64 {
    let mut h = Fnv48::new();
    let mut n = 0usize;
    for (name, fingerprint) in frontends {
        h.eat(&count(name.len()));
        h.eat(name.as_bytes());
        h.eat(&fingerprint.to_le_bytes());
        n += 1;
    }
    // The count last: frontends come from an iterator.
    h.eat(&count(n));
    nonzero(h.finish())
}

/// An address as its family (4 or 6) and its `ip46` bytes, so that
/// `::a.b.c.d` and `a.b.c.d` differ.
fn eat_address(h: &mut Fnv48, address: IpAddr) {
    h.eat(&[family(address)]);
    h.eat(&ip46(address));
}

/// 4 or 6.
fn family(address: IpAddr) -> u8 {
    if address.is_ipv4() { 4 } else { 6 }
}

/// A count as 4 little-endian bytes (saturated: no config comes near).
fn count(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// 0 is "not reported" on the wire: a hash of 0 (one chance in 2^48)
/// reads 1.
fn nonzero(h: u64) -> u64 {
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maglev::FINGERPRINT_BITS;

    const BASE: &str = r#"
maglev:
  healthchecks:
    h: { type: tcp, port: 80, interval: 2s }
  backends:
    a: { address: 10.0.0.1, healthcheck: h }
    b: { address: 10.0.0.2 }
    c: { address: 10.0.0.3 }
  frontends:
    x:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      description: "web"
      pools:
        - { name: p, min-up: 1, backends: { a: { weight: 100 }, b: { weight: 50 } } }
        - { name: q, backends: { c: {} } }
    y:
      address: 2001:db8::1
      protocol: udp
      port: 53
      pools:
        - { name: p, backends: { a: {} } }
"#;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml, "test.yaml").expect("valid")
    }

    fn fe(c: &Config, name: &str) -> u64 {
        c.frontend_fingerprint(name).expect("frontend")
    }

    #[test]
    fn the_cached_fingerprints_are_the_computed_ones() {
        let c = config(BASE);
        for (name, f) in c.frontends() {
            assert_eq!(fe(&c, name), frontend_fingerprint(&c, f));
            assert!(fe(&c, name) < 1 << FINGERPRINT_BITS);
            assert_ne!(fe(&c, name), 0);
        }
        assert_ne!(fe(&c, "x"), fe(&c, "y"));
        assert_eq!(
            c.fingerprint(),
            config_fingerprint(c.frontends().keys().map(|n| (n.as_str(), fe(&c, n))))
        );
        assert_eq!(c.frontend_fingerprint("nope"), None);
        // Kept with the data: a clone answers the same, a changed copy anew.
        assert_eq!(c.clone().fingerprint(), c.fingerprint());
        let changed = c.with_pool_weight("x", "p", "b", 51).expect("member");
        assert_ne!(fe(&changed, "x"), fe(&c, "x"));
        assert_eq!(fe(&changed, "y"), fe(&c, "y"));
        assert_ne!(changed.fingerprint(), c.fingerprint());
    }

    #[test]
    fn equal_for_the_same_tables_written_differently() {
        let base = config(BASE);
        // Other key order, comments, defaults written out, other names for
        // backends and pools, other description, flush-on-down and health
        // check timings: the same tables.
        let same = config(
            r#"
# the same config, written by someone else
maglev:
  frontends:
    y:
      pools:
        - { name: only, backends: { alpha: { weight: 100 } } }  # default weight
      port: 53
      protocol: udp
      address: 2001:db8::1
      flow-table-length: 1024
    x:
      flush-on-down: false
      src-ip-sticky: false
      description: "another text"
      pools:
        - name: first
          min-up: 50%
          backends:
            bravo: { weight: 50 }
            alpha: {}
        - { name: second, backends: { charlie: {} } }
      port: 80
      protocol: tcp
      address: 192.0.2.1
  backends:
    charlie: { address: 10.0.0.3, enabled: true }
    bravo: { address: 10.0.0.2 }
    alpha: { address: 10.0.0.1, healthcheck: slow }
  healthchecks:
    slow: { type: http, port: 8080, interval: 10s, rise: 5 }
"#,
        );
        assert_eq!(fe(&same, "x"), fe(&base, "x"));
        assert_eq!(fe(&same, "y"), fe(&base, "y"));
        assert_eq!(same.fingerprint(), base.fingerprint());
        // A renamed frontend keeps its own fingerprint, but the config's
        // names its frontends.
        let renamed = config(&BASE.replace("    y:\n", "    z:\n"));
        assert_eq!(fe(&renamed, "z"), fe(&base, "y"));
        assert_ne!(renamed.fingerprint(), base.fingerprint());
    }

    #[test]
    fn different_when_any_covered_field_changes() {
        let base = config(BASE);
        let x = fe(&base, "x");
        let variants = [
            ("address", BASE.replace("192.0.2.1", "192.0.2.9")),
            ("protocol", BASE.replace("protocol: tcp", "protocol: udp")),
            ("port", BASE.replace("port: 80\n      desc", "port: 81\n      desc")),
            (
                "table length",
                BASE.replace("description:", "flow-table-length: 2048\n      description:"),
            ),
            (
                "auto table length",
                BASE.replace("description:", "flow-table-length: auto\n      description:"),
            ),
            (
                "src-ip-sticky",
                BASE.replace("description:", "src-ip-sticky: true\n      description:"),
            ),
            ("min-up", BASE.replace("min-up: 1,", "min-up: 2,")),
            (
                "min-up-to-return",
                BASE.replace("min-up: 1,", "min-up: 1, min-up-to-return: 2,"),
            ),
            ("weight", BASE.replace("weight: 50", "weight: 49")),
            ("backend address", BASE.replace("10.0.0.2", "10.0.0.22")),
            ("enabled", BASE.replace("{ address: 10.0.0.2 }", "{ address: 10.0.0.2, enabled: false }")),
            (
                "member added",
                BASE.replace("b: { weight: 50 } }", "b: { weight: 50 }, d: {} }")
                    .replace("  frontends:", "    d: { address: 10.0.0.4 }\n  frontends:"),
            ),
            (
                "pool order",
                BASE.replace(
                    "        - { name: p, min-up: 1, backends: { a: { weight: 100 }, b: { weight: 50 } } }\n        - { name: q, backends: { c: {} } }",
                    "        - { name: q, backends: { c: {} } }\n        - { name: p, min-up: 1, backends: { a: { weight: 100 }, b: { weight: 50 } } }",
                ),
            ),
        ];
        for (what, yaml) in variants {
            assert_ne!(yaml, BASE, "{what}: the edit applies");
            let changed = config(&yaml);
            assert_ne!(fe(&changed, "x"), x, "{what} changes the frontend's");
            assert_eq!(fe(&changed, "y"), fe(&base, "y"), "{what} leaves y's");
            assert_ne!(changed.fingerprint(), base.fingerprint(), "{what}");
        }
        // A weight moved from one member to another is a change too.
        let swapped = base
            .with_pool_weight("x", "p", "a", 50)
            .and_then(|c| c.with_pool_weight("x", "p", "b", 100))
            .expect("members");
        assert_ne!(fe(&swapped, "x"), x);
        // An IPv4 VIP and its IPv4-mapped IPv6 twin differ.
        let mut h4 = Fnv48::new();
        eat_address(&mut h4, "10.0.0.1".parse().expect("ip"));
        let mut h6 = Fnv48::new();
        eat_address(&mut h6, "::10.0.0.1".parse().expect("ip"));
        assert_ne!(h4.finish(), h6.finish());
    }
}
