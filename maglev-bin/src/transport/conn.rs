//! Accepted connections and the accept loop every server shares.
//!
//! Each listener has an accept task that never stops accepting: who gets
//! in is its server's [`Gate`] (a connection cap from the descriptor
//! [budget](crate::transport::budget), pending connections capped per
//! server and per peer, the oldest pending shed to make room, a new one
//! closed at once when every place serves). A TLS handshake runs in a
//! task of its own, so a slow client does not hold up the next.
//!
//! Every connection has two deadlines, whatever it speaks: its first
//! request's headers (after the TLS handshake) within [`HEADER_TIMEOUT`]
//! of its accept, and then no [`IDLE_TIMEOUT`] without a byte either way
//! (gRPC's keepalive pings and the event streams' pings keep a live
//! connection busy). On HTTP/1.1 every later request's headers too must be
//! complete within [`HEADER_TIMEOUT`] of their first byte (a request
//! starts with the first byte read after a response was written), so a
//! client trickling a header cannot hold its place. (A client that sends
//! its body only after a `100 Continue` has that body taken for a header:
//! its connection is closed [`HEADER_TIMEOUT`] later, between requests or
//! during a slow one; our endpoints' bodies are small and none is slow.) A failed handshake (no client certificate, an
//! expired or foreign one, not TLS at all) is logged with the peer and
//! the reason, and the connection closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::daemon::Handle;
use crate::transport::budget::{self, Caps, Listeners};
use crate::transport::gate::{Gate, Ticket};
use crate::transport::peer::{CertNames, Peer};
use crate::transport::server::{Alpn, ServerTls};

/// How long accepting waits after a failed `accept` (out of descriptors,
/// say) before trying again, so a persistent failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a client has from its connection to its first request's
/// headers, TLS handshake included.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may go without a byte either way.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The HTTP/2 client preface: a gRPC connection's first request is under
/// way once it is in.
const H2_PREFACE: usize = 24;

/// The byte stream under a connection.
#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS, who is on the other end, and
/// its place and deadlines.
pub struct Conn {
    io: Io,
    peer: Peer,
    watch: Watch,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("io", &self.io)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// A connection's deadlines and its way out when shed.
struct Watch {
    ticket: Ticket,
    proto: Alpn,
    /// How far the request's headers are: bytes of the preface (HTTP/2),
    /// or of `\r\n\r\n` matched (HTTP/1.1).
    progress: usize,
    /// While a request's headers are being read, when they are due.
    head_due: Option<Instant>,
    /// A response was written since the last headers were complete.
    wrote_since_head: bool,
    last: Instant,
    timer: Pin<Box<Sleep>>,
    shed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Watch {
    fn new(ticket: Ticket, proto: Alpn, accepted: Instant) -> Watch {
        let header_due = accepted + HEADER_TIMEOUT;
        let shed = Box::pin(ticket.shed().clone().cancelled_owned());
        Watch {
            ticket,
            proto,
            progress: 0,
            head_due: Some(header_due),
            wrote_since_head: false,
            last: accepted,
            timer: Box::pin(tokio::time::sleep_until(header_due)),
            shed,
        }
    }

    /// When the connection is due to close now.
    fn due(&self) -> Instant {
        self.head_due.unwrap_or(self.last + IDLE_TIMEOUT)
    }

    /// An error when the connection was shed or is past a deadline;
    /// otherwise wakes `cx` when it will be.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.shed.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shed to make room for a new connection",
            ));
        }
        // The deadline moves later as bytes go, so the timer is moved only
        // when it fires (or when a request starts: see `read`).
        while self.timer.as_mut().poll(cx).is_ready() {
            let due = self.due();
            if Instant::now() >= due {
                let what = if self.head_due.is_some() {
                    "no request headers within the header timeout"
                } else {
                    "idle for the idle timeout"
                };
                return Err(io::Error::new(io::ErrorKind::TimedOut, what));
            }
            self.timer.as_mut().reset(due);
        }
        Ok(())
    }

    /// `bytes` were read.
    fn read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.last = Instant::now();
        self.ticket.active(self.last);
        if self.head_due.is_none() {
            if self.proto != Alpn::Http1 || !self.wrote_since_head {
                return;
            }
            // The next request starts: its headers are due.
            let due = self.last + HEADER_TIMEOUT;
            self.head_due = Some(due);
            self.progress = 0;
            self.wrote_since_head = false;
            self.timer.as_mut().reset(due);
        }
        match self.proto {
            Alpn::H2 => self.progress += bytes.len(),
            Alpn::Http1 => {
                const END: &[u8] = b"\r\n\r\n";
                for b in bytes {
                    self.progress = if *b == END[self.progress] {
                        self.progress + 1
                    } else if *b == b'\r' {
                        1
                    } else {
                        0
                    };
                    if self.progress == END.len() {
                        break;
                    }
                }
            }
        }
        let done = match self.proto {
            Alpn::H2 => H2_PREFACE,
            Alpn::Http1 => 4,
        };
        if self.progress >= done {
            self.head_due = None;
            self.ticket.serving();
        }
    }

    fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.last = Instant::now();
            self.ticket.active(self.last);
            if self.head_due.is_none() {
                self.wrote_since_head = true;
            }
        }
    }
}

