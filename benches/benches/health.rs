//! Health-checking cost: one maglev checker probing N HTTP backends (default
//! 10,000) on loopback addresses 127.0.x.y every second, the whole daemon
//! (`maglevd`'s composition) probing the same backends, and HAProxy
//! checking the same servers at the same rate, in the same run.
//!
//! ```text
//! cargo bench -p maglev-benches --bench health
//! MAGLEV_BENCH_BACKENDS=10000 MAGLEV_BENCH_SECONDS=20 cargo bench -p maglev-benches --bench health
//! MAGLEV_BENCH_ONLY=checker-current,daemon-off cargo bench -p maglev-benches --bench health
//! ```
//!
//! Rows (`MAGLEV_BENCH_ONLY` picks some, comma-separated): `checker-multi`,
//! `checker-current` (the checker alone on a multi-thread or current-thread
//! runtime), `daemon-off` (the daemon with VPP off: a pure health checker),
//! `daemon-sim` (the daemon programming a simulated VPP, API and stats,
//! that runs in a process of its own so its CPU is not counted),
//! `daemon-off-ct`, `daemon-sim-ct` (the same two with the checker on a
//! current-thread runtime of its own thread, `Parts::checker_runtime`), and
//! `haproxy`. The daemon runs as `maglevd` does: a multi-thread runtime,
//! JSON logging at INFO (formatted into a sink), metrics recorded for
//! every probe, no gRPC or `/metrics` listener; its config groups the
//! backends into frontends of 16 (two pools of 8) with warm-up off.
//!
//! One server process (this one) listens on port 18080 of every 127.0.x.y
//! address and answers each request with `200 OK`. The checker runs in a
//! child process (this binary with `--role checker`), then HAProxy (Debian
//! package `haproxy`) runs with one `check` server per address; each gets a
//! warm-up and then a measured window, in which the CPU time of its process
//! (user + system, from /proc) and its resident memory are read and the
//! connections the server accepted are counted. Only loopback addresses are
//! used; the run ends by itself. Figures go to docs/performance.md.
//!
//! # At 160,000 backends (issue 25; only when named in `MAGLEV_BENCH_ONLY`)
//!
//! ```text
//! MAGLEV_BENCH_ONLY=scale-static,scale-mixed,state-file MAGLEV_BENCH_SECONDS=60 \
//!   MAGLEV_BENCH_MAGLEVD_BEFORE=/work/before-bin/maglevd cargo bench -p maglev-benches --bench health
//! ```
//!
//! `scale-static` and `scale-mixed` run a real `maglevd` binary
//! (`MAGLEV_BENCH_MAGLEVD`, by default `target/release/maglevd` next to
//! this bench; `MAGLEV_BENCH_MAGLEVD_BEFORE` adds another, measured the same
//! way in the same run) with VPP, gRPC and `/metrics` off and a state file,
//! over `MAGLEV_BENCH_SCALE_BACKENDS` (160,000) backends in frontends of 16:
//! all static, or the first `MAGLEV_BENCH_SCALE_PROBED` (10,000, at most
//! `MAGLEV_BENCH_BACKENDS`) probed every second on 127.0.x.y and the rest
//! static on 10.x.y.z (never contacted). Once the daemon has written its
//! first state file and had a warm-up, its CPU is read over the window and
//! the state file's writes in it are counted (a write replaces the file,
//! so each gives it a new inode). `state-file` encodes, writes (with
//! fsync) and reads back a state file of that many backends in this
//! process, and times a checker's start and snapshot over that many static
//! backends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use maglev_benches::{daemon_logging, daemon_yaml, load_average, usage};
use maglev_bin::daemon::runtime::RuntimeThread;
use maglev_bin::daemon::{Daemon, Parts, Settings, VppSockets};
use maglev_core::config::Config;
use maglev_health::Checker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

