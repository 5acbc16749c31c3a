//! Announcements end to end, with the real routing engine: BIRD A learns
//! kernel table 200 of namespace A with the user guide's BIRD 2 snippet
//! and exports it over eBGP to BIRD B (see `bird_common`); the tests
//! assert on BIRD B's routes (`birdc show route`).
//!
//! First with routes of the test's own (blackhole host routes, protocol
//! 201, as maglevd writes them): BIRD learns them and exports them, and
//! nothing else of the table. Then with the real `maglevd` in the root
//! namespace (`maglev.announce.netns` = A), on the VPP simulator
//! (`maglev-vppsim`) with backends on loopback: the VIP is on B while its
//! frontend serves; gone when its last backend fails and back on recovery;
//! gone on `maglevc set node drain` and back on `undrain`; gone after the
//! VPP grace period when the simulator goes away and back when it returns;
//! and not withdrawn across a restart of maglevd (its age on B unchanged).
//! An IPv6 VIP beside it goes through BIRD's `maglev6` protocol (on B at
//! start, gone on drain, back on undrain, unchanged by the restart).
//!
//! Needs root, iproute2 and BIRD 2: without them each test says why and
//! passes, unless `MAGLEV_REQUIRE_BIRD=1` (CI).

mod bird_common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bird_common::{PATIENCE, Peering, skip};
use maglev_bin::demo::HttpBackend;
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use tokio::time::Instant;

