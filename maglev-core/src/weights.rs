//! Weights: which pool is active, and what each backend weighs in VPP.
//!
//! The rules of SPEC §4.1-4.3 with the original's bug fixes (a pool whose
//! up backends all have weight 0 is not active; a disabled backend always
//! flushes; a down one flushes per the frontend's `flush-on-down`), and
//! three additions: a backend suppressed by flap damping weighs 0 without
//! a flush, a slow-starting one weighs its ramp's share, and a pool is
//! chosen against its `min-up` thresholds with hysteresis
//! ([`choose_pool`]).

use crate::config::{Frontend, Pool};
use crate::slow_start;
use crate::state::BackendState;

/// What the weight rules know of one backend at one moment: its state and
/// the two conditions that hold an `up` backend back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// The health and operator state.
    pub state: BackendState,
    /// Flap damping holds it at weight 0 (only matters while `up`).
    pub suppressed: bool,
    /// Slow start: the ramp's step (`0..slow_start::STEPS`) while it
    /// ramps, `None` at full weight.
    pub ramp: Option<u8>,
}

impl Serving {
    /// Whether it serves: `up`, not suppressed (ramping counts).
    pub fn is_up(self) -> bool {
        self.state == BackendState::Up && !self.suppressed
    }
}

impl From<BackendState> for Serving {
    /// The state alone: not suppressed, not ramping.
    fn from(state: BackendState) -> Serving {
        Serving {
            state,
            suppressed: false,
            ramp: None,
        }
    }
}

/// The effective weight of a backend and whether its flows must be flushed
/// when the weight is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// The weight sent to VPP (0..=100).
    pub weight: u8,
    /// Whether the weight change also tears down the AS's existing flows.
    pub flush: bool,
}

/// How many members of `pool` serve with a configured weight above 0.
pub fn serving_members<F>(pool: &Pool, serving_of: F) -> usize
where
    F: Fn(&str) -> Serving,
{
    pool.backends
        .iter()
        .filter(|(name, m)| m.weight > 0 && serving_of(name).is_up())
        .count()
}

/// The index of the active pool, from the backends' conditions and the
/// `previous` choice; `None` when no pool has a serving member (then every
/// effective weight is 0).
///
/// A pool's *serving* members are those [`is_up`](Serving::is_up) with a
/// configured weight above 0. The first pool in priority order that meets
/// its threshold is chosen, where the threshold of a pool above the
/// previous choice is `min-up-to-return` (it takes traffic back) and of the
/// previous choice and the pools below it `min-up` (it keeps traffic, or
/// takes it over). When no pool meets its threshold, the first that meets
/// `min-up` is chosen; when none does, the first with any serving member:
/// a threshold moves traffic between pools, it never black-holes a VIP.
///
/// The choice is stable: at fixed conditions, choosing again from the
/// result gives the result (`choose(choose(p)) == choose(p)`), so it never
/// oscillates. With the default thresholds (1) it is SPEC §4.1's first pool
/// with an up, weighted member.
pub fn choose_pool<F>(frontend: &Frontend, serving_of: F, previous: Option<usize>) -> Option<usize>
where
    F: Fn(&str) -> Serving,
{
    let up: Vec<usize> = frontend
        .pools
        .iter()
        .map(|p| serving_members(p, &serving_of))
        .collect();
    let pools = || frontend.pools.iter().zip(&up).enumerate();
    let returning = |i: usize| previous.is_some_and(|p| i < p);
    pools()
        .position(|(i, (pool, &n))| {
            let need = if returning(i) {
                pool.min_up_to_return_count()
            } else {
                pool.min_up_count()
            };
            n >= need
        })
        .or_else(|| pools().position(|(_, (pool, &n))| n >= pool.min_up_count()))
        .or_else(|| up.iter().position(|&n| n > 0))
}

