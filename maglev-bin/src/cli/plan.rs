//! Rendering what a sync did or a dry run would do: the ops in order, then
//! per VIP its new-flow table and the buckets that move from which AS to
//! which; and the share bars of `show frontend`.

use super::render::{Block, Paint, Style, Table};
use crate::grpc::proto;

/// Characters of a full share bar.
const BAR_WIDTH: usize = 20;

/// A bar of `share` (0..=1) in [`BAR_WIDTH`] characters, `#` filled and
/// `.` empty, so it reads without color or Unicode.
pub fn bar(share: f64) -> String {
    let filled = (share.clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize;
    format!("{}{}", "#".repeat(filled), ".".repeat(BAR_WIDTH - filled))
}

/// A share as a percentage with one decimal.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The text of a sync's reply (`dry_run`: of a PlanSync).
pub fn sync_text(r: &proto::SyncVpplbStateResponse, dry_run: bool, st: Style) -> String {
    if r.ops.is_empty() {
        return if dry_run {
            "VPP already holds the desired state: nothing to send\n".to_owned()
        } else {
            "VPP already holds the desired state\n".to_owned()
        };
    }
    // A server before paging sends no totals: what it lists is all.
    let total = (r.ops_total as usize).max(r.ops.len());
    let mut s = if dry_run {
        format!("dry run: {total} operations would be sent to VPP:\n")
    } else {
        format!("{total} operations sent to VPP:\n")
    };
    for op in &r.ops {
        s.push_str("  ");
        s.push_str(op);
        s.push('\n');
    }
    if r.ops_omitted > 0 {
        s.push_str(&format!(
            "  … and {} more ops ({})\n",
            r.ops_omitted,
            op_counts(r.op_counts.as_ref())
        ));
    }
    for t in &r.tables {
        s.push_str(&table_change_text(t, st));
    }
    if r.tables_omitted > 0 {
        s.push_str(&format!(
            "… and {} more tables (of {})\n",
            r.tables_omitted, r.tables_total
        ));
    }
    s
}

/// Every op by kind, as `"10000 vip adds, 160000 as adds"` (the kinds
/// with none left out).
fn op_counts(c: Option<&proto::OpCounts>) -> String {
    let Some(c) = c else {
        return "kinds not given".to_owned();
    };
    let kinds = [
        (c.vip_adds, "vip adds"),
        (c.vip_deletes, "vip deletes"),
        (c.as_adds, "as adds"),
        (c.as_deletes, "as deletes"),
        (c.as_weights, "as weights"),
    ];
    let text: Vec<String> = kinds
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    format!("of all: {}", text.join(", "))
}

/// One VIP's table change: a summary line, the transfers, the shares after.
fn table_change_text(t: &proto::TableChange, st: Style) -> String {
    let name = if t.frontend.is_empty() {
        t.vip.clone()
    } else {
        format!("{} ({})", t.frontend, t.vip)
    };
    let what = if t.removed {
        format!("removed: its {} buckets go away", t.table_length)
    } else if t.created {
        format!("created with a table of {} buckets", t.table_length)
    } else if t.recreated {
        format!(
            "recreated with a table of {} buckets: every flow moves, established ones too",
            t.table_length
        )
    } else {
        format!(
            "{} of {} buckets move ({} of new flows)",
            t.buckets_moved,
            t.table_length,
            percent(t.moved_share)
        )
    };
    let mut s = format!("{} {name}: {what}\n", st.paint("table", Paint::Label));
    if !t.transfers.is_empty() {
        let mut moves = Table::new(&["FROM", "TO", "BUCKETS"]).indent(2);
        let who = |a: &str| {
            if a.is_empty() {
                "(drop)".to_owned()
            } else {
                backend_of(t, a)
            }
        };
        for x in &t.transfers {
            moves.row(vec![
                who(&x.from).into(),
                who(&x.to).into(),
                x.buckets.to_string().into(),
            ]);
        }
        s.push_str(&moves.render(st));
    }
    if !t.after.is_empty() {
        let mut after = Table::new(&["AS", "BACKEND", "BUCKETS", "SHARE", ""]).indent(2);
        for a in &t.after {
            after.row(vec![
                a.address.clone().into(),
                if a.backend.is_empty() {
                    "-".into()
                } else {
                    a.backend.clone().into()
                },
                a.buckets.to_string().into(),
                percent(a.share).into(),
                bar(a.share).into(),
            ]);
        }
        s.push_str(&after.render(st));
    }
    if t.fingerprint_after != 0 {
        let mut b = Block::new().indent(2);
        b.kv("table-hash", fingerprint(t.fingerprint_after));
        s.push_str(&b.render(st));
    }
    s
}

/// `address (backend)`, with the backend named in the table's shares.
fn backend_of(t: &proto::TableChange, address: &str) -> String {
    t.after
        .iter()
        .find(|a| a.address == address && !a.backend.is_empty())
        .map_or_else(
            || address.to_owned(),
            |a| format!("{address} ({})", a.backend),
        )
}

/// A table fingerprint as twelve hex digits, as `show frontend` prints it
/// (the `maglev_vpp_lb_table_hash` gauge carries the same number).
pub fn fingerprint(f: u64) -> String {
    format!("{f:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_percentages() {
        assert_eq!(bar(0.0), ".".repeat(20));
        assert_eq!(bar(1.0), "#".repeat(20));
        assert_eq!(bar(0.5), format!("{}{}", "#".repeat(10), ".".repeat(10)));
        assert_eq!(bar(7.0), "#".repeat(20));
        assert_eq!(percent(1.0 / 3.0), "33.3%");
        assert_eq!(fingerprint(0xb875_ebc9_92b1), "b875ebc992b1");
    }

    #[test]
    fn a_dry_run_says_what_moves_where() {
        let r = proto::SyncVpplbStateResponse {
            ops: vec!["set as 10.0.0.2 weight 0 on 192.0.2.1/32 tcp/80".into()],
            tables: vec![proto::TableChange {
                frontend: "web".into(),
                vip: "192.0.2.1/32 tcp/80".into(),
                table_length: 1024,
                buckets_moved: 512,
                moved_share: 0.5,
                transfers: vec![proto::BucketTransfer {
                    from: "10.0.0.2".into(),
                    to: "10.0.0.1".into(),
                    buckets: 512,
                }],
                after: vec![
                    proto::AsShare {
                        address: "10.0.0.1".into(),
                        backend: "a".into(),
                        buckets: 1024,
                        share: 1.0,
                    },
                    proto::AsShare {
                        address: "10.0.0.2".into(),
                        backend: "b".into(),
                        buckets: 0,
                        share: 0.0,
                    },
                ],
                fingerprint_after: 0xabc,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = sync_text(&r, true, Style { color: false });
        assert!(
            text.starts_with("dry run: 1 operations would be sent"),
            "{text}"
        );
        assert!(
            text.contains(
                "web (192.0.2.1/32 tcp/80): 512 of 1024 buckets move (50.0% of new flows)"
            ),
            "{text}"
        );
        assert!(text.contains("10.0.0.2 (b)  10.0.0.1 (a)  512"), "{text}");
        assert!(text.contains("table-hash"), "{text}");
    }

    #[test]
    fn a_bounded_reply_says_how_many_more_ops_and_of_which_kind() {
        let r = proto::SyncVpplbStateResponse {
            ops: vec!["add vip 192.0.2.1/32 tcp/80".into()],
            ops_total: 170_000,
            ops_omitted: 169_999,
            tables_total: 10_000,
            tables_omitted: 10_000,
            op_counts: Some(proto::OpCounts {
                vip_adds: 10_000,
                as_adds: 160_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = sync_text(&r, false, Style { color: false });
        assert!(
            text.starts_with("170000 operations sent to VPP:\n"),
            "{text}"
        );
        assert!(
            text.contains("  … and 169999 more ops (of all: 10000 vip adds, 160000 as adds)\n"),
            "{text}"
        );
        assert!(
            text.contains("… and 10000 more tables (of 10000)"),
            "{text}"
        );
    }
}
