//! The checker under paused tokio time, with an injected fake prober that
//! records when it probed which address (exact timing), and a real
//! loopback server for the "pause sends nothing" check.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_core::config::{Config, HealthCheck, Probe, ProbeKind};
use maglev_core::state::BackendState;
use maglev_health::checker::{Checker, ProbeFactory};
use maglev_health::probe::{LocalCause, ProbeEnv, ProbeResult, Prober};
use maglev_health::status::{BackendEvent, Change};
use maglev_health::{Code, Error, ProbeObserver, ProbeRecord};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Every probe of every fake prober: address and time.
#[derive(Default)]
struct World {
    probes: Mutex<Vec<(IpAddr, Instant)>>,
    failing: Mutex<HashMap<IpAddr, Code>>,
    /// Probers of checks with these ports fail everything.
    failing_ports: Mutex<Vec<u16>>,
    built: Mutex<usize>,
}

impl World {
    fn fail_port(&self, port: u16) {
        self.failing_ports.lock().unwrap().push(port);
    }
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

/// Probes as the world says; `1` is the port of the check it was built for.
#[derive(Debug)]
struct FakeProber(Arc<World>, u16);

/// What fake probes say they took.
const FAKE_DURATION: Duration = Duration::from_millis(7);

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("World")
    }
}

#[async_trait::async_trait]
impl Prober for FakeProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        self.0.probes.lock().unwrap().push((target, Instant::now()));
        let port_fails = self.0.failing_ports.lock().unwrap().contains(&self.1);
        let code = self
            .0
            .failing
            .lock()
            .unwrap()
            .get(&target)
            .copied()
            .unwrap_or(if port_fails { Code::L7Sts } else { Code::L7Ok });
        // A SOCKERR is a probe that could not run: out of descriptors.
        let local = (code == Code::SockErr).then_some(LocalCause::FdLimit);
        ProbeResult {
            code,
            detail: format!("fake :{} {code}", self.1),
            duration: FAKE_DURATION,
            local,
        }
    }
}

struct FakeProbes(Arc<World>);

