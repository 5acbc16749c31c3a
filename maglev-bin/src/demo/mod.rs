//! `maglevd --demo`: the real daemon against a built-in VPP simulator (API
//! and stats, in-process) and loopback HTTP backends with a scripted life.
//!
//! [`start`] brings up, in order: the HTTP backends of
//! `docs/examples/demo.yaml` ([`DEMO_YAML`], embedded) on their 127.0.0.x
//! addresses, all on one port ([`DEFAULT_PORT`] unless asked otherwise);
//! the simulated VPP with its sockets in a fresh temporary directory; the
//! [`Forwarder`] that plays VPP's dataplane on the VIPs (loopback
//! addresses, so a client on this host reaches them as through VPP); the
//! config written there (with the port in use), so a SIGHUP reloads an
//! edited copy; the daemon, with the caller's settings pointed at that file
//! and that VPP, and its announcements kept in a [`MemoryTable`] (unless
//! the caller gives a table); and the [`Script`] that makes backends fail
//! now and then.
//! [`Demo::shutdown`] stops them all. [`run`] is the same for a process:
//! start, signals (SIGHUP reload, SIGTERM/SIGINT stop), shut down.
//!
//! Everything is on loopback and no root is needed (no ICMP, no network
//! namespace): the backends on 127.0.0.x, the VIPs on 127.0.1.x and ::1.
//! The config announces the VIPs (`maglev.announce`), but the routes are
//! kept in memory: the demo never touches the host's routes, root or not.
//! The simulator also trickles packets to every VIP, so the counters move
//! without clients.
//!
//! - [`sim_vpp`]: the simulated VPP (also used by the tests and benches).
//! - [`forwarder`]: the VIPs' dataplane, over the simulator's tables.
//! - [`backends`]: switchable loopback HTTP backends.
//! - [`script`]: the schedule of failures and the task that plays it.

pub mod backends;
pub mod forwarder;
pub mod script;
pub mod sim_vpp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use maglev_core::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::announce::table::{MemoryTable, RouteTable};
use crate::daemon::{Daemon, Handle, Parts, Settings};

pub use backends::HttpBackend;
pub use forwarder::Forwarder;
pub use script::{Flap, Script};
pub use sim_vpp::SimVpp;

/// `docs/examples/demo.yaml`, as built into the binary.
pub const DEMO_YAML: &str = include_str!("../../../docs/examples/demo.yaml");

/// The port every demo backend listens on, as [`DEMO_YAML`] names it.
pub const DEFAULT_PORT: u16 = 18080;

/// The name of the config file written into the demo's directory.
pub const CONFIG_FILE: &str = "demo.yaml";

/// Where [`DEMO_YAML`] comes from, for error messages.
const DEMO_ORIGIN: &str = "docs/examples/demo.yaml (embedded)";

/// [`DEMO_YAML`] with the backends' port `port` in place of
/// [`DEFAULT_PORT`].
pub fn config_yaml(port: u16) -> String {
    DEMO_YAML.replace(&format!("port: {DEFAULT_PORT}"), &format!("port: {port}"))
}

/// The embedded demo config, parsed and validated.
pub fn config() -> anyhow::Result<Config> {
    Config::from_yaml(DEMO_YAML, DEMO_ORIGIN)
        .map_err(|e| anyhow::anyhow!("{}", e.lines().join("\n")))
        .context("the embedded demo config is invalid")
}

/// What the demo runs besides the daemon's settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The port of every backend; 0 for a free one (the config written
    /// then names it).
    pub port: u16,
    /// The backends' scripted failures ([`Script::demo`] by default; an
    /// empty script keeps every backend healthy).
    pub script: Script,
    /// How often the simulator sends a packet to every serving VIP.
    pub trickle: Duration,
    /// The simulated VPP's worker threads.
    pub workers: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            port: DEFAULT_PORT,
            script: Script::demo(),
            trickle: Duration::from_millis(100),
            workers: 2,
        }
    }
}

/// A running demo: the daemon, the simulator and the backends.
#[derive(Debug)]
pub struct Demo {
    daemon: Daemon,
    vpp: SimVpp,
    forwarder: Forwarder,
    backends: BTreeMap<String, HttpBackend>,
    port: u16,
    script: Script,
    stop_script: CancellationToken,
    script_tasks: TaskTracker,
    config_path: PathBuf,
    /// Where the announced routes go (a [`MemoryTable`] unless the caller
    /// gave a table).
    routes: Arc<dyn RouteTable>,
    /// The dashboard's demo admin (user, password), when the demo made one.
    web_login: Option<(String, String)>,
    // Last: removed (with the sockets and the config) when the demo is gone.
    dir: tempfile::TempDir,
}

