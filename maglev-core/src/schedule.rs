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
//!   [`RETRY_MAX`]), so a VPP that keeps refusing the same op is not
//!   hammered. A success resets the frontend's delay, and the first success
//!   of any batch resets every delay that came from a whole batch failing
//!   (VPP unreachable, its state unreadable), the full sync's included.
//! - **A drain never waits.** A frontend marked again while it waits for a
//!   retry is offered to the caller's `drain` test: a change that lowers a
//!   weight, removes an AS or flushes skips the delay and is synced at
//!   once ([`Schedule::expedite`] does the same for an operator's explicit
//!   ask). A drain VPP refused is retried after [`RETRY_MIN`], never
//!   longer, so it reaches VPP within a second of VPP accepting again. A
//!   pending full sync waiting for its retry does not hold the
//!   per-frontend syncs either.
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

/// Why a retry waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// VPP refused an op of this frontend (or skipped it after an earlier
    /// refusal): only this frontend's own success resets the delay.
    Refused,
    /// The whole batch failed (VPP away, the read failed): any success
    /// shows the dataplane answers again and resets the delay.
    Batch,
}

/// A retry in waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry<I> {
    at: I,
    delay: Duration,
    cause: Cause,
    /// What failed would drain: retried after [`RETRY_MIN`] until it is
    /// done or known to be no drain.
    drain: bool,
}

/// The schedule. `I` is the caller's instant type.
#[derive(Debug, Clone)]
pub struct Schedule<I> {
    dirty: BTreeSet<String>,
    full: bool,
    in_flight: bool,
    retry: BTreeMap<String, Retry<I>>,
    full_retry: Option<Retry<I>>,
    /// Marked again while waiting for a retry: the caller's drain test has
    /// not seen the new mark yet.
    remarked: BTreeSet<String>,
    /// Synced at the next chance, whatever its retry delay.
    expedited: BTreeSet<String>,
}

