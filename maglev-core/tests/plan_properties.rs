//! Properties of the planner and the weight rules, over generated inputs.
//!
//! Desired states come from random configs (parsed and validated like a
//! real one) over a small universe, so that they overlap often: VIP
//! addresses of both families, all-port and per-port VIPs on one address,
//! backends of either family (encap changes between two configs). Observed
//! states are what VPP could hold: another config's VIPs, and VIPs someone
//! else created, each kept only if VPP's model accepts it. Every plan is
//! run through [`simulate`], the model with VPP's prefix rules: no plan may
//! be refused, and each must reach the desired state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::config::{Config, Frontend, Pool, PoolMember};
use maglev_core::dataplane::{
    DesiredState, Encap, ObservedState, Protocol, VipKey, check_new_vip, observed_from,
};
use maglev_core::desired::{desired_all, member_weights};
use maglev_core::plan::{Op, PendingFlushes, plan_all, plan_vip, simulate, simulate_plan};
use maglev_core::state::BackendState;
use maglev_core::weights::choose_pool;
use proptest::prelude::*;

const VIP_ADDRESSES: [&str; 4] = ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"];
/// The per-port VIPs an address may have; all-port is the other shape.
const PORTS: [(&str, u16); 3] = [("tcp", 80), ("tcp", 443), ("udp", 53)];
const BACKENDS_PER_FAMILY: usize = 6;

fn backend_name(v6: bool, i: usize) -> String {
    format!("b{}x{i}", if v6 { 6 } else { 4 })
}

fn backend_address(v6: bool, i: usize) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i as u16 + 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
    }
}

/// One address of a config: no VIP, one all-port VIP, or per-port VIPs
/// (a non-empty subset of [`PORTS`]); all with backends of one family, as
/// validation requires.
#[derive(Debug, Clone)]
struct AddressSpec {
    shape: u8,
    ports: u8,
    v6_backends: bool,
}

/// One frontend's pools: backend index → (pool, weight), and its flags.
#[derive(Debug, Clone)]
struct FrontendSpec {
    members: BTreeMap<usize, (usize, u8)>,
    src_ip_sticky: bool,
    flush_on_down: bool,
}

#[derive(Debug, Clone)]
struct ConfigSpec {
    addresses: Vec<AddressSpec>,
    frontends: Vec<FrontendSpec>,
}

