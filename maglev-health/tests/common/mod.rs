//! Loopback servers and config builders shared by the integration tests.
//! Every server listens on 127.0.0.1 or ::1 and is stopped when the test's
//! runtime ends.
#![allow(dead_code, unreachable_pub, missing_docs)] // each test file uses a different part

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use maglev_core::config::{
    HealthCheck, HttpMethod, HttpProbe, Probe, StatusCodes, TcpProbe, Timing, TlsParams,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A loopback server: its address, how many connections it accepted, and
/// the request heads it read (when the handler reads one).
pub struct Server {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
}

impl Server {
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Serves every connection to `listener` with `handler`, each in its own
/// task.
pub fn serve<F, Fut>(listener: TcpListener, handler: F) -> Server
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handler(stream));
        }
    });
    Server { addr, accepted }
}

pub async fn listen_v4() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Reads a request head (up to the blank line, at most 16 KiB).
pub async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// An HTTP server answering every request with `response` (raw bytes),
/// reporting each request head on the returned channel.
pub async fn http_fixed(response: &'static [u8]) -> (Server, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = serve(listen_v4().await, move |mut s| {
        let tx = tx.clone();
        async move {
            let head = read_head(&mut s).await;
            let _ = tx.send(head);
            let _ = s.write_all(response).await;
            let _ = s.shutdown().await;
        }
    });
    (server, rx)
}

pub fn timing(timeout: Duration) -> Timing {
    Timing {
        interval: Duration::from_secs(2),
        fast_interval: Duration::from_millis(500),
        down_interval: Duration::from_secs(10),
        timeout,
        rise: 2,
        fall: 3,
    }
}

pub fn http_probe(port: u16) -> HttpProbe {
    HttpProbe {
        port,
        path: "/healthz".into(),
        method: HttpMethod::Get,
        host: None,
        response_codes: StatusCodes::default(),
        response_regex: None,
        max_body: 64 * 1024,
        tls: None,
    }
}

pub fn http_check(p: HttpProbe, timeout: Duration) -> HealthCheck {
    HealthCheck::new(Probe::Http(p), timing(timeout))
}

pub fn tcp_check(port: u16, tls: Option<TlsParams>, timeout: Duration) -> HealthCheck {
    HealthCheck::new(Probe::Tcp(TcpProbe { port, tls }), timing(timeout))
}

pub fn icmp_check(timeout: Duration) -> HealthCheck {
    HealthCheck::new(Probe::Icmp, timing(timeout))
}

/// The timeout of probes in tests that expect a timeout: short, but no
/// assertion depends on it.
pub const SHORT: Duration = Duration::from_millis(300);
/// The timeout of probes that should succeed.
pub const LONG: Duration = Duration::from_secs(10);
