//! Probe → VPP latency of the daemon: from the moment a probe returns the
//! result that decides a transition to the moment the simulated VPP has
//! applied the `lb_as_set_weight` it causes, over thousands of transitions.
//!
//! ```text
//! cargo bench -p maglev-benches --bench daemon_latency
//! MAGLEV_BENCH_FRONTENDS=1000 cargo bench -p maglev-benches --bench daemon_latency
//! ```
//!
//! The real daemon (`Daemon::start_with`, the JSON logging of `maglevd`
//! formatted into a sink) runs on a tokio multi-thread runtime of 2 workers
//! with its checker and servers on threads of their own, as `maglevd` does, against the VPP simulator (`maglev_vpp::sim::Sim`,
//! API socket only) on a runtime of its own, as VPP is a process of its own.
//! The probes are fakes that answer pass or fail when the bench tells them
//! (rise 1, fall 1, warm-up off), so each command decides one transition.
//! The probe stamps the time just before returning its result; a
//! `SimObserver` stamps the time the simulator applied the weight. One
//! transition at a time: a primary-pool backend goes down (weight 100 → 0)
//! or up (0 → 100), round robin over all of them; the next command is sent
//! once the simulator holds the expected weight. Each latency goes into an
//! HDR histogram (criterion's mean is over the same transitions); p50, p99,
//! p99.9 and max are printed after each size, with the machine's load.
//!
//! Then the smallest size again with 100 `WatchEvents` subscribers over
//! gRPC (every kind, logs at debug), 10 of which never read, through a
//! burst of 10,000 transitions: the daemon must not slow down for them. The
//! watchers run on a thread of their own, as another process would. Each
//! event is encoded once for all of them: the report gives the events
//! encoded per transition (the hub's count), whatever the number of
//! streams.
//!
//! Sizes: 10 frontends × 16 backends and 1,000 × 16
//! (`MAGLEV_BENCH_FRONTENDS` picks one). Only the unix sockets of the
//! simulator are used (the fake probes send nothing); the run ends by
//! itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::Criterion;
use hdrhistogram::Histogram;
use maglev_benches::{daemon_logging, daemon_yaml, load_average, model_address, under_cargo_bench};
use maglev_bin::daemon::runtime::RuntimeThread;
use maglev_bin::daemon::{Daemon, Parts, Settings, VppSockets};
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use maglev_core::config::{Config, HealthCheck};
use maglev_health::checker::ProbeFactory;
use maglev_health::probe::{ProbeEnv, ProbeResult, Prober};
use maglev_health::{Code, Error};
use maglev_vpp::sim::{Sim, SimConfig, SimObserver};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::time::Instant;

const BACKENDS: usize = 16;
/// Bounds a hang; nothing is timed against it.
const PATIENCE: Duration = Duration::from_secs(120);
/// The fewest transitions recorded per size.
const MIN_TRANSITIONS: u64 = 1000;
/// Probes every millisecond: the probe task is back waiting for the next
/// command long before the round robin comes back to its backend.
const CHECK: &str = "{ type: http, port: 80, interval: 1ms, timeout: 1ms, rise: 1, fall: 1 }";

/// The fake probes: each backend's prober waits for the bench's next
/// command (pass or fail) and stamps when it answered.
#[derive(Debug)]
struct Probes {
    commands: HashMap<IpAddr, tokio::sync::Mutex<mpsc::UnboundedReceiver<bool>>>,
    /// When the last result was returned.
    decided: Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct FakeProber(Arc<Probes>);

#[async_trait::async_trait]
impl Prober for FakeProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        let Some(commands) = self.0.commands.get(&target) else {
            return std::future::pending().await;
        };
        let Some(pass) = commands.lock().await.recv().await else {
            return std::future::pending().await;
        };
        *self.0.decided.lock().unwrap() = Some(Instant::now());
        ProbeResult {
            code: if pass { Code::L7Ok } else { Code::L7Sts },
            detail: String::new(),
            duration: Duration::ZERO,
            local: None,
        }
    }
}

struct FakeProbes(Arc<Probes>);

impl ProbeFactory for FakeProbes {
    fn build(&self, _: &HealthCheck, _: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
        Ok(Arc::new(FakeProber(self.0.clone())))
    }
}

/// Stamps every change of a VIP's ASes as the simulator applies it.
struct Applied(mpsc::UnboundedSender<(u32, Instant)>);

impl SimObserver for Applied {
    fn vip_added(&self, _: u32, _: u32) {}
    fn vip_removed(&self, _: u32) {}
    fn vip_serving(&self, pool_index: u32, _: bool) {
        let _ = self.0.send((pool_index, Instant::now()));
    }
}

