//! Properties of the pool thresholds and of slow start.

use std::collections::BTreeMap;
use std::time::Duration;

use maglev_core::config::{Frontend, Pool, PoolMember, Threshold};
use maglev_core::slow_start;
use maglev_core::state::BackendState;
use maglev_core::weights::{Serving, choose_pool, effective};
use proptest::prelude::*;

/// Up to 4 pools of up to 8 members with thresholds; member `p{i}b{j}`.
fn frontend() -> impl Strategy<Value = Frontend> {
    let pool = (
        1usize..=8,
        1u32..=8,
        0u32..=8,
        any::<bool>(),
        prop::collection::vec(0u8..=100, 8),
    );
    prop::collection::vec(pool, 1..=4).prop_map(|pools| Frontend {
        flow_table_length: Default::default(),
        address: "192.0.2.1".parse().unwrap(),
        protocol: None,
        port: 0,
        description: String::new(),
        pools: pools
            .into_iter()
            .enumerate()
            .map(|(i, (n, min, extra, percent, weights))| {
                let min = min.min(n as u32);
                let (min_up, min_up_to_return) = if percent {
                    let p = (min * 100 / n as u32).max(1) as u8;
                    (
                        Threshold::Percent(p),
                        Threshold::Percent(p.saturating_add(extra as u8 * 10).min(100)),
                    )
                } else {
                    (
                        Threshold::Count(min),
                        Threshold::Count((min + extra).min(n as u32)),
                    )
                };
                Pool {
                    name: format!("p{i}"),
                    backends: (0..n)
                        .map(|j| (format!("p{i}b{j}"), PoolMember { weight: weights[j] }))
                        .collect::<BTreeMap<_, _>>(),
                    min_up,
                    min_up_to_return,
                }
            })
            .collect(),
        src_ip_sticky: false,
        flush_on_down: true,
    })
}

fn serving() -> impl Strategy<Value = Serving> {
    (
        prop::sample::select(BackendState::ALL.to_vec()),
        any::<bool>(),
        prop::option::of(0u8..slow_start::STEPS),
    )
        .prop_map(|(state, suppressed, ramp)| Serving {
            state,
            suppressed,
            ramp,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// At a fixed health level the choice is a fixed point: choosing again
    /// from it gives it back, so the active pool never oscillates.
    #[test]
    fn the_pool_choice_never_oscillates(
        f in frontend(),
        conditions in prop::collection::vec(serving(), 32),
        previous in prop::option::of(0usize..4),
    ) {
        let serving_of = |name: &str| {
            let (i, j) = name[1..].split_once('b').unwrap();
            conditions[i.parse::<usize>().unwrap() * 8 + j.parse::<usize>().unwrap()]
        };
        let previous = previous.filter(|&p| p < f.pools.len());
        let first = choose_pool(&f, serving_of, previous);
        prop_assert_eq!(choose_pool(&f, serving_of, first), first);
        // Whatever was chosen before, some pool is active iff something serves.
        let anything = f.pools.iter().any(|p| p.backends.iter().any(|(n, m)| m.weight > 0 && serving_of(n).is_up()));
        prop_assert_eq!(first.is_some(), anything);
        // Without thresholds the choice is the first pool with a serving member.
        let mut plain = f.clone();
        for p in &mut plain.pools {
            p.min_up = Threshold::Count(1);
            p.min_up_to_return = Threshold::Count(1);
        }
        let first_serving = plain.pools.iter().position(|p| p.backends.iter().any(|(n, m)| m.weight > 0 && serving_of(n).is_up()));
        prop_assert_eq!(choose_pool(&plain, serving_of, previous), first_serving);
    }

    /// A ramp's weights never fall, start at 1, and reach the configured
    /// weight exactly at slow-start.
    #[test]
    fn slow_start_weights_rise_to_the_configured_weight_on_time(
        configured in 1u8..=100,
        length_ns in 1u64..=3_600_000_000_000,
        mut samples in prop::collection::vec(0u64..=4_000_000, 1..64),
    ) {
        let length = Duration::from_nanos(length_ns);
        samples.sort_unstable();
        let weight_at = |elapsed: Duration| {
            let serving = Serving { state: BackendState::Up, suppressed: false, ramp: slow_start::step(elapsed, length) };
            effective(serving, configured, true, true).weight
        };
        prop_assert_eq!(weight_at(Duration::ZERO), 1);
        let mut last = 0;
        for ms in samples {
            let elapsed = Duration::from_millis(ms);
            let w = weight_at(elapsed);
            prop_assert!(w >= last, "{} then {} at {:?}", last, w, elapsed);
            prop_assert!(w >= 1);
            if elapsed >= length {
                prop_assert_eq!(w, configured);
            } else {
                prop_assert!(w <= configured);
            }
            last = w;
        }
        prop_assert_eq!(weight_at(length), configured);
        // Each step is announced: next_step is the instant the weight may change.
        let mut at = Duration::ZERO;
        let mut steps = 0;
        while let Some(next) = slow_start::next_step(at, length) {
            prop_assert!(next > at);
            prop_assert_ne!(slow_start::step(next, length), slow_start::step(at, length), "a step begins at {:?}", next);
            at = next;
            steps += 1;
        }
        prop_assert!(steps <= u32::from(slow_start::STEPS), "{} steps", steps);
        prop_assert_eq!(at, length);
    }
}
