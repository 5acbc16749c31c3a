//! Typed LB operations and plan application against the simulator.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use maglev_core::dataplane::{DesiredAs, DesiredState, DesiredVip, Encap, VipKey};
use maglev_core::maglev::{DEFAULT_TABLE_LEN, MaglevTable};
use maglev_core::plan::{Op, PendingFlushes, plan_all};
use maglev_vpp::api::messages::LbConf;
use maglev_vpp::api::types::Prefix;
use maglev_vpp::lb::apply::apply;
use maglev_vpp::lb::error::LbError;
use maglev_vpp::lb::ops::LB_CONF_KEEP;
use maglev_vpp::sim::{Fault, FaultAction, Sim, SimConfig, SimObserver};
use maglev_vpp::{Client, Error, Retval};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(a: &str, port: u16) -> VipKey {
    VipKey::host(ip(a), Some(maglev_core::dataplane::Protocol::Tcp), port)
}

fn desired_vip(k: VipKey, sticky: bool, ases: &[(&str, u8)]) -> DesiredVip {
    DesiredVip {
        table_len: 1024,
        key: k,
        encap: Encap::for_backend(ip(ases[0].0)),
        src_ip_sticky: sticky,
        ases: ases
            .iter()
            .map(|&(a, weight)| {
                (
                    ip(a),
                    DesiredAs {
                        weight,
                        flush: true,
                    },
                )
            })
            .collect(),
    }
}

async fn setup(name: &str) -> (Sim, Client) {
    let sim = Sim::start(SimConfig::new(common::sock_path(name)))
        .await
        .unwrap();
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    (sim, vpp)
}

async fn converge(vpp: &Client, desired: &DesiredState) -> Vec<Op> {
    let observed = vpp.observe().await.unwrap();
    let ops = plan_all(desired, &observed, &PendingFlushes::new());
    let mut model = observed.clone();
    for op in &ops {
        maglev_core::plan::simulate(&mut model, op).unwrap();
    }
    let report = apply(vpp, &ops).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.done, ops);
    let after = vpp.observe().await.unwrap();
    assert_eq!(after, model, "VPP holds what the planner's model predicts");
    assert_eq!(
        plan_all(desired, &after, &PendingFlushes::new()),
        [],
        "a fresh observe + plan is empty"
    );
    ops
}

#[tokio::test]
async fn apply_converges_and_rerun_is_empty() {
    let (_sim, vpp) = setup("apply").await;
    let a = key("192.0.2.1", 80);
    let b = key("192.0.2.1", 443);
    let c = key("2001:db8::10", 443);
    let mut desired: DesiredState = [
        (
            a,
            desired_vip(a, false, &[("10.0.0.1", 100), ("10.0.0.2", 50)]),
        ),
        (b, desired_vip(b, true, &[("10.0.0.1", 100)])),
        (
            c,
            desired_vip(c, false, &[("2001:db8:1::1", 100), ("2001:db8:1::2", 0)]),
        ),
    ]
    .into();
    let ops = converge(&vpp, &desired).await;
    assert_eq!(ops.len(), 3 + 5);

    // Weights change, stickiness flips (recreate), an AS goes, a VIP goes.
    desired.insert(
        a,
        desired_vip(a, true, &[("10.0.0.1", 0), ("10.0.0.3", 100)]),
    );
    desired.insert(
        c,
        desired_vip(c, false, &[("2001:db8:1::1", 10), ("2001:db8:1::2", 90)]),
    );
    desired.remove(&b);
    let ops = converge(&vpp, &desired).await;
    assert!(
        ops.iter()
            .any(|op| matches!(op, Op::DeleteVip { key } if *key == b))
    );

    // Someone else's VIP is removed by a full plan.
    vpp.add_vip(&key("192.0.2.99", 8080), Encap::Gre4, false)
        .await
        .unwrap();
    vpp.add_as(&key("192.0.2.99", 8080), ip("10.9.9.9"), 1)
        .await
        .unwrap();
    let ops = converge(&vpp, &desired).await;
    assert_eq!(ops.len(), 2);
}

