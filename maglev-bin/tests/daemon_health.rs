//! End to end on the simulator: the health features that keep a flapping
//! backend or a restart from hurting users. Pool thresholds fail a
//! primary over and back with hysteresis; slow start ramps a returning
//! backend in steps; flap damping holds a flapping one at 0; the state
//! file makes a quick restart invisible, and a stale or corrupt one is a
//! cold start.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use common::{World, parts_with_hub, until, w};
use maglev_bin::daemon::Parts;
use maglev_bin::events::{EventKind, Received, Subscription};
use maglev_core::state::BackendState;
use maglev_core::warmup::Phase;
use maglev_health::Code;
use maglev_health::checker::ProbeFactory;
use maglev_health::persist;
use maglev_health::probe::{ProbeEnv, ProbeResult, Prober};
use maglev_health::status::Change;

/// The head of these tests' configs, with the warm-up delays and the
/// `web` check's interval and extra keys as given.
fn head(min: &str, max: &str, interval: &str, check_extra: &str) -> String {
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
      interval: {interval}
      timeout: 100ms
      rise: 1
      fall: 1
{check_extra}"#
    )
}

/// Every event published so far (without waiting for more).
fn drain(events: &mut Subscription) -> Vec<EventKind> {
    let mut seen = Vec::new();
    while let Some(r) = events.try_recv() {
        if let Received::Event(e) = r {
            seen.push(e.kind.clone());
        }
    }
    seen
}

/// The VPP ops published from now on, up to the first one `last` accepts:
/// the simulator holds an op's result before the daemon has its reply
/// and publishes it, so a wait on the simulator does not mean every op
/// is in the hub yet.
async fn ops_until(events: &mut Subscription, last: impl Fn(&str) -> bool) -> Vec<String> {
    let mut ops = Vec::new();
    loop {
        match tokio::time::timeout(common::PATIENCE, events.recv()).await {
            Ok(Some(Received::Event(e))) => {
                if let EventKind::Vpp(c) = &e.kind {
                    ops.push(c.op.clone());
                    if last(&c.op) {
                        return ops;
                    }
                }
            }
            Ok(Some(Received::Lost(n))) => panic!("{n} events lost"),
            Ok(None) => panic!("the hub closed"),
            Err(_) => panic!("no such op within the patience; saw {ops:?}"),
        }
    }
}

/// The VPP ops published in `events`, as logged.
fn vpp_ops(events: &[EventKind]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::Vpp(c) => Some(c.op.clone()),
            _ => None,
        })
        .collect()
}

/// Backends a and b on 127.0.`net`.1-2 in the one pool of frontend `web`
/// at 192.0.2.`net`.
fn two_backends(net: u8) -> String {
    format!(
        r#"  backends:
    a: {{ address: 127.0.{net}.1, healthcheck: web }}
    b: {{ address: 127.0.{net}.2, healthcheck: web }}
  frontends:
    web:
      address: 192.0.2.{net}
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: {{ a: {{}}, b: {{}} }}
"#
    )
}

const PRIMARY: &[&str] = &[
    "127.0.71.1",
    "127.0.71.2",
    "127.0.71.3",
    "127.0.71.4",
    "127.0.71.5",
    "127.0.71.6",
    "127.0.71.7",
    "127.0.71.8",
    "127.0.71.9",
    "127.0.71.10",
];

fn thresholds_body() -> String {
    let mut body = String::from("  backends:\n");
    for (i, a) in PRIMARY.iter().enumerate() {
        body += &format!("    p{i}: {{ address: {a}, healthcheck: web }}\n");
    }
    body += "    f0: { address: 127.0.71.11, healthcheck: web }\n";
    body += r#"  frontends:
    web:
      address: 192.0.2.71
      protocol: tcp
      port: 80
      pools:
        - name: primary
          min-up: 2
          min-up-to-return: 50%
          backends: { p0: {}, p1: {}, p2: {}, p3: {}, p4: {}, p5: {}, p6: {}, p7: {}, p8: {}, p9: {} }
        - name: fallback
          backends: { f0: {} }
"#;
    body
}

/// The weights VPP holds: primary all at `primary`, the fallback at
/// `fallback`.
fn weights(primary: u8, fallback: u8) -> Vec<(String, u8)> {
    let mut v: Vec<(&str, u8)> = PRIMARY.iter().map(|a| (*a, primary)).collect();
    v.push(("127.0.71.11", fallback));
    let mut v = w(&v);
    v.sort_by_key(|(a, _)| a.parse::<IpAddr>().unwrap());
    v
}

