//! The planner: the ordered VPP operations that turn the observed dataplane
//! into the desired one.
//!
//! The plan is pure and deterministic: the same inputs give the same ops,
//! whatever the order they were built in. Ordering rules:
//!
//! - a full plan first removes VIPs (unknown ones, and those to recreate),
//!   each by deleting its ASes with flush and then the VIP, so a VIP that is
//!   created next never collides with one on the same prefix;
//! - then, for each desired VIP in key order (IPv4 before IPv6, numeric),
//!   it creates the VIP and adds its ASes, or updates the ASes of the
//!   existing one;
//! - AS operations of one VIP are in numeric address order, one per AS.
//!
//! **Invariant:** no plan breaks VPP's prefix rules
//! ([`check_new_vip`]: an all-port VIP is alone on its prefix, the VIPs of
//! a prefix share an encap). A VIP of one frontend's plan ([`plan_vip`])
//! that cannot be created beside the VIPs VPP holds on its prefix takes the
//! conflicting VIPs out first and recreates those still desired; a desired
//! VIP that conflicts with another desired one (config validation refuses
//! such configs) is left out of the plan rather than sent to be refused.
//!
//! A weight is set when it differs. A weight that does not differ is set
//! again only for an AS with a [`PendingFlushes`] request: a backend that
//! just went down or was disabled, or an operator's flush, must tear down
//! its flows even when failover had already drained it to 0. A request is
//! kept until an op that carries it out is reported done, so one made while
//! a frontend is held (warm-up, VPP away, a failed op) is not lost. With no
//! requests, planning again after applying a plan yields nothing.
//!
//! [`simulate`] is the model of how VPP executes each op, prefix rules
//! included; tests use it to check that a plan reaches the desired state,
//! and dry runs to show the result.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::dataplane::{
    DesiredState, DesiredVip, Encap, ObservedState, ObservedVip, PrefixConflict, VipKey,
    check_new_vip,
};

/// Flushes requested and not yet carried out: ASes whose existing flows
/// must be torn down, even if their weight does not change.
///
/// The reconciler records a request when a backend goes down or is
/// disabled, or an operator asks; the planner turns each into a flushing op;
/// [`PendingFlushes::applied`] forgets a request only once such an op is
/// reported done. Requests of ASes no longer desired are dropped by
/// [`PendingFlushes::retain_desired`] (deleting an AS always flushes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingFlushes {
    requests: BTreeSet<(VipKey, IpAddr)>,
}

impl PendingFlushes {
    /// No requests.
    pub fn new() -> PendingFlushes {
        PendingFlushes::default()
    }

    /// Records a request to flush `address` on `vip` (idempotent).
    pub fn request(&mut self, vip: VipKey, address: IpAddr) {
        self.requests.insert((vip, address));
    }

    /// Whether a flush of `address` on `vip` is pending.
    pub fn contains(&self, vip: VipKey, address: IpAddr) -> bool {
        self.requests.contains(&(vip, address))
    }

    /// Forgets the requests carried out by `done`, the ops VPP accepted: a
    /// flushing weight set or AS deletion, or an AS added afresh (it has no
    /// flows yet). Ops that failed or were never sent are not in `done`, so
    /// their requests stay.
    pub fn applied(&mut self, done: &[Op]) {
        for op in done {
            match *op {
                Op::SetWeight {
                    vip,
                    address,
                    flush: true,
                    ..
                }
                | Op::DeleteAs {
                    vip,
                    address,
                    flush: true,
                }
                | Op::AddAs { vip, address, .. } => {
                    self.requests.remove(&(vip, address));
                }
                _ => {}
            }
        }
    }

    /// Drops the requests of ASes that `desired` no longer holds (a backend
    /// or frontend removed from the config): the planner deletes those ASes
    /// with flush anyway.
    pub fn retain_desired(&mut self, desired: &DesiredState) {
        self.requests.retain(|(vip, address)| {
            desired
                .get(vip)
                .is_some_and(|d| d.ases.contains_key(address))
        });
    }

    /// The pending requests, in key and address order.
    pub fn iter(&self) -> impl Iterator<Item = (VipKey, IpAddr)> + '_ {
        self.requests.iter().copied()
    }

    /// The number of pending requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether no flush is pending.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

