//! End to end on the simulator: the wall clock is read where a time is
//! stamped. A step of the system clock after start (NTP catching up on a
//! router that booted with a wrong clock) moves every later event time and
//! the state file's timestamp, so the next start trusts its file.

mod common;

use std::time::Duration;

use common::{World, until, w};
use maglev_bin::clock::WallClock;
use maglev_bin::daemon::Parts;
use maglev_bin::events::{EventHub, EventKind, Received};
use maglev_core::state::BackendState;
use maglev_health::persist;

const BODY: &str = r#"  backends:
    a: { address: 127.0.93.1, healthcheck: web }
    b: { address: 127.0.93.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.93
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

/// When the clock starts: 2027-01-15, in seconds.
const START: u64 = 1_800_000_000;
/// The step NTP makes after start: a day.
const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_step_moves_event_times_and_the_state_file_stamp() {
    let mut world = World::new(93, 2).await;
    let state = world.dir.path().join("state.json");
    world.write_body(BODY);
    let (clock, step) = WallClock::stepped(tokio::time::Instant::now(), Duration::from_secs(START));
    let hub = EventHub::new();
    let mut events = hub.subscribe(None);
    let parts = Parts {
        hub,
        clock,
        ..Parts::default()
    };
    let mut settings = world.settings();
    settings.state_file = Some(state.clone());
    world.start_with(settings, parts).await;
    until("both backends serve", || {
        world.weights("192.0.2.93") == w(&[("127.0.93.1", 100), ("127.0.93.2", 100)])
    })
    .await;

    // NTP steps the clock a day forward; then b fails.
    step.step(i64::try_from(DAY.as_nanos()).unwrap());
    let stepped_ns = i64::try_from((Duration::from_secs(START) + DAY).as_nanos()).unwrap();
    world.backends[1].set_healthy(false);
    let transition = loop {
        match tokio::time::timeout(common::PATIENCE, events.recv()).await {
            Ok(Some(Received::Event(e))) => {
                if let EventKind::Backend { backend, .. } = &e.kind
                    && &**backend == "b"
                    && world.handle().backend_state("b") == BackendState::Down
                {
                    break e;
                }
            }
            Ok(Some(Received::Lost(_))) => {}
            other => panic!("no transition of b: {other:?}"),
        }
    };
    assert!(
        transition.unix_nanos >= stepped_ns,
        "the transition is stamped after the step: {} < {stepped_ns}",
        transition.unix_nanos
    );

    // The state file written after the change carries the stepped time.
    let stepped_ms = stepped_ns / 1_000_000;
    until("the state file records b down after the step", || {
        std::fs::read(&state)
            .ok()
            .and_then(|bytes| persist::decode(&bytes, "state").ok())
            .is_some_and(|s| {
                s.written_unix_ms >= stepped_ms
                    && s.backends
                        .get("b")
                        .is_some_and(|b| b.state == BackendState::Down)
            })
    })
    .await;
    world.daemon.take().unwrap().shutdown().await;
    let saved = persist::decode(&std::fs::read(&state).unwrap(), "state").unwrap();
    assert!(saved.written_unix_ms >= stepped_ms);
    assert!(saved.backends["b"].since_unix_ms >= stepped_ms);

    // A start a few seconds later by the (now right) clock trusts the
    // file: b is known down before any probe.
    let later = Duration::from_secs(START) + DAY + Duration::from_secs(5);
    let parts = Parts {
        clock: WallClock::at(tokio::time::Instant::now(), later),
        ..Parts::default()
    };
    let mut settings = world.settings();
    settings.state_file = Some(state);
    world.start_with(settings, parts).await;
    assert_eq!(world.handle().backend_state("a"), BackendState::Up);
    assert_eq!(world.handle().backend_state("b"), BackendState::Down);
    world.stop().await;
}
