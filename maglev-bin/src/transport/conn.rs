//! Accepted connections and the accept loop both servers share.
//!
//! Each listener has an accept task. A TLS handshake runs in a task of
//! its own, so a slow client does not hold up the next; at most
//! [`MAX_HANDSHAKES`] run at once (accepting waits beyond that) and each
//! gets [`HANDSHAKE_TIMEOUT`]. A failed handshake (no client certificate,
//! an expired or foreign one, not TLS at all) is logged with the peer and
//! the reason, and the connection closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;

use crate::daemon::Handle;
use crate::transport::peer::{CertNames, Peer};
use crate::transport::server::{Alpn, ServerTls};

/// How long accepting waits after a failed `accept` (out of descriptors,
/// say) before trying again, so a persistent failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many TLS handshakes run at once per server.
pub const MAX_HANDSHAKES: usize = 64;

/// An accepted connection, plain or TLS, and who is on the other end.
#[derive(Debug)]
pub enum Conn {
    /// Plain TCP.
    Plain(TcpStream, Peer),
    /// TLS over TCP, handshake done.
    Tls(Box<TlsStream<TcpStream>>, Peer),
}

impl Conn {
    /// The other end.
    pub fn peer(&self) -> &Peer {
        match self {
            Conn::Plain(_, p) | Conn::Tls(_, p) => p,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s, _) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s, _) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s, _) => s.is_write_vectored(),
            Conn::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s, _) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s, _) => Pin::new(s).poll_shutdown(cx),
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

/// The connections of every listener, TLS ones after their handshake
/// with `tls` (for `alpn`), until the daemon stops or the receiver is
/// dropped. `server` names the server in logs (`gRPC`, `metrics`).
pub fn accept(
    handle: &Handle,
    listeners: Vec<TcpListener>,
    tls: Option<(Arc<ServerTls>, Alpn)>,
    server: &'static str,
) -> mpsc::Receiver<Conn> {
    let (tx, rx) = mpsc::channel(16);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    for listener in listeners {
        let tx = tx.clone();
        let handle = handle.clone();
        let tls = tls.clone();
        let handshakes = handshakes.clone();
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
                let _ = stream.set_nodelay(true);
                let plain = Peer {
                    addr: Some(addr),
                    certificate: None,
                };
                let Some((tls, alpn)) = &tls else {
                    if tx.send(Conn::Plain(stream, plain)).await.is_err() {
                        return;
                    }
                    continue;
                };
                let permit = tokio::select! {
                    _ = handle.stopping() => return,
                    p = handshakes.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let acceptor = tls.acceptor(*alpn);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let stream = match done.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(peer = %addr, error = %e, "{server} TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(
                                peer = %addr,
                                "{server} TLS handshake not completed within {HANDSHAKE_TIMEOUT:?}"
                            );
                            return;
                        }
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
                    let _ = tx.send(Conn::Tls(Box::new(stream), peer)).await;
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
