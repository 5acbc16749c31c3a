//! A reload never drains a healthy backend, seen where it matters: the
//! weights the (simulated) VPP holds. The checker (with fake probes that
//! send no traffic) is composed with maglev-core's `desired_all` and
//! `plan_all` and maglev-vpp's `lb::apply::apply` against the in-process
//! simulator, as the daemon composes them.
//!
//! No sleeps: the test waits on the checker's events and on its probe
//! observer, each wait bounded so a regression fails instead of hanging.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maglev_core::config::{Config, HealthCheck, Probe, ProbeKind};
use maglev_core::dataplane::VipKey;
use maglev_core::desired::desired_all;
use maglev_core::plan::{PendingFlushes, plan_all};
use maglev_core::state::BackendState;
use maglev_health::checker::ProbeFactory;
use maglev_health::probe::{ProbeEnv, ProbeResult, Prober};
use maglev_health::status::BackendEvent;
use maglev_health::{Checker, Code, Error, ProbeObserver, ProbeRecord};
use maglev_vpp::Client;
use maglev_vpp::lb::apply::apply;
use maglev_vpp::sim::{Sim, SimConfig};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::timeout;

/// Longest wait for anything (real time; probes run every 20-50ms).
const PATIENCE: Duration = Duration::from_secs(20);

/// Probes that pass, except that a probe of a held target (a check's port
/// or a backend address) waits until the test opens it.
#[derive(Debug, Default)]
struct Gates(Mutex<HashMap<String, watch::Receiver<bool>>>);

impl Gates {
    /// Holds probes of `target` until the returned sender sends `true`.
    fn hold(&self, target: &str) -> watch::Sender<bool> {
        let (tx, rx) = watch::channel(false);
        self.0.lock().unwrap().insert(target.to_owned(), rx);
        tx
    }

    fn gate(&self, target: &str) -> Option<watch::Receiver<bool>> {
        self.0.lock().unwrap().get(target).cloned()
    }
}

#[derive(Debug)]
struct GatedProber {
    gates: Arc<Gates>,
    port: u16,
}

#[async_trait::async_trait]
impl Prober for GatedProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        for key in [format!(":{}", self.port), target.to_string()] {
            if let Some(mut gate) = self.gates.gate(&key) {
                // A closed sender leaves the gate shut for good.
                let _ = gate.wait_for(|open| *open).await;
            }
        }
        ProbeResult {
            code: Code::L7Ok,
            detail: format!("fake :{}", self.port),
            duration: Duration::from_millis(1),
            local: None,
        }
    }
}

struct GatedProbes(Arc<Gates>);

impl ProbeFactory for GatedProbes {
    fn build(&self, check: &HealthCheck, _env: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
        let port = match &check.probe {
            Probe::Http(h) => h.port,
            Probe::Tcp(t) => t.port,
            Probe::Icmp => 0,
        };
        Ok(Arc::new(GatedProber {
            gates: self.0.clone(),
            port,
        }))
    }
}

/// Sends (backend, address, type) for every probe result.
#[derive(Debug)]
struct Probes(mpsc::UnboundedSender<(String, IpAddr, ProbeKind)>);

impl ProbeObserver for Probes {
    fn probe_ended(&self, r: &ProbeRecord<'_>) {
        let _ = self.0.send((r.backend.to_owned(), r.address, r.kind));
    }
}

const BASE: &str = "
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::254
  healthchecks:
    web:
      type: http
      interval: 50ms
      fast-interval: 20ms
      timeout: 10ms
      rise: 2
      fall: 3
  backends:
    a: { address: 10.0.0.1, healthcheck: web }
    b: { address: 10.0.0.2, healthcheck: web }
  frontends:
    site:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
";

fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, "reload.yaml").unwrap()
}

fn sock_path() -> PathBuf {
    std::env::temp_dir().join(format!("maglev-bin-{}-reload.sock", std::process::id()))
}

struct World {
    sim: Sim,
    vpp: Client,
    checker: Checker,
    config: Config,
    events: broadcast::Receiver<BackendEvent>,
    probes: mpsc::UnboundedReceiver<(String, IpAddr, ProbeKind)>,
    gates: Arc<Gates>,
}

impl World {
    /// One reconcile, as the daemon runs it: desired from the config and
    /// the checker's states, planned against what VPP holds, applied.
    async fn sync(&self) -> usize {
        let desired = desired_all(&self.config, |b| self.checker.state(b).into(), |_| None);
        let observed = self.vpp.observe().await.unwrap();
        let ops = plan_all(&desired, &observed, &PendingFlushes::new());
        let report = apply(&self.vpp, &ops).await;
        let after = self.vpp.observe().await.unwrap();
        assert_eq!(
            plan_all(&desired, &after, &PendingFlushes::new()),
            [],
            "VPP did not take the plan: {report:?}"
        );
        ops.len()
    }

