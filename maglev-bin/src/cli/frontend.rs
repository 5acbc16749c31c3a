//! What `show frontend` prints: the frontend, its pools and every
//! member with weights and VPP's buckets.

use std::collections::BTreeMap;

use super::backend::member_state;
use super::exec::{port_name, proto_name};
use super::render::{self, Block, Cell, Paint, Style, Table};
use super::{announce, plan};
use crate::grpc::proto;

/// `show frontend`: the frontend, then each pool with every member.
pub fn frontend_text(
    f: &proto::FrontendInfo,
    buckets: Option<&BTreeMap<String, u32>>,
    st: Style,
) -> String {
    let mut b = Block::new();
    b.kv("name", f.name.as_str())
        .kv("address", f.address.as_str())
        .kv("protocol", proto_name(&f.protocol))
        .kv("port", port_name(f.port))
        .kv("state", Cell::state(&f.state))
        .kv(
            "active-pool",
            if f.active_pool.is_empty() {
                "-"
            } else {
                f.active_pool.as_str()
            },
        )
        .kv("src-ip-sticky", render::yes_no(f.src_ip_sticky))
        .kv("flush-on-down", render::yes_no(f.flush_on_down))
        .kv("encap", f.encap.as_str())
        .kv("released", render::yes_no(f.released));
    if let Some(a) = announce::frontend_cell(f) {
        b.kv("announce", a);
    }
    b.kv(
        "flow-table",
        format!("{} buckets ({})", f.table_length, f.flow_table_length),
    );
    if f.table_fingerprint != 0 {
        b.kv("table-hash", plan::fingerprint(f.table_fingerprint));
    }
    if let Some(drift) = f.buckets_drift {
        b.kv(
            "buckets-drift",
            if drift == 0 {
                "0 (VPP's table is the predicted one)".to_owned()
            } else {
                format!("{drift} (VPP's buckets differ from the prediction)")
            },
        );
    }
    if !f.description.is_empty() {
        b.kv("description", f.description.as_str());
    }
    let mut s = b.render(st);
    for p in &f.pools {
        let active = if p.name == f.active_pool {
            " (active)"
        } else {
            ""
        };
        let thresholds = pool_thresholds(p, st)
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        s.push_str(&format!(
            "{} {}{active}{thresholds}\n",
            st.paint("pool", Paint::Label),
            p.name
        ));
        let mut t = Table::new(&[
            "BACKEND",
            "ADDRESS",
            "STATE",
            "WEIGHT",
            "EFFECTIVE",
            "BUCKETS",
            "SHARE",
            "",
        ])
        .indent(2);
        for m in &p.backends {
            // VPP's own count when it answered, else the prediction.
            let n = buckets
                .and_then(|b| b.get(&m.address).copied())
                .or(m.buckets);
            let (bk, share, bar) = match n {
                Some(n) if f.table_length > 0 => {
                    let share = f64::from(n) / f64::from(f.table_length);
                    (n.to_string(), plan::percent(share), plan::bar(share))
                }
                _ => ("-".to_owned(), "-".to_owned(), String::new()),
            };
            t.row(vec![
                m.name.clone().into(),
                m.address.clone().into(),
                member_state(&m.state, m.suppressed, m.slow_start_step),
                // `*`: an operator's runtime weight (noted below the table).
                if m.weight_override.is_some() {
                    format!("{}*", m.weight).into()
                } else {
                    m.weight.to_string().into()
                },
                m.effective_weight.to_string().into(),
                bk.into(),
                share.into(),
                bar.into(),
            ]);
        }
        s.push_str(&t.render(st));
        for o in p.backends.iter().filter_map(|m| m.weight_override.as_ref()) {
            s.push_str(&format!(
                "  * {}: weight {} set by {} (file says {}; see show overrides)\n",
                o.backend, o.weight, o.by, o.file_weight
            ));
        }
    }
    s
}

/// A pool's serving thresholds, as `min-up 2, return at 5, serving 7`;
/// `None` when they are the defaults (one member, and returning at
/// `min-up`). A pool serving fewer than `min-up` has its count painted
/// like `down`.
pub(super) fn pool_thresholds(p: &proto::PoolInfo, st: Style) -> Option<String> {
    // 0 is an older maglevd that does not send them: the default, 1.
    let min_up = p.min_up.max(1);
    let to_return = p.min_up_to_return.max(min_up);
    if min_up == 1 && to_return == 1 {
        return None;
    }
    let mut s = format!("min-up {min_up}");
    if to_return > min_up {
        s.push_str(&format!(", return at {to_return}"));
    }
    let serving = format!("serving {}", p.serving);
    let paint = if p.serving < min_up {
        Paint::state("down")
    } else {
        Paint::Plain
    };
    s.push_str(&format!(", {}", st.paint(&serving, paint)));
    Some(s)
}
