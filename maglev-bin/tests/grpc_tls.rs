//! gRPC over TLS with client certificates, the read-only role and
//! `--grpc-read-only`, against a daemon on the simulator, with
//! certificates made by rcgen at test time: who is refused at the
//! handshake, which calls a reader and an admin may make (every write RPC
//! listed from the proto), certificates reloaded under an open stream,
//! `/metrics` behind the same TLS, silent sockets that cannot lock a
//! client out, and the warning at start for writable plain gRPC off
//! loopback.

mod common;
mod grpc_common;
mod tls_common;

use std::str::FromStr;
use std::sync::Arc;

use maglev_bin::daemon::Settings;
use maglev_bin::grpc::access::write_rpcs;
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::event::Kind;
use maglev_bin::transport::client::Connector;
use maglev_bin::transport::pem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::codegen::Service;
use tonic::transport::Channel;

use common::{World, until, w};
use grpc_common::{logs, next_event, until_backend_event};
use tls_common::{Pki, chain, client};

/// `alice` may write; `bob`, with a valid certificate too, only reads.
const ACCESS: &str = "  access:\n    admins: [alice]\n";

async fn start(net: u8, tweak: impl FnOnce(&mut Settings, &Pki)) -> (World, Pki) {
    let pki = Pki::new();
    let mut world = World::new(net, 3).await;
    world.write_config(&format!("{}{ACCESS}", grpc_common::config(net)));
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    tweak(&mut settings, &pki);
    world.start(settings).await;
    let (web, api) = (format!("192.0.2.{net}"), format!("198.51.100.{net}"));
    let be = |i: u8| format!("127.0.{net}.{i}");
    until("every backend is up and both VIPs are programmed", || {
        states(&world).iter().all(|(_, s)| s == "up")
            && world.weights(&web) == w(&[(&be(1), 100), (&be(2), 100), (&be(3), 0)])
            && world.weights(&api) == w(&[(&be(2), 50), (&be(9), 100)])
    })
    .await;
    (world, pki)
}

/// A daemon requiring client certificates signed by the test CA.
async fn start_mtls(net: u8) -> (World, Pki) {
    start(net, |s, pki| s.grpc_tls = Some(pki.server_files(true))).await
}

fn addr(world: &World) -> std::net::SocketAddr {
    world.daemon().grpc_addrs()[0]
}

/// Calls write RPC `rpc` with an empty request (valid for every message
/// type), as a client that knows nothing but the RPC's path would.
async fn call_raw(channel: Channel, rpc: &str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_str(&format!("/maglev.Maglev/{rpc}"))
        .unwrap();
    grpc.unary(
        tonic::Request::new(()),
        path,
        tonic_prost::ProstCodec::<(), ()>::default(),
    )
    .await
    .map(|_| ())
}

fn states(world: &World) -> Vec<(String, String)> {
    world
        .handle()
        .backends()
        .values()
        .map(|s| (s.name.to_string(), s.state.to_string()))
        .collect()
}