    /// The live ASes of the site's VIP in the simulator, with weights.
    fn weights(&self) -> BTreeMap<IpAddr, u8> {
        let key: VipKey = self.config.frontend("site").unwrap().vip_key();
        self.sim.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used && v.key == key)
                .flat_map(|(_, v)| v.ases.iter().flatten())
                .filter(|a| a.used)
                .map(|a| (a.address, a.weight))
                .collect()
        })
    }

    fn reload(&mut self, yaml: &str) {
        while self.probes.try_recv().is_ok() {}
        self.config = config(yaml);
        self.checker.reload(&self.config).unwrap();
    }

    /// Waits for `n` more results of a `kind` probe of `backend` at
    /// `address`.
    async fn probed(&mut self, backend: &str, address: &str, kind: ProbeKind, n: usize) {
        let want = (backend.to_owned(), address.parse::<IpAddr>().unwrap(), kind);
        let mut seen = 0;
        while seen < n {
            let got = timeout(PATIENCE, self.probes.recv()).await;
            let record = got
                .unwrap_or_else(|_| panic!("{want:?} not probed {n} times in {PATIENCE:?}"))
                .unwrap();
            if record == want {
                seen += 1;
            }
        }
    }

    /// Waits for `backend` to reach `to`.
    async fn transition(&mut self, backend: &str, to: BackendState) -> BackendEvent {
        loop {
            let got = timeout(PATIENCE, self.events.recv()).await;
            let e = got
                .unwrap_or_else(|_| panic!("{backend} not {to} within {PATIENCE:?}"))
                .unwrap();
            if &*e.backend == backend && e.transition().unwrap().to == to {
                return e;
            }
        }
    }

    /// Events since the last look.
    fn events(&mut self) -> Vec<(String, BackendState, BackendState)> {
        let mut seen = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            seen.push((
                e.backend.to_string(),
                e.transition().unwrap().from,
                e.transition().unwrap().to,
            ));
        }
        seen
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn reloads_leave_healthy_weights_alone_and_a_new_address_waits_for_a_pass() {
    let path = sock_path();
    let sim = Sim::start(SimConfig::new(&path)).await.unwrap();
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let gates = Arc::new(Gates::default());
    let (tx, probes) = mpsc::unbounded_channel();
    let config = config(BASE);
    let checker = Checker::builder()
        .probes(Arc::new(GatedProbes(gates.clone())))
        .observer(Arc::new(Probes(tx)))
        .start(&config)
        .unwrap();
    let events = checker.subscribe();
    let mut w = World {
        sim,
        vpp,
        checker,
        config,
        events,
        probes,
        gates,
    };
    // Both come up, in either order; both events are consumed here.
    let mut up = std::collections::BTreeSet::new();
    while up.len() < 2 {
        let e = timeout(PATIENCE, w.events.recv())
            .await
            .expect("a and b up in time")
            .unwrap();
        if e.transition().unwrap().to == BackendState::Up {
            up.insert(e.backend.to_string());
        }
    }
    w.sync().await;
    let healthy = BTreeMap::from([(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 100)]);
    assert_eq!(w.weights(), healthy);

    // Timing only: nothing to do in VPP, right after the reload and after
    // the next probes.
    w.reload(
        &BASE
            .replace("interval: 50ms", "interval: 40ms")
            .replace("fall: 3", "fall: 5"),
    );
    assert_eq!(w.sync().await, 0, "a timing change planned ops");
    assert_eq!(w.weights(), healthy);
    w.probed("a", "10.0.0.1", ProbeKind::Http, 3).await;
    w.probed("b", "10.0.0.2", ProbeKind::Http, 3).await;
    assert_eq!(w.sync().await, 0);
    assert_eq!(w.weights(), healthy);

    // The probe changes (http → tcp:8080), its first results held back:
    // the weights stay while nothing is known of the new probe, and after
    // it passes.
    let new_probe = w.gates.hold(":8080");
    let tcp = BASE.replace("type: http\n", "type: tcp\n      port: 8080\n");
    w.reload(&tcp);
    assert_eq!(w.sync().await, 0, "a probe change planned ops");
    assert_eq!(w.weights(), healthy);
    new_probe.send(true).unwrap();
    w.probed("a", "10.0.0.1", ProbeKind::Tcp, 3).await;
    w.probed("b", "10.0.0.2", ProbeKind::Tcp, 3).await;
    assert_eq!(w.sync().await, 0);
    assert_eq!(w.weights(), healthy);
    assert_eq!(w.events(), [], "no transition across either reload");

    // b moves to a new address, whose probes are held: a new AS with
    // weight 0 until a probe of it passes.
    let new_address = w.gates.hold("10.0.0.3");
    let moved = tcp.replace("10.0.0.2", "10.0.0.3");
    w.reload(&moved);
    assert_eq!(w.checker.state("b"), BackendState::Unknown);
    w.sync().await;
    assert_eq!(
        w.weights(),
        BTreeMap::from([(ip("10.0.0.1"), 100), (ip("10.0.0.3"), 0)])
    );
    // a goes on being probed, b's new address still waits: still 0.
    w.probed("a", "10.0.0.1", ProbeKind::Tcp, 3).await;
    w.sync().await;
    assert_eq!(w.weights()[&ip("10.0.0.3")], 0);
    new_address.send(true).unwrap();
    let e = w.transition("b", BackendState::Up).await;
    assert_eq!(e.address, ip("10.0.0.3"));
    w.sync().await;
    assert_eq!(
        w.weights(),
        BTreeMap::from([(ip("10.0.0.1"), 100), (ip("10.0.0.3"), 100)])
    );

    w.checker.shutdown().await;
    w.sim.stop().await;
    let _ = std::fs::remove_file(&path);
}
