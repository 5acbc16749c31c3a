//! Restart neutrality: the start-up warm-up policy (SPEC §5.6).
//!
//! A freshly started daemon knows nothing about its backends' health, and
//! `unknown` means weight 0: syncing at once would black-hole every VIP
//! until the first probes come back. The warm-up holds VPP as it was:
//!
//! 1. **hands-off** until `startup-min-delay`: nothing touches VPP;
//! 2. **release**, until `startup-max-delay`: a frontend is synced, and from
//!    then on reconciled normally, once every backend it uses has left
//!    `unknown`;
//! 3. **finished**: at `startup-max-delay` the watchdog releases everything
//!    with one full sync, even frontends whose backends are still unknown.
//!    The warm-up also finishes as soon as every frontend of the config is
//!    released ([`Warmup::finish_if_all_released`]): nothing is left to hold.
//!
//! With `startup-max-delay` 0 there is **no watchdog**: after
//! `startup-min-delay` a frontend is released only when all its backends
//! are known, however long that takes. Both 0 turn the warm-up off. A reload
//! does not restart the clock. The caller passes its own `Instant`s (tokio's
//! or std's), so the policy is driven by paused time in tests.

use std::collections::BTreeSet;
use std::ops::Add;
use std::time::Duration;

/// Where the warm-up is at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing may touch VPP.
    HandsOff,
    /// Frontends are released one by one once their backends are known.
    Releasing,
    /// Warm-up is over: everything is reconciled normally.
    Finished,
}

/// The warm-up tracker. `I` is the caller's instant type.
#[derive(Debug, Clone)]
pub struct Warmup<I> {
    release_at: I,
    /// `None`: no watchdog (and not yet finished by releasing everything).
    finish_at: Option<I>,
    released: BTreeSet<String>,
    finish_reported: bool,
}

