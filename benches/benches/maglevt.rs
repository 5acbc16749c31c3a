//! maglevt's probe overhead: how many probes a second the real `maglevt`
//! binary sustains in `--json` mode on its one core (it runs a
//! current-thread runtime), against a loopback HTTP server, beside `wrk`
//! (Debian package `wrk`, one thread) doing the same requests in the same
//! run: a new connection per request (`Connection: close`, maglevt's
//! default) and keepalive.
//!
//! ```text
//! cargo bench -p maglev-benches --bench maglevt
//! MAGLEV_BENCH_SECONDS=20 MAGLEV_BENCH_VIPS=64 cargo bench -p maglev-benches --bench maglevt
//! ```
//!
//! The server (this process, a runtime of one worker thread) is the demo's
//! backend on port 0 of 127.0.0.101 onwards, one address per VIP; the
//! config names each address as a VIP on that port, probed over HTTP.
//! maglevt probes every VIP every 100 µs for the window (tokio's timer
//! wakes at most once a millisecond, so a VIP starts about 1,000 probes a
//! second and the 32 VIPs keep maglevt's core busy); its probes come from its final JSON summary, its CPU time from
//! `/proc`. wrk runs 64 connections on one thread against the first VIP.
//! Rows: probes (requests) per second of wall time, per CPU second of the
//! prober, and failures. Only loopback addresses are used; figures go to
//! docs/performance.md.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use maglev_benches::{load_average, under_cargo_bench, usage};
use maglev_bin::demo::backends::start_on;
use tokio::process::Command;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one prober did in the window.
struct Row {
    name: String,
    requests: f64,
    wall: f64,
    cpu: f64,
    failed: f64,
}

impl Row {
    fn print(&self) {
        println!(
            "{:<28} {:>10.0} req/s  {:>10.0} req/CPU-s  cpu {:>5.2} s  failed {:.0}",
            self.name,
            self.requests / self.wall,
            self.requests / self.cpu.max(1e-9),
            self.cpu,
            self.failed
        );
    }
}

/// Runs `cmd` to its end, sampling its CPU time; (stdout, CPU seconds).
async fn measured(mut cmd: Command) -> (String, f64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the prober starts");
    let pid = child.id().expect("a pid");
    let mut stdout = child.stdout.take().expect("stdout");
    let read = tokio::spawn(async move {
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
            .await
            .ok();
        out
    });
    let mut cpu = 0.0;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = child.wait() => break,
            _ = tick.tick() => {
                if let Some((c, _, _)) = usage(pid) {
                    cpu = c;
                }
            }
        }
    }
    (read.await.unwrap_or_default(), cpu)
}

fn config(dir: &Path, addrs: &[IpAddr], port: u16) -> String {
    let mut y = format!(
        "maglev:\n  healthchecks:\n    http: {{ type: http, port: {port} }}\n  backends:\n"
    );
    for (i, a) in addrs.iter().enumerate() {
        y.push_str(&format!(
            "    b{i}: {{ address: {a}, healthcheck: http }}\n"
        ));
    }
    y.push_str("  frontends:\n");
    for (i, a) in addrs.iter().enumerate() {
        y.push_str(&format!(
            "    v{i}: {{ address: {a}, protocol: tcp, port: {port}, pools: [{{ name: p, backends: {{ b{i}: {{}} }} }}] }}\n"
        ));
    }
    let path = dir.join("maglevt-bench.yaml");
    std::fs::write(&path, y).expect("writing the config");
    path.display().to_string()
}

async fn maglevt(config: &str, seconds: u64, keepalive: bool) -> Row {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/maglevt");
    let mut cmd = Command::new(&exe);
    cmd.args(["--config", config, "--json", "--report-interval", "0"])
        .args([
            "--interval",
            "100us",
            "--timeout",
            "1s",
            "--header",
            "x-served-by",
        ])
        .args(["--duration", &format!("{seconds}s")]);
    if keepalive {
        cmd.arg("--keepalive");
    }
    let (out, cpu) = measured(cmd).await;
    let last: serde_json::Value = out
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from {}: {out}", exe.display()));
    let sum = |k: &str| -> f64 {
        last["vips"]
            .as_array()
            .map(|v| v.iter().filter_map(|x| x[k].as_f64()).sum())
            .unwrap_or(0.0)
    };
    Row {
        name: format!(
            "maglevt --json{}",
            if keepalive { " --keepalive" } else { "" }
        ),
        requests: sum("n"),
        wall: last["elapsed_s"].as_f64().unwrap_or(1.0),
        cpu,
        failed: sum("fail"),
    }
}

async fn wrk(url: &str, seconds: u64, keepalive: bool) -> Option<Row> {
    if std::process::Command::new("wrk")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("wrk not found (apt install wrk): no reference row");
        return None;
    }
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c64", &format!("-d{seconds}s")]);
    if !keepalive {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(url);
    let (out, cpu) = measured(cmd).await;
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let total = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())?;
    let rate = field("Requests/sec:")?;
    let errors = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|e| {
            e.split(',')
                .filter_map(|p| p.split_whitespace().last())
                .filter_map(|n| n.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    Some(Row {
        name: format!("wrk -t1 -c64{}", if keepalive { "" } else { " (close)" }),
        requests: total,
        wall: total / rate,
        cpu,
        failed: errors,
    })
}

fn main() {
    if !under_cargo_bench() {
        return;
    }
    let seconds = env_or("MAGLEV_BENCH_SECONDS", 10);
    let vips = env_or("MAGLEV_BENCH_VIPS", 32) as usize;
    // The binary measured is the release build of this workspace.
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "maglev-bin", "--bin", "maglevt"])
        .status()
        .expect("cargo build");
    assert!(built.success(), "building maglevt");

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let addrs: Vec<IpAddr> = (0..vips)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 101 + i as u8)))
        .collect();
    let backends = server
        .block_on(start_on(&addrs, 0))
        .expect("loopback backends");
    let port = backends[0].addr().port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &addrs, port);
    let url = format!("http://{}:{port}/.well-known/ipng/healthz", addrs[0]);

    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("driver runtime");
    println!(
        "maglevt probe overhead: {vips} VIPs, {seconds} s each, load average {}",
        load_average()
    );
    driver.block_on(async {
        for keepalive in [false, true] {
            maglevt(&config, seconds, keepalive).await.print();
            if let Some(r) = wrk(&url, seconds, keepalive).await {
                r.print();
            }
        }
    });
    println!("load average after: {}", load_average());
    for b in &backends {
        b.stop();
    }
}