fn ases_of(vpp_state: &maglev_core::dataplane::ObservedState, k: &VipKey) -> Vec<(IpAddr, u8)> {
    vpp_state[k].ases.iter().map(|(&a, &w)| (a, w)).collect()
}

#[tokio::test]
async fn a_failing_prefix_does_not_stall_a_recreated_one() {
    let (sim, vpp) = setup("apply-isolation").await;
    let a80 = key("192.0.2.1", 80);
    let a443 = key("192.0.2.1", 443);
    let b = key("192.0.2.2", 80);
    let mut desired: DesiredState = [
        (a80, desired_vip(a80, false, &[("10.0.0.1", 100)])),
        (
            b,
            desired_vip(b, false, &[("10.0.1.1", 100), ("10.0.1.2", 50)]),
        ),
    ]
    .into();
    converge(&vpp, &desired).await;

    // Prefix a: a weight change (round 0) and a new VIP after it. Prefix
    // b: recreated for stickiness (delete ASes, delete, create, add ASes).
    desired.insert(a80, desired_vip(a80, false, &[("10.0.0.1", 7)]));
    desired.insert(a443, desired_vip(a443, false, &[("10.0.0.9", 100)]));
    desired.insert(
        b,
        desired_vip(b, true, &[("10.0.1.1", 100), ("10.0.1.2", 50)]),
    );
    let ops = plan_all(
        &desired,
        &vpp.observe().await.unwrap(),
        &PendingFlushes::new(),
    );
    let weight = ops
        .iter()
        .position(|op| matches!(op, Op::SetWeight { vip, .. } if *vip == a80))
        .unwrap();
    sim.inject(Fault::once(
        "lb_as_set_weight",
        FaultAction::Retval(Retval::INVALID_ARGUMENT.0),
    ));
    let report = apply(&vpp, &ops).await;

    assert_eq!(report.failed.len(), 1, "{report}");
    let failed = &report.failed[0];
    assert_eq!((failed.index, failed.op), (weight, ops[weight]));
    assert_eq!(failed.error.retval(), Some(Retval::INVALID_ARGUMENT));
    assert_eq!(
        failed.to_string(),
        format!(
            "op {weight} ({}): lb_as_set_weight: VPP returned -73 (invalid argument)",
            ops[weight]
        )
    );
    let a443_ops: Vec<Op> = ops.iter().copied().filter(|op| op.vip() == a443).collect();
    assert_eq!(
        report.skipped, a443_ops,
        "prefix a's later ops, in plan order"
    );
    let b_ops: Vec<Op> = ops.iter().copied().filter(|op| op.vip() == b).collect();
    assert_eq!(report.done, b_ops, "prefix b went all the way");

    let after = vpp.observe().await.unwrap();
    assert!(after[&b].src_ip_sticky);
    assert_eq!(
        ases_of(&after, &b),
        [(ip("10.0.1.1"), 100), (ip("10.0.1.2"), 50)],
        "the recreated VIP has all its ASes"
    );
    assert_eq!(ases_of(&after, &a80), [(ip("10.0.0.1"), 100)]);
    assert!(!after.contains_key(&a443));
    // The next sync finishes the job.
    converge(&vpp, &desired).await;
}

