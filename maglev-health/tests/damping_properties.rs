//! Properties of flap damping over arbitrary flap sequences (paused
//! clock: instants are built, never waited for).

use std::time::Duration;

use maglev_core::config::Damping;
use maglev_health::damping::{Change, Damper};
use proptest::prelude::*;
use tokio::time::Instant;

/// Plays alternating flaps (`up` first, after `gaps`) through a damper,
/// polling for release at every moment it could happen, and returns the
/// instants at which the backend's effective weight changed (serving =
/// up and not suppressed).
fn weight_changes(config: Damping, gaps: &[Duration]) -> Vec<Instant> {
    let t0 = Instant::now();
    let mut d = Damper::new(config, t0);
    let mut up = true;
    let mut serving = true;
    let mut changes = Vec::new();
    let mut now = t0;
    let mut note = |at: Instant, up: bool, d: &Damper, serving: &mut bool| {
        let s = up && !d.is_suppressed();
        if s != *serving {
            *serving = s;
            changes.push(at);
        }
    };
    for gap in gaps {
        let next = now + *gap;
        // Releases due before the next flap.
        while let Some(at) = d.release_at().filter(|at| *at <= next) {
            assert_eq!(d.poll(at), Some(Change::Released));
            note(at, up, &d, &mut serving);
        }
        now = next;
        up = !up;
        d.flap(now);
        note(now, up, &d, &mut serving);
    }
    while let Some(at) = d.release_at() {
        assert_eq!(d.poll(at), Some(Change::Released));
        note(at, up, &d, &mut serving);
    }
    changes
}

/// The most changes in any window of `len` (closed at both ends).
fn most_in_a_window(changes: &[Instant], len: Duration) -> usize {
    (0..changes.len())
        .map(|i| {
            changes[i..]
                .iter()
                .take_while(|t| **t - changes[i] <= len)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn damping() -> impl Strategy<Value = Damping> {
    (1u64..=120, 1u32..=8, 0.1f64..0.9, 1u32..=8)
        .prop_map(|(hl, suppress, reuse, ms)| Damping {
            half_life: Duration::from_secs(hl),
            suppress: f64::from(suppress),
            reuse: reuse * f64::from(suppress),
            max_suppress: Duration::from_secs(hl * u64::from(ms + 2)),
        })
        // What validation accepts: the cap lets the penalty exceed suppress.
        .prop_filter("max-suppress too short", |d| d.max_penalty() > d.suppress)
}

/// Gaps between flaps, scaled to the half-life: bursts, a few per
/// half-life, and long quiet spells.
fn gaps(half_life: Duration) -> impl Strategy<Value = Vec<Duration>> {
    prop::collection::vec(
        prop_oneof![0u64..=2_000, 0u64..=60_000, 0u64..=200_000],
        1..300,
    )
    .prop_map(move |ms| {
        ms.iter()
            .map(|ms| Duration::from_millis(*ms).mul_f64(half_life.as_secs_f64() / 60.0))
            .collect()
    })
}

/// The bound of `docs/config-guide.md`: at most `2·⌊suppress⌋ + 3` weight
/// changes in any half-life (the worst sequences found reach about
/// `1.5·suppress + 1`).
fn bound(config: &Damping) -> usize {
    2 * (config.suppress.floor() as usize) + 3
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// However the probes alternate, a damped backend's weight changes a
    /// bounded number of times per half-life.
    #[test]
    fn weight_changes_per_half_life_are_bounded(
        (config, gaps) in damping().prop_flat_map(|c| (Just(c), gaps(c.half_life))),
    ) {
        let changes = weight_changes(config, &gaps);
        let most = most_in_a_window(&changes, config.half_life);
        prop_assert!(most <= bound(&config), "{} changes in one half-life > {} for {:?}", most, bound(&config), config);
    }

    /// Nobody is held longer than max-suppress after its last flap, and
    /// everybody is released once the flapping stops.
    #[test]
    fn suppression_ends_within_max_suppress_of_the_last_flap(
        (config, gaps) in damping().prop_flat_map(|c| (Just(c), gaps(c.half_life))),
    ) {
        let t0 = Instant::now();
        let mut d = Damper::new(config, t0);
        let mut now = t0;
        for gap in &gaps {
            now += *gap;
            while let Some(at) = d.release_at().filter(|at| *at <= now) {
                prop_assert!(d.poll(at).is_some());
            }
            d.flap(now);
        }
        if let Some(at) = d.release_at() {
            prop_assert!(at <= now + config.max_suppress + Duration::from_millis(1));
            prop_assert_eq!(d.poll(at), Some(Change::Released));
        }
        prop_assert!(!d.is_suppressed());
    }
}
