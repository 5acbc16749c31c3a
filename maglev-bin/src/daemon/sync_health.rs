//! Sync health: whether the reconciler keeps up, for `/metrics`,
//! `show vpp info` and the dashboard.
//!
//! The reconciler records here, under its own lock, what an operator needs
//! to tell a stuck reconciler from a quiet one: which frontends wait for a
//! sync and since when, how many reads of VPP failed, how syncs failed by
//! kind, and when a full sync last succeeded. [`Handle::sync_health`]
//! turns that into a [`SyncHealth`] at `now`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::daemon::handle::Handle;

/// How a sync failed, the `kind` label of `maglev_sync_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// VPP refused an op of a frontend (one per frontend and batch).
    Refused,
    /// Reading VPP's LB state before planning failed (one per batch).
    Read,
    /// VPP was away when the batch started (one per batch).
    Unavailable,
}

impl FailureKind {
    /// Every kind, in label order.
    pub const ALL: [FailureKind; 3] = [
        FailureKind::Refused,
        FailureKind::Read,
        FailureKind::Unavailable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Read => "read",
            FailureKind::Unavailable => "unavailable",
        }
    }
}

/// What the reconciler records (kept in its control state).
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Frontends marked and not yet synced successfully, with when they
    /// were first seen marked.
    since: BTreeMap<String, Instant>,
    read_errors: u64,
    failures: [u64; 3],
    /// Unix nanoseconds of the last full sync with no failure.
    last_full_success: Option<i64>,
}

impl Health {
    /// Notes the frontends marked now: a new one is pending from `now`;
    /// one no longer marked is no longer pending.
    pub(crate) fn note_pending<'a>(
        &mut self,
        marked: impl IntoIterator<Item = &'a str>,
        now: Instant,
    ) {
        let mut since = BTreeMap::new();
        for f in marked {
            let at = self.since.get(f).copied().unwrap_or(now);
            since.insert(f.to_owned(), at);
        }
        self.since = since;
    }

    /// `frontend` was synced: it is pending again only from its next mark.
    pub(crate) fn synced(&mut self, frontend: &str) {
        self.since.remove(frontend);
    }

    /// A read of VPP's LB state failed.
    pub(crate) fn read_failed(&mut self) {
        self.read_errors += 1;
        self.failed(FailureKind::Read);
    }

    /// A sync failed.
    pub(crate) fn failed(&mut self, kind: FailureKind) {
        let i = FailureKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default();
        self.failures[i] += 1;
    }

    /// A full sync succeeded at `unix_nanos`.
    pub(crate) fn full_succeeded(&mut self, unix_nanos: i64) {
        self.last_full_success = Some(unix_nanos);
    }

    /// The view at `now`; `pending` lists the marked frontends with when
    /// their retry is due, if they wait for one.
    pub(crate) fn view<'a>(
        &self,
        now: Instant,
        pending: impl IntoIterator<Item = (&'a str, Option<Instant>)>,
        full_pending: bool,
    ) -> SyncHealth {
        let pending: Vec<PendingSync> = pending
            .into_iter()
            .map(|(f, retry)| PendingSync {
                frontend: f.to_owned(),
                waited: self
                    .since
                    .get(f)
                    .map_or(Duration::ZERO, |at| now.saturating_duration_since(*at)),
                retry_in: retry.map(|at| at.saturating_duration_since(now)),
            })
            .collect();
        SyncHealth {
            oldest_pending: pending.iter().map(|p| p.waited).max(),
            pending,
            full_pending,
            read_errors: self.read_errors,
            failures: FailureKind::ALL
                .iter()
                .zip(self.failures)
                .map(|(k, n)| (*k, n))
                .collect(),
            last_full_success_unix_nanos: self.last_full_success,
        }
    }
}

/// A frontend marked for a sync and not yet synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSync {
    /// Its name.
    pub frontend: String,
    /// How long it has waited (since its first mark not yet synced).
    pub waited: Duration,
    /// When its retry after a failure is due, if it waits for one.
    pub retry_in: Option<Duration>,
}

/// Whether the reconciler keeps up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncHealth {
    /// Frontends marked for a sync and not yet synced (waiting, held by
    /// warm-up or retrying after a failure), by name.
    pub pending: Vec<PendingSync>,
    /// How long the longest-waiting of them has waited.
    pub oldest_pending: Option<Duration>,
    /// Whether a full sync is marked and has not run yet.
    pub full_pending: bool,
    /// Reads of VPP's LB state that failed since start.
    pub read_errors: u64,
    /// Failed syncs since start, by kind.
    pub failures: Vec<(FailureKind, u64)>,
    /// When a full sync last succeeded (Unix nanoseconds); `None` before
    /// the first.
    pub last_full_success_unix_nanos: Option<i64>,
}

impl Handle {
    /// The reconciler's sync health now.
    pub fn sync_health(&self) -> SyncHealth {
        self.shared.control.sync_health(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pending_is_counted_from_the_first_mark_until_synced() {
        let mut h = Health::default();
        let t0 = Instant::now();
        h.note_pending(["a"], t0);
        let t1 = t0 + Duration::from_secs(5);
        h.note_pending(["a", "b"], t1);
        let retry = Some(t1 + Duration::from_secs(2));
        let v = h.view(t1, [("a", retry), ("b", None)], false);
        let names: Vec<&str> = v.pending.iter().map(|p| p.frontend.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(v.pending[0].retry_in, Some(Duration::from_secs(2)));
        assert_eq!(v.oldest_pending, Some(Duration::from_secs(5)));
        h.synced("a");
        h.synced("b");
        let t2 = t1 + Duration::from_secs(1);
        h.note_pending(["a"], t2);
        assert_eq!(
            h.view(t2 + Duration::from_secs(1), [("a", None)], false)
                .oldest_pending,
            Some(Duration::from_secs(1)),
            "a pends again from its new mark"
        );
        h.read_failed();
        h.failed(FailureKind::Refused);
        let v = h.view(t1, [], true);
        assert_eq!(v.read_errors, 1);
        assert_eq!(
            v.failures,
            [
                (FailureKind::Refused, 1),
                (FailureKind::Read, 1),
                (FailureKind::Unavailable, 0)
            ]
        );
    }
}
