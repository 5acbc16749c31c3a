//! What the TLS tests share: a certificate authority made by rcgen at test
//! time, with a server certificate for loopback and client certificates
//! (`alice`, `bob`, an expired `carol`, and `mallory` from another CA),
//! written as PEM files; and gRPC channels over TLS to a daemon.

#![allow(dead_code, reason = "each test binary uses a part of it")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use maglev_bin::daemon::TlsFiles;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use maglev_bin::transport::client::{ClientTls, Connector};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Channel, Endpoint};

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The test PKI, in a directory of its own.
pub struct Pki {
    pub dir: tempfile::TempDir,
    /// The CA that signs the server and the clients.
    pub ca: PathBuf,
    /// The server's certificate (names `localhost`, 127.0.0.1, ::1).
    pub server: Pair,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn write(dir: &Path, name: &str, cert: &str, key: &KeyPair) -> Pair {
    let pair = Pair {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&pair.cert, cert).unwrap();
    std::fs::write(&pair.key, key.serialize_pem()).unwrap();
    pair
}

impl Pki {
    /// A new CA with a server certificate and the clients.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let params = ca_params("maglev test CA");
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(params, ca_key);
        let mut pki = Pki {
            server: Pair {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            dir,
            ca,
            issuer,
        };
        pki.server = pki.issue_server("server");
        for name in ["alice", "bob"] {
            pki.issue_client(name, false);
        }
        pki.issue_client("carol", true);
        // mallory: a client certificate from a CA the daemon does not know.
        let rogue_key = KeyPair::generate().unwrap();
        let rogue = Issuer::new(ca_params("rogue CA"), rogue_key);
        let key = KeyPair::generate().unwrap();
        let cert = client_params("mallory").signed_by(&key, &rogue).unwrap();
        write(pki.dir.path(), "mallory", &cert.pem(), &key);
        pki
    }

    /// Issues (again) a server certificate for loopback, written as
    /// `<name>.pem` and `<name>.key`.
    pub fn issue_server(&self, name: &str) -> Pair {
        let mut p = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        write(self.dir.path(), name, &cert.pem(), &key)
    }

    fn issue_client(&self, name: &str, expired: bool) -> Pair {
        let mut p = client_params(name);
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        write(self.dir.path(), name, &cert.pem(), &key)
    }

    /// The files of client `name` (`alice`, `bob`, `carol`, `mallory`).
    pub fn client(&self, name: &str) -> Pair {
        Pair {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
        }
    }

    /// The daemon's TLS files, requiring client certificates or not.
    pub fn server_files(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.server.cert.clone(),
            key: self.server.key.clone(),
            client_ca: client_ca.then(|| self.ca.clone()),
        }
    }

    /// maglevc's TLS settings: trusting this CA, as client `name` if any.
    pub fn client_tls(&self, name: Option<&str>) -> ClientTls {
        let pair = name.map(|n| self.client(n));
        ClientTls {
            ca: Some(self.ca.clone()),
            cert: pair.as_ref().map(|p| p.cert.clone()),
            key: pair.map(|p| p.key),
        }
    }
}

fn client_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![format!("{name}.ops.example")]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

/// A TLS channel to the daemon at `addr` as client `name` (none for no
/// certificate); connected lazily, so a refused handshake shows as the
/// first call's error.
pub fn channel(pki: &Pki, addr: SocketAddr, name: Option<&str>) -> Channel {
    let server = format!("localhost:{}", addr.port());
    let connector = Connector::new(&pki.client_tls(name), &server).unwrap();
    Endpoint::from_shared(format!("https://{server}"))
        .unwrap()
        .connect_with_connector_lazy(connector)
}

/// A client of the daemon at `addr` as `name`.
pub fn client(pki: &Pki, addr: SocketAddr, name: Option<&str>) -> MaglevClient<Channel> {
    MaglevClient::new(channel(pki, addr, name))
}

/// The error chain of a failed call, as one line.
pub fn chain(status: &tonic::Status) -> String {
    let mut parts = vec![status.message().to_owned()];
    let mut cur = std::error::Error::source(status);
    while let Some(e) = cur {
        parts.push(e.to_string());
        cur = e.source();
    }
    parts.join(": ")
}