const PORT: u16 = 18080;
const WARMUP: Duration = Duration::from_secs(5);
/// The scale rows' warm-up after the first state file: the probed
/// backends come up (and the file is written for it) in the first seconds,
/// and the frontends' first pool choices are seen by the writer's first
/// pool check (`state_file::POOLS_CHECK`, 30 s) and written.
const SCALE_WARMUP: Duration = Duration::from_secs(40);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The i-th backend address: 127.0.1.1, 127.0.1.2, ... 127.0.1.250,
/// 127.0.2.1, ...
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let role = args
        .iter()
        .position(|a| a == "--role")
        .and_then(|pos| args.get(pos + 1))
        .map(String::as_str);
    if role == Some("daemon") || role == Some("vppsim") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let n = env_or("MAGLEV_BENCH_BACKENDS", 10_000) as usize;
        let run = Duration::from_secs(env_or("MAGLEV_BENCH_CHILD_SECONDS", 60));
        let dir = std::env::var_os("MAGLEV_BENCH_VPP_DIR").map(std::path::PathBuf::from);
        if role == Some("daemon") {
            rt.block_on(daemon(n, run, dir));
        } else {
            rt.block_on(vppsim(run, dir.expect("MAGLEV_BENCH_VPP_DIR")));
        }
        return;
    }
    if role == Some("checker") {
        let rt = if std::env::var("MAGLEV_BENCH_RUNTIME").as_deref() == Ok("current") {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        }
        .enable_all()
        .build()
        .expect("tokio runtime");
        let n = env_or("MAGLEV_BENCH_BACKENDS", 10_000) as usize;
        let secs = env_or("MAGLEV_BENCH_CHILD_SECONDS", 60);
        rt.block_on(checker(n, Duration::from_secs(secs)));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and then the 90-second run is not wanted.
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "health bench: skipped (run it with `cargo bench -p maglev-benches --bench health`)"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(parent());
}

/// The child: a checker over `n` backends, for `run` at most.
async fn checker(n: usize, run: Duration) {
    let mut yaml = String::from(
        "maglev:\n  healthchecks:\n    web:\n      type: http\n      port: 18080\n      interval: 1s\n      \
         timeout: 1s\n      rise: 2\n      fall: 3\n      params: { path: /healthz }\n  backends:\n",
    );
    for i in 0..n {
        yaml += &format!(
            "    b{i}: {{ address: {}, healthcheck: web }}\n",
            address(i)
        );
    }
    let config = Config::from_yaml(&yaml, "bench").expect("bench config");
    let checker = Checker::start(&config).expect("checker");
    sleep(run).await;
    let snap = checker.snapshot();
    let up = snap
        .values()
        .filter(|s| s.state == maglev_core::state::BackendState::Up)
        .count();
    let mut durations: Vec<Duration> = snap
        .values()
        .filter_map(|s| s.last_probe.as_ref().map(|p| p.duration))
        .collect();
    durations.sort();
    let pct = |q: f64| {
        durations
            .get(((durations.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let failed = snap
        .values()
        .filter(|s| s.last_probe.as_ref().is_some_and(|p| !p.code.is_pass()))
        .count();
    println!(
        "checker: {up} of {} backends up, {failed} last probes failed; last probe duration p50 {:?}, p99 {:?}, max {:?}",
        snap.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    checker.shutdown().await;
}

/// The health check of every row, as a YAML flow mapping.
const CHECK: &str = "{ type: http, port: 18080, interval: 1s, timeout: 1s, rise: 2, fall: 3, \
                     params: { path: /healthz } }";

/// The child: the daemon over `n` backends (frontends of 16), programming
/// the simulated VPP whose sockets are in `vpp` (or with VPP off), for
/// `run` at most.
async fn daemon(n: usize, run: Duration, vpp: Option<std::path::PathBuf>) {
    let yaml = daemon_yaml(n / 16, 16, Some(CHECK), |i| IpAddr::V4(address(i)));
    let config = Config::from_yaml(&yaml, "bench").expect("bench config");
    let dir = std::env::temp_dir().join(format!("maglev-bench-daemon-{}", std::process::id()));
    let mut settings = Settings::new(dir.join("maglev.yaml"));
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.reconnect_interval = Duration::from_millis(100);
    settings.vpp = vpp.map(|d| VppSockets {
        api: d.join("api.sock"),
        stats: Some(d.join("stats.sock")),
    });
    let mut parts = Parts::default();
    if std::env::var("MAGLEV_BENCH_CHECKER_THREAD").as_deref() == Ok("1") {
        parts.checker_runtime = Some(checker_thread());
    }
    daemon_logging(&parts);
    let daemon = Daemon::start_with(settings, parts, config)
        .await
        .expect("daemon");
    sleep(run).await;
    let h = daemon.handle();
    let up = h
        .backends()
        .values()
        .filter(|s| s.state == maglev_core::state::BackendState::Up)
        .count();
    let vpp = match h.lb_state().await {
        Ok(lb) => {
            let o = lb.observed();
            let ases: usize = o.values().map(|v| v.ases.len()).sum();
            format!("VPP holds {} VIPs, {ases} ASes", o.len())
        }
        Err(e) => format!("VPP: {e}"),
    };
    println!("daemon: {up} of {} backends up; {vpp}", h.backends().len());
    daemon.shutdown().await;
}

/// A current-thread runtime on a thread of its own, for the checker, as
/// `maglevd` has it; it lives as long as the process.
fn checker_thread() -> tokio::runtime::Handle {
    let thread = RuntimeThread::start("maglev-health").expect("checker thread");
    let handle = thread.handle();
    std::mem::forget(thread);
    handle
}

/// The child: a simulated VPP (API and stats sockets in `dir`), for `run`.
async fn vppsim(run: Duration, dir: std::path::PathBuf) {
    let sim = maglev_bin::demo::SimVpp::start(&dir, 2, None)
        .await
        .expect("VPP simulator");
    sleep(run).await;
    sim.stop().await;
}

/// Accepts on every address and answers each request with 200.
fn serve(n: usize, accepted: Arc<AtomicU64>) {
    for i in 0..n {
        let addr = SocketAddr::new(IpAddr::V4(address(i)), PORT);
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind(addr)
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let listener = socket.listen(1024).expect("listen");
        let accepted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => head.extend_from_slice(&buf[..k]),
                        }
                    }
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                        )
                        .await;
                });
            }
        });
    }
}

