//! The VPP-change events of an applied plan: one per op for a small plan
//! (an operator's change, a transition), and above [`PER_OP_EVENTS`] ops
//! one summary with the totals per op kind instead (one for the ops done,
//! one for the ops VPP refused), as the log lines of a plan are
//! aggregated. A full sync of 10,000 VIPs × 16 is about 170,000 ops:
//! every watcher would otherwise receive (and the hub hold) each of them.
//!
//! **Invariant:** a plan publishes at most [`PER_OP_EVENTS`] events, or
//! at most two summaries.

use std::sync::Arc;

use maglev_core::dataplane::VipKey;
use maglev_core::plan::Op;
use maglev_vpp::lb::apply::ApplyReport;

use crate::events::VppChange;

/// Above this many ops (done and failed), a plan's events are summaries.
pub const PER_OP_EVENTS: usize = 100;

/// The `kind` of a summary event.
pub const SUMMARY_KIND: &str = "summary";

/// The totals of a plan summarised in one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpTotals {
    /// The ops it covers.
    pub ops: u64,
    /// VIPs added.
    pub vip_added: u64,
    /// VIPs removed.
    pub vip_removed: u64,
    /// ASes added.
    pub as_added: u64,
    /// ASes removed.
    pub as_removed: u64,
    /// AS weights set.
    pub as_weight_updated: u64,
    /// For the refused ops: the ops not sent after an earlier failure of
    /// their VIP; 0 for the ops done.
    pub skipped: u64,
}

impl OpTotals {
    fn of<'a>(ops: impl Iterator<Item = &'a Op>) -> OpTotals {
        let mut t = OpTotals::default();
        for op in ops {
            t.ops += 1;
            *match op {
                Op::CreateVip { .. } => &mut t.vip_added,
                Op::DeleteVip { .. } => &mut t.vip_removed,
                Op::AddAs { .. } => &mut t.as_added,
                Op::DeleteAs { .. } => &mut t.as_removed,
                Op::SetWeight { .. } => &mut t.as_weight_updated,
            } += 1;
        }
        t
    }

    /// The totals as the summary's `op` text, for clients that do not
    /// know the summary field: `170000 ops: 10000 vip_added, 160000
    /// as_added`.
    fn text(&self) -> String {
        let parts: Vec<String> = [
            ("vip_added", self.vip_added),
            ("vip_removed", self.vip_removed),
            ("as_added", self.as_added),
            ("as_removed", self.as_removed),
            ("as_weight_updated", self.as_weight_updated),
            ("skipped", self.skipped),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
        format!("{} ops: {}", self.ops, parts.join(", "))
    }
}

