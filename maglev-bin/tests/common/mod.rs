//! The end-to-end world: a simulated VPP, loopback HTTP backends, a config
//! file, and the real daemon against them, with waits on explicit
//! conditions (never sleeps).

#![allow(dead_code, reason = "each test binary uses a part of the world")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use maglev_bin::daemon::{Daemon, Parts, Settings};
use maglev_bin::demo::backends::start_on;
use maglev_bin::demo::{HttpBackend, SimVpp};

/// The head of the tests' configs: VPP's LB section with warm-up off and
/// a quick HTTP check `web` on the backends' port (`{port}`).
pub const HEAD: &str = r#"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: 0s
      startup-max-delay: 0s
  healthchecks:
    web:
      type: http
      port: {port}
      interval: 100ms
      timeout: 100ms
      rise: 1
      fall: 1
"#;

/// [`HEAD`] with its `vpp.lb` section extended by `lb`: indented lines
/// (six spaces), each ending in a newline, e.g. `"      sync-interval: 1h\n"`.
pub fn head_with_lb(lb: &str) -> String {
    HEAD.replace(
        "      startup-min-delay: 0s",
        &format!("{lb}      startup-min-delay: 0s"),
    )
}

/// Daemon parts whose event hub is subscribed to before the daemon
/// starts: nothing it publishes is missed.
pub fn parts_with_hub() -> (Parts, maglev_bin::events::Subscription) {
    let hub = maglev_bin::events::EventHub::new();
    let events = hub.subscribe(None);
    let parts = Parts {
        hub,
        ..Parts::default()
    };
    (parts, events)
}

/// How long any condition may take before a test fails. Generous: it only
/// bounds a hang, nothing is timed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The daemon and everything around it.
pub struct World {
    pub dir: tempfile::TempDir,
    pub vpp: SimVpp,
    pub backends: Vec<HttpBackend>,
    pub port: u16,
    pub daemon: Option<Daemon>,
}

impl World {
    /// A simulated VPP and `n` backends on 127.0.<net>.1..n, all healthy.
    pub async fn new(net: u8, n: u8) -> World {
        let dir = tempfile::tempdir().unwrap();
        let vpp = SimVpp::start(dir.path(), 1, Some(Duration::from_millis(50)))
            .await
            .unwrap();
        let ips: Vec<IpAddr> = (1..=n).map(|i| IpAddr::from([127, 0, net, i])).collect();
        let backends = start_on(&ips, 0).await.unwrap();
        let port = backends[0].addr().port();
        World {
            dir,
            vpp,
            backends,
            port,
            daemon: None,
        }
    }

    /// Starts one more healthy backend on `ip` at the world's port.
    pub async fn add_backend(&mut self, ip: &str) {
        let b = HttpBackend::start(std::net::SocketAddr::new(ip.parse().unwrap(), self.port))
            .await
            .unwrap();
        self.backends.push(b);
    }

    /// Replaces the simulator with a fresh, empty one (with a socket
    /// directory of its own): a VPP that restarted while no daemon ran.
    pub async fn fresh_vpp(&mut self) {
        let dir = (2..)
            .map(|i| self.dir.path().join(format!("vpp{i}")))
            .find(|d| !d.exists())
            .expect("a free name");
        std::fs::create_dir(&dir).unwrap();
        let fresh = SimVpp::start(&dir, 1, Some(Duration::from_millis(50)))
            .await
            .unwrap();
        std::mem::replace(&mut self.vpp, fresh).stop().await;
    }

