//! Flap damping of one backend (BGP route-flap damping, RFC 2439, applied
//! to health): every flap (a transition between `up` and `down`) adds a
//! penalty of 1 that halves every `half-life`; a flap that takes the
//! penalty above `suppress` holds the backend *suppressed* (weight 0, no
//! flush) until the penalty has decayed below `reuse`. The penalty is
//! capped so that no backend stays suppressed longer than `max-suppress`
//! after its last flap.
//!
//! Pure, like [`machine`](crate::machine): `now` is an argument, and the
//! checker moves the timers around it.

use std::time::Duration;

use maglev_core::config::Damping;
use tokio::time::Instant;

/// The penalty of one flap.
pub const FLAP_PENALTY: f64 = 1.0;

/// The damping state of one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Damper {
    config: Damping,
    /// The penalty at `at`.
    penalty: f64,
    at: Instant,
    suppressed: bool,
}

/// What a flap or a poll did to the backend's suppression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It became suppressed.
    Suppressed,
    /// It was released.
    Released,
}

impl Damper {
    /// A backend without penalty.
    pub fn new(config: Damping, now: Instant) -> Damper {
        Damper {
            config,
            penalty: 0.0,
            at: now,
            suppressed: false,
        }
    }

    /// A backend with `penalty` at `now` (seeded from a state file): capped
    /// at the maximum, suppressed if above `suppress`.
    pub fn with_penalty(config: Damping, penalty: f64, now: Instant) -> Damper {
        let mut d = Damper::new(config, now);
        d.penalty = clamp(penalty, config.max_penalty());
        d.suppressed = d.penalty > config.suppress;
        d
    }

    /// The damping settings.
    pub fn config(&self) -> &Damping {
        &self.config
    }

    /// The penalty at `now` (never before the last update).
    pub fn penalty(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at);
        self.penalty * (-dt.as_secs_f64() / self.config.half_life.as_secs_f64()).exp2()
    }

    /// Whether the backend is held at weight 0.
    pub fn is_suppressed(&self) -> bool {
        self.suppressed
    }

    /// A flap at `now`: the penalty grows by [`FLAP_PENALTY`] (up to the
    /// cap), and the backend is suppressed if it goes above `suppress`.
    pub fn flap(&mut self, now: Instant) -> Option<Change> {
        self.penalty = clamp(self.penalty(now) + FLAP_PENALTY, self.config.max_penalty());
        self.at = now.max(self.at);
        if !self.suppressed && self.penalty > self.config.suppress {
            self.suppressed = true;
            return Some(Change::Suppressed);
        }
        None
    }

    /// Releases the backend if its penalty has decayed below `reuse` by
    /// `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Change> {
        if self.suppressed && self.penalty(now) < self.config.reuse {
            self.suppressed = false;
            return Some(Change::Released);
        }
        None
    }

    /// When a suppressed backend will be released if it does not flap
    /// again; `None` when it is not suppressed.
    pub fn release_at(&self) -> Option<Instant> {
        if !self.suppressed {
            return None;
        }
        // penalty · 2^(-t/h) = reuse  ⇔  t = h · log2(penalty / reuse); a
        // hair later so that the poll then sees it below reuse.
        let halvings = (self.penalty / self.config.reuse).log2().max(0.0);
        let wait = self.config.half_life.as_secs_f64() * halvings;
        let wait = Duration::try_from_secs_f64(wait).unwrap_or(self.config.max_suppress);
        Some(self.at + wait.min(self.config.max_suppress) + Duration::from_millis(1))
    }

    /// New settings (a reload): the penalty so far is kept, capped at the
    /// new maximum; suppression is decided again against the new
    /// thresholds at `now`.
    pub fn reconfigure(&mut self, config: Damping, now: Instant) -> Option<Change> {
        let penalty = self.penalty(now);
        let was = self.suppressed;
        *self = Damper::with_penalty(config, penalty, now);
        // A suppressed backend stays so until below the new reuse.
        if was && !self.suppressed && penalty >= config.reuse {
            self.suppressed = true;
        }
        match (was, self.suppressed) {
            (false, true) => Some(Change::Suppressed),
            (true, false) => Some(Change::Released),
            _ => None,
        }
    }
}

fn clamp(penalty: f64, max: f64) -> f64 {
    if penalty.is_finite() {
        penalty.clamp(0.0, max)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Damping {
        Damping {
            half_life: Duration::from_secs(60),
            suppress: 3.0,
            reuse: 1.0,
            max_suppress: Duration::from_secs(240),
        }
    }

    #[test]
    fn the_fourth_quick_flap_suppresses_and_the_penalty_decays_to_release() {
        let t0 = Instant::now();
        let mut d = Damper::new(config(), t0);
        assert_eq!(d.flap(t0), None);
        assert_eq!(d.flap(t0), None);
        assert_eq!(d.flap(t0), None);
        assert_eq!(d.flap(t0), Some(Change::Suppressed));
        assert!(d.is_suppressed());
        // 4 → 1 takes two half-lives.
        let at = d.release_at().unwrap();
        assert!(at > t0 + Duration::from_secs(120));
        assert!(at < t0 + Duration::from_secs(121));
        assert_eq!(d.poll(t0 + Duration::from_secs(119)), None);
        assert_eq!(d.poll(at), Some(Change::Released));
        assert!(!d.is_suppressed());
        assert_eq!(d.release_at(), None);
    }

    #[test]
    fn the_penalty_is_capped_by_max_suppress() {
        let t0 = Instant::now();
        let mut d = Damper::new(config(), t0);
        for _ in 0..1000 {
            d.flap(t0);
        }
        // reuse · 2^4 = 16.
        assert!((d.penalty(t0) - 16.0).abs() < 1e-9);
        let at = d.release_at().unwrap();
        assert!(at <= t0 + Duration::from_secs(241));
    }

    #[test]
    fn a_reload_keeps_the_penalty_and_rejudges_suppression() {
        let t0 = Instant::now();
        let mut d = Damper::new(config(), t0);
        d.flap(t0);
        d.flap(t0);
        let stricter = Damping {
            suppress: 1.5,
            reuse: 0.5,
            ..config()
        };
        assert_eq!(d.reconfigure(stricter, t0), Some(Change::Suppressed));
        assert_eq!(
            d.reconfigure(config(), t0),
            None,
            "2 is still above reuse 1"
        );
        let lenient = Damping {
            suppress: 5.0,
            reuse: 2.5,
            ..config()
        };
        assert_eq!(d.reconfigure(lenient, t0), Some(Change::Released));
        let seeded = Damper::with_penalty(config(), f64::NAN, t0);
        assert_eq!(seeded.penalty(t0), 0.0);
    }
}
