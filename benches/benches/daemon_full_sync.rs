//! Full sync of 1,000 frontends × 16 backends (`MAGLEV_BENCH_FRONTENDS`
//! picks another count) into an empty simulated VPP: the daemon, and the
//! raw pipelined client issuing the same ops, in the same run.
//!
//! ```text
//! cargo bench -p maglev-benches --bench daemon_full_sync
//! MAGLEV_BENCH_FRONTENDS=10000 cargo bench -p maglev-benches --bench daemon_full_sync
//! ```
//!
//! Each daemon run also counts the log lines the daemon wrote (INFO and
//! above, by module) and its warnings, until a `Handle::sync` queued
//! after the full sync returns (after the clock): a timed-out or refused
//! op is a warning, so 0 warnings means no op timed out.
//!
//! Each iteration gets a fresh simulator (`maglev_vpp::sim::Sim`, API
//! socket only, on a runtime of its own with one worker thread, as VPP is
//! a process of its own).
//!
//! - **daemon**: the real daemon (`Daemon::start_with`, `maglevd`'s JSON
//!   logging formatted into a sink, tokio multi-thread runtime of 2
//!   workers) with static backends (no health check: up from the start)
//!   is started while the simulator's socket is closed, and retries every
//!   millisecond. The clock starts when the simulator opens its socket and
//!   stops when the simulator has applied the last of the 17,000 ops
//!   (1,000 `lb_add_del_vip_v2`, 16,000 `lb_add_del_as_v2`). This is the
//!   whole path after a VPP (re)connect: handshake, `show_version`,
//!   `lb_conf`, the dumps, desired state, plan, apply.
//! - **raw client**: `maglev_vpp::lb::apply::apply(&client, &ops)` with
//!   `ops = plan_all(desired_all(config, up), empty)`, on a connected
//!   client whose `lb_conf` is already set; the clock covers the call.
//!
//! Both end with the same VIPs and ASes in the simulator (checked). The
//! medians of both and their ratio are printed at the end with the load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use maglev_benches::{
    LOG_LINES, LOG_TARGETS, LOG_WARNINGS, daemon_logging, daemon_yaml, load_average, model_address,
    under_cargo_bench,
};
use maglev_bin::daemon::{Daemon, Parts, Settings, VppSockets};
use maglev_core::config::Config;
use maglev_core::dataplane::ObservedState;
use maglev_core::desired::desired_all;
use maglev_core::plan::{Op, PendingFlushes, plan_all};
use maglev_core::state::BackendState;
use maglev_vpp::Client;
use maglev_vpp::lb::ops::lb_conf_for;
use maglev_vpp::sim::{Sim, SimConfig, SimObserver};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Frontends by default (`MAGLEV_BENCH_FRONTENDS`).
const FRONTENDS: usize = 1000;
const BACKENDS: usize = 16;
/// Bounds a hang; nothing is timed against it.
const PATIENCE: Duration = Duration::from_secs(120);

/// Counts the VIPs and AS changes the simulator applied, and stamps the
/// moment the expected number is reached.
struct Progress {
    seen: AtomicU64,
    want: u64,
    done_at: Mutex<Option<Instant>>,
    done: Notify,
}

impl Progress {
    fn bump(&self) {
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.want {
            *self.done_at.lock().unwrap() = Some(Instant::now());
            self.done.notify_one();
        }
    }
}

struct Observer(Arc<Progress>);

impl SimObserver for Observer {
    fn vip_added(&self, _: u32, _: u32) {
        self.0.bump();
    }
    fn vip_removed(&self, _: u32) {}
    fn vip_serving(&self, _: u32, _: bool) {
        self.0.bump();
    }
}

/// A fresh simulator on its own runtime, counting towards `want` changes.
fn fresh_sim(want: u64) -> (Runtime, Sim, Arc<Progress>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!("maglev-full-sync-{}.sock", std::process::id()));
    let sim = rt.block_on(Sim::start(SimConfig::new(path))).unwrap();
    let progress = Arc::new(Progress {
        seen: AtomicU64::new(0),
        want,
        done_at: Mutex::new(None),
        done: Notify::new(),
    });
    sim.set_observer(Arc::new(Observer(progress.clone())));
    (rt, sim, progress)
}

/// What a simulator holds, for comparing the two runs: (VIP, AS, weight).
fn holdings(sim: &Sim) -> Vec<(String, String, u8)> {
    let mut v: Vec<_> = sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used)
            .flat_map(|(_, v)| {
                v.ases
                    .iter()
                    .flatten()
                    .filter(|a| a.used)
                    .map(|a| (v.key.to_string(), a.address.to_string(), a.weight))
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    v.sort();
    v
}

async fn wait_done(progress: &Progress) -> Instant {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let notified = progress.done.notified();
            if let Some(at) = *progress.done_at.lock().unwrap() {
                return at;
            }
            notified.await;
        }
    })
    .await
    .expect("the simulator received every op")
}