impl FromIterator<(VipKey, IpAddr)> for PendingFlushes {
    fn from_iter<I: IntoIterator<Item = (VipKey, IpAddr)>>(iter: I) -> Self {
        PendingFlushes {
            requests: iter.into_iter().collect(),
        }
    }
}

/// One operation on VPP's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create a VIP (`lb_add_del_vip_v2`).
    CreateVip {
        /// The VIP.
        key: VipKey,
        /// Its encapsulation.
        encap: Encap,
        /// Buckets of its new-flow table (`new_flows_table_length`).
        table_len: u32,
        /// Source-IP stickiness.
        src_ip_sticky: bool,
    },
    /// Delete a VIP that has no ASes left.
    DeleteVip {
        /// The VIP.
        key: VipKey,
    },
    /// Add an AS with a weight (`lb_add_del_as_v2`).
    AddAs {
        /// The VIP.
        vip: VipKey,
        /// The AS address.
        address: IpAddr,
        /// Its weight.
        weight: u8,
    },
    /// Delete an AS (`lb_add_del_as_v2` with `is_del`).
    DeleteAs {
        /// The VIP.
        vip: VipKey,
        /// The AS address.
        address: IpAddr,
        /// Tear down its existing flows.
        flush: bool,
    },
    /// Set an AS's weight (`lb_as_set_weight`).
    SetWeight {
        /// The VIP.
        vip: VipKey,
        /// The AS address.
        address: IpAddr,
        /// The new weight.
        weight: u8,
        /// Tear down its existing flows.
        flush: bool,
    },
}

impl Op {
    /// The VIP this op works on.
    pub fn vip(&self) -> VipKey {
        match *self {
            Op::CreateVip { key, .. } | Op::DeleteVip { key } => key,
            Op::AddAs { vip, .. } | Op::DeleteAs { vip, .. } | Op::SetWeight { vip, .. } => vip,
        }
    }

    /// The counter kind of this op in `maglev_vpp_lbsync_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateVip { .. } => "vip_added",
            Op::DeleteVip { .. } => "vip_removed",
            Op::AddAs { .. } => "as_added",
            Op::DeleteAs { .. } => "as_removed",
            Op::SetWeight { .. } => "as_weight_updated",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flush = |b: bool| if b { " flush" } else { "" };
        match *self {
            Op::CreateVip {
                key,
                encap,
                table_len,
                src_ip_sticky,
            } => {
                write!(f, "create vip {key} encap {encap} table {table_len}")?;
                if src_ip_sticky {
                    f.write_str(" src-ip-sticky")?;
                }
                Ok(())
            }
            Op::DeleteVip { key } => write!(f, "delete vip {key}"),
            Op::AddAs {
                vip,
                address,
                weight,
            } => write!(f, "add as {address} weight {weight} to {vip}"),
            Op::DeleteAs {
                vip,
                address,
                flush: fl,
            } => write!(f, "delete as {address} from {vip}{}", flush(fl)),
            Op::SetWeight {
                vip,
                address,
                weight,
                flush: fl,
            } => {
                write!(f, "set as {address} weight {weight} on {vip}{}", flush(fl))
            }
        }
    }
}

/// The full plan: makes VPP hold exactly `desired`, removing VIPs it does
/// not know.
pub fn plan_all(
    desired: &DesiredState,
    observed: &ObservedState,
    flush: &PendingFlushes,
) -> Vec<Op> {
    let mut ops = Vec::new();
    // What VPP holds once the removals are done: the encap of each live VIP.
    let mut live: BTreeMap<VipKey, Encap> = BTreeMap::new();
    for (key, obs) in observed {
        let remove = match desired.get(key) {
            None => true,
            Some(want) => needs_recreate(want, obs),
        };
        if remove {
            remove_vip(obs, &mut ops);
        } else {
            live.insert(*key, obs.encap);
        }
    }
    for (key, want) in desired {
        match observed.get(key) {
            Some(obs) if !needs_recreate(want, obs) => update_ases(want, obs, flush, &mut ops),
            _ => {
                // Kept and created VIPs are all desired, so this refuses only
                // a desired state that breaks the prefix rules itself.
                if creatable(want, &live) {
                    live.insert(*key, want.encap);
                    create_vip(want, &mut ops);
                }
            }
        }
    }
    ops
}

