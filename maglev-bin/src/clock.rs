//! Wall-clock time for people: turning the monotonic instants the libraries
//! record into Unix nanoseconds for the API, logs and metrics.
//!
//! The one place maglev reads the system clock: once, when a
//! [`WallClock`] is made, pairing it with tokio's monotonic clock. Every
//! later wall time is derived from that pair, so paused-time tests stay
//! consistent and a wall-clock step never reorders events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A monotonic instant paired with the Unix time it was taken at.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base: Instant,
    base_unix: Duration,
}

impl WallClock {
    /// Pairs tokio's clock with the system clock now.
    #[allow(
        clippy::disallowed_methods,
        reason = "the daemon's single wall-clock reading, shown to people"
    )]
    pub fn new() -> WallClock {
        let base = Instant::now();
        let base_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        WallClock { base, base_unix }
    }

    /// A clock whose `base` instant is `unix` nanoseconds (for tests).
    pub fn at(base: Instant, unix: Duration) -> WallClock {
        WallClock {
            base,
            base_unix: unix,
        }
    }

    /// The Unix time of `at`, in nanoseconds.
    pub fn unix_nanos(&self, at: Instant) -> i64 {
        let unix = if at >= self.base {
            self.base_unix + (at - self.base)
        } else {
            self.base_unix.saturating_sub(self.base - at)
        };
        i64::try_from(unix.as_nanos()).unwrap_or(i64::MAX)
    }

    /// The Unix time now, in nanoseconds.
    pub fn now_unix_nanos(&self) -> i64 {
        self.unix_nanos(Instant::now())
    }
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
}
