//! The HTTP probe against loopback servers that behave well and badly.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use common::*;
use maglev_core::config::{HttpMethod, StatusCodes};
use maglev_health::Code;
use maglev_health::probe::{self, ProbeEnv, ProbeResult, USER_AGENT_VALUE};
use tokio::io::AsyncWriteExt;

async fn probe_once(
    check: &maglev_core::config::HealthCheck,
    addr: std::net::SocketAddr,
) -> ProbeResult {
    let prober = probe::build(check, &ProbeEnv::new()).unwrap();
    prober.probe(addr.ip()).await
}

#[tokio::test]
async fn passes_on_200_and_sends_method_path_host_and_user_agent() {
    let (server, mut heads) = http_fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").await;
    let mut p = http_probe(server.addr.port());
    p.host = Some("www.example.com".into());
    let r = probe_once(&http_check(p, LONG), server.addr).await;
    assert_eq!((r.code, r.detail.as_str()), (Code::L7Ok, "HTTP status 200"));
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("host: www.example.com:{}\r\n", server.addr.port())),
        "{head}"
    );
    assert!(lower.contains("connection: close\r\n"), "{head}");
}

/// The `User-Agent` a server receives names maglev and its version,
/// spelled out here rather than read from the constant under test.
#[tokio::test]
async fn a_server_receives_the_maglev_user_agent() {
    let (server, mut heads) = http_fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let r = probe_once(
        &http_check(http_probe(server.addr.port()), LONG),
        server.addr,
    )
    .await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    let head = heads.recv().await.unwrap();
    let agents: Vec<_> = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
        .map(|(_, value)| value.trim())
        .collect();
    let want = format!("maglev-health/{} (maglev)", env!("CARGO_PKG_VERSION"));
    assert_eq!(agents, [want.as_str()], "{head}");
    assert_eq!(USER_AGENT_VALUE, want);
}

#[tokio::test]
async fn host_defaults_to_the_address_and_head_is_sent() {
    let (server, mut heads) = http_fixed(b"HTTP/1.1 204 No Content\r\n\r\n").await;
    let mut p = http_probe(server.addr.port());
    p.method = HttpMethod::Head;
    p.path = "/".into();
    let r = probe_once(&http_check(p, LONG), server.addr).await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("HEAD / HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: 127.0.0.1:{}\r\n", server.addr.port())),
        "{head}"
    );
}