/// Starts the demo: backends, simulator, config file, daemon and script.
/// `settings` gives the listeners and intervals; its config path and VPP
/// sockets are replaced by the demo's. The announced routes go to
/// `parts.routes`, or to a new [`MemoryTable`] if it is `None` (never to
/// the host's kernel table). Fails, naming the address, if a backend's
/// port is taken, and as [`Daemon::start`] does.
pub async fn start(
    mut settings: Settings,
    mut parts: Parts,
    options: DemoOptions,
) -> anyhow::Result<Demo> {
    let routes = parts
        .routes
        .get_or_insert_with(|| Arc::new(MemoryTable::new()))
        .clone();
    let config = config()?;
    let (backends, port) = start_backends(&config, options.port).await?;
    let stop_backends = |backends: &BTreeMap<String, HttpBackend>| {
        backends.values().for_each(HttpBackend::stop);
    };
    let script_backends = match script_backends(&options.script, &backends) {
        Ok(s) => s,
        Err(e) => {
            stop_backends(&backends);
            return Err(e);
        }
    };

    // Private to this user: it holds the demo admin's password file and
    // the simulated VPP's sockets.
    let dir = match tempfile::Builder::new()
        .prefix("maglev-demo-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            stop_backends(&backends);
            return Err(e).context("creating the demo's temporary directory");
        }
    };
    let vpp = match SimVpp::start(dir.path(), options.workers, Some(options.trickle)).await {
        Ok(v) => v,
        Err(e) => {
            stop_backends(&backends);
            return Err(e);
        }
    };
    let written_yaml = config_yaml(port);
    let forwarder = match Config::from_yaml(&written_yaml, DEMO_ORIGIN) {
        Ok(c) => Forwarder::start(&c, port, vpp.sim.model(), vpp.stats.clone()).await,
        Err(e) => {
            vpp.stop().await;
            stop_backends(&backends);
            anyhow::bail!(
                "the demo config with port {port} is invalid: {}",
                e.lines().join("\n")
            );
        }
    };
    let config_path = dir.path().join(CONFIG_FILE);
    let written = std::fs::write(&config_path, written_yaml)
        .with_context(|| format!("writing {}", config_path.display()));
    settings.config_path = config_path.clone();
    settings.vpp = Some(vpp.sockets());
    // A dashboard without a password file gets a demo admin, so the
    // actions can be tried.
    let web_login = if settings.http_addr.is_some() && settings.http_password_file.is_none() {
        let password: String = (0..12)
            .map(|_| char::from(b"abcdefghjkmnpqrstuvwxyz23456789"[rand::random_range(0..31)]))
            .collect();
        let path = dir.path().join("htpasswd");
        let line = bcrypt::hash(&password, 8)
            .map(|h| format!("demo:{h}\n"))
            .map_err(anyhow::Error::from);
        match line.and_then(|l| write_private(&path, &l).map_err(anyhow::Error::from)) {
            Ok(()) => {
                settings.http_password_file = Some(path);
                Some(("demo".to_owned(), password))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no demo admin for the dashboard");
                None
            }
        }
    } else {
        None
    };
    let daemon = match written {
        Ok(()) => Daemon::start(settings, parts).await,
        Err(e) => Err(e),
    };
    let daemon = match daemon {
        Ok(d) => d,
        Err(e) => {
            forwarder.stop().await;
            vpp.stop().await;
            stop_backends(&backends);
            return Err(e);
        }
    };

    let stop_script = CancellationToken::new();
    let script_tasks = TaskTracker::new();
    for (flap, group) in script_backends {
        script_tasks.spawn(script::play(flap, group, stop_script.clone()));
    }
    script_tasks.close();
    tracing::info!(
        dir = %dir.path().display(),
        backends = backends.len(),
        port,
        "demo started"
    );
    Ok(Demo {
        daemon,
        vpp,
        forwarder,
        backends,
        port,
        script: options.script,
        stop_script,
        script_tasks,
        config_path,
        routes,
        web_login,
        dir,
    })
}

