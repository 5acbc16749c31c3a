//! maglevd at 1,000 and 10,000 frontends × 16 static backends (issue 25):
//! the real processes, every cost side by side in one run, printed as a
//! markdown table for `docs/performance.md`.
//!
//! ```text
//! cargo build --release -p maglev-bin --bins
//! MAGLEV_BENCH_BIN_DIR=before=/work/before-bin,after=$PWD/target/release \
//!     cargo bench -p maglev-benches --bench scale
//! ```
//!
//! Knobs (environment):
//! - `MAGLEV_BENCH_BIN_DIR`: the directories holding `maglevd`, `maglevc`
//!   and `maglev-vppsim`, comma-separated, each optionally `label=dir`
//!   (default: the release directory this bench was built into). Each set
//!   is measured at every size, in one table. `cargo bench` runs the
//!   bench in `benches/`: give absolute directories.
//! - `MAGLEV_BENCH_SIZES`: frontend counts (default `1000,10000`).
//! - `MAGLEV_BENCH_RUNS`: full syncs per size and set (default 1); the
//!   sync figures are medians, the rest are of the last run.
//! - `MAGLEV_BENCH_CMD_TIMEOUT`: seconds a `maglevc` command, the weight
//!   change or the sync may take before it counts as failed (default 60).
//!
//! Each run: a `maglev-vppsim` process (`RUST_LOG=warn`, API socket only),
//! then `maglevd` (JSON logs at INFO on a pipe, gRPC and `/metrics` on
//! loopback, no stats socket, no state file) with a config of N frontends ×
//! 16 static backends (8 at weight 100 in pool `primary`, 8 in `fallback`;
//! warm-up 0 s). Measured:
//! - **full sync, from exec**: from `maglevd`'s exec until it logs the
//!   full sync's last op (`vpp-lbsync` lines of scope `all` adding up to
//!   every VIP and AS; the simulator applies an op before it replies, so
//!   this is when the simulator held everything, plus one reply); the
//!   simulator's holdings are then checked with a dump.
//! - **raw client**: `maglev_vpp::lb::apply::apply` of the same ops into
//!   a fresh `maglev-vppsim` process, from a connected client whose
//!   `lb_conf` is set (the floor any daemon can reach).
//! - RSS (`VmRSS`, `VmHWM`) of `maglevd` after the sync; one `/metrics`
//!   scrape (bytes, time); each list command through the real `maglevc`
//!   (a failure is reported with its first line, not as a crash).
//! - an operator's weight change (`maglevc set frontend f0 pool primary
//!   backend f0b0 weight 50`, until `maglevd` logs the op applied) while
//!   8 `maglevc show vpp lb state` loops run; then the daemon's CPU
//!   seconds in the 10 s after those readers stop.
//! - the INFO-or-above lines `maglevd` wrote from exec through the sync,
//!   and the WARN-or-above ones among them (a timeout or a refusal).

#![allow(
    clippy::disallowed_methods,
    reason = "a bench of real processes driven from plain threads: it waits on \
              and measures the wall clock, with no tokio time to pause"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use maglev_benches::{daemon_yaml, load_average, model_address, under_cargo_bench, usage};
use maglev_core::config::Config;
use maglev_core::dataplane::ObservedState;
use maglev_core::desired::desired_all;
use maglev_core::plan::{PendingFlushes, plan_all};
use maglev_core::state::BackendState;
use maglev_vpp::Client;
use maglev_vpp::lb::ops::lb_conf_for;