fn sorted(mut v: Vec<(String, u8)>) -> Vec<(String, u8)> {
    v.sort_by_key(|(a, _)| a.parse::<IpAddr>().unwrap());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_losing_9_of_10_fails_over_and_returns_only_past_min_up_to_return() {
    let mut world = World::new(71, 11).await;
    world.write_config(&format!(
        "{}{}",
        head("0s", "0s", "100ms", ""),
        thresholds_body()
    ));
    world.start(world.settings()).await;
    let vip = "192.0.2.71";
    until("the primary carries everything", || {
        sorted(world.weights(vip)) == weights(100, 0)
    })
    .await;

    // 9 of 10 down: 1 left, below min-up 2: the fallback takes over, and
    // the one primary still up is drained with its pool.
    for b in &world.backends[1..10] {
        b.set_healthy(false);
    }
    until("the fallback carries everything", || {
        sorted(world.weights(vip)) == weights(0, 100)
    })
    .await;

    // 4 up again: above min-up, below min-up-to-return (5): it stays on
    // the fallback.
    for b in &world.backends[1..4] {
        b.set_healthy(true);
    }
    until("four primaries are up", || {
        (0..4).all(|i| world.handle().backend_state(&format!("p{i}")) == BackendState::Up)
    })
    .await;
    world.handle().sync(Some("web")).await.unwrap();
    assert_eq!(
        sorted(world.weights(vip)),
        weights(0, 100),
        "4 of 10 do not take traffic back"
    );
    let view = world.handle().frontend("web").unwrap();
    assert_eq!(view.active_pool, Some(1));

    // The fifth brings the primary back.
    world.backends[4].set_healthy(true);
    until("the primary carries the five that are up", || {
        let mut want: Vec<(&str, u8)> = PRIMARY
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, if i < 5 { 100 } else { 0 }))
            .collect();
        want.push(("127.0.71.11", 0));
        sorted(world.weights(vip)) == sorted(w(&want))
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_start_ramps_a_returning_backend_in_steps_but_not_at_start() {
    let mut world = World::new(72, 2).await;
    world.write_config(&format!(
        "{}{}",
        head("0s", "0s", "100ms", "      slow-start: 2s\n"),
        two_backends(72)
    ));
    let (parts, mut events) = parts_with_hub();
    world.start_with(world.settings(), parts).await;
    let vip = "192.0.2.72";
    until("both at full weight", || {
        world.weights(vip) == w(&[("127.0.72.1", 100), ("127.0.72.2", 100)])
    })
    .await;
    let ops = vpp_ops(&drain(&mut events));
    assert!(
        ops.iter()
            .all(|op| !op.contains("weight 1 ") && !op.contains("weight 10 ")),
        "no ramp at start: {ops:?}"
    );

    world.backends[1].set_healthy(false);
    until("b is drained", || {
        world.weights(vip) == w(&[("127.0.72.1", 100), ("127.0.72.2", 0)])
    })
    .await;
    drain(&mut events);
    world.backends[1].set_healthy(true);
    until("b is back at full weight", || {
        world.weights(vip) == w(&[("127.0.72.1", 100), ("127.0.72.2", 100)])
    })
    .await;
    // Every weight VPP was given for b on the way, from the ops sent.
    let ramp: Vec<u8> = ops_until(&mut events, |op| {
        op.contains("127.0.72.2") && op.contains(" weight 100")
    })
    .await
    .iter()
    .filter(|op| op.contains("127.0.72.2"))
    .filter_map(|op| {
        let rest = op.split(" weight ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
    .collect();
    assert!(ramp.len() >= 3, "a start, a step and the end: {ramp:?}");
    assert!(
        ramp.windows(2).all(|p| p[0] < p[1]),
        "only rising: {ramp:?}"
    );
    assert!(ramp[0] <= 20, "it starts low: {ramp:?}");
    assert_eq!(ramp.last(), Some(&100));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flap_damping_holds_a_flapping_backend_at_zero_until_its_penalty_decays() {
    let mut world = World::new(73, 2).await;
    world.write_config(&format!(
        "{}{}",
        head(
            "0s",
            "0s",
            "100ms",
            "      damping: { half-life: 1s, suppress: 1.5, reuse: 1, max-suppress: 4s }\n"
        ),
        two_backends(73)
    ));
    let (parts, mut events) = parts_with_hub();
    world.start_with(world.settings(), parts).await;
    let vip = "192.0.2.73";
    let both = w(&[("127.0.73.1", 100), ("127.0.73.2", 100)]);
    let held = w(&[("127.0.73.1", 100), ("127.0.73.2", 0)]);
    until("both up", || world.weights(vip) == both).await;
    // Two flaps: down (penalty 1), up (2 > 1.5): up, but suppressed.
    world.backends[1].set_healthy(false);
    until("b is drained", || world.weights(vip) == held).await;
    // Going down flushed b's flows (flush-on-down); being held does not.
    let flushed = world.flushes();
    world.backends[1].set_healthy(true);
    until("b is up and suppressed", || {
        let b = world.handle().backend("b").unwrap();
        b.state == BackendState::Up && b.damping.as_ref().is_some_and(|d| d.is_suppressed())
    })
    .await;
    world.handle().sync(Some("web")).await.unwrap();
    assert_eq!(world.weights(vip), held, "a suppressed backend weighs 0");
    assert_eq!(world.flushes(), flushed, "suppression flushes nothing");
    let view = world.handle().frontend("web").unwrap();
    let b = view.members.iter().find(|m| m.backend == "b").unwrap();
    assert!(b.suppressed);
    assert_eq!(b.effective_weight, 0);
    // Released once 2 has decayed below 1 (about a half-life).
    until("b is released and weighs 100 again", || {
        world.weights(vip) == both
    })
    .await;
    let damping: Vec<bool> = drain(&mut events)
        .iter()
        .filter_map(|e| match e {
            EventKind::Backend {
                change: Change::Damping(d),
                backend,
                ..
            } if &**backend == "b" => Some(d.change == maglev_health::damping::Change::Suppressed),
            _ => None,
        })
        .collect();
    assert_eq!(damping, [true, false], "suppressed, then released");
    assert_eq!(world.handle().backend("b").unwrap().flaps, 2);
    world.stop().await;
}

// ------------------------------------------------------------ state file

const RESTART_BODY: &str = r#"  backends:
    a: { address: 127.0.74.1, healthcheck: web }
    b: { address: 127.0.74.2, healthcheck: web }
    c: { address: 127.0.74.3, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.74
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
"#;

/// A world whose VPP a first daemon programmed (b down), which left its
/// state file behind at shutdown.
async fn restarted_world() -> (World, std::path::PathBuf) {
    let mut world = World::new(74, 3).await;
    let state = world.dir.path().join("state.json");
    world.write_config(&format!("{}{RESTART_BODY}", head("0s", "0s", "100ms", "")));
    world.backends[1].set_healthy(false);
    let mut settings = world.settings();
    settings.state_file = Some(state.clone());
    world.start(settings).await;
    until("the first daemon programmed a, b drained", || {
        let h = world.handle();
        h.backend_state("b") == BackendState::Down
            && h.backend_state("c") == BackendState::Up
            && world.weights("192.0.2.74")
                == w(&[("127.0.74.1", 100), ("127.0.74.2", 0), ("127.0.74.3", 0)])
    })
    .await;
    world.daemon.take().unwrap().shutdown().await;
    (world, state)
}

/// The second daemon's config: warm-up on (a long watchdog), and probes
/// so rare that none completes during the test.
fn second_config(world: &World) {
    world.write_config(&format!("{}{RESTART_BODY}", head("0s", "30s", "1h", "")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_within_state_max_age_releases_at_once_and_changes_nothing() {
    let (mut world, state) = restarted_world().await;
    let saved = persist::decode(&std::fs::read(&state).unwrap(), "state").unwrap();
    assert_eq!(saved.backends["a"].state, BackendState::Up);
    assert_eq!(saved.backends["b"].state, BackendState::Down);
    assert_eq!(
        saved.frontends["web"].active_pool.as_deref(),
        Some("primary")
    );
    let before = world.vips();
    let probes: Vec<u64> = world.backends.iter().map(|b| b.requests()).collect();
    second_config(&world);
    let (parts, mut events) = parts_with_hub();
    let mut settings = world.settings();
    settings.state_file = Some(state.clone());
    world.start_with(settings, parts).await;
    // Restored before any probe: every frontend is released and warm-up
    // ends without waiting for the watchdog.
    assert_eq!(world.handle().backend_state("a"), BackendState::Up);
    assert_eq!(world.handle().backend_state("b"), BackendState::Down);
    until("warm-up finished", || {
        world.handle().warmup_phase() == Phase::Finished
    })
    .await;
    assert_eq!(
        world.handle().sync(None).await.unwrap().ops,
        [],
        "VPP already holds it"
    );
    assert_eq!(world.vips(), before, "no weight, AS or VIP changed");
    assert_eq!(vpp_ops(&drain(&mut events)), Vec::<String>::new());
    let after: Vec<u64> = world.backends.iter().map(|b| b.requests()).collect();
    assert_eq!(after, probes, "released without a single probe");
    world.stop().await;
}

/// A daemon started on a state file it must not trust behaves as a cold
/// start: nothing is known, warm-up holds every frontend, VPP is left as
/// it is.
async fn assert_cold_start(mut world: World, state: std::path::PathBuf) {
    let before = world.vips();
    second_config(&world);
    let (parts, mut events) = parts_with_hub();
    let mut settings = world.settings();
    settings.state_file = Some(state);
    world.start_with(settings, parts).await;
    until("VPP is connected", || world.handle().vpp().is_ok()).await;
    for b in ["a", "b", "c"] {
        assert_eq!(
            world.handle().backend_state(b),
            BackendState::Unknown,
            "{b}"
        );
    }
    assert_eq!(world.handle().warmup_phase(), Phase::Releasing);
    assert!(!world.handle().frontend("web").unwrap().released);
    let err = world.handle().sync(Some("web")).await.unwrap_err();
    assert!(err.to_string().contains("warm-up"), "{err}");
    assert_eq!(world.vips(), before);
    assert_eq!(vpp_ops(&drain(&mut events)), Vec::<String>::new());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_state_file_is_a_cold_start() {
    let (world, state) = restarted_world().await;
    let mut saved = persist::decode(&std::fs::read(&state).unwrap(), "state").unwrap();
    // Written (and every state reached) an hour ago: past state-max-age.
    let hour = 3_600_000;
    saved.written_unix_ms -= hour;
    for b in saved.backends.values_mut() {
        b.since_unix_ms -= hour;
    }
    std::fs::write(&state, persist::encode(&saved)).unwrap();
    assert_cold_start(world, state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_foreign_state_file_is_a_cold_start() {
    let (world, state) = restarted_world().await;
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    assert_cold_start(world, state).await;

    let (world, state) = restarted_world().await;
    let foreign: BTreeMap<&str, &str> = [("format", "something-else")].into();
    std::fs::write(&state, serde_json::to_vec(&foreign).unwrap()).unwrap();
    assert_cold_start(world, state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_vpp_the_pool_choice_keeps_its_hysteresis() {
    let mut world = World::new(75, 11).await;
    let body = thresholds_body().replace("127.0.71.", "127.0.75.");
    world.write_config(&format!("{}{body}", head("0s", "0s", "100ms", "")));
    let mut settings = world.settings();
    settings.vpp = None;
    world.start(settings).await;
    let active = |world: &World| world.handle().frontend("web").unwrap().active_pool;
    let up = |world: &World, n: usize| {
        (0..10).all(|i| {
            let want = if i < n {
                BackendState::Up
            } else {
                BackendState::Down
            };
            world.handle().backend_state(&format!("p{i}")) == want
        })
    };
    until("the primary is active", || active(&world) == Some(0)).await;
    for b in &world.backends[1..10] {
        b.set_healthy(false);
    }
    until("one primary left, the fallback is active", || {
        up(&world, 1) && active(&world) == Some(1)
    })
    .await;
    for b in &world.backends[1..4] {
        b.set_healthy(true);
    }
    until("four primaries up", || up(&world, 4)).await;
    assert_eq!(active(&world), Some(1), "4 of 10 do not take traffic back");
    world.backends[4].set_healthy(true);
    until("five up: the primary is back", || {
        up(&world, 5) && active(&world) == Some(0)
    })
    .await;
    world.stop().await;
}

/// Probe results the test hands out one by one: a probe of an address
/// with nothing queued waits until the test queues a result for it.
#[derive(Debug, Default)]
struct Script {
    queued: Mutex<HashMap<IpAddr, VecDeque<Code>>>,
    changed: tokio::sync::Notify,
}

impl Script {
    fn push(&self, addr: &str, code: Code) {
        let addr: IpAddr = addr.parse().unwrap();
        self.queued
            .lock()
            .unwrap()
            .entry(addr)
            .or_default()
            .push_back(code);
        self.changed.notify_waiters();
    }

    fn pop(&self, addr: IpAddr) -> Option<Code> {
        self.queued.lock().unwrap().get_mut(&addr)?.pop_front()
    }
}

#[derive(Debug)]
struct Scripted(Arc<Script>);

#[async_trait::async_trait]
impl Prober for Scripted {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        loop {
            // Armed before the look, so a push in between is not missed.
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(code) = self.0.pop(target) {
                return ProbeResult {
                    code,
                    detail: format!("scripted {code}"),
                    duration: std::time::Duration::from_millis(1),
                    local: None,
                };
            }
            changed.await;
        }
    }
}

struct ScriptedProbes(Arc<Script>);

impl ProbeFactory for ScriptedProbes {
    fn build(
        &self,
        _check: &maglev_core::config::HealthCheck,
        _env: &ProbeEnv,
    ) -> Result<Arc<dyn Prober>, maglev_health::Error> {
        Ok(Arc::new(Scripted(self.0.clone())))
    }
}

/// `rise: 2, fall: 2`, quick probes, warm-up off.
const FALL_TWO: &str = r#"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: 0s
      startup-max-delay: 0s
  healthchecks:
    web:
      type: http
      port: {port}
      interval: 50ms
      fast-interval: 20ms
      timeout: 10ms
      rise: 2
      fall: 2
  backends:
    a: { address: 127.0.76.1, healthcheck: web }
    b: { address: 127.0.76.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.76
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

/// A daemon started with scripted probes.
async fn start_scripted(world: &mut World, state: &std::path::Path) -> Arc<Script> {
    let script = Arc::new(Script::default());
    let parts = Parts {
        probes: Arc::new(ScriptedProbes(script.clone())),
        ..Parts::default()
    };
    let mut settings = world.settings();
    settings.state_file = Some(state.to_owned());
    world.start_with(settings, parts).await;
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_up_needs_fall_failures_to_go_down_as_before_the_restart() {
    let mut world = World::new(76, 2).await;
    let state = world.dir.path().join("state.json");
    world.write_config(FALL_TWO);
    let both = w(&[("127.0.76.1", 100), ("127.0.76.2", 100)]);
    // A first daemon brings both up (rise 2) and leaves its state file.
    let script = start_scripted(&mut world, &state).await;
    for addr in ["127.0.76.1", "127.0.76.2"] {
        script.push(addr, Code::L7Ok);
        script.push(addr, Code::L7Ok);
    }
    until("both up and programmed", || {
        world.weights("192.0.2.76") == both
    })
    .await;
    world.daemon.take().unwrap().shutdown().await;

    // Restarted: both restored up, VPP as it was.
    let script = start_scripted(&mut world, &state).await;
    let a = |world: &World| world.handle().backend("a").unwrap();
    assert_eq!(a(&world).state, BackendState::Up);
    assert_eq!(
        a(&world).counter,
        3,
        "rise + fall - 1, as before the restart"
    );
    until("warm-up finished", || {
        world.handle().warmup_phase() == Phase::Finished
    })
    .await;
    assert_eq!(world.weights("192.0.2.76"), both);

    // One 503 right after the restart: as while running, nothing moves.
    script.push("127.0.76.1", Code::L7Sts);
    until("a's failed probe is recorded", || {
        a(&world)
            .last_probe
            .as_ref()
            .is_some_and(|p| p.code == Code::L7Sts)
    })
    .await;
    assert_eq!(a(&world).state, BackendState::Up, "one failure of fall 2");
    assert_eq!(a(&world).counter, 2);
    assert_eq!(
        world.handle().sync(None).await.unwrap().ops,
        [],
        "nothing to change"
    );
    assert_eq!(world.weights("192.0.2.76"), both, "weight unchanged");

    // The second in a row: down, and drained in the simulator.
    script.push("127.0.76.1", Code::L7Sts);
    until("a down and drained", || {
        a(&world).state == BackendState::Down
            && world.weights("192.0.2.76") == w(&[("127.0.76.1", 0), ("127.0.76.2", 100)])
    })
    .await;
    world.stop().await;
}
