//! Shared fixtures for maglev's criterion benchmarks (see `benches/`).
//!
//! The benchmarks themselves live in `benches/benches/*.rs`; run them with
//! `cargo bench -p maglev-benches`. Their figures are written down in
//! `docs/performance.md` together with the command that produced them.
//!
//! [`soak`] is the chaos soak (`--bin soak`, and `tests/soak.rs`): the
//! daemon under random faults, with invariants checked as it runs; its
//! recorded run is in `docs/reliability.md`.

pub mod soak;

use std::fmt::Write;

use maglev_core::config::Config;

/// The YAML of a config with `frontends` VIPs (TCP/80 on 192.0.x.y, y in 1..=250), each
/// with `backends` backends of its own split over two pools, all probed by
/// one HTTP check.
pub fn synthetic_yaml(frontends: usize, backends: usize) -> String {
    let mut y = String::from(
        "maglev:\n  healthchecks:\n    web: { type: http, interval: 1s, timeout: 500ms }\n  backends:\n",
    );
    for f in 0..frontends {
        for b in 0..backends {
            let n = f * backends + b;
            let _ = writeln!(
                y,
                "    f{f}b{b}: {{ address: 10.{}.{}.{}, healthcheck: web }}",
                n >> 16,
                (n >> 8) & 0xff,
                n & 0xff
            );
        }
    }
    push_frontends(&mut y, frontends, backends);
    y
}

/// The YAML of a config for the daemon benches: `frontends` VIPs as in
/// [`synthetic_yaml`] (two pools of `backends / 2`), a `vpp:` section that
/// sets the LB source addresses and turns warm-up off (startup delays 0),
/// and backends probed by the health check `web` given as a YAML flow
/// mapping (e.g. `{ type: http, interval: 1s }`), or static backends (no
/// health check: always up) when `healthcheck` is `None`.
///
/// Backend `n` (counting frontend by frontend) gets `address(n)`.
pub fn daemon_yaml(
    frontends: usize,
    backends: usize,
    healthcheck: Option<&str>,
    address: impl Fn(usize) -> std::net::IpAddr,
) -> String {
    let mut y = String::from(
        "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.254\n      \
         ipv6-src-address: 2001:db8::fe\n      startup-min-delay: 0s\n      startup-max-delay: 0s\n",
    );
    if let Some(check) = healthcheck {
        let _ = writeln!(y, "  healthchecks:\n    web: {check}");
    }
    y.push_str("  backends:\n");
    for f in 0..frontends {
        for b in 0..backends {
            let n = f * backends + b;
            let check = if healthcheck.is_some() {
                ", healthcheck: web"
            } else {
                ""
            };
            let _ = writeln!(y, "    f{f}b{b}: {{ address: {}{check} }}", address(n));
        }
    }
    push_frontends(&mut y, frontends, backends);
    y
}

/// The address of backend `n` in [`synthetic_yaml`]: 10.x.y.z, which only
/// ever reaches the simulator's model (nothing is sent to it).
pub fn model_address(n: usize) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8).into()
}

fn push_frontends(y: &mut String, frontends: usize, backends: usize) {
    y.push_str("  frontends:\n");
    for f in 0..frontends {
        let _ = writeln!(
            y,
            "    f{f}:\n      address: 192.0.{}.{}\n      protocol: tcp\n      port: 80\n      pools:",
            f / 250,
            f % 250 + 1
        );
        for (pool, range) in [
            ("primary", 0..backends / 2),
            ("fallback", backends / 2..backends),
        ] {
            let _ = write!(y, "        - name: {pool}\n          backends: {{");
            for b in range {
                let _ = write!(y, " f{f}b{b}: {{}},");
            }
            y.push_str(" }\n");
        }
    }
}

/// Installs the logging `maglevd` runs with (JSON lines at INFO, plus the
/// [`LogLayer`](maglev_bin::events::LogLayer) that feeds `WatchEvents`),
/// writing the lines to nowhere: the daemon benches pay for formatting
/// every record as the daemon does, without flooding the bench's output.
pub fn daemon_logging(parts: &maglev_bin::daemon::Parts) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let output = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(std::io::sink)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    // A second install (a second bench in one process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(LineCount)
        .with(output)
        .with(maglev_bin::events::LogLayer::new(
            parts.hub.clone(),
            parts.clock.clone(),
        ))
        .try_init();
}

/// Log records of the daemon (targets `maglev_bin::*`, not the
/// simulator's) at INFO or above that [`daemon_logging`] wrote: lines of
/// `maglevd`'s log.
pub static LOG_LINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// The WARN or ERROR ones among [`LOG_LINES`].
pub static LOG_WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// [`LOG_LINES`] by target (module), for the breakdown of a count.
pub static LOG_TARGETS: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Counts into [`LOG_LINES`], [`LOG_WARNINGS`] and [`LOG_TARGETS`].
struct LineCount;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LineCount {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        use std::sync::atomic::Ordering::Relaxed;
        let meta = event.metadata();
        if *meta.level() > tracing::Level::INFO || !meta.target().starts_with("maglev_bin") {
            return;
        }
        LOG_LINES.fetch_add(1, Relaxed);
        if *meta.level() <= tracing::Level::WARN {
            LOG_WARNINGS.fetch_add(1, Relaxed);
        }
        let mut targets = LOG_TARGETS.lock().unwrap_or_else(|e| e.into_inner());
        *targets.entry(meta.target()).or_default() += 1;
    }
}

/// The machine's load averages (`/proc/loadavg`: 1, 5 and 15 minutes),
/// printed beside every figure (the bench machine is shared).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Whether this bench binary was started by `cargo bench` (which passes
/// `--bench`); `cargo test --all-targets` runs it without, and then the
/// long runs are skipped.
pub fn under_cargo_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The config of [`synthetic_yaml`].
pub fn synthetic_config(frontends: usize, backends: usize) -> Config {
    Config::from_yaml(&synthetic_yaml(frontends, backends), "synthetic")
        .unwrap_or_else(|e| panic!("synthetic config is invalid: {e}"))
}

/// CPU seconds (user + system), resident and peak resident memory (KiB)
/// of a process, from `/proc`.
pub fn usage(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((ticks / clock_ticks(), kb("VmRSS:"), kb("VmHWM:")))
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_config_has_the_asked_size() {
        let c = synthetic_config(300, 16);
        assert_eq!(c.frontends().len(), 300);
        assert_eq!(c.backends().len(), 4800);
        assert_eq!(c.frontend("f299").unwrap().pools[1].backends.len(), 8);
    }

    #[test]
    fn daemon_yaml_is_valid_with_and_without_checks() {
        let c = Config::from_yaml(&daemon_yaml(3, 4, None, model_address), "t").unwrap();
        assert_eq!(c.backends().len(), 12);
        assert!(c.backend("f2b3").unwrap().healthcheck.is_none());
        assert_eq!(c.backend("f2b3").unwrap().address, model_address(11));
        let check =
            Some("{ type: http, port: 8080, interval: 5ms, timeout: 5ms, rise: 1, fall: 1 }");
        let c = Config::from_yaml(&daemon_yaml(3, 4, check, model_address), "t").unwrap();
        assert_eq!(
            c.backend("f0b0").unwrap().healthcheck.as_deref(),
            Some("web")
        );
        assert!(c.vpp().is_some());
    }
}
