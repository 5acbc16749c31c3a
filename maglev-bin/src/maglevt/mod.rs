//! `maglevt`: the VIPs as clients see them. It reads the frontends of one
//! or more maglev config files, probes every VIP from outside (HTTP or
//! HTTPS `GET`s, or TCP connects; a new connection per probe unless
//! `--keepalive`, so Maglev hashes each afresh), and shows per VIP the
//! latency, the failures and which backend answered: in a full-screen
//! terminal UI, or as JSON lines for scripts. It talks no gRPC and needs no
//! `maglevd`: it is how an operator watches a restart, a failover or a
//! drain from the client's side. Traffic goes only to the VIP addresses of
//! the config files.
//!
//! - [`targets`]: which VIPs, probed how.
//! - [`probe`]: one probe.
//! - [`session`]: the probe loops and their numbers.
//! - [`stats`]: per-VIP counts, rolling percentiles, tally, anomalies.
//! - [`report`]: the `--json` output.
//! - [`tui`]: the screen.
//! - [`fqdn`]: the host's name for the header.

pub mod fqdn;
pub mod probe;
pub mod report;
pub mod session;
pub mod stats;
pub mod targets;
pub mod tui;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;
use hyper::header::HeaderName;
use regex::Regex;
use tokio_util::sync::CancellationToken;

pub use probe::ProbeSettings;
pub use session::{Schedule, Session, Snapshot};
pub use targets::{Targets, VipProbe};

/// Everything the flags say.
#[derive(Debug, Clone)]
pub struct Options {
    /// The config files whose frontends are probed.
    pub configs: Vec<PathBuf>,
    /// Between two probes of one VIP (±10 % jitter).
    pub interval: Duration,
    /// Each probe's deadline.
    pub timeout: Duration,
    /// The `Host` header and TLS server name (default: the VIP address).
    pub host: Option<String>,
    /// The path (and query) HTTP probes get.
    pub uri: String,
    /// The response header whose values are tallied.
    pub header: Option<String>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// Reuse connections instead of one per probe.
    pub keepalive: bool,
    /// Only VIPs with a name or address matching this.
    pub filter: Option<String>,
    /// JSON lines instead of the screen.
    pub json: bool,
    /// How often `--json` writes a line (zero: only at exit).
    pub report_interval: Duration,
    /// Stop each VIP after this many probes.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// A refused start: what is wrong, one problem per line, and the exit code
/// (2 for bad flags or config, 1 otherwise).
#[derive(Debug)]
pub struct Refusal {
    /// The problems.
    pub lines: Vec<String>,
    /// The process exit code.
    pub code: u8,
}

impl Refusal {
    fn usage(line: impl Into<String>) -> Refusal {
        Refusal {
            lines: vec![line.into()],
            code: 2,
        }
    }
}

/// What [`prepare`] makes of the options.
#[derive(Debug)]
pub struct Prepared {
    /// The VIPs.
    pub targets: Targets,
    /// How each is probed.
    pub settings: ProbeSettings,
    /// How often.
    pub schedule: Schedule,
}

/// Checks the options and reads the config files.
pub fn prepare(o: &Options) -> Result<Prepared, Refusal> {
    if o.interval.is_zero() {
        return Err(Refusal::usage("--interval must be above zero"));
    }
    if o.timeout.is_zero() {
        return Err(Refusal::usage("--timeout must be above zero"));
    }
    let uri: Uri = o
        .uri
        .parse()
        .ok()
        .filter(|u: &Uri| u.scheme().is_none() && u.path().starts_with('/'))
        .ok_or_else(|| {
            Refusal::usage(format!(
                "--uri {:?} is not a path starting with / (a query may follow)",
                o.uri
            ))
        })?;
    let header = o
        .header
        .as_deref()
        .map(|h| {
            HeaderName::try_from(h)
                .map_err(|_| Refusal::usage(format!("--header {h:?} is not an HTTP header name")))
        })
        .transpose()?;
    let filter = o
        .filter
        .as_deref()
        .map(|f| Regex::new(f).map_err(|e| Refusal::usage(format!("--filter {f:?}: {e}"))))
        .transpose()?;
    if o.configs.is_empty() {
        return Err(Refusal::usage("no --config file"));
    }
    let configs = targets::load(&o.configs).map_err(|lines| Refusal { lines, code: 2 })?;
    let targets = targets::select(&configs, filter.as_ref());
    if targets.probed.is_empty() {
        let mut lines = vec![match &o.filter {
            Some(f) => format!("no VIP to probe: --filter {f:?} matches no probed frontend"),
            None => "no VIP to probe in the config files".to_owned(),
        }];
        lines.extend(targets.skipped.iter().map(|s| {
            format!(
                "  not probed: {} ({} {}/{}): {}",
                s.name, s.address, s.protocol, s.port, s.reason
            )
        }));
        return Err(Refusal { lines, code: 2 });
    }
    Ok(Prepared {
        targets,
        settings: ProbeSettings {
            uri,
            host: o.host.clone(),
            header,
            timeout: o.timeout,
            keepalive: o.keepalive,
            insecure: o.insecure,
        },
        schedule: Schedule {
            interval: o.interval,
            count: o.count,
        },
    })
}

/// The settings line of the screen's header.
fn describe(o: &Options) -> String {
    let mut s = format!(
        "every {:?} ±10%, timeout {:?}, {}",
        o.interval,
        o.timeout,
        if o.keepalive {
            "keepalive"
        } else {
            "new connection each"
        }
    );
    if let Some(h) = &o.header {
        s.push_str(&format!(", tally {h}"));
    }
    s
}

/// Runs maglevt: the screen (or with `json`, the lines on stdout) until it
/// is quit, `stop` is cancelled, the count is done or the duration is up.
pub async fn run(o: Options, stop: CancellationToken) -> Result<(), Refusal> {
    let prepared = prepare(&o)?;
    if !o.json && !std::io::stdout().is_terminal() {
        return Err(Refusal::usage(
            "stdout is not a terminal: use --json for a summary per interval",
        ));
    }
    let host = fqdn::fqdn().await;
    let session = Session::start(prepared.targets, &prepared.settings, prepared.schedule)
        .map_err(Refusal::usage)?;
    let runtime_error = |e: std::io::Error| Refusal {
        lines: vec![e.to_string()],
        code: 1,
    };
    if o.json {
        let mut out = std::io::stdout();
        report::run(
            &session,
            &host,
            o.report_interval,
            o.duration,
            &stop,
            &mut out,
        )
        .await
        .map_err(runtime_error)
    } else {
        let stop_after = stop.child_token();
        if let Some(d) = o.duration {
            let t = stop_after.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                t.cancel();
            });
        }
        tui::run(&session, &host, &describe(&o), &stop_after)
            .await
            .map_err(runtime_error)
    }
}
