//! Sockets created inside a network namespace.
//!
//! A namespace is entered by one dedicated OS thread (never a tokio
//! worker), which stays in it and creates sockets on request; the sockets
//! keep their namespace for life, so the async code uses them like any
//! other. The daemon's own threads never change namespace.
//!
//! Before each socket the thread checks that the namespace's name still
//! names the namespace it is in, and enters the new one if it was made
//! again.
//!
//! **Invariant:** `setns` is called only on a thread this module spawned.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use nix::sched::{CloneFlags, setns};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::oneshot;

/// Where sockets are created: the daemon's own namespace or a named one.
#[derive(Clone, Default)]
pub struct Sockets {
    netns: Option<Arc<Netns>>,
}

impl fmt::Debug for Sockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.netns {
            None => f.write_str("Sockets(host)"),
            Some(ns) => write!(f, "Sockets(netns {:?})", ns.name),
        }
    }
}

impl Sockets {
    /// Sockets in the daemon's own namespace.
    pub fn host() -> Sockets {
        Sockets { netns: None }
    }

    /// Sockets in the namespace `name`: a name under `/var/run/netns`, or
    /// a path if it contains `/` (such as `/proc/<pid>/ns/net`). Nothing is
    /// opened until the first socket is asked for.
    pub fn in_netns(name: &str) -> Sockets {
        let path = if name.contains('/') {
            PathBuf::from(name)
        } else {
            PathBuf::from("/var/run/netns").join(name)
        };
        Sockets {
            netns: Some(Arc::new(Netns {
                name: name.to_owned(),
                path,
                worker: Mutex::new(None),
            })),
        }
    }

    /// Sockets for `healthchecker.netns`.
    pub fn for_config(netns: Option<&str>) -> Sockets {
        netns.map_or_else(Sockets::host, Sockets::in_netns)
    }

    /// The namespace name, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_ref().map(|ns| ns.name.as_str())
    }

    /// A new non-blocking, close-on-exec socket.
    pub async fn socket(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> Result<Socket, SocketError> {
        // SOCK_NONBLOCK | SOCK_CLOEXEC in the one `socket(2)` call.
        let ty = ty.nonblocking();
        match &self.netns {
            None => Socket::new(domain, ty, protocol).map_err(SocketError::Create),
            Some(ns) => ns.socket(domain, ty, protocol).await,
        }
    }
}

/// Why a socket could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The namespace could not be entered.
    #[error("enter netns {name:?}: {source}")]
    EnterNetns {
        /// The namespace.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// `socket(2)` failed.
    #[error("create socket: {0}")]
    Create(io::Error),
    /// The namespace thread went away.
    #[error("netns {0:?}: socket thread stopped")]
    ThreadGone(String),
}

impl SocketError {
    /// The underlying OS error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            SocketError::EnterNetns { source, .. } => Some(source),
            SocketError::Create(e) => Some(e),
            SocketError::ThreadGone(_) => None,
        }
    }
}

struct Request {
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
    reply: oneshot::Sender<Result<Socket, ThreadError>>,
}

/// What went wrong on the namespace thread.
enum ThreadError {
    Enter(io::Error),
    Create(io::Error),
}

/// Enters the namespace at `path`; returns its identity (device, inode).
fn enter(path: &Path) -> io::Result<(u64, u64)> {
    let f = File::open(path)?;
    let m = f.metadata()?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    Ok((m.dev(), m.ino()))
}

/// Re-enters the namespace if `path` now names another one (it was
/// deleted and made again, as a dataplane restart may do).
fn refresh(path: &Path, current: &mut (u64, u64)) -> io::Result<()> {
    let m = std::fs::metadata(path)?;
    if (m.dev(), m.ino()) != *current {
        *current = enter(path)?;
    }
    Ok(())
}

struct Netns {
    name: String,
    path: PathBuf,
    worker: Mutex<Option<mpsc::Sender<Request>>>,
}

impl Netns {
    async fn socket(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> Result<Socket, SocketError> {
        // Two tries: a worker that died since (it never does by itself) is
        // replaced once.
        for _ in 0..2 {
            let worker = self.lock().clone();
            let worker = match worker {
                Some(w) => w,
                None => self.start().await?,
            };
            let (reply, rx) = oneshot::channel();
            let req = Request {
                domain,
                ty,
                protocol,
                reply,
            };
            if worker.send(req).is_err() {
                self.clear();
                continue;
            }
            match rx.await {
                Ok(Ok(socket)) => return Ok(socket),
                Ok(Err(ThreadError::Create(e))) => return Err(SocketError::Create(e)),
                Ok(Err(ThreadError::Enter(source))) => {
                    return Err(SocketError::EnterNetns {
                        name: self.name.clone(),
                        source,
                    });
                }
                Err(_) => self.clear(),
            }
        }
        Err(SocketError::ThreadGone(self.name.clone()))
    }

    fn clear(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Request>>> {
        // A poisoned lock only means another thread panicked while holding
        // a sender clone; the value is still valid.
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the namespace thread and waits until it has entered the
    /// namespace (or failed to).
    async fn start(&self) -> Result<mpsc::Sender<Request>, SocketError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = oneshot::channel::<io::Result<()>>();
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                let mut current = match enter(&path) {
                    Ok(id) => id,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if ready_tx.send(Ok(())).is_err() {
                    return;
                }
                while let Ok(req) = rx.recv() {
                    let socket = refresh(&path, &mut current)
                        .map_err(ThreadError::Enter)
                        .and_then(|()| {
                            Socket::new(req.domain, req.ty, req.protocol)
                                .map_err(ThreadError::Create)
                        });
                    // The asker may have given up (timeout): then the socket
                    // is just closed.
                    let _ = req.reply.send(socket);
                }
            });
        let enter_err = |source| SocketError::EnterNetns {
            name: self.name.clone(),
            source,
        };
        spawned.map_err(enter_err)?;
        match ready_rx.await {
            Ok(Ok(())) => {
                *self.lock() = Some(tx.clone());
                Ok(tx)
            }
            Ok(Err(e)) => Err(enter_err(e)),
            Err(_) => Err(SocketError::ThreadGone(self.name.clone())),
        }
    }
}
