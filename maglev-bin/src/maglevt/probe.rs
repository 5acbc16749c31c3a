//! One probe of one VIP, as a client meets it: a `GET` of the URI over
//! HTTP or HTTPS, or a TCP connect, timed from the connect to the end of
//! the response, within the timeout, with the tallied response header.
//!
//! Without keepalive every probe opens a new connection (so Maglev hashes
//! each afresh) and asks the server to close it. With keepalive a VIP keeps
//! its idle connections and reuses them, as a browser would: flows then
//! stick to their backend until the connection breaks.
//!
//! Every probe ends by the timeout, reads at most [`MAX_HEAD`] bytes of
//! response head and [`MAX_BODY`] of body, and keeps at most
//! [`MAX_HEADER_VALUE`] characters of the header.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use maglev_core::config::TlsParams;
use maglev_health::probe::TlsClient;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::stats::NO_HEADER;
use super::targets::{Target, VipProbe};

/// The `User-Agent` of every probe.
pub const USER_AGENT_VALUE: &str = concat!("maglevt/", env!("CARGO_PKG_VERSION"), " (maglev)");

/// The most bytes of response head read.
pub const MAX_HEAD: usize = 16 * 1024;

/// The most bytes of response body read; a longer body ends the exchange
/// there (and, with keepalive, the connection).
pub const MAX_BODY: usize = 64 * 1024;

/// The most characters of the tallied header's value kept.
pub const MAX_HEADER_VALUE: usize = 64;

/// The most idle keepalive connections one VIP keeps: as many as it can
/// have probes in flight, so a connection is only opened when every open
/// one is busy (at the default interval, one connection in all).
const MAX_IDLE: usize = super::session::MAX_IN_FLIGHT;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// From the start of the connect to the end of the response (or the
    /// failure).
    pub latency: Duration,
    /// How it ended.
    pub status: Status,
    /// The tallied header's value in an HTTP answer ([`NO_HEADER`] when
    /// the answer lacks it); `None` when nothing is tallied.
    pub header: Option<String>,
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The TCP connect succeeded (TCP probes).
    Connected,
    /// An HTTP answer with this status code.
    Http(u16),
    /// Nothing within the timeout.
    Timeout,
    /// The connect, TLS or HTTP failed; what happened.
    NetErr(String),
}

impl Status {
    /// Whether this counts as a success: a connect, or HTTP 2xx/3xx.
    pub fn is_ok(&self) -> bool {
        match self {
            Status::Connected => true,
            Status::Http(code) => (200..400).contains(code),
            Status::Timeout | Status::NetErr(_) => false,
        }
    }

    /// A short word for the LAST column: `200`, `open`, `timeout`,
    /// `refused`...
    pub fn short(&self) -> String {
        match self {
            Status::Connected => "open".to_owned(),
            Status::Http(code) => code.to_string(),
            Status::Timeout => "timeout".to_owned(),
            Status::NetErr(detail) => net_word(detail).to_owned(),
        }
    }
}

/// The gist of a network error, for a narrow column.
fn net_word(detail: &str) -> &'static str {
    let d = detail.to_ascii_lowercase();
    if d.contains("refused") {
        "refused"
    } else if d.contains("reset") {
        "reset"
    } else if d.contains("unreachable") {
        "unreach"
    } else if d.starts_with("tls") {
        "tls-err"
    } else if d.contains("closed") || d.contains("eof") {
        "closed"
    } else {
        "net-err"
    }
}

/// What every probe of a run shares (from the flags).
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The request path and query.
    pub uri: Uri,
    /// The `Host` header and the TLS server name; the VIP address when
    /// `None`.
    pub host: Option<String>,
    /// The response header tallied.
    pub header: Option<HeaderName>,
    /// Each probe's deadline.
    pub timeout: Duration,
    /// Reuse connections.
    pub keepalive: bool,
    /// Accept any TLS certificate.
    pub insecure: bool,
}

