//! Properties of the planner and the weight rules, over generated inputs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::config::{Frontend, Pool, PoolMember};
use maglev_core::dataplane::{
    DesiredAs, DesiredState, DesiredVip, Encap, ObservedState, ObservedVip, Protocol, VipKey,
    observed_from,
};
use maglev_core::desired::member_weights;
use maglev_core::plan::{FlushRequests, Op, apply, plan_all, plan_vip};
use maglev_core::state::BackendState;
use maglev_core::weights::active_pool;
use proptest::prelude::*;

/// A small universe so that desired and observed overlap often.
fn vip_key() -> impl Strategy<Value = VipKey> {
    let addr = prop_oneof![
        (1u8..5).prop_map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
        (1u16..3).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))),
    ];
    (addr, prop_oneof![Just(80u16), Just(443u16)])
        .prop_map(|(a, port)| VipKey::host(a, Some(Protocol::Tcp), port))
}

fn as_address(encap: Encap) -> BoxedStrategy<IpAddr> {
    match encap {
        Encap::Gre6 => (1u16..6)
            .prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)))
            .boxed(),
        _ => (1u8..12)
            .prop_map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
            .boxed(),
    }
}

fn encap() -> impl Strategy<Value = Encap> {
    prop_oneof![Just(Encap::Gre4), Just(Encap::Gre6)]
}

fn desired_vip() -> impl Strategy<Value = DesiredVip> {
    (vip_key(), encap(), any::<bool>()).prop_flat_map(|(key, encap, src_ip_sticky)| {
        prop::collection::btree_map(
            as_address(encap),
            (0u8..=100, any::<bool>()).prop_map(|(weight, flush)| DesiredAs { weight, flush }),
            0..6,
        )
        .prop_map(move |ases| DesiredVip {
            key,
            encap,
            src_ip_sticky,
            ases,
        })
    })
}

fn observed_vip() -> impl Strategy<Value = ObservedVip> {
    (vip_key(), encap(), any::<bool>()).prop_flat_map(|(key, encap, src_ip_sticky)| {
        prop::collection::btree_map(as_address(encap), any::<u8>(), 0..6).prop_map(move |ases| {
            ObservedVip {
                key,
                encap,
                src_ip_sticky,
                ases,
            }
        })
    })
}

fn desired_state() -> impl Strategy<Value = Vec<DesiredVip>> {
    prop::collection::vec(desired_vip(), 0..6)
}

fn observed_state() -> impl Strategy<Value = Vec<ObservedVip>> {
    prop::collection::vec(observed_vip(), 0..6)
}

fn to_desired(vips: impl IntoIterator<Item = DesiredVip>) -> DesiredState {
    vips.into_iter().map(|v| (v.key, v)).collect()
}

fn to_observed(vips: impl IntoIterator<Item = ObservedVip>) -> ObservedState {
    vips.into_iter().map(|v| (v.key, v)).collect()
}

fn run(observed: &ObservedState, ops: &[Op]) -> ObservedState {
    let mut state = observed.clone();
    for op in ops {
        apply(&mut state, op)
            .unwrap_or_else(|e| panic!("VPP would refuse {op}: {e}\nplan: {ops:#?}"));
    }
    state
}

fn flush_requests(desired: &DesiredState, picks: &[usize]) -> FlushRequests {
    let all: Vec<_> = desired
        .values()
        .flat_map(|d| d.ases.keys().map(move |a| (d.key, *a)))
        .collect();
    if all.is_empty() {
        return FlushRequests::new();
    }
    picks.iter().map(|i| all[i % all.len()]).collect()
}