impl ProbeFactory for FakeProbes {
    fn build(&self, check: &HealthCheck, _env: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
        *self.0.built.lock().unwrap() += 1;
        let port = match &check.probe {
            Probe::Http(h) => h.port,
            Probe::Tcp(t) => t.port,
            Probe::Icmp => 0,
        };
        Ok(Arc::new(FakeProber(self.0.clone(), port)))
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

/// The next event, failing (not hanging) if none comes within 10 minutes
/// of paused time.
async fn next_event(rx: &mut broadcast::Receiver<BackendEvent>) -> BackendEvent {
    match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => panic!("event channel: {e}"),
        Err(_) => panic!("no backend event within 600s"),
    }
}

/// The next event of `backend`, skipping others.
async fn next_event_of(rx: &mut broadcast::Receiver<BackendEvent>, backend: &str) -> BackendEvent {
    loop {
        let e = next_event(rx).await;
        if &*e.backend == backend {
            return e;
        }
    }
}

/// Every event already broadcast, as (backend, from, to, code).
fn drain(
    rx: &mut broadcast::Receiver<BackendEvent>,
) -> Vec<(String, BackendState, BackendState, Code)> {
    // The transitions (probe-blocked and damping events left out).
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Some(t) = e.transition() {
            seen.push((e.backend.to_string(), t.from, t.to, t.code));
        }
    }
    seen
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
            (
                e.transition().unwrap().from,
                e.transition().unwrap().to,
                e.transition().unwrap().code
            ),
            (BackendState::Unknown, BackendState::Up, Code::L7Ok)
        );
    }
    run_for(Duration::from_secs(21)).await;
    let a = world.times("127.0.0.1");
    assert!(a[0] - t0 <= Duration::from_millis(500), "{:?}", a[0] - t0);
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
    let e = next_event_of(&mut events, "a").await;
    assert_eq!(
        (e.transition().unwrap().to, e.transition().unwrap().code),
        (BackendState::Down, Code::L7Sts)
    );
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
    let e = next_event_of(&mut events, "a").await;
    assert_eq!(e.transition().unwrap().to, BackendState::Up);
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
    assert_eq!(
        (&*e.backend, e.transition().unwrap().code),
        ("a", Code::Resumed)
    );
    let e = next_event(&mut events).await;
    assert_eq!(
        (&*e.backend, e.transition().unwrap().to),
        ("a", BackendState::Up)
    );
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

    // a: unchanged, must go on without a gap. b: same check,
    // operator-disabled: stays disabled although the file says enabled. s:
    // becomes checked. c: new.
    let next = BASE.replace(
        "s: { address: 127.0.0.9 }",
        "s: { address: 127.0.0.9, healthcheck: other }\n    c: { address: 127.0.0.3, healthcheck: other }",
    );
    checker.reload(&config(&next)).unwrap();
    run_for(Duration::from_secs(10)).await;

    let all = world.times("127.0.0.1");
    assert!(all.iter().any(|&t| t > reloaded_at));
    let g = gaps(&all[all.len() - 8..]);
    assert!(
        g.iter().all(|&d| within(d, Duration::from_secs(2))),
        "gap across the reload: {g:?}"
    );

    let a = checker.backend("a").unwrap();
    assert_eq!((a.state, a.counter), (Up, 4));
    let b = checker.backend("b").unwrap();
    assert_eq!((b.state, b.enabled), (BackendState::Disabled, false));

    // Events: c resolved. s (static → checked) stays up: a reload never
    // drains a healthy backend. Nothing for a or b.
    let mut seen = drain(&mut events);
    for (backend, ..) in &seen {
        assert!(
            checker.backend(backend).is_some(),
            "{backend} not in the snapshot"
        );
    }
    seen.sort();
    use BackendState::{Unknown, Up};
    assert_eq!(seen, [("c".into(), Unknown, Up, Code::L7Ok)]);
    assert_eq!(checker.state("s"), Up);

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
    let mut disabled = Vec::new();
    while let Ok(e) = events.try_recv() {
        let t = e.transition().unwrap();
        match (t.to, t.code) {
            (BackendState::Removed, Code::Removed) => removed.push(e.backend.to_string()),
            (BackendState::Disabled, Code::Disabled) => {
                assert_eq!(t.detail, "disabled in config");
                disabled.push(e.backend.to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(removed, ["a", "b", "c"]);
    // s's file now says `enabled: false` (it said true): the file's change
    // applies, although the check did not change.
    assert_eq!(disabled, ["s"]);
    assert_eq!(
        checker
            .snapshot()
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        ["s"]
    );
    assert_eq!(checker.state("s"), BackendState::Disabled);
    let n = world.count();
    run_for(Duration::from_secs(10)).await;
    // Nothing is probed any more: a, b, c are gone and s is disabled.
    assert_eq!(world.count(), n);
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
    // Resumed: probed again within a fast interval (1s); give it 60s of
    // paused time, then fail rather than wait forever.
    for _ in 0..60 {
        if server.accepted() > before {
            break;
        }
        run_for(Duration::from_secs(1)).await;
    }
    assert!(
        server.accepted() > before,
        "no probe reached the server within 60s of resume"
    );
    checker.shutdown().await;
}

/// Starts BASE and lets every probed backend come up, fully.
async fn started_and_up() -> (Checker, Arc<World>) {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(5)).await;
    for b in ["a", "b"] {
        let s = checker.backend(b).unwrap();
        assert_eq!((s.state, s.counter), (BackendState::Up, 4), "{b}");
    }
    (checker, world)
}

#[tokio::test(start_paused = true)]
async fn a_timing_only_reload_keeps_state_and_counter() {
    let (checker, world) = started_and_up().await;
    // One failure: a is up but degraded (counter 3 of 4).
    world.fail("127.0.0.1", Code::L7Sts);
    for _ in 0..30 {
        if checker.backend("a").unwrap().counter == 3 {
            break;
        }
        run_for(Duration::from_millis(100)).await;
    }
    world.heal("127.0.0.1");
    assert_eq!(checker.backend("a").unwrap().counter, 3);
    let mut events = checker.subscribe();
    let reloaded_at = Instant::now();
    let next = BASE.replace("interval: 2s", "interval: 3s").replace(
        "timeout: 100ms\n      rise: 2\n      fall: 3",
        "timeout: 200ms\n      rise: 3\n      fall: 4",
    );
    assert_ne!(next, BASE);
    checker.reload(&config(&next)).unwrap();

    // State kept, counter clamped: a keeps its one failure seen (6 - 1 of
    // Max 6), b stays fully up (6).
    let a = checker.backend("a").unwrap();
    assert_eq!(
        (a.state, a.counter, a.rise, a.fall),
        (BackendState::Up, 5, 3, 4)
    );
    let b = checker.backend("b").unwrap();
    assert_eq!((b.state, b.counter), (BackendState::Up, 6));
    assert_eq!(drain(&mut events), [], "no transition on a timing change");

    // Probing goes on at the new pace, with no transition.
    run_for(Duration::from_secs(30)).await;
    assert_eq!(drain(&mut events), []);
    let after: Vec<_> = world
        .times("127.0.0.2")
        .into_iter()
        .filter(|&t| t > reloaded_at)
        .collect();
    let g = gaps(&after);
    assert!(g.len() >= 5, "{g:?}");
    assert!(
        g.iter().all(|&d| within(d, Duration::from_secs(3))),
        "{g:?}"
    );
    assert_eq!(
        checker.backend("a").unwrap().counter,
        6,
        "one pass restored a"
    );
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_changing_reload_keeps_up_until_the_new_probe_decides() {
    let (checker, world) = started_and_up().await;
    // The new probe (port 8080) fails everything.
    world.fail_port(8080);
    let mut events = checker.subscribe();
    let reloaded_at = Instant::now();
    let next = BASE.replace("type: http\n", "type: http\n      port: 8080\n");
    assert_ne!(next, BASE);
    checker.reload(&config(&next)).unwrap();
    for b in ["a", "b"] {
        let s = checker.backend(b).unwrap();
        assert_eq!(
            (s.state, s.counter, s.last_probe.as_ref()),
            (BackendState::Up, 4, None),
            "{b}"
        );
    }
    assert_eq!(drain(&mut events), [], "the reload itself drains nothing");

    // a stays up through fall - 1 = 2 failures of the new probe and goes
    // down at the third.
    let e = next_event_of(&mut events, "a").await;
    assert_eq!(
        (
            e.transition().unwrap().from,
            e.transition().unwrap().to,
            e.transition().unwrap().code
        ),
        (BackendState::Up, BackendState::Down, Code::L7Sts)
    );
    let probes_after: Vec<_> = world
        .times("127.0.0.1")
        .into_iter()
        .filter(|&t| t > reloaded_at)
        .collect();
    assert_eq!(
        probes_after.len(),
        3,
        "down at the third failure, not before"
    );
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_passing_new_probe_never_moves_the_state() {
    let (checker, world) = started_and_up().await;
    let mut events = checker.subscribe();
    let next = BASE.replace("type: http\n", "type: tcp\n      port: 8443\n");
    checker.reload(&config(&next)).unwrap();
    let n = world.times("127.0.0.1").len();
    run_for(Duration::from_secs(20)).await;
    assert!(world.times("127.0.0.1").len() > n + 5);
    assert_eq!(drain(&mut events), []);
    let a = checker.backend("a").unwrap();
    assert_eq!((a.state, a.counter), (BackendState::Up, 4));
    assert_eq!(a.last_probe.as_ref().unwrap().detail, "fake :8443 L7OK");
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_address_change_is_a_new_target_from_unknown() {
    let (checker, world) = started_and_up().await;
    let mut events = checker.subscribe();
    // The new address fails at first.
    world.fail("127.0.0.21", Code::L4Con);
    let reloaded_at = Instant::now();
    let next = BASE.replace("address: 127.0.0.1,", "address: 127.0.0.21,");
    checker.reload(&config(&next)).unwrap();
    // At once, before any probe: unknown, so weight 0.
    let a = checker.backend("a").unwrap();
    assert_eq!(
        (a.state, a.address),
        (BackendState::Unknown, "127.0.0.21".parse().unwrap())
    );
    let e = next_event(&mut events).await;
    assert_eq!(
        (
            &*e.backend,
            e.address,
            e.transition().unwrap().from,
            e.transition().unwrap().to,
            e.transition().unwrap().code
        ),
        (
            "a",
            a.address,
            BackendState::Up,
            BackendState::Unknown,
            Code::Reloaded
        )
    );
    // The first probe of the new address fails: down, never up.
    let e = next_event_of(&mut events, "a").await;
    assert_eq!(
        (e.transition().unwrap().to, e.transition().unwrap().code),
        (BackendState::Down, Code::L4Con)
    );
    // It passes: up after rise (2) passes.
    world.heal("127.0.0.21");
    let e = next_event_of(&mut events, "a").await;
    assert_eq!(
        (e.transition().unwrap().from, e.transition().unwrap().to),
        (BackendState::Down, BackendState::Up)
    );
    assert!(
        world.times("127.0.0.1").iter().all(|&t| t <= reloaded_at),
        "the old address is not probed after the reload"
    );
    assert_eq!(drain(&mut events), [], "nothing for b");
    checker.shutdown().await;
}

/// One probe as the observer was told: backend, address, type, code,
/// duration, result.
type Seen = (String, IpAddr, ProbeKind, Code, Duration, &'static str);

/// Records every probe it is told of.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl ProbeObserver for Recorder {
    fn probe_ended(&self, r: &ProbeRecord<'_>) {
        self.0.lock().unwrap().push((
            r.backend.to_owned(),
            r.address,
            r.kind,
            r.code,
            r.duration,
            r.result(),
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn the_observer_hears_every_probe() {
    let world = Arc::new(World::default());
    let recorder = Arc::new(Recorder::default());
    let checker = Checker::builder()
        .probes(Arc::new(FakeProbes(world.clone())))
        .observer(recorder.clone())
        .start(&config(BASE))
        .unwrap();
    world.fail("127.0.0.2", Code::L7Sts);
    run_for(Duration::from_secs(10)).await;
    checker.shutdown().await;
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(seen.len(), world.count(), "one record per probe");
    let a = seen.iter().filter(|r| r.0 == "a").count();
    assert_eq!(a, world.times("127.0.0.1").len());
    assert!(a >= 4, "{a}");
    for (backend, address, kind, code, duration, result) in &seen {
        let want = match backend.as_str() {
            "a" => ("127.0.0.1", Code::L7Ok, "pass"),
            "b" => ("127.0.0.2", Code::L7Sts, "fail"),
            other => panic!("static backend {other} probed"),
        };
        assert_eq!(
            (*address, *kind, *code, *duration, *result),
            (
                want.0.parse().unwrap(),
                ProbeKind::Http,
                want.1,
                FAKE_DURATION,
                want.2
            )
        );
    }
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

const DAMPED: &str = "
maglev:
  healthchecks:
    web:
      type: http
      interval: 1s
      timeout: 100ms
      rise: 1
      fall: 1
      slow-start: 10s
      damping: { half-life: 60s, suppress: 2.5, reuse: 1, max-suppress: 5m }
  backends:
    a: { address: 127.0.0.1, healthcheck: web }
";

/// The next damping change of `backend`, skipping transitions.
async fn next_damping_of(
    rx: &mut broadcast::Receiver<BackendEvent>,
    backend: &str,
) -> maglev_health::status::DampingChange {
    loop {
        let e = next_event_of(rx, backend).await;
        if let Change::Damping(d) = e.change {
            return d;
        }
    }
}

async fn next_transition_of(
    rx: &mut broadcast::Receiver<BackendEvent>,
    backend: &str,
) -> BackendState {
    loop {
        let e = next_event_of(rx, backend).await;
        if let Some(t) = e.transition() {
            return t.to;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_flapping_backend_is_suppressed_until_its_penalty_decays() {
    use maglev_health::damping::Change;
    let (checker, world) = start(DAMPED);
    let mut events = checker.subscribe();
    assert_eq!(next_transition_of(&mut events, "a").await, BackendState::Up);
    // Three flaps: down (1), up (2), down (3 > 2.5).
    world.fail("127.0.0.1", Code::L7Sts);
    assert_eq!(
        next_transition_of(&mut events, "a").await,
        BackendState::Down
    );
    world.heal("127.0.0.1");
    assert_eq!(next_transition_of(&mut events, "a").await, BackendState::Up);
    assert!(
        !checker
            .backend("a")
            .unwrap()
            .serving(Instant::now())
            .suppressed
    );
    world.fail("127.0.0.1", Code::L7Sts);
    let suppressed = next_damping_of(&mut events, "a").await;
    assert_eq!(suppressed.change, Change::Suppressed);
    assert!(suppressed.penalty > 2.5, "{suppressed:?}");
    let release_at = suppressed.release_at.expect("a release time");
    world.heal("127.0.0.1");
    // Up again, but held: the weight rules see it suppressed.
    assert_eq!(next_transition_of(&mut events, "a").await, BackendState::Up);
    let status = checker.backend("a").unwrap();
    let serving = status.serving(Instant::now());
    assert_eq!(serving.state, BackendState::Up);
    assert!(serving.suppressed);
    assert_eq!(status.flaps, 4);
    // The fourth flap, while suppressed, pushed the release later.
    let released = next_damping_of(&mut events, "a").await;
    assert_eq!(released.change, Change::Released);
    assert!(released.at > release_at, "{released:?} vs {release_at:?}");
    assert!(released.penalty < 1.0);
    let status = checker.backend("a").unwrap();
    assert!(!status.serving(Instant::now()).suppressed);
    // Released while up: a comeback, so it slow-starts from the release.
    let ramp = *status.ramp.as_deref().expect("a ramp from the release");
    assert!(
        ramp.since > release_at && ramp.since <= released.at,
        "{ramp:?}"
    );
    assert_eq!(status.serving(released.at).ramp, Some(0));
    // log2(~3.9 / 1) half-lives after the last flap.
    assert!(
        released.at - suppressed.at < Duration::from_secs(150),
        "{released:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_start_ramps_a_backend_back_from_down_but_not_at_start() {
    let (checker, world) = start(DAMPED);
    let mut events = checker.subscribe();
    assert_eq!(next_transition_of(&mut events, "a").await, BackendState::Up);
    assert_eq!(checker.backend("a").unwrap().ramp, None, "no ramp at start");
    assert_eq!(
        checker.backend("a").unwrap().serving(Instant::now()).ramp,
        None
    );
    world.fail("127.0.0.1", Code::L7Sts);
    assert_eq!(
        next_transition_of(&mut events, "a").await,
        BackendState::Down
    );
    world.heal("127.0.0.1");
    assert_eq!(next_transition_of(&mut events, "a").await, BackendState::Up);
    let status = checker.backend("a").unwrap();
    let ramp = *status.ramp.as_deref().expect("a ramp after down → up");
    assert_eq!(ramp.length, Duration::from_secs(10));
    let serving = |at| status.serving(at).ramp;
    assert_eq!(serving(ramp.since), Some(0));
    assert_eq!(serving(ramp.since + Duration::from_secs(5)), Some(5));
    assert_eq!(serving(ramp.since + Duration::from_secs(10)), None);
    assert_eq!(
        ramp.next_step_at(ramp.since),
        Some(ramp.since + Duration::from_secs(1))
    );
}

#[tokio::test(start_paused = true)]
async fn seeded_backends_start_in_their_restored_state_and_probes_confirm_it() {
    use maglev_health::checker::Seed;
    let world = Arc::new(World::default());
    let now = Instant::now();
    let seed = |address: &str, state| Seed {
        address: address.parse().unwrap(),
        state,
        since: now - Duration::from_secs(600),
        penalty: 0.0,
        penalty_at: now,
    };
    let seeds = [
        ("a".to_owned(), seed("127.0.0.1", BackendState::Up)),
        ("b".to_owned(), seed("127.0.0.99", BackendState::Up)),
    ]
    .into_iter()
    .collect();
    let checker = Checker::builder()
        .probes(Arc::new(FakeProbes(world.clone())))
        .seed(seeds)
        .start(&config(BASE))
        .unwrap();
    let mut events = checker.subscribe();
    let a = checker.backend("a").unwrap();
    assert_eq!(a.state, BackendState::Up, "restored before any probe");
    assert_eq!(a.history.last().unwrap().code, Code::Restored);
    assert_eq!(a.history.last().unwrap().at, now - Duration::from_secs(600));
    assert_eq!(a.ramp, None, "a restored up is no comeback");
    assert_eq!(
        checker.backend("b").unwrap().state,
        BackendState::Unknown,
        "a seed for another address is ignored"
    );
    assert_eq!(world.count(), 0);
    // A restored up needs `fall` (3) failures to go down, as it would
    // have while running: a restart changes no hysteresis.
    assert_eq!(a.counter, 4, "rise + fall - 1, as after a steady up");
    world.fail("127.0.0.1", Code::L4Con);
    assert_eq!(
        next_transition_of(&mut events, "a").await,
        BackendState::Down
    );
    assert_eq!(world.times("127.0.0.1").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_seeded_penalty_decays_from_when_it_was_saved() {
    use maglev_health::checker::Seed;
    let now = Instant::now();
    let start = |saved_ago: Duration| {
        let seed = Seed {
            address: "127.0.0.1".parse().unwrap(),
            state: BackendState::Up,
            since: now - Duration::from_secs(3600),
            penalty: 4.0,
            penalty_at: now - saved_ago,
        };
        Checker::builder()
            .probes(Arc::new(FakeProbes(Arc::new(World::default()))))
            .seed([("a".to_owned(), seed)].into())
            .start(&config(DAMPED))
            .unwrap()
    };
    // Saved just now: 4 > 2.5, still held.
    let held = start(Duration::ZERO);
    let a = held.backend("a").unwrap();
    assert!(a.serving(now).suppressed);
    assert!((a.damping.as_ref().unwrap().penalty(now) - 4.0).abs() < 1e-9);
    // Saved three half-lives ago: 0.5 < reuse 1, released at start.
    let free = start(Duration::from_secs(180));
    let a = free.backend("a").unwrap();
    assert!(!a.serving(now).suppressed);
    assert!((a.damping.as_ref().unwrap().penalty(now) - 0.5).abs() < 1e-9);
}

/// Log lines written while a capture is installed (on this thread: the
/// paused-time tests run every task on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Installs a subscriber writing here for as long as the guard lives.
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The lines holding every one of `words`.
    fn lines_with(&self, words: &[&str]) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_owned)
            .collect()
    }
}

/// Counts what `probe_could_not_run` hears.
#[derive(Debug, Default)]
struct Blocked(Mutex<Vec<(String, LocalCause)>>);

impl ProbeObserver for Blocked {
    fn probe_ended(&self, _: &ProbeRecord<'_>) {}
    fn probe_could_not_run(&self, backend: &str, cause: LocalCause) {
        self.0.lock().unwrap().push((backend.to_owned(), cause));
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_could_not_run_moves_nothing_and_is_retried_counted_and_logged_once() {
    let logs = Logs::default();
    let _capture = logs.capture();
    let world = Arc::new(World::default());
    let heard = Arc::new(Blocked::default());
    let checker = Checker::builder()
        .probes(Arc::new(FakeProbes(world.clone())))
        .observer(heard.clone())
        .start(&config(BASE))
        .unwrap();
    let mut events = checker.subscribe();
    assert_eq!(next_transition_of(&mut events, "a").await, BackendState::Up);
    // Fully up (interval 2s) before our trouble starts.
    run_for(Duration::from_secs(10)).await;
    let before = checker.backend("a").unwrap();
    assert_eq!(before.counter, 4);
    let _ = drain(&mut events);

    // Out of descriptors: every probe of a fails locally, for 30s.
    let t0 = Instant::now();
    world.fail("127.0.0.1", Code::SockErr);
    run_for(Duration::from_secs(30)).await;
    let during = checker.backend("a").unwrap();
    assert_eq!(during.state, BackendState::Up, "no evidence, no change");
    assert_eq!(during.counter, before.counter, "the counter is untouched");
    assert_eq!(during.history, before.history);
    assert_eq!(
        during.last_probe, before.last_probe,
        "the last evidence stays"
    );
    // No transition of a: one event saying its probes could not run.
    let mut heard_a = Vec::new();
    while let Ok(e) = events.try_recv() {
        if &*e.backend == "a" {
            heard_a.push(e.change);
        }
    }
    match &heard_a[..] {
        [Change::ProbeBlocked(b)] => {
            assert!(b.blocked);
            assert_eq!((b.spell.reason, b.spell.count), (LocalCause::FdLimit, 1));
        }
        other => panic!("expected one probe-blocked event of a, got {other:?}"),
    }
    // Retried at the interval of a fully up backend, as if nothing happened.
    let tries: Vec<Instant> = world
        .times("127.0.0.1")
        .into_iter()
        .filter(|t| *t > t0)
        .collect();
    assert!(tries.len() >= 13, "{} probes in 30s", tries.len());
    for gap in gaps(&tries) {
        assert!(within(gap, Duration::from_secs(2)), "{gap:?}");
    }
    let blocked = during.probe_blocked.clone().expect("shown as blocked");
    assert_eq!(blocked.reason, LocalCause::FdLimit);
    assert_eq!(blocked.since, tries[0]);
    assert_eq!(blocked.count, tries.len() as u64, "every one counted");
    assert_eq!(
        *heard.0.lock().unwrap(),
        vec![("a".to_owned(), LocalCause::FdLimit); tries.len()],
        "the observer heard each, and only a's"
    );
    assert_eq!(
        logs.lines_with(&["probe-blocked", "backend=\"a\""]).len(),
        1,
        "logged once, not per probe: {:?}",
        logs.lines_with(&["probe-blocked"])
    );
    assert!(checker.backend("b").unwrap().probe_blocked.is_none());

    // Descriptors again: the next probe runs, and the spell is over.
    world.heal("127.0.0.1");
    run_for(Duration::from_secs(3)).await;
    let after = checker.backend("a").unwrap();
    assert_eq!(after.probe_blocked, None);
    assert_eq!(after.state, BackendState::Up);
    assert_eq!(after.last_probe.as_ref().unwrap().code, Code::L7Ok);
    match events.try_recv().map(|e| (e.backend, e.change)) {
        Ok((backend, Change::ProbeBlocked(b))) => {
            assert_eq!(&*backend, "a");
            assert!(!b.blocked, "probes run again");
            assert_eq!(b.spell.count, tries.len() as u64);
        }
        other => panic!("expected a's probe-unblocked event, got {other:?}"),
    }
    let cleared = logs.lines_with(&["probe-unblocked"]);
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert!(cleared[0].contains("blocked="), "{}", cleared[0]);
    assert_eq!(logs.lines_with(&["probe-blocked"]).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn probes_that_could_not_run_hold_a_down_and_an_unknown_backend_too() {
    let (checker, world) = start(BASE);
    let mut events = checker.subscribe();
    // b is down, a never got a result.
    world.fail("127.0.0.2", Code::L7Sts);
    world.fail("127.0.0.1", Code::SockErr);
    assert_eq!(
        next_transition_of(&mut events, "b").await,
        BackendState::Down
    );
    world.fail("127.0.0.2", Code::SockErr);
    run_for(Duration::from_secs(60)).await;
    let a = checker.backend("a").unwrap();
    assert_eq!(a.state, BackendState::Unknown);
    assert!(a.probe_blocked.as_ref().unwrap().count > 10);
    let b = checker.backend("b").unwrap();
    assert_eq!(b.state, BackendState::Down);
    assert_eq!(b.counter, 0);
    assert!(b.probe_blocked.is_some());
    assert!(drain(&mut events).is_empty(), "nothing moved");
}

#[tokio::test(start_paused = true)]
async fn restored_intents_start_paused_or_disabled_without_probe_traffic() {
    use maglev_health::checker::Intent;
    let world = Arc::new(World::default());
    let file = BASE.replace(
        "s: { address: 127.0.0.9 }",
        "s: { address: 127.0.0.9, enabled: false }",
    );
    let checker = Checker::builder()
        .probes(Arc::new(FakeProbes(world.clone())))
        .intents(
            [
                ("a".to_owned(), Intent::Paused),
                ("b".to_owned(), Intent::Disabled),
                ("s".to_owned(), Intent::Enabled),
            ]
            .into(),
        )
        .start(&config(&file))
        .unwrap();
    assert_eq!(checker.state("a"), BackendState::Paused);
    assert_eq!(checker.state("b"), BackendState::Disabled);
    assert!(!checker.backend("b").unwrap().enabled);
    // s: static, disabled in the file, enabled by an operator.
    assert_eq!(checker.state("s"), BackendState::Up);
    run_for(Duration::from_secs(60)).await;
    assert_eq!(world.count(), 0, "no probe to a paused or disabled backend");
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_applies_the_files_changed_enabled_and_keeps_operator_state_otherwise() {
    let (checker, world) = start(BASE);
    run_for(Duration::from_secs(9)).await;
    assert_eq!(checker.state("a"), BackendState::Up);
    // b paused by an operator; its check changes: it stays paused.
    checker.pause("b").unwrap();
    let next = BASE
        .replace(
            "a: { address: 127.0.0.1, healthcheck: web }",
            "a: { address: 127.0.0.1, healthcheck: web, enabled: false }",
        )
        .replace(
            "b: { address: 127.0.0.2, healthcheck: web }",
            "b: { address: 127.0.0.2, healthcheck: other }",
        );
    checker.reload(&config(&next)).unwrap();
    let a = checker.backend("a").unwrap();
    assert_eq!((a.state, a.enabled), (BackendState::Disabled, false));
    assert_eq!(a.history.last().unwrap().detail, "disabled in config");
    assert_eq!(checker.state("b"), BackendState::Paused);
    let n = world.count();
    run_for(Duration::from_secs(30)).await;
    assert_eq!(world.count(), n, "neither a nor b is probed");

    // An operator enables a against the file; a reload that does not
    // change a's `enabled` keeps it enabled.
    checker.enable("a").unwrap();
    checker.reload(&config(&next)).unwrap();
    assert!(checker.backend("a").unwrap().enabled);
    // The file changes it back to enabled: nothing to do, a is enabled.
    checker.reload(&config(BASE)).unwrap();
    assert!(checker.backend("a").unwrap().enabled);
    checker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_backend_enabled_against_the_file_is_seeded_like_any_other() {
    use maglev_health::checker::{Intent, Seed};
    let now = Instant::now();
    let file = BASE.replace(
        "a: { address: 127.0.0.1, healthcheck: web }",
        "a: { address: 127.0.0.1, healthcheck: web, enabled: false }",
    );
    let seed = Seed {
        address: "127.0.0.1".parse().unwrap(),
        state: BackendState::Up,
        since: now - Duration::from_secs(60),
        penalty: 0.0,
        penalty_at: now,
    };
    let checker = Checker::builder()
        .probes(Arc::new(FakeProbes(Arc::new(World::default()))))
        .seed([("a".to_owned(), seed)].into())
        .intents([("a".to_owned(), Intent::Enabled)].into())
        .start(&config(&file))
        .unwrap();
    let a = checker.backend("a").unwrap();
    assert_eq!((a.state, a.enabled), (BackendState::Up, true));
    assert_eq!(a.history.last().unwrap().code, Code::Restored);
    checker.shutdown().await;
}
