//! The `http` and `https` probes: one HTTP/1.1 request on a fresh
//! connection, the status checked against `response-code`, and with
//! `response-regex` at most `max-body` bytes of the body read and matched.
//!
//! hyper drives the exchange over our own stream, so the deadline and the
//! size bounds are ours: the response head may take at most
//! [`MAX_HEAD`] bytes, the body at most `max-body`, and everything ends by
//! the check's `timeout`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use maglev_core::config::{HttpMethod, HttpProbe, StatusCodes, compile_response_regex};
use regex::bytes::Regex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tcp::{Use, connect};
use super::tls::TlsClient;
use super::{Fail, LocalCause, Phase, ProbeEnv, ProbeResult, Prober, timed};
use crate::code::Code;
use crate::error::Error;
use crate::netns::Sockets;

/// The `User-Agent` of every HTTP probe.
pub const USER_AGENT_VALUE: &str =
    concat!("maglev-health/", env!("CARGO_PKG_VERSION"), " (maglev)");

/// The most bytes of response head (status line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;

/// Probes with one HTTP or HTTPS request.
#[derive(Debug)]
pub struct HttpProber {
    port: u16,
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    codes: StatusCodes,
    regex: Option<Regex>,
    max_body: usize,
    tls: Option<TlsClient>,
    timeout: Duration,
    sockets: Sockets,
}

impl HttpProber {
    /// A prober for an `http` or `https` health check.
    pub fn new(p: &HttpProbe, timeout: Duration, env: &ProbeEnv) -> Result<HttpProber, Error> {
        let bad = |source| Error::BadRequest {
            path: p.path.clone(),
            host: p.host.clone().unwrap_or_default(),
            source,
        };
        let uri: Uri = p
            .path
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(e.into()))?;
        let host = p
            .host
            .as_deref()
            .map(|h| HeaderValue::from_str(&host_port(h, p.port, p.tls.is_some())))
            .transpose()
            .map_err(|e| bad(e.into()))?;
        let regex = p
            .response_regex
            .as_deref()
            .map(|r| {
                compile_response_regex(r).map_err(|source| Error::BadRegex {
                    pattern: r.to_owned(),
                    source,
                })
            })
            .transpose()?;
        let tls = p
            .tls
            .as_ref()
            .map(|t| TlsClient::new(t, &[b"http/1.1"], env.roots.clone()))
            .transpose()?;
        Ok(HttpProber {
            port: p.port,
            method: match p.method {
                HttpMethod::Get => Method::GET,
                HttpMethod::Head => Method::HEAD,
            },
            uri,
            host,
            codes: p.response_codes.clone(),
            regex,
            max_body: p.max_body,
            tls,
            timeout,
            sockets: env.sockets.clone(),
        })
    }

    fn request(&self, target: IpAddr) -> Result<Request<Empty<Bytes>>, Fail> {
        let host = match &self.host {
            Some(h) => h.clone(),
            None => {
                let name = match target {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                };
                HeaderValue::from_str(&host_port(&name, self.port, self.tls.is_some())).map_err(
                    |e| Fail::local(LocalCause::LocalSocket, format!("Host header: {e}")),
                )?
            }
        };
        Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone())
            .header(HOST, host)
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .header(CONNECTION, HeaderValue::from_static("close"))
            .body(Empty::new())
            .map_err(|e| Fail::local(LocalCause::LocalSocket, format!("build request: {e}")))
    }

    async fn run(&self, addr: SocketAddr, phase: &Phase) -> Result<(Code, String), Fail> {
        let target = addr.ip();
        let req = self.request(target)?;
        let how = Use {
            reset_on_close: self.tls.is_none(),
            sends_first: true,
        };
        let tcp = connect(&self.sockets, addr, how).await?;
        match &self.tls {
            None => {
                phase.enter(Phase::HTTP);
                self.exchange(tcp, req).await
            }
            Some(tls) => {
                phase.enter(Phase::TLS);
                let stream = tls.handshake(tcp, target).await?;
                phase.enter(Phase::HTTP);
                self.exchange(stream, req).await
            }
        }
    }

    /// Sends `req` over `io` and judges the response.
    async fn exchange<T>(&self, io: T, req: Request<Empty<Bytes>>) -> Result<(Code, String), Fail>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let mut builder = hyper::client::conn::http1::Builder::new();
        builder.max_buf_size(MAX_HEAD.max(8192));
        let (mut sender, conn) = builder
            .handshake::<_, Empty<Bytes>>(TokioIo::new(NoShutdown(io)))
            .await
            .map_err(|e| Fail::new(Code::L7Rsp, format!("HTTP: {e}")))?;
        let mut conn = std::pin::pin!(conn);
        let work = std::pin::pin!(async {
            let resp = sender.send_request(req).await.map_err(|e| {
                Fail::new(Code::L7Rsp, format!("HTTP response: {}", hyper_detail(&e)))
            })?;
            self.judge(resp).await
        });
        let mut work = work;
        tokio::select! {
            biased;
            r = &mut work => r,
            c = &mut conn => match c {
                Err(e) => Err(Fail::new(Code::L7Rsp, format!("HTTP response: {}", hyper_detail(&e)))),
                // The connection is done; the response is whatever it
                // delivered.
                Ok(()) => work.await,
            },
        }
    }

    async fn judge(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<(Code, String), Fail> {
        let status = resp.status().as_u16();
        if !self.codes.contains(status) {
            return Err(Fail::new(
                Code::L7Sts,
                format!("HTTP status {status}, want {}", self.codes),
            ));
        }
        let Some(regex) = &self.regex else {
            return Ok((Code::L7Ok, format!("HTTP status {status}")));
        };
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        while buf.len() < self.max_body {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = self.max_body - buf.len();
                        buf.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(e)) => {
                    return Err(Fail::new(
                        Code::L7Rsp,
                        format!("HTTP body after {} bytes: {}", buf.len(), hyper_detail(&e)),
                    ));
                }
            }
        }
        if regex.is_match(&buf) {
            Ok((
                Code::L7Ok,
                format!("HTTP status {status}, body matches {:?}", regex.as_str()),
            ))
        } else {
            Err(Fail::new(
                Code::L7Rsp,
                format!(
                    "HTTP status {status}, first {} body bytes do not match {:?}",
                    buf.len(),
                    regex.as_str()
                ),
            ))
        }
    }
}

/// The probe's stream, as hyper sees it: hyper's orderly shutdown (a FIN
/// or a TLS close_notify once the response is in) is skipped, because the
/// probe closes the connection itself as soon as it has its verdict.
struct NoShutdown<T>(T);

impl<T: AsyncRead + Unpin> AsyncRead for NoShutdown<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for NoShutdown<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A hyper error with its cause, which hyper keeps apart.
fn hyper_detail(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// `host` with `:port` unless the port is the scheme's default.
fn host_port(host: &str, port: u16, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    if port == default {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

#[async_trait::async_trait]
impl Prober for HttpProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        let addr = SocketAddr::new(target, self.port);
        let phase = Phase::default();
        timed(addr, self.timeout, &phase, self.run(addr, &phase)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_leaves_out_default_ports() {
        assert_eq!(host_port("example.com", 80, false), "example.com");
        assert_eq!(host_port("example.com", 443, true), "example.com");
        assert_eq!(host_port("[::1]", 8080, false), "[::1]:8080");
        assert_eq!(host_port("10.0.0.1", 80, true), "10.0.0.1:80");
    }
}