impl<I> Warmup<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// Starts the clock at `start` with the configured delays. A zero
    /// `max_delay` means no watchdog, unless `min_delay` is zero too (no
    /// warm-up at all).
    pub fn new(start: I, min_delay: Duration, max_delay: Duration) -> Warmup<I> {
        let release_at = start + min_delay;
        let finish_at = match (min_delay.is_zero(), max_delay.is_zero()) {
            (true, true) => Some(start),
            (false, true) => None,
            _ => Some(start + max_delay.max(min_delay)),
        };
        Warmup {
            release_at,
            finish_at,
            released: BTreeSet::new(),
            finish_reported: false,
        }
    }

    /// The phase at `now`.
    pub fn phase(&self, now: I) -> Phase {
        if self.finish_at.is_some_and(|at| now >= at) {
            Phase::Finished
        } else if now >= self.release_at {
            Phase::Releasing
        } else {
            Phase::HandsOff
        }
    }

    /// Releases `frontend` if it may be synced at `now`, and says whether it
    /// is released. In the release phase a frontend is released for good
    /// once `all_backends_known` (none of its backends is `unknown`); before
    /// it nothing is, after it everything is.
    pub fn release_frontend(&mut self, now: I, frontend: &str, all_backends_known: bool) -> bool {
        match self.phase(now) {
            Phase::HandsOff => false,
            Phase::Finished => true,
            Phase::Releasing => {
                if self.released.contains(frontend) {
                    true
                } else if all_backends_known {
                    self.released.insert(frontend.to_owned());
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether a full sync (which may remove VIPs) may run at `now`.
    pub fn may_sync_all(&self, now: I) -> bool {
        self.phase(now) == Phase::Finished
    }

    /// Whether `frontend` has been released early.
    pub fn is_released(&self, frontend: &str) -> bool {
        self.released.contains(frontend)
    }

    /// Finishes the warm-up at `now` if every one of `frontends` (the
    /// config's) is released: nothing is left to hold back, so the full
    /// sync need not wait for the watchdog, and without a watchdog
    /// (`startup-max-delay: 0`) this is how the warm-up ends. Returns
    /// whether the warm-up is finished. Nothing happens in hands-off.
    pub fn finish_if_all_released<'a>(
        &mut self,
        now: I,
        frontends: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        match self.phase(now) {
            Phase::HandsOff => false,
            Phase::Finished => true,
            Phase::Releasing => {
                let all = frontends.into_iter().all(|f| self.released.contains(f));
                if all {
                    self.finish_at = Some(now);
                }
                all
            }
        }
    }

    /// `true` exactly once, at the first call at or after the end of the
    /// warm-up: the caller then runs one full sync covering every frontend.
    pub fn poll_finished(&mut self, now: I) -> bool {
        if self.finish_reported || self.phase(now) != Phase::Finished {
            return false;
        }
        self.finish_reported = true;
        true
    }

    /// When the phase next changes, for the caller's timer; `None` once the
    /// end has been reported.
    pub fn next_deadline(&self, now: I) -> Option<I> {
        match self.phase(now) {
            Phase::HandsOff => Some(self.release_at),
            Phase::Releasing => self.finish_at,
            Phase::Finished if !self.finish_reported => self.finish_at,
            Phase::Finished => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time as seconds since start, standing in for an `Instant`.
    type T = Duration;
    const START: T = Duration::ZERO;

    fn s(n: u64) -> T {
        Duration::from_secs(n)
    }

    #[test]
    fn three_phases() {
        let mut w = Warmup::new(START, s(5), s(30));
        assert_eq!(w.phase(s(0)), Phase::HandsOff);
        assert!(
            !w.release_frontend(s(4), "web", true),
            "hands-off even when known"
        );
        assert!(!w.may_sync_all(s(4)));
        assert_eq!(w.next_deadline(s(0)), Some(s(5)));
        assert_eq!(w.phase(s(5)), Phase::Releasing);
        assert!(
            !w.release_frontend(s(6), "web", false),
            "backends still unknown"
        );
        assert!(
            w.release_frontend(s(7), "web", true),
            "released once all known"
        );
        assert!(w.release_frontend(s(8), "web", false), "stays released");
        assert!(w.is_released("web"));
        assert!(!w.release_frontend(s(8), "api", false));
        assert!(!w.may_sync_all(s(29)), "no full sync before the watchdog");
        assert!(!w.poll_finished(s(29)));
        assert_eq!(w.next_deadline(s(29)), Some(s(30)));
        assert!(w.poll_finished(s(30)), "watchdog fires");
        assert!(!w.poll_finished(s(31)), "once");
        assert!(w.may_sync_all(s(30)));
        assert!(
            w.release_frontend(s(30), "api", false),
            "everything released"
        );
        assert_eq!(w.next_deadline(s(31)), None);
    }

    #[test]
    fn zero_delays_disable_warmup() {
        let mut w = Warmup::new(START, s(0), s(0));
        assert_eq!(w.phase(START), Phase::Finished);
        assert!(w.release_frontend(START, "web", false));
        assert!(w.may_sync_all(START));
        assert!(w.poll_finished(START));
    }

    #[test]
    fn zero_max_means_no_watchdog() {
        let mut w = Warmup::new(START, s(5), s(0));
        assert_eq!(w.phase(s(4)), Phase::HandsOff);
        assert!(!w.release_frontend(s(4), "web", true), "hands-off");
        assert_eq!(w.phase(s(5)), Phase::Releasing);
        assert_eq!(w.next_deadline(s(5)), None, "no watchdog to wait for");
        // An hour later, a frontend with an unknown backend is still held.
        let hour = s(3600);
        assert_eq!(w.phase(hour), Phase::Releasing);
        assert!(!w.poll_finished(hour));
        assert!(!w.may_sync_all(hour));
        assert!(!w.release_frontend(hour, "web", false));
        assert!(w.release_frontend(hour, "web", true));
        assert!(!w.finish_if_all_released(hour, ["web", "api"]));
        assert!(w.release_frontend(hour + s(1), "api", true));
        // Once every frontend is released, the warm-up ends.
        assert!(w.finish_if_all_released(hour + s(1), ["web", "api"]));
        assert_eq!(w.phase(hour + s(1)), Phase::Finished);
        assert!(w.poll_finished(hour + s(1)), "one full sync");
        assert!(w.may_sync_all(hour + s(1)));
        assert_eq!(w.next_deadline(hour + s(2)), None);
    }

    /// The config's `startup-max-delay: 0` is the warm-up's "no watchdog",
    /// and the validation message says so.
    #[test]
    fn config_zero_max_delay_is_no_watchdog() {
        let yaml = |max: &str| {
            format!(
                "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.1\n      \
                 ipv6-src-address: 2001:db8::1\n      startup-min-delay: 5s\n      \
                 startup-max-delay: {max}\n"
            )
        };
        let config = crate::config::Config::from_yaml(&yaml("0"), "t.yaml").unwrap();
        let lb = &config.vpp().unwrap().lb;
        let mut w = Warmup::new(START, lb.startup_min_delay, lb.startup_max_delay);
        assert_eq!(
            w.phase(s(86_400)),
            Phase::Releasing,
            "a day later, still held"
        );
        assert!(!w.release_frontend(s(86_400), "web", false));
        let err = crate::config::Config::from_yaml(&yaml("2s"), "t.yaml").unwrap_err();
        assert!(
            err.to_string().contains("or set it to 0 for no watchdog"),
            "{err}"
        );
    }

    #[test]
    fn everything_released_ends_the_warmup_before_the_watchdog() {
        let mut w = Warmup::new(START, s(5), s(30));
        assert!(
            !w.finish_if_all_released(s(4), []),
            "hands-off is never cut short"
        );
        assert!(w.release_frontend(s(6), "web", true));
        assert!(w.finish_if_all_released(s(6), ["web"]));
        assert!(w.poll_finished(s(6)));
        assert!(w.release_frontend(s(7), "api", false), "finished");
    }

    #[test]
    fn zero_min_releases_at_once() {
        let mut w = Warmup::new(START, s(0), s(30));
        assert_eq!(w.phase(START), Phase::Releasing);
        assert!(w.release_frontend(START, "web", true));
        assert!(!w.may_sync_all(START));
    }

    #[test]
    fn works_with_std_instants() {
        #[allow(
            clippy::disallowed_methods,
            reason = "a real instant, only to show the type fits"
        )]
        let now = std::time::Instant::now();
        let w = Warmup::new(now, s(5), s(30));
        assert_eq!(w.phase(now), Phase::HandsOff);
        assert_eq!(w.phase(now + s(30)), Phase::Finished);
    }
}
