//! The reconciler's schedule: which frontends need a sync, which may run
//! now, and when a failed one is tried again (SPEC §5.4).
//!
//! Triggers only mark work ([`Schedule::mark`], [`Schedule::mark_all`]);
//! the reconciler asks for the next [`Batch`] and reports how it ended.
//! The rules:
//!
//! - **Coalescing.** Any number of triggers for a frontend before its sync
//!   starts make one sync. Triggers that arrive while a batch is in flight
//!   make one more run after it, never a second one beside it.
//! - **Batching.** Every frontend that is ready goes into one batch, so
//!   different frontends are planned and applied together (the VPP client
//!   pipelines them), while one frontend is never synced twice at once.
//! - **Gating.** The caller says which frontends warm-up releases and
//!   whether a full sync (which may remove VIPs) may run; work that is held
//!   stays marked until it may.
//! - **Backoff.** A frontend whose sync failed stays marked and is retried
//!   after an exponential delay (from [`RETRY_MIN`], doubling, at most
//!   [`RETRY_MAX`]); a success resets it.
//!
//! Time is the caller's instant type, so the schedule is driven by paused
//! time in tests.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Add;
use std::time::Duration;

/// The first retry delay after a failure.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// Work handed to the reconciler: one plan and one apply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// A full sync: observe everything, reconcile every frontend, remove
    /// VIPs that are not configured.
    pub full: bool,
    /// The frontends to reconcile (every configured one for a full sync).
    pub frontends: BTreeSet<String>,
}

/// A retry in waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry<I> {
    at: I,
    delay: Duration,
}

/// The schedule. `I` is the caller's instant type.
#[derive(Debug, Clone)]
pub struct Schedule<I> {
    dirty: BTreeSet<String>,
    full: bool,
    in_flight: bool,
    retry: BTreeMap<String, Retry<I>>,
    full_retry: Option<Retry<I>>,
}

impl<I> Default for Schedule<I> {
    fn default() -> Self {
        Schedule {
            dirty: BTreeSet::new(),
            full: false,
            in_flight: false,
            retry: BTreeMap::new(),
            full_retry: None,
        }
    }
}

impl<I> Schedule<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// An empty schedule.
    pub fn new() -> Schedule<I> {
        Schedule::default()
    }

    /// `frontend` needs a sync.
    pub fn mark(&mut self, frontend: &str) {
        if !self.dirty.contains(frontend) {
            self.dirty.insert(frontend.to_owned());
        }
    }

    /// Everything needs a sync: a full sync when it may run, and meanwhile
    /// each of `frontends` as warm-up releases it.
    pub fn mark_all<'a>(&mut self, frontends: impl IntoIterator<Item = &'a str>) {
        self.full = true;
        for f in frontends {
            self.mark(f);
        }
    }

    /// Forgets a frontend that left the config.
    pub fn forget(&mut self, frontend: &str) {
        self.dirty.remove(frontend);
        self.retry.remove(frontend);
    }

    /// Forgets every retry delay: what failed may be tried at once (the
    /// dataplane came back).
    pub fn reset_backoff(&mut self) {
        self.retry.clear();
        self.full_retry = None;
    }

    /// Whether a batch is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether anything is marked (held or ready).
    pub fn is_idle(&self) -> bool {
        !self.full && self.dirty.is_empty()
    }

    /// The next batch at `now`, if any is ready and none is in flight.
    ///
    /// `full_allowed` says whether a full sync may run; `release` is asked
    /// for every marked frontend not waiting for a retry and says whether
    /// warm-up lets it be synced (it may record the release). `configured`
    /// lists every frontend, for a full batch.
    pub fn next<'a>(
        &mut self,
        now: I,
        full_allowed: bool,
        configured: impl IntoIterator<Item = &'a str>,
        mut release: impl FnMut(&str) -> bool,
    ) -> Option<Batch> {
        if self.in_flight {
            return None;
        }
        let batch = if self.full && full_allowed {
            // A pending full sync covers everything: nothing runs beside it,
            // not even while it waits for its retry.
            if self.full_retry.is_some_and(|r| r.at > now) {
                return None;
            }
            self.full = false;
            self.dirty.clear();
            self.retry.clear();
            Batch {
                full: true,
                frontends: configured.into_iter().map(str::to_owned).collect(),
            }
        } else {
            let ready: BTreeSet<String> = self
                .dirty
                .iter()
                .filter(|f| self.retry.get(*f).is_none_or(|r| r.at <= now))
                .filter(|f| release(f))
                .cloned()
                .collect();
            if ready.is_empty() {
                return None;
            }
            for f in &ready {
                self.dirty.remove(f);
            }
            Batch {
                full: false,
                frontends: ready,
            }
        };
        self.in_flight = true;
        Some(batch)
    }

    /// Reports how `batch` ended at `now`: `failed` lists the frontends
    /// whose ops VPP refused or that could not be synced at all; with
    /// `all_failed` the whole batch failed (VPP unreachable, observe
    /// failed), so every frontend of it is retried, and a full batch stays
    /// a full one.
    pub fn finished(&mut self, batch: &Batch, failed: &BTreeSet<String>, all_failed: bool, now: I) {
        self.in_flight = false;
        if batch.full {
            if all_failed {
                self.full = true;
                self.full_retry = Some(backoff(self.full_retry, now));
                return;
            }
            self.full_retry = None;
        }
        for f in &batch.frontends {
            if all_failed || failed.contains(f) {
                self.dirty.insert(f.clone());
                let before = self.retry.get(f).copied();
                self.retry.insert(f.clone(), backoff(before, now));
            } else {
                self.retry.remove(f);
            }
        }
    }

    /// The earliest retry time, for the caller's timer.
    pub fn next_retry(&self) -> Option<I> {
        let frontends = self
            .retry
            .iter()
            .filter(|(f, _)| self.dirty.contains(*f))
            .map(|(_, r)| r.at);
        let full = self.full_retry.filter(|_| self.full).map(|r| r.at);
        frontends.chain(full).min()
    }
}

