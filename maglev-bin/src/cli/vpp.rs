//! What `show vpp lb state` and `show vpp lb counters` print.

use std::time::Duration;

use super::exec::port_name;
use super::render::{self, Block, Cell, Paint, Style, Table};
use crate::grpc::proto;

/// `show vpp lb state`: the global conf, then each VIP with its ASes.
pub fn lb_state_text(s: &proto::VpplbState, st: Style) -> String {
    let mut out = String::new();
    if let Some(c) = &s.conf {
        let mut k = Block::new();
        k.kv("ip4-src-address", c.ip4_src_address.as_str())
            .kv("ip6-src-address", c.ip6_src_address.as_str())
            .kv(
                "sticky-buckets-per-core",
                c.sticky_buckets_per_core.to_string(),
            )
            .kv(
                "flow-timeout",
                render::duration(Duration::from_secs(u64::from(c.flow_timeout_seconds))),
            );
        out.push_str(&k.render(st));
    }
    if s.vips.is_empty() {
        out.push_str("no VIPs\n");
    }
    for v in &s.vips {
        let fe = if v.frontend.is_empty() {
            "not in the config".to_owned()
        } else {
            format!("frontend {}", v.frontend)
        };
        out.push_str(&format!(
            "{} {} {}/{} ({fe})\n",
            st.paint("vip", Paint::Label),
            v.prefix,
            render::ip_proto(v.protocol),
            port_name(v.port)
        ));
        let mut k = Block::new().indent(2);
        k.kv("encap", v.encap.as_str())
            .kv("src-ip-sticky", render::yes_no(v.src_ip_sticky))
            .kv("pool-index", v.pool_index.to_string())
            .kv("flow-table-length", v.flow_table_length.to_string());
        out.push_str(&k.render(st));
        let mut t = Table::new(&["AS", "WEIGHT", "FLAGS", "BUCKETS"]).indent(2);
        for a in &v.ases {
            t.row(vec![
                a.address.clone().into(),
                a.weight.to_string().into(),
                format!("{:#x}", a.flags).into(),
                a.num_buckets.to_string().into(),
            ]);
        }
        out.push_str(&t.render(st));
    }
    out
}

/// `show vpp lb counters`: each VIP's counters, with rates over the two
/// snapshots when a second one came.
pub fn counters_text(
    first: &proto::VpplbCounters,
    second: Option<&proto::VpplbCounters>,
    now: i64,
    st: Style,
) -> String {
    if first.scrape_unix_nanos <= 0 {
        return "no counters yet: nothing scraped since VPP connected\n".to_owned();
    }
    let latest = second.unwrap_or(first);
    let secs = second.map(|s| (s.scrape_unix_nanos - first.scrape_unix_nanos) as f64 / 1e9);
    let mut out = match secs {
        Some(d) => format!(
            "scraped {} ago; rates over {}\n",
            render::age(latest.scrape_unix_nanos, now),
            render::duration(Duration::from_millis((d * 1000.0).max(0.0) as u64))
        ),
        None => format!(
            "scraped {} ago; no second scrape came, so no rates\n",
            render::age(latest.scrape_unix_nanos, now)
        ),
    };
    let mut t = Table::new(&[
        "FRONTEND",
        "VIP",
        "NEXT",
        "FIRST",
        "UNTRACKED",
        "NO-SERVER",
        "PACKETS",
        "BYTES",
        "PKT/S",
        "NEW/S",
        "BIT/S",
    ]);
    for v in &latest.vips {
        let before = first.vips.iter().find(|x| x.frontend == v.frontend);
        let r = |f: fn(&proto::VpplbvipCounters) -> u64, scale: f64| -> String {
            match (before, secs) {
                (Some(b), Some(d)) if d > 0.0 && f(v) >= f(b) => {
                    render::rate((f(v) - f(b)) as f64 * scale / d)
                }
                _ => "-".to_owned(),
            }
        };
        t.row(vec![
            v.frontend.clone().into(),
            format!(
                "{} {}/{}",
                v.prefix,
                render::ip_proto(v.protocol),
                port_name(v.port)
            )
            .into(),
            v.next.to_string().into(),
            v.first.to_string().into(),
            v.untracked.to_string().into(),
            Cell {
                text: v.no_server.to_string(),
                paint: if v.no_server > 0 {
                    Paint::Red
                } else {
                    Paint::Plain
                },
            },
            v.route_packets.to_string().into(),
            v.route_bytes.to_string().into(),
            r(|c| c.route_packets, 1.0).into(),
            r(|c| c.first, 1.0).into(),
            r(|c| c.route_bytes, 8.0).into(),
        ]);
    }
    out.push_str(&t.render(st));
    out
}
