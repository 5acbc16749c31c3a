//! Loopback HTTP backends for the demo, the tests and the benches: each
//! answers `GET`/`HEAD` on every path with `200 ok` while healthy and `503`
//! while not, and can be switched at any time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One loopback HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl HttpBackend {
    /// Serves on `addr` (a loopback address; port 0 for any).
    pub async fn start(addr: SocketAddr) -> std::io::Result<HttpBackend> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        let addr = listener.local_addr()?;
        let healthy = Arc::new(AtomicBool::new(true));
        let hanging = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let app = {
            let healthy = healthy.clone();
            let hanging = hanging.clone();
            let requests = requests.clone();
            axum::Router::new().fallback(move || {
                let healthy = healthy.load(Ordering::Relaxed);
                let hanging = hanging.load(Ordering::Relaxed);
                requests.fetch_add(1, Ordering::Relaxed);
                async move {
                    if hanging {
                        std::future::pending::<()>().await;
                    }
                    if healthy {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "failing\n")
                    }
                }
            })
        };
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(HttpBackend {
            addr,
            healthy,
            hanging,
            requests,
            stop,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes it answer 200 (`true`) or 503 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Makes it accept requests and never answer them (`true`), as a
    /// wedged server does, or answer again (`false`).
    pub fn set_hanging(&self, hanging: bool) {
        self.hanging.store(hanging, Ordering::Relaxed);
    }

    /// Whether it answers 200.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// How many requests it answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Starts one backend on each of `ips` (loopback addresses), all on one
/// port: `port`, or (0) a free port the first one gets.
pub async fn start_on(ips: &[std::net::IpAddr], port: u16) -> std::io::Result<Vec<HttpBackend>> {
    let mut out: Vec<HttpBackend> = Vec::with_capacity(ips.len());
    let mut port = port;
    for ip in ips {
        let b = HttpBackend::start(SocketAddr::new(*ip, port)).await?;
        port = b.addr().port();
        out.push(b);
    }
    Ok(out)
}
