//! Wall-clock time for people: turning the monotonic instants the libraries
//! record into Unix nanoseconds for the API, logs, metrics and the state
//! file.
//!
//! The one place maglev reads the system clock. It is read when a time is
//! stamped, never once per process: an NTP step after start (a router that
//! boots before its clock is synchronised) moves every later stamp with it,
//! so event times and the state file's timestamp are right again at once,
//! and the next start does not find its file stale or from the future.
//! Durations (uptime, intervals, ages within one run) stay on tokio's
//! monotonic clock: a step never reorders events or stretches a timer.
//!
//! Tests pair the clock with tokio's paused clock ([`WallClock::at`]) and
//! step it by hand ([`WallClock::stepped`], [`ClockStep`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Where Unix time comes from: the system clock, or (for tests) a fixed
/// pairing with tokio's clock that a [`ClockStep`] can move.
#[derive(Debug, Clone)]
enum Source {
    /// `SystemTime::now()` at every reading.
    System,
    /// `base` was `base_unix`, plus whatever `step` holds (nanoseconds).
    Paired {
        base: Instant,
        base_unix: Duration,
        step: Arc<AtomicI64>,
    },
}

/// Unix time for the monotonic instants maglev records.
#[derive(Debug, Clone)]
pub struct WallClock {
    source: Source,
}

/// A handle that steps a [`WallClock`] made by [`WallClock::stepped`], as
/// NTP steps the system clock.
#[derive(Debug, Clone)]
pub struct ClockStep(Arc<AtomicI64>);

impl ClockStep {
    /// Moves the clock by `nanos` (negative: back in time).
    pub fn step(&self, nanos: i64) {
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl WallClock {
    /// The system clock, read at every stamp.
    pub fn new() -> WallClock {
        WallClock {
            source: Source::System,
        }
    }

    /// A clock whose `base` instant is `unix` (for tests under tokio's
    /// paused clock).
    pub fn at(base: Instant, unix: Duration) -> WallClock {
        WallClock::stepped(base, unix).0
    }

    /// Like [`WallClock::at`], with a handle that steps it (for tests of a
    /// clock step).
    pub fn stepped(base: Instant, unix: Duration) -> (WallClock, ClockStep) {
        let step = Arc::new(AtomicI64::new(0));
        let clock = WallClock {
            source: Source::Paired {
                base,
                base_unix: unix,
                step: Arc::clone(&step),
            },
        };
        (clock, ClockStep(step))
    }

    /// The Unix time now and tokio's instant at that reading.
    #[allow(
        clippy::disallowed_methods,
        reason = "the daemon's wall-clock reading, taken where a time is stamped for people"
    )]
    fn reading(&self) -> (Instant, i128) {
        let now = Instant::now();
        let unix = match &self.source {
            Source::System => match SystemTime::now().duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_nanos() as i128,
                Err(before) => -(before.duration().as_nanos() as i128),
            },
            Source::Paired {
                base,
                base_unix,
                step,
            } => {
                base_unix.as_nanos() as i128
                    + signed_nanos(now, *base)
                    + i128::from(step.load(Ordering::Relaxed))
            }
        };
        (now, unix)
    }

    /// The Unix time of `at`, in nanoseconds: the clock now, less how long
    /// ago `at` was on the monotonic clock.
    pub fn unix_nanos(&self, at: Instant) -> i64 {
        let (now, unix_now) = self.reading();
        clamp(unix_now - signed_nanos(now, at))
    }

    /// The Unix time now, in nanoseconds.
    pub fn now_unix_nanos(&self) -> i64 {
        clamp(self.reading().1)
    }
}

/// `a - b` in nanoseconds, either sign.
fn signed_nanos(a: Instant, b: Instant) -> i128 {
    if a >= b {
        (a - b).as_nanos() as i128
    } else {
        -((b - a).as_nanos() as i128)
    }
}

fn clamp(nanos: i128) -> i64 {
    i64::try_from(nanos.max(0)).unwrap_or(i64::MAX)
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn instants_before_and_after_the_base() {
        let base = Instant::now();
        let clock = WallClock::at(base, Duration::from_secs(100));
        assert_eq!(clock.unix_nanos(base), 100_000_000_000);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now_unix_nanos(), 101_500_000_000);
        assert_eq!(
            clock.unix_nanos(base - Duration::from_secs(1)),
            99_000_000_000
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_moves_every_later_stamp() {
        let base = Instant::now();
        let (clock, step) = WallClock::stepped(base, Duration::from_secs(100));
        let copy = clock.clone();
        tokio::time::advance(Duration::from_secs(10)).await;
        step.step(3_600_000_000_000);
        // Read after the step, as the daemon does where it stamps.
        assert_eq!(copy.now_unix_nanos(), 3_710_000_000_000);
        assert_eq!(clock.unix_nanos(base), 3_700_000_000_000);
        step.step(-7_200_000_000_000);
        assert_eq!(clock.now_unix_nanos(), 0, "clamped at the epoch");
    }
}
