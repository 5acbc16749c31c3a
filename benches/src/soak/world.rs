//! The soak's world: a simulated VPP (API simulator and a stats segment
//! that can be replaced), the loopback backends, the config files, and the
//! real daemon on a runtime of its own (two workers, plus the checker's
//! and the servers' threads, as `maglevd` runs), restartable, driven over
//! gRPC, with `/metrics` and the dashboard on loopback for floods and
//! reader storms.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use maglev_bin::daemon::runtime::RuntimeThread;
use maglev_bin::daemon::{Daemon, Parts, Settings, VppSockets};
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use maglev_vpp::sim::{Sim, SimConfig};
use maglev_vpp::stats::sim::{ServeOptions, SimStats, StatsListener};
use tokio_util::sync::CancellationToken;

use super::backends::Backend;

/// Backends in the soak's config.
pub const BACKENDS: usize = 8;

/// The config's sync interval: the periodic full reconcile, and the bound
/// on convergence once faults stop.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// The probe interval of the config's health check (its timeout is 100 ms).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(150);

/// A frontend of the soak's config: name, address, protocol (empty: all
/// ports), port, and its pools as lists of backend indexes.
type FrontendSpec = (
    &'static str,
    &'static str,
    &'static str,
    u16,
    &'static [&'static [usize]],
);

/// The config's frontends, each as (name, address, protocol, port, pools of
/// backend indexes): IPv4 and IPv6 VIPs, TCP, UDP and an all-port VIP,
/// backends shared between frontends, one frontend with a single pool.
/// Variant B of the config drops `dns`, adds `extra` and halves `b1`'s
/// weight in `web`.
const FRONTENDS: &[FrontendSpec] = &[
    ("web", "192.0.2.1", "tcp", 80, &[&[0, 1, 2], &[3]]),
    ("api", "192.0.2.2", "tcp", 443, &[&[2, 3], &[4, 5]]),
    ("dns", "2001:db8::53", "udp", 53, &[&[5, 6, 7]]),
    ("all", "198.51.100.1", "", 0, &[&[6, 7], &[0]]),
];

/// The name of backend `i`.
pub fn backend_name(i: usize) -> String {
    format!("b{i}")
}

/// The YAML of the soak's config: variant A (`b == false`) or B. `port` is
/// the backends' port, `net` their third octet (127.0.`net`.1..).
pub fn config_yaml(port: u16, net: u8, b: bool) -> String {
    let mut y = format!(
        "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.254\n      \
         ipv6-src-address: 2001:db8::fe\n      sync-interval: {}ms\n      \
         startup-min-delay: 300ms\n      startup-max-delay: 3s\n  healthchecks:\n    \
         web: {{ type: http, port: {port}, interval: {}ms, timeout: 100ms, rise: 2, fall: 2, \
         slow-start: 2s }}\n  backends:\n",
        SYNC_INTERVAL.as_millis(),
        PROBE_INTERVAL.as_millis(),
    );
    for i in 0..BACKENDS {
        let _ = writeln!(
            y,
            "    {}: {{ address: 127.0.{net}.{}, healthcheck: web }}",
            backend_name(i),
            i + 1
        );
    }
    y.push_str("  frontends:\n");
    let extra: FrontendSpec = ("extra", "192.0.2.4", "tcp", 8080, &[&[1, 4]]);
    let list = FRONTENDS
        .iter()
        .filter(|f| !b || f.0 != "dns")
        .chain(b.then_some(&extra));
    for (name, address, protocol, port, pools) in list {
        let _ = writeln!(y, "    {name}:\n      address: {address}");
        if !protocol.is_empty() {
            let _ = writeln!(y, "      protocol: {protocol}\n      port: {port}");
        }
        y.push_str("      pools:\n");
        for (p, members) in pools.iter().enumerate() {
            let _ = write!(y, "        - name: pool{p}\n          backends: {{");
            for m in *members {
                let weight = if b && *name == "web" && *m == 1 {
                    "{ weight: 50 }"
                } else {
                    "{}"
                };
                let _ = write!(y, " {}: {weight},", backend_name(*m));
            }
            y.push_str(" }\n");
        }
    }
    y
}

/// The config of variant `b`, as the daemon reads it from the file.
pub fn file_config(port: u16, net: u8, b: bool) -> maglev_core::config::Config {
    maglev_core::config::Config::from_yaml(&config_yaml(port, net, b), "soak")
        .unwrap_or_else(|e| panic!("the soak's config is invalid: {}", e.lines().join("\n")))
}

