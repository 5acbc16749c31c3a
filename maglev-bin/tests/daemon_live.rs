//! Opt-in: the daemon scenarios against a real VPP, when
//! `MAGLEV_TEST_VPP_API` and `MAGLEV_TEST_VPP_STATS` name its sockets
//! (usually `/run/vpp/api.sock` and `/run/vpp/stats.sock`); without them
//! each test says so and passes, unless `MAGLEV_REQUIRE_VPP=1`.
//!
//! **These tests take the VPP over.** A daemon's full sync removes every VIP
//! that is not in its config, so they are for a VPP of their own: they run
//! one at a time (a lock), start from whatever VPP holds, and leave it with
//! no VIPs. What they read back comes from VPP's own dumps through a second
//! client; what only the simulator can show (flushes, bucket tables,
//! injected faults, restarts) is covered by the simulator tests.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use maglev_bin::daemon::{Daemon, Parts, Settings, VppSockets};
use maglev_bin::demo::HttpBackend;
use maglev_bin::demo::backends::start_on;
use maglev_vpp::Client;
use tokio::sync::Mutex;

/// One daemon at a time owns the VPP.
static VPP: Mutex<()> = Mutex::const_new(());

const PATIENCE: Duration = Duration::from_secs(30);

fn live() -> Option<VppSockets> {
    let api = std::env::var_os("MAGLEV_TEST_VPP_API");
    let stats = std::env::var_os("MAGLEV_TEST_VPP_STATS");
    match (api, stats) {
        (Some(api), Some(stats)) => Some(VppSockets {
            api: PathBuf::from(api),
            stats: Some(PathBuf::from(stats)),
        }),
        _ => {
            assert!(
                std::env::var_os("MAGLEV_REQUIRE_VPP").is_none(),
                "MAGLEV_REQUIRE_VPP is set but MAGLEV_TEST_VPP_API / MAGLEV_TEST_VPP_STATS are not"
            );
            eprintln!(
                "skipped: set MAGLEV_TEST_VPP_API and MAGLEV_TEST_VPP_STATS to run against a real VPP"
            );
            None
        }
    }
}

const CONFIG: &str = r#"
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
  backends:
    a: { address: 127.0.9.1, healthcheck: web }
    b: { address: 127.0.9.2, healthcheck: web }
    c: { address: 127.0.9.3, healthcheck: web }
  frontends:
{frontends}
"#;

const WEB: &str = r#"
    web:
      address: 192.0.2.90
      protocol: tcp
      port: 80
      src-ip-sticky: {sticky}
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
"#;

/// A VIP as VPP holds it: address, port, src-ip-sticky, AS weights.
type VipState = (String, u16, bool, Vec<(String, u8)>);
/// The same, as a test writes it down.
type WantVip<'a> = (&'a str, u16, bool, &'a [(&'a str, u8)]);

struct Live {
    _dir: tempfile::TempDir,
    path: PathBuf,
    port: u16,
    backends: Vec<HttpBackend>,
    reader: Client,
    daemon: Option<Daemon>,
}

impl Live {
    async fn start(sockets: VppSockets, frontends: &str) -> Live {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("maglev.yaml");
        let ips: Vec<IpAddr> = (1..=3).map(|i| IpAddr::from([127, 0, 9, i])).collect();
        let backends = start_on(&ips, 0).await.unwrap();
        let port = backends[0].addr().port();
        let reader = Client::connect(&sockets.api).await.unwrap();
        let mut live = Live {
            _dir: dir,
            path,
            port,
            backends,
            reader,
            daemon: None,
        };
        live.write(frontends);
        let mut settings = Settings::new(&live.path);
        settings.grpc_addr = None;
        settings.metrics_addr = None;
        settings.vpp = Some(sockets);
        settings.scrape_interval = Duration::from_millis(200);
        live.daemon = Some(Daemon::start(settings, Parts::default()).await.unwrap());
        live
    }