/// One primary-pool backend the bench flips.
struct Flipped {
    address: IpAddr,
    vip: IpAddr,
    pool_index: u32,
    commands: mpsc::UnboundedSender<bool>,
    up: bool,
}

struct Bench {
    sim: Sim,
    daemon: Option<Daemon>,
    _dir: tempfile::TempDir,
    probes: Arc<Probes>,
    applied: mpsc::UnboundedReceiver<(u32, Instant)>,
    flipped: Vec<Flipped>,
    next: usize,
    histogram: Histogram<u64>,
    /// `WatchEvents` streams that are never read (they stay open).
    _idle_watchers: Vec<tonic::Streaming<proto::Event>>,
    /// The daemon's checker and server threads, as `maglevd` has them, and
    /// the watchers' (another process in real life); last, so they outlive
    /// what runs on them.
    _threads: [RuntimeThread; 3],
}

/// `WatchEvents` subscribers in the watcher rows, and how many of them
/// never read.
const WATCHERS: usize = 100;
const IDLE_WATCHERS: usize = 10;
/// Transitions recorded in a watcher row: a burst of 10,000.
const WATCHER_TRANSITIONS: u64 = 10_000;

/// Opens `n` `WatchEvents` streams (every kind, logs at debug) to the
/// daemon at `addr`; all but `idle` are drained by tasks of their own.
async fn watchers(
    addr: std::net::SocketAddr,
    n: usize,
    idle: usize,
) -> Vec<tonic::Streaming<proto::Event>> {
    let mut kept = Vec::new();
    for i in 0..n {
        let mut client = MaglevClient::connect(format!("http://{addr}"))
            .await
            .expect("gRPC connect");
        let stream = client
            .watch_events(proto::WatchRequest {
                log: true,
                log_level: "debug".to_owned(),
                backend: true,
                frontend: true,
                vpp: true,
                ..Default::default()
            })
            .await
            .expect("WatchEvents")
            .into_inner();
        if i < idle {
            kept.push(stream);
        } else {
            let mut stream = stream;
            tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
        }
    }
    kept
}

/// The AS weight of `address` in the live VIP at `vip`.
fn weight(sim: &Sim, vip: IpAddr, address: IpAddr) -> Option<u8> {
    sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used && v.key.address == vip)
            .flat_map(|(_, v)| v.ases.iter().flatten())
            .find(|a| a.used && a.address == address)
            .map(|a| a.weight)
    })
}

impl Bench {
    /// A simulator on `sim_rt`, the daemon on the current runtime, every
    /// backend up and VPP in sync.
    async fn start(
        frontends: usize,
        sim: Sim,
        applied: mpsc::UnboundedReceiver<(u32, Instant)>,
        watcher_count: usize,
    ) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let yaml = daemon_yaml(frontends, BACKENDS, Some(CHECK), model_address);
        let config = Config::from_yaml(&yaml, "bench").unwrap();
        let mut senders = HashMap::new();
        let mut commands = HashMap::new();
        for b in config.backends().values() {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.insert(b.address, tx);
            commands.insert(b.address, tokio::sync::Mutex::new(rx));
        }
        let probes = Arc::new(Probes {
            commands,
            decided: Mutex::new(None),
        });
        let threads = ["maglev-health", "maglev-serve", "watchers"]
            .map(|name| RuntimeThread::start(name).expect("a runtime thread"));
        let parts = Parts {
            probes: Arc::new(FakeProbes(probes.clone())),
            checker_runtime: Some(threads[0].handle()),
            serve_runtime: Some(threads[1].handle()),
            ..Parts::default()
        };
        daemon_logging(&parts);
        let mut settings = Settings::new(dir.path().join("maglev.yaml"));
        settings.grpc_addr = (watcher_count > 0).then(|| "127.0.0.1:0".to_owned());
        settings.metrics_addr = None;
        settings.vpp = Some(VppSockets {
            api: sim.api_socket().to_owned(),
            stats: None,
        });
        let daemon = Daemon::start_with(settings, parts, config.clone())
            .await
            .unwrap();
        for tx in senders.values() {
            tx.send(true).unwrap();
        }
        let want = frontends * BACKENDS / 2;
        let deadline = Instant::now() + PATIENCE;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while sim.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used)
                .flat_map(|(_, v)| v.ases.iter().flatten())
                .filter(|a| a.used && a.weight == 100)
                .count()
        }) != want
        {
            assert!(
                Instant::now() < deadline,
                "the daemon never synced the simulator"
            );
            tick.tick().await;
        }
        let pools: HashMap<IpAddr, u32> = sim.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used)
                .map(|(i, v)| (v.key.address, i))
                .collect()
        });
        let mut flipped = Vec::new();
        for fe in config.frontends().values() {
            for name in fe.pools[0].backends.keys() {
                let address = config.backend(name).unwrap().address;
                flipped.push(Flipped {
                    address,
                    vip: fe.address,
                    pool_index: pools[&fe.address],
                    commands: senders[&address].clone(),
                    up: true,
                });
            }
        }
        let idle_watchers = match daemon.grpc_addrs().first() {
            Some(addr) => threads[2]
                .handle()
                .spawn(watchers(*addr, watcher_count, IDLE_WATCHERS))
                .await
                .expect("watchers"),
            None => Vec::new(),
        };
        let mut bench = Bench {
            _idle_watchers: idle_watchers,
            _threads: threads,
            sim,
            daemon: Some(daemon),
            _dir: dir,
            probes,
            applied,
            flipped,
            next: 0,
            histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
        };
        while bench.applied.try_recv().is_ok() {}
        bench
    }

    /// Flips the next backend and returns its probe → VPP latency.
    async fn transition(&mut self) -> Duration {
        let k = self.next % self.flipped.len();
        self.next += 1;
        let f = &mut self.flipped[k];
        let up = !f.up;
        let want = if up { 100 } else { 0 };
        f.commands.send(up).unwrap();
        let applied = loop {
            let (pool, at) = tokio::time::timeout(PATIENCE, self.applied.recv())
                .await
                .expect("the weight change reached the simulator")
                .expect("the simulator is running");
            if pool == f.pool_index && weight(&self.sim, f.vip, f.address) == Some(want) {
                break at;
            }
        };
        f.up = up;
        let decided = self
            .probes
            .decided
            .lock()
            .unwrap()
            .take()
            .expect("the probe answered");
        let latency = applied.duration_since(decided);
        self.histogram
            .record(latency.as_nanos().max(1) as u64)
            .unwrap();
        latency
    }

    fn report(&self, name: &str) {
        let h = &self.histogram;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        // Every event is encoded once, however many streams send it.
        let encodings = self
            .daemon
            .as_ref()
            .map_or(0, |d| d.handle().events().encodings());
        println!(
            "{name}: {} transitions; probe → VPP p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, \
             p99.9 {:.0} µs, max {:.0} µs; {:.1} events encoded per transition; load average {}",
            h.len(),
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0,
            encodings as f64 / self.next.max(1) as f64,
            load_average()
        );
    }
}

