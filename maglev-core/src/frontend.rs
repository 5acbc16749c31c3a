//! Frontend state: aggregating backend states, and tracking transitions.

use std::collections::BTreeMap;

use crate::config::Frontend;
use crate::state::{BackendState, FrontendState};
use crate::weights::{Serving, effective};

/// The state of `frontend` given its backends' conditions and its `active`
/// pool (SPEC §4.5): `up` when any backend has a non-zero effective
/// weight, `unknown` while every backend is still `unknown`, `down`
/// otherwise.
pub fn frontend_state<F>(frontend: &Frontend, serving_of: F, active: Option<usize>) -> FrontendState
where
    F: Fn(&str) -> Serving,
{
    let carries_traffic = frontend.pools.iter().enumerate().any(|(i, pool)| {
        pool.backends.iter().any(|(name, m)| {
            effective(
                serving_of(name),
                m.weight,
                Some(i) == active,
                frontend.flush_on_down,
            )
            .weight
                > 0
        })
    });
    if carries_traffic {
        FrontendState::Up
    } else if frontend
        .backend_names()
        .all(|b| serving_of(b).state == BackendState::Unknown)
    {
        FrontendState::Unknown
    } else {
        FrontendState::Down
    }
}

/// A change of a frontend's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendTransition {
    /// The frontend's name.
    pub frontend: String,
    /// The state before.
    pub from: FrontendState,
    /// The state after.
    pub to: FrontendState,
}

/// The last known state of every frontend; reports each change once.
#[derive(Debug, Clone, Default)]
pub struct FrontendStates {
    states: BTreeMap<String, FrontendState>,
}

impl FrontendStates {
    /// An empty tracker: every frontend starts `unknown`.
    pub fn new() -> FrontendStates {
        FrontendStates::default()
    }

    /// The last recorded state of `frontend` (`unknown` if never recorded).
    pub fn get(&self, frontend: &str) -> FrontendState {
        self.states
            .get(frontend)
            .copied()
            .unwrap_or(FrontendState::Unknown)
    }

    /// Every recorded state, by frontend name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, FrontendState)> {
        self.states.iter().map(|(n, s)| (n.as_str(), *s))
    }

    /// Records `state` for `frontend` and returns the transition if it changed.
    pub fn update(&mut self, frontend: &str, state: FrontendState) -> Option<FrontendTransition> {
        let from = self
            .states
            .insert(frontend.to_owned(), state)
            .unwrap_or(FrontendState::Unknown);
        (from != state).then(|| FrontendTransition {
            frontend: frontend.to_owned(),
            from,
            to: state,
        })
    }

    /// Forgets frontends that are no longer configured.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.states.retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Pool, PoolMember};

    fn frontend() -> Frontend {
        let pool = |name: &str, members: &[(&str, u8)]| Pool {
            name: name.into(),
            backends: members
                .iter()
                .map(|&(n, weight)| (n.to_owned(), PoolMember { weight }))
                .collect(),
            min_up: Default::default(),
            min_up_to_return: Default::default(),
        };
        Frontend {
            flow_table_length: Default::default(),
            address: "192.0.2.1".parse().unwrap(),
            protocol: None,
            port: 0,
            description: String::new(),
            pools: vec![
                pool("primary", &[("a", 100), ("b", 0)]),
                pool("fallback", &[("c", 100)]),
            ],
            src_ip_sticky: false,
            flush_on_down: true,
        }
    }

    fn with<'a>(states: &'a [(&'static str, BackendState)]) -> impl Fn(&str) -> Serving + 'a {
        move |n| {
            states
                .iter()
                .find(|(name, _)| *name == n)
                .map_or(BackendState::Unknown, |s| s.1)
                .into()
        }
    }

    fn frontend_state<F: Fn(&str) -> Serving>(f: &Frontend, serving_of: F) -> FrontendState {
        let active = crate::weights::choose_pool(f, &serving_of, None);
        super::frontend_state(f, serving_of, active)
    }

    #[test]
    fn aggregation() {
        use BackendState::*;
        let f = frontend();
        assert_eq!(frontend_state(&f, with(&[])), FrontendState::Unknown);
        assert_eq!(frontend_state(&f, with(&[("a", Up)])), FrontendState::Up);
        assert_eq!(
            frontend_state(&f, with(&[("a", Down)])),
            FrontendState::Down,
            "some info, no traffic"
        );
        assert_eq!(
            frontend_state(&f, with(&[("a", Down), ("c", Up)])),
            FrontendState::Up,
            "fallback carries"
        );
        assert_eq!(
            frontend_state(&f, with(&[("a", Down), ("b", Up), ("c", Down)])),
            FrontendState::Down,
            "an up backend with weight 0 carries nothing"
        );
        assert_eq!(
            frontend_state(&f, with(&[("a", Paused), ("b", Disabled), ("c", Paused)])),
            FrontendState::Down
        );
    }

    #[test]
    fn transitions_reported_once() {
        let mut t = FrontendStates::new();
        assert_eq!(t.update("web", FrontendState::Unknown), None);
        let up = t.update("web", FrontendState::Up).unwrap();
        assert_eq!(
            (up.from, up.to),
            (FrontendState::Unknown, FrontendState::Up)
        );
        assert_eq!(t.update("web", FrontendState::Up), None);
        assert_eq!(t.get("web"), FrontendState::Up);
        t.retain(|n| n != "web");
        assert_eq!(t.get("web"), FrontendState::Unknown);
    }
}