const BACKENDS: usize = 16;
/// Concurrent `maglevc show vpp lb state` loops during the weight change.
const READERS: usize = 8;
/// The list commands timed one by one (`show frontend f0` is added).
const LISTS: [&str; 5] = [
    "show frontends",
    "show backends",
    "show healthchecks",
    "show vpp lb state",
    "show vpp lb counters",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A set of binaries: a label and the directory holding them.
#[derive(Clone, Debug)]
struct BinSet {
    label: String,
    dir: PathBuf,
}

impl BinSet {
    fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn bin_sets() -> Vec<BinSet> {
    let default = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.to_owned()))
        .unwrap_or_else(|| PathBuf::from("target/release"));
    let spec = std::env::var("MAGLEV_BENCH_BIN_DIR").unwrap_or_default();
    if spec.trim().is_empty() {
        return vec![BinSet {
            label: "this build".into(),
            dir: default,
        }];
    }
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.split_once('=') {
            Some((label, dir)) => BinSet {
                label: label.trim().into(),
                dir: dir.trim().into(),
            },
            None => BinSet {
                label: s.trim().into(),
                dir: s.trim().into(),
            },
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `cond` every 10 ms until it holds or `patience` runs out.
fn poll(patience: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `maglev-vppsim` process on `dir/<name>.sock`, listening.
fn start_sim(bins: &BinSet, dir: &Path, name: &str) -> (Proc, PathBuf) {
    let sock = dir.join(format!("{name}.sock"));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("sim log");
    let child = Command::new(bins.bin("maglev-vppsim"))
        .arg("--api-socket")
        .arg(&sock)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bins.bin("maglev-vppsim").display()));
    let proc = Proc(child);
    assert!(
        poll(Duration::from_secs(20), || sock.exists()),
        "maglev-vppsim listens on {}",
        sock.display()
    );
    (proc, sock)
}

/// What `maglevd`'s log showed so far.
#[derive(Debug, Default)]
struct LogState {
    /// INFO-or-above lines.
    lines: u64,
    /// WARN-or-above lines.
    warnings: u64,
    /// The first few warnings' messages.
    first_warnings: Vec<String>,
    /// Lines by message (the first 40 characters).
    by_message: BTreeMap<String, u64>,
    /// VIPs and ASes the full syncs added (`vpp-lbsync`, scope `all`).
    vips_added: u64,
    ases_added: u64,
    /// When the sync reached `want`, and the lines written by then.
    synced: Option<(Instant, u64, u64)>,
    /// When each message (its first 40 characters) was first seen, in
    /// order: the daemon's timeline.
    first_seen: Vec<(Instant, String)>,
    /// The per-op `vpp-lbsync` lines: (when, frontend, op).
    ops: Vec<(Instant, String, String)>,
}

/// Reads `maglevd`'s JSON lines and keeps [`LogState`] up to date.
#[derive(Clone)]
struct LogWatch {
    state: Arc<(Mutex<LogState>, Condvar)>,
}

impl LogWatch {
    fn spawn(stdout: impl Read + Send + 'static, want: (u64, u64)) -> LogWatch {
        let watch = LogWatch {
            state: Arc::new((Mutex::new(LogState::default()), Condvar::new())),
        };
        let w = watch.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let level = v["level"].as_str().unwrap_or("");
                if !matches!(level, "INFO" | "WARN" | "ERROR") {
                    continue;
                }
                let message = v["message"].as_str().unwrap_or("").to_owned();
                let (lock, cv) = &*w.state;
                let mut s = lock.lock().unwrap();
                s.lines += 1;
                if level != "INFO" {
                    s.warnings += 1;
                    if s.first_warnings.len() < 3 {
                        s.first_warnings.push(message.clone());
                    }
                }
                let key: String = message.chars().take(40).collect();
                let n = s.by_message.entry(key.clone()).or_default();
                *n += 1;
                if *n == 1 && s.first_seen.len() < 40 {
                    s.first_seen.push((at, key));
                }
                if message.starts_with("vpp-lbsync") {
                    if let Some(op) = v["op"].as_str() {
                        let frontend = v["frontend"].as_str().unwrap_or("").to_owned();
                        s.ops.push((at, frontend, op.to_owned()));
                        if v["scope"] == "all" {
                            if op.starts_with("add vip") || op.starts_with("create vip") {
                                s.vips_added += 1;
                            } else if op.starts_with("add as") {
                                s.ases_added += 1;
                            }
                        }
                    } else if v["scope"] == "all" {
                        s.vips_added += v["vip_added"].as_u64().unwrap_or(0);
                        s.ases_added += v["as_added"].as_u64().unwrap_or(0);
                    }
                    if s.synced.is_none() && s.vips_added >= want.0 && s.ases_added >= want.1 {
                        s.synced = Some((at, s.lines, s.warnings));
                    }
                }
                cv.notify_all();
            }
        });
        watch
    }

    /// Waits until `cond` holds of the log, or `patience` runs out.
    fn wait<R>(
        &self,
        patience: Duration,
        mut cond: impl FnMut(&LogState) -> Option<R>,
    ) -> Option<R> {
        let deadline = Instant::now() + patience;
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        loop {
            if let Some(r) = cond(&s) {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s = cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    fn with<R>(&self, f: impl FnOnce(&LogState) -> R) -> R {
        f(&self.state.0.lock().unwrap())
    }
}

/// One `maglevc` command: its time, or its failure.
#[derive(Clone, Debug)]
enum Outcome {
    Ok { took: Duration, bytes: usize },
    Failed { took: Duration, why: String },
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Outcome::Ok { took, bytes: 0 } => secs(*took),
            Outcome::Ok { took, bytes } => {
                format!("{} ({:.2} MB out)", secs(*took), *bytes as f64 / 1e6)
            }
            Outcome::Failed { took, why } => format!("fails after {}: {why}", secs(*took)),
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Runs `maglevc --server <grpc> <words>`, killing it after `patience`.
fn maglevc(bins: &BinSet, grpc: SocketAddr, words: &str, patience: Duration) -> Outcome {
    let t0 = Instant::now();
    let mut child = match Command::new(bins.bin("maglevc"))
        .arg("--server")
        .arg(grpc.to_string())
        .args(words.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed {
                took: t0.elapsed(),
                why: format!("cannot start maglevc: {e}"),
            };
        }
    };
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf.len()
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = err.read_to_string(&mut buf);
        buf
    });
    let deadline = t0 + patience;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let took = t0.elapsed();
    let bytes = reader.join().unwrap_or(0);
    let stderr = err_reader.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => Outcome::Ok { took, bytes },
        Some(s) => Outcome::Failed {
            took,
            why: format!(
                "exit {}: {}",
                s.code().unwrap_or(-1),
                stderr
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect::<String>()
            ),
        },
        None => Outcome::Failed {
            took,
            why: format!("no answer within {}", secs(patience)),
        },
    }
}

