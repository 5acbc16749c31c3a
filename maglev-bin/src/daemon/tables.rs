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
use std::net::IpAddr;
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

/// One VIP's table, as readers get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipTable {
    /// The prediction from the ASes and weights VPP holds.
    pub summary: TableSummary,
    /// At the last read of VPP: the sum over its ASes of |predicted −
    /// reported buckets|; `None` before the first read of this VIP.
    pub drift: Option<u32>,
}

/// One VIP's table as kept: what [`VipTable`] says, with the AS weights it
/// was built from (to skip unchanged VIPs), in one boxed slice. At 16 ASes
/// that is about 430 bytes a VIP, where a [`TableSummary`] and the
/// [`ObservedVip`] it came from, kept whole, took about 1,600 (two
/// `BTreeMap`s; issue 25).
#[derive(Debug)]
struct Kept {
    len: u32,
    fingerprint: u64,
    drift: Option<u32>,
    /// Every AS of the VIP, in address order (`IpAddr`'s, as the
    /// `BTreeMap` of an [`ObservedVip`]).
    ases: Box<[KeptAs]>,
}

/// One AS of a [`Kept`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeptAs {
    address: IpAddr,
    /// Its weight in VPP: the prediction's input.
    weight: u8,
    /// Its buckets in the prediction.
    buckets: u32,
}

impl Kept {
    /// `summary`, predicted from `vip`, and the drift of the last read.
    fn new(summary: &TableSummary, vip: &ObservedVip, drift: Option<u32>) -> Kept {
        Kept {
            len: summary.len,
            fingerprint: summary.fingerprint,
            drift,
            ases: vip
                .ases
                .iter()
                .map(|(&address, &weight)| KeptAs {
                    address,
                    weight,
                    buckets: summary.buckets.get(&address).copied().unwrap_or(0),
                })
                .collect(),
        }
    }

    /// Whether the prediction was built from what `vip` holds (the table
    /// depends on nothing else: its length and the ASes' weights).
    fn built_from(&self, vip: &ObservedVip) -> bool {
        self.len == vip.table_len
            && self.ases.len() == vip.ases.len()
            && self
                .ases
                .iter()
                .zip(&vip.ases)
                .all(|(k, (a, w))| k.address == *a && k.weight == *w)
    }

    /// The buckets the prediction gives `address` (0 if it is no AS).
    fn buckets_of(&self, address: IpAddr) -> u32 {
        self.ases
            .binary_search_by_key(&address, |a| a.address)
            .map_or(0, |i| self.ases[i].buckets)
    }

    fn view(&self) -> VipTable {
        VipTable {
            summary: TableSummary {
                len: self.len,
                fingerprint: self.fingerprint,
                buckets: self.ases.iter().map(|a| (a.address, a.buckets)).collect(),
            },
            drift: self.drift,
        }
    }
}

/// Every VIP's table.
#[derive(Debug)]
pub struct Tables {
    vips: Mutex<BTreeMap<VipKey, Kept>>,
    /// Reads of VPP applied so far (the announcer trusts the tables only
    /// after a read that followed VPP's last connect).
    reads: std::sync::atomic::AtomicU64,
    queue: mpsc::Sender<Update>,
    pending: Mutex<Option<mpsc::Receiver<Update>>>,
}

impl Default for Tables {
    fn default() -> Self {
        let (queue, pending) = mpsc::channel(UPDATE_QUEUE);
        Tables {
            vips: Mutex::default(),
            reads: std::sync::atomic::AtomicU64::new(0),
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
            let drift = shared.tables.read(&snapshot);
            shared
                .tables
                .reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for (key, off) in drift.iter().filter(|(_, off)| **off > 0) {
                let frontend = frontend_of(key);
                tracing::warn!(
                    vip = %key,
                    frontend = frontend.as_deref().unwrap_or(""),
                    drift = off,
                    "VPP's new-flow table differs from the prediction"
                );
            }
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
                        .buckets_moved(&frontend, change.movement.moved as u64, || {
                            handle.config().frontend(&frontend).is_some()
                        });
                }
            }
            if let Some(after) = after {
                shared.tables.changed(&changes, &after);
            }
        }
    }
    // What VPP holds may have changed: the announcer looks again.
    shared.announce.wake();
}

