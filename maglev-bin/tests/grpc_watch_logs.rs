//! `WatchEvents` log records: each subscriber gets the daemon's log
//! records at its own level, whatever the daemon itself logs at. Its own
//! test binary, because it installs the process's global subscriber (the
//! [`LogLayer`] feeding this daemon's hub).

mod common;
mod grpc_common;

use maglev_bin::daemon::{Daemon, Parts};
use maglev_bin::events::{EventHub, LogLayer};
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::event::Kind;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::World;
use grpc_common::{client, logs, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_subscriber_gets_logs_at_its_own_level() {
    let mut world = World::new(51, 3).await;
    world.write_config(&grpc_common::config(51));
    let parts = Parts::default();
    tracing_subscriber::registry()
        .with(LogLayer::new(parts.hub.clone(), parts.clock.clone()))
        .try_init()
        .unwrap();
    let hub: EventHub = parts.hub.clone();
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    world.daemon = Some(Daemon::start(settings, parts).await.unwrap());
    let mut c = client(&world).await;

    let mut debug = c.watch_events(logs("debug")).await.unwrap().into_inner();
    let mut info = c.watch_events(logs("info")).await.unwrap().into_inner();
    let mut warn = c.watch_events(logs("warn")).await.unwrap().into_inner();
    assert_eq!(hub.log_level(), Some(tracing::Level::DEBUG));

    // A reload that works (INFO), then one that does not (ERROR).
    let ok = c
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap();
    assert!(ok.into_inner().ok);
    std::fs::write(world.config_path(), "maglev: [unclosed\n").unwrap();
    let refused = c
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap();
    assert!(!refused.into_inner().ok);

    // The info subscriber sees both, in order, with their fields.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let Kind::Log(l) = next_event(&mut info).await else {
            panic!("only logs were asked for");
        };
        assert!(
            ["info", "warn", "error"].contains(&l.level.as_str()),
            "{l:?}"
        );
        if l.message == "config-reloaded" {
            assert_eq!(l.level, "info");
            assert!(l.target.starts_with("maglev_bin"), "{l:?}");
            assert_eq!(l.fields.get("frontends").map(String::as_str), Some("2"));
            seen.push(l.message);
        } else if l.message == "config-reload-parse-error" {
            assert_eq!(l.level, "error");
            assert!(l.fields.contains_key("path"), "{l:?}");
            seen.push(l.message);
        }
    }
    assert_eq!(seen, ["config-reloaded", "config-reload-parse-error"]);

    // The warn subscriber sees only the refusal.
    loop {
        let Kind::Log(l) = next_event(&mut warn).await else {
            panic!("only logs were asked for");
        };
        assert!(["warn", "error"].contains(&l.level.as_str()), "{l:?}");
        assert_ne!(l.message, "config-reloaded");
        if l.message == "config-reload-parse-error" {
            break;
        }
    }

    // The debug subscriber sees the probes' debug records.
    loop {
        let Kind::Log(l) = next_event(&mut debug).await else {
            panic!("only logs were asked for");
        };
        if l.level == "debug" && l.message == "probe start" {
            assert!(l.fields.contains_key("backend"), "{l:?}");
            break;
        }
    }
    drop((debug, info, warn));
    world.stop().await;
}
