//! `maglevt`, the out-of-band VIP prober: flags, a one-core runtime, the
//! signals that end it, then [`maglev_bin::maglevt::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use maglev_bin::maglevt::{self, Options};
use maglev_core::config::parse_duration;
use tokio_util::sync::CancellationToken;

/// Probe every VIP of maglev config files as clients do.
///
/// maglevt probes every VIP of the config files from outside and shows
/// latency, failures and which backend answered, in a full-screen terminal
/// UI (`q` quits) or, with --json, one summary object per line. It talks no
/// gRPC and needs no maglevd. Exit status: 0 ok, 1 runtime error, 2 bad
/// flags or config.
#[derive(Debug, Parser)]
#[command(name = "maglevt", version = maglev_bin::VERSION_LINE)]
struct Args {
    /// A maglev config file; repeat it or give a comma-separated list
    /// (frontends are merged by address, protocol and port).
    #[arg(
        long,
        value_name = "FILE",
        value_delimiter = ',',
        default_value = "/etc/vpp-maglev/maglev.yaml"
    )]
    config: Vec<PathBuf>,

    /// Between two probes of one VIP (each ±10 % jitter).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = duration)]
    interval: Duration,

    /// How long one probe may take before it counts as a timeout.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    timeout: Duration,

    /// The Host header (and the TLS server name) of HTTP(S) probes;
    /// default: the VIP address.
    #[arg(long)]
    host: Option<String>,

    /// The path HTTP(S) probes GET.
    #[arg(long, default_value = "/.well-known/ipng/healthz")]
    uri: String,

    /// The response header whose values are tallied (which backend
    /// answered), e.g. x-served-by.
    #[arg(long, value_name = "NAME")]
    header: Option<String>,

    /// Accept any TLS certificate. `--insecure` alone means true.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    insecure: bool,

    /// Reuse connections (flows then stick to their backend); by default
    /// every probe is a new connection, so Maglev hashes it afresh.
    #[arg(long)]
    keepalive: bool,

    /// Only VIPs whose frontend name or address matches this regular
    /// expression.
    #[arg(long, value_name = "REGEX")]
    filter: Option<String>,

    /// No screen: one JSON summary object per line, every
    /// --report-interval and at exit ("final": true).
    #[arg(long)]
    json: bool,

    /// How often --json writes a summary; 0 for only at exit.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    report_interval: Duration,

    /// Stop each VIP after this many probes (then exit).
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Stop after this long (then exit).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    duration: Option<Duration>,

    #[command(flatten)]
    generate: maglev_bin::manpage::GenerateFlags,
}

/// The sections of maglevt(1) after the options.
fn man_extra() -> String {
    use maglev_bin::manpage::entry;
    let mut s = String::from(".SH PROBES\n");
    s.push_str(
        "Port 80 gets an HTTP GET of \\-\\-uri, port 443 an HTTPS GET; another port HTTP(S) when \
         every health\\-checked backend of the frontend is checked over it on that port, else a \
         TCP connect. An all\\-port VIP is probed on the one port its backends' checks share. \
         UDP VIPs are not probed. Every probe is a new connection unless \\-\\-keepalive.\n",
    );
    s.push_str(".SH KEYS\n");
    s.push_str(&entry("q, Esc, Ctrl-C", "Quit and restore the terminal."));
    s.push_str(".SH EXIT STATUS\n");
    s.push_str(&entry("0", "Quit, or --count or --duration done."));
    s.push_str(&entry(
        "1",
        "A runtime error (the terminal could not be used).",
    ));
    s.push_str(&entry(
        "2",
        "Bad flags, or a config file that does not load (each problem named with its file).",
    ));
    s.push_str(maglev_bin::cli::generate::SEE_ALSO);
    s
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Some(text) = a
        .generate
        .output(Args::command(), "maglevt", "1", man_extra)
    {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    let options = Options {
        configs: a.config,
        interval: a.interval,
        timeout: a.timeout,
        host: a.host,
        uri: a.uri,
        header: a.header,
        insecure: a.insecure,
        keepalive: a.keepalive,
        filter: a.filter,
        json: a.json,
        report_interval: a.report_interval,
        count: a.count,
        duration: a.duration,
    };
    // One core: what maglevt costs is bounded by the probing it is asked for.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("maglevt: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let stop = CancellationToken::new();
        if let Err(e) = watch_signals(stop.clone()) {
            return Err(maglevt::Refusal {
                lines: vec![format!("maglevt: signals: {e}")],
                code: 1,
            });
        }
        maglevt::run(options, stop).await
    });
    // A name lookup still running (a resolver that never answered) does
    // not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(r) => {
            for line in &r.lines {
                eprintln!("maglevt: {line}");
            }
            ExitCode::from(r.code)
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP end the run as `q` does (with --json, after
/// the final summary).
fn watch_signals(stop: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        stop.cancel();
    });
    Ok(())
}