fn backoff<I: Copy + Add<Duration, Output = I>>(before: Option<Retry<I>>, now: I) -> Retry<I> {
    let delay = match before {
        None => RETRY_MIN,
        Some(r) => (r.delay * 2).min(RETRY_MAX),
    };
    Retry {
        at: now + delay,
        delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since start, standing in for an `Instant`.
    type T = Duration;

    fn s(n: u64) -> T {
        Duration::from_secs(n)
    }

    fn names(batch: &Batch) -> Vec<&str> {
        batch.frontends.iter().map(String::as_str).collect()
    }

    const ALL: [&str; 3] = ["a", "b", "c"];

    #[test]
    fn triggers_coalesce_and_wait_for_the_batch_in_flight() {
        let mut q = Schedule::<T>::new();
        q.mark("a");
        q.mark("a");
        q.mark("b");
        let first = q.next(s(0), true, ALL, |_| true).unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        q.mark("a");
        q.mark("a");
        assert_eq!(
            q.next(s(0), true, ALL, |_| true),
            None,
            "one batch at a time"
        );
        q.finished(&first, &BTreeSet::new(), false, s(0));
        let second = q.next(s(0), true, ALL, |_| true).unwrap();
        assert_eq!(
            names(&second),
            ["a"],
            "one more run for the triggers in flight"
        );
        q.finished(&second, &BTreeSet::new(), false, s(0));
        assert_eq!(q.next(s(0), true, ALL, |_| true), None);
        assert!(q.is_idle());
    }

    #[test]
    fn held_frontends_stay_marked_until_released() {
        let mut q = Schedule::<T>::new();
        q.mark_all(ALL);
        // Hands-off: nothing released, no full sync.
        assert_eq!(q.next(s(0), false, ALL, |_| false), None);
        // Releasing: only "b" has every backend known.
        let b = q.next(s(5), false, ALL, |f| f == "b").unwrap();
        assert!(!b.full);
        assert_eq!(names(&b), ["b"]);
        q.finished(&b, &BTreeSet::new(), false, s(5));
        // The watchdog: a full sync covers everything still waiting.
        let full = q.next(s(30), true, ALL, |_| false).unwrap();
        assert!(full.full);
        assert_eq!(names(&full), ALL);
        q.finished(&full, &BTreeSet::new(), false, s(30));
        assert!(q.is_idle());
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let mut q = Schedule::<T>::new();
        q.mark("a");
        q.mark("b");
        let batch = q.next(s(0), true, ALL, |_| true).unwrap();
        let failed: BTreeSet<String> = ["a".to_owned()].into();
        q.finished(&batch, &failed, false, s(0));
        assert_eq!(q.next_retry(), Some(s(1)));
        assert_eq!(
            q.next(s(0), true, ALL, |_| true),
            None,
            "a waits for its retry"
        );
        let retry = q.next(s(1), true, ALL, |_| true).unwrap();
        assert_eq!(names(&retry), ["a"]);
        q.finished(&retry, &failed, false, s(1));
        assert_eq!(q.next_retry(), Some(s(3)), "the delay doubles");
        let retry = q.next(s(3), true, ALL, |_| true).unwrap();
        q.finished(&retry, &BTreeSet::new(), false, s(3));
        assert_eq!(q.next_retry(), None);
        q.mark("a");
        let again = q.next(s(3), true, ALL, |_| true).unwrap();
        assert_eq!(names(&again), ["a"], "a success resets the backoff");
    }

    #[test]
    fn a_failed_full_sync_stays_full_and_backs_off_up_to_the_cap() {
        let mut q = Schedule::<T>::new();
        q.mark_all(ALL);
        let mut now = s(0);
        let mut delays = Vec::new();
        for _ in 0..8 {
            let batch = q.next(now, true, ALL, |_| true).unwrap();
            assert!(batch.full);
            q.finished(&batch, &BTreeSet::new(), true, now);
            let at = q.next_retry().unwrap();
            delays.push((at - now).as_secs());
            now = at;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn reset_backoff_lets_failed_work_run_at_once() {
        let mut q = Schedule::<T>::new();
        q.mark_all(ALL);
        let batch = q.next(s(0), true, ALL, |_| true).unwrap();
        q.finished(&batch, &BTreeSet::new(), true, s(0));
        assert_eq!(q.next(s(0), true, ALL, |_| true), None);
        q.reset_backoff();
        assert!(q.next(s(0), true, ALL, |_| true).unwrap().full);
    }

    #[test]
    fn forgotten_frontends_are_not_synced() {
        let mut q = Schedule::<T>::new();
        q.mark("a");
        q.forget("a");
        assert_eq!(q.next(s(0), true, ALL, |_| true), None);
        assert!(q.is_idle());
    }
}
