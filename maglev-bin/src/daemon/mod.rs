//! The daemon: the composition of config, health checker, VPP connection,
//! reconciler, counter scrape, gRPC and `/metrics`.
//!
//! [`Daemon::start`] wires the parts and returns at once with a
//! [`Handle`], the one API every reader and operator goes through (gRPC,
//! `/metrics`, the web page and embedders). [`run`] is the same for a
//! process: it starts, waits for the shutdown token, and stops.
//!
//! # Tasks
//!
//! - `watch` ([`watch`]): backend transitions from the checker become
//!   events, frontend transitions, flush requests and marks in the
//!   reconciler's schedule.
//! - `reconciler` ([`reconciler`]): the one path to VPP,
//!   `desired → plan → apply`, batch by batch as the schedule allows.
//! - `vpp` ([`vpp`]): the connection supervisor (API and stats as one
//!   unit, liveness pings, reconnects).
//! - `counters` ([`counters`]): the stats-segment scrape loop.
//! - `state_file` ([`state_file`]): writes the last backend states for the
//!   next start, which [`state_file::restore`] seeds the checker from.
//! - `announce` (`crate::announce::announcer`, with an announce section):
//!   announces or withdraws each VIP prefix in the route table as
//!   `maglev_core::announce` decides; started after its table is opened
//!   and read (a start without the right to change routes fails).
//!
//! [`stop`] names the tasks and bounds the shutdown.
//!
//! - `tables` ([`tables`]): the prediction of every VIP's new-flow table
//!   and how VPP's buckets compare with it, built from the reconciler's
//!   updates off its path.
//! - `lb_conf` ([`lb_conf`]): `vpp.lb` on reload, sent at once (a
//!   sticky-table resize only when forced).
//! - `sync_health` ([`sync_health`]): whether the reconciler keeps up
//!   (pending frontends, read errors, failures, the last full success).
//! - the gRPC, metrics and web servers ([`crate::grpc`], [`crate::metrics`],
//!   [`crate::web`]).
//!
//! **Invariant:** every change to VPP is made by the reconciler task; the
//! others only mark work for it.

pub mod beats;
pub mod counters;
pub mod error;
pub mod handle;
pub mod lb_conf;
pub mod listen;
pub(crate) mod oplog;
pub mod overrides;
pub(crate) mod pools;
pub mod reads;
pub mod reconciler;
pub mod reload;
pub mod runtime;
pub mod settings;
pub mod signals;
pub mod state_file;
pub mod stop;
pub mod sync_health;
pub mod tables;
pub mod views;
pub mod vpp;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use maglev_core::config::Config;
use maglev_health::checker::{ProbeFactory, RealProbes};
use maglev_vpp::lb::dataplane::Dataplane;
use tokio_util::sync::CancellationToken;

use crate::clock::WallClock;
use crate::events::EventHub;
use crate::metrics::Metrics;

pub use error::DaemonError;
pub use handle::{Handle, WeightChange};
pub use reconciler::SyncReport;
pub use settings::{Settings, TlsFiles, VppSockets};