/// The plan of one frontend's VIP `key`: creates it if missing, recreates it
/// if its stickiness, encap or table length differ, updates its ASes, or removes it if
/// `desired` does not hold it.
///
/// It touches no other VIP unless VPP's prefix rules force it: when the VIP
/// cannot be created beside the VIPs VPP holds on its prefix (an all-port
/// VIP beside per-port ones, another encap), those VIPs are removed first
/// and the ones `desired` holds are recreated after it. VIPs on other
/// prefixes are never touched. So `desired` must hold the VIPs of every
/// frontend on `key`'s prefix (more is fine: the others are not read).
pub fn plan_vip(
    key: VipKey,
    desired: &DesiredState,
    observed: &ObservedState,
    flush: &PendingFlushes,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let obs = observed.get(&key);
    let Some(want) = desired.get(&key) else {
        if let Some(obs) = obs {
            remove_vip(obs, &mut ops);
        }
        return ops;
    };
    if let Some(obs) = obs.filter(|o| !needs_recreate(want, o)) {
        update_ases(want, obs, flush, &mut ops);
        return ops;
    }
    // The VIPs VPP holds on the prefix, this one aside, and those of them
    // that VPP refuses beside the new one.
    let siblings = observed
        .range(key.prefix_range())
        .filter(|(k, _)| **k != key);
    let mut live: BTreeMap<VipKey, Encap> = BTreeMap::new();
    let mut conflicting = Vec::new();
    for (k, o) in siblings {
        if check_new_vip(key, want.encap, [(*k, o.encap)]).is_err() {
            conflicting.push(o);
        } else {
            live.insert(*k, o.encap);
        }
    }
    let mut removals: Vec<&ObservedVip> = conflicting.iter().copied().chain(obs).collect();
    removals.sort_by_key(|o| o.key);
    for o in removals {
        remove_vip(o, &mut ops);
    }
    let recreate = conflicting.iter().filter_map(|o| desired.get(&o.key));
    let mut creates: Vec<&DesiredVip> = std::iter::once(want).chain(recreate).collect();
    creates.sort_by_key(|d| d.key);
    for d in creates {
        if creatable(d, &live) {
            live.insert(d.key, d.encap);
            create_vip(d, &mut ops);
        }
    }
    ops
}

/// Whether VPP accepts `want` beside the `live` VIPs.
fn creatable(want: &DesiredVip, live: &BTreeMap<VipKey, Encap>) -> bool {
    let on_prefix = live.range(want.key.prefix_range()).map(|(k, e)| (*k, *e));
    check_new_vip(want.key, want.encap, on_prefix).is_ok()
}

/// VPP cannot change the stickiness, encap or table length of a live VIP.
pub fn needs_recreate(want: &DesiredVip, obs: &ObservedVip) -> bool {
    want.src_ip_sticky != obs.src_ip_sticky
        || want.encap != obs.encap
        || want.table_len != obs.table_len
}

fn remove_vip(obs: &ObservedVip, ops: &mut Vec<Op>) {
    ops.extend(obs.ases.keys().map(|&address| Op::DeleteAs {
        vip: obs.key,
        address,
        flush: true,
    }));
    ops.push(Op::DeleteVip { key: obs.key });
}

fn create_vip(want: &DesiredVip, ops: &mut Vec<Op>) {
    ops.push(Op::CreateVip {
        key: want.key,
        encap: want.encap,
        table_len: want.table_len,
        src_ip_sticky: want.src_ip_sticky,
    });
    ops.extend(want.ases.iter().map(|(&address, a)| Op::AddAs {
        vip: want.key,
        address,
        weight: a.weight,
    }));
}

fn update_ases(want: &DesiredVip, obs: &ObservedVip, flush: &PendingFlushes, ops: &mut Vec<Op>) {
    let vip = want.key;
    let addresses: BTreeSet<IpAddr> = want.ases.keys().chain(obs.ases.keys()).copied().collect();
    for address in addresses {
        let op = match (want.ases.get(&address), obs.ases.get(&address)) {
            (Some(a), None) => Some(Op::AddAs {
                vip,
                address,
                weight: a.weight,
            }),
            (None, Some(_)) => Some(Op::DeleteAs {
                vip,
                address,
                flush: true,
            }),
            (Some(a), Some(&current)) => {
                let requested = flush.contains(vip, address);
                (a.weight != current || requested).then_some(Op::SetWeight {
                    vip,
                    address,
                    weight: a.weight,
                    flush: requested || (a.flush && a.weight != current),
                })
            }
            (None, None) => None,
        };
        ops.extend(op);
    }
}