#[tokio::test]
async fn status_switches_between_pass_and_l7sts() {
    let status = Arc::new(AtomicU16::new(200));
    let st = status.clone();
    let server = serve(listen_v4().await, move |mut s| {
        let code = st.load(Ordering::SeqCst);
        async move {
            read_head(&mut s).await;
            let resp = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let mut p = http_probe(server.addr.port());
    p.response_codes = StatusCodes::new(vec![(200, 200), (204, 204)]);
    let check = http_check(p, LONG);
    assert_eq!(probe_once(&check, server.addr).await.code, Code::L7Ok);
    status.store(503, Ordering::SeqCst);
    let r = probe_once(&check, server.addr).await;
    assert_eq!(
        (r.code, r.detail.as_str()),
        (Code::L7Sts, "HTTP status 503, want 200,204")
    );
    status.store(204, Ordering::SeqCst);
    assert_eq!(probe_once(&check, server.addr).await.code, Code::L7Ok);
    status.store(302, Ordering::SeqCst);
    assert_eq!(probe_once(&check, server.addr).await.code, Code::L7Sts);
}

#[tokio::test]
async fn body_regex_matches_or_fails_with_l7rsp() {
    let (server, _heads) =
        http_fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nstatus: degraded").await;
    let mut p = http_probe(server.addr.port());
    p.response_regex = Some("status: (ok|degraded)".into());
    let r = probe_once(&http_check(p.clone(), LONG), server.addr).await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    p.response_regex = Some("^status: ok$".into());
    let r = probe_once(&http_check(p, LONG), server.addr).await;
    assert_eq!(r.code, Code::L7Rsp, "{r}");
    assert!(r.detail.contains("do not match"), "{r}");
}

#[tokio::test]
async fn regex_sees_only_max_body_bytes() {
    let (server, _heads) =
        http_fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n0123456789OK").await;
    let mut p = http_probe(server.addr.port());
    p.response_regex = Some("OK".into());
    p.max_body = 10;
    let r = probe_once(&http_check(p, LONG), server.addr).await;
    assert_eq!(r.code, Code::L7Rsp, "{r}");
    assert!(r.detail.contains("first 10 body bytes"), "{r}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_with_l7tout() {
    let server = serve(listen_v4().await, |mut s| async move {
        read_head(&mut s).await;
        std::future::pending::<()>().await;
    });
    let r = probe_once(
        &http_check(http_probe(server.addr.port()), SHORT),
        server.addr,
    )
    .await;
    assert_eq!(r.code, Code::L7Tout, "{r}");
}

#[tokio::test]
async fn a_server_that_hangs_mid_header_times_out_with_l7tout() {
    let server = serve(listen_v4().await, |mut s| async move {
        read_head(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
        std::future::pending::<()>().await;
    });
    let r = probe_once(
        &http_check(http_probe(server.addr.port()), SHORT),
        server.addr,
    )
    .await;
    assert_eq!(r.code, Code::L7Tout, "{r}");
}

#[tokio::test]
async fn a_server_that_stalls_mid_body_times_out_when_the_body_is_needed() {
    let server = serve(listen_v4().await, |mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            .await;
        std::future::pending::<()>().await;
    });
    let mut p = http_probe(server.addr.port());
    p.response_regex = Some("complete".into());
    let r = probe_once(&http_check(p.clone(), SHORT), server.addr).await;
    assert_eq!(r.code, Code::L7Tout, "{r}");
    // Without a regex the body is not read: the status decides.
    p.response_regex = None;
    let r = probe_once(&http_check(p, SHORT), server.addr).await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
}

#[tokio::test]
async fn endless_headers_fail_with_l7rsp_and_bounded_reads() {
    let server = serve(listen_v4().await, |mut s| async move {
        read_head(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
        let line = b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        // Until the prober hangs up.
        while s.write_all(line).await.is_ok() {}
    });
    let r = probe_once(
        &http_check(http_probe(server.addr.port()), LONG),
        server.addr,
    )
    .await;
    assert_eq!(r.code, Code::L7Rsp, "{r}");
    assert!(r.detail.contains("too large"), "{r}");
}

#[tokio::test]
async fn an_endless_body_is_read_only_up_to_max_body() {
    let server = serve(listen_v4().await, |mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let chunk = b"400\r\n"
            .iter()
            .copied()
            .chain([b'x'; 0x400])
            .chain(*b"\r\n")
            .collect::<Vec<u8>>();
        while s.write_all(&chunk).await.is_ok() {}
    });
    let mut p = http_probe(server.addr.port());
    p.response_regex = Some("^x+$".into());
    let r = probe_once(&http_check(p.clone(), LONG), server.addr).await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    p.response_regex = Some("y".into());
    let r = probe_once(&http_check(p, LONG), server.addr).await;
    assert_eq!(r.code, Code::L7Rsp, "{r}");
    assert!(r.detail.contains("first 65536 body bytes"), "{r}");
}

#[tokio::test]
async fn garbage_fails_with_l7rsp() {
    for garbage in [
        &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"",
    ] {
        let (server, _heads) = http_fixed(garbage).await;
        let r = probe_once(
            &http_check(http_probe(server.addr.port()), LONG),
            server.addr,
        )
        .await;
        assert_eq!(r.code, Code::L7Rsp, "{garbage:?}: {r}");
    }
}

#[tokio::test]
async fn a_closed_port_fails_with_l4con() {
    let listener = listen_v4().await;
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = probe_once(&http_check(http_probe(addr.port()), LONG), addr).await;
    assert_eq!(r.code, Code::L4Con, "{r}");
    assert!(r.detail.contains("refused"), "{r}");
}

#[tokio::test]
async fn ipv6_loopback_works() {
    let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let (tx, mut heads) = tokio::sync::mpsc::unbounded_channel();
    let server = serve(listener, move |mut s| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(read_head(&mut s).await);
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let r = probe_once(
        &http_check(http_probe(server.addr.port()), LONG),
        server.addr,
    )
    .await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(
        head.contains(&format!("host: [::1]:{}\r\n", server.addr.port())),
        "{head}"
    );
}
