//! The latency of an operator's weight change while readers dump VPP's LB
//! state in a loop (issue 24, "the writer first").
//!
//! ```text
//! cargo bench -p maglev-benches --bench reader_storm
//! MAGLEV_BENCH_FRONTENDS=1500 MAGLEV_BENCH_READERS=12 cargo bench -p maglev-benches --bench reader_storm
//! ```
//!
//! The real daemon (`Daemon::start_with`, `maglevd`'s JSON logging into a
//! sink, tokio multi-thread runtime of 2 workers) with static backends
//! syncs `MAGLEV_BENCH_FRONTENDS` (1,500) frontends × 16 backends into the
//! simulator (`maglev_vpp::sim::Sim`, API socket only, a runtime of its
//! own with one worker, as VPP is a process of its own). Then, on a
//! runtime of their own (as `maglevc` processes would be),
//! `MAGLEV_BENCH_READERS` (12) readers loop on `Handle::lb_state` (what
//! `GetVPPLBState` and `maglevc show vpp lb state` run). Meanwhile
//! `Handle::set_weight` changes one backend's weight, one change at a
//! time, `MAGLEV_BENCH_CHANGES` (8) times; the latency of a change runs
//! from the call to the moment the simulator holds the new weight (polled
//! every millisecond once the call returned). The same changes are timed
//! first without readers. Printed: each latency, the median and max of
//! both phases, the readers' dumps and errors, and whether the daemon's
//! VPP link was replaced (a `vpp-disconnect`) during the storm.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use maglev_benches::{daemon_logging, daemon_yaml, load_average, model_address, under_cargo_bench};
use maglev_bin::daemon::{Daemon, Handle, Parts, Settings, VppSockets};
use maglev_core::config::Config;
use maglev_core::state::BackendState;
use maglev_vpp::sim::{Sim, SimConfig};
use tokio::runtime::Runtime;
use tokio::time::Instant;

const BACKENDS: usize = 16;
/// Bounds a hang; nothing is timed against it.
const PATIENCE: Duration = Duration::from_secs(300);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The weight the simulator holds for `backend` in the VIP at `vip`.
fn sim_weight(sim: &Sim, vip: IpAddr, backend: IpAddr) -> Option<u8> {
    sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used && v.key.address == vip)
            .flat_map(|(_, v)| v.ases.iter().flatten())
            .find(|a| a.used && a.address == backend)
            .map(|a| a.weight)
    })
}

/// Every AS the simulator holds.
fn sim_ases(sim: &Sim) -> usize {
    sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| v.ases.iter().flatten().filter(|a| a.used).count())
            .sum()
    })
}

async fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        tick.tick().await;
    }
}

/// `changes` weight changes of backend f0b0, one at a time, each timed
/// until the simulator holds the new weight.
fn changes(
    rt: &Runtime,
    handle: &Handle,
    sim: &Sim,
    config: &Config,
    changes: usize,
    first: u32,
) -> Vec<Duration> {
    let vip = config.frontend("f0").unwrap().address;
    let backend = config.backend("f0b0").unwrap().address;
    (0..changes)
        .map(|i| {
            let weight = if (first as usize + i).is_multiple_of(2) {
                50
            } else {
                100
            };
            rt.block_on(async {
                let t0 = Instant::now();
                let r = handle
                    .set_weight("f0", "primary", "f0b0", weight, false)
                    .await;
                if let Err(e) = r {
                    println!("  set_weight failed: {e}");
                }
                poll("the weight reaches the simulator", || {
                    sim_weight(sim, vip, backend) == Some(weight as u8)
                })
                .await;
                t0.elapsed()
            })
        })
        .collect()
}

fn summary(v: &[Duration]) -> String {
    let mut s = v.to_vec();
    s.sort();
    format!(
        "median {:.1} ms, max {:.1} ms ({} changes)",
        s.get(s.len() / 2)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
        s.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        s.len()
    )
}

fn storm() {
    let frontends = env("MAGLEV_BENCH_FRONTENDS", 1500);
    let readers = env("MAGLEV_BENCH_READERS", 12);
    let n_changes = env("MAGLEV_BENCH_CHANGES", 8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let reader_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let path =
        std::env::temp_dir().join(format!("maglev-reader-storm-{}.sock", std::process::id()));
    let sim = sim_rt.block_on(Sim::start(SimConfig::new(path))).unwrap();
    let yaml = daemon_yaml(frontends, BACKENDS, None, model_address);
    let config = Config::from_yaml(&yaml, "bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(dir.path().join("maglev.yaml"));
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.vpp = Some(VppSockets {
        api: sim.api_socket().to_owned(),
        stats: None,
    });
    let parts = Parts::default();
    daemon_logging(&parts);
    let t0 = Instant::now();
    let daemon = rt
        .block_on(Daemon::start_with(settings, parts, config.clone()))
        .unwrap();
    let handle = daemon.handle().clone();
    rt.block_on(async {
        poll("static backends are up", || {
            handle
                .backends()
                .values()
                .all(|b| b.state == BackendState::Up)
        })
        .await;
        poll("the full sync reached the simulator", || {
            sim_ases(&sim) == frontends * BACKENDS
        })
        .await;
    });
    println!(
        "reader storm: {frontends}x{BACKENDS} synced in {:.1} s; load average {}",
        t0.elapsed().as_secs_f64(),
        load_average()
    );

    let quiet = changes(&rt, &handle, &sim, &config, n_changes, 0);
    println!("  without readers: {}", summary(&quiet));

    let link_before = handle.vpp().map(|l| l.connected_unix_nanos).ok();
    let stop = Arc::new(AtomicBool::new(false));
    let dumps = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..readers)
        .map(|_| {
            let (h, stop, dumps, errors) =
                (handle.clone(), stop.clone(), dumps.clone(), errors.clone());
            reader_rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match h.lb_state().await {
                        Ok(_) => dumps.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    // Let the storm build up: every reader has a dump going.
    rt.block_on(poll("the readers dump", || {
        dumps.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed) >= readers as u64
    }));
    let stormy = changes(&rt, &handle, &sim, &config, n_changes, 0);
    for (i, d) in stormy.iter().enumerate() {
        println!("  change {i}: {:.1} ms", d.as_secs_f64() * 1e3);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = reader_rt.block_on(t);
    }
    let link_after = handle.vpp().map(|l| l.connected_unix_nanos).ok();
    println!(
        "  with {readers} readers: {}; reader dumps {} ok, {} failed; VPP link {}; load average {}",
        summary(&stormy),
        dumps.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        if link_before == link_after && link_after.is_some() {
            "kept"
        } else {
            "REPLACED (vpp-disconnect)"
        },
        load_average()
    );
    rt.block_on(daemon.shutdown());
}

fn main() {
    if !under_cargo_bench() {
        println!(
            "reader_storm bench: skipped (run it with `cargo bench -p maglev-benches --bench reader_storm`)"
        );
        return;
    }
    storm();
}
