//! What TLS, client certificates and the access guard cost a gRPC call,
//! side by side with plain gRPC in the same run: a read on an open
//! connection (`GetBackend`), an audited write pair on an open connection
//! (`PauseBackend` + `ResumeBackend`: the guard reads and decodes each
//! request and logs it), and a fresh connection with one read (what a
//! maglevc one-shot pays: TCP, the handshake, HTTP/2, the call).
//!
//! ```sh
//! cargo bench -p maglev-benches --bench grpc_access
//! ```
//!
//! Three daemons (VPP off, one static backend) on loopback: plain, TLS,
//! and TLS requiring a client certificate (the client, `alice`, an admin).
//! Certificates are ECDSA P-256, made by rcgen at start.

use std::net::SocketAddr;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use maglev_bin::daemon::{Daemon, Parts, Settings, TlsFiles};
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use maglev_bin::transport::client::{ClientTls, Connector};
use maglev_core::config::Config;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Channel, Endpoint};

const CONFIG: &str = "\
maglev:
  access:
    admins: [alice]
  backends:
    s: { address: 127.0.0.9 }
";

/// A CA, a server certificate for loopback and `alice`'s client
/// certificate, as files in `dir`: (server files, alice's client side).
fn pki(dir: &Path) -> (TlsFiles, ClientTls) {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, ca_key);
    let issue = |sans: Vec<String>, cn: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &issuer).expect("cert").pem();
        (cert, key.serialize_pem())
    };
    let (server_cert, server_key) = issue(vec!["localhost".into()], "maglevd");
    let (alice_cert, alice_key) = issue(vec!["alice.ops.example".into()], "alice");
    let ca_path = write("ca.pem", ca_pem);
    (
        TlsFiles {
            cert: write("server.pem", server_cert),
            key: write("server.key", server_key),
            client_ca: Some(ca_path.clone()),
        },
        ClientTls {
            ca: Some(ca_path),
            cert: Some(write("alice.pem", alice_cert)),
            key: Some(write("alice.key", alice_key)),
        },
    )
}

struct Case {
    name: &'static str,
    addr: SocketAddr,
    tls: Option<ClientTls>,
    _daemon: Daemon,
}

impl Case {
    /// A new channel to the daemon, connected.
    async fn connect(&self) -> Channel {
        let server = format!("localhost:{}", self.addr.port());
        match &self.tls {
            None => Endpoint::from_shared(format!("http://{}", self.addr))
                .expect("uri")
                .connect()
                .await
                .expect("connect"),
            Some(tls) => Endpoint::from_shared(format!("https://{server}"))
                .expect("uri")
                .connect_with_connector(Connector::new(tls, &server).expect("connector"))
                .await
                .expect("connect"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let (files, alice) = pki(dir.path());
    let config = Config::from_yaml(CONFIG, "bench").expect("config");
    let start = |tls: Option<TlsFiles>| {
        let mut settings = Settings::new("bench.yaml");
        settings.grpc_addr = Some("127.0.0.1:0".into());
        settings.metrics_addr = None;
        settings.vpp = None;
        settings.grpc_tls = tls;
        rt.block_on(Daemon::start_with(
            settings,
            Parts::default(),
            config.clone(),
        ))
        .expect("daemon")
    };
    let server_only = TlsFiles {
        client_ca: None,
        ..files.clone()
    };
    let server_trust = ClientTls {
        ca: alice.ca.clone(),
        cert: None,
        key: None,
    };
    let cases: Vec<Case> = [
        ("plain", None, None),
        ("tls", Some(server_only), Some(server_trust)),
        ("mtls", Some(files), Some(alice)),
    ]
    .into_iter()
    .map(|(name, server, client)| {
        let daemon = start(server);
        Case {
            name,
            addr: daemon.grpc_addrs()[0],
            tls: client,
            _daemon: daemon,
        }
    })
    .collect();

    let mut group = c.benchmark_group("grpc_read_open_connection");
    for case in &cases {
        let mut client = MaglevClient::new(rt.block_on(case.connect()));
        group.bench_function(case.name, |b| {
            b.iter(|| {
                rt.block_on(client.get_backend(proto::GetBackendRequest { name: "s".into() }))
                    .expect("read")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("grpc_audited_write_pair_open_connection");
    for case in &cases {
        let mut client = MaglevClient::new(rt.block_on(case.connect()));
        let s = || proto::BackendRequest { name: "s".into() };
        group.bench_function(case.name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    client.pause_backend(s()).await.expect("pause");
                    client.resume_backend(s()).await.expect("resume");
                })
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("grpc_connect_and_read");
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut client = MaglevClient::new(case.connect().await);
                    client
                        .get_backend(proto::GetBackendRequest { name: "s".into() })
                        .await
                        .expect("read")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
