//! The daemon's tasks by name, and a shutdown with a deadline.
//!
//! [`Daemon::shutdown`](crate::daemon::Daemon::shutdown) cancels every
//! task and waits for them at most [`SHUTDOWN_DEADLINE`]: the reconciler
//! stops between ops, the servers get their grace, the VPP connections
//! say goodbye and the state file is written once more. A task still
//! running at the deadline is abandoned (aborted) with a WARN naming it,
//! so the process always exits well inside systemd's default
//! `TimeoutStopSec` (90 s) instead of being killed with its goodbye and
//! its state file lost.

use std::future::Future;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_util::task::TaskTracker;

/// How long a shutdown waits for the daemon's tasks (and then for the
/// health checker's) before abandoning what still runs. Above the
/// servers' [`SHUTDOWN_GRACE`](crate::daemon::settings::SHUTDOWN_GRACE)
/// plus the VPP goodbyes, well below systemd's 90 s.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// The daemon's tasks, each with a name for the shutdown's WARN.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    named: Vec<(&'static str, AbortHandle)>,
}

impl Tasks {
    /// Spawns `task` on the current runtime.
    pub(crate) fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.tracker.spawn(task);
        self.named.push((name, handle.abort_handle()));
    }

    /// Spawns `task` on `runtime`.
    pub(crate) fn spawn_on<F>(
        &mut self,
        name: &'static str,
        task: F,
        runtime: &tokio::runtime::Handle,
    ) where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.tracker.spawn_on(task, runtime);
        self.named.push((name, handle.abort_handle()));
    }

    /// Waits for every task until `deadline` passes; then aborts those
    /// still running, with a WARN naming them. True if all ended.
    pub(crate) async fn stop(&self, deadline: tokio::time::Instant) -> bool {
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        let left: Vec<&str> = self
            .named
            .iter()
            .filter(|(_, h)| !h.is_finished())
            .map(|(name, _)| *name)
            .collect();
        tracing::warn!(
            tasks = ?left,
            deadline_s = SHUTDOWN_DEADLINE.as_secs(),
            "shutdown deadline passed: abandoning the tasks still running"
        );
        for (_, h) in &self.named {
            h.abort();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_ends_is_abandoned_at_the_deadline() {
        let mut tasks = Tasks::default();
        tasks.spawn("quick", async {});
        tasks.spawn("stuck", std::future::pending::<()>());
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        assert!(!tasks.stop(deadline).await);
        // Aborted: the tracker empties.
        tasks.tracker.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_that_end_are_waited_for() {
        let mut tasks = Tasks::default();
        tasks.spawn("a", tokio::time::sleep(Duration::from_secs(1)));
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        assert!(tasks.stop(deadline).await);
    }
}
