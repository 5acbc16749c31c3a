//! The `Dataplane` trait: the socket client and the in-memory model answer
//! every plan the same way, and a reconciler written against
//! `Arc<dyn Dataplane>` runs on either.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use maglev_core::dataplane::{DesiredAs, DesiredState, DesiredVip, Encap, VipKey, observed_from};
use maglev_core::plan::{Op, PendingFlushes, plan_all};
use maglev_vpp::api::messages::LbConf;
use maglev_vpp::lb::apply::{ApplyReport, chains};
use maglev_vpp::lb::dataplane::{Dataplane, ModelDataplane};
use maglev_vpp::lb::ops::LB_CONF_KEEP;
use maglev_vpp::sim::{Fault, FaultAction, Sim, SimConfig};
use maglev_vpp::{Client, Retval};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(a: &str, port: u16) -> VipKey {
    VipKey::host(ip(a), Some(maglev_core::dataplane::Protocol::Tcp), port)
}

fn vip(k: VipKey, sticky: bool, ases: &[(&str, u8)]) -> (VipKey, DesiredVip) {
    (
        k,
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
        },
    )
}

/// The report with errors as text: comparable across implementations.
fn summary(r: &ApplyReport) -> (Vec<Op>, Vec<(usize, String)>, Vec<Op>) {
    (
        r.done.clone(),
        r.failed
            .iter()
            .map(|f| (f.index, f.error.to_string()))
            .collect(),
        r.skipped.clone(),
    )
}

/// The first op matching `which` that the scheduler sends: earliest
/// round, then plan order.
fn first_sent(ops: &[Op], which: impl Fn(&Op) -> bool) -> Op {
    let mut sent: Vec<(usize, usize)> = chains(ops)
        .iter()
        .flat_map(|c| {
            c.stages
                .iter()
                .enumerate()
                .flat_map(|(round, s)| s.indexes().iter().map(move |&i| (round, i)))
        })
        .filter(|&(_, i)| which(&ops[i]))
        .collect();
    sent.sort_unstable();
    ops[sent[0].1]
}

/// Applies `ops` to both and checks they agree on the report and on the
/// whole LB snapshot (pool indexes, buckets, stickiness) afterwards.
async fn both(socket: &Client, model: &ModelDataplane, ops: &[Op]) -> ApplyReport {
    let a = Dataplane::apply(socket, ops).await;
    let b = model.apply(ops).await;
    assert_eq!(summary(&a), summary(&b), "same report");
    assert_eq!(
        Dataplane::snapshot(socket).await.unwrap(),
        model.snapshot().await.unwrap(),
        "same LB state after {ops:?}"
    );
    a
}

#[tokio::test]
async fn socket_and_memory_agree_on_a_sequence_of_plans() {
    let sim = Sim::start(SimConfig::new(common::sock_path("dp-agree")))
        .await
        .unwrap();
    let socket = Client::connect(sim.api_socket()).await.unwrap();
    let model = ModelDataplane::new();
    let (a, b, c, d) = (
        key("192.0.2.1", 80),
        key("192.0.2.1", 443),
        key("192.0.2.2", 80),
        key("2001:db8::10", 443),
    );
    let steps: Vec<DesiredState> = vec![
        [
            vip(a, false, &[("10.0.0.1", 100), ("10.0.0.2", 50)]),
            vip(b, true, &[("10.0.0.1", 100)]),
            vip(c, false, &[("10.0.1.1", 100), ("10.0.1.2", 100)]),
            vip(d, false, &[("2001:db8:1::1", 100), ("2001:db8:1::2", 0)]),
        ]
        .into(),
        // Weights move, c is recreated sticky, b goes, d's ASes change.
        [
            vip(a, false, &[("10.0.0.1", 0), ("10.0.0.3", 100)]),
            vip(c, true, &[("10.0.1.1", 100), ("10.0.1.2", 100)]),
            vip(d, false, &[("2001:db8:1::1", 10), ("2001:db8:1::3", 90)]),
        ]
        .into(),
        // b comes back before garbage collection: a new pool index, on both.
        [
            vip(a, false, &[("10.0.0.3", 100)]),
            vip(b, false, &[("10.0.0.4", 100)]),
            vip(c, true, &[("10.0.1.1", 1)]),
        ]
        .into(),
    ];
    for desired in &steps {
        let observed = Dataplane::observe(&socket).await.unwrap();
        assert_eq!(observed, model.observe().await.unwrap());
        let ops = plan_all(desired, &observed, &PendingFlushes::new());
        let report = both(&socket, &model, &ops).await;
        assert!(report.is_complete(), "{report}");
        assert_eq!(model.observe().await.unwrap(), observed_from(desired));
    }

    // The same failure injected on each side: the first weight change sent
    // (a's, after b's deletion on the same prefix; b's re-creation is
    // skipped).
    let desired: DesiredState = [
        vip(a, false, &[("10.0.0.3", 50), ("10.0.0.5", 1)]),
        vip(b, true, &[("10.0.0.4", 20)]),
        vip(c, false, &[("10.0.1.1", 1)]),
    ]
    .into();
    let ops = plan_all(
        &desired,
        &model.observe().await.unwrap(),
        &PendingFlushes::new(),
    );
    sim.inject(Fault::once(
        "lb_as_set_weight",
        FaultAction::Retval(Retval::INVALID_ARGUMENT.0),
    ));
    model.fail_once(
        first_sent(&ops, |op| matches!(op, Op::SetWeight { .. })),
        Retval::INVALID_ARGUMENT,
    );
    let report = both(&socket, &model, &ops).await;
    assert_eq!(report.failed.len(), 1, "{report}");
    assert_eq!(
        report.skipped,
        [
            Op::CreateVip {
                table_len: 1024,
                key: b,
                encap: Encap::Gre4,
                src_ip_sticky: true
            },
            Op::AddAs {
                vip: b,
                address: ip("10.0.0.4"),
                weight: 20
            }
        ],
        "{report}"
    );

    // Refusals the model makes itself: an IPv6 AS on a GRE4 VIP (-97), a
    // weight for an unknown AS (-6), beside an op that succeeds.
    let ops = [
        Op::AddAs {
            vip: a,
            address: ip("2001:db8:9::1"),
            weight: 1,
        },
        Op::SetWeight {
            vip: c,
            address: ip("10.9.9.9"),
            weight: 1,
            flush: false,
        },
        Op::AddAs {
            vip: d,
            address: ip("2001:db8:1::7"),
            weight: 1,
        },
    ];
    let report = both(&socket, &model, &ops).await;
    let retvals: Vec<_> = report.failed.iter().map(|f| f.error.retval()).collect();
    assert_eq!(
        retvals,
        [
            Some(Retval::INVALID_ADDRESS_FAMILY),
            Some(Retval::NO_SUCH_ENTRY),
            Some(Retval::NO_SUCH_ENTRY)
        ]
    );
}

