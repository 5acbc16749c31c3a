//! The checker under paused tokio time, with an injected fake prober that
//! records when it probed which address (exact timing), and a real
//! loopback server for the "pause sends nothing" check.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_core::config::{Config, HealthCheck};
use maglev_core::state::BackendState;
use maglev_health::checker::{Checker, ProbeFactory};
use maglev_health::probe::{ProbeEnv, ProbeResult, Prober};
use maglev_health::status::BackendEvent;
use maglev_health::{Code, Error};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Every probe of every fake prober: address and time.
#[derive(Default)]
struct World {
    probes: Mutex<Vec<(IpAddr, Instant)>>,
    failing: Mutex<HashMap<IpAddr, Code>>,
    built: Mutex<usize>,
}

impl World {
    fn fail(&self, addr: &str, code: Code) {
        self.failing
            .lock()
            .unwrap()
            .insert(addr.parse().unwrap(), code);
    }
    fn heal(&self, addr: &str) {
        self.failing
            .lock()
            .unwrap()
            .remove(&addr.parse::<IpAddr>().unwrap());
    }
    fn times(&self, addr: &str) -> Vec<Instant> {
        let addr: IpAddr = addr.parse().unwrap();
        self.probes
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == addr)
            .map(|&(_, t)| t)
            .collect()
    }
    fn count(&self) -> usize {
        self.probes.lock().unwrap().len()
    }
}

#[derive(Debug)]
struct FakeProber(Arc<World>, &'static str);

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("World")
    }
}

#[async_trait::async_trait]
impl Prober for FakeProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        self.0.probes.lock().unwrap().push((target, Instant::now()));
        let code = self
            .0
            .failing
            .lock()
            .unwrap()
            .get(&target)
            .copied()
            .unwrap_or(Code::L7Ok);
        ProbeResult {
            code,
            detail: format!("fake {} {code}", self.1),
            duration: Duration::ZERO,
        }
    }
}

struct FakeProbes(Arc<World>);

impl ProbeFactory for FakeProbes {
    fn build(&self, _check: &HealthCheck, _env: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
        *self.0.built.lock().unwrap() += 1;
        Ok(Arc::new(FakeProber(self.0.clone(), "probe")))
    }
}

fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, "test.yaml").unwrap()
}

const BASE: &str = "
maglev:
  healthchecker:
    transition-history: 3
  healthchecks:
    web:
      type: http
      interval: 2s
      fast-interval: 500ms
      down-interval: 10s
      timeout: 100ms
      rise: 2
      fall: 3
    other:
      type: tcp
      port: 22
      interval: 1s
      timeout: 100ms
  backends:
    a: { address: 127.0.0.1, healthcheck: web }
    b: { address: 127.0.0.2, healthcheck: web }
    s: { address: 127.0.0.9 }
";

fn start(yaml: &str) -> (Checker, Arc<World>) {
    let world = Arc::new(World::default());
    let checker = Checker::with_probes(
        &config(yaml),
        Arc::new(FakeProbes(world.clone())),
        ProbeEnv::new(),
    )
    .unwrap();
    (checker, world)
}

/// Advances paused time by `d`, letting every timer on the way fire.
async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}

async fn next_event(rx: &mut broadcast::Receiver<BackendEvent>) -> BackendEvent {
    rx.recv().await.unwrap()
}

fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

fn within(d: Duration, base: Duration) -> bool {
    d >= base.mul_f64(0.9) && d <= base.mul_f64(1.1)
}