impl<I> Default for Schedule<I> {
    fn default() -> Self {
        Schedule {
            dirty: BTreeSet::new(),
            full: false,
            in_flight: false,
            retry: BTreeMap::new(),
            full_retry: None,
            remarked: BTreeSet::new(),
            expedited: BTreeSet::new(),
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
        if self.retry.contains_key(frontend) && !self.remarked.contains(frontend) {
            self.remarked.insert(frontend.to_owned());
        }
    }

    /// `frontend` needs a sync at the next chance, whatever its retry
    /// delay (an operator asked; a drain). A failure of that sync still
    /// doubles the delay for the retries after it.
    pub fn expedite(&mut self, frontend: &str) {
        self.mark(frontend);
        self.remarked.remove(frontend);
        if !self.expedited.contains(frontend) {
            self.expedited.insert(frontend.to_owned());
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

    /// Everything needs a sync at the next chance (an operator asked): a
    /// full sync that waits for its retry runs at once.
    pub fn expedite_all(&mut self) {
        self.full = true;
        self.full_retry = None;
    }

    /// Forgets a frontend that left the config.
    pub fn forget(&mut self, frontend: &str) {
        self.dirty.remove(frontend);
        self.retry.remove(frontend);
        self.remarked.remove(frontend);
        self.expedited.remove(frontend);
    }

    /// Forgets every retry delay: what failed may be tried at once (the
    /// dataplane came back).
    pub fn reset_backoff(&mut self) {
        self.retry.clear();
        self.full_retry = None;
        self.remarked.clear();
    }

    /// The marked frontends and, for those waiting for a retry, when it is
    /// due (for the sync-health figures).
    pub fn pending(&self) -> impl Iterator<Item = (&str, Option<I>)> + '_ {
        self.dirty.iter().map(|f| {
            let at = self
                .retry
                .get(f)
                .filter(|_| !self.expedited.contains(f))
                .map(|r| r.at);
            (f.as_str(), at)
        })
    }

    /// Whether a full sync is marked (held, waiting or ready).
    pub fn full_pending(&self) -> bool {
        self.full
    }

    /// When `frontend`'s retry is due, if it waits for one.
    pub fn retry_at(&self, frontend: &str) -> Option<I> {
        self.retry
            .get(frontend)
            .filter(|_| self.dirty.contains(frontend) && !self.expedited.contains(frontend))
            .map(|r| r.at)
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
    /// warm-up lets it be synced (it may record the release). `drain` is
    /// asked once for each frontend marked again while it waits for a
    /// retry, and says whether what changed lowers a weight, removes an AS
    /// or flushes: such a frontend skips its delay. `configured` lists
    /// every frontend, for a full batch.
    pub fn next<'a>(
        &mut self,
        now: I,
        full_allowed: bool,
        configured: impl IntoIterator<Item = &'a str>,
        mut release: impl FnMut(&str) -> bool,
        mut drain: impl FnMut(&str) -> bool,
    ) -> Option<Batch> {
        if self.in_flight {
            return None;
        }
        for f in std::mem::take(&mut self.remarked) {
            let waits = self.retry.get(&f).is_some_and(|r| r.at > now);
            if waits && self.dirty.contains(&f) && drain(&f) {
                self.expedited.insert(f);
            }
        }
        let full_ready = self.full && self.full_retry.is_none_or(|r| r.at <= now);
        let batch = if full_ready && full_allowed {
            // A full sync covers everything: nothing runs beside it.
            self.full = false;
            self.dirty.clear();
            self.retry.clear();
            self.expedited.clear();
            Batch {
                full: true,
                frontends: configured.into_iter().map(str::to_owned).collect(),
            }
        } else {
            // A full sync that is held or waits for its retry holds nothing
            // else: marked frontends run as their own delays allow.
            let ready: BTreeSet<String> = self
                .dirty
                .iter()
                .filter(|f| {
                    self.expedited.contains(*f) || self.retry.get(*f).is_none_or(|r| r.at <= now)
                })
                .filter(|f| release(f))
                .cloned()
                .collect();
            if ready.is_empty() {
                return None;
            }
            for f in &ready {
                self.dirty.remove(f);
                self.expedited.remove(f);
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
    /// whose ops VPP refused or that could not be synced at all, and
    /// `drains` those of them whose refused ops would have lowered a
    /// weight, removed an AS or flushed (their retry does not back off);
    /// with `all_failed` the whole batch failed (VPP unreachable, observe
    /// failed), so every frontend of it is retried, and a full batch stays
    /// a full one.
    pub fn finished(
        &mut self,
        batch: &Batch,
        failed: &BTreeSet<String>,
        drains: &BTreeSet<String>,
        all_failed: bool,
        now: I,
    ) {
        self.in_flight = false;
        if all_failed && batch.full {
            self.full = true;
            self.full_retry = Some(backoff(self.full_retry, now, Cause::Batch, None));
            return;
        }
        if !all_failed {
            // VPP answered: what waited only because VPP did not may run.
            self.full_retry = None;
            self.retry.retain(|_, r| r.cause == Cause::Refused);
        }
        let cause = if all_failed {
            Cause::Batch
        } else {
            Cause::Refused
        };
        for f in &batch.frontends {
            if all_failed || failed.contains(f) {
                self.dirty.insert(f.clone());
                let before = self.retry.get(f).copied();
                // A whole batch failing says nothing of what the frontend
                // wanted: it keeps what its last refusal was.
                let drain = (!all_failed).then(|| drains.contains(f));
                self.retry
                    .insert(f.clone(), backoff(before, now, cause, drain));
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
            .filter(|(f, _)| self.dirty.contains(*f) && !self.expedited.contains(*f))
            .map(|(_, r)| r.at);
        let full = self.full_retry.filter(|_| self.full).map(|r| r.at);
        frontends.chain(full).min()
    }
}

/// The next retry after a failure at `now`; `drain` says whether what
/// failed would drain (`None`: unknown, as before).
fn backoff<I: Copy + Add<Duration, Output = I>>(
    before: Option<Retry<I>>,
    now: I,
    cause: Cause,
    drain: Option<bool>,
) -> Retry<I> {
    let drain = drain.unwrap_or(before.is_some_and(|r| r.drain));
    let delay = match before {
        _ if drain => RETRY_MIN,
        None => RETRY_MIN,
        Some(r) => (r.delay * 2).min(RETRY_MAX),
    };
    Retry {
        at: now + delay,
        delay,
        cause,
        drain,
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
        let first = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        q.mark("a");
        q.mark("a");
        assert_eq!(
            q.next(s(0), true, ALL, |_| true, |_| false),
            None,
            "one batch at a time"
        );
        q.finished(&first, &BTreeSet::new(), &BTreeSet::new(), false, s(0));
        let second = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        assert_eq!(
            names(&second),
            ["a"],
            "one more run for the triggers in flight"
        );
        q.finished(&second, &BTreeSet::new(), &BTreeSet::new(), false, s(0));
        assert_eq!(q.next(s(0), true, ALL, |_| true, |_| false), None);
        assert!(q.is_idle());
    }

    #[test]
    fn held_frontends_stay_marked_until_released() {
        let mut q = Schedule::<T>::new();
        q.mark_all(ALL);
        // Hands-off: nothing released, no full sync.
        assert_eq!(q.next(s(0), false, ALL, |_| false, |_| false), None);
        // Releasing: only "b" has every backend known.
        let b = q.next(s(5), false, ALL, |f| f == "b", |_| false).unwrap();
        assert!(!b.full);
        assert_eq!(names(&b), ["b"]);
        q.finished(&b, &BTreeSet::new(), &BTreeSet::new(), false, s(5));
        // The watchdog: a full sync covers everything still waiting.
        let full = q.next(s(30), true, ALL, |_| false, |_| false).unwrap();
        assert!(full.full);
        assert_eq!(names(&full), ALL);
        q.finished(&full, &BTreeSet::new(), &BTreeSet::new(), false, s(30));
        assert!(q.is_idle());
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let mut q = Schedule::<T>::new();
        q.mark("a");
        q.mark("b");
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        let failed: BTreeSet<String> = ["a".to_owned()].into();
        q.finished(&batch, &failed, &BTreeSet::new(), false, s(0));
        assert_eq!(q.next_retry(), Some(s(1)));
        assert_eq!(
            q.next(s(0), true, ALL, |_| true, |_| false),
            None,
            "a waits for its retry"
        );
        let retry = q.next(s(1), true, ALL, |_| true, |_| false).unwrap();
        assert_eq!(names(&retry), ["a"]);
        q.finished(&retry, &failed, &BTreeSet::new(), false, s(1));
        assert_eq!(q.next_retry(), Some(s(3)), "the delay doubles");
        let retry = q.next(s(3), true, ALL, |_| true, |_| false).unwrap();
        q.finished(&retry, &BTreeSet::new(), &BTreeSet::new(), false, s(3));
        assert_eq!(q.next_retry(), None);
        q.mark("a");
        let again = q.next(s(3), true, ALL, |_| true, |_| false).unwrap();
        assert_eq!(names(&again), ["a"], "a success resets the backoff");
    }

    #[test]
    fn a_failed_full_sync_stays_full_and_backs_off_up_to_the_cap() {
        let mut q = Schedule::<T>::new();
        q.mark_all(ALL);
        let mut now = s(0);
        let mut delays = Vec::new();
        for _ in 0..8 {
            let batch = q.next(now, true, ALL, |_| true, |_| false).unwrap();
            assert!(batch.full);
            q.finished(&batch, &BTreeSet::new(), &BTreeSet::new(), true, now);
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
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        q.finished(&batch, &BTreeSet::new(), &BTreeSet::new(), true, s(0));
        assert_eq!(q.next(s(0), true, ALL, |_| true, |_| false), None);
        q.reset_backoff();
        assert!(q.next(s(0), true, ALL, |_| true, |_| false).unwrap().full);
    }

    #[test]
    fn forgotten_frontends_are_not_synced() {
        let mut q = Schedule::<T>::new();
        q.mark("a");
        q.forget("a");
        assert_eq!(q.next(s(0), true, ALL, |_| true, |_| false), None);
        assert!(q.is_idle());
    }

    /// Fails `frontend`'s sync `n` times in a row from `now`, each retry
    /// as soon as it is due; returns when the last retry is due.
    fn fail_repeatedly(q: &mut Schedule<T>, frontend: &str, n: usize, mut now: T) -> T {
        let failed: BTreeSet<String> = [frontend.to_owned()].into();
        q.mark(frontend);
        for _ in 0..n {
            let batch = q.next(now, true, ALL, |_| true, |_| false).unwrap();
            q.finished(&batch, &failed, &BTreeSet::new(), false, now);
            now = q.retry_at(frontend).unwrap();
        }
        now
    }

    #[test]
    fn a_drain_marked_while_waiting_for_a_retry_runs_at_once() {
        let mut q = Schedule::<T>::new();
        let due = fail_repeatedly(&mut q, "a", 5, s(0));
        let now = due - s(10);
        // Marked again by a change that raises nothing and drains nothing:
        // the refused op keeps its delay.
        q.mark("a");
        let mut asked = Vec::new();
        let none = q.next(
            now,
            true,
            ALL,
            |_| true,
            |f| {
                asked.push(f.to_owned());
                false
            },
        );
        assert_eq!(none, None, "not a drain: it waits");
        assert_eq!(asked, ["a"], "the drain test sees each new mark once");
        assert_eq!(
            q.next(now, true, ALL, |_| true, |_| panic!("asked twice")),
            None
        );
        // A backend of it dies: a drain skips the delay.
        q.mark("a");
        let batch = q.next(now, true, ALL, |_| true, |_| true).unwrap();
        assert_eq!(names(&batch), ["a"]);
        // The drain was refused too: its retry does not back off.
        let failed: BTreeSet<String> = ["a".to_owned()].into();
        q.finished(&batch, &failed, &failed, false, now);
        assert_eq!(q.retry_at("a"), Some(now + RETRY_MIN));
        let batch = q
            .next(now + RETRY_MIN, true, ALL, |_| true, |_| false)
            .unwrap();
        q.finished(&batch, &failed, &failed, false, now + RETRY_MIN);
        assert_eq!(q.retry_at("a"), Some(now + RETRY_MIN * 2));
        // VPP refuses the whole batch: still a drain.
        let batch = q
            .next(now + RETRY_MIN * 2, true, ALL, |_| true, |_| false)
            .unwrap();
        q.finished(
            &batch,
            &BTreeSet::new(),
            &BTreeSet::new(),
            true,
            now + RETRY_MIN * 2,
        );
        assert_eq!(q.retry_at("a"), Some(now + RETRY_MIN * 3));
        // The backend came back: what fails now is no drain, and backs off
        // (from the start: VPP answering reset the batch failure's delay).
        let batch = q
            .next(now + RETRY_MIN * 3, true, ALL, |_| true, |_| false)
            .unwrap();
        q.finished(
            &batch,
            &failed,
            &BTreeSet::new(),
            false,
            now + RETRY_MIN * 3,
        );
        assert_eq!(q.retry_at("a"), Some(now + RETRY_MIN * 4));
        let batch = q
            .next(now + RETRY_MIN * 4, true, ALL, |_| true, |_| false)
            .unwrap();
        q.finished(
            &batch,
            &failed,
            &BTreeSet::new(),
            false,
            now + RETRY_MIN * 4,
        );
        assert_eq!(q.retry_at("a"), Some(now + RETRY_MIN * 6));
    }

    #[test]
    fn an_expedited_frontend_skips_its_delay_once() {
        let mut q = Schedule::<T>::new();
        let due = fail_repeatedly(&mut q, "a", 3, s(0));
        let now = due - s(1);
        q.expedite("a");
        assert_eq!(q.retry_at("a"), None, "ready now");
        let batch = q.next(now, true, ALL, |_| true, |_| false).unwrap();
        let failed: BTreeSet<String> = ["a".to_owned()].into();
        q.finished(&batch, &failed, &BTreeSet::new(), false, now);
        assert_eq!(q.next(now, true, ALL, |_| true, |_| false), None);
        assert_eq!(q.retry_at("a"), Some(now + s(8)));
    }

    #[test]
    fn a_full_sync_waiting_for_its_retry_holds_no_frontend() {
        let mut q = Schedule::<T>::new();
        q.mark_all(ALL);
        let full = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        q.finished(&full, &BTreeSet::new(), &BTreeSet::new(), true, s(0));
        assert!(q.full_pending());
        q.mark("b");
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        assert!(!batch.full);
        assert_eq!(names(&batch), ["b"]);
        // The first success resets the full sync's delay: it runs next.
        q.finished(&batch, &BTreeSet::new(), &BTreeSet::new(), false, s(0));
        assert!(q.next(s(0), true, ALL, |_| true, |_| false).unwrap().full);
    }

    #[test]
    fn the_first_success_resets_batch_failures_but_not_refusals() {
        let mut q = Schedule::<T>::new();
        // "a" was refused; "b" failed with its whole batch (read failed).
        let failed: BTreeSet<String> = ["a".to_owned()].into();
        q.mark("a");
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        q.finished(&batch, &failed, &BTreeSet::new(), false, s(0));
        q.mark("b");
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        q.finished(&batch, &BTreeSet::new(), &BTreeSet::new(), true, s(0));
        assert_eq!(q.retry_at("b"), Some(s(1)));
        // "c" succeeds: VPP answers again.
        q.mark("c");
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        q.finished(&batch, &BTreeSet::new(), &BTreeSet::new(), false, s(0));
        assert_eq!(q.retry_at("b"), None, "b may run at once");
        assert_eq!(q.retry_at("a"), Some(s(1)), "a's refusal keeps its delay");
        let batch = q.next(s(0), true, ALL, |_| true, |_| false).unwrap();
        assert_eq!(names(&batch), ["b"]);
    }

    #[test]
    fn pending_lists_marked_frontends_with_their_retry() {
        let mut q = Schedule::<T>::new();
        let due = fail_repeatedly(&mut q, "a", 1, s(0));
        q.mark("b");
        let pending: Vec<(&str, Option<T>)> = q.pending().collect();
        assert_eq!(pending, [("a", Some(due)), ("b", None)]);
    }
}
