//! The embedding examples under `examples/`, run against the simulator.
//!
//! Each example keeps its whole logic in `run(args) -> Result<String>` and
//! its `main` only prints what `run` returns, so each file is compiled here
//! as a module and `run` is called with the simulator's sockets: the test
//! needs no built example binary and no `cargo` (it works under `cargo test
//! --test examples` as under the whole suite), and the examples still
//! build as examples (`cargo build --examples`, clippy `--all-targets`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use maglev_core::dataplane::{Encap, Protocol, VipKey};
use maglev_vpp::Client;
use maglev_vpp::sim::{Sim, SimConfig};
use maglev_vpp::stats::sim::{self as stats_sim, ServeOptions, SimStats, StatsListener};
use tokio_util::sync::CancellationToken;

#[path = "../examples/vpp_list.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
mod vpp_list;

#[path = "../examples/vpp_counters.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
mod vpp_counters;

#[path = "../examples/vpp_plan.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
mod vpp_plan;

/// An API simulator and a stats segment wired together, the stats one
/// served on a `stats.sock` without trickle or heartbeat, so counters move
/// only when the test sends packets.
struct Vpp {
    dir: PathBuf,
    sim: Sim,
    stats: SimStats,
    client: Client,
    stop: CancellationToken,
}

impl Vpp {
    async fn start(tag: &str) -> Vpp {
        let dir =
            std::env::temp_dir().join(format!("maglev-examples-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stats = SimStats::new(2).unwrap();
        let sim = Sim::start(SimConfig::new(dir.join("api.sock")))
            .await
            .unwrap();
        sim.set_observer(Arc::new(stats.clone()));
        let listener = StatsListener::bind(dir.join("stats.sock")).unwrap();
        let stop = CancellationToken::new();
        let quiet = ServeOptions {
            trickle: None,
            heartbeat: None,
        };
        tokio::spawn(stats_sim::run(
            listener,
            stats.clone(),
            quiet,
            stop.clone().cancelled_owned(),
        ));
        let client = Client::connect(dir.join("api.sock")).await.unwrap();
        Vpp {
            dir,
            sim,
            stats,
            client,
            stop,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    async fn add_vip(&self, key: &VipKey, ases: &[(&str, u8)]) {
        self.client.add_vip(key, Encap::Gre4, false).await.unwrap();
        for &(address, weight) in ases {
            let address = address.parse().unwrap();
            self.client.add_as(key, address, weight).await.unwrap();
        }
    }

    async fn stop(mut self) {
        self.client.close().await.unwrap();
        self.stop.cancel();
        self.sim.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn web() -> VipKey {
    VipKey::host("192.0.2.1".parse().unwrap(), Some(Protocol::Tcp), 80)
}

fn dns() -> VipKey {
    VipKey::host("192.0.2.53".parse().unwrap(), Some(Protocol::Udp), 53)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn vpp_list_prints_the_vips_and_ases_the_simulator_holds() {
    let vpp = Vpp::start("list").await;
    vpp.add_vip(&web(), &[("10.0.0.2", 50), ("10.0.0.1", 100)])
        .await;
    vpp.add_vip(&dns(), &[]).await;

    let out = vpp_list::run(&args(&[&vpp.path("api.sock")]))
        .await
        .unwrap();

    // What the simulator holds: pool indexes and each AS's share of the
    // 1024 buckets of its Maglev table (about 2:1 here).
    let pool = |key: &VipKey| vpp.sim.with_model(|m| m.pool_index(key)).unwrap();
    let buckets = |address: &str| {
        let address = address.parse().unwrap();
        vpp.sim
            .with_model(|m| m.vip_mut(&web()).map(|v| v.buckets_of(address)))
            .unwrap()
    };
    assert_eq!(buckets("10.0.0.1") + buckets("10.0.0.2"), 1024);
    assert_eq!(
        out,
        format!(
            "192.0.2.1/32 tcp/80 encap gre4 table 1024 pool-index {}\n\
             \x20 as 10.0.0.1 weight 100 buckets {}\n\
             \x20 as 10.0.0.2 weight 50 buckets {}\n\
             192.0.2.53/32 udp/53 encap gre4 table 1024 pool-index {}\n",
            pool(&web()),
            buckets("10.0.0.1"),
            buckets("10.0.0.2"),
            pool(&dns()),
        )
    );
    vpp.stop().await;
}

#[tokio::test]
async fn vpp_counters_prints_the_packets_sent_to_each_vip() {
    let vpp = Vpp::start("counters").await;
    vpp.add_vip(&web(), &[("10.0.0.1", 100)]).await;
    vpp.add_vip(&dns(), &[]).await;
    let snapshot = vpp.client.lb_snapshot().await.unwrap();
    let (web_pool, dns_pool) = (
        snapshot.pool_index(&web()).unwrap(),
        snapshot.pool_index(&dns()).unwrap(),
    );
    // web: a flow of 3 packets (300 bytes) on each of two workers; dns has
    // no AS, so its 5 packets count as no-server.
    for thread in [1, 2] {
        vpp.stats.send(web_pool, thread, 3, 300).unwrap();
    }
    vpp.stats.send(dns_pool, 1, 5, 500).unwrap();

    let out = vpp_counters::run(&args(&[&vpp.path("api.sock"), &vpp.path("stats.sock")]))
        .await
        .unwrap();

    assert_eq!(
        out,
        "192.0.2.1/32 tcp/80 first 2 next 4 untracked 0 no-server 0 route 6 packets 600 bytes\n\
         192.0.2.53/32 udp/53 first 0 next 0 untracked 0 no-server 5 route 5 packets 500 bytes\n"
    );
    vpp.stop().await;
}

const PLAN_CONFIG: &str = "\
maglev:
  backends:
    web1: { address: 10.0.0.1 }
    web2: { address: 10.0.0.2 }
    web3: { address: 10.0.0.3 }
  frontends:
    web:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends:
            web1: {}
            web2: { weight: 50 }
        - name: fallback
          backends:
            web3: {}
    dns:
      address: 192.0.2.53
      protocol: udp
      port: 53
      pools:
        - name: all
          backends:
            web3: {}
";

#[tokio::test]
async fn vpp_plan_prints_the_ops_of_a_sync_and_sends_none() {
    let vpp = Vpp::start("plan").await;
    // web is there with web2 at the wrong weight; dns is missing; a VIP
    // the config does not know is there.
    vpp.add_vip(&web(), &[("10.0.0.1", 100), ("10.0.0.2", 100)])
        .await;
    let stray = VipKey::host("192.0.2.99".parse().unwrap(), Some(Protocol::Tcp), 443);
    vpp.add_vip(&stray, &[("10.0.0.9", 100)]).await;
    let config = vpp.dir.join("maglev.yaml");
    std::fs::write(&config, PLAN_CONFIG).unwrap();
    let config = config.display().to_string();
    let before = vpp.client.lb_snapshot().await.unwrap();

    let out = vpp_plan::run(&args(&[&config, &vpp.path("api.sock")]))
        .await
        .unwrap();
    assert_eq!(
        out,
        "delete as 10.0.0.9 from 192.0.2.99/32 tcp/443 flush\n\
         delete vip 192.0.2.99/32 tcp/443\n\
         set as 10.0.0.2 weight 50 on 192.0.2.1/32 tcp/80\n\
         add as 10.0.0.3 weight 0 to 192.0.2.1/32 tcp/80\n\
         create vip 192.0.2.53/32 udp/53 encap gre4 table 1024\n\
         add as 10.0.0.3 weight 100 to 192.0.2.53/32 udp/53\n"
    );

    // web1 and web2 down: web fails over to its fallback pool, and the
    // down backends' flows are flushed (flush-on-down is the default).
    let out = vpp_plan::run(&args(&[&config, &vpp.path("api.sock"), "web1", "web2"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        "delete as 10.0.0.9 from 192.0.2.99/32 tcp/443 flush\n\
         delete vip 192.0.2.99/32 tcp/443\n\
         set as 10.0.0.1 weight 0 on 192.0.2.1/32 tcp/80 flush\n\
         set as 10.0.0.2 weight 0 on 192.0.2.1/32 tcp/80 flush\n\
         add as 10.0.0.3 weight 100 to 192.0.2.1/32 tcp/80\n\
         create vip 192.0.2.53/32 udp/53 encap gre4 table 1024\n\
         add as 10.0.0.3 weight 100 to 192.0.2.53/32 udp/53\n"
    );

    assert_eq!(
        vpp.client.lb_snapshot().await.unwrap(),
        before,
        "a dry run changes nothing in VPP"
    );
    vpp.stop().await;
}

#[tokio::test]
async fn examples_say_how_to_use_them() {
    let err = vpp_list::run(&[]).await.unwrap_err();
    assert_eq!(err.to_string(), "usage: vpp_list API_SOCKET");
    let err = vpp_counters::run(&args(&["api.sock"])).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "usage: vpp_counters API_SOCKET STATS_SOCKET"
    );
    let err = vpp_plan::run(&args(&["maglev.yaml"])).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "usage: vpp_plan CONFIG API_SOCKET [DOWN_BACKEND...]"
    );
    let missing = Path::new("/nonexistent/maglev.yaml").display().to_string();
    let err = vpp_plan::run(&args(&[&missing, "api.sock"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/maglev.yaml: "),
        "{err}"
    );
}