/// One `GET /metrics`: (body bytes, time), or why not.
fn scrape(addr: SocketAddr) -> Result<(usize, Duration), String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let took = t0.elapsed();
    let head = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header")?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(String::from_utf8_lossy(&buf[..head.min(80)]).into_owned());
    }
    Ok((buf.len() - head - 4, took))
}

/// What the simulator at `sock` holds: (VIPs, ASes).
fn holdings(rt: &tokio::runtime::Runtime, sock: &Path) -> Result<(usize, usize), String> {
    rt.block_on(async {
        let client = Client::connect(sock).await.map_err(|e| e.to_string())?;
        let observed = client.observe().await.map_err(|e| e.to_string());
        let _ = client.close().await;
        let observed = observed?;
        Ok((
            observed.len(),
            observed.values().map(|v| v.ases.len()).sum(),
        ))
    })
}

/// Figures of one size and binary set.
#[derive(Debug, Default, Clone)]
struct Figures {
    sync: Vec<Option<Duration>>,
    /// CPU seconds of maglevd from exec through the sync, and of its
    /// simulator meanwhile (the last run).
    daemon_cpu_sync: Option<f64>,
    sim_cpu_sync: Option<f64>,
    /// The simulator's CPU seconds during the raw client's run (the last).
    raw_sim_cpu: Option<f64>,
    /// The raw client's own CPU seconds (the last).
    raw_cpu: Option<f64>,
    raw: Vec<Duration>,
    sync_warnings: u64,
    first_warnings: Vec<String>,
    held: String,
    rss_kb: u64,
    hwm_kb: u64,
    metrics: Option<Result<(usize, Duration), String>>,
    lists: Vec<(String, Outcome)>,
    weight_change: Option<Outcome>,
    reader_dumps: u64,
    reader_failures: u64,
    /// The first failed reader's first line of error.
    reader_failure: Option<String>,
    cpu_after: Option<f64>,
    log_lines: Option<u64>,
    by_message: Vec<(String, u64)>,
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied()
}

