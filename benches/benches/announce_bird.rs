//! Withdraw time through the real routing engine: from the moment the last
//! backend of a frontend starts failing to the moment its VIP leaves the
//! table of a BGP peer, over repeated runs, in three parts:
//!
//! - **detection**: the backend answers 503 → maglevd's checker declares
//!   it down (the `Transition` instant of its event; probes every 100 ms,
//!   fall 1);
//! - **maglevd**: down → the route leaves kernel table 200 of namespace A
//!   (`ip -n A monitor route`, stamped when the bench reads the line);
//! - **BIRD**: the kernel delete → the prefix is gone from BIRD B
//!   (`birdc show route`, polled every 5 ms, a call taking ~2 ms): BIRD
//!   A's kernel protocol learns the delete, withdraws it over eBGP to B.
//!
//! ```text
//! cargo bench -p maglev-benches --bench announce_bird
//! MAGLEV_BENCH_RUNS=50 cargo bench -p maglev-benches --bench announce_bird
//! ```
//!
//! Setup as the end-to-end test (maglev-bin/tests/announce_bird.rs, whose
//! `bird_common` harness this includes): two namespaces, BIRD A with the
//! user guide's snippet, BIRD B its eBGP peer. The daemon runs in process
//! (`Daemon::start`, its kernel table in namespace A), on the VPP
//! simulator, with one HTTP backend on loopback; `min-interval: 1s`, so
//! each run first waits for the re-announce. Needs root, iproute2 and
//! BIRD 2; prints the percentiles and the load average.

#![allow(
    clippy::disallowed_methods,
    reason = "a bench of real processes (BIRD, ip monitor): it measures the \
              wall clock across threads, with no tokio time to pause"
)]

#[path = "../../maglev-bin/tests/bird_common/mod.rs"]
mod bird_common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use maglev_benches::load_average;
use maglev_bin::daemon::{Daemon, Parts, Settings};
use maglev_bin::demo::{HttpBackend, SimVpp};
use maglev_bin::events::{EventHub, EventKind, Received};
use maglev_core::state::BackendState;
use maglev_health::status::Change;

const VIP: &str = "192.0.2.78";
const PREFIX: &str = "192.0.2.78/32";

fn config(netns: &str, port: u16) -> String {
    format!(
        r#"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: 0s
      startup-max-delay: 0s
  announce:
    table: 200
    protocol: 201
    netns: {netns}
    min-interval: 1s
    vpp-grace: 2s
  healthchecks:
    web:
      type: http
      port: {port}
      interval: 100ms
      timeout: 100ms
      rise: 1
      fall: 1
  backends:
    a: {{ address: 127.0.78.1, healthcheck: web }}
  frontends:
    web:
      address: {VIP}
      protocol: tcp
      port: 80
      pools:
        - name: main
          backends: {{ a: {{}} }}
"#
    )
}

/// The `p`th percentile (0..=100) of sorted `v`, nearest rank.
fn pct(v: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name:<10} p50 {:>8.1?}  p99 {:>8.1?}  min {:>8.1?}  max {:>8.1?}  (n = {})",
        pct(&v, 50.0),
        pct(&v, 99.0),
        v[0],
        v[v.len() - 1],
        v.len()
    );
}

fn main() {
    let runs: usize = std::env::var("MAGLEV_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let peering = match rt.block_on(bird_common::Peering::start()) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("announce_bird: cannot run here: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (vpp, backend) = rt.block_on(async {
        let vpp = SimVpp::start(dir.path(), 1, None).await.unwrap();
        let backend = HttpBackend::start("127.0.78.1:0".parse().unwrap())
            .await
            .unwrap();
        (vpp, backend)
    });
    let config_path = dir.path().join("maglev.yaml");
    std::fs::write(&config_path, config(&peering.a.0, backend.addr().port())).unwrap();

    // The kernel side: route deletes in namespace A, stamped on reading.
    let mut monitor = Command::new("ip")
        .args(["-n", &peering.a.0, "monitor", "route"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (deleted_tx, deleted) = mpsc::channel::<Instant>();
    let out = monitor.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("Deleted") && line.contains(VIP) && line.contains("table 200") {
                let _ = deleted_tx.send(Instant::now());
            }
        }
    });

    // The daemon, and its backend transitions as they happen.
    let hub = EventHub::new();
    let mut events = hub.subscribe(None);
    let (down_tx, down) = mpsc::channel::<Instant>();
    let daemon = rt.block_on(async {
        let mut settings = Settings::new(config_path.clone());
        settings.grpc_addr = None;
        settings.metrics_addr = None;
        settings.vpp = Some(vpp.sockets());
        settings.state_file = None;
        let parts = Parts {
            hub: hub.clone(),
            ..Parts::default()
        };
        Daemon::start(settings, parts).await.unwrap()
    });
    rt.spawn(async move {
        while let Some(received) = events.recv().await {
            if let Received::Event(e) = received
                && let EventKind::Backend {
                    change: Change::Transition(t),
                    ..
                } = &e.kind
                && t.to == BackendState::Down
            {
                let _ = down_tx.send(t.at.into_std());
            }
        }
    });

    let (mut detection, mut maglevd, mut bird, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        backend.set_healthy(true);
        rt.block_on(peering.until_on_b(PREFIX));
        while deleted.try_recv().is_ok() {}
        while down.try_recv().is_ok() {}
        let start = Instant::now();
        backend.set_healthy(false);
        rt.block_on(peering.until_gone_from_b(PREFIX));
        let gone = Instant::now();
        let at_down = down
            .recv_timeout(bird_common::PATIENCE)
            .expect("the backend went down");
        let at_delete = deleted
            .recv_timeout(bird_common::PATIENCE)
            .expect("the route left table 200");
        detection.push(at_down.saturating_duration_since(start));
        maglevd.push(at_delete.saturating_duration_since(at_down));
        bird.push(gone.saturating_duration_since(at_delete));
        total.push(gone - start);
        eprintln!("run {run}: {:?}", gone - start);
    }
    println!(
        "last backend fails → VIP gone from the BGP peer, {runs} runs (load {}):",
        load_average()
    );
    report("detection", detection);
    report("maglevd", maglevd);
    report("BIRD", bird);
    report("total", total);

    rt.block_on(async {
        daemon.shutdown().await;
        vpp.stop().await;
    });
    let _ = monitor.kill();
    let _ = monitor.wait();
}
