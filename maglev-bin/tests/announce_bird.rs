//! Announcements end to end, with the real routing engine: BIRD A learns
//! kernel table 200 of namespace A with the user guide's BIRD 2 snippet
//! and exports it over eBGP to BIRD B (see `bird_common`); the tests
//! assert on BIRD B's routes (`birdc show route`).
//!
//! First with routes of the test's own (blackhole host routes, protocol
//! 201, as maglevd writes them): BIRD learns them and exports them, and
//! nothing else of the table. Then with the real `maglevd` in the root
//! namespace (`maglev.announce.netns` = A), on the VPP simulator
//! (`maglev-vppsim`) with a backend on loopback: the VIP is on B while its
//! frontend serves; gone when its last backend fails and back on recovery;
//! gone on `maglevc set node drain` and back on `undrain`; gone after the
//! VPP grace period when the simulator goes away and back when it returns;
//! and not withdrawn across a restart of maglevd (its age on B unchanged).
//!
//! Needs root, iproute2 and BIRD 2: without them each test says why and
//! passes, unless `MAGLEV_REQUIRE_BIRD=1` (CI).

mod bird_common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bird_common::{PATIENCE, Peering, skip};
use maglev_bin::demo::HttpBackend;
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;

/// The peering, or `None` (said why) when this machine cannot run it.
fn peering() -> Option<Peering> {
    match Peering::start() {
        Ok(p) => Some(p),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

#[test]
fn bird_learns_blackhole_routes_of_table_200_and_exports_them_over_bgp() {
    let Some(p) = peering() else { return };
    let add = |kind: &str, prefix: &str, proto: &str, table: &str| {
        p.ip_a(&[
            kind,
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

    let v4 = p.until_on_b("192.0.2.1/32");
    assert_eq!((v4.kind.as_str(), v4.proto.as_str()), ("unicast", "peer"));
    let learned = p.bird_a.route("192.0.2.1/32").expect("BIRD A learned it");
    assert_eq!(
        (learned.kind.as_str(), learned.proto.as_str()),
        ("blackhole", "maglev4")
    );
    let v6 = p.until_on_b("2001:db8::1/128");
    assert_eq!(v6.proto, "peer");
    // Everything A exports is on B now (one UPDATE per family at most
    // behind): the others were never exported.
    p.until("BIRD A has exported both of maglevd's routes", || {
        let out = p
            .bird_a
            .birdc(&["show", "route", "export", "peer", "table", "all"])
            .unwrap();
        out.contains("192.0.2.1/32") && out.contains("2001:db8::1/128")
    });
    let exported = p
        .bird_a
        .birdc(&["show", "route", "export", "peer", "table", "all"])
        .unwrap();
    assert!(!exported.contains("192.0.2.2/32"), "{exported}");
    assert!(!exported.contains("192.0.2.3/32"), "{exported}");
    assert_eq!(p.on_b("192.0.2.2/32"), None);
    assert_eq!(p.on_b("192.0.2.3/32"), None);

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
    p.until_gone_from_b("192.0.2.1/32");
    add("-4", "192.0.2.1/32", "201", "200");
    p.until_on_b("192.0.2.1/32");
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
    p.until_gone_from_b("2001:db8::1/128");
}

/// A child process killed (and reaped) on drop.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    /// SIGTERM, and waits until it has exited cleanly.
    fn terminate(mut self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            assert!(Instant::now() < deadline, "{} does not stop", self.name);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds; fails after [`PATIENCE`].
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `maglev-vppsim` on `dir`'s sockets, once its API socket is there.
fn vppsim(dir: &Path) -> Proc {
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
    until("the simulator listens", || api.exists());
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
fn maglevd(dir: &Path) -> Maglevd {
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
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
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
    let grpc = match rx.recv_timeout(PATIENCE) {
        Ok(addr) => addr.parse().unwrap(),
        Err(_) => panic!("maglevd did not start:\n{}", log.lock().unwrap().join("\n")),
    };
    Maglevd { proc, grpc, log }
}

impl Maglevd {
    /// `maglevc --server <its gRPC> <args>`, which must succeed.
    fn maglevc(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_maglevc"))
            .arg("--server")
            .arg(self.grpc.to_string())
            .args(args)
            .output()
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
    fn announcement(
        &self,
        rt: &tokio::runtime::Runtime,
        prefix: &str,
    ) -> Option<proto::Announcement> {
        rt.block_on(async {
            let mut client = MaglevClient::connect(format!("http://{}", self.grpc))
                .await
                .ok()?;
            let list = client
                .list_announcements(proto::ListAnnouncementsRequest::default())
                .await
                .ok()?
                .into_inner();
            list.announcements.into_iter().find(|a| a.prefix == prefix)
        })
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// The config: one frontend on 192.0.2.77 with one HTTP-checked backend
/// on `backend`, announced in table 200 of namespace `netns` with short
/// timings (min-interval 1s, vpp-grace 2s).
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
  frontends:
    web:
      address: 192.0.2.77
      protocol: tcp
      port: 80
      pools:
        - name: main
          backends: {{ a: {{}} }}
"#,
        port = backend.port(),
        ip = backend.ip(),
    )
}

const VIP: &str = "192.0.2.77/32";

#[test]
fn maglevd_announces_through_bird_while_it_can_serve() {
    let Some(p) = peering() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let backend = rt
        .block_on(HttpBackend::start("127.0.77.1:0".parse().unwrap()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_owned();
    std::fs::write(dir.join("maglev.yaml"), config(&p.a.0, backend.addr())).unwrap();
    let mut sim = Some(vppsim(&dir));
    let mut daemon = maglevd(&dir);
    let on_b = |what: &str, present: bool, daemon: &Maglevd| {
        let deadline = Instant::now() + PATIENCE;
        while p.on_b(VIP).is_some() != present {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; maglevd's log:\n{}",
                daemon.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    // Serving: announced.
    on_b("the VIP is on B while its frontend serves", true, &daemon);

    // The last backend fails: withdrawn; it recovers: back.
    backend.set_healthy(false);
    on_b(
        "the VIP leaves B when its last backend fails",
        false,
        &daemon,
    );
    backend.set_healthy(true);
    on_b(
        "the VIP is back on B when the backend recovers",
        true,
        &daemon,
    );

    // Drained: withdrawn; undrained: back.
    daemon.maglevc(&["set", "node", "drain"]);
    on_b("the VIP leaves B when the node is drained", false, &daemon);
    daemon.maglevc(&["set", "node", "undrain"]);
    on_b(
        "the VIP is back on B when the node is undrained",
        true,
        &daemon,
    );

    // VPP goes away: withdrawn after the grace period; back with VPP.
    sim.take().unwrap().terminate();
    on_b(
        "the VIP leaves B once VPP has been away for the grace period",
        false,
        &daemon,
    );
    sim = Some(vppsim(&dir));
    on_b("the VIP is back on B when VPP returns", true, &daemon);

    // A restart: SIGTERM leaves the route, the new maglevd adopts it;
    // B's route keeps its age (it was never withdrawn nor re-sent).
    let before = p.on_b(VIP).unwrap();
    daemon.proc.terminate();
    assert_eq!(
        p.on_b(VIP),
        Some(before.clone()),
        "SIGTERM withdrew the VIP"
    );
    daemon = maglevd(&dir);
    until(
        "the new maglevd has decided on the VIP after its warm-up",
        || {
            daemon
                .announcement(&rt, VIP)
                .is_some_and(|a| a.announced && a.reason == "serving")
        },
    );
    let adopted = daemon.announcement(&rt, VIP).unwrap();
    assert_eq!(
        adopted.since_unix_nanos, 0,
        "the new maglevd re-announced an adopted route: {adopted:?}"
    );
    assert_eq!(
        p.on_b(VIP),
        Some(before),
        "the restart re-announced the VIP"
    );

    // The new maglevd is in charge: a failure still withdraws.
    backend.set_healthy(false);
    on_b(
        "the VIP leaves B after the restart when its backend fails",
        false,
        &daemon,
    );
    drop(sim);
}
