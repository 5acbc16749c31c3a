//! The announcement RPCs over gRPC, against a daemon on the simulator
//! whose routes go to a `MemoryTable` the test keeps: `SetNodeDrain`
//! withdraws every prefix before it answers and says who drained the
//! node, `GetNode`, `ListAnnouncements` and `GetFrontend` agree, a
//! `WatchEvents` with `announce` sees the drain and the withdraws;
//! a read-only daemon refuses the drain, and one without an announce
//! section says so.

mod common;
mod grpc_common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{World, until};
use grpc_common::{client, next_event};
use maglev_bin::announce::table::{MemoryTable, RouteTable};
use maglev_bin::daemon::{Parts, Settings};
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::event::Kind;
use maglev_core::announce::Prefix;
use tonic::Code;

/// `grpc_common`'s config with an announce section (no damping, so a
/// prefix comes back at once).
fn config(net: u8) -> String {
    format!(
        "{}  announce:\n    table: 200\n    min-interval: 0s\n",
        grpc_common::config(net)
    )
}

fn prefixes(list: &[String]) -> BTreeSet<Prefix> {
    list.iter()
        .map(|a| Prefix::host(a.parse().unwrap()))
        .collect()
}

/// A world on `net` with [`config`], its daemon serving gRPC with
/// `settings` tweaked, its routes in the table returned; waits until both
/// VIPs are announced.
async fn start(net: u8, tweak: impl FnOnce(&mut Settings)) -> (World, Arc<MemoryTable>) {
    let mut world = World::new(net, 3).await;
    world.write_config(&config(net));
    let table = Arc::new(MemoryTable::new());
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    tweak(&mut settings);
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    let both = prefixes(&[format!("192.0.2.{net}"), format!("198.51.100.{net}")]);
    until("both VIPs are announced", || table.routes() == both).await;
    (world, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_withdraws_every_prefix_says_who_and_is_watched() {
    let (world, table) = start(112, |_| {}).await;
    let mut c = client(&world).await;
    let node = c
        .get_node(proto::GetNodeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        node,
        proto::NodeInfo {
            drained: false,
            drained_by: String::new(),
            drained_since_unix_nanos: 0,
            announce_enabled: true,
            table: "memory".into(),
            announced: 2,
            prefixes: 2,
            // Who the node is is not this test's business.
            name: node.name.clone(),
            config_fingerprint: node.config_fingerprint,
            version: node.version.clone(),
        }
    );
    let mut watch = c
        .watch_events(proto::WatchRequest {
            announce: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Drained: the table is empty when the answer comes.
    let before = world.handle().clock().now_unix_nanos();
    let node = c
        .set_node_drain(proto::SetNodeDrainRequest { drained: true })
        .await
        .unwrap()
        .into_inner();
    assert!(table.routes().is_empty(), "{:?}", table.routes());
    assert!(node.drained, "{node:?}");
    // Who: the caller as the audit trail names it (plain gRPC: its address).
    assert_eq!(node.drained_by, "127.0.0.1");
    assert!(
        node.drained_since_unix_nanos >= before / 1_000_000 * 1_000_000,
        "{node:?}"
    );
    assert_eq!((node.announced, node.prefixes), (0, 2));
    assert_eq!(
        c.get_node(proto::GetNodeRequest {})
            .await
            .unwrap()
            .into_inner(),
        node
    );
    let list = c
        .list_announcements(proto::ListAnnouncementsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let states: Vec<(String, bool, String)> = list
        .announcements
        .iter()
        .map(|a| (a.prefix.clone(), a.announced, a.reason.clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("192.0.2.112/32".to_owned(), false, "drained".to_owned()),
            ("198.51.100.112/32".to_owned(), false, "drained".to_owned()),
        ]
    );
    let web = c
        .get_frontend(proto::GetFrontendRequest { name: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (web.announce.as_str(), web.announce_reason.as_str()),
        ("withdrawn", "drained")
    );
    // The watch: the node drained by the caller, and both withdraws.
    let mut drained_by = None;
    let mut withdrawn = BTreeSet::new();
    while drained_by.is_none() || withdrawn.len() < 2 {
        match next_event(&mut watch).await {
            Kind::Node(n) => {
                assert!(n.drained, "{n:?}");
                drained_by = Some(n.by);
            }
            Kind::Announce(a) if !a.announced => {
                assert_eq!(a.reason, "drained", "{a:?}");
                withdrawn.insert(a.prefix);
            }
            Kind::Announce(_) => {}
            other => panic!("only announce events were asked for: {other:?}"),
        }
    }
    assert_eq!(drained_by.as_deref(), Some("127.0.0.1"));

    // Undrained: both come back.
    let node = c
        .set_node_drain(proto::SetNodeDrainRequest { drained: false })
        .await
        .unwrap()
        .into_inner();
    assert!(!node.drained && node.drained_by.is_empty(), "{node:?}");
    let both = prefixes(&["192.0.2.112".into(), "198.51.100.112".into()]);
    until("both VIPs are announced again", || table.routes() == both).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_daemon_refuses_the_drain() {
    let (world, table) = start(113, |s| s.grpc_read_only = true).await;
    let mut c = client(&world).await;
    let e = c
        .set_node_drain(proto::SetNodeDrainRequest { drained: true })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert_eq!(
        e.message(),
        "SetNodeDrain is a write RPC and maglevd is read-only (--grpc-read-only); denied to 127.0.0.1"
    );
    // Reading still works, and nothing changed.
    let node = c
        .get_node(proto::GetNodeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!node.drained, "{node:?}");
    assert_eq!(node.announced, 2);
    assert_eq!(table.routes().len(), 2);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_announce_section_the_drain_is_refused_and_said_why() {
    let (world, mut c) = grpc_common::start(114, |_| {}).await;
    let node = c
        .get_node(proto::GetNodeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!node.announce_enabled && !node.drained, "{node:?}");
    let list = c
        .list_announcements(proto::ListAnnouncementsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!list.enabled && list.announcements.is_empty(), "{list:?}");
    let e = c
        .set_node_drain(proto::SetNodeDrainRequest { drained: true })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("maglev.announce"), "{}", e.message());
    world.stop().await;
}
