//! The `backend-transition` log lines of one start or reload: each
//! transition its own line up to [`PER_BACKEND_LINES`], one summary line
//! with the totals per change above (a cold start of 160,000 static
//! backends would otherwise write 160,000 INFO lines at once).
//!
//! Only the log lines are aggregated: every transition is still broadcast
//! to subscribers (the daemon's events and metrics follow it). A single
//! transition outside a start or reload (a probe, an operator) is logged
//! at once, as before.
//!
//! **Invariant:** a start or reload writes at most [`PER_BACKEND_LINES`]
//! `backend-transition` lines, or one summary.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::machine::Transition;

/// Above this many transitions in one start or reload, they are logged
/// as one summary.
pub const PER_BACKEND_LINES: usize = 20;

/// Collects the transitions of one start or reload and logs them when
/// [`finish`](TransitionLog::finish)ed.
#[derive(Debug, Default)]
pub(crate) struct TransitionLog {
    /// The first transitions (backend, transition), while few.
    held: Vec<(Arc<str>, Transition)>,
    /// Transitions by (from, to).
    totals: BTreeMap<(&'static str, &'static str), usize>,
    /// Transitions noted.
    count: usize,
    /// Distinct backends among them (a backend's transitions are noted
    /// together).
    backends: usize,
    last: Option<Arc<str>>,
}

impl TransitionLog {
    /// Notes `backend`'s transition `t`.
    pub(crate) fn note(&mut self, backend: &Arc<str>, t: &Transition) {
        self.count += 1;
        if self.last.as_ref() != Some(backend) {
            self.backends += 1;
            self.last = Some(backend.clone());
        }
        *self
            .totals
            .entry((t.from.as_str(), t.to.as_str()))
            .or_default() += 1;
        if self.count <= PER_BACKEND_LINES {
            self.held.push((backend.clone(), t.clone()));
        } else {
            self.held = Vec::new();
        }
    }

    /// Logs what was noted: each transition, or the summary.
    pub(crate) fn finish(self, what: &'static str) {
        if self.count <= PER_BACKEND_LINES {
            for (backend, t) in &self.held {
                log_one(backend, t);
            }
            return;
        }
        let by_change = self
            .totals
            .iter()
            .map(|((from, to), n)| format!("{from}->{to}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(
            transitions = self.count,
            backends = self.backends,
            by_change = %by_change,
            what,
            "backend-transitions (summary: more than {PER_BACKEND_LINES})"
        );
    }
}

/// The line of one transition.
pub(crate) fn log_one(backend: &str, t: &Transition) {
    tracing::info!(
        backend,
        from = %t.from,
        to = %t.to,
        code = %t.code,
        detail = %t.detail,
        "backend-transition"
    );
}
