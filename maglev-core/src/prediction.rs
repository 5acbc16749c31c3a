//! What a plan does to each VIP's new-flow table: the table before and
//! after, and the buckets that move from which AS to which.
//!
//! One function, [`table_changes`], serves the real sync (over the ops VPP
//! accepted, to count moved buckets) and the dry run (over the planned
//! ops, to show them before anything is sent): both play the ops on the
//! state they were planned against with [`simulate`], so a dry run and the
//! sync that follows it report the same movement.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::dataplane::{ObservedState, ObservedVip, VipKey};
use crate::maglev::{MaglevTable, Movement};
use crate::plan::{Op, simulate};

/// One VIP's table as predicted from its ASes and weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// Buckets in the table.
    pub len: u32,
    /// [`MaglevTable::fingerprint`] of the table.
    pub fingerprint: u64,
    /// Buckets per AS, every live AS included (0 for weight 0).
    pub buckets: BTreeMap<IpAddr, u32>,
}

impl TableSummary {
    /// The summary of `table`, listing every AS of `vip` (also those with
    /// no bucket).
    pub fn of(vip: &ObservedVip, table: &MaglevTable) -> TableSummary {
        let counts = table.counts();
        TableSummary {
            len: vip.table_len,
            fingerprint: table.fingerprint(),
            buckets: vip
                .ases
                .keys()
                .map(|a| (*a, counts.get(a).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// The share of new flows `address` gets (0.0..=1.0).
    pub fn share(&self, address: IpAddr) -> f64 {
        let n = self.buckets.get(&address).copied().unwrap_or(0);
        if self.len == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(self.len)
        }
    }
}

/// What a plan does to one VIP's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange {
    /// The VIP.
    pub key: VipKey,
    /// Its table before the plan; `None` if the VIP did not exist.
    pub before: Option<TableSummary>,
    /// Its table after the plan; `None` if the plan removes the VIP.
    pub after: Option<TableSummary>,
    /// The buckets that move. A created VIP moves none (no flow went to it
    /// before); a removed one moves all of its buckets; a recreated one
    /// ([`Movement::recreated`]) all of them, established flows included.
    pub movement: Movement,
}

/// The table change of every VIP `ops` touch, in key order, with the ops
/// played on `before` (the state they were planned against). An op the
/// model refuses is skipped, as VPP would refuse it.
pub fn table_changes(before: &ObservedState, ops: &[Op]) -> Vec<TableChange> {
    let keys: BTreeSet<VipKey> = ops.iter().map(Op::vip).collect();
    let recreated: BTreeSet<VipKey> = ops
        .iter()
        .filter_map(|op| match op {
            Op::DeleteVip { key } => Some(*key),
            _ => None,
        })
        .collect();
    // Only the touched prefixes are read by `simulate`.
    let mut after: ObservedState = keys
        .iter()
        .flat_map(|k| before.range(k.prefix_range()))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    for op in ops {
        let _ = simulate(&mut after, op);
    }
    keys.into_iter()
        .map(|key| {
            let old = before.get(&key).and_then(|v| Some((v, v.table().ok()?)));
            let new = after.get(&key).and_then(|v| Some((v, v.table().ok()?)));
            let movement = match (&old, &new) {
                (Some((_, a)), Some((_, b))) => {
                    let mut m = a.movement(b);
                    if recreated.contains(&key) && !m.recreated {
                        m.recreated = true;
                        m.moved = m.len;
                    }
                    m
                }
                (Some((_, a)), None) => Movement {
                    len: a.len(),
                    moved: a.len(),
                    recreated: false,
                    transfers: BTreeMap::new(),
                },
                (None, Some((_, b))) => Movement {
                    len: b.len(),
                    ..Movement::default()
                },
                (None, None) => Movement::default(),
            };
            TableChange {
                key,
                before: old.map(|(v, t)| TableSummary::of(v, &t)),
                after: new.map(|(v, t)| TableSummary::of(v, &t)),
                movement,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::Encap;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn vip(table_len: u32, ases: &[(&str, u8)]) -> ObservedVip {
        ObservedVip {
            key: VipKey::host(ip("192.0.2.1"), None, 0),
            encap: Encap::Gre4,
            table_len,
            src_ip_sticky: false,
            ases: ases.iter().map(|(a, w)| (ip(a), *w)).collect(),
        }
    }

    fn state(v: ObservedVip) -> ObservedState {
        [(v.key, v)].into_iter().collect()
    }

    #[test]
    fn a_drain_moves_the_drained_buckets_to_the_others() {
        let before = state(vip(1024, &[("10.0.0.1", 100), ("10.0.0.2", 100)]));
        let key = *before.keys().next().unwrap();
        let ops = [Op::SetWeight {
            vip: key,
            address: ip("10.0.0.2"),
            weight: 0,
            flush: false,
        }];
        let [change] = table_changes(&before, &ops).try_into().unwrap();
        let had = change.before.as_ref().unwrap().buckets[&ip("10.0.0.2")];
        assert_eq!(change.movement.moved, had as usize);
        assert_eq!(
            change.movement.transfers,
            [((Some(ip("10.0.0.2")), Some(ip("10.0.0.1"))), had)].into()
        );
        let after = change.after.unwrap();
        assert_eq!(after.buckets[&ip("10.0.0.1")], 1024);
        assert_eq!(after.buckets[&ip("10.0.0.2")], 0);
        assert_eq!(after.share(ip("10.0.0.1")), 1.0);
    }

    #[test]
    fn created_removed_and_recreated_vips() {
        let v = vip(1024, &[("10.0.0.1", 100)]);
        let key = v.key;
        let create = [
            Op::CreateVip {
                key,
                encap: Encap::Gre4,
                table_len: 1024,
                src_ip_sticky: false,
            },
            Op::AddAs {
                vip: key,
                address: ip("10.0.0.1"),
                weight: 100,
            },
        ];
        let [c] = table_changes(&ObservedState::new(), &create)
            .try_into()
            .unwrap();
        assert!(c.before.is_none() && c.after.is_some());
        assert_eq!((c.movement.moved, c.movement.recreated), (0, false));

        let remove = [
            Op::DeleteAs {
                vip: key,
                address: ip("10.0.0.1"),
                flush: true,
            },
            Op::DeleteVip { key },
        ];
        let [r] = table_changes(&state(v.clone()), &remove)
            .try_into()
            .unwrap();
        assert!(r.after.is_none());
        assert_eq!(r.movement.moved, 1024);

        let mut recreate = remove.to_vec();
        recreate.push(Op::CreateVip {
            key,
            encap: Encap::Gre4,
            table_len: 4096,
            src_ip_sticky: false,
        });
        recreate.push(Op::AddAs {
            vip: key,
            address: ip("10.0.0.1"),
            weight: 100,
        });
        let [x] = table_changes(&state(v), &recreate).try_into().unwrap();
        assert!(x.movement.recreated);
        assert_eq!(x.movement.moved, 4096);
        assert_eq!(x.after.unwrap().len, 4096);
    }
}
