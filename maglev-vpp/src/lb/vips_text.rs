//! The parser of `show lb vips verbose` (VPP-WIRE C.4), the only place VPP
//! reveals a VIP's pool index and its `src_ip_sticky` flag.
//!
//! ```text
//!  ip4-gre4 [1] 192.0.2.1/32 src_ip_sticky        header: type, [pool index], prefix, flags
//!   new_size:1024
//!   protocol:6 port:80                            only for per-port VIPs
//!   counters:
//!     packet from existing sessions: 999
//!     first session packet: 1
//!     untracked packet: 0
//!     no server configured: 0
//!   #as:2
//!     10.1.0.2 weight:100 buckets:514 flows:1 dpo:9 used
//!     10.1.0.1 weight:99 buckets:510 flows:0 dpo:10  removed
//! ```
//!
//! Lines it does not know inside a VIP are skipped (a later VPP may print
//! more); a known line that does not parse is an error with its line
//! number, as is text before the first VIP header. The text comes from a
//! socket: no input makes the parser panic or allocate more than the text
//! could hold (`#as:<n>` is a hint, capped by the text's length).

use std::net::IpAddr;

use maglev_core::dataplane::{ANY_PROTOCOL, VipKey};

/// One VIP block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipText {
    /// The VIP type, e.g. `ip4-gre4`.
    pub vip_type: String,
    /// The VIP's pool index (the column of its LB counters).
    pub index: u32,
    /// The prefix address.
    pub address: IpAddr,
    /// The prefix length (plain, 32 for an IPv4 host).
    pub prefix_len: u8,
    /// Whether new flows hash on the source IP only.
    pub src_ip_sticky: bool,
    /// Whether the VIP was deleted and waits for garbage collection.
    pub removed: bool,
    /// The new-flow table length.
    pub new_size: u32,
    /// The protocol (255 when there is no `protocol:` line).
    pub protocol: u8,
    /// The port (0 when there is no `protocol:` line).
    pub port: u16,
    /// The four LB counters, summed over threads.
    pub counters: VipCounters,
    /// The ASes, removed ones included, in VPP's order.
    pub ases: Vec<AsText>,
}

impl VipText {
    /// The VIP's key.
    pub fn key(&self) -> VipKey {
        VipKey {
            address: self.address,
            prefix_len: self.prefix_len,
            protocol: self.protocol,
            port: self.port,
        }
    }
}

/// The LB plugin's per-VIP counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VipCounters {
    /// `packet from existing sessions`.
    pub existing_sessions: u64,
    /// `first session packet`.
    pub first_session: u64,
    /// `untracked packet`.
    pub untracked: u64,
    /// `no server configured`.
    pub no_server: u64,
}

/// One AS line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsText {
    /// Its address.
    pub address: IpAddr,
    /// Its weight.
    pub weight: u8,
    /// New-flow buckets pointing at it.
    pub buckets: u32,
    /// Sticky entries pointing at it.
    pub flows: u64,
    /// The DPO index it is stacked on.
    pub dpo: u32,
    /// `used` (false: removed, awaiting garbage collection).
    pub used: bool,
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}: {text:?}")]
pub struct VipsTextError {
    /// The 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// The shortest AS line VPP can print (`:: weight:0 buckets:0 flows:0
/// dpo:0 used`), so `#as:<n>` reserves no more entries than the text holds.
const MIN_AS_LINE_LEN: usize = 40;

/// Parses the whole output of `show lb vips verbose`.
pub fn parse(text: &str) -> Result<Vec<VipText>, VipsTextError> {
    let mut vips: Vec<VipText> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |problem| VipsTextError {
            line: i + 1,
            text: raw.to_owned(),
            problem,
        };
        if raw.trim().is_empty() {
            continue;
        }
        if raw.starts_with(' ') && !raw.starts_with("  ") {
            vips.push(parse_header(raw).ok_or_else(|| err("bad VIP header"))?);
            continue;
        }
        let Some(vip) = vips.last_mut() else {
            return Err(err("text before the first VIP"));
        };
        let line = raw.trim();
        // NAT VIPs print their `type:` line without a newline.
        let (line, nat_tail) = match line.split_once("  counters:") {
            Some((head, _)) if line.starts_with("type:") => (head.trim(), true),
            _ => (line, false),
        };
        if nat_tail || line.starts_with("type:") || line.starts_with("dscp:") || line == "counters:"
        {
            continue;
        }
        if let Some(v) = line.strip_prefix("new_size:") {
            vip.new_size = v.parse().map_err(|_| err("bad new_size"))?;
        } else if let Some(rest) = line.strip_prefix("protocol:") {
            let (p, port) = rest
                .split_once(" port:")
                .ok_or_else(|| err("bad protocol line"))?;
            vip.protocol = p.parse().map_err(|_| err("bad protocol"))?;
            vip.port = port.parse().map_err(|_| err("bad port"))?;
        } else if let Some(n) = line.strip_prefix("#as:") {
            let n: usize = n.parse().map_err(|_| err("bad #as"))?;
            vip.ases.reserve(n.min(text.len() / MIN_AS_LINE_LEN));
        } else if let Some((name, value)) = counter(line) {
            let v: u64 = value.parse().map_err(|_| err("bad counter value"))?;
            match name {
                "packet from existing sessions" => vip.counters.existing_sessions = v,
                "first session packet" => vip.counters.first_session = v,
                "untracked packet" => vip.counters.untracked = v,
                _ => vip.counters.no_server = v,
            }
        } else if line.contains(" weight:") {
            vip.ases
                .push(parse_as(line).ok_or_else(|| err("bad AS line"))?);
        }
    }
    Ok(vips)
}