/// The effective weight and flush decision of one backend.
///
/// | condition | weight | flush |
/// | --- | --- | --- |
/// | up | configured, if its pool is active; else 0 | no |
/// | up, suppressed | 0 | no |
/// | up, slow-starting | its ramp's share of configured, if its pool is active; else 0 | no |
/// | down | 0 | `flush_on_down` |
/// | disabled | 0 | yes |
/// | removed | 0 (the AS is deleted, with flush) | yes |
/// | unknown, paused | 0 | no |
pub fn effective(
    serving: Serving,
    configured: u8,
    pool_active: bool,
    flush_on_down: bool,
) -> Effective {
    match serving.state {
        BackendState::Up => Effective {
            weight: match serving.ramp {
                _ if !pool_active || serving.suppressed => 0,
                Some(step) => slow_start::weight(configured, step),
                None => configured,
            },
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
    effective(to.into(), 0, false, flush_on_down).flush
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
                    min_up: Default::default(),
                    min_up_to_return: Default::default(),
                })
                .collect(),
            src_ip_sticky: false,
            flush_on_down: true,
        }
    }

    fn states<'a>(up: &'a [&'a str]) -> impl Fn(&str) -> Serving + 'a {
        move |n| {
            if up.contains(&n) {
                BackendState::Up.into()
            } else {
                BackendState::Down.into()
            }
        }
    }

    /// The original's five-case table for weighted failover.
    #[test]
    fn active_pool_table() {
        let f = frontend(&[&[("a", 100), ("b", 100)], &[("c", 100)]]);
        assert_eq!(
            choose_pool(&f, states(&["a", "b", "c"]), None),
            Some(0),
            "primary up wins"
        );
        assert_eq!(
            choose_pool(&f, states(&["c"]), None),
            Some(1),
            "primary down fails over"
        );
        assert_eq!(
            choose_pool(&f, states(&[]), None),
            None,
            "nothing up: no pool"
        );
        let zero = frontend(&[&[("a", 0), ("b", 0)], &[("c", 100)]]);
        assert_eq!(
            choose_pool(&zero, states(&["a", "b", "c"]), None),
            Some(1),
            "all-zero primary loses"
        );
        let partial = frontend(&[&[("a", 0), ("b", 50)], &[("c", 100)]]);
        assert_eq!(
            choose_pool(&partial, states(&["a", "c"]), None),
            Some(1),
            "only the zero-weight one is up"
        );
        assert_eq!(
            choose_pool(&partial, states(&["b", "c"]), None),
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
                effective(state.into(), 70, active, fod),
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

    fn serving(up: bool, suppressed: bool, ramp: Option<u8>) -> Serving {
        Serving {
            state: if up {
                BackendState::Up
            } else {
                BackendState::Down
            },
            suppressed,
            ramp,
        }
    }

    #[test]
    fn suppressed_and_ramping_backends() {
        let e = |s, active| effective(s, 80, active, true);
        assert_eq!(e(serving(true, true, None), true).weight, 0);
        assert!(!e(serving(true, true, None), true).flush, "no flush");
        assert_eq!(e(serving(true, false, Some(0)), true).weight, 1);
        assert_eq!(e(serving(true, false, Some(5)), true).weight, 40);
        assert_eq!(e(serving(true, false, Some(5)), false).weight, 0);
        assert_eq!(e(serving(true, true, Some(5)), true).weight, 0);
        assert!(
            e(serving(false, true, None), true).flush,
            "down still flushes"
        );
        assert!(!serving(true, true, None).is_up());
        assert!(serving(true, false, Some(0)).is_up());
    }

    /// 10 primaries (min-up 2, return at 5) over one fallback.
    fn thresholds() -> Frontend {
        let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        let refs: Vec<(&str, u8)> = names.iter().map(|n| (n.as_str(), 100)).collect();
        let mut f = frontend(&[&refs, &[("f0", 100)]]);
        f.pools[0].min_up = crate::config::Threshold::Count(2);
        f.pools[0].min_up_to_return = crate::config::Threshold::Percent(50);
        f
    }

    fn primaries_up(n: usize) -> impl Fn(&str) -> Serving {
        move |b: &str| {
            let up = b == "f0"
                || b.strip_prefix('p')
                    .is_some_and(|i| i.parse::<usize>().unwrap() < n);
            Serving::from(if up {
                BackendState::Up
            } else {
                BackendState::Down
            })
        }
    }

    #[test]
    fn a_primary_fails_over_below_min_up_and_returns_at_min_up_to_return() {
        let f = thresholds();
        let mut active = choose_pool(&f, primaries_up(10), None);
        assert_eq!(active, Some(0));
        let mut seen = Vec::new();
        for n in [9, 5, 2, 1, 2, 3, 4, 5, 6, 10] {
            active = choose_pool(&f, primaries_up(n), active);
            seen.push((n, active));
        }
        assert_eq!(
            seen,
            [
                (9, Some(0)),
                (5, Some(0)),
                (2, Some(0)),
                (1, Some(1)),
                (2, Some(1)),
                (3, Some(1)),
                (4, Some(1)),
                (5, Some(0)),
                (6, Some(0)),
                (10, Some(0)),
            ]
        );
    }

    #[test]
    fn a_threshold_never_black_holes_a_vip() {
        let f = thresholds();
        let only_p0 = |b: &str| {
            Serving::from(if b == "p0" {
                BackendState::Up
            } else {
                BackendState::Down
            })
        };
        assert_eq!(
            choose_pool(&f, only_p0, Some(1)),
            Some(0),
            "below min-up, but the only one serving"
        );
        assert_eq!(choose_pool(&f, states(&[]), Some(0)), None);
    }
}
