//! End to end: restart neutrality. A daemon started against a VPP that an
//! earlier daemon programmed leaves it alone during hands-off, releases
//! each frontend once its backends are known, lets the watchdog release
//! the rest, and changes nothing when health agrees with VPP. Two daemons
//! with one config program identical Maglev tables.

mod common;

use common::{World, sim_vips, until, w};
use maglev_bin::events::{EventKind, Received};
use maglev_core::warmup::Phase;

fn config(min: &str, max: &str, slow_timeout: &str) -> String {
    format!(
        r#"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: {min}
      startup-max-delay: {max}
  healthchecks:
    web:
      type: http
      port: {{port}}
      interval: 100ms
      timeout: 100ms
      rise: 1
      fall: 1
    slow:
      type: http
      port: {{port}}
      interval: {slow_timeout}
      timeout: {slow_timeout}
      rise: 1
      fall: 1
  backends:
    a: {{ address: 127.0.5.1, healthcheck: web }}
    b: {{ address: 127.0.5.2, healthcheck: web }}
    s: {{ address: 127.0.5.3, healthcheck: slow }}
  frontends:
    web:
      address: 192.0.2.50
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: {{ a: {{}}, b: {{}} }}
    slow:
      address: 192.0.2.51
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: {{ s: {{}} }}
"#
    )
}

/// A world whose VPP an earlier daemon programmed with everything up.
async fn programmed() -> World {
    let mut world = World::new(5, 3).await;
    world.write_config(&config("0s", "0s", "100ms"));
    world.start(world.settings()).await;
    until("the first daemon programmed everything", || {
        world.weights("192.0.2.50") == w(&[("127.0.5.1", 100), ("127.0.5.2", 100)])
            && world.weights("192.0.2.51") == w(&[("127.0.5.3", 100)])
    })
    .await;
    world.daemon.take().unwrap().shutdown().await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_holds_then_releases_per_frontend_then_the_watchdog() {
    let mut world = programmed().await;
    // b is down now; s hangs, so it stays unknown for the slow timeout.
    world.backends[1].set_healthy(false);
    world.backends[2].set_hanging(true);
    world.write_config(&config("1s", "3s", "10s"));
    world.start(world.settings()).await;
    let before = world.vips();
    // Hands-off: whatever is read while the phase is still hands-off is
    // what the earlier daemon left.
    loop {
        let vips = world.vips();
        if world.handle().warmup_phase() != Phase::HandsOff {
            break;
        }
        assert_eq!(vips, before, "nothing touches VPP during hands-off");
        tokio::task::yield_now().await;
    }
    until(
        "web is released with b drained while slow is still held",
        || world.weights("192.0.2.50") == w(&[("127.0.5.1", 100), ("127.0.5.2", 0)]),
    )
    .await;
    assert_eq!(world.handle().warmup_phase(), Phase::Releasing);
    assert_eq!(
        world.weights("192.0.2.51"),
        w(&[("127.0.5.3", 100)]),
        "a frontend with an unknown backend is held"
    );
    until(
        "the watchdog released slow: its unknown backend is at 0",
        || world.weights("192.0.2.51") == w(&[("127.0.5.3", 0)]),
    )
    .await;
    assert_eq!(world.handle().warmup_phase(), Phase::Finished);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_changes_nothing_that_health_agrees_with() {
    let mut world = programmed().await;
    let before = world.vips();
    world.write_config(&config("200ms", "30s", "100ms"));
    world.start(world.settings()).await;
    let mut events = world.handle().subscribe(None);
    until("every frontend is released", || {
        world.handle().warmup_phase() == Phase::Finished
    })
    .await;
    assert_eq!(
        world.handle().sync(None).await.unwrap().ops,
        [],
        "VPP already holds it"
    );
    assert_eq!(world.vips(), before, "no weight, AS or VIP changed");
    while let Ok(Some(Received::Event(e))) =
        tokio::time::timeout(std::time::Duration::from_millis(1), events.recv()).await
    {
        assert!(!matches!(e.kind, EventKind::Vpp(_)), "no VPP change: {e:?}");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_program_identical_tables() {
    let mut one = World::new(5, 3).await;
    let mut two = World::new(5, 3).await;
    for world in [&mut one, &mut two] {
        world.write_config(&config("0s", "0s", "100ms"));
        world.start(world.settings()).await;
    }
    for world in [&one, &two] {
        until("programmed", || {
            world.weights("192.0.2.50") == w(&[("127.0.5.1", 100), ("127.0.5.2", 100)])
                && world.weights("192.0.2.51") == w(&[("127.0.5.3", 100)])
        })
        .await;
    }
    let (a, b) = (sim_vips(&one.vpp), sim_vips(&two.vpp));
    assert_eq!(a, b, "same AS sets, weights and bucket tables");
    assert!(a.iter().all(|v| v.buckets.iter().all(Option::is_some)));
    one.stop().await;
    two.stop().await;
}
