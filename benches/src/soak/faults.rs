//! What the soak does to the world, drawn from the seeded RNG: backend
//! behaviour, simulator faults, descriptor floods and reader storms, and
//! operator actions. The draw depends on nothing but the RNG, so a seed
//! replays the same sequence.

use std::fmt;
use std::time::Duration;

use maglev_vpp::sim::FaultAction;
use rand::RngExt;
use rand::rngs::StdRng;

use super::backends::Mode;
use super::intent::Member;
use super::world::BACKENDS;

/// A listener of the daemon a flood can aim at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// gRPC.
    Grpc,
    /// `/metrics`.
    Metrics,
    /// The web dashboard.
    Dashboard,
}

/// Messages the daemon sends that a fault can hit (`None`: any message).
const MESSAGES: &[Option<&str>] = &[
    None,
    Some("lb_as_set_weight"),
    Some("lb_add_del_as_v2"),
    Some("lb_add_del_vip_v2"),
    Some("lb_vip_dump"),
    Some("lb_as_v2_dump"),
    Some("cli_inband"),
    Some("control_ping"),
    Some("show_version"),
];

/// Dumps, for a close in the middle of one.
const DUMPS: &[&str] = &["lb_vip_dump", "lb_as_v2_dump"];

/// Error retvals VPP gives (`VNET_API_ERROR_*`).
const RETVALS: &[i32] = &[-1, -3, -6, -7, -99];

/// The frontends and pools an operator's weight change may name, with
/// their members (variant A of the config; against variant B some of them
/// are refused, which is exercised too).
pub const POOL_MEMBERS: &[Member] = &[
    ("web", "pool0", 0),
    ("web", "pool0", 1),
    ("web", "pool1", 3),
    ("api", "pool0", 2),
    ("api", "pool1", 5),
    ("dns", "pool0", 6),
    ("all", "pool1", 0),
    ("extra", "pool0", 4),
];

/// One thing the soak does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Switches backend `.0` to a mode.
    Backend(usize, Mode),
    /// Injects a simulator fault.
    Vpp {
        /// The message it hits (`None`: the next request of any kind).
        message: Option<&'static str>,
        /// What the simulator does instead.
        action: FaultAction,
    },
    /// Restarts VPP (new message ids, empty state, new stats segment).
    VppRestart,
    /// Replaces the stats segment and closes the API connection, so the
    /// daemon reconnects onto the new segment.
    StatsReplaced,
    /// A descriptor flood: this many idle connections to a listener, held
    /// this long (see [`flood`](super::flood); the count is bounded by the
    /// descriptors free when it starts).
    Flood {
        /// The listener.
        listener: Listener,
        /// Connections wanted.
        conns: u32,
        /// How long they are held.
        hold: Duration,
    },
    /// A reader storm: this many concurrent readers for this long (see
    /// [`storm`](super::storm)).
    Storm {
        /// Readers.
        readers: u32,
        /// How long.
        lasting: Duration,
    },
    /// An operator's pause (gRPC `PauseBackend`).
    Pause(usize),
    /// `ResumeBackend`.
    Resume(usize),
    /// `DisableBackend`.
    Disable(usize),
    /// `EnableBackend`.
    Enable(usize),
    /// `SetFrontendPoolBackendWeight`.
    Weight {
        /// The frontend.
        frontend: &'static str,
        /// Its pool.
        pool: &'static str,
        /// The member.
        backend: usize,
        /// The weight.
        weight: u32,
        /// With a flush.
        flush: bool,
    },
    /// `SyncVPPLBState` of one frontend (`Some`) or all.
    Sync(Option<&'static str>),
    /// Writes config variant A (`false`) or B and reloads.
    Reload(bool),
    /// Writes an invalid config (one of `world::INVALID_CONFIGS`), reloads
    /// (refused), and writes the valid one back.
    ReloadInvalid(usize),
}