fn config_spec() -> impl Strategy<Value = ConfigSpec> {
    let address =
        (0u8..3, 1u8..8, any::<bool>()).prop_map(|(shape, ports, v6_backends)| AddressSpec {
            shape,
            ports,
            v6_backends,
        });
    let frontend = (
        prop::collection::btree_map(0..BACKENDS_PER_FAMILY, (0usize..2, 0u8..=100), 1..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(members, src_ip_sticky, flush_on_down)| FrontendSpec {
            members,
            src_ip_sticky,
            flush_on_down,
        });
    (
        prop::collection::vec(address, VIP_ADDRESSES.len()),
        prop::collection::vec(frontend, VIP_ADDRESSES.len() * PORTS.len()),
    )
        .prop_map(|(addresses, frontends)| ConfigSpec {
            addresses,
            frontends,
        })
}

impl ConfigSpec {
    fn yaml(&self) -> String {
        let mut y = String::from("maglev:\n  backends:\n");
        for v6 in [false, true] {
            for i in 0..BACKENDS_PER_FAMILY {
                let _ = writeln!(
                    y,
                    "    {}: {{ address: \"{}\" }}",
                    backend_name(v6, i),
                    backend_address(v6, i)
                );
            }
        }
        y.push_str("  frontends:\n");
        let mut any = false;
        for (a, spec) in self.addresses.iter().enumerate() {
            let vips: Vec<(usize, Option<(&str, u16)>)> = match spec.shape {
                0 => vec![],
                1 => vec![(a * PORTS.len(), None)],
                _ => (0..PORTS.len())
                    .filter(|p| spec.ports & (1 << p) != 0)
                    .map(|p| (a * PORTS.len() + p, Some(PORTS[p])))
                    .collect(),
            };
            for (slot, port) in vips {
                any = true;
                let fe = &self.frontends[slot];
                let _ = writeln!(y, "    f{slot}:\n      address: \"{}\"", VIP_ADDRESSES[a]);
                if let Some((protocol, port)) = port {
                    let _ = writeln!(y, "      protocol: {protocol}\n      port: {port}");
                }
                let _ = writeln!(
                    y,
                    "      src-ip-sticky: {}\n      flush-on-down: {}\n      pools:",
                    fe.src_ip_sticky, fe.flush_on_down
                );
                let pools: BTreeSet<usize> = fe.members.values().map(|(p, _)| *p).collect();
                for pool in pools {
                    let _ = writeln!(y, "        - name: p{pool}\n          backends:");
                    for (b, (_, weight)) in fe.members.iter().filter(|(_, (p, _))| *p == pool) {
                        let _ = writeln!(
                            y,
                            "            {}: {{ weight: {weight} }}",
                            backend_name(spec.v6_backends, *b)
                        );
                    }
                }
            }
        }
        if !any {
            y.push_str("    {}\n");
        }
        y
    }

    fn config(&self) -> Config {
        let yaml = self.yaml();
        Config::from_yaml(&yaml, "generated")
            .unwrap_or_else(|e| panic!("the generator wrote an invalid config: {e}\n{yaml}"))
    }
}

/// The backends' states, by backend index (IPv4 first).
fn states() -> impl Strategy<Value = Vec<BackendState>> {
    prop::collection::vec(
        prop::sample::select(BackendState::ALL.to_vec()),
        2 * BACKENDS_PER_FAMILY,
    )
}

fn desired_of(spec: &ConfigSpec, states: &[BackendState]) -> DesiredState {
    let config = spec.config();
    desired_all(
        &config,
        |name: &str| {
            let v6 = name.starts_with("b6");
            let i: usize = name[3..].parse().expect("generated name");
            states[usize::from(v6) * BACKENDS_PER_FAMILY + i].into()
        },
        |_| None,
    )
}

/// A VIP someone else may have created: any key of the universe, either
/// encap, ASes of the encap's family.
#[derive(Debug, Clone)]
struct StrayVip {
    address: usize,
    port: Option<usize>,
    v6_backends: bool,
    src_ip_sticky: bool,
    ases: BTreeMap<usize, u8>,
}

fn stray_vip() -> impl Strategy<Value = StrayVip> {
    (
        0..VIP_ADDRESSES.len(),
        prop::option::of(0..PORTS.len()),
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_map(0..BACKENDS_PER_FAMILY, any::<u8>(), 0..4),
    )
        .prop_map(
            |(address, port, v6_backends, src_ip_sticky, ases)| StrayVip {
                address,
                port,
                v6_backends,
                src_ip_sticky,
                ases,
            },
        )
}

/// What VPP holds: maybe an earlier config's VIPs (weights drifted by
/// `drift`), then stray VIPs, each only if VPP would accept it there.
#[derive(Debug, Clone)]
struct ObservedSpec {
    earlier: Option<(ConfigSpec, Vec<BackendState>)>,
    drift: Vec<u8>,
    strays: Vec<StrayVip>,
}

fn observed_spec() -> impl Strategy<Value = ObservedSpec> {
    (
        prop::option::of((config_spec(), states())),
        prop::collection::vec(any::<u8>(), 0..4),
        prop::collection::vec(stray_vip(), 0..4),
    )
        .prop_map(|(earlier, drift, strays)| ObservedSpec {
            earlier,
            drift,
            strays,
        })
}

impl ObservedSpec {
    fn build(&self) -> ObservedState {
        let mut state = match &self.earlier {
            Some((spec, states)) => observed_from(&desired_of(spec, states)),
            None => ObservedState::new(),
        };
        let all: Vec<(VipKey, IpAddr)> = state
            .values()
            .flat_map(|v| v.ases.keys().map(|a| (v.key, *a)))
            .collect();
        for (i, w) in self.drift.iter().enumerate() {
            if let Some((vip, address)) = all.get(i * 7 % all.len().max(1)) {
                state.get_mut(vip).unwrap().ases.insert(*address, *w);
            }
        }
        for s in &self.strays {
            let address: IpAddr = VIP_ADDRESSES[s.address].parse().unwrap();
            let key = match s.port {
                None => VipKey::host(address, None, 0),
                Some(p) => {
                    let protocol = if PORTS[p].0 == "tcp" {
                        Protocol::Tcp
                    } else {
                        Protocol::Udp
                    };
                    VipKey::host(address, Some(protocol), PORTS[p].1)
                }
            };
            let encap = if s.v6_backends {
                Encap::Gre6
            } else {
                Encap::Gre4
            };
            let create = Op::CreateVip {
                table_len: 1024,
                key,
                encap,
                src_ip_sticky: s.src_ip_sticky,
            };
            if simulate(&mut state, &create).is_err() {
                continue;
            }
            for (b, weight) in &s.ases {
                let add = Op::AddAs {
                    vip: key,
                    address: backend_address(s.v6_backends, *b),
                    weight: *weight,
                };
                simulate(&mut state, &add).expect("a fresh VIP takes ASes of its family");
            }
        }
        state
    }
}

fn run(observed: &ObservedState, ops: &[Op]) -> ObservedState {
    simulate_plan(observed, ops)
        .unwrap_or_else(|e| panic!("VPP would refuse {e}\nplan: {ops:#?}\nobserved: {observed:#?}"))
}

fn flush_requests(desired: &DesiredState, picks: &[usize]) -> PendingFlushes {
    let all: Vec<_> = desired
        .values()
        .flat_map(|d| d.ases.keys().map(move |a| (d.key, *a)))
        .collect();
    if all.is_empty() {
        return PendingFlushes::new();
    }
    picks.iter().map(|i| all[i % all.len()]).collect()
}

/// Whether VPP refuses `a` (with its encap) beside `b` on one prefix.
fn conflict(a: (VipKey, Encap), b: (VipKey, Encap)) -> bool {
    check_new_vip(a.0, a.1, [b]).is_err()
}

fn desired_input() -> impl Strategy<Value = (ConfigSpec, Vec<BackendState>)> {
    (config_spec(), states())
}

fn picks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn full_plan_is_accepted_and_reaches_desired((spec, st) in desired_input(), observed in observed_spec(), picks in picks()) {
        let desired = desired_of(&spec, &st);
        let observed = observed.build();
        let ops = plan_all(&desired, &observed, &flush_requests(&desired, &picks));
        let after = run(&observed, &ops);
        prop_assert_eq!(&after, &observed_from(&desired));
        prop_assert!(plan_all(&desired, &after, &PendingFlushes::new()).is_empty());
    }

    #[test]
    fn vip_plans_one_frontend_at_a_time_are_accepted(
        (spec, st) in desired_input(),
        observed in observed_spec(),
        rotate in any::<usize>(),
        reverse in any::<bool>(),
    ) {
        let desired = desired_of(&spec, &st);
        let observed = observed.build();
        let mut keys: Vec<VipKey> = desired.keys().chain(observed.keys()).copied().collect::<BTreeSet<_>>().into_iter().collect();
        if !keys.is_empty() {
            let n = rotate % keys.len();
            keys.rotate_left(n);
        }
        if reverse {
            keys.reverse();
        }
        let mut state = observed;
        for key in keys {
            let ops = plan_vip(key, &desired, &state, &PendingFlushes::new());
            let after = run(&state, &ops);
            prop_assert_eq!(after.get(&key).cloned(), desired.get(&key).map(|d| d.as_observed()));
            let before_all: BTreeSet<_> = state.keys().chain(after.keys()).copied().collect();
            for k in before_all.into_iter().filter(|k| *k != key) {
                if state.get(&k) == after.get(&k) {
                    continue;
                }
                // Only a VIP of its prefix that VPP refuses beside it changed,
                // and it is then as desired (or gone).
                let want = &desired[&key];
                let was = &state[&k];
                prop_assert!(k.same_prefix(&key), "{} touched from {}", k, key);
                prop_assert!(conflict((key, want.encap), (k, was.encap)), "{} needlessly recreated for {}", k, key);
                prop_assert_eq!(after.get(&k).cloned(), desired.get(&k).map(|d| d.as_observed()));
            }
            prop_assert!(plan_vip(key, &desired, &after, &PendingFlushes::new()).is_empty());
            state = after;
        }
        prop_assert_eq!(state, observed_from(&desired));
    }

    #[test]
    fn plan_is_deterministic((spec, st) in desired_input(), observed in observed_spec(), picks in picks()) {
        let d1 = desired_of(&spec, &st);
        let o1 = observed.build();
        let f = flush_requests(&d1, &picks);
        let first = plan_all(&d1, &o1, &f);
        // The same VIPs inserted in the opposite order.
        let d2: DesiredState = d1.values().rev().map(|v| (v.key, v.clone())).collect();
        let o2: ObservedState = o1.values().rev().map(|v| (v.key, v.clone())).collect();
        prop_assert_eq!(&first, &plan_all(&d2, &o2, &f));
        prop_assert_eq!(first, plan_all(&d1, &o1, &f));
    }

    #[test]
    fn flush_only_where_the_rules_say((spec, st) in desired_input(), observed in observed_spec(), picks in picks()) {
        let desired = desired_of(&spec, &st);
        let observed = observed.build();
        let requests = flush_requests(&desired, &picks);
        for op in plan_all(&desired, &observed, &requests) {
            if let Op::SetWeight { vip, address, weight, flush } = op {
                let want = desired[&vip].ases[&address];
                let before = observed[&vip].ases[&address];
                let requested = requests.contains(vip, address);
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
    fn pending_flushes_are_never_lost(
        (spec, st) in desired_input(),
        observed in observed_spec(),
        picks in picks(),
        fail_at in any::<usize>(),
    ) {
        let desired = desired_of(&spec, &st);
        let observed = observed.build();
        let mut pending = flush_requests(&desired, &picks);
        let ops = plan_all(&desired, &observed, &pending);
        // VPP refuses one op (or the connection drops there): the ops before
        // it are done, the rest never sent.
        let failed = if ops.is_empty() { 0 } else { fail_at % (ops.len() + 1) };
        let done = &ops[..failed];
        let state = run(&observed, done);
        let before: Vec<_> = pending.iter().collect();
        pending.applied(done);
        for (vip, address) in before {
            let carried = done.iter().any(|op| match *op {
                Op::SetWeight { vip: v, address: a, flush, .. } => flush && (v, a) == (vip, address),
                Op::DeleteAs { vip: v, address: a, flush } => flush && (v, a) == (vip, address),
                Op::AddAs { vip: v, address: a, .. } => (v, a) == (vip, address),
                _ => false,
            });
            prop_assert_eq!(pending.contains(vip, address), !carried, "{} {}", vip, address);
        }
        // What is still pending is asked for again by the next plan.
        pending.retain_desired(&desired);
        let again = plan_all(&desired, &state, &pending);
        for (vip, address) in pending.iter() {
            prop_assert!(
                again.iter().any(|op| matches!(*op,
                    Op::SetWeight { vip: v, address: a, flush: true, .. } | Op::AddAs { vip: v, address: a, .. }
                    if (v, a) == (vip, address))),
                "pending flush of {} on {} lost: {:#?}", address, vip, again
            );
        }
    }

    #[test]
    fn ops_are_ordered((spec, st) in desired_input(), observed in observed_spec()) {
        let desired = desired_of(&spec, &st);
        let observed = observed.build();
        let ops = plan_all(&desired, &observed, &PendingFlushes::new());
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
            flow_table_length: Default::default(),
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
                    min_up: Default::default(),
                    min_up_to_return: Default::default(),
                })
                .collect(),
            src_ip_sticky: false,
            flush_on_down: true,
        };
        let state_of = |name: &str| {
            let n: usize = name.rsplit('b').next().unwrap().parse().unwrap();
            states[n]
        };
        let serving_of = |name: &str| state_of(name).into();
        let active = choose_pool(&frontend, serving_of, None);
        let weights = member_weights(&frontend, serving_of, active);
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

/// The generators reach the cases the properties are about.
#[test]
fn generators_cover_mixed_encaps_and_all_port_transitions() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut mixed, mut all_port_swap, mut recreated_sibling) = (0, 0, 0);
    for _ in 0..300 {
        let (spec, st) = desired_input().new_tree(&mut runner).unwrap().current();
        let obs = observed_spec().new_tree(&mut runner).unwrap().current();
        let desired = desired_of(&spec, &st);
        let observed = obs.build();
        for (k, d) in &desired {
            for (o, v) in observed.range(k.prefix_range()) {
                if v.encap != d.encap {
                    mixed += 1;
                }
                if o.is_all_port() != k.is_all_port() {
                    all_port_swap += 1;
                }
                if o != k && conflict((*k, d.encap), (*o, v.encap)) && desired.contains_key(o) {
                    recreated_sibling += 1;
                }
            }
        }
    }
    assert!(mixed > 50, "encap changes on one prefix: {mixed}");
    assert!(
        all_port_swap > 50,
        "all-port beside per-port across states: {all_port_swap}"
    );
    assert!(
        recreated_sibling > 20,
        "siblings a VIP plan must recreate: {recreated_sibling}"
    );
}
