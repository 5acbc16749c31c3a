//! Loopback HTTP backends for the demo, the tests and the benches: each
//! answers `GET`/`HEAD` on every path with `200 ok` while healthy and `503`
//! while not, names itself in an [`SERVED_BY`] response header (so a client
//! such as `maglevt` can tell which backend answered), counts the requests
//! it gets per path, and can be switched at any time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The response header in which a backend names itself.
pub const SERVED_BY: &str = "x-served-by";

/// The most distinct paths a backend counts; requests to any further path
/// count under [`OTHER_PATHS`] (a client cannot grow the table).
pub const MAX_PATHS: usize = 64;

/// The path under which requests beyond [`MAX_PATHS`] distinct paths count.
pub const OTHER_PATHS: &str = "(other)";

/// One loopback HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    addr: SocketAddr,
    name: String,
    healthy: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    paths: Arc<Mutex<HashMap<String, u64>>>,
    stop: CancellationToken,
}

impl HttpBackend {
    /// Serves on `addr` (a loopback address; port 0 for any), naming
    /// itself by its address.
    pub async fn start(addr: SocketAddr) -> std::io::Result<HttpBackend> {
        HttpBackend::named(addr, &addr.ip().to_string()).await
    }

    /// Serves on `addr` (a loopback address; port 0 for any), naming
    /// itself `name` in the [`SERVED_BY`] header.
    pub async fn named(addr: SocketAddr, name: &str) -> std::io::Result<HttpBackend> {
        let served_by = HeaderValue::from_str(name).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("backend name {name:?} cannot be an HTTP header value"),
            )
        })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        let addr = listener.local_addr()?;
        let healthy = Arc::new(AtomicBool::new(true));
        let hanging = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let paths = Arc::new(Mutex::new(HashMap::new()));
        let stop = CancellationToken::new();
        let app = {
            let healthy = healthy.clone();
            let hanging = hanging.clone();
            let requests = requests.clone();
            let paths = paths.clone();
            axum::Router::new().fallback(move |uri: Uri| {
                let healthy = healthy.load(Ordering::Relaxed);
                let hanging = hanging.load(Ordering::Relaxed);
                requests.fetch_add(1, Ordering::Relaxed);
                count_path(&paths, uri.path());
                let header = [(HeaderName::from_static(SERVED_BY), served_by.clone())];
                async move {
                    if hanging {
                        std::future::pending::<()>().await;
                    }
                    if healthy {
                        (StatusCode::OK, header, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, header, "failing\n")
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
            name: name.to_owned(),
            healthy,
            hanging,
            requests,
            paths,
            stop,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name it gives in the [`SERVED_BY`] header.
    pub fn name(&self) -> &str {
        &self.name
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

    /// How many requests it got for `path` (the URI's path, no query).
    pub fn requests_to(&self, path: &str) -> u64 {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        paths.get(path).copied().unwrap_or(0)
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Counts one request for `path`, within [`MAX_PATHS`] distinct paths.
fn count_path(paths: &Mutex<HashMap<String, u64>>, path: &str) {
    let mut paths = paths.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = paths.get_mut(path) {
        *n += 1;
    } else if paths.len() < MAX_PATHS {
        paths.insert(path.to_owned(), 1);
    } else {
        *paths.entry(OTHER_PATHS.to_owned()).or_default() += 1;
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
