//! `maglevd`, the maglev daemon: flags and environment (SPEC §8.1), logging,
//! then [`maglev_bin::daemon::run`] (or the demo, or `--check`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, Parser};
use maglev_bin::daemon::runtime::RuntimeThread;
use maglev_bin::daemon::{Parts, Settings, TlsFiles, VppSockets};
use maglev_bin::demo::DemoOptions;
use maglev_bin::logging::{LogFormat, init_logging};
use maglev_core::config::DEFAULT_CONFIG_PATH;
use tokio_util::sync::CancellationToken;

/// Health-check backends and program VPP's Maglev load balancer.
///
/// maglevd probes every backend of its config, decides each one's weight
/// (priority pools that fail over, slow start, flap damping), programs
/// VPP's lb plugin over its binary API with a deterministic diff (after a
/// warm-up that keeps a restart invisible), reads VPP's per-VIP counters,
/// and serves it all over gRPC, Prometheus /metrics and a web dashboard.
#[derive(Debug, Parser)]
#[command(name = "maglevd", version = maglev_bin::VERSION_LINE)]
struct Args {
    /// The YAML config file.
    #[arg(long, env = "MAGLEV_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    /// Validate the config file and exit: 0 valid, 1 read or parse error,
    /// 2 semantic error. A running maglevd at --grpc-addr is asked what it
    /// runs, with a warning per frontend a reload would recreate.
    #[arg(long)]
    check: bool,

    /// Run against a built-in VPP simulator and demo backends on loopback,
    /// with docs/examples/demo.yaml; no VPP or root needed. `--config` and
    /// the VPP socket flags are ignored.
    #[arg(long)]
    demo: bool,

    /// With --demo: the port every demo backend listens on (on 127.0.0.x).
    #[arg(long, default_value_t = maglev_bin::demo::DEFAULT_PORT)]
    demo_port: u16,

    /// gRPC listen address (host:port or :port); empty turns gRPC off.
    #[arg(long, env = "MAGLEV_GRPC_ADDR", default_value = "localhost:9090")]
    grpc_addr: String,

    /// Serve gRPC over TLS with this certificate chain (PEM); needs
    /// --grpc-tls-key. Re-read on SIGHUP.
    #[arg(long, env = "MAGLEV_GRPC_TLS_CERT", requires = "grpc_tls_key")]
    grpc_tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --grpc-tls-cert.
    #[arg(long, env = "MAGLEV_GRPC_TLS_KEY", requires = "grpc_tls_cert")]
    grpc_tls_key: Option<PathBuf>,

    /// Require a client certificate signed by these CAs (PEM): clients
    /// without one are refused at the handshake, and maglev.access.admins
    /// says whose may write (every other only reads). Needs
    /// --grpc-tls-cert.
    #[arg(long, env = "MAGLEV_GRPC_CLIENT_CA", requires = "grpc_tls_cert")]
    grpc_client_ca: Option<PathBuf>,

    /// Refuse every write RPC (pause, resume, enable, disable, weights,
    /// sync, reload) with PERMISSION_DENIED, whoever asks.
    #[arg(long, env = "MAGLEV_GRPC_READ_ONLY", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    grpc_read_only: bool,

    /// Serve /metrics over the gRPC listener's TLS too (and require the
    /// same client certificates).
    #[arg(long, env = "MAGLEV_METRICS_TLS", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", requires = "grpc_tls_cert")]
    metrics_tls: bool,

    /// The web dashboard's listen address (host:port or :port); empty
    /// turns it off [default: off; localhost:8080 with --demo].
    #[arg(long, env = "MAGLEV_HTTP_ADDR")]
    http_addr: Option<String>,

    /// The dashboard's admins: an htpasswd file of bcrypt hashes
    /// (`htpasswd -B`); without it nobody may act from the page (with
    /// --demo, a demo admin is made).
    #[arg(long, env = "MAGLEV_HTTP_PASSWORD_FILE")]
    http_password_file: Option<PathBuf>,

    /// Serve the dashboard over the gRPC listener's TLS (client
    /// certificates in maglev.access.admins may act).
    #[arg(long, env = "MAGLEV_HTTP_TLS", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", requires = "grpc_tls_cert")]
    http_tls: bool,

