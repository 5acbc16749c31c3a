//! [`StatsClient`]: keeps a segment mapped and remaps it after a VPP
//! restart (VPP-WIRE D.9 step 4, F.17).
//!
//! After VPP restarts, the old mapping stays readable but frozen. Three
//! signs say so: the `stats.sock` file is gone or is a different socket
//! (new inode), or `/sys/heartbeat` stopped moving for longer than the
//! configured stall time (then a fresh connection tells whether the
//! segment itself was replaced). The client is driven by the caller's
//! clock: `check(now).await` once per poll. It never blocks the thread:
//! connecting is [`StatSegment::connect_async`], bounded by the connect
//! timeout on `tokio::time`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{Result, StatsError};
use super::segment::StatSegment;

/// Default wait for the segment descriptor after connecting (vpp_papi
/// waits 1 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What [`StatsClient::check`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Mapped a segment where there was none.
    Connected,
    /// The mapped segment is still VPP's.
    Unchanged,
    /// The socket file was replaced (VPP restarted): remapped.
    SocketReplaced,
    /// The heartbeat stalled and a fresh connection gave another segment:
    /// remapped.
    SegmentReplaced,
    /// The heartbeat stalled but VPP still serves the same segment (its
    /// stats collector is slow or off): kept it.
    HeartbeatStalled,
}

/// A stats connection that notices VPP restarts and remaps.
#[derive(Debug)]
pub struct StatsClient {
    socket: PathBuf,
    stall_after: Duration,
    segment: Option<StatSegment>,
    socket_id: Option<(u64, u64)>,
    /// Last heartbeat value seen and when it last changed.
    heartbeat: Option<(u64, Instant)>,
    connect_timeout: Duration,
}

impl StatsClient {
    /// A client of the `stats.sock` at `socket`; a heartbeat that does not
    /// move for `stall_after` (VPP bumps it every 10 s by default, so use a
    /// few times that) triggers a fresh connection.
    pub fn new(socket: impl Into<PathBuf>, stall_after: Duration) -> Self {
        StatsClient {
            socket: socket.into(),
            stall_after,
            segment: None,
            socket_id: None,
            heartbeat: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Sets how long a connection waits for VPP to hand over the segment
    /// ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The mapped segment, if connected.
    pub fn segment(&self) -> Option<&StatSegment> {
        self.segment.as_ref()
    }

    /// Drops the mapping; the next [`check`](Self::check) reconnects.
    pub fn disconnect(&mut self) {
        self.segment = None;
        self.socket_id = None;
        self.heartbeat = None;
    }

    fn socket_id(&self) -> Result<(u64, u64)> {
        let meta = std::fs::metadata(&self.socket).map_err(|source| StatsError::Connect {
            path: self.socket.clone(),
            source,
        })?;
        Ok((meta.dev(), meta.ino()))
    }

    async fn connect(&mut self, now: Instant) -> Result<()> {
        let id = self.socket_id()?;
        let seg = StatSegment::connect_async(&self.socket, self.connect_timeout).await?;
        self.heartbeat = seg.heartbeat().ok().map(|h| (h, now));
        self.segment = Some(seg);
        self.socket_id = Some(id);
        Ok(())
    }

    /// Makes sure a live segment is mapped, reconnecting if VPP restarted.
    ///
    /// Fails (and drops the mapping) when the socket is gone or refuses;
    /// call again on the next poll. Never blocks the thread (see the module
    /// doc); must run inside a tokio runtime.
    pub async fn check(&mut self, now: Instant) -> Result<ClientEvent> {
        let id = match self.socket_id() {
            Ok(id) => id,
            Err(e) => {
                self.disconnect();
                return Err(e);
            }
        };
        let Some(seg) = &self.segment else {
            self.connect(now).await?;
            return Ok(ClientEvent::Connected);
        };
        if self.socket_id != Some(id) {
            self.disconnect();
            self.connect(now).await?;
            return Ok(ClientEvent::SocketReplaced);
        }
        // A busy or missing heartbeat counts as "not moving".
        let beat = seg.heartbeat().ok();
        match (beat, self.heartbeat) {
            (Some(b), Some((last, _))) if b != last => {
                self.heartbeat = Some((b, now));
                return Ok(ClientEvent::Unchanged);
            }
            (Some(b), None) => {
                self.heartbeat = Some((b, now));
                return Ok(ClientEvent::Unchanged);
            }
            (None, None) => {
                self.heartbeat = Some((u64::MAX, now));
                return Ok(ClientEvent::Unchanged);
            }
            _ => {}
        }
        let since = self.heartbeat.map_or(now, |(_, t)| t);
        if now.saturating_duration_since(since) < self.stall_after {
            return Ok(ClientEvent::Unchanged);
        }
        let old_identity = seg.identity();
        let fresh = StatSegment::connect_async(&self.socket, self.connect_timeout).await;
        match fresh {
            Ok(fresh) if fresh.identity().is_some() && fresh.identity() == old_identity => {
                let last = self.heartbeat.map_or(u64::MAX, |(b, _)| b);
                self.heartbeat = Some((last, now));
                Ok(ClientEvent::HeartbeatStalled)
            }
            Ok(fresh) => {
                self.heartbeat = fresh.heartbeat().ok().map(|h| (h, now));
                self.segment = Some(fresh);
                Ok(ClientEvent::SegmentReplaced)
            }
            Err(e) => {
                self.disconnect();
                Err(e)
            }
        }
    }
}
