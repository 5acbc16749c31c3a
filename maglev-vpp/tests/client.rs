//! The async client against the simulator: handshake, pipelining from many
//! tasks, dumps, timeouts, disconnects, restarts, every injected fault,
//! the in-flight bound, cancellation, the observer and `closed()`. The
//! same client against a real VPP is in `client_live.rs`; the goodbye and
//! VPP's dead-connection leak in `goodbye.rs`.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use maglev_core::dataplane::{Encap, VipKey};
use maglev_vpp::api::error::DisconnectReason;
use std::sync::{Arc, Mutex};

use maglev_vpp::api::messages::{LbAsV2Dump, LbVipDump, MsgId, ShowVersion};
use maglev_vpp::sim::{Fault, FaultAction, Sim, SimConfig};
use maglev_vpp::{
    ApiEvent, ApiObserver, ApiResult, CLIENT_NAME, Client, ClientConfig, Direction, Error, Retval,
};
use tokio::time::Instant;

use common::sock_path;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip(a: &str, port: u16) -> VipKey {
    VipKey {
        address: ip(a),
        prefix_len: if ip(a).is_ipv4() { 32 } else { 128 },
        protocol: 6,
        port,
    }
}

async fn sim(name: &str) -> Sim {
    Sim::start(SimConfig::new(sock_path(name))).await.unwrap()
}