    /// Another maglevd the dashboard shows a tab for, NAME=ADDR (its gRPC
    /// host:port); repeat it, or comma-separate the list in the
    /// environment. The page reads peers over gRPC and forwards an admin's
    /// action to the peer, whose own access rules decide.
    #[arg(long = "peer", env = "MAGLEV_PEER", value_name = "NAME=ADDR",
          value_delimiter = ',', action = ArgAction::Append)]
    peers: Vec<maglev_bin::daemon::settings::PeerAddr>,

    /// Toward the peers: speak TLS and trust these CAs (PEM) for their
    /// certificates. --peer-cert alone trusts the system's authorities.
    #[arg(long, env = "MAGLEV_PEER_CA")]
    peer_ca: Option<PathBuf>,

    /// Toward the peers: speak TLS and present this client certificate
    /// (PEM); the peers' maglev.access.admins decides whether its actions
    /// are allowed. Needs --peer-key.
    #[arg(long, env = "MAGLEV_PEER_CERT", requires = "peer_key")]
    peer_cert: Option<PathBuf>,

    /// The private key (PEM) of --peer-cert.
    #[arg(long, env = "MAGLEV_PEER_KEY", requires = "peer_cert")]
    peer_key: Option<PathBuf>,

    /// Prometheus /metrics listen address; empty turns it off.
    #[arg(long, env = "MAGLEV_METRICS_ADDR", default_value = "localhost:9091")]
    metrics_addr: String,

    /// Serve every metric family on /metrics, the per-backend detail too
    /// (probe counters and histograms, transitions, pool members'
    /// weights); without it /metrics serves the bounded default set and
    /// /metrics/detail the rest.
    #[arg(long, env = "MAGLEV_METRICS_DETAIL", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    metrics_detail: bool,

    /// VPP binary API socket; empty turns VPP integration off (a pure
    /// health checker).
    #[arg(long, env = "MAGLEV_VPP_API_ADDR", default_value = "/run/vpp/api.sock")]
    vpp_api_addr: String,

    /// Where the last backend states are kept, so a quick restart is
    /// invisible; empty keeps none (the default with --demo).
    #[arg(long, env = "MAGLEV_STATE_FILE")]
    state_file: Option<String>,

    /// A reload that deletes more than this share of the running VIPs, in
    /// percent, is refused unless forced (`maglevc config reload force`):
    /// a file that lost its frontends must not black-hole every VIP.
    #[arg(long, env = "MAGLEV_RELOAD_DELETE_LIMIT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    reload_delete_limit: u8,

    /// VPP stats socket; empty reads no counters.
    #[arg(
        long,
        env = "MAGLEV_VPP_STATS_ADDR",
        default_value = "/run/vpp/stats.sock"
    )]
    vpp_stats_addr: String,

    /// The least level logged: trace, debug, info, warn or error (or a
    /// tracing filter such as `info,maglev_vpp=debug`) [default: info; with
    /// --demo, the simulator's own request log is at warn].
    #[arg(long, env = "MAGLEV_LOG_LEVEL")]
    log_level: Option<String>,

    /// Log format: json (one object per line) or text [default: json; text
    /// with --demo].
    #[arg(long, env = "MAGLEV_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,

    /// This node's name, as fleet views (maglevc against several servers,
    /// the dashboard's tabs) and `maglevc show node` show it [default: the
    /// host name].
    #[arg(long, env = "MAGLEV_NODE_NAME")]
    node_name: Option<String>,

    /// Serve gRPC server reflection (`--reflection=false` turns it off).
    #[arg(long, env = "MAGLEV_REFLECTION", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    reflection: bool,

    #[command(flatten)]
    generate: maglev_bin::manpage::GenerateFlags,
}

/// The sections of maglevd(8) after the options.
fn man_extra() -> String {
    use maglev_bin::manpage::entry;
    let mut s = String::from(".SH SIGNALS\n");
    s.push_str(&entry(
        "SIGHUP",
        "Reload the config file (a file that does not validate is refused and the running \
         config stays) and the TLS certificates and keys.",
    ));
    s.push_str(&entry(
        "SIGTERM, SIGINT",
        "Stop: the listeners close, the state file is written, the VPP session is closed. \
         VPP keeps what it holds, so traffic flows on; the next start's warm-up takes over \
         without a change.",
    ));
    s.push_str(".SH EXIT STATUS\n");
    s.push_str(&entry(
        "0",
        "Stopped when asked; with --check, the file is valid.",
    ));
    s.push_str(&entry(
        "1",
        "Could not start or run; with --check, the file cannot be read or parsed.",
    ));
    s.push_str(&entry(
        "2",
        "Bad flags or a config file that breaks a rule (with --check, a semantic error).",
    ));
    s.push_str(".SH FILES\n");
    s.push_str(&entry(DEFAULT_CONFIG_PATH, "The config file (--config)."));
    s.push_str(&entry(
        maglev_bin::daemon::settings::DEFAULT_STATE_FILE,
        "Backend states kept across restarts (--state-file).",
    ));
    s.push_str(&entry(
        "/run/vpp/api.sock, /run/vpp/stats.sock",
        "VPP's binary API and stats sockets (--vpp-api-addr, --vpp-stats-addr).",
    ));
    s.push_str(&entry(
        "/etc/default/vpp-maglev",
        "Flags and environment of the packaged systemd unit, vpp-maglevd.service.",
    ));
    s.push_str(maglev_bin::cli::generate::SEE_ALSO);
    s
}

