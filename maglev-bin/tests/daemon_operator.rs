//! End to end: operator actions (disable, enable, pause, resume, weight
//! changes with flush) and bad requests, asserting what the simulated VPP
//! ends up holding.

mod common;

use common::{World, until, w};
use maglev_bin::daemon::DaemonError;

/// Backends and frontends, after [`common::HEAD`].
const CONFIG: &str = r#"
  backends:
    a: { address: 127.0.2.1, healthcheck: web }
    b: { address: 127.0.2.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.20
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

async fn world() -> World {
    let mut world = World::new(2, 2).await;
    world.write_body(CONFIG);
    world.start(world.settings()).await;
    until("both backends carry traffic", || {
        world.weights("192.0.2.20") == w(&[("127.0.2.1", 100), ("127.0.2.2", 100)])
    })
    .await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_flushes_and_enable_brings_it_back() {
    let world = world().await;
    let status = world.handle().disable("a").unwrap();
    assert_eq!(status.state.as_str(), "disabled");
    until("a is drained with a flush", || {
        world.weights("192.0.2.20") == w(&[("127.0.2.1", 0), ("127.0.2.2", 100)])
            && world
                .flushes()
                .contains(&("192.0.2.20".into(), "127.0.2.1".into()))
    })
    .await;
    // Pausing a disabled backend is refused and names it.
    match world.handle().pause("a") {
        Err(DaemonError::FailedPrecondition(m)) => assert!(m.contains("\"a\""), "{m}"),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    world.handle().enable("a").unwrap();
    until("a is back", || {
        world.weights("192.0.2.20") == w(&[("127.0.2.1", 100), ("127.0.2.2", 100)])
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_drains_without_flush_and_resume_restores() {
    let world = world().await;
    world.handle().pause("b").unwrap();
    until("b is drained", || {
        world.weights("192.0.2.20") == w(&[("127.0.2.1", 100), ("127.0.2.2", 0)])
    })
    .await;
    assert!(
        !world
            .flushes()
            .contains(&("192.0.2.20".into(), "127.0.2.2".into())),
        "a pause never flushes"
    );
    world.handle().resume("b").unwrap();
    until("b is back", || {
        world.weights("192.0.2.20") == w(&[("127.0.2.1", 100), ("127.0.2.2", 100)])
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_change_applies_at_once_with_its_flush() {
    let world = world().await;
    let view = world
        .handle()
        .set_weight("web", "primary", "a", 40, true)
        .await
        .unwrap();
    assert_eq!(view.members[0].weight, 40);
    // set_weight returns once the sync ran: the simulator already holds it.
    assert_eq!(
        world.weights("192.0.2.20"),
        w(&[("127.0.2.1", 40), ("127.0.2.2", 100)])
    );
    assert!(
        world
            .flushes()
            .contains(&("192.0.2.20".into(), "127.0.2.1".into()))
    );
    // A flush with no weight change is still carried out.
    let before = world.flushes().len();
    world
        .handle()
        .set_weight("web", "primary", "b", 100, true)
        .await
        .unwrap();
    assert_eq!(world.flushes().len(), before + 1);
    assert_eq!(
        world.flushes().last().unwrap(),
        &("192.0.2.20".into(), "127.0.2.2".into())
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_what_is_wrong_and_change_nothing() {
    let world = world().await;
    let h = world.handle();
    match h.set_weight("web", "primary", "a", 101, false).await {
        Err(DaemonError::InvalidArgument(m)) => assert!(m.contains("101"), "{m}"),
        other => panic!("{other:?}"),
    }
    match h.set_weight("nope", "primary", "a", 1, false).await {
        Err(e @ DaemonError::NotFound { .. }) => assert!(e.to_string().contains("nope")),
        other => panic!("{other:?}"),
    }
    match h.set_weight("web", "spare", "a", 1, false).await {
        Err(e @ DaemonError::NotFound { .. }) => assert!(e.to_string().contains("spare")),
        other => panic!("{other:?}"),
    }
    match h.pause("ghost") {
        Err(e @ DaemonError::NotFound { .. }) => assert!(e.to_string().contains("ghost")),
        other => panic!("{other:?}"),
    }
    match h.sync(Some("ghost")).await {
        Err(e @ DaemonError::NotFound { .. }) => assert!(e.to_string().contains("ghost")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        world.weights("192.0.2.20"),
        w(&[("127.0.2.1", 100), ("127.0.2.2", 100)])
    );
    // An operator sync of a converged frontend sends nothing.
    assert_eq!(h.sync(Some("web")).await.unwrap().ops, []);
    world.stop().await;
}