/// Why [`simulate`] refused an op: what VPP would answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The VIP or AS does not exist (VPP's -6).
    #[error("{0}: no such entry")]
    NoSuchEntry(Op),
    /// The VIP or AS already exists (VPP's -81).
    #[error("{0}: already exists")]
    Exists(Op),
    /// The table length is not a power of two (VPP's -70; VPP takes 0,
    /// and then tries to allocate 2^32 buckets, so the model refuses it).
    #[error("{0}: the table length is not a non-zero power of two")]
    TableLength(Op),
    /// The AS's family does not match the VIP's encap (VPP's -97).
    #[error("{0}: address family does not match the encap")]
    AddressFamily(Op),
    /// The new VIP breaks a prefix rule (VPP's -81 or -73).
    #[error("{op}: {conflict}")]
    Prefix {
        /// The refused op.
        op: Op,
        /// The rule it breaks.
        #[source]
        conflict: PrefixConflict,
    },
}

/// Applies `op` to `state` the way VPP would, or says what VPP would refuse
/// (and leaves `state` as it was).
pub fn simulate(state: &mut ObservedState, op: &Op) -> Result<(), ModelError> {
    match *op {
        Op::CreateVip {
            key,
            encap,
            table_len,
            src_ip_sticky,
        } => {
            if table_len == 0 || !table_len.is_power_of_two() {
                return Err(ModelError::TableLength(*op));
            }
            let live = state.range(key.prefix_range()).map(|(k, v)| (*k, v.encap));
            match check_new_vip(key, encap, live) {
                Ok(()) => {}
                Err(PrefixConflict::Exists(_)) => return Err(ModelError::Exists(*op)),
                Err(conflict) => return Err(ModelError::Prefix { op: *op, conflict }),
            }
            state.insert(
                key,
                ObservedVip {
                    key,
                    encap,
                    table_len,
                    src_ip_sticky,
                    ases: Default::default(),
                },
            );
        }
        Op::DeleteVip { key } => {
            state.remove(&key).ok_or(ModelError::NoSuchEntry(*op))?;
        }
        Op::AddAs {
            vip,
            address,
            weight,
        } => {
            let v = state.get_mut(&vip).ok_or(ModelError::NoSuchEntry(*op))?;
            let family_ok = match v.encap {
                Encap::Gre4 => address.is_ipv4(),
                Encap::Gre6 => address.is_ipv6(),
                Encap::Other(_) => true,
            };
            if !family_ok {
                return Err(ModelError::AddressFamily(*op));
            }
            if v.ases.contains_key(&address) {
                return Err(ModelError::Exists(*op));
            }
            v.ases.insert(address, weight);
        }
        Op::DeleteAs { vip, address, .. } => {
            let v = state.get_mut(&vip).ok_or(ModelError::NoSuchEntry(*op))?;
            v.ases
                .remove(&address)
                .ok_or(ModelError::NoSuchEntry(*op))?;
        }
        Op::SetWeight {
            vip,
            address,
            weight,
            ..
        } => {
            let v = state.get_mut(&vip).ok_or(ModelError::NoSuchEntry(*op))?;
            let w = v
                .ases
                .get_mut(&address)
                .ok_or(ModelError::NoSuchEntry(*op))?;
            *w = weight;
        }
    }
    Ok(())
}