#[tokio::test]
async fn socket_and_memory_agree_on_lb_conf() {
    let sim = Sim::start(SimConfig::new(common::sock_path("dp-conf")))
        .await
        .unwrap();
    let socket = Client::connect(sim.api_socket()).await.unwrap();
    let model = ModelDataplane::new();
    let base = LbConf {
        ip4_src_address: Ipv4Addr::new(10, 0, 0, 1),
        ip6_src_address: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        sticky_buckets_per_core: LB_CONF_KEEP,
        flow_timeout: LB_CONF_KEEP,
    };
    let wants = [
        (base, Ok(true)),
        (base, Ok(false)),
        (
            LbConf {
                sticky_buckets_per_core: 1024,
                flow_timeout: 40,
                ..base
            },
            Ok(false),
        ),
        (
            LbConf {
                flow_timeout: 5,
                ..base
            },
            Ok(true),
        ),
        (
            LbConf {
                sticky_buckets_per_core: 3,
                ..base
            },
            Err(Some(Retval::INVALID_MEMORY_SIZE)),
        ),
    ];
    for (want, expected) in wants {
        let a = Dataplane::ensure_lb_conf(&socket, &want)
            .await
            .map_err(|e| e.retval());
        let b = model.ensure_lb_conf(&want).await.map_err(|e| e.retval());
        assert_eq!((a, b), (expected, expected), "{want:?}");
        assert_eq!(
            socket.lb_conf_get().await.unwrap(),
            model.with_model(|m| m.conf)
        );
    }
}

/// A reconciler as a daemon writes it: over `Arc<dyn Dataplane>`.
async fn sync(vpp: Arc<dyn Dataplane>, desired: DesiredState) -> ApplyReport {
    let observed = vpp.observe().await.expect("observe");
    let ops = plan_all(&desired, &observed, &PendingFlushes::new());
    vpp.apply(&ops).await
}

#[tokio::test]
async fn a_reconciler_runs_on_the_model_without_sockets() {
    let model = Arc::new(ModelDataplane::new());
    let vpp: Arc<dyn Dataplane> = model.clone();
    let (a, c) = (key("192.0.2.1", 80), key("192.0.2.2", 80));
    let desired: DesiredState = [
        vip(a, false, &[("10.0.0.1", 100)]),
        vip(c, false, &[("10.0.1.1", 100)]),
    ]
    .into();
    model.fail_once(
        Op::CreateVip {
            table_len: 1024,
            key: a,
            encap: Encap::Gre4,
            src_ip_sticky: false,
        },
        Retval::VALUE_EXIST,
    );
    // The futures are Send: the sync runs on another task.
    let report = tokio::spawn(sync(vpp.clone(), desired.clone()))
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.skipped,
        [Op::AddAs {
            vip: a,
            address: ip("10.0.0.1"),
            weight: 100
        }]
    );
    let observed = vpp.observe().await.unwrap();
    assert_eq!(observed.keys().copied().collect::<Vec<_>>(), [c]);
    let report = sync(vpp.clone(), desired.clone()).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(vpp.observe().await.unwrap(), observed_from(&desired));
    assert!(
        sync(vpp, desired).await.done.is_empty(),
        "nothing left to do"
    );
}
