//! What the checker publishes: per-backend status snapshots and
//! transition events.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::state::BackendState;
use tokio::time::Instant;

use crate::code::Code;
use crate::machine::Transition;

/// The last probe of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastProbe {
    /// Its code.
    pub code: Code,
    /// Its detail.
    pub detail: String,
    /// How long it took.
    pub duration: Duration,
    /// When it ended.
    pub at: Instant,
}

/// A consistent view of one backend at one moment. Immutable: the checker
/// publishes a new one after every probe and every transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    /// The backend's name.
    pub name: Arc<str>,
    /// The address probed and programmed.
    pub address: IpAddr,
    /// The current state.
    pub state: BackendState,
    /// The operator's enabled flag.
    pub enabled: bool,
    /// The health check's name; `None` for a static backend.
    pub healthcheck: Option<Arc<str>>,
    /// The rise/fall counter (0 for a static backend).
    pub counter: u32,
    /// The health check's rise (0 for a static backend).
    pub rise: u32,
    /// The health check's fall (0 for a static backend).
    pub fall: u32,
    /// The last probe, once there has been one.
    pub last_probe: Option<Arc<LastProbe>>,
    /// The last transitions, oldest first (at most `transition-history`).
    pub history: Arc<[Transition]>,
}

/// A transition of one backend, as broadcast to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEvent {
    /// The backend's name.
    pub backend: Arc<str>,
    /// Its address at the time.
    pub address: IpAddr,
    /// What changed.
    pub transition: Transition,
}