struct Figures {
    name: String,
    cpu_percent: f64,
    probes_per_sec: f64,
    rss_mib: f64,
    hwm_mib: f64,
    /// The load averages at the end of the window.
    load: String,
}

/// Warms `child` up, then measures it for `window`.
async fn measure(
    name: &str,
    child: &mut Child,
    accepted: &AtomicU64,
    window: Duration,
    warmup: Duration,
) -> Option<Figures> {
    let pid = child.id()?;
    sleep(warmup).await;
    let (cpu0, _, _) = usage(pid)?;
    let conns0 = accepted.load(Ordering::Relaxed);
    let t0 = Instant::now();
    sleep(window).await;
    let (cpu1, rss, hwm) = usage(pid)?;
    if let Ok(Some(status)) = child.try_wait() {
        println!("{name} exited during the measurement: {status}");
        return None;
    }
    let conns1 = accepted.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    Some(Figures {
        name: name.to_owned(),
        cpu_percent: 100.0 * (cpu1 - cpu0) / secs,
        probes_per_sec: (conns1 - conns0) as f64 / secs,
        rss_mib: rss as f64 / 1024.0,
        hwm_mib: hwm as f64 / 1024.0,
        load: load_average(),
    })
}

fn haproxy_config(n: usize) -> String {
    let mut c = String::from(
        "global\n  maxconn 4096\n\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  \
         timeout server 5s\n  timeout check 1s\n\n\
         frontend fe\n  bind 127.0.0.1:18081\n  default_backend be\n\nbackend be\n  option httpchk GET /healthz\n",
    );
    for i in 0..n {
        c += &format!(
            "  server s{i} {}:{PORT} check inter 1s rise 2 fall 3\n",
            address(i)
        );
    }
    c
}

