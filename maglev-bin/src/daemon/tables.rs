//! The new-flow tables VPP holds, as the reconciler predicts them: per VIP
//! its buckets per AS and fingerprint, and the drift between that
//! prediction and VPP's own `num_buckets` at the last read.
//!
//! The reconciler keeps it current: after every batch for the VIPs its
//! applied ops changed ([`Tables::changed`]), and after every read of VPP's
//! state for all of them ([`Tables::read`]). Readers (`show frontend`,
//! `/metrics`) take a copy of one VIP's entry or of the fingerprints; they
//! never build a table themselves.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use maglev_core::dataplane::{ObservedState, ObservedVip, VipKey};
use maglev_core::prediction::{TableChange, TableSummary};

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
#[derive(Debug, Default)]
pub struct Tables {
    vips: Mutex<BTreeMap<VipKey, VipTable>>,
}

impl Tables {
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