#[tokio::test]
async fn apply_reports_every_failure_with_its_op() {
    let (sim, vpp) = setup("apply-err").await;
    let a = key("192.0.2.1", 80);
    let b = key("192.0.2.2", 80);
    let c = key("192.0.2.3", 80);
    let desired: DesiredState = [
        (
            a,
            desired_vip(a, false, &[("10.0.0.1", 100), ("10.0.0.2", 50)]),
        ),
        (b, desired_vip(b, false, &[("10.0.0.1", 100)])),
        (c, desired_vip(c, false, &[("10.0.0.1", 100)])),
    ]
    .into();
    let ops = plan_all(
        &desired,
        &vpp.observe().await.unwrap(),
        &PendingFlushes::new(),
    );
    // Round 0 creates the three VIPs, in plan order: a's and b's
    // creations fail, c's goes through.
    sim.inject(Fault {
        message: Some("lb_add_del_vip_v2"),
        action: FaultAction::Retval(Retval::VALUE_EXIST.0),
        times: 2,
    });
    let report = apply(&vpp, &ops).await;
    let creates = |k: VipKey| {
        ops.iter()
            .position(|op| {
                *op == Op::CreateVip {
                    table_len: 1024,
                    key: k,
                    encap: Encap::Gre4,
                    src_ip_sticky: false,
                }
            })
            .unwrap()
    };
    let failed: Vec<(usize, Op)> = report.failed.iter().map(|f| (f.index, f.op)).collect();
    assert_eq!(
        failed,
        [(creates(a), ops[creates(a)]), (creates(b), ops[creates(b)])]
    );
    for f in &report.failed {
        assert!(
            matches!(
                f.error,
                LbError::Vpp(Error::Retval {
                    message: "lb_add_del_vip_v2",
                    retval: Retval::VALUE_EXIST
                })
            ),
            "{f}"
        );
    }
    let of = |keys: &[VipKey]| -> Vec<Op> {
        ops.iter()
            .copied()
            .filter(|op| keys.contains(&op.vip()))
            .collect()
    };
    let skipped: Vec<Op> = of(&[a, b])
        .into_iter()
        .filter(|op| !matches!(op, Op::CreateVip { .. }))
        .collect();
    assert_eq!(
        report.skipped, skipped,
        "a's and b's AS adds, in plan order"
    );
    assert_eq!(report.done, of(&[c]));
    assert!(!report.is_complete());
    assert_eq!(
        report
            .to_string()
            .matches("lb_add_del_vip_v2: VPP returned -81")
            .count(),
        2,
        "{report}"
    );
    // A re-run after the fault converges.
    converge(&vpp, &desired).await;
}

#[tokio::test]
async fn an_encap_maglev_never_creates_is_refused_locally() {
    let (sim, vpp) = setup("apply-encap").await;
    let k = key("192.0.2.1", 80);
    let before = sim.requests();
    let err = vpp.add_vip(&k, Encap::Other(4), false).await.unwrap_err();
    assert!(
        matches!(err, LbError::UnsupportedEncap { key, encap: Encap::Other(4) } if key == k),
        "{err:?}"
    );
    assert_eq!(err.retval(), None, "VPP said nothing");
    assert_eq!(
        err.to_string(),
        "VIP 192.0.2.1/32 tcp/80: not sent to VPP: maglev creates only gre4/gre6 VIPs, not encap-4"
    );
    let create = Op::CreateVip {
        table_len: 1024,
        key: k,
        encap: Encap::Other(4),
        src_ip_sticky: false,
    };
    let report = apply(&vpp, &[create]).await;
    assert!(matches!(
        report.failed[..],
        [ref f] if f.index == 0 && matches!(f.error, LbError::UnsupportedEncap { .. })
    ));
    assert_eq!(sim.requests(), before, "nothing was sent");
}

#[tokio::test]
async fn conf_is_set_only_when_it_differs() {
    let (_sim, vpp) = setup("conf").await;
    let want = LbConf {
        ip4_src_address: Ipv4Addr::new(10, 0, 0, 1),
        ip6_src_address: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        sticky_buckets_per_core: 1024,
        flow_timeout: 40,
    };
    assert!(vpp.ensure_lb_conf(&want).await.unwrap());
    assert!(!vpp.ensure_lb_conf(&want).await.unwrap());
    assert_eq!(vpp.lb_conf_get().await.unwrap(), want);
    let bad = LbConf {
        sticky_buckets_per_core: 1000,
        ..want
    };
    assert_eq!(
        vpp.ensure_lb_conf(&bad).await.unwrap_err().retval(),
        Some(Retval::INVALID_MEMORY_SIZE)
    );
}