async fn parent() {
    let n = env_or("MAGLEV_BENCH_BACKENDS", 10_000) as usize;
    let window = Duration::from_secs(env_or("MAGLEV_BENCH_SECONDS", 20));
    let accepted = Arc::new(AtomicU64::new(0));
    serve(n, accepted.clone());
    println!(
        "health bench: {n} HTTP backends on 127.0.x.y:{PORT}, probed every 1s; warm-up {WARMUP:?}, window {window:?}"
    );

    let only = std::env::var("MAGLEV_BENCH_ONLY").ok();
    let wanted = |row: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|r| r.trim() == row))
    };
    // The scale rows run only when named.
    let wanted_only = |row: &str| {
        only.as_deref()
            .is_some_and(|o| o.split(',').any(|r| r.trim() == row))
    };
    println!("load average {} at the start", load_average());

    let mut results = Vec::new();
    let exe = std::env::current_exe().expect("current exe");
    let child_secs = (WARMUP + window).as_secs() + 5;
    let dir = std::env::temp_dir().join(format!("maglev-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (row, name, role, runtime, vpp) in [
        (
            "checker-multi",
            "maglev-health, tokio multi-thread (2 workers)",
            "checker",
            "multi",
            false,
        ),
        (
            "checker-current",
            "maglev-health, tokio current-thread",
            "checker",
            "current",
            false,
        ),
        ("daemon-off", "maglevd, VPP off", "daemon", "multi", false),
        (
            "daemon-sim",
            "maglevd, simulated VPP (other process)",
            "daemon",
            "multi",
            true,
        ),
        (
            "daemon-off-ct",
            "maglevd, VPP off, checker on its own current-thread runtime",
            "daemon",
            "current",
            false,
        ),
        (
            "daemon-sim-ct",
            "maglevd, simulated VPP, checker on its own current-thread runtime",
            "daemon",
            "current",
            true,
        ),
    ] {
        if !wanted(row) {
            continue;
        }
        let mut sim = None;
        let mut command = Command::new(&exe);
        command
            .args(["--role", role])
            .env("MAGLEV_BENCH_BACKENDS", n.to_string())
            .env("MAGLEV_BENCH_CHILD_SECONDS", child_secs.to_string())
            .env("MAGLEV_BENCH_RUNTIME", runtime)
            .env(
                "MAGLEV_BENCH_CHECKER_THREAD",
                if role == "daemon" && runtime == "current" {
                    "1"
                } else {
                    "0"
                },
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if vpp {
            let vpp_dir = dir.join("vpp");
            std::fs::create_dir_all(&vpp_dir).expect("vpp dir");
            sim = Some(
                Command::new(&exe)
                    .args(["--role", "vppsim"])
                    .env("MAGLEV_BENCH_VPP_DIR", &vpp_dir)
                    .env("MAGLEV_BENCH_CHILD_SECONDS", (child_secs + 5).to_string())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("spawn the VPP simulator"),
            );
            command.env("MAGLEV_BENCH_VPP_DIR", &vpp_dir);
        }
        let mut child = command.spawn().expect("spawn the checker");
        results.extend(measure(name, &mut child, &accepted, window, WARMUP).await);
        if let Ok(out) = child.wait_with_output().await {
            print!("{name}: {}", String::from_utf8_lossy(&out.stdout));
        }
        if let Some(mut sim) = sim {
            let _ = sim.kill().await;
        }
    }

    if wanted_only("scale-static") || wanted_only("scale-mixed") {
        results.extend(scale_rows(&dir, &accepted, window, &wanted_only).await);
    }
    if wanted_only("state-file") {
        state_file_row(&dir).await;
    }

    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(n)).expect("haproxy.cfg");
    let haproxy = wanted("haproxy").then(|| {
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
    });
    match haproxy {
        None => {}
        Some(Ok(mut h)) => {
            let version = std::process::Command::new("haproxy")
                .arg("-v")
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default();
            println!("reference: {version}");
            results.extend(measure("haproxy", &mut h, &accepted, window, WARMUP).await);
            let _ = h.kill().await;
        }
        Some(Err(e)) => {
            println!("reference skipped: cannot run haproxy ({e}); `apt-get install -y haproxy`")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "| checker | probes/s | CPU (% of one core) | CPU per 1000 probes/s | RSS (MiB) | peak RSS (MiB) | load after |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for f in &results {
        // No probes (all static): no cost per probe to show.
        let per_probe = if f.probes_per_sec < 1.0 {
            "—".to_owned()
        } else {
            format!("{:.2}", f.cpu_percent / (f.probes_per_sec / 1000.0))
        };
        println!(
            "| {} | {:.0} | {:.2} | {per_probe} | {:.1} | {:.1} | {} |",
            f.name, f.probes_per_sec, f.cpu_percent, f.rss_mib, f.hwm_mib, f.load
        );
    }
}

/// The config of a scale row: `n` backends in frontends of 16 (two pools
/// of 8), the first `probed` probed on 127.0.x.y, the others static on
/// 10.x.y.z.
fn scale_yaml(n: usize, probed: usize) -> String {
    use std::fmt::Write as _;
    let mut y = String::from(
        "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.254\n      \
         ipv6-src-address: 2001:db8::fe\n      startup-min-delay: 0s\n      startup-max-delay: 0s\n",
    );
    let _ = writeln!(y, "  healthchecks:\n    web: {CHECK}");
    y.push_str("  backends:\n");
    for i in 0..n {
        let (address, check) = if i < probed {
            (IpAddr::V4(address(i)), ", healthcheck: web")
        } else {
            (maglev_benches::model_address(i), "")
        };
        let _ = writeln!(y, "    b{i}: {{ address: {address}{check} }}");
    }
    y.push_str("  frontends:\n");
    for f in 0..n.div_ceil(16) {
        let _ = writeln!(
            y,
            "    f{f}:\n      address: 192.0.{}.{}\n      protocol: tcp\n      port: 80\n      pools:",
            2 + f / 250,
            1 + f % 250
        );
        for (p, range) in [("primary", 0..8), ("fallback", 8..16)] {
            let _ = writeln!(y, "        - name: {p}\n          backends:");
            for b in range.map(|b| f * 16 + b).filter(|&b| b < n) {
                let _ = writeln!(y, "            b{b}: {{}}");
            }
        }
    }
    y
}

/// The `maglevd` binaries the scale rows measure: this build's (or
/// `MAGLEV_BENCH_MAGLEVD`), then `MAGLEV_BENCH_MAGLEVD_BEFORE` if set.
fn maglevd_binaries() -> Vec<(String, std::path::PathBuf)> {
    let own = std::env::var_os("MAGLEV_BENCH_MAGLEVD")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            // target/release/deps/health-… -> target/release/maglevd
            let exe = std::env::current_exe().expect("current exe");
            exe.parent()
                .and_then(|d| d.parent())
                .map(|d| d.join("maglevd"))
                .expect("target dir")
        });
    let mut out = vec![("after".to_owned(), own)];
    if let Some(before) = std::env::var_os("MAGLEV_BENCH_MAGLEVD_BEFORE") {
        out.push(("before".to_owned(), before.into()));
    }
    out
}

