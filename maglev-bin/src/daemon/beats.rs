//! Probe heartbeats: which backend is being probed right now, for the web
//! dashboard's heart. Sent straight from the checker's probe tasks, and
//! only while someone listens: no backlog, and nothing through the event
//! hub (at one start and one end per probe they would crowd out what
//! `WatchEvents` readers want).

use std::net::IpAddr;
use std::sync::Arc;

use maglev_health::observe::{ProbeObserver, ProbeRecord};
use maglev_health::probe::LocalCause;
use tokio::sync::broadcast;

/// How many heartbeats a listener may fall behind; it loses the oldest.
const BEATS_BUFFER: usize = 1024;

/// A probe of `backend` started (`started`) or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The backend.
    pub backend: Arc<str>,
    /// Whether the probe started (else it ended).
    pub started: bool,
}

/// The heartbeat fan-out.
pub fn channel() -> broadcast::Sender<Beat> {
    broadcast::channel(BEATS_BUFFER).0
}

/// The checker's observer: the metrics' own, then the heartbeats.
#[derive(Debug)]
pub(crate) struct Observers {
    pub(crate) metrics: Arc<dyn ProbeObserver>,
    pub(crate) beats: broadcast::Sender<Beat>,
}

impl Observers {
    fn beat(&self, backend: &str, started: bool) {
        if self.beats.receiver_count() > 0 {
            let _ = self.beats.send(Beat {
                backend: Arc::from(backend),
                started,
            });
        }
    }
}

impl ProbeObserver for Observers {
    fn probe_started(&self, backend: &str, address: IpAddr) {
        self.metrics.probe_started(backend, address);
        self.beat(backend, true);
    }

    fn probe_ended(&self, record: &ProbeRecord<'_>) {
        self.metrics.probe_ended(record);
        self.beat(record.backend, false);
    }

    fn probe_could_not_run(&self, backend: &str, cause: LocalCause) {
        self.metrics.probe_could_not_run(backend, cause);
    }
}