/// Probes one VIP.
pub struct Prober {
    addr: SocketAddr,
    kind: VipProbe,
    request_host: HeaderValue,
    settings: ProbeSettings,
    tls: Option<TlsClient>,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("addr", &self.addr)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// An HTTP connection: the request half, and the task driving it (ended
/// with the connection).
struct Connection {
    sender: SendRequest<Empty<Bytes>>,
    driver: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Prober {
    /// A prober for `target`. Fails on a `--host` that is neither a valid
    /// `Host` header nor (for HTTPS) a valid TLS server name.
    pub fn new(target: &Target, settings: &ProbeSettings) -> Result<Prober, String> {
        let default_port = match target.kind {
            VipProbe::Https => 443,
            _ => 80,
        };
        let name = match &settings.host {
            Some(h) => h.clone(),
            None => match target.addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            },
        };
        let host = if target.addr.port() == default_port {
            name
        } else {
            format!("{name}:{}", target.addr.port())
        };
        let request_host = HeaderValue::from_str(&host)
            .map_err(|_| format!("--host {host:?} is not a valid Host header"))?;
        let tls = match target.kind {
            VipProbe::Https => Some(
                TlsClient::new(
                    &TlsParams {
                        server_name: settings.host.clone(),
                        insecure_skip_verify: settings.insecure,
                    },
                    &[b"http/1.1"],
                    None,
                )
                .map_err(|e| format!("TLS for {}: {e}", target.name))?,
            ),
            _ => None,
        };
        Ok(Prober {
            addr: target.addr,
            kind: target.kind,
            request_host,
            settings: settings.clone(),
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Probes once; never fails (a failure is an outcome) and returns by
    /// the timeout.
    pub async fn probe(&self) -> Outcome {
        let start = Instant::now();
        let work = async {
            match self.kind {
                VipProbe::Tcp => self.connect().await.map(|tcp| {
                    reset(&tcp);
                    (Status::Connected, None)
                }),
                VipProbe::Http | VipProbe::Https => self.get().await,
            }
        };
        let (status, header) = match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(Ok(done)) => done,
            Ok(Err(detail)) => (Status::NetErr(detail), None),
            Err(_) => (Status::Timeout, None),
        };
        Outcome {
            latency: start.elapsed(),
            status,
            header,
        }
    }

    async fn connect(&self) -> Result<TcpStream, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// One `GET`: on a connection of its own, or with keepalive on an idle
    /// one when there is one.
    async fn get(&self) -> Result<(Status, Option<String>), String> {
        if !self.settings.keepalive {
            let tcp = self.connect().await?;
            return match &self.tls {
                None => self.get_once(tcp).await,
                Some(tls) => {
                    let stream = tls
                        .connect(tcp, self.addr.ip())
                        .await
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                    self.get_once(stream).await
                }
            };
        }
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => self.open().await?,
        };
        let resp = conn
            .sender
            .send_request(self.request()?)
            .await
            .map_err(|e| format!("HTTP: {}", detail(&e)))?;
        let (answer, reusable) = self.read(resp).await?;
        if reusable {
            self.put_idle(conn);
        }
        Ok(answer)
    }

    /// One `GET` on a connection used for nothing else, driven here rather
    /// than on a task of its own (a task less per probe).
    async fn get_once<T>(&self, io: T) -> Result<(Status, Option<String>), String>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = builder()
            .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {}", detail(&e)))?;
        let req = self.request()?;
        let mut work = std::pin::pin!(async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("HTTP: {}", detail(&e)))?;
            self.read(resp).await.map(|(answer, _)| answer)
        });
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            biased;
            r = &mut work => r,
            c = &mut conn => match c {
                Err(e) => Err(format!("HTTP: {}", detail(&e))),
                // The connection is done; the answer is what it delivered.
                Ok(()) => work.await,
            },
        }
    }

    /// The status and tallied header of `resp`, its body drained; and
    /// whether the connection may carry another request.
    async fn read(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<((Status, Option<String>), bool), String> {
        let status = resp.status().as_u16();
        let header = self
            .settings
            .header
            .as_ref()
            .map(|name| match resp.headers().get(name) {
                Some(value) => String::from_utf8_lossy(value.as_bytes())
                    .chars()
                    .take(MAX_HEADER_VALUE)
                    .collect(),
                None => NO_HEADER.to_owned(),
            });
        let closes = resp
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let whole = drain(resp.into_body()).await?;
        Ok(((Status::Http(status), header), whole && !closes))
    }

    fn request(&self) -> Result<Request<Empty<Bytes>>, String> {
        let mut b = Request::builder()
            .method(Method::GET)
            .uri(self.settings.uri.clone())
            .header(HOST, self.request_host.clone())
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if !self.settings.keepalive {
            b = b.header(CONNECTION, HeaderValue::from_static("close"));
        }
        b.body(Empty::new())
            .map_err(|e| format!("building the request: {e}"))
    }

    /// A new connection: TCP, TLS for HTTPS, the HTTP/1.1 handshake.
    async fn open(&self) -> Result<Connection, String> {
        let tcp = self.connect().await?;
        match &self.tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let stream = tls
                    .connect(tcp, self.addr.ip())
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                handshake(stream).await
            }
        }
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && c.sender.is_ready() {
                return Some(c);
            }
        }
        None
    }

    fn put_idle(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

/// The HTTP/1.1 handshake over `io`, its driver on a task of its own.
async fn handshake<T>(io: T) -> Result<Connection, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = builder()
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {}", detail(&e)))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    })
    .abort_handle();
    Ok(Connection { sender, driver })
}

/// hyper's HTTP/1.1 client, its response head bounded by [`MAX_HEAD`].
fn builder() -> hyper::client::conn::http1::Builder {
    let mut b = hyper::client::conn::http1::Builder::new();
    b.max_buf_size(MAX_HEAD.max(8192));
    b
}

/// Reads the body to its end, or [`MAX_BODY`] bytes: whether it ended.
async fn drain(mut body: hyper::body::Incoming) -> Result<bool, String> {
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("HTTP body after {read} bytes: {}", detail(&e)))?;
        if let Ok(data) = frame.into_data() {
            read += data.len();
            if read >= MAX_BODY {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// hyper's error with its cause, which says what actually happened.
fn detail(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Closes a connect probe's socket with a reset, as health checkers do: no
/// FIN handshake, no TIME_WAIT left behind at tens of probes a second.
fn reset(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_operators_expect() {
        assert!(Status::Connected.is_ok());
        assert!(Status::Http(204).is_ok());
        assert!(Status::Http(302).is_ok());
        assert!(!Status::Http(404).is_ok());
        assert!(!Status::Http(503).is_ok());
        assert!(!Status::Timeout.is_ok());
        assert_eq!(Status::Http(503).short(), "503");
        assert_eq!(
            Status::NetErr("connect 127.0.0.1:1: Connection refused (os error 111)".into()).short(),
            "refused"
        );
        assert_eq!(
            Status::NetErr("TLS handshake: invalid peer certificate".into()).short(),
            "tls-err"
        );
        assert_eq!(Status::Connected.short(), "open");
    }
}
