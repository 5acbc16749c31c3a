//! The log lines of an applied plan: one line per op for a small plan
//! (an operator's change, one transition), one summary with totals per op
//! kind above [`PER_OP_LINES`] (a cold sync of thousands of VIPs would
//! otherwise write tens of thousands of INFO lines in seconds).
//!
//! Per-op events (`EventKind::Vpp`, the watch stream) and metrics are not
//! affected: only the log lines are aggregated.
//!
//! **Invariant:** every plan writes at most `PER_OP_LINES` per-op lines,
//! or one summary line for its done ops and one for its failed ops.
//!
//! [`Aggregate`] does the same for the per-frontend lines of one pass
//! (`frontend-transition` of daemon::watch, `active-pool` of
//! daemon::pools): each its own line up to [`PER_OP_LINES`], else one
//! summary with totals.

use std::collections::BTreeMap;
use std::sync::Arc;

use maglev_core::dataplane::VipKey;
use maglev_core::plan::Op;
use maglev_vpp::lb::apply::ApplyReport;

/// Above this many ops (done and failed), a plan's ops are logged as a
/// summary.
pub(crate) const PER_OP_LINES: usize = 20;

/// The op kinds, in the order their totals are logged.
const KINDS: [&str; 5] = [
    "vip_added",
    "vip_removed",
    "as_added",
    "as_removed",
    "as_weight_updated",
];

/// The lines of one pass over many frontends: held while few, counted by
/// a key (e.g. `up->down`) once there are more than [`PER_OP_LINES`].
#[derive(Debug)]
pub(crate) struct Aggregate<T> {
    held: Vec<T>,
    totals: BTreeMap<String, usize>,
    count: usize,
}

impl<T> Default for Aggregate<T> {
    fn default() -> Self {
        Aggregate {
            held: Vec::new(),
            totals: BTreeMap::new(),
            count: 0,
        }
    }
}

impl<T> Aggregate<T> {
    /// Notes one line's `item`, counted under `key`.
    pub(crate) fn note(&mut self, item: T, key: impl FnOnce(&T) -> String) {
        self.count += 1;
        *self.totals.entry(key(&item)).or_default() += 1;
        if self.count <= PER_OP_LINES {
            self.held.push(item);
        } else {
            self.held = Vec::new();
        }
    }

    /// Writes the lines: `each` for every item while there are at most
    /// [`PER_OP_LINES`], else `summary(count, totals)` once, the totals
    /// as `key: n, ...`.
    pub(crate) fn finish(self, each: impl Fn(&T), summary: impl FnOnce(usize, &str)) {
        if self.count <= PER_OP_LINES {
            self.held.iter().for_each(each);
            return;
        }
        let totals = self
            .totals
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        summary(self.count, &totals);
    }
}

/// Totals per op kind, in [`KINDS`] order.
fn totals<'a>(ops: impl Iterator<Item = &'a Op>) -> [usize; 5] {
    let mut t = [0; 5];
    for op in ops {
        if let Some(i) = KINDS.iter().position(|k| *k == op.kind()) {
            t[i] += 1;
        }
    }
    t
}

/// Logs what `report` did, for a sync of `scope` (`all` or `vip`).
pub(crate) fn log(
    report: &ApplyReport,
    scope: &'static str,
    frontend_of: &dyn Fn(&VipKey) -> Option<Arc<str>>,
) {
    if report.done.len() + report.failed.len() <= PER_OP_LINES {
        for op in &report.done {
            let frontend = frontend_of(&op.vip());
            tracing::info!(
                op = %op,
                frontend = frontend.as_deref().unwrap_or(""),
                scope,
                "vpp-lbsync"
            );
        }
        for f in &report.failed {
            let frontend = frontend_of(&f.op.vip());
            tracing::warn!(
                op = %f.op,
                frontend = frontend.as_deref().unwrap_or(""),
                error = %f.error,
                scope,
                "VPP refused an op; the frontend stays dirty"
            );
        }
        return;
    }
    if !report.done.is_empty() {
        let [
            vip_added,
            vip_removed,
            as_added,
            as_removed,
            as_weight_updated,
        ] = totals(report.done.iter());
        tracing::info!(
            ops = report.done.len(),
            vip_added,
            vip_removed,
            as_added,
            as_removed,
            as_weight_updated,
            scope,
            "vpp-lbsync (summary: more than {PER_OP_LINES} ops)"
        );
    }
    if let Some(first) = report.failed.first() {
        let [
            vip_added,
            vip_removed,
            as_added,
            as_removed,
            as_weight_updated,
        ] = totals(report.failed.iter().map(|f| &f.op));
        let frontend = frontend_of(&first.op.vip());
        tracing::warn!(
            failed = report.failed.len(),
            skipped = report.skipped.len(),
            vip_added,
            vip_removed,
            as_added,
            as_removed,
            as_weight_updated,
            first_op = %first.op,
            first_frontend = frontend.as_deref().unwrap_or(""),
            first_error = %first.error,
            scope,
            "VPP refused ops; their frontends stay dirty (summary)"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use maglev_core::dataplane::Encap;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Counts the records it sees.
    struct Count(Arc<Mutex<usize>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            *self.0.lock().unwrap() += 1;
        }
    }

    fn lines(report: &ApplyReport) -> usize {
        let n = Arc::new(Mutex::new(0));
        let subscriber = tracing_subscriber::registry().with(Count(n.clone()));
        tracing::subscriber::with_default(subscriber, || log(report, "all", &|_| None));
        *n.lock().unwrap()
    }

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

    #[test]
    fn small_plans_log_each_op_big_ones_a_summary() {
        let small = ApplyReport {
            done: plan(1, 16),
            ..ApplyReport::default()
        };
        assert_eq!(lines(&small), 17);
        let big = ApplyReport {
            done: plan(100, 16),
            ..ApplyReport::default()
        };
        assert_eq!(lines(&big), 1);
        let mut failed = plan(100, 16);
        let last = failed.split_off(1000);
        let broken = ApplyReport {
            done: failed,
            failed: last
                .into_iter()
                .enumerate()
                .map(|(index, op)| maglev_vpp::lb::apply::ApplyError {
                    index,
                    op,
                    error: maglev_vpp::lb::error::LbError::from(maglev_vpp::Error::Retval {
                        message: "lb_add_del_as_v2",
                        retval: maglev_vpp::Retval::NO_SUCH_ENTRY,
                    }),
                })
                .collect(),
            skipped: Vec::new(),
        };
        assert_eq!(lines(&broken), 2);
    }
}
