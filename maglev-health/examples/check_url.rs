//! Health-check one URL: an HTTP or HTTPS probe, printed; with a count,
//! that many probes fed to the rise/fall state machine, printing each
//! state change.
//!
//! ```text
//! cargo run -p maglev-health --example check_url -- http://127.0.0.1:8080/healthz
//! cargo run -p maglev-health --example check_url -- https://www.example.com/ 5 500ms
//! ```
//!
//! The check is a config's `type: http` (or `https`) check with its
//! defaults ([`HttpProbe::default`], [`Timing::default`]: status 200-399
//! passes, rise 2, fall 3); [`probe::build`] turns it into a prober that
//! probes any address, and [`Machine`] is the pure rise/fall counter the
//! checker runs per backend (time is an argument). For every option a
//! check has, see the `probe` example.

use std::error::Error;
use std::fmt::Write as _;
use std::net::IpAddr;

use maglev_core::config::{HealthCheck, HttpProbe, Probe, Timing, TlsParams, parse_duration};
use maglev_health::machine::{Checking, Machine};
use maglev_health::probe::{self, ProbeEnv};
use tokio::time::Instant;

const USAGE: &str = "usage: check_url URL [COUNT [INTERVAL]]";

/// Probes the URL `args[0]` `args[1]` times (default once), `args[2]`
/// apart (default 2s), and renders each result and state change.
/// (`main` only prints the result; `tests/examples.rs` calls this.)
pub async fn run(args: &[String]) -> Result<String, Box<dyn Error>> {
    let (url, count, interval) = match args {
        [url] => (url, "1", "2s"),
        [url, count] => (url, count.as_str(), "2s"),
        [url, count, interval] => (url, count.as_str(), interval.as_str()),
        _ => return Err(USAGE.into()),
    };
    let count: u32 = count.parse().map_err(|_| USAGE)?;
    let interval = parse_duration(interval)?;
    let (https, host, port, path) = split_url(url)?;

    // A name is resolved once, sent as `Host` and (https) as the TLS name.
    let target: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => match tokio::net::lookup_host((host, port)).await?.next() {
            Some(addr) => addr.ip(),
            None => return Err(format!("{host}: no address").into()),
        },
    };
    let probe = HttpProbe {
        port,
        path: path.to_owned(),
        host: host.parse::<IpAddr>().is_err().then(|| host.to_owned()),
        tls: https.then(TlsParams::default),
        ..HttpProbe::default()
    };
    let timing = Timing {
        interval,
        fast_interval: interval,
        down_interval: interval,
        timeout: Timing::default().timeout.min(interval),
        ..Timing::default()
    };
    let check = HealthCheck::new(Probe::Http(probe), timing);
    let prober = probe::build(&check, &ProbeEnv::new())?;

    let checking = Checking::from_timing(Some(&check.timing));
    let (mut machine, _) = Machine::new(checking, true, 10, Instant::now());
    let mut ticks = tokio::time::interval(interval);
    let mut out = String::new();
    for n in 1..=count {
        ticks.tick().await;
        let r = prober.probe(target).await;
        writeln!(
            out,
            "probe {n}: {} {} ({:.1} ms)",
            r.code,
            r.detail,
            r.duration.as_secs_f64() * 1000.0
        )?;
        if let Some(t) = machine.record(r.code, &r.detail, Instant::now()) {
            writeln!(out, "state {} -> {}", t.from, t.to)?;
        }
    }
    Ok(out)
}

/// `http[s]://host[:port][/path]` → (https, host, port, path); an IPv6
/// host is written in brackets.
fn split_url(url: &str) -> Result<(bool, &str, u16, &str), String> {
    let bad = || format!("{url:?} is not an http:// or https:// URL");
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, url.strip_prefix("http://").ok_or_else(bad)?)
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None if https => 443,
        None => 80,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((https, host, port, if path.is_empty() { "/" } else { path }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(out) => {
            print!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("check_url: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