#[tokio::test]
async fn absent_conf_values_keep_vpps_and_are_not_resent() {
    let (sim, vpp) = setup("conf-keep").await;
    // Someone set VPP's values; the config leaves them alone.
    sim.with_model(|m| {
        m.conf.sticky_buckets_per_core = 2048;
        m.conf.flow_timeout = 7;
    });
    let want = LbConf {
        ip4_src_address: Ipv4Addr::new(10, 0, 0, 1),
        ip6_src_address: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        sticky_buckets_per_core: LB_CONF_KEEP,
        flow_timeout: LB_CONF_KEEP,
    };
    assert!(
        vpp.ensure_lb_conf(&want).await.unwrap(),
        "the addresses differ"
    );
    let kept = LbConf {
        sticky_buckets_per_core: 2048,
        flow_timeout: 7,
        ..want
    };
    assert_eq!(
        vpp.lb_conf_get().await.unwrap(),
        kept,
        "~0 kept VPP's values"
    );

    // A second connect: no lb_conf goes out (one would hit the fault).
    vpp.reconnect().await.unwrap();
    sim.inject(Fault::once("lb_conf", FaultAction::Retval(-1)));
    assert!(!vpp.ensure_lb_conf(&want).await.unwrap(), "no lb_conf sent");
    sim.clear_faults();

    // A raw ~0 lb_conf is accepted (VPP does not check ~0 for a power of
    // two) and keeps the values; a real value still replaces them.
    vpp.call(&want).await.unwrap();
    assert_eq!(vpp.lb_conf_get().await.unwrap(), kept);
    let one = LbConf {
        flow_timeout: 60,
        ..want
    };
    assert!(vpp.ensure_lb_conf(&one).await.unwrap());
    assert_eq!(
        vpp.lb_conf_get().await.unwrap(),
        LbConf {
            flow_timeout: 60,
            ..kept
        }
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, u32, u32)>>);

impl SimObserver for Recorder {
    fn vip_added(&self, pool_index: u32, route_stats_index: u32) {
        self.0
            .lock()
            .unwrap()
            .push(("added", pool_index, route_stats_index));
    }

    fn vip_removed(&self, pool_index: u32) {
        self.0.lock().unwrap().push(("removed", pool_index, 0));
    }
}

#[tokio::test]
async fn pool_and_stats_indexes_line_up_with_the_hook() {
    let (sim, vpp) = setup("indexes").await;
    let rec = Arc::new(Recorder::default());
    sim.set_observer(rec.clone());
    let a = key("192.0.2.1", 80);
    let b = key("192.0.2.2", 53);
    vpp.add_vip(&a, Encap::Gre4, false).await.unwrap();
    vpp.add_vip(&b, Encap::Gre4, true).await.unwrap();
    let snap = vpp.lb_snapshot().await.unwrap();
    let pa = snap.pool_index(&a).unwrap();
    let pb = snap.pool_index(&b).unwrap();
    let host = |k: &VipKey| Prefix {
        address: k.address,
        len: k.prefix_len,
    };
    let sa = vpp.route_stats_index(host(&a)).await.unwrap();
    let sb = vpp.route_stats_index(host(&b)).await.unwrap();
    assert_eq!(
        (pa, pb, sa, sb),
        (1, 2, 8, 9),
        "as the statseg fixture's VPP numbered them"
    );
    let missing = vpp
        .route_stats_index(host(&key("192.0.2.3", 80)))
        .await
        .unwrap_err();
    assert_eq!(missing.retval(), Some(Retval::NO_SUCH_ENTRY));
    vpp.del_vip(&a).await.unwrap();
    assert_eq!(
        *rec.0.lock().unwrap(),
        [("added", 1, 8), ("added", 2, 9), ("removed", 1, 0)]
    );
    // Re-adding before garbage collection gives a new index; after it the
    // freed one comes back.
    vpp.add_vip(&a, Encap::Gre4, false).await.unwrap();
    assert_eq!(vpp.lb_snapshot().await.unwrap().pool_index(&a), Some(3));
    vpp.del_vip(&a).await.unwrap();
    sim.gc_now();
    vpp.add_vip(&a, Encap::Gre4, false).await.unwrap();
    assert_eq!(vpp.lb_snapshot().await.unwrap().pool_index(&a), Some(3));
}

