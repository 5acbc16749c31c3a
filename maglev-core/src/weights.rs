//! Weights: which pool is active, and what each backend weighs in VPP.
//!
//! The rules of SPEC §4.1-4.3 with the original's bug fixes: a pool whose up
//! backends all have weight 0 is not active; a disabled backend always
//! flushes; a down one flushes per the frontend's `flush-on-down`.

use crate::config::Frontend;
use crate::state::BackendState;

/// The effective weight of a backend and whether its flows must be flushed
/// when the weight is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// The weight sent to VPP (0..=100).
    pub weight: u8,
    /// Whether the weight change also tears down the AS's existing flows.
    pub flush: bool,
}

/// The index of the active pool: the first pool with a backend that is `up`
/// and has a configured weight above 0. `None` when no pool qualifies; then
/// every effective weight is 0.
pub fn active_pool<F>(frontend: &Frontend, state_of: F) -> Option<usize>
where
    F: Fn(&str) -> BackendState,
{
    frontend.pools.iter().position(|pool| {
        pool.backends
            .iter()
            .any(|(name, m)| m.weight > 0 && state_of(name) == BackendState::Up)
    })
}

/// The effective weight and flush decision of one backend.
///
/// | state | weight | flush |
/// | --- | --- | --- |
/// | up | configured, if its pool is active; else 0 | no |
/// | down | 0 | `flush_on_down` |
/// | disabled | 0 | yes |
/// | removed | 0 (the AS is deleted, with flush) | yes |
/// | unknown, paused | 0 | no |
pub fn effective(
    state: BackendState,
    configured: u8,
    pool_active: bool,
    flush_on_down: bool,
) -> Effective {
    match state {
        BackendState::Up => Effective {
            weight: if pool_active { configured } else { 0 },
            flush: false,
        },
        BackendState::Down => Effective {
            weight: 0,
            flush: flush_on_down,
        },
        BackendState::Disabled | BackendState::Removed => Effective {
            weight: 0,
            flush: true,
        },
        BackendState::Unknown | BackendState::Paused => Effective {
            weight: 0,
            flush: false,
        },
    }
}

/// Whether a transition of a backend into `to` must flush its flows at once,
/// even if its weight does not change (it may already be 0 from failover).
pub fn transition_flushes(to: BackendState, flush_on_down: bool) -> bool {
    effective(to, 0, false, flush_on_down).flush
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Pool, PoolMember};
    use std::collections::BTreeMap;

    fn frontend(pools: &[&[(&str, u8)]]) -> Frontend {
        Frontend {
            flow_table_length: Default::default(),
            address: "192.0.2.1".parse().unwrap(),
            protocol: None,
            port: 0,
            description: String::new(),
            pools: pools
                .iter()
                .enumerate()
                .map(|(i, members)| Pool {
                    name: format!("p{i}"),
                    backends: members
                        .iter()
                        .map(|&(n, weight)| (n.to_owned(), PoolMember { weight }))
                        .collect::<BTreeMap<_, _>>(),
                })
                .collect(),
            src_ip_sticky: false,
            flush_on_down: true,
        }
    }

    fn states<'a>(up: &'a [&'a str]) -> impl Fn(&str) -> BackendState + 'a {
        move |n| {
            if up.contains(&n) {
                BackendState::Up
            } else {
                BackendState::Down
            }
        }
    }

    /// The original's five-case table for weighted failover.
    #[test]
    fn active_pool_table() {
        let f = frontend(&[&[("a", 100), ("b", 100)], &[("c", 100)]]);
        assert_eq!(
            active_pool(&f, states(&["a", "b", "c"])),
            Some(0),
            "primary up wins"
        );
        assert_eq!(
            active_pool(&f, states(&["c"])),
            Some(1),
            "primary down fails over"
        );
        assert_eq!(active_pool(&f, states(&[])), None, "nothing up: no pool");
        let zero = frontend(&[&[("a", 0), ("b", 0)], &[("c", 100)]]);
        assert_eq!(
            active_pool(&zero, states(&["a", "b", "c"])),
            Some(1),
            "all-zero primary loses"
        );
        let partial = frontend(&[&[("a", 0), ("b", 50)], &[("c", 100)]]);
        assert_eq!(
            active_pool(&partial, states(&["a", "c"])),
            Some(1),
            "only the zero-weight one is up"
        );
        assert_eq!(
            active_pool(&partial, states(&["b", "c"])),
            Some(0),
            "one weighted up member is enough"
        );
    }

    /// Every row of state × pool active × flush-on-down.
    #[test]
    fn effective_truth_table() {
        use BackendState::*;
        let e = |weight, flush| Effective { weight, flush };
        let rows = [
            (Up, true, true, e(70, false)),
            (Up, true, false, e(70, false)),
            (Up, false, true, e(0, false)),
            (Up, false, false, e(0, false)),
            (Down, true, true, e(0, true)),
            (Down, true, false, e(0, false)),
            (Down, false, true, e(0, true)),
            (Down, false, false, e(0, false)),
            (Disabled, true, true, e(0, true)),
            (Disabled, true, false, e(0, true)),
            (Disabled, false, true, e(0, true)),
            (Disabled, false, false, e(0, true)),
            (Removed, true, true, e(0, true)),
            (Removed, false, false, e(0, true)),
            (Unknown, true, true, e(0, false)),
            (Unknown, false, false, e(0, false)),
            (Paused, true, true, e(0, false)),
            (Paused, false, false, e(0, false)),
        ];
        for (state, active, fod, want) in rows {
            assert_eq!(
                effective(state, 70, active, fod),
                want,
                "{state} active={active} flush-on-down={fod}"
            );
        }
    }

    #[test]
    fn transitions_that_flush() {
        assert!(transition_flushes(BackendState::Disabled, false));
        assert!(transition_flushes(BackendState::Down, true));
        assert!(!transition_flushes(BackendState::Down, false));
        assert!(!transition_flushes(BackendState::Up, true));
        assert!(!transition_flushes(BackendState::Paused, true));
    }
}
