//! Invariant 5: a backend whose target stays healthy never leaves `up`.
//!
//! The soak controls its loopback backends, so it knows since when each
//! one has answered `200 OK` without a break
//! ([`Backend::healthy_since`](super::backends::Backend::healthy_since)).
//! [`SteadyWatch`] reads the daemon's events in-process (its own
//! subscription to the event hub, so no gRPC connection or descriptor
//! stands between) and hands over every transition that takes a backend
//! from `up` to `down` or `unknown`; the operator's own `paused` and
//! `disabled` are not leaving on the backend's account. Such a transition
//! breaks the invariant when the backend had been healthy for at least
//! [`GRACE`] before it: a probe sent before the backend turned healthy
//! may still fail after (a stalled answer, a slow one past the timeout).
//! Nothing but the backend's own answers may take it down: not the
//! daemon's descriptors, its load, a reader storm, a restart or a reload.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use maglev_bin::daemon::Handle;
use maglev_bin::events::{EventKind, Received};
use maglev_core::state::BackendState;
use maglev_health::status::Change;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a backend must have been healthy before a transition away
/// from `up` is its daemon's fault: more than a probe interval (150 ms)
/// plus a probe timeout (100 ms), for the probe in flight when it turned
/// healthy, with margin.
pub const GRACE: Duration = Duration::from_millis(500);

/// A backend left `up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The backend.
    pub backend: String,
    /// Where it went.
    pub to: BackendState,
    /// When (the checker's clock).
    pub at: Instant,
    /// The probe's code and detail, as the transition says.
    pub why: String,
}

/// Whether `left` breaks the invariant for a backend healthy without a
/// break since `healthy_since` (`None`: not healthy now).
pub fn breaks(healthy_since: Option<Instant>, left: &Left) -> bool {
    healthy_since.is_some_and(|since| since + GRACE <= left.at)
}

/// Every transition away from `up` of one daemon, read as they come.
#[derive(Debug)]
pub struct SteadyWatch {
    left: mpsc::UnboundedReceiver<Left>,
    /// Events the subscription lost (it fell behind the hub's ring).
    lost: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Drop for SteadyWatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl SteadyWatch {
    /// Subscribes to `handle`'s events (no log records) at once, and reads
    /// them on a task until dropped or the daemon stops.
    pub fn start(handle: &Handle) -> SteadyWatch {
        let mut events = handle.subscribe(None);
        let (tx, left) = mpsc::unbounded_channel();
        let lost = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (counted, stopped) = (lost.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    () = stopped.cancelled() => return,
                    r = events.recv() => r,
                };
                match received {
                    None => return,
                    Some(Received::Lost(n)) => {
                        counted.fetch_add(n, Ordering::Relaxed);
                    }
                    Some(Received::Event(e)) => {
                        let EventKind::Backend {
                            backend,
                            change: Change::Transition(t),
                            ..
                        } = &e.kind
                        else {
                            continue;
                        };
                        if t.from == BackendState::Up
                            && matches!(t.to, BackendState::Down | BackendState::Unknown)
                        {
                            let _ = tx.send(Left {
                                backend: backend.to_string(),
                                to: t.to,
                                at: t.at,
                                why: format!("{} {}", t.code, t.detail),
                            });
                        }
                    }
                }
            }
        });
        SteadyWatch { left, lost, stop }
    }

    /// The transitions away from `up` read since the last call.
    pub fn drain(&mut self) -> Vec<Left> {
        let mut out = Vec::new();
        while let Ok(l) = self.left.try_recv() {
            out.push(l);
        }
        out
    }

    /// Events lost so far (then a transition may have gone unseen).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_backend_healthy_for_the_grace_breaks_it() {
        let t0 = Instant::now();
        let left = Left {
            backend: "b0".to_owned(),
            to: BackendState::Down,
            at: t0 + Duration::from_secs(2),
            why: "L7STS 503".to_owned(),
        };
        assert!(breaks(Some(t0), &left));
        assert!(!breaks(None, &left));
        assert!(!breaks(Some(t0 + Duration::from_millis(1600)), &left));
        assert!(breaks(Some(t0 + Duration::from_millis(1500)), &left));
    }
}