#[tokio::test(start_paused = true)]
async fn intervals_follow_the_counter_within_jitter_bounds() {
    let t0 = Instant::now();
    let (checker, world) = start(BASE);
    let mut events = checker.subscribe();

    // The first probe comes within the first fast interval and resolves
    // unknown at once.
    for _ in ["a", "b"] {
        let e = next_event(&mut events).await;
        assert_eq!(
            (e.transition.from, e.transition.to, e.transition.code),
            (BackendState::Unknown, BackendState::Up, Code::L7Ok)
        );
    }
    run_for(Duration::from_secs(21)).await;
    let a = world.times("127.0.0.1");
    assert!(a[0] - t0 < Duration::from_millis(500), "{:?}", a[0] - t0);
    // Fully up: every 2s ±10%.
    let g = gaps(&a);
    assert!(g.len() >= 9, "{g:?}");
    assert!(
        g.iter().all(|&d| within(d, Duration::from_secs(2))),
        "{g:?}"
    );
    // The jitter really varies.
    assert!(g.windows(2).any(|w| w[0] != w[1]), "{g:?}");

    // Failing: degraded (fast interval) until down, then the down interval.
    world.fail("127.0.0.1", Code::L7Sts);
    let before = world.times("127.0.0.1").len();
    loop {
        let e = next_event(&mut events).await;
        if &*e.backend == "a" {
            assert_eq!(
                (e.transition.to, e.transition.code),
                (BackendState::Down, Code::L7Sts)
            );
            break;
        }
    }
    run_for(Duration::from_secs(45)).await;
    let a = world.times("127.0.0.1");
    let g = gaps(&a[before - 1..]);
    // pass→fail (2s), fail 1 → fail 2 and fail 2 → fail 3 (fast), then down.
    assert!(within(g[0], Duration::from_secs(2)), "{g:?}");
    assert!(
        within(g[1], Duration::from_millis(500)) && within(g[2], Duration::from_millis(500)),
        "{g:?}"
    );
    assert!(
        g[3..].iter().all(|&d| within(d, Duration::from_secs(10))),
        "{g:?}"
    );
    assert!(g.len() >= 6, "{g:?}");

    // Rising: fast interval again.
    world.heal("127.0.0.1");
    let n = world.times("127.0.0.1").len();
    loop {
        let e = next_event(&mut events).await;
        if &*e.backend == "a" {
            assert_eq!(e.transition.to, BackendState::Up);
            break;
        }
    }
    let a = world.times("127.0.0.1");
    let g = gaps(&a[n - 1..]);
    assert_eq!(g.len(), 2, "{g:?}");
    assert!(
        within(g[0], Duration::from_secs(10)) && within(g[1], Duration::from_millis(500)),
        "{g:?}"
    );

    let status = checker.backend("a").unwrap();
    assert_eq!(
        (status.state, status.counter, status.rise, status.fall),
        (BackendState::Up, 4, 2, 3)
    );
    assert_eq!(status.last_probe.as_ref().unwrap().code, Code::L7Ok);
    // transition-history: 3.
    let h: Vec<_> = status.history.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        h,
        [
            (BackendState::Unknown, BackendState::Up),
            (BackendState::Up, BackendState::Down),
            (BackendState::Down, BackendState::Up)
        ]
    );
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn static_backends_are_up_at_once_and_never_probed() {
    let (checker, world) = start(BASE);
    let s = checker.backend("s").unwrap();
    assert_eq!(
        (s.state, s.healthcheck.as_deref(), s.history[0].code),
        (BackendState::Up, None, Code::Static)
    );
    run_for(Duration::from_secs(30)).await;
    assert!(world.times("127.0.0.9").is_empty());
    assert!(world.count() > 0);
    // One prober per health check in use (web, shared by a and b; none
    // for the unused check), however many backends use it.
    assert_eq!(*world.built.lock().unwrap(), 1);
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pause_stops_probing_and_resume_restarts_it_with_history() {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(5)).await;
    assert_eq!(checker.state("a"), BackendState::Up);
    let t = checker.pause("a").unwrap().unwrap();
    assert_eq!(
        (t.from, t.to, t.code),
        (BackendState::Up, BackendState::Paused, Code::Paused)
    );
    assert_eq!(checker.pause("a").unwrap(), None);
    let n = world.times("127.0.0.1").len();
    run_for(Duration::from_secs(60)).await;
    assert_eq!(world.times("127.0.0.1").len(), n, "probed while paused");
    assert!(world.times("127.0.0.2").len() > n, "b goes on");

    let mut events = checker.subscribe();
    let t = checker.resume("a").unwrap().unwrap();
    assert_eq!((t.to, t.code), (BackendState::Unknown, Code::Resumed));
    let e = next_event(&mut events).await;
    assert_eq!((&*e.backend, e.transition.code), ("a", Code::Resumed));
    let e = next_event(&mut events).await;
    assert_eq!((&*e.backend, e.transition.to), ("a", BackendState::Up));
    assert!(world.times("127.0.0.1").len() > n);
    let history: Vec<_> = checker
        .backend("a")
        .unwrap()
        .history
        .iter()
        .map(|t| t.code)
        .collect();
    assert_eq!(history, [Code::Paused, Code::Resumed, Code::L7Ok]);
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn disable_and_enable_and_their_refusals() {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(1)).await;
    checker.disable("a").unwrap().unwrap();
    let n = world.times("127.0.0.1").len();
    assert!(!checker.backend("a").unwrap().enabled);
    for r in [checker.pause("a"), checker.resume("a")] {
        match r {
            Err(Error::Refused {
                backend,
                action: _,
                state,
            }) => {
                assert_eq!((backend.as_str(), state), ("a", BackendState::Disabled));
            }
            other => panic!("want a refusal, got {other:?}"),
        }
    }
    assert_eq!(
        checker.pause("a").unwrap_err().to_string(),
        "cannot pause backend \"a\": it is disabled"
    );
    assert_eq!(checker.disable("a").unwrap(), None);
    run_for(Duration::from_secs(60)).await;
    assert_eq!(world.times("127.0.0.1").len(), n, "probed while disabled");
    let t = checker.enable("a").unwrap().unwrap();
    assert_eq!((t.to, t.code), (BackendState::Unknown, Code::Enabled));
    run_for(Duration::from_secs(1)).await;
    assert_eq!(checker.state("a"), BackendState::Up);
    assert!(matches!(checker.enable("nope"), Err(Error::NoBackend(n)) if n == "nope"));
    assert_eq!(checker.state("nope"), BackendState::Removed);
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_unchanged_backends_probing_without_a_gap() {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(9)).await;
    checker.disable("b").unwrap();
    let mut events = checker.subscribe();
    let reloaded_at = Instant::now();

    // a: same check, new address, must go on without a gap. b: same check,
    // operator-disabled: stays disabled although the file says enabled. s:
    // becomes checked. c: new. Nothing else is gone but... z is removed.
    let next = BASE
        .replace("a: { address: 127.0.0.1, healthcheck: web }", "a: { address: 127.0.0.11, healthcheck: web }")
        .replace("s: { address: 127.0.0.9 }", "s: { address: 127.0.0.9, healthcheck: other }\n    c: { address: 127.0.0.3, healthcheck: other }");
    checker.reload(&config(&next)).unwrap();
    run_for(Duration::from_secs(10)).await;

    let old = world.times("127.0.0.1");
    let new = world.times("127.0.0.11");
    assert!(old.iter().all(|&t| t <= reloaded_at));
    assert!(!new.is_empty());
    let mut all = old.clone();
    all.extend(new);
    let g = gaps(&all);
    assert!(
        g.iter().all(|&d| within(d, Duration::from_secs(2))),
        "gap across the reload: {g:?}"
    );

    let a = checker.backend("a").unwrap();
    assert_eq!((a.state, a.address), (Up, "127.0.0.11".parse().unwrap()));
    let b = checker.backend("b").unwrap();
    assert_eq!((b.state, b.enabled), (BackendState::Disabled, false));

    // Events: s restarted (static → checked, from up to unknown, then up),
    // c resolved. Nothing for a or b.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        assert!(
            checker.backend(&e.backend).is_some(),
            "{} not in the snapshot",
            e.backend
        );
        seen.push((
            e.backend.to_string(),
            e.transition.from,
            e.transition.to,
            e.transition.code,
        ));
    }
    seen.sort();
    use BackendState::{Unknown, Up};
    assert_eq!(
        seen,
        [
            ("c".into(), Unknown, Up, Code::L7Ok),
            ("s".into(), Unknown, Up, Code::L7Ok),
            ("s".into(), Up, Unknown, Code::Reloaded),
        ]
    );

    // Remove everything but s.
    let mut events = checker.subscribe();
    let only_s = "
