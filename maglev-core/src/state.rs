//! State vocabulary: what a backend and a frontend can be.

use std::fmt;
use std::str::FromStr;

/// The health and operator state of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendState {
    /// No health information yet (new, resumed or re-enabled).
    Unknown,
    /// Healthy: may carry traffic.
    Up,
    /// Failed `fall` consecutive probes.
    Down,
    /// An operator stopped health checking; no probes are sent.
    Paused,
    /// An operator disabled the backend; no probes are sent.
    Disabled,
    /// Gone from the config after a reload.
    Removed,
}

impl BackendState {
    /// Every state, in the order above.
    pub const ALL: [BackendState; 6] = [
        BackendState::Unknown,
        BackendState::Up,
        BackendState::Down,
        BackendState::Paused,
        BackendState::Disabled,
        BackendState::Removed,
    ];

    /// The state's name as logged, exported and typed in the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendState::Unknown => "unknown",
            BackendState::Up => "up",
            BackendState::Down => "down",
            BackendState::Paused => "paused",
            BackendState::Disabled => "disabled",
            BackendState::Removed => "removed",
        }
    }

    /// Whether the backend is being probed in this state.
    pub fn is_probed(self) -> bool {
        matches!(
            self,
            BackendState::Unknown | BackendState::Up | BackendState::Down
        )
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// The aggregate state of a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontendState {
    /// None of its backends has health information yet.
    Unknown,
    /// At least one backend carries traffic (non-zero effective weight).
    Up,
    /// Nothing carries traffic.
    Down,
}

impl FrontendState {
    /// Every state, in the order above.
    pub const ALL: [FrontendState; 3] = [
        FrontendState::Unknown,
        FrontendState::Up,
        FrontendState::Down,
    ];

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FrontendState::Unknown => "unknown",
            FrontendState::Up => "up",
            FrontendState::Down => "down",
        }
    }

    /// The value of the `maglev_frontend_state` gauge (0 unknown, 1 up, 2 down).
    pub fn gauge(self) -> i64 {
        match self {
            FrontendState::Unknown => 0,
            FrontendState::Up => 1,
            FrontendState::Down => 2,
        }
    }
}

impl fmt::Display for FrontendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FrontendState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FrontendState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A state name that is not one of the vocabulary's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct UnknownState(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for st in BackendState::ALL {
            assert_eq!(st.as_str().parse::<BackendState>(), Ok(st));
        }
        for st in FrontendState::ALL {
            assert_eq!(st.to_string().parse::<FrontendState>(), Ok(st));
        }
        assert_eq!(
            "sideways".parse::<BackendState>(),
            Err(UnknownState("sideways".into()))
        );
    }

    #[test]
    fn probed_states() {
        let probed: Vec<_> = BackendState::ALL
            .into_iter()
            .filter(|s| s.is_probed())
            .collect();
        assert_eq!(
            probed,
            [BackendState::Unknown, BackendState::Up, BackendState::Down]
        );
    }
}
