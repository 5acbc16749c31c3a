//! The real maglevd under a descriptor flood: run with a low
//! `RLIMIT_NOFILE` against the simulator and loopback backends, every
//! listener (gRPC, `/metrics`, the dashboard) gets more idle TCP
//! connections than its cap, from many addresses. No backend changes
//! state or weight (what the simulator holds stays), the extra
//! connections are closed by maglevd, a fresh gRPC client is answered
//! during the flood, and `/metrics` answers after it.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::Channel;

use common::{PATIENCE, World, until};

/// maglevd's descriptor limit (soft and hard).
const LIMIT: u64 = 256;
/// How many flood connections each listener gets beyond its cap.
const BEYOND: usize = 100;

/// `common::HEAD`'s check with `fall: 3` (the machine may be busy: only
/// descriptors are under test), over three HTTP backends.
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
      interval: 200ms
      timeout: 200ms
      rise: 1
      fall: 3
  backends:
    a: { address: 127.0.{net}.1, healthcheck: web }
    b: { address: 127.0.{net}.2, healthcheck: web }
    c: { address: 127.0.{net}.3, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.{net}
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
"#;

/// Where maglevd listens and each server's cap, from its log.
#[derive(Debug, Default)]
struct Started {
    addrs: BTreeMap<String, SocketAddr>,
    caps: BTreeMap<String, usize>,
}

fn addr_of(v: &serde_json::Value) -> SocketAddr {
    v.as_str()
        .unwrap()
        .trim_matches(['[', ']'])
        .parse()
        .unwrap()
}

/// `GET path` of the metrics server on a fresh connection: the reply.
async fn metrics(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The probes run so far, over every backend (`/metrics/detail`).
fn probes(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("maglev_probe_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// An idle connection to `to` from the loopback address `from`.
async fn idle(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether maglevd closed `s` (it never sends a byte first).
fn closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match s.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

async fn states(c: &mut MaglevClient<Channel>) -> Vec<(String, String)> {
    c.list_backends(proto::ListBackendsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .backends
        .into_iter()
        .map(|b| (b.name, b.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_floods_on_every_listener_move_no_backend() {
    // This process holds the flood.
    maglev_bin::transport::budget::raise_nofile().unwrap();
    let net = 170;
    let world = World::new(net, 3).await;
    world.write_config(
        &CONFIG
            .replace("{net}", &net.to_string())
            .replace("{port}", &world.port.to_string()),
    );
    let sockets = world.vpp.sockets();
    // The limit is set the way an operator sets it: `ulimit -n` in the
    // shell that execs the daemon.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--config")
        .arg(world.config_path())
        .args(["--grpc-addr", "127.0.0.1:0"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0"])
        .arg("--vpp-api-addr")
        .arg(&sockets.api)
        .arg("--vpp-stats-addr")
        .arg(sockets.stats.as_ref().unwrap())
        .args(["--state-file", "", "--log-format", "json"])
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let mut daemon = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Its log, on stdout: the caps, then where it listens.
    let mut lines = tokio::io::BufReader::new(daemon.stdout.take().unwrap()).lines();
    let mut started = Started::default();
    while started.addrs.is_empty() || started.caps.len() < 3 {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("maglevd logs that it started")
            .unwrap()
            .expect("maglevd runs");
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(cap) = record["cap"].as_u64() {
            started
                .caps
                .insert(record["server"].as_str().unwrap().to_owned(), cap as usize);
        }
        if record["message"] == "started" {
            for server in ["grpc", "metrics", "http"] {
                started
                    .addrs
                    .insert(server.to_owned(), addr_of(&record[server]));
            }
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // The caps leave the reserve: 128 + 4 per backend.
    let listeners: usize = started.caps.values().sum();
    assert!(listeners as u64 <= LIMIT - 128 - 4 * 3, "{started:?}");

    let vip = format!("192.0.2.{net}");
    let be = |i: u8| format!("127.0.{net}.{i}");
    until(
        "the VIP is programmed with its primary pool serving",
        || world.weights(&vip) == common::w(&[(&be(1), 100), (&be(2), 100), (&be(3), 0)]),
    )
    .await;
    let held = world.vips();
    let grpc = format!("http://{}", started.addrs["grpc"]);
    let mut client = MaglevClient::new(
        Channel::from_shared(grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let before = loop {
        let now = states(&mut client).await;
        if now.iter().all(|(_, s)| s == "up") {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now:?}");
        tokio::task::yield_now().await;
    };
    // Every backend event and INFO log from here on.
    let mut watch = client
        .watch_events(proto::WatchRequest {
            log: true,
            log_level: "info".to_owned(),
            backend: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // The flood: more idle connections than each cap, from many
    // addresses (so no per-peer limit is what holds them off).
    let mut flood = Vec::new();
    let mut n = 0u32;
    for (server, to) in [
        ("gRPC", started.addrs["grpc"]),
        ("metrics", started.addrs["metrics"]),
        ("web", started.addrs["http"]),
    ] {
        for _ in 0..started.caps[server] + BEYOND {
            n += 1;
            let from = Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8);
            flood.push(idle(from, to).await);
        }
    }
    let total = flood.len();
    // maglevd closes what is beyond its caps.
    until("maglevd closes the connections beyond its caps", || {
        flood.iter().filter(|s| closed(s)).count() >= 3 * BEYOND
    })
    .await;

    // A fresh gRPC client is answered during the flood.
    let mut fresh = MaglevClient::new(Channel::from_shared(grpc).unwrap().connect().await.unwrap());
    assert_eq!(states(&mut fresh).await, before);
    // Probes go on during the flood: twenty more rounds, all passing.
    let ran = probes(&metrics(started.addrs["metrics"], "/metrics/detail").await);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let now = probes(&metrics(started.addrs["metrics"], "/metrics/detail").await);
        if now >= ran + 3 * 20 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "probes stopped");
        tick.tick().await;
    }
    // Nothing moved: a reload marks the end of what the stream saw.
    fresh
        .reload_config(proto::ReloadConfigRequest::default())
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, watch.message())
            .await
            .expect("the reload's record within the patience")
            .unwrap()
            .expect("the stream is open");
        match event.kind {
            Some(proto::event::Kind::Backend(b)) => {
                panic!("a backend changed during the flood: {b:?}")
            }
            Some(proto::event::Kind::Log(l)) if l.message == "config-reloaded" => break,
            Some(proto::event::Kind::Log(l)) => assert!(
                !l.message.contains("Too many open files") && l.level != "error",
                "{l:?}"
            ),
            _ => {}
        }
    }
    assert_eq!(world.vips(), held, "what VPP holds changed");
    assert_eq!(states(&mut fresh).await, before);

    // The flood goes; /metrics answers, and says what was shed.
    drop(flood);
    let text = metrics(started.addrs["metrics"], "/metrics").await;
    let shed: f64 = text
        .lines()
        .filter(|l| l.starts_with("maglev_listener_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(shed >= (3 * BEYOND) as f64, "{text}");
    for (server, cap) in &started.caps {
        let line = format!(r#"maglev_listener_connection_limit{{server="{server}"}} {cap}"#);
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
    eprintln!("flood of {total} connections, caps {:?}", started.caps);

    let pid = nix::unistd::Pid::from_raw(daemon.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(PATIENCE, daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    world.stop().await;
}
