//! Descriptor floods: many idle TCP connections to one of the daemon's
//! listeners (loopback only), held for a while, then closed (every other
//! one with a reset, the rest with a FIN).
//!
//! The soak runs the daemon in its own process, so a flood and the daemon
//! (its probes, its VPP sockets, the state file) share one
//! `RLIMIT_NOFILE`, and every flood connection costs two descriptors here:
//! the soak's end and the one the daemon accepts. The soak does not raise
//! the soft limit; [`budget`] bounds each flood to an eighth of the
//! descriptors still free when it starts (at most [`MAX_FLOOD`]), so a
//! flood takes at most a quarter of what is free and never reaches the
//! limit itself. What a flood tests is that the listeners bound what they
//! hold and that nothing else notices; running out of descriptors is the
//! daemon's own fd-exhaustion test, in a child process with a low limit.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The most connections one flood opens.
pub const MAX_FLOOD: u32 = 1500;

/// How long one connection attempt may take (a listener that stopped
/// accepting leaves attempts in its backlog, or unanswered once that is
/// full).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections opened at once.
const BATCH: u32 = 64;

/// This process's descriptor limit and use, from `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdUse {
    /// The soft `RLIMIT_NOFILE`.
    pub soft: u64,
    /// Descriptors open now.
    pub open: u64,
}

/// The descriptor limit and use of this process; `None` where `/proc`
/// does not say (then floods are skipped).
pub fn fd_use() -> Option<FdUse> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let soft = soft_nofile(&limits)?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(FdUse { soft, open })
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`
/// (`unlimited` counts as `u64::MAX`).
fn soft_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// How many connections a flood may open now: an eighth of the free
/// descriptors (two per connection), at most `wanted` and [`MAX_FLOOD`].
pub fn budget(wanted: u32) -> u32 {
    fd_use().map_or(0, |fds| budget_for(fds, wanted))
}

/// [`budget`] for a given descriptor use.
fn budget_for(fds: FdUse, wanted: u32) -> u32 {
    let free = fds.soft.saturating_sub(fds.open);
    u32::try_from(free / 8)
        .unwrap_or(u32::MAX)
        .min(wanted)
        .min(MAX_FLOOD)
}

/// What one flood did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FloodOutcome {
    /// Connections the kernel completed (accepted by the daemon or held in
    /// its listener's backlog).
    pub opened: u64,
    /// Attempts refused or not answered within the connect timeout.
    pub failed: u64,
}

/// Opens up to `count` connections to `addr`, holds them idle (sending
/// nothing) for `hold` or until `stop`, and closes them.
pub async fn flood(
    addr: SocketAddr,
    count: u32,
    hold: Duration,
    stop: CancellationToken,
) -> FloodOutcome {
    let (conns, out) = open(addr, count, &stop).await;
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(hold) => {}
    }
    close(conns);
    out
}

/// Opens up to `count` idle connections to `addr`, [`BATCH`] at a time
/// (no new batch once `stop`).
pub async fn open(
    addr: SocketAddr,
    count: u32,
    stop: &CancellationToken,
) -> (Vec<TcpStream>, FloodOutcome) {
    let mut out = FloodOutcome::default();
    let mut conns = Vec::with_capacity(count as usize);
    let mut left = count;
    while left > 0 && !stop.is_cancelled() {
        let n = left.min(BATCH);
        left -= n;
        let mut batch = JoinSet::new();
        for _ in 0..n {
            batch.spawn(tokio::time::timeout(
                CONNECT_TIMEOUT,
                TcpStream::connect(addr),
            ));
        }
        while let Some(r) = batch.join_next().await {
            match r {
                Ok(Ok(Ok(conn))) => {
                    out.opened += 1;
                    conns.push(conn);
                }
                _ => out.failed += 1,
            }
        }
    }
    (conns, out)
}

/// Closes the connections of a flood, every other one with a reset.
pub fn close(conns: Vec<TcpStream>) {
    for (i, conn) in conns.iter().enumerate() {
        if i % 2 == 0 {
            // A reset instead of a FIN (and no TIME_WAIT left behind).
            let _ = conn.set_zero_linger();
        }
    }
    drop(conns);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_nofile(limits), Some(1024));
        assert_eq!(
            soft_nofile(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Some(u64::MAX)
        );
        assert_eq!(soft_nofile("Max processes 10 10 processes\n"), None);
    }

    #[test]
    fn a_flood_stays_well_below_the_limit() {
        let fds = |soft, open| FdUse { soft, open };
        // Two descriptors a connection: a quarter of what is free.
        assert_eq!(budget_for(fds(1024, 104), u32::MAX), 115);
        assert_eq!(budget_for(fds(20_000, 300), u32::MAX), MAX_FLOOD);
        assert_eq!(budget_for(fds(20_000, 300), 200), 200);
        assert_eq!(budget_for(fds(u64::MAX, 10), u32::MAX), MAX_FLOOD);
        assert_eq!(budget_for(fds(100, 200), u32::MAX), 0);
        let now = fd_use().expect("/proc/self says");
        assert!(now.open > 0 && now.soft >= now.open);
    }

    #[tokio::test]
    async fn a_flood_opens_holds_and_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                held.push(c);
                if held.len() == 10 {
                    return held;
                }
            }
            held
        });
        let out = flood(addr, 10, Duration::ZERO, CancellationToken::new()).await;
        assert_eq!(
            out,
            FloodOutcome {
                opened: 10,
                failed: 0
            }
        );
        assert_eq!(accept.await.unwrap().len(), 10);
    }
}