/// The raw pipelined client into a fresh simulator process.
/// The raw client's time, the simulator's CPU seconds meanwhile and this
/// process's (the raw client's).
fn raw_run(
    rt: &tokio::runtime::Runtime,
    bins: &BinSet,
    config: &Config,
    dir: &Path,
) -> (Duration, f64, f64) {
    let desired = desired_all(config, |_| BackendState::Up.into(), |_| None);
    let ops = plan_all(&desired, &ObservedState::new(), &PendingFlushes::new());
    let (sim, sock) = start_sim(bins, dir, "raw");
    let sim_pid = sim.0.id();
    let lb = &config.vpp().expect("a vpp section").lb;
    rt.block_on(async {
        let client = Client::connect(&sock)
            .await
            .expect("connect to the simulator");
        client
            .ensure_lb_conf(&lb_conf_for(lb))
            .await
            .expect("lb_conf");
        let cpu0 = usage(sim_pid).map_or(0.0, |u| u.0);
        let own0 = usage(std::process::id()).map_or(0.0, |u| u.0);
        let t0 = Instant::now();
        let report = maglev_vpp::lb::apply::apply(&client, &ops).await;
        let took = t0.elapsed();
        let cpu = usage(sim_pid).map_or(0.0, |u| u.0) - cpu0;
        let own = usage(std::process::id()).map_or(0.0, |u| u.0) - own0;
        assert!(report.is_complete(), "the raw client's ops all succeeded");
        let _ = client.close().await;
        (took, cpu, own)
    })
}

