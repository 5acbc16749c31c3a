//! Which VIPs maglevt probes, and how: the frontends of one or more config
//! files, merged and de-duplicated by address, protocol and port, filtered
//! by name or address, each with the probe that fits it.
//!
//! How a VIP is probed:
//!
//! - port 443: HTTPS, port 80: HTTP (what clients of such a VIP speak,
//!   whatever the health checks do);
//! - another port: HTTP or HTTPS when every health-checked backend of the
//!   frontend is checked over that scheme on the VIP's own port (the
//!   backends serve HTTP there), else a TCP connect;
//! - an all-port VIP: the one port its backends' health checks share (with
//!   the same rule for the scheme); none shared, it is skipped;
//! - a UDP VIP is skipped: maglevt speaks TCP only.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use maglev_core::config::{Config, Frontend, Probe, ProbeKind};
use maglev_core::dataplane::Protocol;
use regex::Regex;
use serde::Serialize;

use crate::check::{CheckOutcome, check_file};

/// How one VIP is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VipProbe {
    /// A `GET` of the URI over plain HTTP/1.1.
    Http,
    /// A `GET` of the URI over HTTP/1.1 in TLS.
    Https,
    /// A TCP connect, closed at once.
    Tcp,
}

impl VipProbe {
    /// `http`, `https` or `tcp`: the names of the health checks of the
    /// same kind.
    pub fn as_str(self) -> &'static str {
        ProbeKind::from(self).as_str()
    }
}

impl From<VipProbe> for ProbeKind {
    fn from(p: VipProbe) -> ProbeKind {
        match p {
            VipProbe::Http => ProbeKind::Http,
            VipProbe::Https => ProbeKind::Https,
            VipProbe::Tcp => ProbeKind::Tcp,
        }
    }
}

/// A frontend's identity across config files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VipId {
    /// The VIP address.
    pub address: IpAddr,
    /// Its protocol; `None` for an all-protocol VIP.
    pub protocol: Option<Protocol>,
    /// Its port; 0 for all ports.
    pub port: u16,
}

impl VipId {
    fn of(f: &Frontend) -> VipId {
        VipId {
            address: f.address,
            protocol: f.protocol,
            port: f.port,
        }
    }

    /// `tcp`, `udp` or `any`.
    pub fn protocol_name(&self) -> &'static str {
        match self.protocol {
            Some(Protocol::Tcp) => "tcp",
            Some(Protocol::Udp) => "udp",
            None => "any",
        }
    }
}

/// One VIP to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The frontend's name in the first file that has it.
    pub name: String,
    /// Every name it has across the files, first first.
    pub names: Vec<String>,
    /// The VIP.
    pub id: VipId,
    /// Where probes go: the VIP address and the port probed.
    pub addr: SocketAddr,
    /// How.
    pub kind: VipProbe,
}

/// A frontend that is not probed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The frontend's name.
    pub name: String,
    /// Its address.
    pub address: IpAddr,
    /// `tcp`, `udp` or `any`.
    pub protocol: &'static str,
    /// Its port (0: all).
    pub port: u16,
    /// Why it is not probed.
    pub reason: String,
}

/// The VIPs of some config files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Those probed, by name then address.
    pub probed: Vec<Target>,
    /// Those that cannot be probed.
    pub skipped: Vec<Skipped>,
}

/// Reads and validates each config file: the configs, or every problem of
/// the first bad one, each naming the file.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Config>, Vec<String>> {
    paths
        .iter()
        .map(|p| match check_file(p) {
            CheckOutcome::Valid(c) => Ok(c),
            other => Err(named(p, other.lines())),
        })
        .collect()
}

/// Prefixes each problem with the file, unless it already names it.
fn named(path: &Path, lines: Vec<String>) -> Vec<String> {
    let shown = path.display().to_string();
    lines
        .into_iter()
        .map(|l| {
            if l.contains(&shown) {
                l
            } else {
                format!("{shown}: {l}")
            }
        })
        .collect()
}