proptest! {
    #[test]
    fn plan_is_deterministic(desired in desired_state(), observed in observed_state(), picks in prop::collection::vec(any::<usize>(), 0..4)) {
        let d1 = to_desired(desired);
        let o1 = to_observed(observed);
        let f = flush_requests(&d1, &picks);
        let first = plan_all(&d1, &o1, &f);
        // The same VIPs inserted in the opposite order.
        let d2 = to_desired(d1.values().rev().cloned());
        let o2 = to_observed(o1.values().rev().cloned());
        prop_assert_eq!(&first, &plan_all(&d2, &o2, &f));
        prop_assert_eq!(first, plan_all(&d1, &o1, &f));
    }

    #[test]
    fn full_plan_reaches_desired_and_then_is_empty(desired in desired_state(), observed in observed_state(), picks in prop::collection::vec(any::<usize>(), 0..4)) {
        let desired = to_desired(desired);
        let observed = to_observed(observed);
        let ops = plan_all(&desired, &observed, &flush_requests(&desired, &picks));
        let after = run(&observed, &ops);
        prop_assert_eq!(&after, &observed_from(&desired));
        prop_assert!(plan_all(&desired, &after, &FlushRequests::new()).is_empty());
    }

    #[test]
    fn vip_plan_reaches_its_vip_and_leaves_others(desired in desired_vip(), observed in observed_state()) {
        let observed = to_observed(observed);
        let ops = plan_vip(&desired, observed.get(&desired.key), &FlushRequests::new());
        prop_assert!(ops.iter().all(|op| op.vip() == desired.key), "only its own VIP is touched");
        let after = run(&observed, &ops);
        let want = observed_from(&to_desired([desired.clone()]));
        prop_assert_eq!(after.get(&desired.key), want.get(&desired.key));
        for (k, v) in &observed {
            if *k != desired.key {
                prop_assert_eq!(after.get(k), Some(v));
            }
        }
        let again = plan_vip(&desired, after.get(&desired.key), &FlushRequests::new());
        prop_assert!(again.is_empty());
    }

    #[test]
    fn flush_only_where_the_rules_say(desired in desired_state(), observed in observed_state(), picks in prop::collection::vec(any::<usize>(), 0..4)) {
        let desired = to_desired(desired);
        let observed = to_observed(observed);
        let requests = flush_requests(&desired, &picks);
        for op in plan_all(&desired, &observed, &requests) {
            if let Op::SetWeight { vip, address, weight, flush } = op {
                let want = desired[&vip].ases[&address];
                let before = observed[&vip].ases[&address];
                let requested = requests.contains(&(vip, address));
                prop_assert_eq!(weight, want.weight);
                prop_assert!(weight != before || requested, "no-op weight set: {}", op);
                prop_assert_eq!(flush, requested || (want.flush && weight != before), "{}", op);
            }
            if let Op::DeleteAs { flush, .. } = op {
                prop_assert!(flush, "deleted ASes always flush: {}", op);
            }
        }
    }

    #[test]
    fn ops_are_ordered(desired in desired_state(), observed in observed_state()) {
        let desired = to_desired(desired);
        let observed = to_observed(observed);
        let ops = plan_all(&desired, &observed, &FlushRequests::new());
        // Every removal comes before every creation.
        let last_delete = ops.iter().rposition(|o| matches!(o, Op::DeleteVip { .. }));
        let first_create = ops.iter().position(|o| matches!(o, Op::CreateVip { .. }));
        if let (Some(d), Some(c)) = (last_delete, first_create) {
            prop_assert!(d < c);
        }
        // AS ops of one VIP run in address order, one per address.
        let mut runs: BTreeMap<(VipKey, bool), Vec<IpAddr>> = BTreeMap::new();
        for op in &ops {
            let (vip, addr, removal) = match *op {
                Op::AddAs { vip, address, .. } | Op::SetWeight { vip, address, .. } => (vip, address, false),
                Op::DeleteAs { vip, address, .. } => (vip, address, !desired.contains_key(&vip) || ops.contains(&Op::DeleteVip { key: vip })),
                _ => continue,
            };
            runs.entry((vip, removal)).or_default().push(addr);
        }
        for addrs in runs.values() {
            prop_assert!(addrs.windows(2).all(|w| w[0] < w[1]), "{:?}", addrs);
        }
    }

    #[test]
    fn one_active_pool_carries_all_weight(
        pools in prop::collection::vec(prop::collection::btree_map(0u8..12, 0u8..=100, 1..4), 1..4),
        states in prop::collection::vec(prop::sample::select(BackendState::ALL.to_vec()), 12),
    ) {
        let frontend = Frontend {
            address: "192.0.2.1".parse().unwrap(),
            protocol: None,
            port: 0,
            description: String::new(),
            pools: pools
                .iter()
                .enumerate()
                .map(|(i, members)| Pool {
                    name: format!("p{i}"),
                    // A backend is in at most one pool: prefix names with the pool.
                    backends: members.iter().map(|(b, w)| (format!("p{i}b{b}"), PoolMember { weight: *w })).collect(),
                })
                .collect(),
            src_ip_sticky: false,
            flush_on_down: true,
        };
        let state_of = |name: &str| {
            let n: usize = name.rsplit('b').next().unwrap().parse().unwrap();
            states[n]
        };
        let active = active_pool(&frontend, state_of);
        let weights = member_weights(&frontend, state_of);
        for m in &weights {
            if m.effective.weight > 0 {
                prop_assert_eq!(Some(m.pool), active, "weight outside the active pool");
                prop_assert_eq!(state_of(m.backend), BackendState::Up);
                prop_assert_eq!(m.effective.weight, m.configured);
            }
            if m.effective.flush {
                prop_assert!(matches!(state_of(m.backend), BackendState::Down | BackendState::Disabled | BackendState::Removed));
            }
        }
        if let Some(i) = active {
            prop_assert!(weights.iter().any(|m| m.pool == i && m.effective.weight > 0), "the active pool carries traffic");
            prop_assert!(weights.iter().all(|m| m.pool >= i || m.effective.weight == 0));
        } else {
            prop_assert!(weights.iter().all(|m| m.effective.weight == 0));
        }
    }
}
