//! Reader dumps of VPP's LB state, shared: `GetVPPLBState`, `PlanSync`
//! (and the dashboard's plan, which goes through it) and the counter
//! scrape's re-mapping read VPP through [`SharedReads`], on the link's
//! reader connection, never on the reconciler's.
//!
//! Single flight: at most one reader dump is in flight per link; a reader
//! that arrives while one runs waits for it and takes its result, and a
//! result younger than [`FRESH`] is reused. Twelve looping `maglevc show
//! vpp lb state` then cost VPP one dump at a time, at most one a second
//! once they keep coming.
//!
//! Our own changes are never hidden: the writer's dataplane is wrapped in
//! [`Invalidating`], which starts a new generation whenever a plan was
//! applied (or `lb_conf` sent); a snapshot is reused only within the
//! generation its dump started in.
//!
//! **Invariant:** a reader gets a snapshot whose dump started after the
//! last change maglev made, and that finished after it asked or is at
//! most [`FRESH`] old; a reader that must see what VPP holds
//! now ([`SharedReads::snapshot_started_after`]: dry runs, the counter
//! scrape after VIPs changed) gets one whose dump started after it asked.
//! Readers wait in line (FIFO) for the one dump in flight, so everyone who
//! asked while one ran shares the next: a storm costs VPP one dump at a
//! time whatever its size.
//!
//! Pages: every dump has an id ([`Dump::id`]); the pages of one
//! `GetVPPLBState` listing carry it in their token and are cut from that
//! same dump ([`SharedReads::snapshot_continuing`]) while maglev changes
//! nothing and it is at most [`PAGE_REUSE`] old, so a listing of 10,000
//! VIPs costs VPP one dump, not one per page.
//!
//! Cancellation: a dump runs inside the future of the reader that started
//! it; when that reader goes away (its client hung up), the dump is
//! dropped with it, counted in [`ReadStats::abandoned`], and the next
//! reader in line starts its own. Nothing keeps dumping for nobody.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use maglev_core::dataplane::ObservedState;
use maglev_core::plan::Op;
use maglev_vpp::api::messages::LbConf;
use maglev_vpp::lb::apply::ApplyReport;

use maglev_vpp::lb::dataplane::Dataplane;
use maglev_vpp::lb::error::LbError;
use maglev_vpp::lb::ops::LbSnapshot;
use tokio::time::Instant;

/// How old a snapshot may be and still be handed to a new reader.
pub const FRESH: Duration = Duration::from_secs(1);

/// How old a snapshot may be and still give the later pages of a listing
/// that started on it (while maglev changed nothing in VPP).
pub const PAGE_REUSE: Duration = Duration::from_secs(60);

/// One dump as readers get it: its id (for the pages cut from it) and
/// the snapshot.
#[derive(Debug, Clone)]
pub struct Dump {
    /// Unique per link, counting from 1.
    pub id: u64,
    /// What VPP held (VIPs in key order, ASes in VIP then address order).
    pub snapshot: Arc<LbSnapshot>,
}

/// What the reader dumps have done, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Dumps finished.
    pub dumps: u64,
    /// Dumps running now (0 or 1).
    pub in_flight: usize,
    /// Dumps dropped before they finished because their reader went away.
    pub abandoned: u64,
}

/// One finished read.
#[derive(Debug)]
struct Read {
    id: u64,
    generation: u64,
    started: Instant,
    finished: Instant,
    snapshot: Arc<LbSnapshot>,
}

/// The reader dumps of one link (see the module doc).
#[derive(Debug, Default)]
pub struct SharedReads {
    /// The last read; locked while a dump runs (FIFO: readers queue).
    slot: tokio::sync::Mutex<Option<Read>>,
    /// Bumped by every change maglev makes ([`SharedReads::invalidate`]).
    generation: AtomicU64,
    /// Dumps started (the last one's id).
    started: AtomicU64,
    /// Dumps finished.
    finished: AtomicU64,
    /// Dumps running.
    in_flight: AtomicUsize,
    /// Dumps dropped unfinished.
    abandoned: AtomicU64,
}