/// The scale rows: each `maglevd` over 160,000 backends, all static or
/// 10,000 probed; CPU, probes and state-file writes in the window.
async fn scale_rows(
    dir: &std::path::Path,
    accepted: &AtomicU64,
    window: Duration,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<Figures> {
    let n = env_or("MAGLEV_BENCH_SCALE_BACKENDS", 160_000) as usize;
    let served = env_or("MAGLEV_BENCH_BACKENDS", 10_000) as usize;
    let probed = (env_or("MAGLEV_BENCH_SCALE_PROBED", 10_000) as usize).min(served);
    let mut out = Vec::new();
    for (row, probed) in [("scale-static", 0), ("scale-mixed", probed)] {
        if !wanted(row) {
            continue;
        }
        let cfg = dir.join(format!("{row}.yaml"));
        std::fs::write(&cfg, scale_yaml(n, probed)).expect("scale config");
        for (which, bin) in maglevd_binaries() {
            let state = dir.join(format!("{row}-{which}-state.json"));
            let _ = std::fs::remove_file(&state);
            let name = format!(
                "maglevd {which}, {n} backends, {probed} probed, {} static",
                n - probed
            );
            let started = Instant::now();
            let mut child = Command::new(&bin)
                .arg("--config")
                .arg(&cfg)
                .args([
                    "--grpc-addr",
                    "",
                    "--metrics-addr",
                    "",
                    "--vpp-api-addr",
                    "",
                ])
                .arg("--state-file")
                .arg(&state)
                .args(["--log-level", "info"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            // Started once its first state file is there.
            let deadline = started + Duration::from_secs(300);
            while std::fs::metadata(&state).is_err() {
                if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                    println!("{name}: no state file within 300 s; skipped");
                    break;
                }
                sleep(Duration::from_millis(50)).await;
            }
            let Some(pid) = child.id() else { continue };
            let start_secs = started.elapsed().as_secs_f64();
            let (cpu_start, _, _) = usage(pid).unwrap_or_default();
            // Notes the writes (new inodes) from now on, in the background.
            let writes = Arc::new(std::sync::Mutex::new(Vec::new()));
            let counting = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let watcher = {
                let (writes, counting, state) = (writes.clone(), counting.clone(), state.clone());
                tokio::spawn(async move {
                    use std::os::unix::fs::MetadataExt;
                    let mut ino = std::fs::metadata(&state).map(|m| m.ino()).unwrap_or(0);
                    while counting.load(Ordering::Relaxed) {
                        sleep(Duration::from_millis(100)).await;
                        let now = std::fs::metadata(&state).map(|m| m.ino()).unwrap_or(ino);
                        if now != ino {
                            ino = now;
                            writes.lock().unwrap().push(Instant::now());
                        }
                    }
                })
            };
            let window_start = Instant::now() + SCALE_WARMUP;
            let figures = measure(&name, &mut child, accepted, window, SCALE_WARMUP).await;
            counting.store(false, Ordering::Relaxed);
            let _ = watcher.await;
            let times = writes.lock().unwrap().clone();
            let in_window = times.iter().filter(|&&t| t >= window_start).count();
            let bytes = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
            println!(
                "{name}: first state file after {start_secs:.1} s ({cpu_start:.1} CPU s); \
                 {in_window} state-file writes in the {window:?} window after a {SCALE_WARMUP:?} warm-up \
                 (and {} in the warm-up); file {bytes} bytes",
                times.len() - in_window
            );
            // A clean stop writes once more; then it is gone.
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
            let _ = std::fs::remove_file(&state);
            out.extend(figures);
        }
    }
    out
}

/// The state file at scale, in this process: encoding, the atomic write
/// (fsync) and reading back a file of `MAGLEV_BENCH_SCALE_BACKENDS`
/// backends; and a checker's start and snapshot over as many static ones.
async fn state_file_row(dir: &std::path::Path) {
    use maglev_health::persist::{self, SavedBackend, SavedFrontend, SavedState};
    let n = env_or("MAGLEV_BENCH_SCALE_BACKENDS", 160_000) as usize;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut state = SavedState {
        written_unix_ms: 1_800_000_000_000,
        ..SavedState::default()
    };
    for i in 0..n {
        state.backends.insert(
            format!("b{i}"),
            SavedBackend {
                address: maglev_benches::model_address(i),
                state: maglev_core::state::BackendState::Up,
                since_unix_ms: 1_799_999_000_000 + i as i64,
                penalty: 0.0,
            },
        );
    }
    for f in 0..n.div_ceil(16) {
        state.frontends.insert(
            format!("f{f}"),
            SavedFrontend {
                active_pool: Some("primary".to_owned()),
            },
        );
    }
    let path = dir.join("state-file-row.json");
    let (mut encode, mut write, mut read) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        bytes = persist::encode(&state);
        encode.push(t.elapsed());
        let t = Instant::now();
        persist::write_atomic(&path, &bytes).expect("write the state file");
        write.push(t.elapsed());
        let t = Instant::now();
        let back = persist::load(&path, state.written_unix_ms, Duration::from_secs(300));
        read.push(t.elapsed());
        assert!(matches!(back, persist::Loaded::Fresh(_)), "read back");
    }
    println!(
        "state file of {n} backends, {} frontends: {} bytes; encode {:?}, write with fsync {:?}, \
         load {:?} (medians of 5; load {})",
        state.frontends.len(),
        bytes.len(),
        median(encode),
        median(write),
        median(read),
        load_average()
    );
    let _ = std::fs::remove_file(&path);

    let yaml = scale_yaml(n, 0);
    let config = Config::from_yaml(&yaml, "bench").expect("bench config");
    let rss0 = usage(std::process::id()).map_or(0, |(_, rss, _)| rss);
    let t = Instant::now();
    let checker = Checker::start(&config).expect("checker");
    let started = t.elapsed();
    let rss1 = usage(std::process::id()).map_or(0, |(_, rss, _)| rss);
    let mut snaps = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let snap = checker.snapshot();
        snaps.push(t.elapsed());
        assert_eq!(snap.len(), n);
    }
    println!(
        "checker over {n} static backends: start {started:?}, RSS +{:.1} MiB ({} bytes a backend), \
         {} tasks running, snapshot {:?} (median of 5)",
        rss1.saturating_sub(rss0) as f64 / 1024.0,
        rss1.saturating_sub(rss0) * 1024 / n as u64,
        checker.tasks(),
        median(snaps)
    );
    checker.shutdown().await;
}