/// The frontends of `configs`, merged by address, protocol and port (the
/// first file's view of a VIP decides how it is probed), those matching
/// `filter` (by any name or the address) kept.
pub fn select(configs: &[Config], filter: Option<&Regex>) -> Targets {
    let mut seen: BTreeMap<VipId, (Vec<String>, How)> = BTreeMap::new();
    for config in configs {
        for (name, frontend) in config.frontends() {
            let id = VipId::of(frontend);
            let entry = seen
                .entry(id)
                .or_insert_with(|| (Vec::new(), probe_for(config, frontend)));
            if !entry.0.contains(name) {
                entry.0.push(name.clone());
            }
        }
    }
    let mut out = Targets::default();
    for (id, (names, how)) in seen {
        let matches = |re: &Regex| {
            names.iter().any(|n| re.is_match(n)) || re.is_match(&id.address.to_string())
        };
        if filter.is_some_and(|re| !matches(re)) {
            continue;
        }
        match how {
            Ok((kind, port)) => out.probed.push(Target {
                name: names[0].clone(),
                names,
                id,
                addr: SocketAddr::new(id.address, port),
                kind,
            }),
            Err(reason) => out.skipped.push(Skipped {
                name: names[0].clone(),
                address: id.address,
                protocol: id.protocol_name(),
                port: id.port,
                reason,
            }),
        }
    }
    out.probed
        .sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
    out.skipped.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// How a VIP is probed and on which port, or why it is not.
type How = Result<(VipProbe, u16), String>;

/// How `frontend` of `config` is probed, and on which port.
fn probe_for(config: &Config, frontend: &Frontend) -> How {
    if frontend.protocol == Some(Protocol::Udp) {
        return Err("a UDP VIP: maglevt probes over TCP only".to_owned());
    }
    match frontend.port {
        80 => return Ok((VipProbe::Http, 80)),
        443 => return Ok((VipProbe::Https, 443)),
        _ => {}
    }
    // The (kind, port) of every health check of the frontend's backends,
    // ICMP aside (it says nothing of a port).
    let checks: Vec<(VipProbe, u16)> = frontend
        .backend_names()
        .filter_map(|b| config.backend(b)?.healthcheck.as_deref())
        .filter_map(|hc| config.healthcheck(hc))
        .filter_map(|hc| match &hc.probe {
            Probe::Http(h) if h.tls.is_some() => Some((VipProbe::Https, h.port)),
            Probe::Http(h) => Some((VipProbe::Http, h.port)),
            Probe::Tcp(t) => Some((VipProbe::Tcp, t.port)),
            Probe::Icmp => None,
        })
        .collect();
    let port = if frontend.port != 0 {
        frontend.port
    } else {
        match checks.first() {
            Some(&(_, p)) if checks.iter().all(|&(_, q)| q == p) => p,
            _ => {
                return Err(
                    "an all-port VIP whose backends' health checks share no one port to probe"
                        .to_owned(),
                );
            }
        }
    };
    let scheme = match checks.first() {
        Some(&(k, _)) if k != VipProbe::Tcp && checks.iter().all(|&(q, p)| q == k && p == port) => {
            k
        }
        _ => VipProbe::Tcp,
    };
    Ok((scheme, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(frontends: &str) -> Config {
        let yaml = format!(
            r#"
maglev:
  healthchecks:
    http8080: {{ type: http, port: 8080 }}
    https8443: {{ type: https, port: 8443 }}
    tcp22: {{ type: tcp, port: 22 }}
    ping: {{ type: icmp }}
  backends:
    h1: {{ address: 127.0.0.11, healthcheck: http8080 }}
    h2: {{ address: 127.0.0.12, healthcheck: http8080 }}
    s1: {{ address: 127.0.0.13, healthcheck: https8443 }}
    t1: {{ address: 127.0.0.14, healthcheck: tcp22 }}
    p1: {{ address: 127.0.0.15, healthcheck: ping }}
    static: {{ address: 127.0.0.16 }}
  frontends:
{frontends}
"#
        );
        Config::from_yaml(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{}", e.lines().join("\n")))
    }

    fn frontend(name: &str, addr: &str, proto: &str, port: u16, backends: &[&str]) -> String {
        let members: Vec<String> = backends.iter().map(|b| format!("{b}: {{}}")).collect();
        let proto = if proto.is_empty() {
            String::new()
        } else {
            format!("protocol: {proto}, ")
        };
        let port = if port == 0 {
            String::new()
        } else {
            format!("port: {port}, ")
        };
        format!(
            "    {name}: {{ address: {addr}, {proto}{port}pools: [{{ name: p, backends: {{ {} }} }}] }}\n",
            members.join(", ")
        )
    }

    fn kinds(t: &Targets) -> Vec<(String, VipProbe, u16)> {
        t.probed
            .iter()
            .map(|t| (t.name.clone(), t.kind, t.addr.port()))
            .collect()
    }

    #[test]
    fn the_probe_follows_the_port_then_the_health_checks() {
        let c = config(
            &[
                frontend("a80", "127.0.1.1", "tcp", 80, &["t1"]),
                frontend("b443", "127.0.1.2", "tcp", 443, &["h1"]),
                frontend(
                    "c8080",
                    "127.0.1.3",
                    "tcp",
                    8080,
                    &["h1", "h2", "p1", "static"],
                ),
                frontend("d8443", "127.0.1.4", "tcp", 8443, &["s1"]),
                frontend("e8080", "127.0.1.5", "tcp", 8080, &["h1", "s1"]),
                frontend("f9000", "127.0.1.6", "tcp", 9000, &["h1"]),
                frontend("g_all", "127.0.1.7", "", 0, &["h1", "h2"]),
                frontend("h_all", "127.0.1.8", "", 0, &["t1"]),
            ]
            .concat(),
        );
        let t = select(&[c], None);
        let want = [
            ("a80", VipProbe::Http, 80),
            ("b443", VipProbe::Https, 443),
            ("c8080", VipProbe::Http, 8080),
            ("d8443", VipProbe::Https, 8443),
            ("e8080", VipProbe::Tcp, 8080),
            ("f9000", VipProbe::Tcp, 9000),
            ("g_all", VipProbe::Http, 8080),
            ("h_all", VipProbe::Tcp, 22),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(n, k, p)| (n.to_string(), *k, *p))
            .collect();
        assert_eq!(kinds(&t), want);
        assert!(t.skipped.is_empty());
    }

    #[test]
    fn udp_and_portless_all_port_vips_are_skipped_with_a_reason() {
        let c = config(
            &[
                frontend("dns", "127.0.1.53", "udp", 53, &["h1"]),
                frontend("mixed", "127.0.1.9", "", 0, &["h1", "t1"]),
                frontend("unchecked", "127.0.1.10", "", 0, &["static", "p1"]),
                frontend("web", "127.0.1.11", "tcp", 80, &["h1"]),
            ]
            .concat(),
        );
        let t = select(&[c], None);
        assert_eq!(kinds(&t), vec![("web".to_owned(), VipProbe::Http, 80)]);
        let skipped: Vec<(&str, &str)> = t
            .skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[0].1.contains("UDP"), "{skipped:?}");
        assert!(skipped[1].1.contains("no one port"), "{skipped:?}");
        assert!(skipped[2].1.contains("no one port"), "{skipped:?}");
    }

    #[test]
    fn files_merge_by_address_protocol_and_port_and_the_filter_applies() {
        let a = config(
            &[
                frontend("web", "127.0.1.1", "tcp", 80, &["h1"]),
                frontend("api", "127.0.1.2", "tcp", 80, &["h1"]),
            ]
            .concat(),
        );
        let b = config(
            &[
                frontend("web-ams", "127.0.1.1", "tcp", 80, &["h2"]),
                frontend("web-443", "127.0.1.1", "tcp", 443, &["h2"]),
            ]
            .concat(),
        );
        let t = select(&[a.clone(), b.clone()], None);
        let names: Vec<Vec<String>> = t.probed.iter().map(|t| t.names.clone()).collect();
        assert_eq!(
            names,
            vec![
                vec!["api".to_owned()],
                vec!["web".to_owned(), "web-ams".to_owned()],
                vec!["web-443".to_owned()]
            ]
        );
        let re = Regex::new("ams").unwrap();
        let t = select(&[a.clone(), b.clone()], Some(&re));
        assert_eq!(t.probed.len(), 1);
        assert_eq!(t.probed[0].name, "web");
        let re = Regex::new(r"^127\.0\.1\.2$").unwrap();
        let t = select(&[a, b], Some(&re));
        assert_eq!(t.probed.len(), 1);
        assert_eq!(t.probed[0].name, "api");
    }
}