/// Counts a running dump; counts it abandoned if dropped unfinished.
struct Running<'a> {
    reads: &'a SharedReads,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.reads.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.done {
            self.reads.abandoned.fetch_add(1, Ordering::SeqCst);
            tracing::debug!("reader dump of VPP abandoned: its reader went away");
        }
    }
}

impl SharedReads {
    /// VPP's LB state through `dataplane`: the dump in flight, a fresh
    /// enough earlier one, or a new dump.
    pub async fn snapshot(&self, dataplane: &dyn Dataplane) -> Result<Arc<LbSnapshot>, LbError> {
        Ok(self.dump(dataplane).await?.snapshot)
    }

    /// [`snapshot`](Self::snapshot) with its dump's id.
    pub async fn dump(&self, dataplane: &dyn Dataplane) -> Result<Dump, LbError> {
        let asked = Instant::now();
        self.read(dataplane, |read| {
            read.finished >= asked || read.finished.elapsed() < FRESH
        })
        .await
    }

    /// For a later page of a listing that started on dump `id`: that dump
    /// again while maglev changed nothing since and it is at most
    /// [`PAGE_REUSE`] old; else as [`dump`](Self::dump).
    pub async fn snapshot_continuing(
        &self,
        dataplane: &dyn Dataplane,
        id: u64,
    ) -> Result<Dump, LbError> {
        let asked = Instant::now();
        self.read(dataplane, |read| {
            (read.id == id && read.finished.elapsed() < PAGE_REUSE)
                || read.finished >= asked
                || read.finished.elapsed() < FRESH
        })
        .await
    }

    /// What the dumps have done so far.
    pub fn stats(&self) -> ReadStats {
        ReadStats {
            dumps: self.finished.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            abandoned: self.abandoned.load(Ordering::SeqCst),
        }
    }

    /// VPP's LB state from a dump that started after this call (waiting
    /// for a dump in flight first, never running two at once).
    pub async fn snapshot_started_after(
        &self,
        dataplane: &dyn Dataplane,
    ) -> Result<Arc<LbSnapshot>, LbError> {
        let asked = Instant::now();
        Ok(self
            .read(dataplane, |read| read.started >= asked)
            .await?
            .snapshot)
    }

    /// Forgets every snapshot: maglev changed VPP (or is changing it).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    async fn read(
        &self,
        dataplane: &dyn Dataplane,
        reusable: impl FnOnce(&Read) -> bool,
    ) -> Result<Dump, LbError> {
        let mut slot = self.slot.lock().await;
        if let Some(read) = &*slot
            && read.generation == self.generation.load(Ordering::SeqCst)
            && reusable(read)
        {
            return Ok(Dump {
                id: read.id,
                snapshot: read.snapshot.clone(),
            });
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let started = Instant::now();
        let id = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut running = Running {
            reads: self,
            done: false,
        };
        let result = dataplane.snapshot().await;
        running.done = true;
        drop(running);
        let mut snapshot = result?;
        // Readers cut pages by VIP key and find a VIP's ASes by binary
        // search: hold the order the dump promises even if a dataplane
        // does not.
        if !snapshot.vips.is_sorted_by_key(|v| v.key) {
            snapshot.vips.sort_by_key(|v| v.key);
        }
        if !snapshot.ases.is_sorted_by_key(|a| (a.vip, a.address)) {
            snapshot.ases.sort_by_key(|a| (a.vip, a.address));
        }
        let snapshot = Arc::new(snapshot);
        self.finished.fetch_add(1, Ordering::SeqCst);
        *slot = Some(Read {
            id,
            generation,
            started,
            finished: Instant::now(),
            snapshot: snapshot.clone(),
        });
        Ok(Dump { id, snapshot })
    }
}

/// The writer's dataplane: everything passes through, and every change
/// invalidates the readers' snapshots.
pub struct Invalidating {
    /// The dataplane changes go to.
    pub inner: Arc<dyn Dataplane>,
    /// The snapshots a change makes stale.
    pub reads: Arc<SharedReads>,
}

#[async_trait::async_trait]
impl Dataplane for Invalidating {
    async fn snapshot(&self) -> Result<LbSnapshot, LbError> {
        self.inner.snapshot().await
    }

    async fn observe(&self) -> Result<ObservedState, LbError> {
        self.inner.observe().await
    }

