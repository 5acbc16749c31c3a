//! Our own descriptor limit is never a backend's failure: the daemon on
//! the simulator, its probes made unable to open a socket for real (the
//! soft `RLIMIT_NOFILE` lowered to 0, so every `socket(2)` fails with
//! `EMFILE`), with `fall: 1`, the harshest hysteresis. No backend leaves
//! `up`, the simulator's weights do not move, and the condition shows in
//! the backend status and in `/metrics`; when descriptors come back, the
//! probes run again.
//!
//! The limit is per process, so this file holds a single test: the test
//! harness runs the tests of one file as threads of one process.

mod common;

use common::{World, until, w};
use maglev_core::state::BackendState;
use maglev_health::Code;
use maglev_health::probe::LocalCause;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

const BODY: &str = r#"  backends:
    a: { address: 127.0.124.1, healthcheck: web }
    b: { address: 127.0.124.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.124
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

/// How many probes of each backend must have failed locally before the
/// test looks: many times `fall`.
const BLOCKED_PROBES: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_that_cannot_open_a_socket_leave_every_backend_and_weight_alone() {
    let mut world = World::new(124, 2).await;
    world.write_body(BODY);
    world.start(world.settings()).await;
    let programmed = w(&[("127.0.124.1", 100), ("127.0.124.2", 100)]);
    until("both backends up and programmed", || {
        world.weights("192.0.2.124") == programmed
    })
    .await;
    let before = world.handle().backends();

    // Out of descriptors: the soft limit at 0 (every new descriptor of
    // the process fails with EMFILE; those open stay usable).
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 0, hard).unwrap();
    let blocked = |name: &str| {
        world
            .handle()
            .backend(name)
            .ok()
            .and_then(|s| s.probe_blocked.clone())
    };
    until(
        "both backends' probes failed locally, again and again",
        || {
            ["a", "b"]
                .iter()
                .all(|b| blocked(b).is_some_and(|p| p.count >= BLOCKED_PROBES))
        },
    )
    .await;
    // Seen while still out of descriptors.
    let during = world.handle().backends();
    let weights = world.weights("192.0.2.124");
    let metrics = maglev_bin::metrics::render(world.handle());
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();

    for b in ["a", "b"] {
        let (was, now) = (&before[b], &during[b]);
        assert_eq!(now.state, BackendState::Up, "{b}");
        assert_eq!(now.counter, was.counter, "{b}: counter untouched");
        assert_eq!(now.history, was.history, "{b}: no transition");
        let p = now.probe_blocked.as_ref().unwrap();
        assert_eq!(p.reason, LocalCause::FdLimit, "{b}: {p:?}");
        assert!(p.detail.contains("create socket"), "{b}: {p:?}");
        assert!(
            metrics.contains(&format!(
                "maglev_backend_probe_blocked{{backend=\"{b}\"}} 1"
            )),
            "{metrics}"
        );
    }
    assert_eq!(weights, programmed, "the simulator's weights did not move");
    let fd_limit = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"maglev_probe_errors_total{reason="fd_limit"} "#))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("maglev_probe_errors_total{reason=\"fd_limit\"}");
    assert!(fd_limit >= 2 * BLOCKED_PROBES, "{fd_limit}");

    // Descriptors are back: the probes run and pass, nothing moved.
    until("probes run again", || {
        ["a", "b"].iter().all(|b| {
            world.handle().backend(b).is_ok_and(|s| {
                s.probe_blocked.is_none()
                    && s.last_probe.as_ref().is_some_and(|p| {
                        p.code == Code::L7Ok && p.at > before[*b].last_probe.as_ref().unwrap().at
                    })
            })
        })
    })
    .await;
    for b in ["a", "b"] {
        let s = world.handle().backend(b).unwrap();
        assert_eq!(s.state, BackendState::Up, "{b}");
        assert_eq!(s.history, before[b].history, "{b}");
    }
    assert_eq!(world.weights("192.0.2.124"), programmed);
    world.stop().await;
}
