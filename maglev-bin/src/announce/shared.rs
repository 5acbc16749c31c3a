//! What the announcer shares with the daemon's [`Handle`](crate::daemon::Handle):
//! the snapshots it publishes for readers, the node's drain as operators
//! set it, and the wake-up every input change rings.
//!
//! The drain here is the operators' intent (kept in the state file); the
//! announcer carries it out and reports each request it has carried out
//! by number ([`AnnounceShared::carried_out`]), so `set_drain` can answer
//! once its withdraws (or announces) are done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};

use super::announcer::Opened;
use super::view::{Announcements, Drain, NodeView};

/// The announcer's side of the daemon's shared state.
pub(crate) struct AnnounceShared {
    /// What readers see of every prefix (published after each pass).
    announcements: ArcSwap<Announcements>,
    /// What readers see of the node.
    node: ArcSwap<NodeView>,
    /// The node's drain as operators set it (`None`: not drained).
    drain: Mutex<Option<Drain>>,
    /// Bumped by every drain request.
    requested: AtomicU64,
    /// The last drain request the announcer has carried out.
    carried_out: watch::Sender<u64>,
    /// Rung by every input change (frontend transitions, VPP, applied
    /// syncs, drain, reloads).
    wake: Notify,
    /// The table opened at start, until the announcer takes it.
    table: Mutex<Option<Opened>>,
    /// Whether the daemon started with an announce section (and so runs
    /// the announcer).
    started: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AnnounceShared {
    /// The state of a daemon with `table` open (`None` without an announce
    /// section) and the drain restored from the state file.
    pub(crate) fn new(table: Option<Opened>, drain: Option<Drain>) -> AnnounceShared {
        let enabled = table.is_some();
        let (describe, in_memory) = table.as_ref().map_or((String::new(), false), |o| {
            (o.table.describe(), o.table.in_memory())
        });
        AnnounceShared {
            announcements: ArcSwap::from_pointee(Announcements {
                enabled,
                table: describe.clone(),
                in_memory,
                prefixes: Vec::new(),
            }),
            node: ArcSwap::from_pointee(NodeView {
                drained: drain.clone(),
                announce_enabled: enabled,
                table: describe,
                announced: 0,
                prefixes: 0,
                ..NodeView::default()
            }),
            drain: Mutex::new(drain),
            requested: AtomicU64::new(0),
            carried_out: watch::Sender::new(0),
            wake: Notify::new(),
            table: Mutex::new(table),
            started: enabled,
        }
    }

    /// Whether the daemon runs the announcer (it started with an announce
    /// section).
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// Wakes the announcer: an input changed.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next [`wake`](Self::wake) (or at once if one came
    /// since the last wait).
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The table opened at start, once.
    pub(crate) fn take_table(&self) -> Option<Opened> {
        lock(&self.table).take()
    }

    /// The last published announcements.
    pub(crate) fn announcements(&self) -> Arc<Announcements> {
        self.announcements.load_full()
    }

    /// The last published node view.
    pub(crate) fn node(&self) -> NodeView {
        NodeView::clone(&self.node.load())
    }

    /// Publishes a pass's outcome.
    pub(crate) fn publish(&self, announcements: Announcements, node: NodeView) {
        self.announcements.store(Arc::new(announcements));
        self.node.store(Arc::new(node));
    }

    /// The node's drain as operators set it.
    pub(crate) fn drain(&self) -> Option<Drain> {
        lock(&self.drain).clone()
    }

    /// Sets the drain (`None`: undrained) and returns the request's
    /// number. A second drain keeps who drained first, and when; when it
    /// changes anything, `on_change` runs first (logging, the event), so
    /// watchers hear of the drain before any of its withdraws. The caller
    /// then [wakes](Self::wake) the announcer.
    pub(crate) fn set_drain(&self, drain: Option<Drain>, on_change: impl FnOnce()) -> u64 {
        let mut d = lock(&self.drain);
        if d.is_some() != drain.is_some() {
            on_change();
            *d = drain;
        }
        self.requested.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The drain as a pass should carry it out, with the number of the
    /// last request it includes.
    pub(crate) fn drain_for_pass(&self) -> (Option<Drain>, u64) {
        let d = lock(&self.drain);
        (d.clone(), self.requested.load(Ordering::SeqCst))
    }

    /// Records that the requests up to `n` are carried out.
    pub(crate) fn carried_out(&self, n: u64) {
        self.carried_out.send_if_modified(|done| {
            let more = n > *done;
            if more {
                *done = n;
            }
            more
        });
    }

    /// Waits until request `n` is carried out.
    pub(crate) async fn wait_carried_out(&self, n: u64) {
        let mut rx = self.carried_out.subscribe();
        // The sender lives as long as this struct.
        let _ = rx.wait_for(|done| *done >= n).await;
    }
}
