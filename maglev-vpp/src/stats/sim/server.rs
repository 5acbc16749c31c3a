//! Serving a [`SimStats`] segment on a `stats.sock`, as VPP does: accept a
//! `SOCK_SEQPACKET` connection, send one empty datagram carrying the memfd
//! (`SCM_RIGHTS`), close. Meanwhile the trickle keeps counters moving and
//! the heartbeat beating.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::SimStats;
use crate::stats::error::{Result, StatsError};
use crate::stats::raw::register_async;
use crate::stats::socket;

/// Timing of the background activity of [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Period of [`SimStats::trickle`] (`None`: no trickle).
    pub trickle: Option<Duration>,
    /// Period of [`SimStats::beat`] (`None`: the heartbeat stays still).
    pub heartbeat: Option<Duration>,
}

impl Default for ServeOptions {
    /// A packet per active VIP every 100 ms, a heartbeat every second.
    fn default() -> Self {
        ServeOptions {
            trickle: Some(Duration::from_millis(100)),
            heartbeat: Some(Duration::from_secs(1)),
        }
    }
}

/// A bound, listening `stats.sock` (removed again when dropped).
#[derive(Debug)]
pub struct StatsListener {
    fd: AsyncFd<OwnedFd>,
    path: PathBuf,
}

impl StatsListener {
    /// Binds `path` (replacing a stale socket file). Must be called inside
    /// a tokio runtime.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let err = |source| StatsError::Connect {
            path: path.clone(),
            source,
        };
        let fd = register_async(socket::listen(&path).map_err(err)?).map_err(err)?;
        Ok(StatsListener { fd, path })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for connections and hands each the memfd.
    async fn serve_one_batch(&self, memfd: &OwnedFd) -> std::io::Result<()> {
        let mut guard = self.fd.readable().await?;
        loop {
            match socket::accept(self.fd.get_ref())? {
                Some(conn) => {
                    if let Err(e) = socket::send_fd(&conn, memfd) {
                        tracing::debug!(error = %e, "stats client went away before receiving the segment");
                    }
                }
                None => {
                    guard.clear_ready();
                    return Ok(());
                }
            }
        }
    }
}

impl Drop for StatsListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn tick(every: Option<Duration>) -> Option<tokio::time::Interval> {
    every.map(|p| {
        let mut i = tokio::time::interval(p);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    })
}

async fn next(i: &mut Option<tokio::time::Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Serves `stats` on `listener` until `shutdown` completes, with the
/// trickle and heartbeat of `opts`. `shutdown` is any future, e.g.
/// `token.cancelled_owned()` of a `tokio_util` `CancellationToken`.
pub async fn run(
    listener: StatsListener,
    stats: SimStats,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let memfd = stats.fd()?;
    let mut trickle = tick(opts.trickle).await;
    let mut heartbeat = tick(opts.heartbeat).await;
    tokio::pin!(shutdown);
    tracing::info!(path = %listener.path().display(), threads = stats.threads(), "serving simulated stats segment");
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = listener.serve_one_batch(&memfd) => {
                r.map_err(|source| StatsError::Connect { path: listener.path().to_owned(), source })?;
            }
            () = next(&mut trickle) => stats.trickle()?,
            () = next(&mut heartbeat) => stats.beat()?,
        }
    }
}

/// Binds `path` and serves `stats` there with the default trickle and
/// heartbeat until `shutdown` completes. This is what
/// `maglev-vppsim --stats-socket PATH` runs, with the same `SimStats` the
/// API simulator uses.
pub async fn serve(
    path: impl AsRef<Path>,
    stats: SimStats,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    run(
        StatsListener::bind(path)?,
        stats,
        ServeOptions::default(),
        shutdown,
    )
    .await
}

/// A stand-alone simulated segment for VPP with `workers` workers, served
/// at `path` until `shutdown`. Only the trickle writes to it (no VIPs are
/// ever added); when an API simulator must share the segment, create it
/// with [`SimStats::new`], hand the API simulator a clone and call
/// [`serve`].
pub async fn serve_stats(
    path: impl AsRef<Path>,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve(path, SimStats::new(workers)?, shutdown).await
}