/// The parts of the world the daemon talks to, swappable by tests and
/// embedders.
pub struct Parts {
    /// Builds the probers (the real HTTP, TCP and ICMP probes by default).
    pub probes: Arc<dyn ProbeFactory>,
    /// A dataplane to use instead of VPP's sockets (for example the
    /// in-memory model); `None` to connect to [`Settings::vpp`].
    pub dataplane: Option<Arc<dyn Dataplane>>,
    /// The routing table announced VIP prefixes go to, instead of the
    /// kernel table `maglev.announce` names (for example a
    /// [`MemoryTable`](crate::announce::table::MemoryTable)); used only
    /// with an announce section.
    pub routes: Option<Arc<dyn crate::announce::table::RouteTable>>,
    /// The event fan-out; share it with the [`LogLayer`](crate::events::LogLayer)
    /// so watchers get log records.
    pub hub: EventHub,
    /// The wall clock for times shown to people.
    pub clock: WallClock,
    /// The runtime the checker's probe tasks run on; `None` for the one
    /// the daemon is started on. A current-thread runtime on a thread of
    /// its own probes for less CPU than a multi-thread one (see
    /// docs/performance.md, "Daemon").
    pub checker_runtime: Option<tokio::runtime::Handle>,
    /// The runtime the gRPC and `/metrics` servers (and every event
    /// stream) run on; `None` for the one the daemon is started on. A
    /// thread of their own keeps readers from queueing in front of the
    /// reconciler (see [`runtime`]).
    pub serve_runtime: Option<tokio::runtime::Handle>,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            probes: Arc::new(RealProbes),
            dataplane: None,
            routes: None,
            hub: EventHub::new(),
            clock: WallClock::new(),
            checker_runtime: None,
            serve_runtime: None,
        }
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("dataplane", &self.dataplane.is_some())
            .field("routes", &self.routes)
            .field("checker_runtime", &self.checker_runtime.is_some())
            .field("serve_runtime", &self.serve_runtime.is_some())
            .finish_non_exhaustive()
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    handle: Handle,
    cancel: CancellationToken,
    tasks: stop::Tasks,
    grpc_addrs: Vec<SocketAddr>,
    metrics_addrs: Vec<SocketAddr>,
    http_addrs: Vec<SocketAddr>,
}

impl Daemon {
    /// Loads the config, starts the checker and every task, binds the
    /// listeners, and returns. Fails if the config is invalid or a listener
    /// cannot be bound; VPP being away is not a failure.
    pub async fn start(settings: Settings, parts: Parts) -> anyhow::Result<Daemon> {
        let config = reload::load(&settings.config_path)
            .map_err(|e| anyhow::anyhow!("{}", e.message()))
            .with_context(|| format!("loading {}", settings.config_path.display()))?;
        Daemon::start_with(settings, parts, config).await
    }

    /// As [`start`](Daemon::start), with a config already loaded.
    pub async fn start_with(
        settings: Settings,
        mut parts: Parts,
        config: Config,
    ) -> anyhow::Result<Daemon> {
        let cancel = CancellationToken::new();
        let mut tasks = stop::Tasks::default();
        let metrics = Arc::new(Metrics::new());
        let serve_runtime = parts.serve_runtime.clone();
        // Before anything starts: without the right to change routes, or
        // with a table that cannot be read, the start fails (never
        // half-way).
        let routes = parts.routes.take();
        let announce = match config.announce() {
            Some(section) => Some(crate::announce::announcer::open(section, routes).await?),
            None => None,
        };
        let announcing = announce.is_some();
        let handle = Handle::new(settings, parts, config, metrics, cancel.clone(), announce)?;

        tasks.spawn("watch", watch::run(handle.clone()));
        if handle.vpp_enabled() {
            tasks.spawn("reconciler", reconciler::run(handle.clone()));
            tasks.spawn("vpp", vpp::run(handle.clone()));
            tasks.spawn("counters", counters::run(handle.clone()));
            tasks.spawn("tables", tables::run(handle.clone()));
        }
        if announcing {
            tasks.spawn("announce", crate::announce::announcer::run(handle.clone()));
        }
        if let Some(path) = &handle.settings().state_file {
            tasks.spawn("state_file", state_file::run(handle.clone(), path.clone()));
        }

        // The servers run on the serve runtime, and their listeners are
        // bound there so that runtime's own reactor drives them.
        let serve_on = serve_runtime.unwrap_or_else(tokio::runtime::Handle::current);
        let settings = handle.settings();
        let grpc_addrs = match &settings.grpc_addr {
            Some(addr) => {
                let listeners = bind_on(&serve_on, addr)
                    .await
                    .with_context(|| format!("gRPC listen address {addr:?}"))?;
                let addrs = listen::local_addrs(&listeners);
                tasks.spawn_on(
                    "grpc",
                    crate::grpc::serve(handle.clone(), listeners),
                    &serve_on,
                );
                addrs
            }
            None => Vec::new(),
        };
        let metrics_addrs = match &settings.metrics_addr {
            Some(addr) => {
                let listeners = bind_on(&serve_on, addr)
                    .await
                    .with_context(|| format!("metrics listen address {addr:?}"))?;
                let addrs = listen::local_addrs(&listeners);
                tasks.spawn_on(
                    "metrics",
                    crate::metrics::serve(handle.clone(), listeners),
                    &serve_on,
                );
                addrs
            }
            None => Vec::new(),
        };
        let http_addrs = match &settings.http_addr {
            Some(addr) => {
                let web = crate::web::Web::new(&handle).context("the web dashboard")?;
                let listeners = bind_on(&serve_on, addr)
                    .await
                    .with_context(|| format!("web listen address {addr:?}"))?;
                let addrs = listen::local_addrs(&listeners);
                tasks.spawn_on("web", web.serve(listeners), &serve_on);
                addrs
            }
            None => Vec::new(),
        };
        tracing::info!(
            grpc = ?grpc_addrs,
            metrics = ?metrics_addrs,
            http = ?http_addrs,
            vpp = handle.vpp_enabled(),
            "started"
        );
        Ok(Daemon {
            handle,
            cancel,
            tasks,
            grpc_addrs,
            metrics_addrs,
            http_addrs,
        })
    }

