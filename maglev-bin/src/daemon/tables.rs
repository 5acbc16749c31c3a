//! The new-flow tables VPP holds, as the reconciler predicts them: per VIP
//! its buckets per AS and fingerprint, and the drift between that
//! prediction and VPP's own `num_buckets` at the last read.
//!
//! The reconciler hands it an [`Update`] after every batch that applied
//! ops and after every read of VPP's state, and goes on: building tables
//! (tens of µs per VIP) is done by a task of its own ([`run`]), in order,
//! off the path from a probe to VPP. So readers (`show frontend`,
//! `/metrics`) see a table a moment after VPP got it; they take a copy of
//! one VIP's entry or of the fingerprints and never build a table
//! themselves. The task also counts the buckets applied ops moved and
//! warns when VPP's buckets differ from the prediction.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use maglev_core::dataplane::{ObservedState, ObservedVip, VipKey};
use maglev_core::plan::Op;
use maglev_core::prediction::{TableChange, TableSummary, table_changes};
use maglev_vpp::lb::ops::LbSnapshot;
use tokio::sync::mpsc;

use crate::daemon::handle::Handle;

/// Updates that may wait for the task before the reconciler waits for it.
const UPDATE_QUEUE: usize = 1024;

/// What the reconciler saw or did.
#[derive(Debug)]
pub(crate) enum Update {
    /// It read VPP's state.
    Read(LbSnapshot),
    /// VPP accepted `done`, planned against `before` (the touched
    /// prefixes); `after` is the belief they left on those prefixes, `None`
    /// when the belief was dropped (the next read brings the tables).
    Applied {
        before: ObservedState,
        done: Vec<Op>,
        after: Option<ObservedState>,
    },
}

/// One VIP's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipTable {
    /// The prediction from the ASes and weights VPP holds.
    pub summary: TableSummary,
    /// At the last read of VPP: the sum over its ASes of |predicted −
    /// reported buckets|; `None` before the first read of this VIP.
    pub drift: Option<u32>,
    /// The VIP the prediction was built from, to skip unchanged ones.
    source: ObservedVip,
}

/// Every VIP's table.
#[derive(Debug)]
pub struct Tables {
    vips: Mutex<BTreeMap<VipKey, VipTable>>,
    queue: mpsc::Sender<Update>,
    pending: Mutex<Option<mpsc::Receiver<Update>>>,
}

impl Default for Tables {
    fn default() -> Self {
        let (queue, pending) = mpsc::channel(UPDATE_QUEUE);
        Tables {
            vips: Mutex::default(),
            queue,
            pending: Mutex::new(Some(pending)),
        }
    }
}

/// Applies the reconciler's updates, in order, until the daemon stops.
pub(crate) async fn run(handle: Handle) {
    let shared = &handle.shared;
    let taken = shared
        .tables
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(mut updates) = taken else {
        return;
    };
    loop {
        let update = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            u = updates.recv() => u,
        };
        let Some(update) = update else {
            return;
        };
        // A read of 10,000 VIPs builds their tables for seconds of CPU:
        // off the async workers, and abandoned (not waited for) when the
        // daemon stops.
        let work = {
            let handle = handle.clone();
            move || apply(&handle, update)
        };
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            _ = tokio::task::spawn_blocking(work) => {}
        }
    }
}

/// Applies one update (CPU only, on a blocking thread).
fn apply(handle: &Handle, update: Update) {
    let shared = &handle.shared;
    let config = handle.config();
    let frontend_of = |key: &VipKey| crate::daemon::views::frontend_of(&config, key);
    match update {
        Update::Read(snapshot) => {
            let drift = snapshot.bucket_drift();
            for (key, off) in drift.iter().filter(|(_, off)| **off > 0) {
                let frontend = frontend_of(key);
                tracing::warn!(
                    vip = %key,
                    frontend = frontend.as_deref().unwrap_or(""),
                    drift = off,
                    "VPP's new-flow table differs from the prediction"
                );
            }
            shared.tables.read(&snapshot.observed(), &drift);
        }
        Update::Applied {
            before,
            done,
            after,
        } => {
            let changes = table_changes(&before, &done);
            for change in &changes {
                if let Some(frontend) = frontend_of(&change.key) {
                    shared
                        .metrics
                        .buckets_moved(&frontend, change.movement.moved as u64);
                }
            }
            if let Some(after) = after {
                shared.tables.changed(&changes, &after);
            }
        }
    }
}

impl Tables {
    /// Queues an update for [`run`]; waits only if it is far behind.
    pub(crate) async fn update(&self, update: Update) {
        // Closed only once the daemon stops.
        let _ = self.queue.send(update).await;
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<VipKey, VipTable>> {
        self.vips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a read of VPP: `observed` is everything VPP holds and `drift`
    /// what its buckets said of the prediction. VIPs VPP no longer holds
    /// are forgotten.
    pub(crate) fn read(&self, observed: &ObservedState, drift: &BTreeMap<VipKey, u32>) {
        let mut vips = self.lock();
        vips.retain(|k, _| observed.contains_key(k));
        for (key, vip) in observed {
            let drift = drift.get(key).copied();
            match vips.get_mut(key) {
                Some(t) if t.source == *vip => t.drift = drift,
                _ => {
                    if let Ok(table) = vip.table() {
                        vips.insert(
                            *key,
                            VipTable {
                                summary: TableSummary::of(vip, &table),
                                drift,
                                source: vip.clone(),
                            },
                        );
                    }
                }
            }
        }
    }

    /// After applied ops: `changes` are their table changes and `observed`
    /// the state they left (the reconciler's belief).
    pub(crate) fn changed(&self, changes: &[TableChange], observed: &ObservedState) {
        let mut vips = self.lock();
        for change in changes {
            match (&change.after, observed.get(&change.key)) {
                (Some(summary), Some(vip)) => {
                    let drift = vips.get(&change.key).and_then(|t| t.drift);
                    vips.insert(
                        change.key,
                        VipTable {
                            summary: summary.clone(),
                            // Not re-read yet: what the last read said.
                            drift,
                            source: vip.clone(),
                        },
                    );
                }
                _ => {
                    vips.remove(&change.key);
                }
            }
        }
    }

    /// One VIP's table, if VPP holds it.
    pub fn get(&self, key: &VipKey) -> Option<VipTable> {
        self.lock().get(key).cloned()
    }

    /// Per VIP: its fingerprint and last drift, in key order.
    pub fn fingerprints(&self) -> Vec<(VipKey, u64, Option<u32>)> {
        self.lock()
            .iter()
            .map(|(k, t)| (*k, t.summary.fingerprint, t.drift))
            .collect()
    }
}
