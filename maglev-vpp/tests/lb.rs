//! Typed LB operations and plan application against the simulator.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use maglev_core::dataplane::{DesiredAs, DesiredState, DesiredVip, Encap, VipKey};
use maglev_core::maglev::MaglevTable;
use maglev_core::plan::{Op, PendingFlushes, plan_all};
use maglev_vpp::api::messages::LbConf;
use maglev_vpp::api::types::Prefix;
use maglev_vpp::lb::apply::apply;
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
    assert!(report.failed.is_none(), "{:?}", report.failed);
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

#[tokio::test]
async fn apply_reports_the_first_error_with_its_op() {
    let (sim, vpp) = setup("apply-err").await;
    let a = key("192.0.2.1", 80);
    let b = key("192.0.2.2", 80);
    let desired: DesiredState = [
        (
            a,
            desired_vip(a, false, &[("10.0.0.1", 100), ("10.0.0.2", 50)]),
        ),
        (b, desired_vip(b, false, &[("10.0.0.1", 100)])),
    ]
    .into();
    let ops = plan_all(
        &desired,
        &vpp.observe().await.unwrap(),
        &PendingFlushes::new(),
    );
    // The first AS add of VIP a fails; VIP b's chain still completes its
    // round, VIP a's later stages are not sent.
    sim.inject(Fault::once(
        "lb_add_del_as_v2",
        FaultAction::Retval(Retval::INVALID_ARGUMENT.0),
    ));
    let report = apply(&vpp, &ops).await;
    let failed = report.failed.unwrap();
    assert_eq!(failed.index, 1);
    assert_eq!(failed.op, ops[1]);
    assert!(matches!(
        failed.error,
        Error::Retval {
            message: "lb_add_del_as_v2",
            retval: Retval::INVALID_ARGUMENT
        }
    ));
    assert_eq!(
        failed.to_string(),
        format!(
            "op 1 ({}): lb_add_del_as_v2: VPP returned -73 (invalid argument)",
            ops[1]
        )
    );
    assert!(report.done.contains(&ops[0]));
    assert!(!report.done.contains(&ops[1]));
    // A re-run after the fault converges.
    converge(&vpp, &desired).await;
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
    let model = MaglevTable::build(weights.iter().map(|&(a, w)| (ip(a), w)), 1024).unwrap();
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