impl Action {
    /// The kind, as the summary counts it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Backend(_, Mode::Healthy) => "backend-up",
            Action::Backend(_, Mode::Failing) => "backend-fail",
            Action::Backend(_, Mode::Slow(_)) => "backend-slow",
            Action::Backend(_, Mode::Stall) => "backend-stall",
            Action::Backend(_, Mode::Refuse) => "backend-refuse",
            Action::Vpp { action, .. } => match action {
                FaultAction::DropReply => "vpp-drop-reply",
                FaultAction::Delay(_) => "vpp-delay",
                FaultAction::Retval(_) => "vpp-retval",
                FaultAction::CloseSocket => "vpp-close",
                FaultAction::CloseMidDump => "vpp-close-mid-dump",
                _ => "vpp-other",
            },
            Action::VppRestart => "vpp-restart",
            Action::StatsReplaced => "stats-replaced",
            Action::Flood {
                listener: Listener::Grpc,
                ..
            } => "flood-grpc",
            Action::Flood {
                listener: Listener::Metrics,
                ..
            } => "flood-metrics",
            Action::Flood {
                listener: Listener::Dashboard,
                ..
            } => "flood-dashboard",
            Action::Storm { .. } => "reader-storm",
            Action::Pause(_) => "op-pause",
            Action::Resume(_) => "op-resume",
            Action::Disable(_) => "op-disable",
            Action::Enable(_) => "op-enable",
            Action::Weight { flush: false, .. } => "op-weight",
            Action::Weight { flush: true, .. } => "op-weight-flush",
            Action::Sync(_) => "op-sync",
            Action::Reload(_) => "op-reload",
            Action::ReloadInvalid(_) => "op-reload-invalid",
        }
    }

    /// Whether it is a fault (not an operator action).
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::Backend(..)
                | Action::Vpp { .. }
                | Action::VppRestart
                | Action::StatsReplaced
                | Action::Flood { .. }
                | Action::Storm { .. }
        )
    }

    /// Whether it disturbs the VPP connection (the daemon's reconcile may
    /// fail until it is over).
    pub fn disturbs_vpp(&self) -> bool {
        matches!(
            self,
            Action::Vpp { .. } | Action::VppRestart | Action::StatsReplaced
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Backend(b, m) => write!(f, "backend b{b} -> {m:?}"),
            Action::Vpp { message, action } => {
                write!(f, "vpp fault {action:?} on {}", message.unwrap_or("any"))
            }
            Action::Weight {
                frontend,
                pool,
                backend,
                weight,
                flush,
            } => write!(
                f,
                "set weight {frontend}/{pool}/b{backend} = {weight}{}",
                if *flush { " flush" } else { "" }
            ),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The next action of a chaos window. Weights: backends 40 %, VPP 21 %,
/// floods and storms 6 %, operators 33 %.
pub fn draw(rng: &mut StdRng) -> Action {
    let b = rng.random_range(0..BACKENDS);
    match rng.random_range(0..100u32) {
        0..16 => Action::Backend(
            b,
            if rng.random_bool(0.5) {
                Mode::Failing
            } else {
                Mode::Healthy
            },
        ),
        16..22 => Action::Backend(b, Mode::Stall),
        22..28 => Action::Backend(
            b,
            // Under or over the probe timeout (100 ms).
            Mode::Slow(Duration::from_millis(rng.random_range(20..200))),
        ),
        28..34 => Action::Backend(b, Mode::Refuse),
        34..40 => Action::Backend(b, Mode::Healthy),
        40..56 => {
            let message = MESSAGES[rng.random_range(0..MESSAGES.len())];
            let action = match rng.random_range(0..4u32) {
                0 => FaultAction::DropReply,
                1 => FaultAction::Delay(Duration::from_millis(rng.random_range(50..1500))),
                2 => FaultAction::Retval(RETVALS[rng.random_range(0..RETVALS.len())]),
                _ => FaultAction::CloseSocket,
            };
            Action::Vpp { message, action }
        }
        56..58 => Action::Vpp {
            message: Some(DUMPS[rng.random_range(0..DUMPS.len())]),
            action: FaultAction::CloseMidDump,
        },
        58..60 => Action::VppRestart,
        60..61 => Action::StatsReplaced,
        61..64 => Action::Flood {
            listener: [Listener::Grpc, Listener::Metrics, Listener::Dashboard]
                [rng.random_range(0..3)],
            conns: rng.random_range(200..=super::flood::MAX_FLOOD),
            hold: Duration::from_millis(rng.random_range(1000..4000)),
        },
        64..67 => Action::Storm {
            readers: rng.random_range(4..=12),
            lasting: Duration::from_millis(rng.random_range(1000..4000)),
        },
        67..72 => Action::Pause(b),
        72..77 => Action::Resume(b),
        77..80 => Action::Disable(b),
        80..84 => Action::Enable(b),
        84..90 => {
            let (frontend, pool, backend) = POOL_MEMBERS[rng.random_range(0..POOL_MEMBERS.len())];
            Action::Weight {
                frontend,
                pool,
                backend,
                weight: match rng.random_range(0..5u32) {
                    0 => 0,
                    // Out of range: refused.
                    1 => 101,
                    _ => rng.random_range(1..=100),
                },
                flush: rng.random_bool(0.4),
            }
        }
        90..93 => Action::Sync(if rng.random_bool(0.5) {
            None
        } else {
            Some(["web", "api", "dns", "all", "extra"][rng.random_range(0..5)])
        }),
        93..97 => Action::Reload(rng.random_bool(0.5)),
        _ => Action::ReloadInvalid(rng.random_range(0..super::world::INVALID_CONFIGS.len())),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_seed_draws_the_same_actions() {
        let a: Vec<Action> = {
            let mut rng = StdRng::seed_from_u64(7);
            (0..500).map(|_| draw(&mut rng)).collect()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let b: Vec<Action> = (0..500).map(|_| draw(&mut rng)).collect();
        assert_eq!(a, b);
        let kinds: std::collections::BTreeSet<_> = a.iter().map(Action::kind).collect();
        assert!(kinds.len() >= 22, "{kinds:?}");
    }
}