/// A call that failed because the connection was refused (a transport
/// error: no gRPC status came back). With TLS 1.3 the client sees either
/// the server's alert or only the connection it closed.
fn assert_refused(e: &tonic::Status) {
    assert!(
        std::error::Error::source(e).is_some()
            && matches!(
                e.code(),
                Code::Unavailable | Code::Unknown | Code::Cancelled
            ),
        "{e:?}: {}",
        chain(e)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_client_certificate_the_handshake_is_refused() {
    let (world, pki) = start_mtls(81).await;
    let list = || proto::ListFrontendsRequest::default();

    let e = client(&pki, addr(&world), None)
        .list_frontends(list())
        .await
        .unwrap_err();
    assert_refused(&e);

    // Expired, and signed by a CA the daemon does not trust.
    let e = client(&pki, addr(&world), Some("carol"))
        .list_frontends(list())
        .await
        .unwrap_err();
    assert_refused(&e);
    let e = client(&pki, addr(&world), Some("mallory"))
        .list_frontends(list())
        .await
        .unwrap_err();
    assert_refused(&e);

    // Plain gRPC gets nowhere either.
    let plain = Channel::from_shared(format!("http://{}", addr(&world)))
        .unwrap()
        .connect_lazy();
    let e = proto::maglev_client::MaglevClient::new(plain)
        .list_frontends(list())
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);

    // A certificate of the CA is let in.
    let names: Vec<String> = client(&pki, addr(&world), Some("bob"))
        .list_frontends(list())
        .await
        .unwrap()
        .into_inner()
        .frontends
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["api", "web"]);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_reads_and_every_write_rpc_is_denied_leaving_vpp_untouched() {
    let (world, pki) = start_mtls(82).await;
    let mut bob = client(&pki, addr(&world), Some("bob"));
    let before = (world.vips(), states(&world));

    // Reads, a stream and a dry run work.
    bob.list_backends(proto::ListBackendsRequest::default())
        .await
        .unwrap();
    bob.get_frontend(proto::GetFrontendRequest { name: "web".into() })
        .await
        .unwrap();
    bob.plan_sync(proto::PlanSyncRequest::default())
        .await
        .unwrap();
    bob.check_config(proto::CheckConfigRequest {})
        .await
        .unwrap();
    let mut stream = bob
        .watch_events(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();

    let writes = write_rpcs();
    assert!(writes.len() >= 7, "{writes:?}");
    for rpc in &writes {
        let channel = tls_common::channel(&pki, addr(&world), Some("bob"));
        let e = call_raw(channel, rpc).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{rpc}: {e:?}");
        assert_eq!(
            e.message(),
            format!("{rpc} is a write RPC and bob may only read (not in maglev.access.admins)")
        );
    }
    // The typed client is refused the same way.
    let e = bob
        .pause_backend(proto::BackendRequest { name: "a".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    assert!(
        (world.vips(), states(&world)) == before,
        "a denied write changed VPP or a backend"
    );
    // The stream opened before the denials is still open.
    drop(bob);
    let mut alice = client(&pki, addr(&world), Some("alice"));
    alice
        .pause_backend(proto::BackendRequest { name: "c".into() })
        .await
        .unwrap();
    until_backend_event(&mut stream, "c").await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_writes() {
    let (world, pki) = start_mtls(83).await;
    let mut alice = client(&pki, addr(&world), Some("alice"));
    let a = alice
        .pause_backend(proto::BackendRequest { name: "a".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.state, "paused");
    alice
        .set_frontend_pool_backend_weight(proto::SetWeightRequest {
            frontend: "web".into(),
            pool: "primary".into(),
            backend: "b".into(),
            weight: 30,
            flush: false,
        })
        .await
        .unwrap();
    until("a is drained and b weighs 30", || {
        world.weights("192.0.2.83")
            == w(&[("127.0.83.1", 0), ("127.0.83.2", 30), ("127.0.83.3", 0)])
    })
    .await;
    world.stop().await;
}

/// The certificate a new TLS connection to `addr` is shown.
async fn presented(pki: &Pki, addr: std::net::SocketAddr) -> Vec<u8> {
    let mut connector = Connector::new(
        &pki.client_tls(Some("alice")),
        &format!("localhost:{}", addr.port()),
    )
    .unwrap();
    let io = connector
        .call(tonic::codegen::http::Uri::from_static("https://localhost"))
        .await
        .unwrap();
    io.inner().get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_dropping_open_streams() {
    let (world, pki) = start_mtls(84).await;
    let first = pem::certificates(&pki.server.cert).unwrap()[0].to_vec();
    assert_eq!(presented(&pki, addr(&world)).await, first);
    let mut alice = client(&pki, addr(&world), Some("alice"));
    let mut stream = alice
        .watch_events(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();

    // A broken key: refused, and the certificate in use stays.
    std::fs::write(&pki.server.key, "not a key").unwrap();
    let e = world.handle().reload_tls().unwrap_err().to_string();
    assert!(e.contains("server.key: holds no private key"), "{e}");
    assert_eq!(presented(&pki, addr(&world)).await, first);

    // A new certificate and key in the same files.
    pki.issue_server("server");
    let second = pem::certificates(&pki.server.cert).unwrap()[0].to_vec();
    assert_ne!(first, second);
    assert!(world.handle().reload_tls().unwrap());
    assert_eq!(presented(&pki, addr(&world)).await, second);

    // The stream opened under the old certificate still gets events.
    client(&pki, addr(&world), Some("alice"))
        .pause_backend(proto::BackendRequest { name: "b".into() })
        .await
        .unwrap();
    until_backend_event(&mut stream, "b").await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_without_tls_denies_every_write_rpc() {
    let (world, _pki) = start(85, |s, _| s.grpc_read_only = true).await;
    let channel = Channel::from_shared(format!("http://{}", addr(&world)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let before = (world.vips(), states(&world));
    for rpc in write_rpcs() {
        let e = call_raw(channel.clone(), &rpc).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{rpc}: {e:?}");
        assert_eq!(
            e.message(),
            format!(
                "{rpc} is a write RPC and maglevd is read-only (--grpc-read-only); denied to 127.0.0.1"
            )
        );
    }
    let mut c = proto::maglev_client::MaglevClient::new(channel);
    assert_eq!(
        c.list_frontends(proto::ListFrontendsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .frontends
            .len(),
        2
    );
    assert!(
        (world.vips(), states(&world)) == before,
        "a denied write changed VPP or a backend"
    );
    world.stop().await;
}

/// `GET /metrics` over TLS as client `name`: the response, or the error.
async fn get_metrics(pki: &Pki, addr: std::net::SocketAddr, name: &str) -> std::io::Result<String> {
    https_get(pki, addr, name, "/metrics").await
}

/// `GET path` over TLS (HTTP/1.1) as client `name`: the response, or the
/// error.
async fn https_get(
    pki: &Pki,
    addr: std::net::SocketAddr,
    name: &str,
    path: &str,
) -> std::io::Result<String> {
    let pair = pki.client(name);
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(pem::roots(&pki.ca).unwrap())
    .with_client_auth_cert(
        pem::certificates(&pair.cert).unwrap(),
        pem::private_key(&pair.key).unwrap(),
    )
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_served_behind_the_same_tls() {
    let (world, pki) = start(86, |s, pki| {
        s.grpc_tls = Some(pki.server_files(true));
        s.metrics_addr = Some("127.0.0.1:0".into());
        s.metrics_tls = true;
    })
    .await;
    let metrics = world.daemon().metrics_addrs()[0];
    let body = get_metrics(&pki, metrics, "bob").await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("maglev_backend_state"), "{body}");
    // A foreign certificate is refused; plain HTTP gets no metrics.
    assert!(get_metrics(&pki, metrics, "mallory").await.is_err());
    let mut tcp = tokio::net::TcpStream::connect(metrics).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).contains("maglev_backend_state"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_behind_tls_knows_its_admins_by_certificate() {
    let (world, pki) = start(89, |s, pki| {
        s.grpc_tls = Some(pki.server_files(true));
        s.http_addr = Some("127.0.0.1:0".into());
        s.http_tls = true;
    })
    .await;
    let web = world.daemon().http_addrs()[0];
    let session = |body: &str| -> serde_json::Value {
        let json = body.split_once("\r\n\r\n").unwrap().1;
        // Chunked: the JSON is the one line that starts with `{`.
        let line = json.lines().find(|l| l.starts_with('{')).unwrap();
        serde_json::from_str::<serde_json::Value>(line).unwrap()["session"].clone()
    };
    let alice = session(&https_get(&pki, web, "alice", "/api/state").await.unwrap());
    assert_eq!(
        (alice["admin"].clone(), alice["auth"].clone()),
        (true.into(), "certificate".into())
    );
    assert_eq!(alice["identity"], "alice");
    let bob = session(&https_get(&pki, web, "bob", "/api/state").await.unwrap());
    assert_eq!(
        (bob["admin"].clone(), bob["identity"].clone()),
        (false.into(), "bob".into())
    );
    assert!(https_get(&pki, web, "mallory", "/api/state").await.is_err());
    world.stop().await;
}

/// The real maglevd: SIGHUP re-reads the certificate files while an event
/// stream opened under the old certificate stays open and sees the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificates_of_a_running_maglevd() {
    use tokio::io::AsyncBufReadExt;

    let pki = Pki::new();
    let config = pki.dir.path().join("maglev.yaml");
    std::fs::write(
        &config,
        "maglev:\n  access:\n    admins: [alice]\n  backends:\n    s: { address: 127.0.0.9 }\n",
    )
    .unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--config")
        .arg(&config)
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "",
            "--vpp-api-addr",
            "",
        ])
        .args(["--state-file", "", "--log-format", "json"])
        .arg("--grpc-tls-cert")
        .arg(&pki.server.cert)
        .arg("--grpc-tls-key")
        .arg(&pki.server.key)
        .arg("--grpc-client-ca")
        .arg(&pki.ca)
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Its log, on stdout, says where it listens.
    let mut lines = tokio::io::BufReader::new(daemon.stdout.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = tokio::time::timeout(common::PATIENCE, lines.next_line())
            .await
            .expect("maglevd logs that it started")
            .unwrap()
            .expect("maglevd runs");
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        if record["message"] == "started" {
            let grpc = record["grpc"].as_str().unwrap();
            break grpc.trim_matches(['[', ']']).parse().unwrap();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let first = pem::certificates(&pki.server.cert).unwrap()[0].to_vec();
    assert_eq!(presented(&pki, addr).await, first);
    let mut stream = client(&pki, addr, Some("alice"))
        .watch_events(logs("info"))
        .await
        .unwrap()
        .into_inner();

    pki.issue_server("server");
    let second = pem::certificates(&pki.server.cert).unwrap()[0].to_vec();
    let pid = nix::unistd::Pid::from_raw(daemon.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    loop {
        if let Kind::Log(l) = next_event(&mut stream).await
            && l.message == "TLS certificates reloaded"
        {
            break;
        }
    }
    assert_eq!(presented(&pki, addr).await, second);

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(common::PATIENCE, daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// maglevd refuses to start on TLS files it cannot use, naming the file,
/// and on TLS flags that need another.
#[test]
fn maglevd_names_the_tls_file_it_cannot_use() {
    let pki = Pki::new();
    let config = pki.dir.path().join("maglev.yaml");
    std::fs::write(&config, "maglev: {}\n").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_maglevd"))
            .arg("--config")
            .arg(&config)
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "",
                "--vpp-api-addr",
                "",
            ])
            .args(["--state-file", ""])
            .args(args)
            .env_remove("MAGLEV_METRICS_TLS")
            .output()
            .unwrap()
    };
    let missing = pki.dir.path().join("missing.key");
    let out = run(&[
        "--grpc-tls-cert".as_ref(),
        pki.server.cert.as_os_str(),
        "--grpc-tls-key".as_ref(),
        missing.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("gRPC TLS: {}: ", missing.display())),
        "{stderr}"
    );
    // A client's certificate is not a server key.
    let bob = pki.client("bob");
    let out = run(&[
        "--grpc-tls-cert".as_ref(),
        pki.server.cert.as_os_str(),
        "--grpc-tls-key".as_ref(),
        bob.key.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("server.pem with") && stderr.contains("bob.key"),
        "{stderr}"
    );
    // Flags that need the certificate.
    let out = run(&["--metrics-tls".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--grpc-tls-cert"));
}

/// Silent sockets (connected, never a TLS byte) beyond the pending cap,
/// from one address and from many, do not lock a real client out of the
/// mTLS port: accepting never stops, the oldest silent ones are closed to
/// make room, and the client is answered well before they would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_do_not_lock_a_client_out_of_the_mtls_port() {
    use maglev_bin::transport::conn::HEADER_TIMEOUT;
    use maglev_bin::transport::gate::MAX_PENDING;
    use std::net::{Ipv4Addr, SocketAddr};

    let (world, pki) = start_mtls(172).await;
    let to = addr(&world);
    let mut silent = Vec::new();
    for i in 0..MAX_PENDING + 50 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // Half from this client's own address, half from many others.
        let from = if i % 2 == 0 {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::new(127, 2, 0, (i % 250 + 1) as u8)
        };
        socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
        silent.push(socket.connect(to).await.unwrap());
    }
    let closed = |s: &tokio::net::TcpStream| {
        let mut buf = [0u8; 1];
        matches!(s.try_read(&mut buf), Ok(0))
            || matches!(s.try_read(&mut buf), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock)
    };
    until("the oldest silent sockets are shed", || {
        silent.iter().filter(|s| closed(s)).count() >= 50
    })
    .await;
    // The client, from the same address as half the flood: answered
    // before any silent socket's handshake time is up.
    let mut alice = client(&pki, to, Some("alice"));
    let answered = tokio::time::timeout(
        HEADER_TIMEOUT / 2,
        alice.list_backends(proto::ListBackendsRequest::default()),
    )
    .await
    .expect("answered while the silent sockets hold their places");
    assert!(!answered.unwrap().into_inner().backends.is_empty());
    drop(silent);
    world.stop().await;
}

/// The real maglevd warns at start when plain gRPC with writes allowed
/// listens beyond loopback, naming the address and the fixes; not when it
/// is read-only or on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writable_plain_grpc_off_loopback_is_warned_about_at_start() {
    use tokio::io::AsyncBufReadExt;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("maglev.yaml");
    std::fs::write(
        &config,
        "maglev:\n  backends:\n    s: { address: 127.0.0.9 }\n",
    )
    .unwrap();
    // The WARN records a start logs until the gRPC server's cap (logged
    // by the server's task after its warning).
    // Every interface (`own_netns`) is bound only inside a network
    // namespace of the child's own, which has nothing but a loopback.
    let warnings = |grpc: &'static str, read_only: bool, own_netns: bool| {
        let config = config.clone();
        async move {
            // `unshare --net` (util-linux) runs it in a new network
            // namespace: its `0.0.0.0` is that namespace's, reachable by
            // nothing.
            let mut command = if own_netns {
                let mut c = tokio::process::Command::new("unshare");
                c.args(["--net", "--"]).arg(env!("CARGO_BIN_EXE_maglevd"));
                c
            } else {
                tokio::process::Command::new(env!("CARGO_BIN_EXE_maglevd"))
            };
            let mut daemon = command
                .arg("--config")
                .arg(&config)
                .args([
                    "--grpc-addr",
                    grpc,
                    "--metrics-addr",
                    "",
                    "--vpp-api-addr",
                    "",
                ])
                .args(["--state-file", "", "--log-format", "json"])
                .arg(format!("--grpc-read-only={read_only}"))
                .env_remove("MAGLEV_GRPC_READ_ONLY")
                .stdout(std::process::Stdio::piped())
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut lines = tokio::io::BufReader::new(daemon.stdout.take().unwrap()).lines();
            let mut warned = Vec::new();
            loop {
                let line = tokio::time::timeout(common::PATIENCE, lines.next_line())
                    .await
                    .expect("maglevd logs its gRPC cap")
                    .unwrap()
                    .expect("maglevd runs");
                let record: serde_json::Value = serde_json::from_str(&line).unwrap();
                if record["message"] == "gRPC connection cap" {
                    break;
                }
                if record["level"] == "WARN" {
                    warned.push(record["message"].as_str().unwrap_or_default().to_owned());
                }
            }
            daemon.kill().await.unwrap();
            warned
        }
    };
    let quiet = |w: &Vec<String>| !w.iter().any(|w| w.contains("with writes allowed"));
    let local = warnings("127.0.0.1:0", false, false).await;
    assert!(quiet(&local), "{local:?}");
    // Every interface, in a namespace of its own: needs CAP_SYS_ADMIN.
    let can = std::process::Command::new("unshare")
        .args(["--net", "--", "true"])
        .status();
    if let Some(e) = match can {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`unshare --net true` exited {s}")),
        Err(e) => Some(format!("unshare: {e}")),
    } {
        assert!(
            std::env::var("MAGLEV_REQUIRE_NETNS").as_deref() != Ok("1"),
            "MAGLEV_REQUIRE_NETNS=1 but a network namespace cannot be made: {e}"
        );
        eprintln!("skipped the all-interfaces half: no network namespace ({e})");
        return;
    }
    let open = warnings("0.0.0.0:0", false, true).await;
    assert!(
        open.iter().any(|w| w.starts_with("gRPC on 0.0.0.0:")
            && w.contains("plain gRPC with writes allowed")
            && w.contains("--grpc-read-only")
            && w.contains("--grpc-client-ca")),
        "{open:?}"
    );
    let read_only = warnings("0.0.0.0:0", true, true).await;
    assert!(quiet(&read_only), "{read_only:?}");
}