impl Conn {
    /// The other end.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.watch.check(cx)?;
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = polled {
            this.watch.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.check(cx)?;
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        };
        if let Poll::Ready(Ok(n)) = polled {
            this.watch.wrote(n);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.check(cx)?;
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        };
        if let Poll::Ready(Ok(n)) = polled {
            this.watch.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// tonic puts the [`Peer`] in every request's extensions.
impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer().clone()
    }
}

/// The caps of every server of `handle`'s daemon, from the descriptor
/// limit now and the config's probed backends (a static backend, without
/// a health check, never opens a socket: 160,000 of them left every
/// listener at its minimum, and 8 readers then kept an operator out).
pub fn caps(handle: &Handle) -> Caps {
    let settings = handle.settings();
    let on = Listeners {
        grpc: settings.grpc_addr.is_some(),
        metrics: settings.metrics_addr.is_some(),
        http: settings.http_addr.is_some(),
    };
    let probed = handle
        .config()
        .backends()
        .values()
        .filter(|b| b.healthcheck.is_some())
        .count();
    Caps::new(budget::nofile(), probed, on)
}

/// The connections of every listener, TLS ones after their handshake
/// with `tls` (for `alpn`), until the daemon stops or the receiver is
/// dropped; at most `cap` open at once. `server` names the server in logs
/// (`gRPC`, `metrics`, `web`); `proto` is what it speaks (its first
/// request's headers end the header timeout).
pub fn accept(
    handle: &Handle,
    listeners: Vec<TcpListener>,
    tls: Option<Arc<ServerTls>>,
    proto: Alpn,
    server: &'static str,
    cap: usize,
) -> mpsc::Receiver<Conn> {
    let (tx, rx) = mpsc::channel(16);
    let gate = Gate::new(server, cap, Some(handle.metrics().listeners().clone()));
    tracing::info!(server, cap, "{server} connection cap");
    for listener in listeners {
        let tx = tx.clone();
        let handle = handle.clone();
        let tls = tls.clone();
        let gate = gate.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = handle.stopping() => return,
                    _ = tx.closed() => return,
                    a = listener.accept() => a,
                };
                let (stream, addr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(
                            listener = ?listener.local_addr().ok(),
                            error = %e,
                            "{server} accept failed"
                        );
                        tokio::select! {
                            _ = handle.stopping() => return,
                            _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                        continue;
                    }
                };
                let accepted_at = Instant::now();
                // Full of serving connections: closed at once.
                let Some(ticket) = gate.admit(addr.ip()) else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let plain = Peer {
                    addr: Some(addr),
                    certificate: None,
                };
                let Some(tls) = &tls else {
                    let conn = Conn {
                        io: Io::Plain(stream),
                        peer: plain,
                        watch: Watch::new(ticket, proto, accepted_at),
                    };
                    if tx.send(conn).await.is_err() {
                        return;
                    }
                    continue;
                };
                let acceptor = tls.acceptor(proto);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let shed = ticket.shed().clone();
                    let done = tokio::time::timeout_at(
                        accepted_at + HEADER_TIMEOUT,
                        acceptor.accept(stream),
                    );
                    let stream = tokio::select! {
                        _ = shed.cancelled() => {
                            tracing::debug!(peer = %addr, "{server} TLS handshake shed to make room");
                            return;
                        }
                        done = done => match done {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::info!(peer = %addr, error = %e, "{server} TLS handshake refused");
                                return;
                            }
                            Err(_) => {
                                tracing::info!(
                                    peer = %addr,
                                    "{server} TLS handshake not completed within {HEADER_TIMEOUT:?}"
                                );
                                return;
                            }
                        },
                    };
                    let certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| {
                            CertNames::from_der(leaf).unwrap_or_else(|e| {
                                tracing::warn!(
                                    peer = %addr,
                                    error = %e,
                                    "{server}: a verified client certificate whose names cannot be read"
                                );
                                CertNames::default()
                            })
                        })
                        .map(Arc::new);
                    let peer = Peer {
                        addr: Some(addr),
                        certificate,
                    };
                    let conn = Conn {
                        io: Io::Tls(Box::new(stream)),
                        peer,
                        watch: Watch::new(ticket, proto, accepted_at),
                    };
                    let _ = tx.send(conn).await;
                });
            }
        });
    }
    rx
}

