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
//! A weight is set when it differs. A weight that does not differ is set
//! again only for an AS in the [`FlushRequests`]: a backend that just went
//! down or was disabled, or an operator's flush, must tear down its flows
//! even when failover had already drained it to 0. With no requests,
//! planning again after applying a plan yields nothing.
//!
//! [`apply`] is the model of how VPP executes each op; tests use it to check
//! that a plan reaches the desired state, and dry runs to show the result.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::dataplane::{DesiredState, DesiredVip, Encap, ObservedState, ObservedVip, VipKey};

/// ASes whose flows must be flushed now, even if their weight is unchanged.
pub type FlushRequests = BTreeSet<(VipKey, IpAddr)>;

/// One operation on VPP's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create a VIP (`lb_add_del_vip_v2`, new-flows table of 1024).
    CreateVip {
        /// The VIP.
        key: VipKey,
        /// Its encapsulation.
        encap: Encap,
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
                src_ip_sticky,
            } => {
                write!(f, "create vip {key} encap {encap}")?;
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
    flush: &FlushRequests,
) -> Vec<Op> {
    let mut ops = Vec::new();
    for (key, obs) in observed {
        let remove = match desired.get(key) {
            None => true,
            Some(want) => needs_recreate(want, obs),
        };
        if remove {
            remove_vip(obs, &mut ops);
        }
    }
    for (key, want) in desired {
        match observed.get(key) {
            Some(obs) if !needs_recreate(want, obs) => update_ases(want, obs, flush, &mut ops),
            _ => create_vip(want, &mut ops),
        }
    }
    ops
}

/// The plan of one frontend's VIP: creates it if missing, recreates it if
/// its stickiness or encap differ, else updates its ASes. It never removes
/// other VIPs.
pub fn plan_vip(
    desired: &DesiredVip,
    observed: Option<&ObservedVip>,
    flush: &FlushRequests,
) -> Vec<Op> {
    let mut ops = Vec::new();
    match observed {
        Some(obs) if !needs_recreate(desired, obs) => update_ases(desired, obs, flush, &mut ops),
        Some(obs) => {
            remove_vip(obs, &mut ops);
            create_vip(desired, &mut ops);
        }
        None => create_vip(desired, &mut ops),
    }
    ops
}

/// VPP cannot change stickiness or encap of a live VIP.
fn needs_recreate(want: &DesiredVip, obs: &ObservedVip) -> bool {
    want.src_ip_sticky != obs.src_ip_sticky || want.encap != obs.encap
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
        src_ip_sticky: want.src_ip_sticky,
    });
    ops.extend(want.ases.iter().map(|(&address, a)| Op::AddAs {
        vip: want.key,
        address,
        weight: a.weight,
    }));
}

fn update_ases(want: &DesiredVip, obs: &ObservedVip, flush: &FlushRequests, ops: &mut Vec<Op>) {
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
                let requested = flush.contains(&(vip, address));
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

/// Why [`apply`] refused an op: what VPP would answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The VIP or AS does not exist (VPP's -6).
    #[error("{0}: no such entry")]
    NoSuchEntry(Op),
    /// The VIP or AS already exists (VPP's -81).
    #[error("{0}: already exists")]
    Exists(Op),
    /// The AS's family does not match the VIP's encap (VPP's -97).
    #[error("{0}: address family does not match the encap")]
    AddressFamily(Op),
}

/// Applies `op` to `state` the way VPP would, or says what VPP would refuse.
pub fn apply(state: &mut ObservedState, op: &Op) -> Result<(), ModelError> {
    match *op {
        Op::CreateVip {
            key,
            encap,
            src_ip_sticky,
        } => {
            if state.contains_key(&key) {
                return Err(ModelError::Exists(*op));
            }
            state.insert(
                key,
                ObservedVip {
                    key,
                    encap,
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
        let ops = plan_all(&one(k, want), &BTreeMap::new(), &FlushRequests::new());
        assert_eq!(
            ops,
            [
                Op::CreateVip {
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
        let ops = plan_all(&one(k, want.clone()), &obs, &FlushRequests::new());
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
        assert!(plan_vip(&want, obs.get(&k), &FlushRequests::new()).is_empty());
    }

    #[test]
    fn sticky_change_recreates() {
        let k = key("192.0.2.1", 80);
        let want = desired(k, true, &[("10.0.0.1", 100, false)]);
        let obs = observed(k, false, &[("10.0.0.1", 100)]);
        let ops = plan_vip(&want, Some(&obs), &FlushRequests::new());
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
            &FlushRequests::new(),
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
        let requests = FlushRequests::from([(k, ip("10.0.0.5"))]);
        let ops = plan_vip(&want, Some(&obs), &requests);
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
        assert_eq!(apply(&mut state, &set), Err(ModelError::NoSuchEntry(set)));
        let create = Op::CreateVip {
            key: k,
            encap: Encap::Gre4,
            src_ip_sticky: false,
        };
        assert_eq!(apply(&mut state, &create), Ok(()));
        assert_eq!(apply(&mut state, &create), Err(ModelError::Exists(create)));
        let v6 = Op::AddAs {
            vip: k,
            address: ip("2001:db8::1"),
            weight: 1,
        };
        assert_eq!(apply(&mut state, &v6), Err(ModelError::AddressFamily(v6)));
        let add = Op::AddAs {
            vip: k,
            address: ip("10.0.0.1"),
            weight: 1,
        };
        assert_eq!(apply(&mut state, &add), Ok(()));
        assert_eq!(apply(&mut state, &add), Err(ModelError::Exists(add)));
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