async fn client_with_timeout(sim: &Sim, timeout: Duration) -> Client {
    Client::connect_with(
        sim.api_socket(),
        ClientConfig {
            timeout,
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn handshake_and_liveness() {
    let sim = sim("hs").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    assert_eq!(vpp.client_index(), 0x8000_0001);
    assert_eq!(vpp.vpe_pid(), sim.config().vpe_pid);
    assert_eq!(vpp.ping().await.unwrap(), sim.config().vpe_pid);
    assert_eq!(
        vpp.vpp_version().await.unwrap(),
        "26.10-rc0~374-gb575ec2c56d"
    );
    let second = Client::connect(sim.api_socket()).await.unwrap();
    assert_eq!(second.client_index(), 0x8000_0002);
    vpp.close().await.unwrap();
    assert!(!vpp.is_connected());
    // VPP closes after its reply: the reason is EOF or our own close.
    assert!(matches!(
        vpp.ping().await,
        Err(Error::Disconnected {
            message: "control_ping",
            ..
        })
    ));
    assert!(second.ping().await.is_ok());
}

#[tokio::test]
async fn missing_or_changed_messages_are_named_with_the_vpp_version() {
    let mut config = SimConfig::new(sock_path("incompat"));
    config.tamper = vec![
        (MsgId::LbAsSetWeight, None),
        (MsgId::LbVipDump, Some(0xdead_beef)),
    ];
    let _sim = Sim::start(config.clone()).await.unwrap();
    let err = Client::connect(&config.api_socket).await.unwrap_err();
    let Error::Incompatible {
        vpp_version,
        problems,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(vpp_version, "26.10-rc0~374-gb575ec2c56d");
    let names: Vec<_> = problems.iter().map(|p| p.message).collect();
    assert_eq!(names, ["lb_as_set_weight", "lb_vip_dump"]);
    assert_eq!(
        err.to_string(),
        "VPP 26.10-rc0~374-gb575ec2c56d is not compatible: \
         lb_as_set_weight_2d89bdbd is missing (plugin not loaded?); \
         lb_vip_dump_56110cb7 has another definition: VPP has lb_vip_dump_deadbeef (CRC mismatch)"
    );
}

#[tokio::test]
async fn connect_to_nothing_is_a_connect_error() {
    let err = Client::connect(sock_path("nobody")).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_from_many_tasks() {
    let sim = sim("pipe").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let k = vip("192.0.2.1", 80);
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    for i in 1..=8u8 {
        vpp.add_as(&k, IpAddr::from([10, 0, 0, i]), 100)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let vpp = vpp.clone();
        tasks.push(tokio::spawn(async move {
            // Each task keeps 25 requests in flight, then waits for them.
            let pending: Vec<_> = (0..25u8)
                .map(|w| {
                    vpp.start(&maglev_vpp::lb::ops::weight_request(
                        &k,
                        IpAddr::from([10, 0, 0, t + 1]),
                        w,
                        false,
                    ))
                    .unwrap()
                })
                .collect();
            for p in pending {
                p.wait().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ases = vpp.lb_ases().await.unwrap();
    assert_eq!(ases.len(), 8);
    assert!(
        ases.iter().all(|a| a.weight == 24),
        "the last weight of each task wins"
    );
    assert_eq!(
        sim.requests() as usize,
        1 + 8 + 8 * 25 + 1 + 3 + 2 /* pings */
    );
}

#[tokio::test]
async fn dumps_collect_details_until_the_ping() {
    let sim = sim("dump").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    assert_eq!(vpp.dump(&LbAsV2Dump::default()).await.unwrap(), []);
    let a = vip("192.0.2.1", 80);
    let b = vip("2001:db8::1", 443);
    vpp.add_vip(&a, Encap::Gre4, true).await.unwrap();
    vpp.add_vip(&b, Encap::Gre6, false).await.unwrap();
    vpp.add_as(&a, ip("10.0.0.1"), 100).await.unwrap();
    vpp.add_as(&a, ip("10.0.0.2"), 50).await.unwrap();
    vpp.add_as(&b, ip("2001:db8:1::1"), 100).await.unwrap();
    let details = vpp.dump(&LbAsV2Dump::default()).await.unwrap();
    assert_eq!(details.len(), 3);
    let snap = vpp.lb_snapshot().await.unwrap();
    assert_eq!(snap.pool_index(&a), Some(1));
    assert_eq!(snap.pool_index(&b), Some(2));
    assert!(snap.vips[0].src_ip_sticky);
    assert_eq!(snap.ases.iter().map(|a| a.num_buckets).sum::<u32>(), 2048);
}

#[tokio::test(start_paused = true)]
async fn dropped_reply_times_out_and_a_late_reply_is_ignored() {
    let sim = sim("timeout").await;
    let vpp = client_with_timeout(&sim, Duration::from_millis(200)).await;
    sim.inject(Fault::once("show_version", FaultAction::DropReply));
    let err = vpp.call(&ShowVersion).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                message: "show_version",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(vpp.in_flight(), 0, "the matcher forgot it");
    // The connection is still usable.
    assert!(vpp.ping().await.is_ok());
}

#[tokio::test]
async fn delayed_reply_within_the_timeout_arrives() {
    let sim = sim("delay").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    sim.inject(Fault::once(
        "lb_conf_get",
        FaultAction::Delay(Duration::from_millis(20)),
    ));
    let conf = vpp.lb_conf_get().await.unwrap();
    assert_eq!(conf.sticky_buckets_per_core, 1024);
}

#[tokio::test]
async fn retvals_become_typed_errors_naming_the_message() {
    let sim = sim("retval").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let k = vip("192.0.2.1", 80);
    let err = vpp
        .set_weight(&k, ip("10.0.0.1"), 1, true)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "lb_as_set_weight: VPP returned -6 (no such entry)"
    );
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    let err = vpp.add_vip(&k, Encap::Gre4, false).await.unwrap_err();
    assert_eq!(err.retval(), Some(Retval::VALUE_EXIST));
    sim.inject(Fault::once("lb_add_del_as_v2", FaultAction::Retval(-73)));
    let err = vpp.add_as(&k, ip("10.0.0.1"), 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Retval {
                message: "lb_add_del_as_v2",
                retval: Retval::INVALID_ARGUMENT
            }
        ),
        "{err}"
    );
    assert_eq!(
        vpp.lb_ases().await.unwrap(),
        [],
        "an injected retval skips the handler"
    );
    assert_eq!(
        vpp.cli("bogus").await.unwrap_err().retval(),
        Some(Retval::UNSPECIFIED)
    );
}

#[tokio::test]
async fn close_fails_every_pending_request_promptly() {
    let sim = sim("close").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    // The first request closes the socket; the ones behind it never run.
    sim.inject(Fault::once("show_version", FaultAction::CloseSocket));
    let first = vpp.start(&ShowVersion).unwrap();
    let more: Vec<_> = (0..10).map(|_| vpp.start(&ShowVersion).unwrap()).collect();
    assert!(matches!(
        first.wait().await,
        Err(Error::Disconnected {
            message: "show_version",
            reason: DisconnectReason::Eof
        })
    ));
    for p in more {
        assert!(p.wait().await.unwrap_err().is_disconnected());
    }
    assert!(!vpp.is_connected());
    assert!(vpp.ping().await.unwrap_err().is_disconnected());
    vpp.reconnect().await.unwrap();
    assert!(vpp.ping().await.is_ok());
}

#[tokio::test]
async fn eof_mid_dump_fails_the_dump() {
    let sim = sim("middump").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let k = vip("192.0.2.1", 80);
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    for i in 1..=4u8 {
        vpp.add_as(&k, IpAddr::from([10, 0, 0, i]), 100)
            .await
            .unwrap();
    }
    sim.inject(Fault::once("lb_as_v2_dump", FaultAction::CloseMidDump));
    let err = vpp.dump(&LbAsV2Dump::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Disconnected {
                message: "lb_as_v2_dump",
                reason: DisconnectReason::Eof
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn vpp_restart_and_reconnect_with_new_message_ids() {
    let mut sim = sim("restart").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let k = vip("192.0.2.1", 80);
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    let old_id = vpp.message_id(MsgId::LbAsSetWeight).unwrap();
    let old_pid = vpp.vpe_pid();
    sim.restart().await.unwrap();
    assert!(vpp.ping().await.unwrap_err().is_disconnected());
    vpp.reconnect().await.unwrap();
    assert_ne!(vpp.message_id(MsgId::LbAsSetWeight).unwrap(), old_id);
    assert_eq!(
        vpp.message_id(MsgId::ControlPing),
        Some(23),
        "memclnt ids are fixed"
    );
    assert_ne!(vpp.ping().await.unwrap(), old_pid);
    assert_eq!(
        vpp.observe().await.unwrap().len(),
        0,
        "a restarted VPP is empty"
    );
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    assert_eq!(vpp.observe().await.unwrap().len(), 1);
}

#[tokio::test]
async fn stop_and_resume_keeps_state() {
    let mut sim = sim("resume").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let k = vip("192.0.2.1", 80);
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    sim.stop().await;
    assert!(vpp.ping().await.unwrap_err().is_disconnected());
    assert!(matches!(vpp.reconnect().await, Err(Error::Connect { .. })));
    sim.resume().await.unwrap();
    vpp.reconnect().await.unwrap();
    assert_eq!(vpp.observe().await.unwrap().len(), 1);
}

#[tokio::test]
async fn registers_under_the_name_vpp_maglev() {
    let sim = sim("name").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    assert_eq!(sim.clients().live, ["vpp-maglev"]);
    assert_eq!(CLIENT_NAME, "vpp-maglev");
    vpp.close().await.unwrap();
    // The simulator frees the registration before it replies.
    assert!(sim.clients().live.is_empty());
    assert_eq!(sim.clients().deleted, 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_pending_reply_cancels_its_request() {
    let sim = sim("drop-pending").await;
    let vpp = client_with_timeout(&sim, Duration::from_secs(3600)).await;
    sim.inject(Fault::once("show_version", FaultAction::DropReply));
    let p = vpp.start(&ShowVersion).unwrap();
    assert_eq!(vpp.in_flight(), 1);
    drop(p);
    assert_eq!(
        vpp.in_flight(),
        0,
        "no entry left behind for a reply that never comes"
    );
    // A dump dropped half-way is forgotten too.
    let d = vpp.start_dump(&LbVipDump::default()).unwrap();
    drop(d);
    assert_eq!((vpp.in_flight(), vpp.queued()), (0, 0));
    assert!(vpp.ping().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_request_still_waiting_for_room_is_never_sent() {
    let sim = sim("drop-queued").await;
    let vpp = Client::connect_with(
        sim.api_socket(),
        ClientConfig {
            max_in_flight: 1,
            timeout: Duration::from_secs(60),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    let before = sim.requests();
    sim.inject(Fault::once("show_version", FaultAction::DropReply));
    let first = vpp.start(&ShowVersion).unwrap();
    let second = vpp.start(&ShowVersion).unwrap();
    assert_eq!((vpp.in_flight(), vpp.queued()), (1, 1));
    drop(second);
    assert_eq!((vpp.in_flight(), vpp.queued()), (1, 0));
    assert!(matches!(first.wait().await, Err(Error::Timeout { .. })));
    assert!(vpp.ping().await.is_ok());
    assert_eq!(
        sim.requests() - before,
        2,
        "show_version once, then the ping"
    );
}

/// Records every event with the (paused) time it came.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Instant, ApiEvent)>>);

impl ApiObserver for Recorder {
    fn event(&self, event: ApiEvent) {
        self.0.lock().unwrap().push((Instant::now(), event));
    }
}

impl Recorder {
    fn events(&self) -> Vec<(&'static str, Direction, ApiResult)> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .map(|(_, e)| (e.message, e.direction, e.result))
            .collect()
    }

    fn sent_at(&self, message: &str) -> Vec<Instant> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(_, e)| e.message == message && e.direction == Direction::Sent)
            .map(|(t, _)| *t)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn in_flight_bound_reached_callers_wait_for_room_in_order() {
    let sim = sim("bound").await;
    let rec = Arc::new(Recorder::default());
    let timeout = Duration::from_secs(10);
    let vpp = Client::connect_with(
        sim.api_socket(),
        ClientConfig {
            max_in_flight: 2,
            timeout,
            observer: Some(rec.clone()),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    sim.inject(Fault {
        message: Some("show_version"),
        action: FaultAction::DropReply,
        times: 2,
    });
    let a = vpp.start(&ShowVersion).unwrap();
    let b = vpp.start(&ShowVersion).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let more: Vec<_> = (0..3).map(|_| vpp.start(&ShowVersion).unwrap()).collect();
    assert_eq!(
        (vpp.in_flight(), vpp.queued()),
        (2, 3),
        "the bound is reached"
    );
    assert!(matches!(a.wait().await, Err(Error::Timeout { .. })));
    assert!(matches!(b.wait().await, Err(Error::Timeout { .. })));
    for p in more {
        assert!(p.wait().await.is_ok(), "sent once there was room");
    }
    let sent = rec.sent_at("show_version");
    assert_eq!(sent.len(), 5);
    assert!(sent[..2].iter().all(|&t| t == t0));
    assert!(
        sent[2..].iter().all(|&t| t == t0 + timeout),
        "the waiting ones went out when the first two timed out: {sent:?}"
    );
    assert_eq!((vpp.in_flight(), vpp.queued()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_every_message_and_answer() {
    let sim = sim("observer").await;
    let rec = Arc::new(Recorder::default());
    let vpp = Client::connect_with(
        sim.api_socket(),
        ClientConfig {
            timeout: Duration::from_secs(1),
            observer: Some(rec.clone()),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    let k = vip("192.0.2.1", 80);
    vpp.add_vip(&k, Encap::Gre4, false).await.unwrap();
    assert!(vpp.cli("bogus").await.is_err());
    assert_eq!(vpp.dump(&LbVipDump::default()).await.unwrap().len(), 1);
    sim.inject(Fault::once("show_version", FaultAction::DropReply));
    assert!(vpp.call(&ShowVersion).await.is_err());
    vpp.close().await.unwrap();
    use ApiResult::*;
    use Direction::*;
    assert_eq!(
        rec.events(),
        [
            ("sockclnt_create", Sent, Ok),
            ("sockclnt_create_reply", Received, Ok),
            ("control_ping", Sent, Ok),
            ("control_ping_reply", Received, Ok),
            ("lb_add_del_vip_v2", Sent, Ok),
            ("lb_add_del_vip_v2_reply", Received, Ok),
            ("cli_inband", Sent, Ok),
            ("cli_inband_reply", Received, Retval(maglev_vpp::Retval(-1))),
            ("lb_vip_dump", Sent, Ok),
            ("lb_vip_details", Received, Ok),
            ("show_version", Sent, Ok),
            ("show_version_reply", Received, Timeout),
            ("sockclnt_delete", Sent, Ok),
            ("sockclnt_delete_reply", Received, Ok),
        ]
    );
}

#[tokio::test]
async fn closed_resolves_when_the_connection_goes() {
    let mut sim = sim("closed").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let gone = tokio::spawn(vpp.closed());
    sim.stop().await;
    assert_eq!(gone.await.unwrap(), DisconnectReason::Eof);
    sim.resume().await.unwrap();
    vpp.reconnect().await.unwrap();
    let gone = vpp.closed();
    vpp.close().await.unwrap();
    assert_eq!(gone.await, DisconnectReason::Closed);
}

#[tokio::test]
async fn reconnect_says_goodbye_on_the_old_connection() {
    let sim = sim("reconnect-bye").await;
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let old = vpp.closed();
    vpp.reconnect().await.unwrap();
    assert_eq!(old.await, DisconnectReason::Closed);
    let c = tokio::time::timeout(
        Duration::from_secs(10),
        sim.clients_until(|c| c.deleted == 1),
    )
    .await
    .expect("the old connection said goodbye");
    assert_eq!(c.live, [CLIENT_NAME]);
    assert!(vpp.ping().await.is_ok());
}

/// A request's reply deadline starts when it is written, not when it is
/// started: three requests through room for one, each taking VPP 800 ms,
/// with a 1 s timeout. The third waits 1.6 s for room and still gets its
/// answer; only a request that VPP itself keeps longer than the timeout
/// times out.
#[tokio::test(start_paused = true)]
async fn time_waiting_for_room_is_not_counted_against_vpp() {
    let sim = sim("deadline-at-send").await;
    let vpp = Client::connect_with(
        sim.api_socket(),
        ClientConfig {
            max_in_flight: 1,
            timeout: Duration::from_secs(1),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    sim.inject(Fault {
        message: Some("show_version"),
        action: FaultAction::Delay(Duration::from_millis(800)),
        times: 3,
    });
    let t0 = Instant::now();
    let pending: Vec<_> = (0..3).map(|_| vpp.start(&ShowVersion).unwrap()).collect();
    for p in pending {
        assert!(p.wait().await.is_ok(), "answered within 1 s of being sent");
    }
    assert!(t0.elapsed() >= Duration::from_millis(2400));
    sim.inject(Fault::once(
        "show_version",
        FaultAction::Delay(Duration::from_millis(1500)),
    ));
    assert!(matches!(
        vpp.call(&ShowVersion).await,
        Err(Error::Timeout { .. })
    ));
}
