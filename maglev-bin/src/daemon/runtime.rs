//! The checker's own thread: a current-thread tokio runtime that runs every
//! probe task, so probing 10,000 backends costs no more CPU inside the
//! daemon than the checker alone (a multi-thread runtime spends more per
//! probe on cross-thread wake-ups; see docs/performance.md, "Daemon").
//!
//! `maglevd` starts one and hands its handle to the daemon as
//! [`Parts::checker_runtime`](crate::daemon::Parts::checker_runtime).

use tokio_util::sync::CancellationToken;

/// A thread running a current-thread runtime until stopped.
#[derive(Debug)]
pub struct CheckerThread {
    handle: tokio::runtime::Handle,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckerThread {
    /// Starts the thread (`maglev-health`) and its runtime.
    pub fn start() -> std::io::Result<CheckerThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("maglev-health".to_owned())
            .spawn(move || runtime.block_on(stopped.cancelled()))?;
        Ok(CheckerThread {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    /// The runtime's handle, for [`Parts::checker_runtime`](crate::daemon::Parts::checker_runtime).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for CheckerThread {
    /// Stops the runtime (dropping whatever still runs on it) and joins the
    /// thread.
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // A panic on that thread has been reported already.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_the_thread_until_it_is_dropped() {
        let t = CheckerThread::start().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        t.handle().spawn(async move {
            tx.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        });
        assert_eq!(rx.recv().unwrap().as_deref(), Some("maglev-health"));
        drop(t);
    }
}