    async fn apply(&self, ops: &[Op]) -> ApplyReport {
        let report = self.inner.apply(ops).await;
        if !ops.is_empty() {
            self.reads.invalidate();
        }
        report
    }

    async fn ensure_lb_conf(&self, want: &LbConf) -> Result<bool, LbError> {
        let sent = self.inner.ensure_lb_conf(want).await;
        self.reads.invalidate();
        sent
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// Counts dumps; each dump waits for a permit of `gate`.
    struct Counting {
        dumps: AtomicUsize,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        gate: Semaphore,
    }

    impl Default for Counting {
        fn default() -> Self {
            Counting {
                dumps: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                gate: Semaphore::new(0),
            }
        }
    }

    #[async_trait::async_trait]
    impl Dataplane for Counting {
        async fn snapshot(&self) -> Result<LbSnapshot, LbError> {
            let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(n, Ordering::SeqCst);
            self.gate.acquire().await.expect("open").forget();
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.dumps.fetch_add(1, Ordering::SeqCst);
            Ok(LbSnapshot::default())
        }
        async fn apply(&self, _: &[Op]) -> ApplyReport {
            ApplyReport::default()
        }
        async fn ensure_lb_conf(&self, _: &LbConf) -> Result<bool, LbError> {
            Ok(false)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_readers_share_one_dump_and_fresh_results_are_reused() {
        let dp = Arc::new(Counting::default());
        let reads = Arc::new(SharedReads::default());
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let (dp, reads) = (dp.clone(), reads.clone());
                tokio::spawn(async move { reads.snapshot(&*dp).await.map(|_| ()) })
            })
            .collect();
        // Let every reader arrive: the first dump is held at the gate.
        tokio::task::yield_now().await;
        while dp.in_flight.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        dp.gate.add_permits(1);
        for r in readers {
            r.await.unwrap().unwrap();
        }
        assert_eq!(
            dp.dumps.load(Ordering::SeqCst),
            1,
            "one dump for 50 readers"
        );
        assert_eq!(dp.most_in_flight.load(Ordering::SeqCst), 1);
        // Still fresh: reused.
        reads.snapshot(&*dp).await.unwrap();
        assert_eq!(dp.dumps.load(Ordering::SeqCst), 1);
        // Older than FRESH: dumped again.
        tokio::time::advance(FRESH).await;
        dp.gate.add_permits(1);
        reads.snapshot(&*dp).await.unwrap();
        assert_eq!(dp.dumps.load(Ordering::SeqCst), 2);
        // Fresh, but maglev changed VPP since: dumped again.
        let writer = Invalidating {
            inner: dp.clone(),
            reads: reads.clone(),
        };
        writer.apply(&[Op::DeleteVip { key: key() }]).await;
        dp.gate.add_permits(1);
        reads.snapshot(&*dp).await.unwrap();
        assert_eq!(dp.dumps.load(Ordering::SeqCst), 3);
        reads.snapshot(&*dp).await.unwrap();
        assert_eq!(dp.dumps.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn readers_who_need_now_share_the_next_dump() {
        let dp = Arc::new(Counting::default());
        let reads = Arc::new(SharedReads::default());
        let spawn = |reads: &Arc<SharedReads>| {
            let (dp, reads) = (dp.clone(), reads.clone());
            tokio::spawn(async move { reads.snapshot_started_after(&*dp).await.map(|_| ()) })
        };
        // The first dump is held; ten more readers arrive meanwhile.
        let first = spawn(&reads);
        while dp.in_flight.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(Duration::from_millis(1)).await;
        let waiting: Vec<_> = (0..10).map(|_| spawn(&reads)).collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        dp.gate.add_permits(2);
        first.await.unwrap().unwrap();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        // They asked after the first dump started: not that one, but all
        // of them the next.
        assert_eq!(dp.dumps.load(Ordering::SeqCst), 2);
        assert_eq!(dp.most_in_flight.load(Ordering::SeqCst), 1);
    }

    fn key() -> maglev_core::dataplane::VipKey {
        maglev_core::dataplane::VipKey {
            address: [192, 0, 2, 1].into(),
            prefix_len: 32,
            protocol: 6,
            port: 80,
        }
    }
}