/// The accepted connections of every listener, as axum takes them (the
/// `/metrics` and web servers).
#[derive(Debug)]
pub struct Incoming {
    conns: mpsc::Receiver<Conn>,
    local: Option<std::net::SocketAddr>,
}

impl Incoming {
    /// Over `conns` (from [`accept`]), whose first listener is at `local`.
    pub fn new(conns: mpsc::Receiver<Conn>, local: Option<std::net::SocketAddr>) -> Incoming {
        Incoming { conns, local }
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = Peer;

    async fn accept(&mut self) -> (Conn, Peer) {
        match self.conns.recv().await {
            Some(conn) => {
                let peer = conn.peer().clone();
                (conn, peer)
            }
            // The accept tasks stop with the daemon, when the graceful
            // shutdown has already stopped accepting.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer {
            addr: self.local,
            certificate: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server side connection (and its client) with a place in `gate`.
    async fn pair(gate: &Arc<Gate>, proto: Alpn) -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, addr) = listener.accept().await.unwrap();
        let ticket = gate.admit(addr.ip()).unwrap();
        let conn = Conn {
            io: Io::Plain(server),
            peer: Peer::default(),
            watch: Watch::new(ticket, proto, Instant::now()),
        };
        (conn, client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_request_headers_is_closed_at_the_header_timeout() {
        let gate = Gate::new("test", 8, None);
        let (mut conn, mut client) = pair(&gate, Alpn::Http1).await;
        // Bytes, but never a whole header block.
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 256];
        assert!(conn.read(&mut buf).await.unwrap() > 0);
        let e = loop {
            match conn.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(start.elapsed() <= HEADER_TIMEOUT);
        assert!(conn.watch.ticket.pending());
    }

    #[tokio::test(start_paused = true)]
    async fn a_serving_connection_is_closed_after_the_idle_timeout_of_silence() {
        let gate = Gate::new("test", 8, None);
        let (mut conn, mut client) = pair(&gate, Alpn::Http1).await;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let mut got = 0;
        while got < 27 {
            got += conn.read(&mut buf).await.unwrap();
        }
        assert!(!conn.watch.ticket.pending());
        // Past the header timeout, writing keeps it open.
        tokio::time::sleep(HEADER_TIMEOUT * 2).await;
        conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let last = Instant::now();
        let e = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(last.elapsed(), IDLE_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_request_trickled_byte_by_byte_is_closed_at_the_header_timeout() {
        let gate = Gate::new("test", 8, None);
        let (mut conn, mut client) = pair(&gate, Alpn::Http1).await;
        let mut buf = [0u8; 256];
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = 0;
        while got < 27 {
            got += conn.read(&mut buf).await.unwrap();
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        // The next request, a byte every second: each byte is activity,
        // but its headers never complete.
        let started = Instant::now();
        let trickle = tokio::spawn(async move {
            for b in b"GET / HTTP/1.1\r\nX: ".iter().cycle() {
                if client.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let e = loop {
            match conn.read(&mut buf).await {
                Ok(0) => panic!("closed by the client"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() <= HEADER_TIMEOUT + Duration::from_secs(1));
        drop(conn);
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_shed_connection_ends_its_reads() {
        let gate = Gate::new("test", 1, None);
        let (mut conn, _client) = pair(&gate, Alpn::H2).await;
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            conn.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        // The gate is full; a newcomer sheds the pending one.
        assert!(gate.admit("127.0.0.1".parse().unwrap()).is_some());
        let e = reading.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted, "{e}");
    }

    #[test]
    fn the_first_request_is_found_across_reads() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let gate = Gate::new("test", 8, None);
            let ticket = gate.admit("127.0.0.1".parse().unwrap()).unwrap();
            let mut w = Watch::new(ticket, Alpn::Http1, Instant::now());
            w.read(b"GET / HTTP/1.1\r\nA: b\r");
            w.read(b"\n\r");
            assert!(w.ticket.pending());
            w.read(b"\nrest");
            assert!(!w.ticket.pending());
            let ticket = gate.admit("127.0.0.1".parse().unwrap()).unwrap();
            let mut w = Watch::new(ticket, Alpn::H2, Instant::now());
            w.read(&[0; H2_PREFACE - 1]);
            assert!(w.ticket.pending());
            w.read(&[0]);
            assert!(!w.ticket.pending());
        });
    }
}
