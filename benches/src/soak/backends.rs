//! The soak's loopback HTTP backends: each can answer (200), fail (503),
//! answer slowly, stall (read the request and never answer), or refuse
//! (its listener closed: connection refused), and be switched at any time.
//!
//! `maglev_bin::demo::HttpBackend` answers or hangs; the soak also needs
//! slow answers and refused connections, and a stall that ends when the
//! prober gives up (a stalled connection here watches its socket and goes
//! away at the client's EOF, so stalls leave no tasks behind).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a backend behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `200 OK` at once.
    Healthy,
    /// `503` at once.
    Failing,
    /// `200 OK` after this long.
    Slow(Duration),
    /// Reads the request, never answers.
    Stall,
    /// Not listening: connections are refused.
    Refuse,
}

/// One switchable loopback backend.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Since when it has been [`Mode::Healthy`] without a break (`None`
    /// while it is in another mode).
    healthy_since: Mutex<Option<Instant>>,
    /// The accept loop while listening: its stop token and its task.
    listener: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

impl Backend {
    /// Starts a healthy backend on `addr` (loopback; port 0 for any).
    pub async fn start(addr: SocketAddr) -> std::io::Result<Arc<Backend>> {
        let listener = TcpListener::bind(addr).await?;
        let b = Arc::new(Backend {
            addr: listener.local_addr()?,
            mode: watch::Sender::new(Mode::Healthy),
            healthy_since: Mutex::new(Some(Instant::now())),
            listener: Mutex::new(None),
        });
        b.serve(listener);
        Ok(b)
    }

    /// Where it listens (or listened, while refusing).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its behaviour now.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Since when it has answered `200 OK` at once without a break, if it
    /// does now: set once a switch to [`Mode::Healthy`] is complete (the
    /// listener open again), kept by a switch from healthy to healthy.
    pub fn healthy_since(&self) -> Option<Instant> {
        *self.healthy_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches its behaviour; `Refuse` closes the listener and anything
    /// else opens it again (on the same address).
    pub async fn set(self: &Arc<Self>, mode: Mode) -> std::io::Result<()> {
        let r = self.switch(mode).await;
        let mut since = self.healthy_since.lock().unwrap_or_else(|e| e.into_inner());
        match (mode, r.is_ok()) {
            (Mode::Healthy, true) => {
                since.get_or_insert_with(Instant::now);
            }
            _ => *since = None,
        }
        r
    }

    async fn switch(self: &Arc<Self>, mode: Mode) -> std::io::Result<()> {
        let old = self.mode.send_replace(mode);
        if mode != Mode::Healthy || old != Mode::Healthy {
            // Not healthy (without a break) from now until a switch to
            // healthy is complete.
            *self.healthy_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        let listening = self.lock().is_some();
        match (mode, listening) {
            (Mode::Refuse, true) => {
                let running = self.lock().take();
                if let Some((stop, task)) = running {
                    stop.cancel();
                    // The listener is closed once the loop has ended.
                    let _ = task.await;
                }
            }
            (Mode::Refuse, false) | (_, true) => {}
            (_, false) => {
                let listener = TcpListener::bind(self.addr).await?;
                self.serve(listener);
            }
        }
        Ok(())
    }

    /// Stops listening for good (open connections end at their client's
    /// EOF or their answer).
    pub fn stop(&self) {
        if let Some((stop, _)) = self.lock().take() {
            stop.cancel();
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(CancellationToken, tokio::task::JoinHandle<()>)>> {
        self.listener.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        let stop = CancellationToken::new();
        let mode = self.mode.subscribe();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let stop = stopped;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => {
                        if let Ok((conn, _)) = accepted {
                            tokio::spawn(answer(conn, mode.clone()));
                        }
                    }
                }
            }
        });
        *self.lock() = Some((stop, task));
    }
}

/// Reads one request head and answers it as the mode says, then closes.
async fn answer(mut conn: TcpStream, mut mode: watch::Receiver<Mode>) {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let current = *mode.borrow_and_update();
    let ok = match current {
        Mode::Healthy => true,
        Mode::Failing | Mode::Refuse => false,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            true
        }
        Mode::Stall => {
            // Until the client gives up (EOF) or the mode changes.
            tokio::select! {
                _ = conn.read(&mut buf) => return,
                _ = mode.changed() => return,
            }
        }
    };
    let reply: &[u8] = if ok {
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
    } else {
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 8\r\nconnection: close\r\n\r\nfailing\n"
    };
    let _ = conn.write_all(reply).await;
    let _ = conn.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn status(addr: SocketAddr) -> std::io::Result<String> {
        let mut c = TcpStream::connect(addr).await?;
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        let mut out = String::new();
        c.read_to_string(&mut out).await?;
        Ok(out.lines().next().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn every_mode_answers_as_it_says() {
        let b = Backend::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(status(b.addr()).await.unwrap(), "HTTP/1.1 200 OK");
        b.set(Mode::Failing).await.unwrap();
        assert_eq!(
            status(b.addr()).await.unwrap(),
            "HTTP/1.1 503 Service Unavailable"
        );
        b.set(Mode::Slow(Duration::from_millis(20))).await.unwrap();
        assert_eq!(status(b.addr()).await.unwrap(), "HTTP/1.1 200 OK");
        b.set(Mode::Refuse).await.unwrap();
        let refused = TcpStream::connect(b.addr()).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        b.set(Mode::Stall).await.unwrap();
        let mut c = TcpStream::connect(b.addr()).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut one = [0u8; 1];
        let silent = tokio::time::timeout(Duration::from_millis(200), c.read(&mut one)).await;
        assert!(silent.is_err(), "a stalled backend answered");
        drop(c);
        b.set(Mode::Healthy).await.unwrap();
        assert_eq!(status(b.addr()).await.unwrap(), "HTTP/1.1 200 OK");
    }
}
