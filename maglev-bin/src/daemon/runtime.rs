//! Threads of their own for the parts of the daemon that must not take the
//! reconciler's workers: a current-thread tokio runtime each.
//!
//! `maglevd` starts two and hands their handles to the daemon:
//!
//! - the health checker's ([`Parts::checker_runtime`]): probing 10,000
//!   backends on one current-thread runtime costs less CPU than on the
//!   multi-thread one, which spends more per probe on cross-thread wake-ups
//!   (docs/performance.md, "Daemon");
//! - the servers' ([`Parts::serve_runtime`]): gRPC, `WatchEvents` streams
//!   and `/metrics`, so a hundred event streams or a 20 MB scrape compete
//!   with the reconciler only through the kernel's scheduler, never by
//!   queueing in front of it on a tokio worker.
//!
//! [`Parts::checker_runtime`]: crate::daemon::Parts::checker_runtime
//! [`Parts::serve_runtime`]: crate::daemon::Parts::serve_runtime

use tokio_util::sync::CancellationToken;

/// A named thread running a current-thread runtime until dropped.
#[derive(Debug)]
pub struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    /// Starts the thread, named `name`, and its runtime.
    pub fn start(name: &str) -> std::io::Result<RuntimeThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(stopped.cancelled());
                // Blocking work still running is not waited for long.
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            })?;
        Ok(RuntimeThread {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    /// The runtime's handle, for [`Parts`](crate::daemon::Parts).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for RuntimeThread {
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
        let t = RuntimeThread::start("maglev-health").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        t.handle().spawn(async move {
            tx.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        });
        assert_eq!(rx.recv().unwrap().as_deref(), Some("maglev-health"));
        drop(t);
    }
}