/// Configs a reload must refuse: a YAML error, an unknown backend, an
/// out-of-range weight.
pub const INVALID_CONFIGS: &[&str] = &[
    "maglev: [this is: not a config\n",
    "maglev:\n  backends:\n    a: { address: 127.0.0.1 }\n  frontends:\n    f:\n      address: 192.0.2.9\n      pools:\n        - name: p\n          backends: { ghost: {} }\n",
    "maglev:\n  backends:\n    a: { address: 127.0.0.1 }\n  frontends:\n    f:\n      address: 192.0.2.9\n      pools:\n        - name: p\n          backends: { a: { weight: 500 } }\n",
];

/// The simulated VPP: the API simulator and a stats segment served on
/// `stats.sock`, which [`Vpp::replace_stats`] swaps for a new one.
#[derive(Debug)]
pub struct Vpp {
    /// The API simulator.
    pub sim: Sim,
    stats_path: PathBuf,
    stats_stop: CancellationToken,
    stats_task: Option<tokio::task::JoinHandle<()>>,
}

impl Vpp {
    /// Starts both sockets in `dir`. Replies over 1 KiB count as large (in
    /// VPP, replies that fill the socket's buffer): a connection that then
    /// leaves without `sockclnt_delete` leaks its registration, as in VPP
    /// 26.10, so the soak's small dumps exercise the leak model.
    pub async fn start(dir: &Path) -> anyhow::Result<Vpp> {
        let config = SimConfig {
            large_reply: 1024,
            ..SimConfig::new(dir.join("api.sock"))
        };
        let sim = Sim::start(config).await?;
        let mut vpp = Vpp {
            sim,
            stats_path: dir.join("stats.sock"),
            stats_stop: CancellationToken::new(),
            stats_task: None,
        };
        vpp.replace_stats().await?;
        Ok(vpp)
    }

    /// The sockets, as the daemon's settings name them.
    pub fn sockets(&self) -> VppSockets {
        VppSockets {
            api: self.sim.api_socket().to_owned(),
            stats: Some(self.stats_path.clone()),
        }
    }

    /// A new stats segment on `stats.sock`, listing the VIPs the simulator
    /// holds; clients that connect from now on map it (the daemon's
    /// mapping of the old one stays valid until it reconnects).
    pub async fn replace_stats(&mut self) -> anyhow::Result<()> {
        self.stats_stop.cancel();
        if let Some(task) = self.stats_task.take() {
            let _ = task.await;
        }
        let stats = SimStats::new(1).context("a stats segment")?;
        self.sim.replace_observer(Arc::new(stats.clone()));
        let listener = StatsListener::bind(&self.stats_path)?;
        let stop = CancellationToken::new();
        self.stats_stop = stop.clone();
        let opts = ServeOptions {
            trickle: Some(Duration::from_millis(200)),
            ..ServeOptions::default()
        };
        self.stats_task = Some(tokio::spawn(async move {
            let _ =
                maglev_vpp::stats::sim::run(listener, stats, opts, stop.cancelled_owned()).await;
        }));
        Ok(())
    }

    /// A VPP restart: new pid, new message ids, empty LB state, and a new
    /// (empty) stats segment.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.sim.restart().await?;
        self.replace_stats().await
    }

    /// Stops both sockets.
    pub async fn stop(mut self) {
        self.sim.stop().await;
        self.stats_stop.cancel();
        if let Some(task) = self.stats_task.take() {
            let _ = task.await;
        }
    }
}

/// The runtimes the daemon runs on: two workers for the reconciler and the
/// VPP connection, a thread for the checker and one for the servers, as
/// `maglevd` has them. They outlive daemon restarts, so tasks a stopped
/// daemon left behind still count.
#[derive(Debug)]
pub struct DaemonRuntime {
    main: Option<tokio::runtime::Runtime>,
    checker: RuntimeThread,
    serve: RuntimeThread,
}

impl DaemonRuntime {
    /// Starts the runtimes.
    pub fn new() -> anyhow::Result<DaemonRuntime> {
        Ok(DaemonRuntime {
            main: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("soak-daemon")
                    .enable_all()
                    .build()?,
            ),
            checker: RuntimeThread::start("maglev-health")?,
            serve: RuntimeThread::start("maglev-serve")?,
        })
    }

    fn main(&self) -> &tokio::runtime::Runtime {
        self.main.as_ref().expect("runtime kept until drop")
    }

    /// Tasks alive on the daemon's three runtimes.
    pub fn tasks(&self) -> usize {
        self.main().metrics().num_alive_tasks()
            + self.checker.handle().metrics().num_alive_tasks()
            + self.serve.handle().metrics().num_alive_tasks()
    }

    /// Starts a daemon with `settings` on these runtimes.
    pub async fn start(&self, settings: Settings) -> anyhow::Result<Daemon> {
        let parts = Parts {
            checker_runtime: Some(self.checker.handle()),
            serve_runtime: Some(self.serve.handle()),
            ..Parts::default()
        };
        self.main()
            .spawn(Daemon::start(settings, parts))
            .await
            .context("the daemon's start task")?
    }

    /// Stops `daemon` (on its runtime).
    pub async fn stop(&self, daemon: Daemon) {
        let _ = self.main().spawn(daemon.shutdown()).await;
    }
}