/// One daemon run; the full measurement when `full`.
fn daemon_run(
    rt: &tokio::runtime::Runtime,
    bins: &BinSet,
    frontends: usize,
    config_path: &Path,
    dir: &Path,
    full: bool,
    figures: &mut Figures,
) {
    let patience = Duration::from_secs(env_usize("MAGLEV_BENCH_CMD_TIMEOUT", 60) as u64);
    let sync_patience = patience.max(Duration::from_secs(180));
    let (sim, sock) = start_sim(bins, dir, "sim");
    let sim_pid = sim.0.id();
    let sim_cpu0 = usage(sim_pid).map_or(0.0, |u| u.0);
    let (grpc, metrics) = (
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        SocketAddr::from(([127, 0, 0, 1], free_port())),
    );
    let want = (frontends as u64, (frontends * BACKENDS) as u64);
    let t0 = Instant::now();
    let mut child = Command::new(bins.bin("maglevd"))
        .arg("--config")
        .arg(config_path)
        .arg("--grpc-addr")
        .arg(grpc.to_string())
        .arg("--metrics-addr")
        .arg(metrics.to_string())
        .arg("--vpp-api-addr")
        .arg(&sock)
        .arg("--vpp-stats-addr=")
        .arg("--state-file=")
        .arg("--log-format=json")
        .arg("--log-level=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bins.bin("maglevd").display()));
    let pid = child.id();
    let log = LogWatch::spawn(child.stdout.take().expect("piped"), want);
    let daemon = Proc(child);
    let synced = log.wait(sync_patience, |s| s.synced);
    let sync = synced.map(|(at, _, _)| at.duration_since(t0));
    figures.sync.push(sync);
    if synced.is_some() {
        figures.daemon_cpu_sync = usage(pid).map(|u| u.0);
        figures.sim_cpu_sync = usage(sim_pid).map(|u| u.0 - sim_cpu0);
    }
    match synced {
        Some((_, lines, warnings)) => {
            figures.log_lines = Some(lines);
            figures.sync_warnings = warnings;
        }
        None => {
            figures.sync_warnings = log.with(|s| s.warnings);
        }
    }
    figures.first_warnings = log.with(|s| s.first_warnings.clone());
    figures.held = match holdings(rt, &sock) {
        Ok((v, a)) if (v as u64, a as u64) == want => "all".into(),
        Ok((v, a)) => format!("{v} VIPs, {a} ASes of {}, {}", want.0, want.1),
        Err(e) => format!("dump failed: {e}"),
    };
    println!(
        "  {} {frontends}: sync {} (simulator holds {}), {} warnings {:?}; load {}",
        bins.label,
        sync.map_or("not converged".into(), secs),
        figures.held,
        figures.sync_warnings,
        figures.first_warnings,
        load_average()
    );
    let timeline = log.with(|s| {
        s.first_seen
            .iter()
            .map(|(at, m)| format!("{:.2}s {m}", at.duration_since(t0).as_secs_f64()))
            .collect::<Vec<_>>()
    });
    println!("    timeline (first of each message): {timeline:?}");
    if !full {
        return;
    }
    if let Some((_, rss, hwm)) = usage(pid) {
        (figures.rss_kb, figures.hwm_kb) = (rss, hwm);
    }
    figures.by_message = log.with(|s| {
        let mut v: Vec<_> = s.by_message.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.truncate(6);
        v
    });
    figures.metrics = Some(scrape(metrics));
    for words in LISTS.iter().copied().chain(["show frontend f0"]) {
        let outcome = maglevc(bins, grpc, words, patience);
        println!("  {} {frontends}: {words}: {}", bins.label, outcome.cell());
        figures.lists.push((words.to_owned(), outcome));
    }

    // The weight change while readers loop.
    let stop = Arc::new(AtomicBool::new(false));
    let (dumps, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let why = Arc::new(Mutex::new(None::<String>));
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let (stop, dumps, failures, bins, why) = (
                stop.clone(),
                dumps.clone(),
                failures.clone(),
                bins.clone(),
                why.clone(),
            );
            let err_path = dir.join(format!("reader{i}.err"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut c) = Command::new(bins.bin("maglevc"))
                        .arg("--server")
                        .arg(grpc.to_string())
                        .args(["show", "vpp", "lb", "state"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(
                            std::fs::File::create(&err_path)
                                .map(Stdio::from)
                                .unwrap_or_else(|_| Stdio::null()),
                        )
                        .spawn()
                    else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let status = loop {
                        if stop.load(Ordering::Relaxed) {
                            let _ = c.kill();
                            let _ = c.wait();
                            break None;
                        }
                        match c.try_wait() {
                            Ok(Some(s)) => break Some(s),
                            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                            Err(_) => break None,
                        }
                    };
                    match status {
                        Some(s) if s.success() => dumps.fetch_add(1, Ordering::Relaxed),
                        Some(_) => {
                            let mut why = why.lock().unwrap();
                            if why.is_none() {
                                *why = std::fs::read_to_string(&err_path)
                                    .ok()
                                    .and_then(|e| e.lines().next().map(str::to_owned));
                            }
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                        None => 0,
                    };
                }
            })
        })
        .collect();
    // Let the readers get going (their first dumps are in flight).
    std::thread::sleep(Duration::from_secs(1));
    let seen = log.with(|s| s.ops.len());
    let t = Instant::now();
    let set = maglevc(
        bins,
        grpc,
        "set frontend f0 pool primary backend f0b0 weight 50",
        patience,
    );
    let applied = log.wait(patience.saturating_sub(t.elapsed()), |s| {
        s.ops[seen..]
            .iter()
            .find(|(_, f, op)| f == "f0" && op.contains("weight 50"))
            .map(|(at, _, _)| *at)
    });
    figures.weight_change = Some(match (applied, &set) {
        (Some(at), _) => Outcome::Ok {
            took: at.duration_since(t),
            bytes: 0,
        },
        (None, Outcome::Failed { took, why }) => Outcome::Failed {
            took: *took,
            why: why.clone(),
        },
        (None, Outcome::Ok { .. }) => Outcome::Failed {
            took: t.elapsed(),
            why: "maglevc returned but no applied op was logged".into(),
        },
    });
    println!(
        "  {} {frontends}: weight change under {READERS} readers: {}",
        bins.label,
        figures.weight_change.as_ref().expect("set").cell()
    );
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    figures.reader_dumps = dumps.load(Ordering::Relaxed);
    figures.reader_failures = failures.load(Ordering::Relaxed);
    figures.reader_failure = why.lock().unwrap().take();
    let cpu0 = usage(pid).map(|u| u.0);
    std::thread::sleep(Duration::from_secs(10));
    let cpu1 = usage(pid).map(|u| u.0);
    figures.cpu_after = cpu0.zip(cpu1).map(|(a, b)| b - a);
    drop(daemon);
}

fn measure(bins: &BinSet, frontends: usize, runs: usize) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let yaml = daemon_yaml(frontends, BACKENDS, None, model_address);
    let config = Config::from_yaml(&yaml, "bench").expect("the bench config is valid");
    let config_path = dir.path().join("maglev.yaml");
    std::fs::write(&config_path, &yaml).expect("writing the config");
    let mut figures = Figures::default();
    for run in 0..runs.max(1) {
        let last = run + 1 >= runs.max(1);
        daemon_run(
            &rt,
            bins,
            frontends,
            &config_path,
            dir.path(),
            last,
            &mut figures,
        );
        let (raw, raw_sim_cpu, raw_cpu) = raw_run(&rt, bins, &config, dir.path());
        figures.raw_sim_cpu = Some(raw_sim_cpu);
        figures.raw_cpu = Some(raw_cpu);
        println!("  {} {frontends}: raw client {}", bins.label, secs(raw));
        figures.raw.push(raw);
    }
    figures
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
        _ => "–".into(),
    }
}

