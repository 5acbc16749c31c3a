//! maglevc against several routers: three daemons on three simulators
//! with the same config. `show fleet` agrees; a weight set on one node is
//! `differ: config` naming it; a backend failing only on one node's
//! probes is `differ: health`; a stopped daemon is `unreachable` while the
//! others are still shown. A write with `--server a,b,c --yes` reaches
//! every simulator and every node's audit trail; without `--yes` and
//! without a terminal it is refused. Lists get a NODE column, the rest a
//! section per node, and `--json` before the command works.

mod common;
mod maglevc_common;

use std::path::Path;

use common::{HEAD, PATIENCE, SimVipView, World, sim_vips};
use maglev_bin::daemon::{Daemon, Parts};
use maglev_bin::demo::SimVpp;
use maglevc_common::Run;

/// Two frontends on three backends; `{hc_b}` is backend b's health check.
const BODY: &str = r#"
    dead:
      type: http
      port: 1
      interval: 100ms
      timeout: 100ms
      rise: 1
      fall: 1
  backends:
    a: { address: 127.0.61.1, healthcheck: web }
    b: { address: 127.0.61.2, healthcheck: {hc_b} }
    c: { address: 127.0.61.3, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.10
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
    ssh:
      address: 192.0.2.11
      protocol: tcp
      port: 22
      pools:
        - name: only
          backends: { c: {} }
"#;

fn write(path: &Path, port: u16, hc_b: &str) {
    let text = format!("{HEAD}{BODY}")
        .replace("{port}", &port.to_string())
        .replace("{hc_b}", hc_b);
    std::fs::write(path, text).unwrap();
}

async fn maglevc(args: &[&str]) -> Run {
    maglevc_common::maglevc(args, &[]).await
}

/// `show fleet --json` (the global flag) until `cond` holds for it.
async fn fleet_until(
    servers: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = maglevc(&["--server", servers, "--json", "show", "fleet"]).await;
        assert_eq!(r.code, 0, "show fleet: {} {}", r.stdout, r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("show fleet --json: {e}: {}", r.stdout));
        if cond(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}: {v:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A frontend's verdict and the nodes it names.
fn verdict(v: &serde_json::Value, frontend: &str) -> (String, Vec<String>) {
    let f = v["frontends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == frontend)
        .unwrap_or_else(|| panic!("no {frontend} in {v:#}"));
    let nodes = f["verdict_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    (f["verdict"].as_str().unwrap().to_owned(), nodes)
}

fn is(v: &serde_json::Value, frontend: &str, kind: &str, nodes: &[&str]) -> bool {
    verdict(v, frontend)
        == (
            kind.to_owned(),
            nodes.iter().map(|n| (*n).to_owned()).collect(),
        )
}

/// Every node holds every frontend with a table VPP holds.
fn all_held(v: &serde_json::Value) -> bool {
    v["frontends"].as_array().unwrap().iter().all(|f| {
        f["nodes"].as_array().unwrap().iter().all(|n| {
            n["frontend"]["table_fingerprint"]
                .as_u64()
                .is_some_and(|t| t != 0)
        })
    })
}

/// The weight of AS `address` in the simulator's VIP `vip`.
fn sim_weight(vips: &[SimVipView], vip: &str, address: &str) -> Option<u8> {
    vips.iter()
        .find(|v| v.key.address.to_string() == vip)
        .and_then(|v| v.ases.iter().find(|(a, _)| a == address).map(|(_, w)| *w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_routers_agree_differ_and_take_one_write() {
    let world = World::new(61, 3).await;
    let dir = world.dir.path().to_owned();
    let port = world.port;
    // Node a runs on the world's simulator; b and c on their own.
    let mut sims: Vec<SimVpp> = Vec::new();
    for n in ["b", "c"] {
        let d = dir.join(n);
        std::fs::create_dir_all(&d).unwrap();
        sims.push(
            SimVpp::start(&d, 1, Some(std::time::Duration::from_millis(50)))
                .await
                .unwrap(),
        );
    }
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let path = dir.join(format!("{n}.yaml"));
        write(&path, port, "web");
        let mut s = world.settings();
        s.config_path = path;
        s.grpc_addr = Some("127.0.0.1:0".into());
        if i > 0 {
            s.vpp = Some(sims[i - 1].sockets());
        }
        let d = Daemon::start(s, Parts::default()).await.unwrap();
        addrs.push(d.grpc_addrs()[0].to_string());
        daemons.push(d);
    }
    let servers = format!("a={},b={},c={}", addrs[0], addrs[1], addrs[2]);
    let s = servers.as_str();

    // The same config everywhere: agree, once every VPP holds the tables.
    let v = fleet_until(s, "every node holds every table and agrees", |v| {
        all_held(v) && is(v, "web", "agree", &[]) && is(v, "ssh", "agree", &[])
    })
    .await;
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3, "{v:#}");
    let r = maglevc(&["--server", s, "show", "fleet"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("web ") || l.starts_with("ssh "))
        .collect();
    assert_eq!(rows.len(), 6, "{}", r.stdout);
    assert!(rows.iter().all(|l| l.ends_with(" agree")), "{}", r.stdout);

    // Lists: one table with a NODE column; the rest a section per node.
    let r = maglevc(&["--server", s, "show", "frontends"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let head: Vec<&str> = r
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(head[..2], ["NODE", "NAME"], "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 7, "{}", r.stdout);
    let r = maglevc(&["--server", s, "show", "node"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (n, addr) in ["a", "b", "c"].iter().zip(&addrs) {
        assert!(
            r.stdout.contains(&format!("== {n} ({addr}) ==")),
            "{}",
            r.stdout
        );
    }
    let r = maglevc(&["--server", s, "--json", "show", "backends"]).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[2]["node"], "c", "{v:#}");
    assert_eq!(v[2]["reply"]["backends"][0]["name"], "a", "{v:#}");

    // One server: `--json` before the command is the command's own.
    let one = maglevc(&["--server", &addrs[0], "--json", "show", "frontends"]).await;
    let own = maglevc(&["--server", &addrs[0], "show", "frontends", "--json"]).await;
    assert_eq!((one.code, &one.stdout), (0, &own.stdout), "{}", one.stderr);
    let r = maglevc(&["--server", &addrs[0], "--json", "help"]).await;
    assert_eq!(r.code, 2, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("has no JSON output"), "{}", r.stderr);

    // A weight set on node b only: its config differs, and it is named.
    let r = maglevc(&[
        "--server", &addrs[1], "set", "frontend", "web", "pool", "primary", "backend", "a",
        "weight", "50",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = fleet_until(s, "web differs in config on b", |v| {
        is(v, "web", "differ: config", &["b"])
    })
    .await;
    assert!(is(&v, "ssh", "agree", &[]), "{v:#}");
    let r = maglevc(&[
        "--server", &addrs[1], "clear", "override", "frontend", "web", "pool", "primary",
        "backend", "a",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    fleet_until(s, "web agrees again", |v| {
        all_held(v) && is(v, "web", "agree", &[])
    })
    .await;

    // A write to several needs --yes without a terminal.
    let r = maglevc(&["--server", s, "set", "backend", "a", "disable"]).await;
    assert_eq!(r.code, 2, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("give --yes"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    // With it, every node takes it, and each answer is shown.
    let r = maglevc(&["--server", s, "--yes", "set", "backend", "a", "disable"]).await;
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.matches("backend a is now disabled").count(),
        3,
        "{}",
        r.stdout
    );
    let until_disabled = |vpp: &SimVpp| sim_weight(&sim_vips(vpp), "192.0.2.10", "127.0.61.1");
    common::until("a is out of web in all three simulators", || {
        until_disabled(&world.vpp) == Some(0)
            && sims.iter().all(|sim| until_disabled(sim) == Some(0))
    })
    .await;
    for d in &daemons {
        let m = maglev_bin::metrics::render(d.handle());
        assert!(
            m.lines().any(|l| l.starts_with("maglev_grpc_writes_total{")
                && l.contains("rpc=\"DisableBackend\"")
                && l.contains("result=\"success\"")
                && l.ends_with(" 1")),
            "every node audited the write once: {m}"
        );
    }
    // A node refusing fails the command (exit 1), and says which.
    let r = maglevc(&["--server", s, "--yes", "set", "backend", "nope", "disable"]).await;
    assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("failed on 3 of 3 servers"),
        "{}",
        r.stderr
    );
    let r = maglevc(&["--server", s, "--yes", "set", "backend", "a", "enable"]).await;
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    fleet_until(s, "web agrees with a back", |v| {
        all_held(v) && is(v, "web", "agree", &[])
    })
    .await;

    // Backend b fails only on node c's probes: same config, other table.
    write(&dir.join("c.yaml"), port, "dead");
    let r = maglevc(&["--server", &addrs[2], "config", "reload"]).await;
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    let v = fleet_until(s, "web differs in health on c", |v| {
        is(v, "web", "differ: health", &["c"])
    })
    .await;
    assert!(is(&v, "ssh", "agree", &[]), "{v:#}");

    // Node c stops: unreachable, and a and b are still compared and shown.
    daemons.pop().unwrap().shutdown().await;
    let v = fleet_until(s, "c is unreachable", |v| {
        is(v, "web", "unreachable", &["c"])
    })
    .await;
    assert!(is(&v, "ssh", "unreachable", &["c"]), "{v:#}");
    assert!(v["nodes"][2]["error"].is_string(), "{v:#}");
    let r = maglevc(&["--server", s, "show", "fleet"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("unreachable: "), "{}", r.stdout);
    let a_rows = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("web ") && l.contains(" up "))
        .count();
    assert_eq!(a_rows, 2, "{}", r.stdout);

    for d in daemons {
        d.shutdown().await;
    }
    for sim in sims {
        sim.stop().await;
    }
    world.stop().await;
}