impl Drop for DaemonRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.main.take() {
            rt.shutdown_background();
        }
    }
}

/// The daemon's settings in the soak: gRPC, `/metrics` and the dashboard
/// (anonymous viewers only) on ephemeral loopback ports, quick reconnects
/// and scrapes, a state file or not.
pub fn settings(config: &Path, vpp: VppSockets, state_file: Option<PathBuf>) -> Settings {
    let mut s = Settings::new(config);
    s.grpc_addr = Some("127.0.0.1:0".to_owned());
    s.metrics_addr = Some("127.0.0.1:0".to_owned());
    s.http_addr = Some("127.0.0.1:0".to_owned());
    s.vpp = Some(vpp);
    s.reconnect_interval = Duration::from_millis(200);
    s.ping_interval = Duration::from_secs(1);
    s.scrape_interval = Duration::from_millis(500);
    s.shutdown_grace = Duration::from_millis(500);
    s.state_file = state_file;
    s
}

/// A gRPC client of the daemon listening on `addr`.
pub async fn client(addr: SocketAddr) -> anyhow::Result<MaglevClient<tonic::transport::Channel>> {
    Ok(MaglevClient::connect(format!("http://{addr}")).await?)
}

/// How a `WatchEvents` subscriber reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// As fast as events come.
    Fast,
    /// One event every this long.
    Slow(Duration),
    /// Never (the stream stays open).
    Never,
}

/// The soak's `WatchEvents` subscribers on one daemon: they end when it
/// does (or when dropped).
#[derive(Debug)]
pub struct Watchers {
    stop: CancellationToken,
    /// Streams nobody reads, kept open.
    _idle: Vec<tonic::Streaming<proto::Event>>,
    /// Events read so far by all readers.
    pub read: Arc<std::sync::atomic::AtomicU64>,
    /// Backend transitions read by the first fast reader.
    pub transitions: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Opens one subscriber per entry of `readers` (every kind, logs at
/// debug) on the daemon at `addr`.
pub async fn watchers(addr: SocketAddr, readers: &[Reader]) -> anyhow::Result<Watchers> {
    let stop = CancellationToken::new();
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let transitions = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut idle = Vec::new();
    let mut counting = true;
    for reader in readers {
        let mut c = client(addr).await?;
        let mut stream = c
            .watch_events(proto::WatchRequest {
                log: true,
                log_level: "debug".to_owned(),
                backend: true,
                frontend: true,
                vpp: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        let pace = match *reader {
            Reader::Never => {
                idle.push(stream);
                continue;
            }
            Reader::Fast => None,
            Reader::Slow(d) => Some(d),
        };
        let stop = stop.clone();
        let read = read.clone();
        let counted =
            (pace.is_none() && std::mem::take(&mut counting)).then(|| transitions.clone());
        tokio::spawn(async move {
            loop {
                if let Some(d) = pace {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(d) => {}
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    m = stream.message() => match m {
                        Ok(Some(e)) => {
                            read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if let (Some(t), Some(proto::event::Kind::Backend(_))) = (&counted, &e.kind) {
                                t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        _ => return,
                    },
                }
            }
        });
    }
    Ok(Watchers {
        stop,
        _idle: idle,
        read,
        transitions,
    })
}

/// Starts the backends on 127.0.`net`.1..=[`BACKENDS`], all on one port.
pub async fn backends(net: u8) -> anyhow::Result<Vec<Arc<Backend>>> {
    let mut out: Vec<Arc<Backend>> = Vec::new();
    let mut port = 0;
    for i in 0..BACKENDS {
        let ip = IpAddr::from([127, 0, net, i as u8 + 1]);
        let b = Backend::start(SocketAddr::new(ip, port))
            .await
            .with_context(|| format!("backend on {ip}"))?;
        port = b.addr().port();
        out.push(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_variants_are_valid() {
        let a = maglev_core::config::Config::from_yaml(&config_yaml(8080, 90, false), "a")
            .unwrap_or_else(|e| panic!("{}", e.lines().join("\n")));
        assert_eq!(a.frontends().len(), 4);
        assert_eq!(a.backends().len(), BACKENDS);
        let b = maglev_core::config::Config::from_yaml(&config_yaml(8080, 90, true), "b")
            .unwrap_or_else(|e| panic!("{}", e.lines().join("\n")));
        assert!(b.frontend("dns").is_none());
        assert!(b.frontend("extra").is_some());
        for bad in INVALID_CONFIGS {
            assert!(maglev_core::config::Config::from_yaml(bad, "bad").is_err());
        }
    }
}