fn ok_secs(o: &Outcome) -> Option<f64> {
    match o {
        Outcome::Ok { took, .. } => Some(took.as_secs_f64()),
        Outcome::Failed { .. } => None,
    }
}

/// The markdown table: a row per figure, a column per (set, size), and
/// per set the ratio of its largest size to its smallest.
fn table(sizes: &[usize], results: &[(BinSet, Vec<Figures>)]) -> String {
    let mut out = String::new();
    let mut header = String::from("| |");
    let mut rule = String::from("| --- |");
    for (bins, _) in results {
        for n in sizes {
            header += &format!(" {} {n} × {BACKENDS} |", bins.label);
            rule += " --- |";
        }
        if sizes.len() > 1 {
            header += &format!(" {} {}/{} |", bins.label, sizes[sizes.len() - 1], sizes[0]);
            rule += " --- |";
        }
    }
    out += &header;
    out += "\n";
    out += &rule;
    out += "\n";
    type Row = Box<dyn Fn(&Figures) -> (String, Option<f64>)>;
    let mut rows: Vec<(String, Row)> = vec![
        (
            "full sync from exec (median)".into(),
            Box::new(|f: &Figures| {
                let done: Vec<Duration> = f.sync.iter().flatten().copied().collect();
                let failed = f.sync.len() - done.len();
                let m = median(&done);
                let mut cell = m.map_or("not converged".into(), secs);
                if failed > 0 {
                    cell += &format!(" ({failed} of {} runs not converged)", f.sync.len());
                }
                (cell, m.map(|d| d.as_secs_f64()))
            }),
        ),
        (
            "raw pipelined client (median)".into(),
            Box::new(|f: &Figures| {
                let m = median(&f.raw);
                (m.map_or("–".into(), secs), m.map(|d| d.as_secs_f64()))
            }),
        ),
        (
            "sync / raw".into(),
            Box::new(|f: &Figures| {
                let s = median(&f.sync.iter().flatten().copied().collect::<Vec<_>>());
                match (s, median(&f.raw)) {
                    (Some(s), Some(r)) => {
                        let x = s.as_secs_f64() / r.as_secs_f64();
                        (format!("{x:.2}"), None)
                    }
                    _ => ("–".into(), None),
                }
            }),
        ),
        (
            "CPU s: maglevd exec through the sync / its simulator; the raw client / its simulator"
                .into(),
            Box::new(|f: &Figures| {
                let c = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
                (
                    format!(
                        "{} / {}; {} / {}",
                        c(f.daemon_cpu_sync),
                        c(f.sim_cpu_sync),
                        c(f.raw_cpu),
                        c(f.raw_sim_cpu)
                    ),
                    f.daemon_cpu_sync,
                )
            }),
        ),
        (
            "warnings during the sync (timeouts, refusals)".into(),
            Box::new(|f: &Figures| (f.sync_warnings.to_string(), None)),
        ),
        (
            "simulator holds after the sync".into(),
            Box::new(|f: &Figures| (f.held.clone(), None)),
        ),
        (
            "INFO+ log lines, exec through the sync".into(),
            Box::new(|f: &Figures| {
                (
                    f.log_lines.map_or("–".into(), |n| n.to_string()),
                    f.log_lines.map(|n| n as f64),
                )
            }),
        ),
        (
            "maglevd RSS after the sync (VmRSS / VmHWM)".into(),
            Box::new(|f: &Figures| {
                (
                    format!("{} / {}", mb(f.rss_kb), mb(f.hwm_kb)),
                    Some(f.rss_kb as f64),
                )
            }),
        ),
        (
            "one `/metrics` scrape".into(),
            Box::new(|f: &Figures| match &f.metrics {
                Some(Ok((bytes, took))) => (
                    format!("{:.1} MB, {}", *bytes as f64 / 1e6, secs(*took)),
                    Some(*bytes as f64),
                ),
                Some(Err(e)) => (format!("fails: {e}"), None),
                None => ("–".into(), None),
            }),
        ),
    ];
    for (i, words) in LISTS
        .iter()
        .copied()
        .chain(["show frontend f0"])
        .enumerate()
    {
        rows.push((
            format!("`maglevc {words}`"),
            Box::new(move |f: &Figures| match f.lists.get(i) {
                Some((_, o)) => (o.cell(), ok_secs(o)),
                None => ("–".into(), None),
            }),
        ));
    }
    rows.push((
        format!("weight change while {READERS} `show vpp lb state` loops"),
        Box::new(|f: &Figures| match &f.weight_change {
            Some(o) => (o.cell(), ok_secs(o)),
            None => ("–".into(), None),
        }),
    ));
    rows.push((
        "readers' dumps done / failed meanwhile".into(),
        Box::new(|f: &Figures| {
            let mut cell = format!("{} / {}", f.reader_dumps, f.reader_failures);
            if let Some(why) = &f.reader_failure {
                cell += &format!(" (first: {})", why.chars().take(100).collect::<String>());
            }
            (cell, None)
        }),
    ));
    rows.push((
        "daemon CPU in the 10 s after the readers stop".into(),
        Box::new(|f: &Figures| match f.cpu_after {
            Some(c) => (format!("{c:.2} s"), None),
            None => ("–".into(), None),
        }),
    ));
    for (name, row) in &rows {
        out += &format!("| {name} |");
        for (_, figures) in results {
            let cells: Vec<_> = figures.iter().map(row).collect();
            for (cell, _) in &cells {
                out += &format!(" {} |", cell.replace('|', "\\|"));
            }
            if sizes.len() > 1 {
                out += &format!(" {} |", ratio(cells[0].1, cells[cells.len() - 1].1));
            }
        }
        out += "\n";
    }
    out
}

fn main() {
    if !under_cargo_bench() {
        println!(
            "scale bench: skipped (run it with `cargo bench -p maglev-benches --bench scale`)"
        );
        return;
    }
    let sizes: Vec<usize> = std::env::var("MAGLEV_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs = env_usize("MAGLEV_BENCH_RUNS", 1);
    let sets = bin_sets();
    println!(
        "scale bench: sizes {sizes:?} × {BACKENDS}, {runs} run(s), sets {:?}; load average {}",
        sets.iter()
            .map(|s| format!("{}={}", s.label, s.dir.display()))
            .collect::<Vec<_>>(),
        load_average()
    );
    let mut results = Vec::new();
    for bins in &sets {
        let figures: Vec<Figures> = sizes.iter().map(|&n| measure(bins, n, runs)).collect();
        for (n, f) in sizes.iter().zip(&figures) {
            println!(
                "  {} {n}: log lines by message: {:?}",
                bins.label, f.by_message
            );
        }
        results.push((bins.clone(), figures));
    }
    println!("\nload average at the end: {}\n", load_average());
    println!("{}", table(&sizes, &results));
}