impl Tables {
    /// Queues an update for [`run`]; waits only if it is far behind.
    pub(crate) async fn update(&self, update: Update) {
        // Closed only once the daemon stops.
        let _ = self.queue.send(update).await;
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<VipKey, Kept>> {
        self.vips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a read of VPP (`snapshot`): VIPs VPP no longer holds are
    /// forgotten, a table is predicted again only where the ASes' weights
    /// or the length changed, and each VIP's drift is what VPP's buckets
    /// say of the prediction ([`LbSnapshot::bucket_drift`], from the kept
    /// predictions: a periodic read of 10,000 VIPs builds no table).
    /// Returns the drift per VIP.
    pub(crate) fn read(&self, snapshot: &LbSnapshot) -> BTreeMap<VipKey, u32> {
        let observed = snapshot.observed();
        let mut reported: BTreeMap<VipKey, Vec<(IpAddr, u32)>> = BTreeMap::new();
        for a in &snapshot.ases {
            reported
                .entry(a.vip)
                .or_default()
                .push((a.address, a.num_buckets));
        }
        let mut drifts = BTreeMap::new();
        let mut vips = self.lock();
        vips.retain(|k, _| observed.contains_key(k));
        for (key, vip) in &observed {
            if !vips.get(key).is_some_and(|t| t.built_from(vip)) {
                let Ok(table) = vip.table() else {
                    continue;
                };
                let summary = TableSummary::of(vip, &table);
                vips.insert(*key, Kept::new(&summary, vip, None));
            }
            let Some(t) = vips.get_mut(key) else {
                continue;
            };
            let drift = reported
                .get(key)
                .into_iter()
                .flatten()
                .map(|(address, buckets)| t.buckets_of(*address).abs_diff(*buckets))
                .sum();
            t.drift = Some(drift);
            drifts.insert(*key, drift);
        }
        drifts
    }

    /// After applied ops: `changes` are their table changes and `observed`
    /// the state they left (the reconciler's belief).
    pub(crate) fn changed(&self, changes: &[TableChange], observed: &ObservedState) {
        let mut vips = self.lock();
        for change in changes {
            match (&change.after, observed.get(&change.key)) {
                (Some(summary), Some(vip)) => {
                    // Not re-read yet: what the last read said.
                    let drift = vips.get(&change.key).and_then(|t| t.drift);
                    vips.insert(change.key, Kept::new(summary, vip, drift));
                }
                _ => {
                    vips.remove(&change.key);
                }
            }
        }
    }

    /// How many reads of VPP the tables have taken in.
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The VIP addresses VPP holds with at least one AS of non-zero
    /// weight (the announcer's view of what VPP can serve).
    pub(crate) fn serving_addresses(&self) -> std::collections::BTreeSet<IpAddr> {
        self.lock()
            .iter()
            .filter(|(_, t)| t.ases.iter().any(|a| a.weight > 0))
            .map(|(k, _)| k.address)
            .collect()
    }

    /// One VIP's table, if VPP holds it.
    pub fn get(&self, key: &VipKey) -> Option<VipTable> {
        self.lock().get(key).map(Kept::view)
    }

    /// Per VIP: its fingerprint and last drift, in key order.
    pub fn fingerprints(&self) -> Vec<(VipKey, u64, Option<u32>)> {
        self.lock()
            .iter()
            .map(|(k, t)| (*k, t.fingerprint, t.drift))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maglev_core::dataplane::Encap;

    fn vip(weights: &[u8]) -> ObservedVip {
        ObservedVip {
            key: VipKey::host("192.0.2.1".parse().unwrap(), None, 0),
            encap: Encap::Gre4,
            table_len: 1024,
            src_ip_sticky: false,
            ases: weights
                .iter()
                .enumerate()
                .map(|(i, w)| (IpAddr::from([10, 0, 0, i as u8 + 1]), *w))
                .collect(),
        }
    }

    fn kept(v: &ObservedVip) -> Kept {
        let summary = TableSummary::of(v, &v.table().unwrap());
        Kept::new(&summary, v, Some(3))
    }

    #[test]
    fn a_kept_table_reads_back_as_its_summary() {
        let v = vip(&[
            100, 100, 100, 100, 100, 100, 100, 100, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let summary = TableSummary::of(&v, &v.table().unwrap());
        let t = kept(&v).view();
        assert_eq!(t.summary, summary);
        assert_eq!(t.drift, Some(3));
        assert_eq!(t.summary.buckets.len(), 16);
        assert_eq!(t.summary.buckets.values().sum::<u32>(), 1024);
    }

    #[test]
    fn a_table_is_kept_while_the_weights_it_came_from_hold() {
        let v = vip(&[100, 100, 0]);
        let t = kept(&v);
        assert!(t.built_from(&v));
        let mut other_encap = v.clone();
        other_encap.encap = Encap::Gre6;
        assert!(
            t.built_from(&other_encap),
            "the table does not depend on it"
        );
        assert!(!t.built_from(&vip(&[100, 50, 0])));
        assert!(!t.built_from(&vip(&[100, 100])));
        let mut longer = v.clone();
        longer.table_len = 2048;
        assert!(!t.built_from(&longer));
    }

    fn snapshot(vips: &[(ObservedVip, &[i64])]) -> LbSnapshot {
        use maglev_vpp::lb::ops::{AsInfo, VipInfo};
        let mut snap = LbSnapshot::default();
        for (v, off) in vips {
            snap.vips.push(VipInfo {
                key: v.key,
                encap: v.encap,
                src_ip_sticky: v.src_ip_sticky,
                pool_index: 0,
                table_len: v.table_len,
                counters: Default::default(),
            });
            let counts = v.table().unwrap().counts();
            for (i, (a, w)) in v.ases.iter().enumerate() {
                let n = i64::from(counts.get(a).copied().unwrap_or(0));
                snap.ases.push(AsInfo {
                    vip: v.key,
                    address: *a,
                    weight: *w,
                    num_buckets: (n + off.get(i).copied().unwrap_or(0)) as u32,
                });
            }
        }
        snap
    }

    /// A read finds the drift `LbSnapshot::bucket_drift` finds, from the
    /// kept predictions, and builds tables only for changed VIPs.
    #[test]
    fn a_read_finds_the_drift_of_the_kept_predictions() {
        let tables = Tables::default();
        let mut other = vip(&[100, 100, 100]);
        other.key = VipKey::host("192.0.2.2".parse().unwrap(), None, 0);
        let exact = snapshot(&[(vip(&[100, 100, 0]), &[]), (other.clone(), &[])]);
        let drift = tables.read(&exact);
        assert_eq!(drift, exact.bucket_drift());
        assert_eq!(drift.values().copied().collect::<Vec<_>>(), [0, 0]);
        let key = vip(&[]).key;
        assert_eq!(tables.get(&key).unwrap().drift, Some(0));

        // VPP moved 5 buckets from the first AS to the second.
        let off = snapshot(&[(vip(&[100, 100, 0]), &[-5, 5]), (other.clone(), &[])]);
        let drift = tables.read(&off);
        assert_eq!(drift, off.bucket_drift());
        assert_eq!(drift[&key], 10);
        assert_eq!(tables.get(&key).unwrap().drift, Some(10));

        // A weight changed: a new prediction, no drift against it.
        let changed = snapshot(&[(vip(&[100, 50, 0]), &[]), (other.clone(), &[])]);
        assert_eq!(tables.read(&changed), changed.bucket_drift());
        let t = tables.get(&key).unwrap();
        let v = vip(&[100, 50, 0]);
        assert_eq!(t.summary, TableSummary::of(&v, &v.table().unwrap()));
        assert_eq!(t.drift, Some(0));

        // A VIP VPP no longer holds is forgotten.
        let gone = snapshot(&[(other.clone(), &[])]);
        assert_eq!(tables.read(&gone), gone.bucket_drift());
        assert!(tables.get(&key).is_none());
        assert_eq!(tables.fingerprints().len(), 1);
    }

    /// The budget of `docs/performance.md` (Memory): an AS of a kept table
    /// is 24 bytes, a VIP's entry without its ASes at most 48.
    #[test]
    fn a_kept_table_is_compact() {
        assert_eq!(size_of::<KeptAs>(), 24);
        assert!(size_of::<Kept>() <= 48);
        assert!(size_of::<(VipKey, Kept)>() <= 72);
    }
}