/// The events of `report`, a sync of `scope` (`all` or `vip`), with
/// `frontend_of` naming the configured frontend of a VIP.
pub fn changes(
    report: &ApplyReport,
    scope: &'static str,
    frontend_of: &dyn Fn(&VipKey) -> Option<Arc<str>>,
) -> Vec<VppChange> {
    if report.done.len() + report.failed.len() <= PER_OP_EVENTS {
        let done = report.done.iter().map(|op| VppChange {
            frontend: frontend_of(&op.vip()),
            kind: op.kind(),
            op: op.to_string(),
            scope,
            error: None,
            summary: None,
        });
        let failed = report.failed.iter().map(|f| VppChange {
            frontend: frontend_of(&f.op.vip()),
            kind: f.op.kind(),
            op: f.op.to_string(),
            scope,
            error: Some(f.error.to_string()),
            summary: None,
        });
        return done.chain(failed).collect();
    }
    let mut events = Vec::new();
    if !report.done.is_empty() {
        let totals = OpTotals::of(report.done.iter());
        events.push(VppChange {
            frontend: None,
            kind: SUMMARY_KIND,
            op: totals.text(),
            scope,
            error: None,
            summary: Some(totals),
        });
    }
    if let Some(first) = report.failed.first() {
        let totals = OpTotals {
            skipped: report.skipped.len() as u64,
            ..OpTotals::of(report.failed.iter().map(|f| &f.op))
        };
        let frontend = frontend_of(&first.op.vip());
        events.push(VppChange {
            frontend: None,
            kind: SUMMARY_KIND,
            op: totals.text(),
            scope,
            error: Some(format!(
                "{} ops refused; the first: {} (frontend {}): {}",
                totals.ops,
                first.op,
                frontend.as_deref().unwrap_or("none"),
                first.error
            )),
            summary: Some(totals),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use maglev_core::dataplane::Encap;
    use maglev_vpp::lb::apply::ApplyError;

    use super::*;

    fn plan(vips: u8, ases: u8) -> Vec<Op> {
        let mut ops = Vec::new();
        for v in 0..vips {
            let key = VipKey {
                address: [192, 0, 2, v].into(),
                prefix_len: 32,
                protocol: 6,
                port: 80,
            };
            ops.push(Op::CreateVip {
                table_len: 1024,
                key,
                encap: Encap::Gre4,
                src_ip_sticky: false,
            });
            for a in 0..ases {
                ops.push(Op::AddAs {
                    vip: key,
                    address: [10, 0, v, a].into(),
                    weight: 100,
                });
            }
        }
        ops
    }

    fn refused(ops: Vec<Op>) -> Vec<ApplyError> {
        ops.into_iter()
            .enumerate()
            .map(|(index, op)| ApplyError {
                index,
                op,
                error: maglev_vpp::lb::error::LbError::from(maglev_vpp::Error::Retval {
                    message: "lb_add_del_as_v2",
                    retval: maglev_vpp::Retval::NO_SUCH_ENTRY,
                }),
            })
            .collect()
    }

    fn web(_: &VipKey) -> Option<Arc<str>> {
        Some(Arc::from("web"))
    }

    #[test]
    fn a_small_plan_publishes_each_op() {
        let report = ApplyReport {
            done: plan(1, 16),
            failed: refused(plan(1, 1).split_off(1)),
            ..ApplyReport::default()
        };
        let events = changes(&report, "vip", &web);
        assert_eq!(events.len(), 18);
        assert!(events.iter().all(|e| e.summary.is_none()));
        assert_eq!(events[0].kind, "vip_added");
        assert_eq!(events[0].frontend.as_deref(), Some("web"));
        assert_eq!(events[1].kind, "as_added");
        assert!(events[17].error.is_some());
    }

    #[test]
    fn a_large_plan_publishes_its_totals() {
        // 250 VIPs × 16 ASes (4,250 ops), the last 100 refused (5 VIPs and
        // 95 ASes), 7 skipped.
        let mut done = plan(250, 16);
        let failed = done.split_off(done.len() - 100);
        let skipped = plan(1, 6);
        let report = ApplyReport {
            done,
            failed: refused(failed),
            skipped,
        };
        let events = changes(&report, "all", &web);
        assert_eq!(events.len(), 2, "{events:?}");
        let done = &events[0];
        assert_eq!((done.kind, done.scope), (SUMMARY_KIND, "all"));
        assert_eq!(done.frontend, None);
        assert_eq!(done.error, None);
        assert_eq!(
            done.summary,
            Some(OpTotals {
                ops: 4150,
                vip_added: 245,
                as_added: 3905,
                ..OpTotals::default()
            })
        );
        assert_eq!(done.op, "4150 ops: 245 vip_added, 3905 as_added");
        let failed = &events[1];
        assert_eq!(
            failed.summary,
            Some(OpTotals {
                ops: 100,
                vip_added: 5,
                as_added: 95,
                skipped: 7,
                ..OpTotals::default()
            })
        );
        assert_eq!(
            failed.error.as_deref(),
            Some(
                "100 ops refused; the first: add as 10.0.244.1 weight 100 to 192.0.2.244/32 \
                 tcp/80 (frontend web): lb_add_del_as_v2: VPP returned -6 (no such entry)"
            )
        );
    }
}
