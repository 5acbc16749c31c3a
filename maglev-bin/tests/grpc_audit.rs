//! The audit trail: every write RPC over mTLS appears once in the log, as
//! an INFO `audit` record with the caller's identity, the RPC, its
//! arguments and the result, and is counted in
//! `maglev_grpc_writes_total{rpc,identity,result}`. A reader watches the
//! trail over `WatchEvents`. A node drain is a write like the others,
//! and names the audited caller as who drained it. Its own test binary, because it installs the
//! process's global subscriber (the [`LogLayer`] feeding the daemon's hub).

mod common;
mod grpc_common;
mod tls_common;

use std::sync::Arc;

use maglev_bin::announce::table::{MemoryTable, RouteTable};
use maglev_bin::daemon::{Daemon, Parts};
use maglev_bin::events::LogLayer;
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::event::Kind;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::World;
use grpc_common::next_event;
use tls_common::{Pki, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_audited_once_with_its_caller_arguments_and_result() {
    let pki = Pki::new();
    let mut world = World::new(87, 3).await;
    world.write_config(&format!(
        "{}  access:\n    admins: [alice]\n  announce:\n    table: 200\n",
        grpc_common::config(87)
    ));
    let table = Arc::new(MemoryTable::new());
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    tracing_subscriber::registry()
        .with(LogLayer::new(parts.hub.clone(), parts.clock.clone()))
        .try_init()
        .unwrap();
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    settings.grpc_tls = Some(pki.server_files(true));
    world.daemon = Some(Daemon::start(settings, parts).await.unwrap());
    let addr = world.daemon().grpc_addrs()[0];

    // bob may only read, and reading the audit trail is reading.
    let mut bob = client(&pki, addr, Some("bob"));
    let mut trail = bob
        .watch_events(grpc_common::logs("info"))
        .await
        .unwrap()
        .into_inner();

    let mut alice = client(&pki, addr, Some("alice"));
    let name = |n: &str| proto::BackendRequest { name: n.into() };
    alice.pause_backend(name("a")).await.unwrap();
    alice.resume_backend(name("a")).await.unwrap();
    alice.disable_backend(name("c")).await.unwrap();
    alice.enable_backend(name("c")).await.unwrap();
    alice
        .set_frontend_pool_backend_weight(proto::SetWeightRequest {
            frontend: "web".into(),
            pool: "primary".into(),
            backend: "b".into(),
            weight: 40,
            flush: false,
        })
        .await
        .unwrap();
    alice
        .sync_vpplb_state(proto::SyncVpplbStateRequest {
            frontend: "web".into(),
        })
        .await
        .unwrap();
    alice
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap();
    // The drain is audited, and says who as the audit trail does.
    let node = alice
        .set_node_drain(proto::SetNodeDrainRequest { drained: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((node.drained, node.drained_by.as_str()), (true, "alice"));
    alice
        .set_node_drain(proto::SetNodeDrainRequest { drained: false })
        .await
        .unwrap();
    let missing = alice.pause_backend(name("nope")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // Reads are not audited.
    alice
        .list_frontends(proto::ListFrontendsRequest::default())
        .await
        .unwrap();
    let denied = bob.pause_backend(name("b")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let denied = bob
        .set_node_drain(proto::SetNodeDrainRequest { drained: true })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(world.handle().node().drained.is_none(), "bob drained it");

    let want = [
        ("alice", "PauseBackend", r#"{"name":"a"}"#, "success"),
        ("alice", "ResumeBackend", r#"{"name":"a"}"#, "success"),
        ("alice", "DisableBackend", r#"{"name":"c"}"#, "success"),
        ("alice", "EnableBackend", r#"{"name":"c"}"#, "success"),
        (
            "alice",
            "SetFrontendPoolBackendWeight",
            r#"{"frontend":"web","pool":"primary","backend":"b","weight":40}"#,
            "success",
        ),
        (
            "alice",
            "SyncVPPLBState",
            r#"{"frontend":"web"}"#,
            "success",
        ),
        ("alice", "ReloadConfig", "{}", "success"),
        ("alice", "SetNodeDrain", r#"{"drained":true}"#, "success"),
        ("alice", "SetNodeDrain", "{}", "success"),
        ("alice", "PauseBackend", r#"{"name":"nope"}"#, "failure"),
        ("bob", "PauseBackend", r#"{"name":"b"}"#, "denied"),
        ("bob", "SetNodeDrain", r#"{"drained":true}"#, "denied"),
    ];
    // The records come in the order of the calls; bob's denials are the
    // last calls, so everything before them has been logged by then.
    let mut got = Vec::new();
    while got.len() < want.len() {
        let Kind::Log(l) = next_event(&mut trail).await else {
            panic!("only logs were asked for");
        };
        if l.target != "audit" {
            continue;
        }
        assert_eq!(l.level, "info", "{l:?}");
        assert_eq!(l.message, "audit", "{l:?}");
        assert!(l.fields["peer"].starts_with("127.0.0.1:"), "{l:?}");
        got.push(l.fields);
    }
    for (fields, (identity, rpc, args, result)) in got.iter().zip(want) {
        assert_eq!(
            (
                fields["identity"].as_str(),
                fields["rpc"].as_str(),
                fields["args"].as_str(),
                fields["result"].as_str()
            ),
            (identity, rpc, args, result),
            "{fields:?}"
        );
    }
    assert_eq!(got[9]["code"], "NotFound");
    assert!(got[9]["detail"].contains("nope"), "{:?}", got[9]);
    assert_eq!(
        got[10]["detail"],
        "PauseBackend is a write RPC and bob may only read (not in maglev.access.admins)"
    );
    assert_eq!(
        got[11]["detail"],
        "SetNodeDrain is a write RPC and bob may only read (not in maglev.access.admins)"
    );

    let text = maglev_bin::metrics::render(world.handle());
    for line in [
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="alice",result="success"} 1"#,
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="alice",result="failure"} 1"#,
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="bob",result="denied"} 1"#,
        r#"maglev_grpc_writes_total{rpc="ReloadConfig",identity="alice",result="success"} 1"#,
        r#"maglev_grpc_writes_total{rpc="SetNodeDrain",identity="alice",result="success"} 2"#,
        r#"maglev_grpc_writes_total{rpc="SetNodeDrain",identity="bob",result="denied"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(!text.contains(r#"rpc="ListFrontends",identity"#));
    drop((alice, bob, trail));
    world.stop().await;
}