/// The demo's default log filter: the daemon at info, without a line per
/// request the simulated VPP answers.
const DEMO_LOG_LEVEL: &str = "info,maglev_vpp::sim=warn";

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(text) = args
        .generate
        .output(Args::command(), "maglevd", "8", man_extra)
    {
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    if args.check {
        return maglev_bin::check::run(&args.config, non_empty(&args.grpc_addr).as_deref());
    }
    if let Err(e) =
        maglev_bin::daemon::settings::check_peers(&args.peers, args.node_name.as_deref())
    {
        eprintln!("maglevd: {e}");
        return ExitCode::from(2);
    }
    let mut parts = Parts::default();
    let log_format = args.log_format.unwrap_or(if args.demo {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let log_level = args.log_level.clone().unwrap_or_else(|| {
        if args.demo {
            DEMO_LOG_LEVEL.to_owned()
        } else {
            "info".to_owned()
        }
    });
    if let Err(e) = init_logging(&log_level, log_format, &parts) {
        eprintln!("maglevd: {e}");
        return ExitCode::from(2);
    }
    // Descriptors: the soft limit up to the hard one (as Go's runtime does
    // for the original); the listeners' caps leave a reserve of it for
    // probes and VPP (maglev_bin::transport::budget).
    if let Err(e) = maglev_bin::transport::budget::raise_nofile() {
        tracing::warn!(error = %e, "cannot read the descriptor limit (RLIMIT_NOFILE)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("maglevd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("maglevd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Probes, and the servers, run on current-thread runtimes of their own
    // (maglev_bin::daemon::runtime): the reconciler keeps the workers.
    let (checker, server) = match (
        RuntimeThread::start("maglev-health"),
        RuntimeThread::start("maglev-serve"),
    ) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("maglevd: cannot start a thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    parts.checker_runtime = Some(checker.handle());
    parts.serve_runtime = Some(server.handle());
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        if args.demo {
            let options = DemoOptions {
                port: args.demo_port,
                ..DemoOptions::default()
            };
            maglev_bin::demo::run(settings(&args), parts, options, shutdown, |demo| {
                eprintln!("{}", demo.welcome());
            })
            .await
        } else {
            maglev_bin::daemon::run_process(settings(&args), parts, shutdown).await
        }
    });
    // Work a shutdown abandoned (a blocking write, say) must not hold
    // the exit: the runtime waits for it no longer than this.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(server);
    drop(checker);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "maglevd failed");
            eprintln!("maglevd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn settings(args: &Args) -> Settings {
    let mut s = Settings::new(&args.config);
    s.grpc_addr = non_empty(&args.grpc_addr);
    s.metrics_addr = non_empty(&args.metrics_addr);
    s.reflection = args.reflection;
    s.grpc_tls = match (&args.grpc_tls_cert, &args.grpc_tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.grpc_client_ca.clone(),
        }),
        _ => None,
    };
    s.grpc_read_only = args.grpc_read_only;
    s.metrics_tls = args.metrics_tls;
    s.metrics_detail = args.metrics_detail;
    s.http_addr = match &args.http_addr {
        Some(addr) => non_empty(addr),
        None if args.demo => Some("localhost:8080".to_owned()),
        None => None,
    };
    s.http_password_file = args.http_password_file.clone();
    s.http_tls = args.http_tls;
    s.vpp = non_empty(&args.vpp_api_addr).map(|api| VppSockets {
        api: PathBuf::from(api),
        stats: non_empty(&args.vpp_stats_addr).map(PathBuf::from),
    });
    s.peers = args.peers.clone();
    s.peer_tls = (args.peer_ca.is_some() || args.peer_cert.is_some()).then(|| {
        maglev_bin::transport::client::ClientTls {
            ca: args.peer_ca.clone(),
            cert: args.peer_cert.clone(),
            key: args.peer_key.clone(),
        }
    });
    s.reload_delete_limit = maglev_core::reload::DeleteLimit(args.reload_delete_limit);
    if let Some(name) = args.node_name.as_deref().and_then(non_empty) {
        s.node_name = name;
    }
    s.state_file = match &args.state_file {
        Some(path) => non_empty(path).map(PathBuf::from),
        None if args.demo => None,
        None => Some(PathBuf::from(
            maglev_bin::daemon::settings::DEFAULT_STATE_FILE,
        )),
    };
    s
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}