maglev:
  healthchecks:
    other: { type: tcp, port: 22, interval: 1s, timeout: 100ms }
  backends:
    s: { address: 127.0.0.9, healthcheck: other, enabled: false }
";
    checker.reload(&config(only_s)).unwrap();
    let mut removed = Vec::new();
    while let Ok(e) = events.try_recv() {
        assert_eq!(
            (e.transition.to, e.transition.code),
            (BackendState::Removed, Code::Removed)
        );
        removed.push(e.backend.to_string());
    }
    assert_eq!(removed, ["a", "b", "c"]);
    assert_eq!(
        checker
            .snapshot()
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        ["s"]
    );
    // s's check did not change: its enabled state (true, up) survives the
    // file's `enabled: false`.
    assert_eq!(checker.state("s"), Up);
    let n = world.count();
    run_for(Duration::from_secs(10)).await;
    let after: Vec<_> = world.probes.lock().unwrap()[n..]
        .iter()
        .map(|p| p.0)
        .collect();
    assert!(
        after
            .iter()
            .all(|a| *a == "127.0.0.9".parse::<IpAddr>().unwrap()),
        "{after:?}"
    );
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_changed_check_restarts_with_the_files_enabled() {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(3)).await;
    let next = BASE.replace(
        "b: { address: 127.0.0.2, healthcheck: web }",
        "b: { address: 127.0.0.2, healthcheck: other, enabled: false }",
    );
    checker.reload(&config(&next)).unwrap();
    let b = checker.backend("b").unwrap();
    assert_eq!(
        (b.state, b.enabled, b.history.last().unwrap().code),
        (BackendState::Disabled, false, Code::Disabled)
    );
    let n = world.times("127.0.0.2").len();
    run_for(Duration::from_secs(30)).await;
    assert_eq!(world.times("127.0.0.2").len(), n);
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_task() {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(3)).await;
    checker.shutdown().await;
    let n = world.count();
    run_for(Duration::from_secs(60)).await;
    assert_eq!(world.count(), n);
    assert!(matches!(checker.pause("a"), Err(Error::Shutdown)));
    assert!(matches!(
        checker.reload(&config(BASE)),
        Err(Error::Shutdown)
    ));
}

#[tokio::test(start_paused = true)]
async fn pause_sends_no_traffic_to_a_real_server() {
    let (server, _heads) =
        common::http_fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let yaml = format!(
        "
maglev:
  healthchecks:
    web: {{ type: http, port: {}, interval: 1s, timeout: 500ms }}
  backends:
    a: {{ address: 127.0.0.1, healthcheck: web }}
",
        server.addr.port()
    );
    let checker = Checker::start(&config(&yaml)).unwrap();
    let mut events = checker.subscribe();
    // Wait for the first probe's verdict (whatever it is: paused time may
    // fire the timeout while real I/O is in flight).
    next_event(&mut events).await;
    let before = server.accepted();
    assert!(before >= 1);
    checker.pause("a").unwrap();
    run_for(Duration::from_secs(120)).await;
    assert_eq!(server.accepted(), before, "connections while paused");
    checker.resume("a").unwrap();
    while server.accepted() == before {
        run_for(Duration::from_secs(1)).await;
    }
    checker.shutdown().await;
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let r = Checker::with_probes(
        &config(BASE),
        Arc::new(FakeProbes(Arc::default())),
        ProbeEnv::new(),
    );
    assert!(matches!(r, Err(Error::NoRuntime)), "{r:?}");
}
