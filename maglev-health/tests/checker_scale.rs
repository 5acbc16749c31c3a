//! The checker at scale, under paused tokio time: many static backends and
//! a few probed ones cost what the probed ones cost. A static backend has
//! no task and its published status is never replaced; the probed ones
//! are probed at their interval, whatever the number of static ones; and
//! every status a reader sees is consistent in itself.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_core::config::{Config, HealthCheck};
use maglev_core::state::BackendState;
use maglev_health::checker::{Checker, ProbeFactory};
use maglev_health::probe::{ProbeEnv, ProbeResult, Prober};
use maglev_health::{Code, Error};

/// Static backends in the test: enough that any per-backend cost of a
/// static backend would show in the counts below.
const STATIC: usize = 50_000;
/// Probed backends.
const PROBED: usize = 4;

/// Counts the probes of each address; fails them while `failing` is set.
#[derive(Debug, Default)]
struct Counting {
    probes: Mutex<HashMap<IpAddr, usize>>,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl Prober for Counting {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        *self.probes.lock().unwrap().entry(target).or_default() += 1;
        let code = if self.failing.load(Ordering::SeqCst) {
            Code::L4Con
        } else {
            Code::L4Ok
        };
        ProbeResult {
            code,
            detail: String::new(),
            duration: Duration::from_millis(1),
            local: None,
        }
    }
}

struct Factory(Arc<Counting>);

impl ProbeFactory for Factory {
    fn build(&self, _: &HealthCheck, _: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
        Ok(self.0.clone())
    }
}

/// `PROBED` backends `p0…` on 127.0.0.x checked every second (rise 2,
/// fall 2), and `STATIC` static ones `s0…` on 10.x.y.z.
fn config() -> Config {
    let mut y = String::from(
        "maglev:\n  healthchecks:\n    t:\n      type: tcp\n      port: 80\n      interval: 1s\n      \
         fast-interval: 1s\n      down-interval: 1s\n      timeout: 100ms\n      rise: 2\n      fall: 2\n  backends:\n",
    );
    for i in 0..PROBED {
        let _ = writeln!(
            y,
            "    p{i}: {{ address: 127.0.0.{}, healthcheck: t }}",
            i + 1
        );
    }
    for i in 0..STATIC {
        let _ = writeln!(
            y,
            "    s{i}: {{ address: 10.{}.{}.{} }}",
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    Config::from_yaml(&y, "scale.yaml").unwrap()
}

/// Every status is consistent in itself: its state is its last
/// transition's, and its counter agrees with its state (the machine's
/// invariant: `up` only with `counter >= rise`, `down` only below).
fn assert_consistent(checker: &Checker) {
    for (name, s) in checker.snapshot() {
        assert_eq!(*name, *s.name);
        if let Some(last) = s.history.last() {
            assert_eq!(s.state, last.to, "{name}: state and history agree");
        }
        if s.rise == 0 {
            assert_eq!(s.counter, 0, "{name}: a static backend has no counter");
            continue;
        }
        assert!(s.counter < s.rise + s.fall, "{name}: counter {}", s.counter);
        match s.state {
            BackendState::Up => assert!(s.counter >= s.rise, "{name}: up, counter {}", s.counter),
            BackendState::Down => {
                assert!(s.counter < s.rise, "{name}: down, counter {}", s.counter)
            }
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn many_static_backends_cost_nothing_while_a_few_probed_ones_are_probed() {
    let counting = Arc::new(Counting::default());
    let checker = Checker::with_probes(
        &config(),
        Arc::new(Factory(counting.clone())),
        ProbeEnv::new(),
    )
    .unwrap();
    let mut events = checker.subscribe();
    let before = checker.snapshot();
    assert_eq!(before.len(), STATIC + PROBED);
    // One task per probed backend; none for the static ones.
    assert_eq!(checker.tasks(), PROBED);

    // A minute: each probed backend is probed about once a second.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let probes = counting.probes.lock().unwrap().clone();
    assert_eq!(probes.len(), PROBED, "only probed backends get probes");
    for (addr, n) in &probes {
        // A first probe within the first second, then one a second ±10%.
        assert!((54..=67).contains(n), "{addr}: {n} probes in 60 s");
    }
    assert_eq!(checker.tasks(), PROBED);
    let after = checker.snapshot();
    for i in 0..PROBED {
        let name = format!("p{i}");
        assert_eq!(after[name.as_str()].state, BackendState::Up);
        assert!(
            !Arc::ptr_eq(&before[name.as_str()], &after[name.as_str()]),
            "{name}: republished after its probes"
        );
    }
    // Not one static backend's status was republished: publishing is per
    // backend, so a probe's result costs the same with 50,000 of them.
    let republished = (0..STATIC)
        .map(|i| format!("s{i}"))
        .filter(|n| !Arc::ptr_eq(&before[n.as_str()], &after[n.as_str()]))
        .count();
    assert_eq!(republished, 0);
    assert_consistent(&checker);

    // They fail: the transitions are of the probed backends only, and a
    // reader that reads on an event sees the new state.
    while events.try_recv().is_ok() {}
    counting.failing.store(true, Ordering::SeqCst);
    let mut downs = 0;
    while downs < PROBED {
        let e = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("a transition within 60 s")
            .unwrap();
        let t = e.transition().expect("a transition");
        assert!(e.backend.starts_with('p'), "{}", e.backend);
        if t.to == BackendState::Down {
            assert_eq!(checker.state(&e.backend), BackendState::Down);
            downs += 1;
        }
    }
    assert_consistent(&checker);
    let republished = checker
        .snapshot()
        .iter()
        .filter(|(n, s)| n.starts_with('s') && !Arc::ptr_eq(&before[&**n], s))
        .count();
    assert_eq!(republished, 0);

    // Pausing a probed backend ends its task; static ones still have none.
    // (An aborted task ends when the runtime next polls it.)
    checker.pause("p0").unwrap();
    for _ in 0..100 {
        if checker.tasks() == PROBED - 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(checker.tasks(), PROBED - 1);
    checker.shutdown().await;
    assert_eq!(checker.tasks(), 0);
}