#[tokio::test]
async fn bucket_counts_follow_the_maglev_model() {
    let (_sim, vpp) = setup("buckets").await;
    let a = key("192.0.2.1", 80);
    vpp.add_vip(&a, Encap::Gre4, false).await.unwrap();
    let weights = [
        ("10.0.0.1", 10u8),
        ("10.0.0.2", 20),
        ("10.0.0.3", 70),
        ("10.0.0.4", 0),
    ];
    for (addr, w) in weights {
        vpp.add_as(&a, ip(addr), w).await.unwrap();
    }
    let model =
        MaglevTable::build(weights.iter().map(|&(a, w)| (ip(a), w)), DEFAULT_TABLE_LEN).unwrap();
    let got: BTreeMap<IpAddr, u32> = vpp
        .lb_ases()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.num_buckets > 0)
        .map(|a| (a.address, a.num_buckets))
        .collect();
    assert_eq!(got, model.counts());
}

/// A plan far bigger than the client's in-flight bound, into an empty VPP
/// that takes 1 ms per AS op, with a 500 ms reply timeout: the plan takes
/// seconds, yet no op times out, because each op's deadline starts when it
/// is written and the plan is sent through a window
/// ([`maglev_vpp::lb::apply::MAX_OUTSTANDING`]) instead of all at once.
#[tokio::test(start_paused = true)]
async fn a_large_plan_never_times_out_against_its_own_queue() {
    let sim = Sim::start(SimConfig::new(common::sock_path("large-plan")))
        .await
        .unwrap();
    let timeout = std::time::Duration::from_millis(500);
    let vpp = Client::connect_with(
        sim.api_socket(),
        maglev_vpp::ClientConfig {
            timeout,
            ..maglev_vpp::ClientConfig::default()
        },
    )
    .await
    .unwrap();
    const VIPS: u8 = 100;
    const ASES: u8 = 20;
    let desired: DesiredState = (0..VIPS)
        .map(|v| {
            let k = key(&format!("192.0.2.{}", v + 1), 80);
            let ases: Vec<(String, u8)> = (0..ASES)
                .map(|a| (format!("10.1.{v}.{}", a + 1), 100))
                .collect();
            let ases: Vec<(&str, u8)> = ases.iter().map(|(a, w)| (a.as_str(), *w)).collect();
            (k, desired_vip(k, false, &ases))
        })
        .collect();
    let ops = plan_all(&desired, &Default::default(), &PendingFlushes::new());
    let as_ops = usize::from(VIPS) * usize::from(ASES);
    assert_eq!(ops.len(), usize::from(VIPS) + as_ops);
    sim.inject(Fault {
        message: Some("lb_add_del_as_v2"),
        action: FaultAction::Delay(std::time::Duration::from_millis(1)),
        times: as_ops,
    });
    let t0 = tokio::time::Instant::now();
    let report = apply(&vpp, &ops).await;
    assert!(
        t0.elapsed() > timeout * 3,
        "VPP's pace makes the plan outlast the timeout several times over"
    );
    assert!(report.is_complete(), "{report}");
    assert_eq!(sim.pending_faults(), 0);
    let held = vpp.observe().await.unwrap();
    assert_eq!(held.len(), usize::from(VIPS));
    assert!(held.values().all(|v| v.ases.len() == usize::from(ASES)));
}
