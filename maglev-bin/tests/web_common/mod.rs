//! What the dashboard tests share: a daemon on the simulator with the web
//! dashboard on loopback and a password file (`alice` / `secret`), and a
//! small HTTP/1.1 client (hyper) for its JSON API and event stream.

#![allow(dead_code, reason = "each test binary uses a part of it")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::common::{World, until, w};

/// The admin of the password file the daemon gets.
pub const ADMIN: (&str, &str) = ("alice", "secret");

/// A world on `net` with `grpc_common`'s config, its daemon serving the
/// dashboard (and gRPC) on 127.0.0.1, every backend up and both VIPs
/// programmed.
pub async fn start(net: u8) -> World {
    start_with(net, 4, maglev_bin::daemon::Parts::default()).await
}

/// As [`start`], the password hashed at bcrypt `cost`, the daemon started
/// with `parts`.
pub async fn start_with(net: u8, cost: u32, parts: maglev_bin::daemon::Parts) -> World {
    start_yaml(net, cost, &crate::grpc_common::config(net), parts).await
}

/// As [`start`], with an announce section (no damping) whose routes go
/// to the table returned; waits until both VIPs are announced.
pub async fn start_announcing(
    net: u8,
) -> (
    World,
    std::sync::Arc<maglev_bin::announce::table::MemoryTable>,
) {
    use maglev_bin::announce::table::{MemoryTable, RouteTable};
    let table = std::sync::Arc::new(MemoryTable::new());
    let parts = maglev_bin::daemon::Parts {
        routes: Some(table.clone() as std::sync::Arc<dyn RouteTable>),
        ..maglev_bin::daemon::Parts::default()
    };
    let yaml = format!(
        "{}  announce:\n    table: 200\n    min-interval: 0s\n",
        crate::grpc_common::config(net)
    );
    let world = start_yaml(net, 4, &yaml, parts).await;
    // Polled with a deadline; on timeout, what the announcer published.
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    while table.routes().len() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until both VIPs are announced: {:?}",
            world.handle().announcements()
        );
        tick.tick().await;
    }
    (world, table)
}

/// As [`start_with`], with config `yaml`.
async fn start_yaml(net: u8, cost: u32, yaml: &str, parts: maglev_bin::daemon::Parts) -> World {
    let mut world = World::new(net, 3).await;
    world.write_config(yaml);
    let password_file = world.dir.path().join("htpasswd");
    let hash = bcrypt::hash(ADMIN.1, cost).unwrap();
    std::fs::write(&password_file, format!("{}:{hash}\n", ADMIN.0)).unwrap();
    let mut settings = world.settings();
    settings.http_addr = Some("127.0.0.1:0".into());
    settings.grpc_addr = Some("127.0.0.1:0".into());
    settings.http_password_file = Some(password_file);
    world.start_with(settings, parts).await;
    let be = |i: u8| format!("127.0.{net}.{i}");
    until("both VIPs are programmed", || {
        world.weights(&format!("192.0.2.{net}")) == w(&[(&be(1), 100), (&be(2), 100), (&be(3), 0)])
            && world.weights(&format!("198.51.100.{net}")) == w(&[(&be(2), 50), (&be(9), 100)])
    })
    .await;
    world
}

/// The dashboard's address.
pub fn web(world: &World) -> SocketAddr {
    world.daemon().http_addrs()[0]
}

/// `user:password` as a basic authorization value.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Sends `request` on a new connection to `addr`.
pub async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Response<Incoming> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender.send_request(request).await.unwrap()
}

/// Sends `request` on a new connection to `addr` from the loopback
/// address `from` (another peer, as far as the daemon can tell).
pub async fn send_from(
    from: std::net::Ipv4Addr,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Response<Incoming> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender.send_request(request).await.unwrap()
}

/// A request to `path` with `headers`.
pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

/// A call and its whole answer: status and body text.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let response = send(addr, request(method, path, headers, body)).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// `GET /api/state` as JSON, with `headers`.
pub async fn state(addr: SocketAddr, headers: &[(&str, &str)]) -> serde_json::Value {
    let (status, body) = call(addr, "GET", "/api/state", headers, "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Three daemons on three simulators with the same config
/// (`grpc_common`'s on network `net`, served by A's backends on
/// 127.0.<net>.1..3): A serves the dashboard (and gRPC) with the password
/// file and B and C (networks `net + 1`, `net + 2`) as its `--peer`s `b`
/// and `c`; every VIP programmed on all three.
pub async fn start_fleet(net: u8) -> [World; 3] {
    let mut a = World::new(net, 3).await;
    let yaml = crate::grpc_common::config(net).replace("{port}", &a.port.to_string());
    let mut peers = Vec::new();
    for i in 1..=2 {
        let mut world = World::new(net + i, 1).await;
        world.write_config(&yaml);
        let mut settings = world.settings();
        settings.grpc_addr = Some("127.0.0.1:0".into());
        world.start(settings).await;
        peers.push(world);
    }
    a.write_config(&yaml);
    let password_file = a.dir.path().join("htpasswd");
    let hash = bcrypt::hash(ADMIN.1, 4).unwrap();
    std::fs::write(&password_file, format!("{}:{hash}\n", ADMIN.0)).unwrap();
    let mut settings = a.settings();
    settings.http_addr = Some("127.0.0.1:0".into());
    settings.grpc_addr = Some("127.0.0.1:0".into());
    settings.http_password_file = Some(password_file);
    settings.peers = ["b", "c"]
        .iter()
        .zip(&peers)
        .map(|(name, p)| {
            format!("{name}={}", p.daemon().grpc_addrs()[0])
                .parse()
                .unwrap()
        })
        .collect();
    a.start(settings).await;
    let [b, c]: [World; 2] = peers.try_into().ok().unwrap();
    let be = |i: u8| format!("127.0.{net}.{i}");
    for world in [&a, &b, &c] {
        until("every VIP is programmed", || {
            world.weights(&format!("192.0.2.{net}"))
                == w(&[(&be(1), 100), (&be(2), 100), (&be(3), 0)])
                && world.weights(&format!("198.51.100.{net}")) == w(&[(&be(2), 50), (&be(9), 100)])
        })
        .await;
    }
    [a, b, c]
}

/// Stops `world`'s daemon (its simulator stays), answering its gRPC
/// address to restart it on.
pub async fn stop_daemon(world: &mut World) -> SocketAddr {
    let grpc = world.daemon().grpc_addrs()[0];
    world.daemon.take().unwrap().shutdown().await;
    grpc
}

/// Starts `world`'s daemon again (same simulator and config) on `grpc`.
pub async fn restart_daemon(world: &mut World, grpc: SocketAddr) {
    let mut settings = world.settings();
    settings.grpc_addr = Some(grpc.to_string());
    world.start(settings).await;
}

/// Whether `world`'s audit counter has exactly one successful `rpc` by
/// `identity`.
pub fn audited_once(world: &World, rpc: &str, identity: &str) -> bool {
    let line = format!(
        r#"maglev_grpc_writes_total{{rpc="{rpc}",identity="{identity}",result="success"}} 1"#
    );
    maglev_bin::metrics::render(world.handle())
        .lines()
        .any(|l| l == line)
}
