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
    /// Other maglevds the dashboard shows a tab for (`--peer NAME=ADDR`),
    /// in the order given.
    pub peers: Vec<PeerAddr>,
    /// The TLS client identity toward the peers (`--peer-ca`,
    /// `--peer-cert`, `--peer-key`); `None`: plaintext gRPC.
    pub peer_tls: Option<crate::transport::client::ClientTls>,
}

/// A peer maglevd of the dashboard: its tab's name and its gRPC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The tab's name (letters, digits, `.`, `-`, `_`).
    pub name: String,
    /// Its gRPC address, `host:port`.
    pub addr: String,
}

impl std::str::FromStr for PeerAddr {
    type Err = String;

    /// `NAME=ADDR`, as `--peer` takes it.
    fn from_str(s: &str) -> Result<PeerAddr, String> {
        let Some((name, addr)) = s.split_once('=') else {
            return Err(format!(
                "{s:?} is not NAME=ADDR (e.g. router2=10.0.0.2:9090)"
            ));
        };
        let (name, addr) = (name.trim(), addr.trim());
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(format!(
                "the name {name:?} is not 1 to 64 letters, digits, '.', '-' or '_'"
            ));
        }
        let valid_addr = addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid_addr {
            return Err(format!("the address {addr:?} of {name:?} is not host:port"));
        }
        Ok(PeerAddr {
            name: name.to_owned(),
            addr: addr.to_owned(),
        })
    }
}

/// Checks `--peer`s as a whole: names unique, and none is `node` (this
/// daemon's own name, the page's first tab); the error names the flag.
pub fn check_peers(peers: &[PeerAddr], node: Option<&str>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in peers {
        if !seen.insert(p.name.as_str()) {
            return Err(format!("--peer: the name {:?} is given twice", p.name));
        }
        if node == Some(p.name.as_str()) {
            return Err(format!(
                "--peer: {:?} is this node's own name (--node-name)",
                p.name
            ));
        }
    }
    if peers.len() > PEERS_MAX {
        return Err(format!("--peer: more than {PEERS_MAX} peers"));
    }
    Ok(())
}

/// How many `--peer`s maglevd takes.
pub const PEERS_MAX: usize = 64;

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
            peers: Vec::new(),
            peer_tls: None,
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