/// One daemon full sync into an empty simulator.
fn daemon_run(rt: &Runtime, config: &Config, want: u64) -> (Duration, Vec<(String, String, u8)>) {
    let (sim_rt, mut sim, progress) = fresh_sim(want);
    sim_rt.block_on(sim.stop());
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(dir.path().join("maglev.yaml"));
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.reconnect_interval = Duration::from_millis(1);
    settings.vpp = Some(VppSockets {
        api: sim.api_socket().to_owned(),
        stats: None,
    });
    let parts = Parts::default();
    daemon_logging(&parts);
    let daemon = rt
        .block_on(Daemon::start_with(settings, parts, config.clone()))
        .unwrap();
    rt.block_on(async {
        // The static backends are up from the start; wait until the
        // checker says so, so the clock covers only the sync.
        let deadline = Instant::now() + PATIENCE;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        while daemon
            .handle()
            .backends()
            .values()
            .any(|b| b.state != BackendState::Up)
        {
            assert!(Instant::now() < deadline, "static backends are up");
            tick.tick().await;
        }
    });
    let (lines, warnings) = (
        LOG_LINES.load(Ordering::Relaxed),
        LOG_WARNINGS.load(Ordering::Relaxed),
    );
    LOG_TARGETS.lock().unwrap().clear();
    let t0 = Instant::now();
    sim_rt.block_on(sim.resume()).unwrap();
    let done = rt.block_on(wait_done(&progress));
    let took = done.duration_since(t0);
    // The sync logs after its last reply: an operator's sync queues
    // behind it, so once that returns every line of the first is written.
    rt.block_on(daemon.handle().sync(None)).unwrap();
    println!(
        "  daemon run: {:.1} ms, {} log lines, {} warnings",
        took.as_secs_f64() * 1e3,
        LOG_LINES.load(Ordering::Relaxed) - lines,
        LOG_WARNINGS.load(Ordering::Relaxed) - warnings
    );
    println!("    by module: {:?}", LOG_TARGETS.lock().unwrap());
    let held = holdings(&sim);
    rt.block_on(daemon.shutdown());
    sim_rt.block_on(sim.stop());
    (took, held)
}

/// The raw client applying `ops` to an empty simulator.
fn raw_run(
    rt: &Runtime,
    config: &Config,
    ops: &[Op],
    want: u64,
) -> (Duration, Vec<(String, String, u8)>) {
    let (sim_rt, mut sim, progress) = fresh_sim(want);
    let client = rt.block_on(Client::connect(sim.api_socket())).unwrap();
    let lb = &config.vpp().expect("a vpp section").lb;
    rt.block_on(client.ensure_lb_conf(&lb_conf_for(lb)))
        .unwrap();
    let t0 = Instant::now();
    let report = rt.block_on(maglev_vpp::lb::apply::apply(&client, ops));
    let took = t0.elapsed();
    assert!(report.is_complete(), "the raw client's ops all succeeded");
    rt.block_on(wait_done(&progress));
    let held = holdings(&sim);
    let _ = rt.block_on(client.close());
    sim_rt.block_on(sim.stop());
    (took, held)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn full_sync(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let frontends: usize = std::env::var("MAGLEV_BENCH_FRONTENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FRONTENDS);
    let yaml = daemon_yaml(frontends, BACKENDS, None, model_address);
    let config = Config::from_yaml(&yaml, "bench").unwrap();
    let desired = desired_all(&config, |_| BackendState::Up.into(), |_| None);
    let ops = plan_all(&desired, &ObservedState::new(), &PendingFlushes::new());
    let want = ops.len() as u64;
    println!(
        "full sync {frontends}x{BACKENDS}: {} ops; load average {} at the start",
        ops.len(),
        load_average()
    );

    // The two end states must agree before anything is timed.
    let (_, daemon_held) = daemon_run(&rt, &config, want);
    let (_, raw_held) = raw_run(&rt, &config, &ops, want);
    assert_eq!(daemon_held.len(), frontends * BACKENDS);
    assert!(
        daemon_held == raw_held,
        "the daemon and the raw client agree"
    );

    if let Some(runs) = std::env::var("MAGLEV_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // A few plain runs of each, alternating (criterion's ten samples
        // of each take too long at 10,000 frontends on a shared machine).
        let (mut d, mut r) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            d.push(daemon_run(&rt, &config, want).0);
            r.push(raw_run(&rt, &config, &ops, want).0);
        }
        report(frontends, &mut d, &mut r);
        return;
    }
    let daemon_times = Mutex::new(Vec::new());
    let raw_times = Mutex::new(Vec::new());
    let mut g = c.benchmark_group(format!("full sync {frontends}x{BACKENDS}"));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs(1));
    g.bench_function("daemon", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = daemon_run(&rt, &config, want).0;
                    daemon_times.lock().unwrap().push(t);
                    t
                })
                .sum()
        })
    });
    g.bench_function("raw client", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = raw_run(&rt, &config, &ops, want).0;
                    raw_times.lock().unwrap().push(t);
                    t
                })
                .sum()
        })
    });
    g.finish();
    let mut d = daemon_times.into_inner().unwrap();
    let mut r = raw_times.into_inner().unwrap();
    report(frontends, &mut d, &mut r);
}

fn report(frontends: usize, d: &mut [Duration], r: &mut [Duration]) {
    let (dm, rm) = (median(d), median(r));
    println!(
        "full sync {frontends}x{BACKENDS}: daemon median {:.1} ms (min {:.1}, {} runs), \
         raw client median {:.1} ms (min {:.1}, {} runs), daemon / raw {:.2}; load average {}",
        dm.as_secs_f64() * 1e3,
        d.first().copied().unwrap_or_default().as_secs_f64() * 1e3,
        d.len(),
        rm.as_secs_f64() * 1e3,
        r.first().copied().unwrap_or_default().as_secs_f64() * 1e3,
        r.len(),
        dm.as_secs_f64() / rm.as_secs_f64().max(f64::MIN_POSITIVE),
        load_average()
    );
}

fn main() {
    if !under_cargo_bench() {
        println!(
            "daemon_full_sync bench: skipped (run it with `cargo bench -p maglev-benches --bench daemon_full_sync`)"
        );
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    full_sync(&mut c);
    c.final_summary();
}
