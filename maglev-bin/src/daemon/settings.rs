//! The daemon's process settings: what the flags and `MAGLEV_*` variables
//! of SPEC §8.1 say, as plain values an embedder can also fill in.

use std::path::PathBuf;
use std::time::Duration;

/// How often the VPP connection is checked with `control_ping` (SPEC §5.1).
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long to wait before reconnecting to VPP (SPEC §5.1).
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(5);
/// How often the stats segment is scraped (SPEC §6).
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(5);
/// How long gRPC and `/metrics` connections still open at shutdown may
/// take to finish before they are closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where VPP's sockets are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppSockets {
    /// The binary API socket (`--vpp-api-addr`).
    pub api: PathBuf,
    /// The stats socket (`--vpp-stats-addr`); `None` to read no counters.
    pub stats: Option<PathBuf>,
}

/// The files of a TLS listener, read at start and again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate chain, PEM (`--grpc-tls-cert`).
    pub cert: PathBuf,
    /// Its private key, PEM (`--grpc-tls-key`).
    pub key: PathBuf,
    /// The certificate authorities whose client certificates are accepted,
    /// PEM (`--grpc-client-ca`); `None` asks clients for none. With one,
    /// a client without a valid certificate is refused at the handshake,
    /// and `maglev.access` says which may write.
    pub client_ca: Option<PathBuf>,
}

/// Everything the daemon needs besides its config file's contents.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The YAML config file, read at start and at every reload.
    pub config_path: PathBuf,
    /// The gRPC listen address (`host:port`); `None` for no gRPC server.
    pub grpc_addr: Option<String>,
    /// Whether gRPC server reflection is served.
    pub reflection: bool,
    /// TLS on the gRPC listener; `None` serves plain gRPC.
    pub grpc_tls: Option<TlsFiles>,
    /// Refuse every write RPC (`PERMISSION_DENIED`), whoever asks
    /// (`--grpc-read-only`).
    pub grpc_read_only: bool,
    /// Serve `/metrics` over the gRPC listener's TLS (and client
    /// certificate check) too (`--metrics-tls`); needs [`grpc_tls`](Self::grpc_tls).
    pub metrics_tls: bool,
    /// The `/metrics` listen address; `None` for no metrics server.
    pub metrics_addr: Option<String>,
    /// Serve every family on `/metrics`, the detail ones too
    /// (`--metrics-detail`); without it `/metrics` serves the bounded
    /// default set and `/metrics/detail` the rest.
    pub metrics_detail: bool,
    /// The web dashboard's listen address (`--http-addr`); `None` (the
    /// default) for no dashboard.
    pub http_addr: Option<String>,
    /// The dashboard's admins: an `htpasswd -B` file
    /// (`--http-password-file`); `None` for no logins.
    pub http_password_file: Option<PathBuf>,
    /// Serve the dashboard over the gRPC listener's TLS, client
    /// certificates included (`--http-tls`); needs [`grpc_tls`](Self::grpc_tls).
    pub http_tls: bool,
    /// VPP's sockets; `None` makes the daemon a pure health checker.
    pub vpp: Option<VppSockets>,
    /// The `control_ping` period.
    pub ping_interval: Duration,
    /// The delay before reconnecting to VPP.
    pub reconnect_interval: Duration,
    /// The counter scrape period.
    pub scrape_interval: Duration,
    /// How long open connections get to finish at shutdown: a client that
    /// stopped reading cannot hold the daemon up for longer.
    pub shutdown_grace: Duration,
    /// Where the last backend states are kept across restarts
    /// (`--state-file`); `None` keeps none.
    pub state_file: Option<PathBuf>,
    /// The share of running VIPs a reload may delete without being forced
    /// (`--reload-delete-limit`).
    pub reload_delete_limit: maglev_core::reload::DeleteLimit,
    /// The node's name (`--node-name`), as fleet views (maglevc against
    /// several servers, the dashboard's tabs) and `NodeInfo` show it; the host name
    /// by default ([`default_node_name`]).
    pub node_name: String,
    /// How often the announcer reads its route table back to repair drift
    /// (a route of ours someone removed); [`ANNOUNCE_RELIST_INTERVAL`] by
    /// default.
    pub announce_relist_interval: Duration,
}

/// How often the announcer reads its route table back by default.
pub const ANNOUNCE_RELIST_INTERVAL: Duration = Duration::from_secs(30);

/// `maglevd`'s default `--state-file`.
pub const DEFAULT_STATE_FILE: &str = "/var/lib/vpp-maglev/state.json";

impl Settings {
    /// Settings for `config_path` with SPEC §8.1's defaults.
    pub fn new(config_path: impl Into<PathBuf>) -> Settings {
        Settings {
            config_path: config_path.into(),
            grpc_addr: Some("localhost:9090".to_owned()),
            reflection: true,
            grpc_tls: None,
            grpc_read_only: false,
            metrics_tls: false,
            metrics_addr: Some("localhost:9091".to_owned()),
            metrics_detail: false,
            http_addr: None,
            http_password_file: None,
            http_tls: false,
            vpp: Some(VppSockets {
                api: PathBuf::from("/run/vpp/api.sock"),
                stats: Some(PathBuf::from("/run/vpp/stats.sock")),
            }),
            ping_interval: PING_INTERVAL,
            reconnect_interval: RECONNECT_INTERVAL,
            announce_relist_interval: ANNOUNCE_RELIST_INTERVAL,
            scrape_interval: SCRAPE_INTERVAL,
            shutdown_grace: SHUTDOWN_GRACE,
            // An embedder or a test opts in; the maglevd binary defaults
            // to DEFAULT_STATE_FILE.
            state_file: None,
            reload_delete_limit: maglev_core::reload::DeleteLimit::DEFAULT,
            node_name: default_node_name(),
        }
    }
}

/// The default `--node-name`: the host name (`gethostname`, no DNS), or
/// `localhost` if it cannot be read or is empty.
pub fn default_node_name() -> String {
    dns_lookup::get_hostname()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