fn latency(c: &mut Criterion) {
    let sizes: Vec<usize> = match std::env::var("MAGLEV_BENCH_FRONTENDS") {
        Ok(v) => vec![v.parse().expect("MAGLEV_BENCH_FRONTENDS: a number")],
        Err(_) => vec![10, 1000],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("daemon probe→VPP");
    g.sample_size(50);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(10));
    // Each size plain, then the smallest again with WatchEvents
    // subscribers reading (and some never reading) through the burst.
    let mut runs: Vec<(usize, usize)> = sizes.iter().map(|&f| (f, 0)).collect();
    if let Some(&smallest) = sizes.iter().min() {
        runs.push((smallest, WATCHERS));
    }
    for (frontends, watcher_count) in runs {
        let (sim_rt, sim, applied) = start_sim();
        let mut bench = rt.block_on(Bench::start(frontends, sim, applied, watcher_count));
        let name = if watcher_count == 0 {
            format!("{frontends}x{BACKENDS}")
        } else {
            format!("{frontends}x{BACKENDS}+{watcher_count}watchers({IDLE_WATCHERS}idle)")
        };
        let min = if watcher_count == 0 {
            MIN_TRANSITIONS
        } else {
            WATCHER_TRANSITIONS
        };
        println!("{name}: load average {} at the start", load_average());
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += bench.transition().await;
                    }
                    total
                })
            })
        });
        rt.block_on(async {
            while bench.histogram.len() < min {
                bench.transition().await;
            }
        });
        bench.report(&name);
        let daemon = bench.daemon.take().unwrap();
        rt.block_on(daemon.shutdown());
        sim_rt.block_on(async move { bench.sim.stop().await });
    }
    g.finish();
}

/// A simulator on a runtime of its own (one worker thread), stamping the
/// weight changes it applies.
fn start_sim() -> (Runtime, Sim, mpsc::UnboundedReceiver<(u32, Instant)>) {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!("maglev-latency-{}.sock", std::process::id()));
    let sim = sim_rt.block_on(Sim::start(SimConfig::new(path))).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    sim.set_observer(Arc::new(Applied(tx)));
    (sim_rt, sim, rx)
}

fn main() {
    if !under_cargo_bench() {
        println!(
            "daemon_latency bench: skipped (run it with `cargo bench -p maglev-benches --bench daemon_latency`)"
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    latency(&mut c);
    c.final_summary();
}
