//! What the checker publishes: per-backend status snapshots, and the
//! events of transitions and of flap damping.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::slow_start;
use maglev_core::state::BackendState;
use maglev_core::weights::Serving;
use tokio::time::Instant;

use crate::code::Code;
use crate::damping::{self, Damper};
use crate::machine::Transition;
use crate::probe::LocalCause;

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
#[derive(Debug, Clone, PartialEq)]
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
    /// Flap damping, when the health check has it: the penalty and whether
    /// the backend is suppressed.
    /// Boxed: most backends have none, and it is 80 bytes.
    pub damping: Option<Box<Damper>>,
    /// Flaps (transitions between `up` and `down`) since the checker
    /// started, damped or not.
    pub flaps: u64,
    /// The slow-start ramp of the current `up` period, if one applies
    /// (it stays here after it is over; [`slow_start::step`] says so).
    /// Shared with the checker's own copy (8 bytes, not 32).
    pub ramp: Option<Arc<Ramp>>,
    /// Set while the backend's probes cannot run for a reason of ours
    /// (out of descriptors, ...): the backend keeps its last state until a
    /// probe runs again. Cleared by the first probe that runs.
    /// Boxed: it is rare.
    pub probe_blocked: Option<Box<ProbeBlocked>>,
}

/// Probes of a backend that keep failing locally: they say nothing about
/// it, so its state is held, and this says since when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeBlocked {
    /// Why the last probe could not run.
    pub reason: LocalCause,
    /// The last such probe's detail (`create socket: Too many open files`).
    pub detail: String,
    /// When the first probe of this spell could not run.
    pub since: Instant,
    /// How many probes in a row could not run.
    pub count: u64,
}

impl BackendStatus {
    /// What the weight rules need of this backend at `now`.
    pub fn serving(&self, now: Instant) -> Serving {
        Serving {
            state: self.state,
            suppressed: self.damping.as_deref().is_some_and(Damper::is_suppressed),
            ramp: match (self.state, &self.ramp) {
                (BackendState::Up, Some(r)) => r.step(now),
                _ => None,
            },
        }
    }
}

/// A slow-start ramp: from `since`, over `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ramp {
    /// When the backend came up.
    pub since: Instant,
    /// The health check's `slow-start`.
    pub length: Duration,
}

impl Ramp {
    /// The ramp's step at `now`; `None` once it is over.
    pub fn step(&self, now: Instant) -> Option<u8> {
        slow_start::step(now.saturating_duration_since(self.since), self.length)
    }

    /// When its next step begins; `None` once it is over.
    pub fn next_step_at(&self, now: Instant) -> Option<Instant> {
        slow_start::next_step(now.saturating_duration_since(self.since), self.length)
            .map(|d| self.since + d)
    }
}

/// A change of one backend, as broadcast to subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendEvent {
    /// The backend's name.
    pub backend: Arc<str>,
    /// Its address at the time.
    pub address: IpAddr,
    /// What changed.
    pub change: Change,
}

/// What changed of a backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Its state.
    Transition(Transition),
    /// Flap damping suppressed or released it.
    Damping(DampingChange),
    /// Its probes could not run for a reason of ours (a spell began, or
    /// its cause changed), or run again; its state is held meanwhile.
    ProbeBlocked(BlockedChange),
}

/// A backend's probes could not run for a reason of ours, or run again.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedChange {
    /// True when its probes could not run (from now, or for a new cause),
    /// false when they run again.
    pub blocked: bool,
    /// The spell: its cause, the last detail, since when, and how many
    /// probes in a row could not run.
    pub spell: ProbeBlocked,
}

/// Flap damping suppressed or released a backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DampingChange {
    /// Which.
    pub change: damping::Change,
    /// The penalty at the time.
    pub penalty: f64,
    /// When.
    pub at: Instant,
    /// When a suppressed backend will be released if it does not flap
    /// again.
    pub release_at: Option<Instant>,
}

impl BackendEvent {
    /// The transition, if that is what changed.
    pub fn transition(&self) -> Option<&Transition> {
        match &self.change {
            Change::Transition(t) => Some(t),
            Change::Damping(_) | Change::ProbeBlocked(_) => None,
        }
    }
}