fn counter(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(": ")?;
    matches!(
        name,
        "packet from existing sessions"
            | "first session packet"
            | "untracked packet"
            | "no server configured"
    )
    .then_some((name, value.trim()))
}

fn parse_header(raw: &str) -> Option<VipText> {
    let mut words = raw[1..].split(' ');
    let vip_type = words.next()?.to_owned();
    let index = words
        .next()?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()?;
    let (addr, len) = words.next()?.split_once('/')?;
    let address: IpAddr = addr.parse().ok()?;
    let prefix_len: u8 = len.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return None;
    }
    let (mut src_ip_sticky, mut removed) = (false, false);
    for w in words {
        match w {
            "src_ip_sticky" => src_ip_sticky = true,
            "removed" => removed = true,
            _ => return None,
        }
    }
    Some(VipText {
        vip_type,
        index,
        address,
        prefix_len,
        src_ip_sticky,
        removed,
        new_size: 0,
        protocol: ANY_PROTOCOL,
        port: 0,
        counters: VipCounters::default(),
        ases: Vec::new(),
    })
}

fn parse_as(line: &str) -> Option<AsText> {
    let mut words = line.split_whitespace();
    let address = words.next()?.parse().ok()?;
    let mut field = |name: &str| words.next()?.strip_prefix(name);
    let weight = field("weight:")?.parse().ok()?;
    let buckets = field("buckets:")?.parse().ok()?;
    let flows = field("flows:")?.parse().ok()?;
    let dpo = field("dpo:")?.parse().ok()?;
    let used = match words.next()? {
        "used" => true,
        "removed" => false,
        _ => return None,
    };
    Some(AsText {
        address,
        weight,
        buckets,
        flows,
        dpo,
        used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = " ip4-gre4 [1] 10.0.0.1/32 src_ip_sticky
  new_size:1024
  protocol:6 port:80
  counters:
    packet from existing sessions: 1520
    first session packet: 37
    untracked packet: 0
    no server configured: 0
  #as:2
    192.168.1.10 weight:50 buckets:341 flows:12 dpo:23 used
    192.168.1.11 weight:100 buckets:683 flows:25 dpo:24 used

 ip6-gre6 [2] 2001:db8::10/128 removed
  new_size:1024
  counters:
    packet from existing sessions: 0
    first session packet: 0
    untracked packet: 0
    no server configured: 0
  #as:1
    2001:db8:1::a weight:100 buckets:0 flows:0 dpo:25  removed

";

    #[test]
    fn parses_the_documented_example() {
        let vips = parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(vips.len(), 2);
        let a = &vips[0];
        assert_eq!((a.index, a.src_ip_sticky, a.removed), (1, true, false));
        assert_eq!(a.key().to_string(), "10.0.0.1/32 tcp/80");
        assert_eq!(a.counters.existing_sessions, 1520);
        assert_eq!(a.counters.first_session, 37);
        assert_eq!(a.ases[1].buckets, 683);
        let b = &vips[1];
        assert_eq!((b.index, b.removed, b.protocol, b.port), (2, true, 255, 0));
        assert!(!b.ases[0].used);
        assert_eq!(b.ases[0].dpo, 25);
    }

    #[test]
    fn nat_line_without_newline() {
        let text = " ip4-nat4 [3] 10.9.0.1/32
  new_size:1024
  protocol:6 port:80
  type:clusterip port:20480 target_port:8080  counters:
    packet from existing sessions: 5
    first session packet: 0
    untracked packet: 0
    no server configured: 0
  #as:0
";
        let vips = parse(text).unwrap();
        assert_eq!(vips[0].index, 3);
        assert_eq!(vips[0].counters.existing_sessions, 5);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(" ip4-gre4 [x] 10.0.0.1/32\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert_eq!(e.problem, "bad VIP header");
        let e = parse(" ip4-gre4 [1] 10.0.0.1/32\n  new_size:big\n").unwrap_err();
        assert_eq!((e.line, e.problem), (2, "bad new_size"));
        let e = parse("hello\n").unwrap_err();
        assert_eq!(e.problem, "text before the first VIP");
        let e = parse(
            " ip4-gre4 [1] 10.0.0.1/32\n    10.0.0.2 weight:300 buckets:1 flows:0 dpo:1 used\n",
        )
        .unwrap_err();
        assert_eq!(e.problem, "bad AS line");
        assert_eq!(parse("").unwrap(), []);
    }

    #[test]
    fn a_huge_as_count_is_only_a_hint() {
        // `reserve(usize::MAX)` panicked with "capacity overflow".
        let text = format!(" ip4-gre4 [1] 10.0.0.1/32\n  #as:{}\n", usize::MAX);
        let vips = parse(&text).unwrap();
        assert_eq!(vips[0].ases, []);
        assert!(
            vips[0].ases.capacity() <= 4,
            "reserved for the one line at most"
        );
    }
}