/// One HTTP backend per probed backend of `config` (static ones need
/// none), all on `port` (0: the port the first one gets).
async fn start_backends(
    config: &Config,
    port: u16,
) -> anyhow::Result<(BTreeMap<String, HttpBackend>, u16)> {
    let mut out = BTreeMap::new();
    let mut port = port;
    for (name, backend) in config.backends() {
        if backend.healthcheck.is_none() {
            continue;
        }
        let addr = SocketAddr::new(backend.address, port);
        match HttpBackend::named(addr, name).await {
            Ok(b) => {
                port = b.addr().port();
                out.insert(name.clone(), b);
            }
            Err(e) => {
                out.values().for_each(HttpBackend::stop);
                return Err(e).with_context(|| {
                    format!(
                        "starting demo backend {name} on {addr}: port {port} must be free on \
                         127.0.0.x (is another maglevd --demo running? --demo-port picks another)"
                    )
                });
            }
        }
    }
    Ok((out, port))
}

/// Each flap of `script` with the backends it names.
fn script_backends(
    script: &Script,
    backends: &BTreeMap<String, HttpBackend>,
) -> anyhow::Result<Vec<(Flap, Vec<HttpBackend>)>> {
    script
        .flaps
        .iter()
        .map(|flap| {
            let group = flap
                .backends
                .iter()
                .map(|name| {
                    backends.get(name).cloned().with_context(|| {
                        format!(
                            "the demo script names backend {name:?}, which the demo does not run"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((flap.clone(), group))
        })
        .collect()
}

impl Demo {
    /// The running daemon.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// The daemon's API.
    pub fn handle(&self) -> &Handle {
        self.daemon.handle()
    }

    /// The simulated VPP.
    pub fn vpp(&self) -> &SimVpp {
        &self.vpp
    }

    /// The VIPs clients can reach: frontend name and address.
    pub fn vips(&self) -> &[(String, SocketAddr)] {
        self.forwarder.listening()
    }

    /// The HTTP backends, by backend name.
    pub fn backends(&self) -> &BTreeMap<String, HttpBackend> {
        &self.backends
    }

    /// The port every backend listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the announced routes go: the [`MemoryTable`] the demo made,
    /// unless the caller gave a table in [`Parts::routes`].
    pub fn routes(&self) -> &Arc<dyn RouteTable> {
        &self.routes
    }

    /// The config file the daemon reads (edit it, then SIGHUP).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temporary directory with the config and VPP's sockets.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What to tell a person who just started the demo: where things are
    /// and what to type next. Several lines, no trailing newline.
    pub fn welcome(&self) -> String {
        let mut out = vec![
            format!(
                "maglevd --demo: the real daemon against a simulated VPP and {} loopback HTTP backends (port {}).",
                self.backends.len(),
                self.port
            ),
            format!(
                "  config:  {}  (edit it, then: kill -HUP {})",
                self.config_path.display(),
                std::process::id()
            ),
            format!(
                "  VPP:     simulated, api.sock and stats.sock in {}",
                self.dir.path().display()
            ),
            if self.routes.in_memory() {
                "  routes:  announcements are kept in memory (the demo never touches this host's routes)"
                    .to_owned()
            } else {
                format!("  routes:  announcements go to {}", self.routes.describe())
            },
        ];
        let grpc = dial(self.daemon.grpc_addrs());
        let metrics = dial(self.daemon.metrics_addrs());
        let web = dial(self.daemon.http_addrs());
        out.push(match &grpc {
            Some(g) => format!("  gRPC:    {g} (server reflection, so grpcurl needs no .proto)"),
            None => "  gRPC:    off (--grpc-addr is empty)".to_owned(),
        });
        out.push(match &metrics {
            Some(m) => format!("  metrics: http://{m}/metrics"),
            None => "  metrics: off (--metrics-addr is empty)".to_owned(),
        });
        out.push(match (&web, &self.web_login) {
            (Some(w), Some((user, password))) => {
                format!("  web:     http://{w}/  (log in at /login as {user} / {password} to act)")
            }
            (Some(w), None) => format!("  web:     http://{w}/"),
            (None, _) => "  web:     off (--http-addr is empty)".to_owned(),
        });
        if !self.forwarder.listening().is_empty() {
            let vips: Vec<String> = self
                .forwarder
                .listening()
                .iter()
                .map(|(name, addr)| format!("{name} {addr}"))
                .collect();
            out.push(format!(
                "  VIPs:    {} (VPP's dataplane, played on loopback)",
                vips.join(", ")
            ));
        }
        if !self.script.flaps.is_empty() {
            out.push("Scripted:".to_owned());
            out.extend(self.script.describe().into_iter().map(|l| format!("  {l}")));
        }
        out.push("Try:".to_owned());
        if let Some(g) = &grpc {
            out.push(format!("  grpcurl -plaintext {g} list"));
            out.push(format!(
                "  grpcurl -plaintext {g} maglev.Maglev/ListFrontends"
            ));
            out.push(format!(
                "  grpcurl -plaintext -d '{{\"name\":\"web\"}}' {g} maglev.Maglev/GetFrontend"
            ));
            out.push(format!(
                "  grpcurl -plaintext {g} maglev.Maglev/GetVPPLBCounters"
            ));
        }
        if let Some(m) = &metrics {
            out.push(format!("  curl -s {m}/metrics | grep maglev_"));
        }
        if grpc.is_some() {
            out.push("  maglevc show frontends".to_owned());
            out.push("  maglevc show announcements".to_owned());
        }
        if let Some((_, addr)) = self.forwarder.listening().first() {
            out.push(format!("  curl -si http://{addr}/ | grep -i x-served-by"));
            out.push(format!(
                "  maglevt --config {} --header x-served-by",
                self.config_path.display()
            ));
        }
        out.push("Stop with Ctrl-C.".to_owned());
        out.join("\n")
    }

    /// Stops the script, the daemon (leaving the simulator as it is), the
    /// simulator and the backends, and removes the temporary directory.
    pub async fn shutdown(self) {
        self.stop_script.cancel();
        self.script_tasks.wait().await;
        self.daemon.shutdown().await;
        self.forwarder.stop().await;
        self.vpp.stop().await;
        for b in self.backends.values() {
            b.stop();
        }
        tracing::info!("demo stopped");
    }
}

/// How a client on this host reaches the first of `addrs`: `localhost:port`
/// for a loopback or every-interface listener.
/// Writes `text` to a new file at `path` only its owner may read (0600).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn dial(addrs: &[SocketAddr]) -> Option<String> {
    let first = addrs.first()?;
    Some(if first.ip().is_loopback() || first.ip().is_unspecified() {
        format!("localhost:{}", first.port())
    } else {
        first.to_string()
    })
}

/// Runs the demo as a process does: [`start`], then `ready` (the binary
/// prints [`Demo::welcome`] there), then until `shutdown` is cancelled or
/// SIGTERM or SIGINT arrives, reloading on SIGHUP; then [`Demo::shutdown`].
pub async fn run(
    settings: Settings,
    parts: Parts,
    options: DemoOptions,
    shutdown: CancellationToken,
    ready: impl FnOnce(&Demo),
) -> anyhow::Result<()> {
    let demo = start(settings, parts, options).await?;
    ready(&demo);
    let signals = {
        let handle = demo.handle().clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::daemon::signals::run(handle, shutdown.clone()).await {
                tracing::error!(error = %e, "cannot handle signals; stopping the demo");
                shutdown.cancel();
            }
        })
    };
    shutdown.cancelled().await;
    demo.shutdown().await;
    signals.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_substituted_everywhere_it_is_configured() {
        let yaml = config_yaml(12345);
        assert!(!yaml.contains(&format!("port: {DEFAULT_PORT}")));
        let config = Config::from_yaml(&yaml, "test").unwrap();
        let ports: Vec<u16> = config
            .healthchecks()
            .values()
            .map(|h| match &h.probe {
                maglev_core::config::Probe::Http(http) => http.port,
                other => panic!("the demo probes over HTTP only, not {other:?}"),
            })
            .collect();
        assert_eq!(ports, vec![12345; ports.len()]);
        assert!(!ports.is_empty());
    }

    #[test]
    fn dial_prefers_localhost_for_local_listeners() {
        let a: SocketAddr = "[::]:9091".parse().unwrap();
        assert_eq!(dial(&[a]).as_deref(), Some("localhost:9091"));
        let a: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        assert_eq!(dial(&[a]).as_deref(), Some("localhost:9090"));
        let a: SocketAddr = "192.0.2.1:9090".parse().unwrap();
        assert_eq!(dial(&[a]).as_deref(), Some("192.0.2.1:9090"));
        assert_eq!(dial(&[]), None);
    }
}