    /// The API every reader and operator uses.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Where the gRPC server listens (empty without one).
    pub fn grpc_addrs(&self) -> &[SocketAddr] {
        &self.grpc_addrs
    }

    /// Where `/metrics` is served (empty without it).
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        &self.metrics_addrs
    }

    /// Where the web dashboard is served (empty without it).
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// Stops everything: closes event streams, drains the servers, stops
    /// a sync in progress between ops (the next start plans again from
    /// VPP's dump), writes the state file, stops probing, closes the VPP
    /// connections (with a goodbye), and leaves the dataplane as it is.
    /// Bounded by [`stop::SHUTDOWN_DEADLINE`]: what still runs then is
    /// abandoned with a WARN naming it.
    pub async fn shutdown(self) {
        tracing::info!("stopping");
        let deadline = tokio::time::Instant::now() + stop::SHUTDOWN_DEADLINE;
        self.cancel.cancel();
        self.tasks.stop(deadline).await;
        let checker = self.handle.checker().shutdown();
        if tokio::time::timeout_at(deadline, checker).await.is_err() {
            tracing::warn!(
                deadline_s = stop::SHUTDOWN_DEADLINE.as_secs(),
                "shutdown deadline passed: abandoning the health checker's probes still running"
            );
        }
        tracing::info!("stopped");
    }
}

/// Binds `addr`'s listeners from within `runtime`, whose reactor then
/// drives them.
async fn bind_on(
    runtime: &tokio::runtime::Handle,
    addr: &str,
) -> std::io::Result<Vec<tokio::net::TcpListener>> {
    let addr = addr.to_owned();
    runtime
        .spawn(async move { listen::bind(&addr).await })
        .await
        .map_err(std::io::Error::other)?
}

/// Runs a daemon as a process does: until `shutdown` is cancelled or a
/// SIGTERM or SIGINT arrives, reloading on SIGHUP.
pub async fn run_process(
    settings: Settings,
    parts: Parts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let daemon = Daemon::start(settings, parts).await?;
    let signals = tokio::spawn(signals::run(daemon.handle().clone(), shutdown.clone()));
    shutdown.cancelled().await;
    daemon.shutdown().await;
    signals.abort();
    Ok(())
}

/// Runs a daemon until `shutdown` is cancelled, then stops it.
pub async fn run(
    settings: Settings,
    parts: Parts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let daemon = Daemon::start(settings, parts).await?;
    shutdown.cancelled().await;
    daemon.shutdown().await;
    Ok(())
}
