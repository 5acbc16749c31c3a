//! Slow start: a backend that comes back reaches its configured weight in
//! steps, so a cold server is not handed its full share of new flows at
//! once (HAProxy's `slowstart`).
//!
//! A ramp of length `L` has [`STEPS`] steps: during step `k` (from
//! `k·L/STEPS` to `(k+1)·L/STEPS` after the backend came up) its weight is
//! `configured · k / STEPS` rounded up, and at least 1 (step 0 is a
//! trickle); from `L` on it is the configured weight. Weights only rise,
//! and the configured weight is reached at `L` exactly. Each step is an
//! ordinary planned weight change.

use std::time::Duration;

/// The steps of a ramp.
pub const STEPS: u8 = 10;

/// The step a ramp of `length` is in, `elapsed` after it began: `Some(0..STEPS)`
/// while ramping, `None` once it is over (or when `length` is zero).
pub fn step(elapsed: Duration, length: Duration) -> Option<u8> {
    if length.is_zero() || elapsed >= length {
        return None;
    }
    // elapsed < length, so the quotient is below STEPS.
    let k = elapsed.as_nanos() * u128::from(STEPS) / length.as_nanos();
    Some(k as u8)
}

/// The weight at `step` of a ramp towards `configured`: at least 1 (if
/// `configured` is not 0), `configured · step / STEPS` rounded up, at most
/// `configured`.
pub fn weight(configured: u8, step: u8) -> u8 {
    if configured == 0 {
        return 0;
    }
    let share = (u32::from(configured) * u32::from(step.min(STEPS))).div_ceil(u32::from(STEPS));
    // share <= configured <= 255.
    (share as u8).clamp(1, configured)
}

/// When the next step of a ramp of `length` begins, counted from the
/// ramp's start, `elapsed` after it began; `None` once the ramp is over.
/// The last "step" begins at `length`, where the weight becomes the
/// configured one.
pub fn next_step(elapsed: Duration, length: Duration) -> Option<Duration> {
    let k = step(elapsed, length)?;
    // The first instant of step k + 1: the least e with e·STEPS/length ≥ k + 1.
    let nanos = (length.as_nanos() * (u128::from(k) + 1)).div_ceil(u128::from(STEPS));
    // At most length's nanoseconds, which came from a Duration.
    Some(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn steps_of_a_ten_second_ramp() {
        let len = 10 * S;
        assert_eq!(step(Duration::ZERO, len), Some(0));
        assert_eq!(step(S - Duration::from_nanos(1), len), Some(0));
        assert_eq!(step(S, len), Some(1));
        assert_eq!(step(9 * S + S / 2, len), Some(9));
        assert_eq!(step(len, len), None);
        assert_eq!(step(len * 3, len), None);
        assert_eq!(step(S, Duration::ZERO), None);
        assert_eq!(next_step(Duration::ZERO, len), Some(S));
        assert_eq!(next_step(9 * S, len), Some(len));
        assert_eq!(next_step(len, len), None);
    }

    #[test]
    fn weights_of_each_step() {
        let w: Vec<u8> = (0..STEPS).map(|k| weight(100, k)).collect();
        assert_eq!(w, [1, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
        let w: Vec<u8> = (0..STEPS).map(|k| weight(3, k)).collect();
        assert_eq!(w, [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
        assert_eq!(weight(0, 5), 0);
        assert_eq!(weight(7, STEPS), 7);
    }
}