    /// The config path the daemon reads.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("maglev.yaml")
    }

    /// Writes the config; `{port}` is replaced by the backends' port.
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(
            self.config_path(),
            yaml.replace("{port}", &self.port.to_string()),
        )
        .unwrap();
    }

    /// Writes [`HEAD`] followed by `body` (backends and frontends).
    pub fn write_body(&self, body: &str) {
        self.write_config(&format!("{HEAD}{body}"));
    }

    /// Settings for a daemon on this world: no gRPC or metrics listener
    /// unless a test asks, quick scrapes.
    pub fn settings(&self) -> Settings {
        let mut s = Settings::new(self.config_path());
        s.grpc_addr = None;
        s.metrics_addr = None;
        s.vpp = Some(self.vpp.sockets());
        s.scrape_interval = Duration::from_millis(100);
        s.reconnect_interval = Duration::from_millis(100);
        s
    }

    /// Starts the daemon with `settings`.
    pub async fn start(&mut self, settings: Settings) -> &Daemon {
        self.start_with(settings, Parts::default()).await
    }

    /// Starts the daemon with `settings` and `parts` (e.g. a hub already
    /// subscribed to, to see every event from the start).
    pub async fn start_with(&mut self, settings: Settings, parts: Parts) -> &Daemon {
        let daemon = Daemon::start(settings, parts).await.unwrap();
        self.daemon = Some(daemon);
        self.daemon.as_ref().unwrap()
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("started")
    }

    /// The simulator's AS weights of the VIP at `vip` (address text), by
    /// AS address.
    pub fn weights(&self, vip: &str) -> Vec<(String, u8)> {
        let vip: IpAddr = vip.parse().unwrap();
        self.vpp.sim.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used && v.key.address == vip)
                .flat_map(|(_, v)| {
                    v.ases
                        .iter()
                        .flatten()
                        .filter(|a| a.used)
                        .map(|a| (a.address.to_string(), a.weight))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
    }

    pub async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
        self.vpp.stop().await;
    }
}

/// Waits until `cond` holds, re-checking whenever the simulator changes or
/// an event is published; fails the test after [`PATIENCE`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        if cond() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        tick.tick().await;
    }
}

/// What the simulator holds for one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimVipView {
    pub key: maglev_core::dataplane::VipKey,
    pub vip_type: &'static str,
    pub src_ip_sticky: bool,
    pub ases: Vec<(String, u8)>,
    pub buckets: Vec<Option<IpAddr>>,
}

impl World {
    /// Every live VIP of the simulator, in key order.
    pub fn vips(&self) -> Vec<SimVipView> {
        sim_vips(&self.vpp)
    }

    /// The flushes the simulator carried out, as (VIP address, AS address).
    pub fn flushes(&self) -> Vec<(String, String)> {
        self.vpp.sim.with_model(|m| {
            m.flushes()
                .iter()
                .map(|(k, a)| (k.address.to_string(), a.to_string()))
                .collect()
        })
    }

    pub fn handle(&self) -> &maglev_bin::daemon::Handle {
        self.daemon().handle()
    }

    /// Waits until every frontend's drift is known (`Some`): the
    /// reconciler's read after it created VIPs is done, so a dump fault
    /// injected next cannot be taken by that read.
    pub async fn until_drift_read(&self) {
        until("every frontend's drift is read", || {
            let h = self.handle();
            h.config()
                .frontends()
                .keys()
                .all(|f| h.table(f).is_some_and(|t| t.drift.is_some()))
        })
        .await;
    }
}

/// Every live VIP of a simulated VPP, in key order, with its buckets.
pub fn sim_vips(vpp: &SimVpp) -> Vec<SimVipView> {
    let mut v: Vec<SimVipView> = vpp.sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| SimVipView {
                key: v.key,
                vip_type: v.vip_type,
                src_ip_sticky: v.src_ip_sticky,
                ases: v
                    .ases
                    .iter()
                    .flatten()
                    .filter(|a| a.used)
                    .map(|a| (a.address.to_string(), a.weight))
                    .collect(),
                buckets: v.table.buckets().to_vec(),
            })
            .collect()
    });
    for vip in &mut v {
        vip.ases.sort_by_key(|(a, _)| a.parse::<IpAddr>().unwrap());
    }
    v.sort_by_key(|x| x.key);
    v
}

/// `(address, weight)` pairs as the simulator reports them.
pub fn w(list: &[(&str, u8)]) -> Vec<(String, u8)> {
    list.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}
