//! The demo's scripted life: backends that fail for a while at a steady
//! period, on tokio time (so a paused-clock test can run an hour of it).
//!
//! The schedule is pure ([`Flap::healthy_at`], [`Flap::next_change`]); the
//! task around it only sleeps until the next change and flips the
//! backends.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::demo::backends::HttpBackend;

/// A group of backends that fail together: healthy until `first`, then
/// unhealthy for `down` at the start of every `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flap {
    /// The backends' names in the demo config.
    pub backends: Vec<String>,
    /// When the first failure starts, after the script starts.
    pub first: Duration,
    /// How long each failure lasts (shorter than `period`).
    pub down: Duration,
    /// The time from one failure's start to the next.
    pub period: Duration,
}

impl Flap {
    /// Whether the backends answer 200 `elapsed` after the script started.
    pub fn healthy_at(&self, elapsed: Duration) -> bool {
        match elapsed.checked_sub(self.first) {
            None => true,
            Some(into) => self.period.is_zero() || rem(into, self.period) >= self.down,
        }
    }

    /// The next time after `elapsed` (since the script started) at which
    /// [`healthy_at`](Flap::healthy_at) changes; `None` if it never does.
    pub fn next_change(&self, elapsed: Duration) -> Option<Duration> {
        let Some(into) = elapsed.checked_sub(self.first) else {
            return (!self.healthy_at(self.first)).then_some(self.first);
        };
        if self.period.is_zero() || self.down.is_zero() || self.down >= self.period {
            return None;
        }
        let in_period = rem(into, self.period);
        let period_start = elapsed - in_period;
        Some(if in_period < self.down {
            period_start + self.down
        } else {
            period_start + self.period
        })
    }
}

fn rem(d: Duration, period: Duration) -> Duration {
    // Nanosecond precision covers 584 years of demo.
    let p = period.as_nanos().max(1);
    Duration::from_nanos(u64::try_from(d.as_nanos() % p).unwrap_or(0))
}

/// The whole script: every flap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// The groups that fail now and then.
    pub flaps: Vec<Flap>,
}

impl Script {
    /// The demo's script for `docs/examples/demo.yaml`: `app2` fails 8 s of
    /// every 45 s (first at 20 s); `web1` and `web2`, web's primary pool,
    /// fail together for 15 s of every 60 s (first at 30 s); `web3`, its
    /// fallback, fails 6 s of every 120 s (first at 36 s), within the
    /// primary's failures, so `web` and `web6` are withdrawn then.
    pub fn demo() -> Script {
        Script {
            flaps: vec![
                Flap {
                    backends: vec!["app2".to_owned()],
                    first: Duration::from_secs(20),
                    down: Duration::from_secs(8),
                    period: Duration::from_secs(45),
                },
                Flap {
                    backends: vec!["web1".to_owned(), "web2".to_owned()],
                    first: Duration::from_secs(30),
                    down: Duration::from_secs(15),
                    period: Duration::from_secs(60),
                },
                Flap {
                    backends: vec!["web3".to_owned()],
                    first: Duration::from_secs(36),
                    down: Duration::from_secs(6),
                    period: Duration::from_secs(120),
                },
            ],
        }
    }

    /// One line per flap, for people.
    pub fn describe(&self) -> Vec<String> {
        self.flaps
            .iter()
            .map(|f| {
                format!(
                    "{} {} unhealthy {} s of every {} s (first at {} s)",
                    f.backends.join(" and "),
                    if f.backends.len() == 1 { "goes" } else { "go" },
                    f.down.as_secs(),
                    f.period.as_secs(),
                    f.first.as_secs()
                )
            })
            .collect()
    }
}