    fn write(&self, frontends: &str) {
        let text = CONFIG
            .replace("{port}", &self.port.to_string())
            .replace("{frontends}", frontends);
        std::fs::write(&self.path, text).unwrap();
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// VPP's VIPs (address, port, sticky) with their AS weights, from its
    /// own dumps.
    async fn read(&self) -> Vec<VipState> {
        let snap = self.reader.lb_snapshot().await.unwrap();
        snap.vips
            .iter()
            .map(|v| {
                let ases = snap
                    .ases
                    .iter()
                    .filter(|a| a.vip == v.key)
                    .map(|a| (a.address.to_string(), a.weight))
                    .collect();
                (v.key.address.to_string(), v.key.port, v.src_ip_sticky, ases)
            })
            .collect()
    }

    async fn until(&self, what: &str, want: &[WantVip<'_>]) {
        let want: Vec<VipState> = want
            .iter()
            .map(|(a, p, s, ases)| {
                (
                    a.to_string(),
                    *p,
                    *s,
                    ases.iter().map(|(x, w)| (x.to_string(), *w)).collect(),
                )
            })
            .collect();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            let got = self.read().await;
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}: VPP holds {got:?}"
            );
            tick.tick().await;
        }
    }

    /// Leaves VPP with no VIPs and stops.
    async fn finish(mut self) {
        self.write("    {}");
        assert!(self.daemon().handle().reload().await.ok());
        self.daemon().handle().sync(None).await.unwrap();
        self.until("every VIP is gone", &[]).await;
        self.daemon.take().unwrap().shutdown().await;
        let _ = self.reader.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_failover_operator_actions_and_reload() {
    let Some(sockets) = live() else { return };
    let _vpp = VPP.lock().await;
    let live = Live::start(sockets, &WEB.replace("{sticky}", "false")).await;
    let primary: &[(&str, u8)] = &[("127.0.9.1", 100), ("127.0.9.2", 100), ("127.0.9.3", 0)];
    live.until(
        "the primary pool carries traffic",
        &[("192.0.2.90", 80, false, primary)],
    )
    .await;

    live.backends[0].set_healthy(false);
    live.backends[1].set_healthy(false);
    live.until(
        "the fallback pool carries traffic",
        &[(
            "192.0.2.90",
            80,
            false,
            &[("127.0.9.1", 0), ("127.0.9.2", 0), ("127.0.9.3", 100)],
        )],
    )
    .await;
    live.backends[0].set_healthy(true);
    live.backends[1].set_healthy(true);
    live.until(
        "the primary pool is back",
        &[("192.0.2.90", 80, false, primary)],
    )
    .await;

    let h = live.daemon().handle();
    h.disable("a").unwrap();
    live.until(
        "a is disabled",
        &[(
            "192.0.2.90",
            80,
            false,
            &[("127.0.9.1", 0), ("127.0.9.2", 100), ("127.0.9.3", 0)],
        )],
    )
    .await;
    h.enable("a").unwrap();
    h.set_weight("web", "primary", "b", 30, true).await.unwrap();
    live.until(
        "a is back and b weighs 30",
        &[(
            "192.0.2.90",
            80,
            false,
            &[("127.0.9.1", 100), ("127.0.9.2", 30), ("127.0.9.3", 0)],
        )],
    )
    .await;

    // src-ip-sticky flips: the VIP is recreated; a second frontend arrives.
    live.write(&format!(
        "{}{}",
        WEB.replace("{sticky}", "true"),
        r#"
    dns:
      address: 192.0.2.91
      protocol: udp
      port: 53
      pools:
        - name: primary
          backends: { c: {} }
"#
    ));
    assert!(h.reload().await.ok());
    live.until(
        "web is sticky and dns is added",
        &[
            ("192.0.2.90", 80, true, primary),
            ("192.0.2.91", 53, false, &[("127.0.9.3", 100)]),
        ],
    )
    .await;
    live.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_counters_and_restart_neutrality() {
    let Some(sockets) = live() else { return };
    let _vpp = VPP.lock().await;
    let mut live = Live::start(sockets.clone(), &WEB.replace("{sticky}", "false")).await;
    let primary: &[(&str, u8)] = &[("127.0.9.1", 100), ("127.0.9.2", 100), ("127.0.9.3", 0)];
    live.until("programmed", &[("192.0.2.90", 80, false, primary)])
        .await;
    let info = live.daemon().handle().vpp().unwrap().info.clone();
    assert!(!info.version.is_empty());

    // A second daemon (after the first stopped) with a warm-up changes
    // nothing that health agrees with.
    live.daemon.take().unwrap().shutdown().await;
    let mut settings = Settings::new(&live.path);
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.vpp = Some(sockets);
    std::fs::write(
        &live.path,
        std::fs::read_to_string(&live.path)
            .unwrap()
            .replace("startup-min-delay: 0s", "startup-min-delay: 200ms")
            .replace("startup-max-delay: 0s", "startup-max-delay: 30s"),
    )
    .unwrap();
    live.daemon = Some(Daemon::start(settings, Parts::default()).await.unwrap());
    let h = live.daemon().handle().clone();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while h.warmup_phase() != maglev_core::warmup::Phase::Finished {
        assert!(
            tokio::time::Instant::now() < deadline,
            "warm-up never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.sync(None).await.unwrap().ops, [], "VPP already holds it");
    live.finish().await;
}