/// The state VPP reaches from `observed` by executing `ops` in order, or
/// the first op it would refuse.
pub fn simulate_plan(observed: &ObservedState, ops: &[Op]) -> Result<ObservedState, ModelError> {
    let mut state = observed.clone();
    for op in ops {
        simulate(&mut state, op)?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{DesiredAs, Protocol};
    use std::collections::BTreeMap;

    fn key(addr: &str, port: u16) -> VipKey {
        VipKey::host(addr.parse().unwrap(), Some(Protocol::Tcp), port)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn desired(k: VipKey, sticky: bool, ases: &[(&str, u8, bool)]) -> DesiredVip {
        DesiredVip {
            table_len: 1024,
            key: k,
            encap: Encap::Gre4,
            src_ip_sticky: sticky,
            ases: ases
                .iter()
                .map(|&(a, weight, flush)| (ip(a), DesiredAs { weight, flush }))
                .collect(),
        }
    }

    fn observed(k: VipKey, sticky: bool, ases: &[(&str, u8)]) -> ObservedVip {
        ObservedVip {
            table_len: 1024,
            key: k,
            encap: Encap::Gre4,
            src_ip_sticky: sticky,
            ases: ases.iter().map(|&(a, w)| (ip(a), w)).collect(),
        }
    }

    fn one<T: Clone>(k: VipKey, v: T) -> BTreeMap<VipKey, T> {
        BTreeMap::from([(k, v)])
    }

    #[test]
    fn creates_missing_vip_with_ases_in_numeric_order() {
        let k = key("192.0.2.1", 80);
        let want = desired(
            k,
            false,
            &[("10.0.0.10", 100, false), ("10.0.0.2", 50, false)],
        );
        let ops = plan_all(&one(k, want), &BTreeMap::new(), &PendingFlushes::new());
        assert_eq!(
            ops,
            [
                Op::CreateVip {
                    table_len: 1024,
                    key: k,
                    encap: Encap::Gre4,
                    src_ip_sticky: false
                },
                Op::AddAs {
                    vip: k,
                    address: ip("10.0.0.2"),
                    weight: 50
                },
                Op::AddAs {
                    vip: k,
                    address: ip("10.0.0.10"),
                    weight: 100
                },
            ]
        );
    }

    #[test]
    fn removes_unknown_vips_only_in_full_plan() {
        let k = key("192.0.2.1", 80);
        let stray = key("192.0.2.9", 443);
        let want = desired(k, false, &[("10.0.0.1", 100, false)]);
        let mut obs = one(k, observed(k, false, &[("10.0.0.1", 100)]));
        obs.insert(stray, observed(stray, false, &[("10.0.0.5", 1)]));
        let ops = plan_all(&one(k, want.clone()), &obs, &PendingFlushes::new());
        assert_eq!(
            ops,
            [
                Op::DeleteAs {
                    vip: stray,
                    address: ip("10.0.0.5"),
                    flush: true
                },
                Op::DeleteVip { key: stray },
            ]
        );
        assert!(plan_vip(k, &one(k, want), &obs, &PendingFlushes::new()).is_empty());
    }

    #[test]
    fn sticky_change_recreates() {
        let k = key("192.0.2.1", 80);
        let want = desired(k, true, &[("10.0.0.1", 100, false)]);
        let obs = observed(k, false, &[("10.0.0.1", 100)]);
        let ops = plan_vip(k, &one(k, want), &one(k, obs), &PendingFlushes::new());
        assert_eq!(
            ops,
            [
                Op::DeleteAs {
                    vip: k,
                    address: ip("10.0.0.1"),
                    flush: true
                },
                Op::DeleteVip { key: k },
                Op::CreateVip {
                    table_len: 1024,
                    key: k,
                    encap: Encap::Gre4,
                    src_ip_sticky: true
                },
                Op::AddAs {
                    vip: k,
                    address: ip("10.0.0.1"),
                    weight: 100
                },
            ]
        );
    }

    #[test]
    fn encap_change_recreates_before_any_create() {
        let a = key("192.0.2.1", 80);
        let b = key("192.0.2.1", 443);
        let mut want_a = desired(a, false, &[("2001:db8::1", 100, false)]);
        want_a.encap = Encap::Gre6;
        let mut want_b = desired(b, false, &[("2001:db8::1", 100, false)]);
        want_b.encap = Encap::Gre6;
        let obs: ObservedState = [
            (a, observed(a, false, &[("10.0.0.1", 100)])),
            (b, observed(b, false, &[("10.0.0.1", 100)])),
        ]
        .into();
        let ops = plan_all(
            &[(a, want_a), (b, want_b)].into(),
            &obs,
            &PendingFlushes::new(),
        );
        let kinds: Vec<_> = ops.iter().map(Op::kind).collect();
        assert_eq!(
            kinds,
            [
                "as_removed",
                "vip_removed",
                "as_removed",
                "vip_removed",
                "vip_added",
                "as_added",
                "vip_added",
                "as_added"
            ],
            "both old-encap VIPs on the prefix go before a new-encap one is created"
        );
    }

    #[test]
    fn weights_and_flushes() {
        let k = key("192.0.2.1", 80);
        let want = desired(
            k,
            false,
            &[
                ("10.0.0.1", 0, true),    // down, flush-on-down: 100 -> 0 flushes
                ("10.0.0.2", 0, false),   // drained by failover: 100 -> 0 keeps flows
                ("10.0.0.3", 0, true),    // disabled while already 0: no op unless requested
                ("10.0.0.4", 100, false), // unchanged
                ("10.0.0.5", 0, true),    // disabled, already 0, flush requested
            ],
        );
        let obs = observed(
            k,
            false,
            &[
                ("10.0.0.1", 100),
                ("10.0.0.2", 100),
                ("10.0.0.3", 0),
                ("10.0.0.4", 100),
                ("10.0.0.5", 0),
                ("10.0.0.6", 7),
            ],
        );
        let requests = PendingFlushes::from_iter([(k, ip("10.0.0.5"))]);
        let ops = plan_vip(k, &one(k, want), &one(k, obs), &requests);
        assert_eq!(
            ops,
            [
                Op::SetWeight {
                    vip: k,
                    address: ip("10.0.0.1"),
                    weight: 0,
                    flush: true
                },
                Op::SetWeight {
                    vip: k,
                    address: ip("10.0.0.2"),
                    weight: 0,
                    flush: false
                },
                Op::SetWeight {
                    vip: k,
                    address: ip("10.0.0.5"),
                    weight: 0,
                    flush: true
                },
                Op::DeleteAs {
                    vip: k,
                    address: ip("10.0.0.6"),
                    flush: true
                },
            ]
        );
    }

    #[test]
    fn model_refuses_like_vpp() {
        let k = key("192.0.2.1", 80);
        let mut state = ObservedState::new();
        let set = Op::SetWeight {
            vip: k,
            address: ip("10.0.0.1"),
            weight: 1,
            flush: false,
        };
        assert_eq!(
            simulate(&mut state, &set),
            Err(ModelError::NoSuchEntry(set))
        );
        let create = Op::CreateVip {
            table_len: 1024,
            key: k,
            encap: Encap::Gre4,
            src_ip_sticky: false,
        };
        assert_eq!(simulate(&mut state, &create), Ok(()));
        assert_eq!(
            simulate(&mut state, &create),
            Err(ModelError::Exists(create))
        );
        let v6 = Op::AddAs {
            vip: k,
            address: ip("2001:db8::1"),
            weight: 1,
        };
        assert_eq!(
            simulate(&mut state, &v6),
            Err(ModelError::AddressFamily(v6))
        );
        let add = Op::AddAs {
            vip: k,
            address: ip("10.0.0.1"),
            weight: 1,
        };
        assert_eq!(simulate(&mut state, &add), Ok(()));
        assert_eq!(simulate(&mut state, &add), Err(ModelError::Exists(add)));
    }

    fn with_encap(mut v: ObservedVip, encap: Encap, ases: &[(&str, u8)]) -> ObservedVip {
        v.encap = encap;
        v.ases = ases.iter().map(|&(a, w)| (ip(a), w)).collect();
        v
    }

    fn run(observed: &ObservedState, ops: &[Op]) -> ObservedState {
        simulate_plan(observed, ops)
            .unwrap_or_else(|e| panic!("VPP would refuse {e}\nplan: {ops:#?}"))
    }

    #[test]
    fn model_refuses_prefix_rules_like_vpp() {
        let http = key("192.0.2.1", 80);
        let https = key("192.0.2.1", 443);
        let all = VipKey::host(ip("192.0.2.1"), None, 0);
        let mut state = one(http, observed(http, false, &[]));
        let gre6 = Op::CreateVip {
            table_len: 1024,
            key: https,
            encap: Encap::Gre6,
            src_ip_sticky: false,
        };
        assert_eq!(
            simulate(&mut state, &gre6),
            Err(ModelError::Prefix {
                op: gre6,
                conflict: PrefixConflict::MixedEncap {
                    new: https,
                    existing: http
                }
            })
        );
        let all_port = Op::CreateVip {
            table_len: 1024,
            key: all,
            encap: Encap::Gre4,
            src_ip_sticky: false,
        };
        assert_eq!(
            simulate(&mut state, &all_port),
            Err(ModelError::Prefix {
                op: all_port,
                conflict: PrefixConflict::AllPortBesidePerPort {
                    new: all,
                    existing: http
                }
            })
        );
        assert_eq!(
            state,
            one(http, observed(http, false, &[])),
            "refusals change nothing"
        );
    }

    #[test]
    fn vip_plan_recreates_its_prefix_on_an_encap_change() {
        // Both frontends on 192.0.2.1 moved to IPv6 backends; the reconciler
        // plans the first one alone.
        let a = key("192.0.2.1", 80);
        let b = key("192.0.2.1", 443);
        let elsewhere = key("192.0.2.2", 80);
        let mut want_a = desired(a, false, &[("2001:db8::1", 100, false)]);
        want_a.encap = Encap::Gre6;
        let mut want_b = desired(b, false, &[("2001:db8::2", 50, false)]);
        want_b.encap = Encap::Gre6;
        let want_else = desired(elsewhere, false, &[("10.0.0.9", 100, false)]);
        let desired: DesiredState = [(a, want_a), (b, want_b), (elsewhere, want_else)].into();
        let observed: ObservedState = [
            (a, observed(a, false, &[("10.0.0.1", 100)])),
            (b, observed(b, false, &[("10.0.0.2", 100)])),
            (elsewhere, observed(elsewhere, false, &[("10.0.0.8", 100)])),
        ]
        .into();
        let ops = plan_vip(a, &desired, &observed, &PendingFlushes::new());
        let after = run(&observed, &ops);
        assert_eq!(after[&a], desired[&a].as_observed());
        assert_eq!(
            after[&b],
            desired[&b].as_observed(),
            "the sibling is recreated with it"
        );
        assert_eq!(
            after[&elsewhere], observed[&elsewhere],
            "other prefixes are untouched"
        );
        assert_eq!(
            ops.iter().map(Op::kind).collect::<Vec<_>>(),
            [
                "as_removed",
                "vip_removed",
                "as_removed",
                "vip_removed",
                "vip_added",
                "as_added",
                "vip_added",
                "as_added"
            ]
        );
        assert!(plan_vip(b, &desired, &after, &PendingFlushes::new()).is_empty());
    }

    #[test]
    fn vip_plan_takes_out_an_all_port_vip_no_longer_wanted() {
        let all = VipKey::host(ip("192.0.2.1"), None, 0);
        let http = key("192.0.2.1", 80);
        let https = key("192.0.2.1", 443);
        let observed: ObservedState = [
            (
                all,
                with_encap(observed(all, false, &[]), Encap::Gre4, &[("10.0.0.1", 100)]),
            ),
            (
                https,
                with_encap(observed(https, false, &[]), Encap::Gre4, &[]),
            ),
        ]
        .into();
        // https stays (another frontend), all-port goes, http is new.
        let desired: DesiredState = [
            (http, desired(http, false, &[("10.0.0.1", 100, false)])),
            (https, desired(https, false, &[])),
        ]
        .into();
        let ops = plan_vip(http, &desired, &observed, &PendingFlushes::new());
        let after = run(&observed, &ops);
        assert!(!after.contains_key(&all));
        assert_eq!(after[&http], desired[&http].as_observed());
        assert_eq!(after[&https], observed[&https]);
        assert_eq!(
            ops.iter().filter(|o| o.vip() == https).count(),
            0,
            "a sibling that fits is left alone"
        );
    }

    #[test]
    fn conflicting_desired_vips_are_left_out_not_refused() {
        // A desired state validation refuses: all-port beside per-port.
        let all = VipKey::host(ip("192.0.2.1"), None, 0);
        let http = key("192.0.2.1", 80);
        let desired: DesiredState = [
            (all, desired(all, false, &[("10.0.0.1", 100, false)])),
            (http, desired(http, false, &[("10.0.0.2", 100, false)])),
        ]
        .into();
        let empty = ObservedState::new();
        let ops = plan_all(&desired, &empty, &PendingFlushes::new());
        let after = run(&empty, &ops);
        assert_eq!(after.keys().collect::<Vec<_>>(), [&http]);
        assert!(plan_all(&desired, &after, &PendingFlushes::new()).is_empty());
        let ops = plan_vip(all, &desired, &empty, &PendingFlushes::new());
        run(&empty, &ops);
    }

    #[test]
    fn vip_plan_removes_a_vip_no_longer_desired() {
        let k = key("192.0.2.1", 80);
        let obs = one(k, observed(k, false, &[("10.0.0.1", 100)]));
        let ops = plan_vip(k, &DesiredState::new(), &obs, &PendingFlushes::new());
        assert_eq!(run(&obs, &ops), ObservedState::new());
    }

    fn flush_fixture() -> (VipKey, IpAddr, DesiredState, ObservedState) {
        let k = key("192.0.2.1", 80);
        let a = ip("10.0.0.1");
        // Disabled while failover had already drained it: weight 0 -> 0.
        let desired = one(k, desired(k, false, &[("10.0.0.1", 0, true)]));
        let observed = one(k, observed(k, false, &[("10.0.0.1", 0)]));
        (k, a, desired, observed)
    }

    #[test]
    fn a_flush_requested_while_held_is_kept() {
        let (k, a, desired, observed) = flush_fixture();
        let mut pending = PendingFlushes::new();
        pending.request(k, a);
        // The frontend is held (warm-up, VPP away): nothing is planned or
        // applied, and the request waits.
        pending.applied(&[]);
        pending.retain_desired(&desired);
        assert!(pending.contains(k, a));
        let flush = Op::SetWeight {
            vip: k,
            address: a,
            weight: 0,
            flush: true,
        };
        assert_eq!(plan_all(&desired, &observed, &pending), [flush]);
        assert_eq!(plan_vip(k, &desired, &observed, &pending), [flush]);
    }

    #[test]
    fn a_flush_whose_op_failed_is_kept() {
        let (k, a, desired, observed) = flush_fixture();
        let mut pending = PendingFlushes::from_iter([(k, a)]);
        let ops = plan_vip(k, &desired, &observed, &pending);
        assert_eq!(ops.len(), 1);
        // VPP refused it, or the connection dropped: nothing was done.
        pending.applied(&[]);
        assert!(pending.contains(k, a));
        assert_eq!(
            plan_vip(k, &desired, &observed, &pending),
            ops,
            "asked again"
        );
    }

    #[test]
    fn an_applied_flush_is_gone() {
        let (k, a, desired, observed) = flush_fixture();
        let mut pending = PendingFlushes::from_iter([(k, a)]);
        let ops = plan_all(&desired, &observed, &pending);
        let after = run(&observed, &ops);
        pending.applied(&ops);
        assert!(pending.is_empty());
        assert!(plan_all(&desired, &after, &pending).is_empty());
    }

    #[test]
    fn other_ops_do_not_clear_a_flush() {
        let (k, a, _, _) = flush_fixture();
        let mut pending = PendingFlushes::from_iter([(k, a)]);
        pending.applied(&[
            Op::SetWeight {
                vip: k,
                address: a,
                weight: 5,
                flush: false,
            },
            Op::DeleteAs {
                vip: key("192.0.2.9", 80),
                address: a,
                flush: true,
            },
        ]);
        assert_eq!(pending.iter().collect::<Vec<_>>(), [(k, a)]);
        pending.applied(&[Op::DeleteAs {
            vip: k,
            address: a,
            flush: true,
        }]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_flush_of_an_as_removed_from_the_config_is_dropped() {
        let (k, a, desired, _) = flush_fixture();
        let other = ip("10.0.0.2");
        let mut pending =
            PendingFlushes::from_iter([(k, a), (k, other), (key("192.0.2.9", 80), a)]);
        pending.retain_desired(&desired);
        assert_eq!(pending.iter().collect::<Vec<_>>(), [(k, a)]);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn ops_read_naturally() {
        let k = key("192.0.2.1", 80);
        let op = Op::SetWeight {
            vip: k,
            address: ip("10.0.0.1"),
            weight: 0,
            flush: true,
        };
        assert_eq!(
            op.to_string(),
            "set as 10.0.0.1 weight 0 on 192.0.2.1/32 tcp/80 flush"
        );
    }
}