/// Plays `flap` on `backends` (the servers of `flap.backends`, in that
/// order) from now until `stop` is cancelled, and leaves them healthy.
pub async fn play(flap: Flap, backends: Vec<HttpBackend>, stop: CancellationToken) {
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        let healthy = flap.healthy_at(elapsed);
        for (name, b) in flap.backends.iter().zip(&backends) {
            if b.is_healthy() != healthy {
                tracing::info!(
                    backend = name.as_str(),
                    address = %b.addr(),
                    "demo script: backend {}",
                    if healthy { "recovers" } else { "fails" }
                );
                b.set_healthy(healthy);
            }
        }
        let Some(next) = flap.next_change(elapsed) else {
            stop.cancelled().await;
            break;
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(start + next) => {}
        }
    }
    for b in &backends {
        b.set_healthy(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn flap() -> Flap {
        Flap {
            backends: vec!["x".to_owned()],
            first: s(20),
            down: s(8),
            period: s(45),
        }
    }

    #[test]
    fn healthy_until_first_then_down_at_the_start_of_every_period() {
        let f = flap();
        assert!(f.healthy_at(s(0)));
        assert!(f.healthy_at(s(19)));
        assert!(!f.healthy_at(s(20)));
        assert!(!f.healthy_at(s(27)));
        assert!(f.healthy_at(s(28)));
        assert!(f.healthy_at(s(64)));
        assert!(!f.healthy_at(s(65)));
        assert!(f.healthy_at(s(73)));
    }

    #[test]
    fn next_change_is_the_next_edge() {
        let f = flap();
        assert_eq!(f.next_change(s(0)), Some(s(20)));
        assert_eq!(f.next_change(s(20)), Some(s(28)));
        assert_eq!(f.next_change(s(25)), Some(s(28)));
        assert_eq!(f.next_change(s(28)), Some(s(65)));
        assert_eq!(f.next_change(s(65)), Some(s(73)));
    }

    #[test]
    fn every_edge_flips_the_state() {
        let f = flap();
        let mut t = Duration::ZERO;
        let mut healthy = f.healthy_at(t);
        for _ in 0..20 {
            let next = f.next_change(t).unwrap();
            assert!(next > t);
            assert_eq!(f.healthy_at(next - Duration::from_nanos(1)), healthy);
            assert_ne!(f.healthy_at(next), healthy);
            healthy = !healthy;
            t = next;
        }
    }

    #[test]
    fn a_flap_that_never_recovers_or_never_fails_has_no_edges() {
        let mut f = flap();
        f.down = s(45);
        assert_eq!(f.next_change(s(0)), Some(s(20)));
        assert_eq!(f.next_change(s(30)), None);
        assert!(!f.healthy_at(s(1000)));
        f.down = Duration::ZERO;
        assert_eq!(f.next_change(s(0)), None);
        assert!(f.healthy_at(s(30)));
    }

    /// web3 fails only while web1 and web2 are down: web's last pool goes
    /// (and its prefix is withdrawn) without web3 ever failing alone.
    #[test]
    fn web3_fails_only_within_the_primary_pools_failures() {
        let script = Script::demo();
        let flap = |name: &str| {
            script
                .flaps
                .iter()
                .find(|f| f.backends.iter().any(|b| b == name))
                .unwrap()
                .clone()
        };
        let (primary, fallback) = (flap("web1"), flap("web3"));
        let mut all_down = 0;
        for t in 0..3600 {
            let t = Duration::from_millis(t * 500);
            if !fallback.healthy_at(t) {
                assert!(!primary.healthy_at(t), "web3 fails alone at {t:?}");
                all_down += 1;
            }
        }
        assert!(all_down > 0);
    }

    #[test]
    fn the_demo_script_reads_well() {
        assert_eq!(
            Script::demo().describe(),
            vec![
                "app2 goes unhealthy 8 s of every 45 s (first at 20 s)",
                "web1 and web2 go unhealthy 15 s of every 60 s (first at 30 s)",
                "web3 goes unhealthy 6 s of every 120 s (first at 36 s)",
            ]
        );
    }
}