/// The peering, or `None` (said why) when this machine cannot run it.
async fn peering() -> Option<Peering> {
    match Peering::start().await {
        Ok(p) => Some(p),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

#[test]
fn routes_are_parsed_from_birdc() {
    let text = "BIRD 2.0.12 ready.\nTable master4:\n\
                192.0.2.1/32         unicast [peer 2026-12-07 16:21:37.010] * (100) [AS65001i]\n\
                \tvia 169.254.77.1 on veth1\n";
    assert_eq!(
        bird_common::parse_route(text, "192.0.2.1/32"),
        Some(bird_common::Route {
            kind: "unicast".into(),
            proto: "peer".into(),
            since: "2026-12-07 16:21:37.010".into(),
        })
    );
    let text = "Table master6:\n\
                2001:db8::1/128      unicast [peer 2026-12-07 16:21:37.054 from 169.254.77.1] * (100) [AS65001i]\n";
    assert_eq!(
        bird_common::parse_route(text, "2001:db8::1/128")
            .unwrap()
            .since,
        "2026-12-07 16:21:37.054"
    );
    assert_eq!(
        bird_common::parse_route("BIRD 2.0.12 ready.\nNetwork not found\n", "192.0.2.1/32"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bird_learns_blackhole_routes_of_table_200_and_exports_them_over_bgp() {
    let Some(p) = peering().await else { return };
    let add = |family: &str, prefix: &str, proto: &str, table: &str| {
        p.ip_a(&[
            family,
            "route",
            "add",
            "blackhole",
            prefix,
            "proto",
            proto,
            "table",
            table,
        ])
        .unwrap();
    };
    // maglevd's routes: blackhole host routes, protocol 201, table 200.
    add("-4", "192.0.2.1/32", "201", "200");
    add("-6", "2001:db8::1/128", "201", "200");
    // Not maglevd's: another protocol in its table, its protocol in
    // another table.
    add("-4", "192.0.2.2/32", "4", "200");
    add("-4", "192.0.2.3/32", "201", "201");

    let v4 = p.until_on_b("192.0.2.1/32").await;
    assert_eq!((v4.kind.as_str(), v4.proto.as_str()), ("unicast", "peer"));
    let learned = p
        .bird_a
        .route("192.0.2.1/32")
        .await
        .expect("BIRD A learned it");
    assert_eq!(
        (learned.kind.as_str(), learned.proto.as_str()),
        ("blackhole", "maglev4")
    );
    let v6 = p.until_on_b("2001:db8::1/128").await;
    assert_eq!(v6.proto, "peer");
    // BIRD A learned the others too, and exports only maglevd's.
    p.until("BIRD A has learned 192.0.2.2/32", || async {
        p.bird_a.route("192.0.2.2/32").await.is_some()
    })
    .await;
    let exported = p
        .bird_a
        .birdc(&["show", "route", "export", "peer", "table", "all"])
        .await
        .unwrap();
    assert!(exported.contains("192.0.2.1/32"), "{exported}");
    assert!(exported.contains("2001:db8::1/128"), "{exported}");
    assert!(!exported.contains("192.0.2.2/32"), "{exported}");
    assert!(!exported.contains("192.0.2.3/32"), "{exported}");
    assert_eq!(p.on_b("192.0.2.2/32").await, None);
    assert_eq!(p.on_b("192.0.2.3/32").await, None);

    // Deleted, it leaves B; added again, it comes back.
    p.ip_a(&[
        "-4",
        "route",
        "del",
        "192.0.2.1/32",
        "proto",
        "201",
        "table",
        "200",
    ])
    .unwrap();
    p.until_gone_from_b("192.0.2.1/32").await;
    add("-4", "192.0.2.1/32", "201", "200");
    p.until_on_b("192.0.2.1/32").await;
    p.ip_a(&[
        "-6",
        "route",
        "del",
        "2001:db8::1/128",
        "proto",
        "201",
        "table",
        "200",
    ])
    .unwrap();
    p.until_gone_from_b("2001:db8::1/128").await;
}

/// A child process killed (and reaped) on drop.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    /// SIGTERM, and waits until it has exited cleanly.
    async fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let name = self.name;
        until(&format!("{name} exits"), || {
            self.child.try_wait().unwrap().is_some_and(|status| {
                assert!(status.success(), "{name} exited with {status}");
                true
            })
        })
        .await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds; fails after [`PATIENCE`].
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `maglev-vppsim` on `dir`'s sockets, once its API socket is there.
async fn vppsim(dir: &Path) -> Proc {
    let api = dir.join("api.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_maglev-vppsim"))
        .arg("--api-socket")
        .arg(&api)
        .arg("--stats-socket")
        .arg(dir.join("stats.sock"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sim = Proc {
        child,
        name: "maglev-vppsim",
    };
    until("the simulator listens", || api.exists()).await;
    sim
}

/// The real maglevd and the log lines it printed (JSON).
struct Maglevd {
    proc: Proc,
    grpc: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts `maglevd` on `dir`'s config, simulator and state file, and waits
/// for its `started` line (which says where gRPC listens).
async fn maglevd(dir: &Path) -> Maglevd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--config")
        .arg(dir.join("maglev.yaml"))
        .args(["--grpc-addr", "127.0.0.1:0", "--metrics-addr", ""])
        .arg("--vpp-api-addr")
        .arg(dir.join("api.sock"))
        .arg("--vpp-stats-addr")
        .arg(dir.join("stats.sock"))
        .arg("--state-file")
        .arg(dir.join("state.json"))
        .args(["--log-format", "json", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let proc = Proc {
        child,
        name: "maglevd",
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let lines = log.clone();
    // Its log, read on a thread of its own to the end.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(record) = serde_json::from_str::<serde_json::Value>(&line)
                && record["message"] == "started"
                && let Some(grpc) = record["grpc"].as_str()
            {
                let _ = tx.send(grpc.trim_matches(['[', ']']).to_owned());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let grpc = match tokio::time::timeout(PATIENCE, rx.recv()).await {
        Ok(Some(addr)) => addr.parse().unwrap(),
        _ => panic!("maglevd did not start:\n{}", log.lock().unwrap().join("\n")),
    };
    Maglevd { proc, grpc, log }
}

impl Maglevd {
    /// `maglevc --server <its gRPC> <args>`, which must succeed.
    async fn maglevc(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglevc"))
            .arg("--server")
            .arg(self.grpc.to_string())
            .args(args)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "maglevc {}: {text}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Its announcement of `prefix` (ListAnnouncements), if it has one.
    async fn announcement(&self, prefix: &str) -> Option<proto::Announcement> {
        let mut client = MaglevClient::connect(format!("http://{}", self.grpc))
            .await
            .ok()?;
        let list = client
            .list_announcements(proto::ListAnnouncementsRequest::default())
            .await
            .ok()?
            .into_inner();
        list.announcements.into_iter().find(|a| a.prefix == prefix)
    }

    /// Why it keeps `prefix` withdrawn (e.g. `drained`).
    async fn reason(&self, prefix: &str) -> String {
        let a = self.announcement(prefix).await.expect("an announcement");
        assert!(!a.announced, "{a:?}");
        a.reason
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// The config: a frontend on 192.0.2.77 with one HTTP-checked backend on
/// `backend`, one on 2001:db8::77 with one on `[::1]` (same port),
/// announced in table 200 of namespace `netns` with short timings
/// (min-interval 1s, vpp-grace 2s).
fn config(netns: &str, backend: SocketAddr) -> String {
    format!(
        r#"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: 0s
      startup-max-delay: 0s
  announce:
    table: 200
    protocol: 201
    netns: {netns}
    min-interval: 1s
    vpp-grace: 2s
  healthchecks:
    web:
      type: http
      port: {port}
      interval: 100ms
      timeout: 100ms
      rise: 1
      fall: 1
  backends:
    a: {{ address: {ip}, healthcheck: web }}
    b6: {{ address: "::1", healthcheck: web }}
  frontends:
    web:
      address: 192.0.2.77
      protocol: tcp
      port: 80
      pools:
        - name: main
          backends: {{ a: {{}} }}
    web6:
      address: 2001:db8::77
      protocol: tcp
      port: 80
      pools:
        - name: main
          backends: {{ b6: {{}} }}
"#,
        port = backend.port(),
        ip = backend.ip(),
    )
}

const VIP: &str = "192.0.2.77/32";
const VIP6: &str = "2001:db8::77/128";

/// Waits until BIRD B holds the VIP (`present`) or not; on a timeout the
/// failure shows maglevd's log.
async fn on_b(p: &Peering, daemon: &Maglevd, present: bool, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while p.on_b(VIP).await.is_some() != present {
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; maglevd's log:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglevd_announces_through_bird_while_it_can_serve() {
    let Some(p) = peering().await else { return };
    let backend = HttpBackend::start("127.0.77.1:0".parse().unwrap())
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_owned();
    let backend6 = HttpBackend::start(SocketAddr::new(
        "::1".parse().unwrap(),
        backend.addr().port(),
    ))
    .await
    .unwrap();
    std::fs::write(dir.join("maglev.yaml"), config(&p.a.0, backend.addr())).unwrap();
    let sim = vppsim(&dir).await;
    let mut daemon = maglevd(&dir).await;

    // Serving: announced.
    on_b(
        &p,
        &daemon,
        true,
        "the VIP is on B while its frontend serves",
    )
    .await;
    p.until_on_b(VIP6).await;

    // The last backend fails: withdrawn; it recovers: back.
    backend.set_healthy(false);
    on_b(
        &p,
        &daemon,
        false,
        "the VIP leaves B when its last backend fails",
    )
    .await;
    assert_eq!(daemon.reason(VIP).await, "nothing-serves");
    backend.set_healthy(true);
    on_b(
        &p,
        &daemon,
        true,
        "the VIP is back on B when the backend recovers",
    )
    .await;

    // Drained: withdrawn; undrained: back.
    daemon.maglevc(&["set", "node", "drain"]).await;
    on_b(
        &p,
        &daemon,
        false,
        "the VIP leaves B when the node is drained",
    )
    .await;
    assert_eq!(daemon.reason(VIP).await, "drained");
    p.until_gone_from_b(VIP6).await;
    daemon.maglevc(&["set", "node", "undrain"]).await;
    on_b(
        &p,
        &daemon,
        true,
        "the VIP is back on B when the node is undrained",
    )
    .await;
    p.until_on_b(VIP6).await;

    // VPP goes away: withdrawn after the grace period; back with VPP.
    sim.terminate().await;
    on_b(
        &p,
        &daemon,
        false,
        "the VIP leaves B once VPP has been away for the grace period",
    )
    .await;
    assert_eq!(daemon.reason(VIP).await, "vpp-unreachable");
    let sim = vppsim(&dir).await;
    on_b(&p, &daemon, true, "the VIP is back on B when VPP returns").await;

    // A restart: SIGTERM leaves the route, the new maglevd adopts it; B's
    // route keeps its age (it was never withdrawn nor sent again).
    let before = p.on_b(VIP).await.unwrap();
    let before6 = p.until_on_b(VIP6).await;
    daemon.proc.terminate().await;
    assert_eq!(
        p.on_b(VIP).await,
        Some(before.clone()),
        "SIGTERM withdrew the VIP"
    );
    daemon = maglevd(&dir).await;
    let mut adopted = None;
    let deadline = Instant::now() + PATIENCE;
    while adopted.is_none() {
        // Decided after its warm-up: announced because it serves.
        adopted = daemon
            .announcement(VIP)
            .await
            .filter(|a| a.announced && a.reason == "serving");
        assert!(
            Instant::now() < deadline,
            "the new maglevd does not announce the VIP; its log:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let adopted = adopted.unwrap();
    assert_eq!(
        adopted.since_unix_nanos, 0,
        "the new maglevd announced again a route it should have adopted: {adopted:?}"
    );
    assert_eq!(
        p.on_b(VIP).await,
        Some(before),
        "the restart re-announced the VIP"
    );
    assert_eq!(
        p.on_b(VIP6).await,
        Some(before6),
        "the restart re-announced the IPv6 VIP"
    );

    // The new maglevd is in charge: a failure still withdraws.
    backend.set_healthy(false);
    on_b(
        &p,
        &daemon,
        false,
        "the VIP leaves B after the restart when its backend fails",
    )
    .await;
    drop((sim, backend6));
}
