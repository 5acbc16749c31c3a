//! The TCP probe (accept, refuse, never accept), TLS on it and on HTTPS:
//! SNI, verification against a trusted root, and skip-verify, with a
//! self-signed certificate made by rcgen.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use maglev_core::config::TlsParams;
use maglev_health::Code;
use maglev_health::probe::{self, ProbeEnv, ProbeResult};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

async fn probe_with(
    check: &maglev_core::config::HealthCheck,
    env: &ProbeEnv,
    addr: SocketAddr,
) -> ProbeResult {
    probe::build(check, env).unwrap().probe(addr.ip()).await
}

/// A certificate for `backend.test` and a root store that trusts it.
fn certificate() -> (
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
    Arc<RootCertStore>,
) {
    let ck = rcgen::generate_simple_self_signed(vec!["backend.test".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    (cert, key, Arc::new(roots))
}

/// A TLS server that reports the SNI of each handshake and, when `http`,
/// answers one HTTP request with 200.
async fn tls_server(
    http: bool,
) -> (
    Server,
    mpsc::UnboundedReceiver<Option<String>>,
    Arc<RootCertStore>,
) {
    let (cert, key, roots) = certificate();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = mpsc::unbounded_channel();
    let server = serve(listen_v4().await, move |s| {
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            let _ = tx.send(tls.get_ref().1.server_name().map(str::to_owned));
            if http {
                let head = read_head(&mut tls).await;
                // Plain HTTP inside TLS: a second TLS layer would not parse.
                let resp: &[u8] = if head.starts_with("GET /healthz HTTP/1.1") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy"
                } else {
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = tls.write_all(resp).await;
                let _ = tls.shutdown().await;
            }
        }
    });
    (server, rx, roots)
}

fn tls(server_name: Option<&str>, skip: bool) -> Option<TlsParams> {
    Some(TlsParams {
        server_name: server_name.map(str::to_owned),
        insecure_skip_verify: skip,
    })
}

#[tokio::test]
async fn tcp_connect_passes_with_l4ok() {
    let server = serve(listen_v4().await, |_s| async {});
    let r = probe_with(
        &tcp_check(server.addr.port(), None, LONG),
        &ProbeEnv::new(),
        server.addr,
    )
    .await;
    assert_eq!(r.code, Code::L4Ok, "{r}");
    assert_eq!(r.detail, format!("connected to {}", server.addr));
}

#[tokio::test]
async fn tcp_refused_is_l4con() {
    let listener = listen_v4().await;
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = probe_with(&tcp_check(addr.port(), None, LONG), &ProbeEnv::new(), addr).await;
    assert_eq!(r.code, Code::L4Con, "{r}");
}

#[tokio::test]
async fn tcp_never_accepted_is_l4tout() {
    // A listener with a backlog of 0 that never accepts: once its queue is
    // full, further SYNs are dropped and connects hang.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Each probe that connects leaves its connection in the accept queue,
    // so after one or two the queue is full and the next probe times out.
    let mut r = None;
    for _ in 0..8 {
        let res = probe_with(&tcp_check(addr.port(), None, SHORT), &ProbeEnv::new(), addr).await;
        if res.code == Code::L4Tout {
            r = Some(res);
            break;
        }
        assert_eq!(res.code, Code::L4Ok, "{res}");
    }
    let r = r.expect("the queue of a listener that never accepts fills up");
    assert!(r.detail.contains("timed out"), "{r}");
    drop(socket);
}

#[tokio::test]
async fn tcp_tls_handshake_passes_with_l6ok_and_sends_sni() {
    let (server, mut sni, roots) = tls_server(false).await;
    let env = ProbeEnv::new().with_roots(roots);
    let check = tcp_check(server.addr.port(), tls(Some("backend.test"), false), LONG);
    let r = probe_with(&check, &env, server.addr).await;
    assert_eq!(r.code, Code::L6Ok, "{r}");
    assert!(
        r.detail.contains("TLSv1_3") || r.detail.contains("TLSv1.3"),
        "{r}"
    );
    assert_eq!(sni.recv().await.unwrap().as_deref(), Some("backend.test"));
}

#[tokio::test]
async fn tls_verification_fails_with_l6rsp_for_an_untrusted_or_wrong_name() {
    let (server, _sni, roots) = tls_server(false).await;
    // The system roots do not know our self-signed certificate.
    let check = tcp_check(server.addr.port(), tls(Some("backend.test"), false), LONG);
    let r = probe_with(&check, &ProbeEnv::new(), server.addr).await;
    assert_eq!(r.code, Code::L6Rsp, "{r}");
    assert!(r.detail.contains("certificate"), "{r}");
    // Trusted, but for another name.
    let env = ProbeEnv::new().with_roots(roots);
    let check = tcp_check(server.addr.port(), tls(Some("other.test"), false), LONG);
    let r = probe_with(&check, &env, server.addr).await;
    assert_eq!(r.code, Code::L6Rsp, "{r}");
}

#[tokio::test]
async fn skip_verify_accepts_any_certificate_and_no_sni_without_a_name() {
    let (server, mut sni, _roots) = tls_server(false).await;
    let check = tcp_check(server.addr.port(), tls(None, true), LONG);
    let r = probe_with(&check, &ProbeEnv::new(), server.addr).await;
    assert_eq!(r.code, Code::L6Ok, "{r}");
    assert_eq!(sni.recv().await.unwrap(), None);
}

#[tokio::test]
async fn tls_to_a_plain_server_is_l6rsp_and_a_silent_one_l6tout() {
    let plain = serve(listen_v4().await, |mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let check = tcp_check(plain.addr.port(), tls(None, true), LONG);
    let r = probe_with(&check, &ProbeEnv::new(), plain.addr).await;
    assert_eq!(r.code, Code::L6Rsp, "{r}");

    let silent = serve(listen_v4().await, |s| async move {
        let _open = s;
        std::future::pending::<()>().await;
    });
    let check = tcp_check(silent.addr.port(), tls(None, true), SHORT);
    let r = probe_with(&check, &ProbeEnv::new(), silent.addr).await;
    assert_eq!(r.code, Code::L6Tout, "{r}");
}

#[tokio::test]
async fn https_does_tls_once_with_sni_and_verification() {
    let (server, mut sni, roots) = tls_server(true).await;
    let mut p = http_probe(server.addr.port());
    p.host = Some("backend.test".into());
    p.tls = tls(Some("backend.test"), false);
    p.response_regex = Some("healthy".into());
    let env = ProbeEnv::new().with_roots(roots);
    let r = probe_with(&http_check(p.clone(), LONG), &env, server.addr).await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    assert_eq!(sni.recv().await.unwrap().as_deref(), Some("backend.test"));

    // Skip-verify with the system roots.
    p.tls = tls(Some("backend.test"), true);
    let r = probe_with(&http_check(p.clone(), LONG), &ProbeEnv::new(), server.addr).await;
    assert_eq!(r.code, Code::L7Ok, "{r}");

    // Verification on with the system roots: the handshake fails.
    p.tls = tls(Some("backend.test"), false);
    let r = probe_with(&http_check(p, LONG), &ProbeEnv::new(), server.addr).await;
    assert_eq!(r.code, Code::L6Rsp, "{r}");
}
