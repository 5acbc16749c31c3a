//! The reconciler: the one path to VPP (SPEC §5.3-§5.6).
//!
//! Triggers (a backend transition, the periodic full sync, a reload, an
//! operator's weight change or sync, a VPP reconnect) only mark work in
//! [`Control`]. One task takes the next [`Batch`] the schedule allows,
//! builds the desired state of its frontends, plans against what VPP is
//! believed to hold, applies the plan, and reports back. Policy is not
//! decided here: the schedule ([`maglev_core::schedule`]), warm-up
//! ([`maglev_core::warmup`]), weights, desired state and plan are all pure
//! code in `maglev-core`.
//!
//! **What VPP holds.** A full sync always reads VPP first (drift repair).
//! Between full syncs the reconciler plans against its belief: the last
//! reading with every applied op played on it by the model of VPP
//! ([`simulate`](maglev_core::plan::simulate)). Any failed op, any op the
//! model cannot play and any reconnect drops the belief, so the next batch
//! reads VPP again: the daemon never believes VPP holds what it does not.
//!
//! **Drains never wait.** A frontend whose sync failed waits for its retry
//! (the schedule's backoff), unless it is marked again by a change that
//! lowers a weight, removes an AS or flushes: the reconciler compares the
//! frontend's desired weights now with those it last planned (or last
//! judged), and a drain skips the delay. An operator's sync of one
//! frontend skips it too.
//!
//! **Sync health** ([`crate::daemon::sync_health`]): pending frontends and
//! since when, read errors, failures by kind and the last full success are
//! recorded here for `/metrics`, `show vpp info` and the dashboard.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use maglev_core::config::{Config, Frontend};
use maglev_core::dataplane::{DesiredState, ObservedState, VipKey};
use maglev_core::desired::desired_frontend;
use maglev_core::plan::{Op, PendingFlushes, plan_all, plan_vip, simulate};
use maglev_core::prediction::{TableChange, table_changes};
use maglev_core::schedule::{Batch, Schedule};
use maglev_core::state::BackendState;
use maglev_core::warmup::{Phase, Warmup};
use maglev_core::weights::Serving;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::daemon::error::DaemonError;
use crate::daemon::handle::Handle;
use crate::daemon::pools::PoolLog;
use crate::daemon::sync_health::{FailureKind, Health, SyncHealth};
use crate::daemon::tables::Update;
use crate::events::EventKind;

/// What an operator asked to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncScope {
    /// Everything, removing VIPs not in the config.
    All,
    /// One frontend.
    Frontend(String),
}

/// Who waits for a sync: the scope, the number of the last batch started
/// before the request (only a later batch can answer it), and where to send
/// the outcome.
type Waiter = (
    SyncScope,
    u64,
    oneshot::Sender<Result<SyncReport, DaemonError>>,
);

/// What a sync did, or what a dry run would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The ops sent (or to send), in order.
    pub ops: Vec<Op>,
    /// What they do to each VIP's new-flow table, in VIP order.
    pub tables: Vec<TableChange>,
}

impl SyncReport {
    /// The part of the report about `key`'s VIP.
    fn only(&self, key: Option<VipKey>) -> SyncReport {
        SyncReport {
            ops: self
                .ops
                .iter()
                .filter(|op| Some(op.vip()) == key)
                .copied()
                .collect(),
            tables: self
                .tables
                .iter()
                .filter(|t| Some(t.key) == key)
                .cloned()
                .collect(),
        }
    }
}

/// The reconciler's inputs, shared with every trigger.
pub(crate) struct Control {
    state: Mutex<ControlState>,
    wake: Notify,
    /// Bumped whenever VPP's belief must be dropped (reconnect).
    stale: AtomicU64,
    /// Bumped whenever a VIP is created or deleted (the counter scrape
    /// re-resolves its indexes).
    pub(crate) vip_generation: AtomicU64,
}

struct ControlState {
    schedule: Schedule<Instant>,
    warmup: Warmup<Instant>,
    flushes: PendingFlushes,
    waiters: Vec<Waiter>,
    /// Batches started so far; the running one is number `started`.
    started: u64,
    next_periodic: Instant,
    /// Slow-starting backends and when their next step begins: each step
    /// marks the frontends using them.
    ramps: BTreeMap<String, Instant>,
    /// Per frontend, the AS weights of its VIP it was last planned (or
    /// judged) with: a new mark that lowers one of them is a drain.
    planned: BTreeMap<String, Weights>,
    /// Sync health, for readers.
    health: Health,
}

/// The AS weights of one VIP in address order (empty: the VIP is not
/// wanted). A boxed slice, not a map: one is kept per frontend, and at
/// 16 ASes it is 290 bytes against a `BTreeMap`'s 720 (issue 25).
type Weights = Box<[(IpAddr, u8)]>;

fn weights_of(desired: Option<&maglev_core::dataplane::DesiredVip>) -> Weights {
    desired.map_or_else(Box::default, |d| {
        d.ases.iter().map(|(a, x)| (*a, x.weight)).collect()
    })
}

/// Whether `now` lowers a weight of `before` or removes one of its ASes.
fn lowers_a_weight(before: &Weights, now: &Weights) -> bool {
    before.iter().any(|(a, w)| {
        now.binary_search_by_key(a, |(b, _)| *b)
            .map_or(true, |i| now[i].1 < *w)
    })
}

impl Control {
    pub(crate) fn new(config: &Config, start: Instant) -> Control {
        let (min, max, interval) = match config.vpp() {
            Some(v) => (
                v.lb.startup_min_delay,
                v.lb.startup_max_delay,
                v.lb.sync_interval,
            ),
            None => Default::default(),
        };
        let mut schedule = Schedule::new();
        schedule.mark_all(config.frontends().keys().map(String::as_str));
        Control {
            state: Mutex::new(ControlState {
                schedule,
                warmup: Warmup::new(start, min, max),
                flushes: PendingFlushes::new(),
                waiters: Vec::new(),
                started: 0,
                next_periodic: start + interval.max(std::time::Duration::from_secs(1)),
                ramps: BTreeMap::new(),
                planned: BTreeMap::new(),
                health: Health::default(),
            }),
            wake: Notify::new(),
            stale: AtomicU64::new(0),
            vip_generation: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `frontend` for a sync, with flushes of `flushes` requested.
    pub(crate) fn mark(&self, frontend: &str, flushes: impl IntoIterator<Item = (VipKey, IpAddr)>) {
        let mut s = self.lock();
        s.schedule.mark(frontend);
        for (vip, address) in flushes {
            s.flushes.request(vip, address);
        }
        drop(s);
        self.wake.notify_one();
    }

    /// `backend` slow-starts: its next step begins at `at` (`None`: it no
    /// longer ramps).
    pub(crate) fn ramp(&self, backend: &str, at: Option<Instant>) {
        let mut s = self.lock();
        match at {
            Some(at) => {
                s.ramps.insert(backend.to_owned(), at);
                drop(s);
                // The reconciler's next deadline may now be sooner.
                self.wake.notify_one();
            }
            None => {
                s.ramps.remove(backend);
            }
        }
    }

    /// Marks everything for a full sync.
    pub(crate) fn mark_all(&self, config: &Config) {
        self.lock()
            .schedule
            .mark_all(config.frontends().keys().map(String::as_str));
        self.wake.notify_one();
    }

    /// The next batch re-reads VPP before planning.
    pub(crate) fn forget_belief(&self) {
        self.stale.fetch_add(1, Ordering::Relaxed);
    }

    /// VPP (re)connected: drop the belief, forget the retry delays of
    /// what failed while it was away, and resync everything.
    pub(crate) fn reconnected(&self, config: &Config) {
        self.stale.fetch_add(1, Ordering::Relaxed);
        self.lock().schedule.reset_backoff();
        self.mark_all(config);
    }

    /// The config was reloaded.
    pub(crate) fn reloaded<'a>(&self, config: &Config, removed: impl IntoIterator<Item = &'a str>) {
        let mut s = self.lock();
        for f in removed {
            s.schedule.forget(f);
            s.planned.remove(f);
        }
        s.schedule
            .mark_all(config.frontends().keys().map(String::as_str));
        drop(s);
        self.wake.notify_one();
    }

    /// Whether anyone waits for a sync's report.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.lock().waiters.is_empty()
    }

    /// The flushes requested and not yet carried out.
    pub(crate) fn flushes(&self) -> PendingFlushes {
        self.lock().flushes.clone()
    }

    /// Asks for a sync of `scope` (with an optional flush) and returns
    /// where its outcome will be sent.
    pub(crate) fn request(
        &self,
        scope: SyncScope,
        flush: Option<(VipKey, IpAddr)>,
    ) -> oneshot::Receiver<Result<SyncReport, DaemonError>> {
        let (tx, rx) = oneshot::channel();
        let mut s = self.lock();
        if let Some((vip, address)) = flush {
            s.flushes.request(vip, address);
        }
        // An operator's ask is no retry: it runs at the next chance.
        match &scope {
            SyncScope::All => s.schedule.expedite_all(),
            SyncScope::Frontend(f) => s.schedule.expedite(f),
        }
        let after = s.started;
        s.waiters.push((scope, after, tx));
        drop(s);
        self.wake.notify_one();
        rx
    }

    /// Answers every waiting sync request with `error` (VPP is away).
    fn fail_waiters(&self, error: &DaemonError) {
        let waiters = std::mem::take(&mut self.lock().waiters);
        for (_, _, tx) in waiters {
            // The asker may have gone away.
            let _ = tx.send(Err(match error {
                DaemonError::Unavailable(m) => DaemonError::Unavailable(m.clone()),
                other => DaemonError::Vpp(other.to_string()),
            }));
        }
    }

    /// Why warm-up would hold `scope` at `now`, if it would; a frontend
    /// whose backends are all known (`all_known`) is released by asking.
    pub(crate) fn held(
        &self,
        scope: &SyncScope,
        now: Instant,
        all_known: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let mut s = self.lock();
        match (s.warmup.phase(now), scope) {
            (Phase::Finished, _) => None,
            (Phase::HandsOff, _) => Some(
                "start-up warm-up: VPP is left as it is until startup-min-delay has passed"
                    .to_owned(),
            ),
            (Phase::Releasing, SyncScope::All) => Some(
                "start-up warm-up: a full sync waits until every frontend is released \
                 or startup-max-delay has passed"
                    .to_owned(),
            ),
            (Phase::Releasing, SyncScope::Frontend(f)) => {
                let known = all_known(f);
                (!s.warmup.release_frontend(now, f, known)).then(|| {
                    format!(
                        "start-up warm-up: frontend {f:?} is released once none of its \
                         backends is unknown"
                    )
                })
            }
        }
    }

    /// Whether warm-up has released `frontend`.
    pub(crate) fn is_released(&self, frontend: &str) -> bool {
        let s = self.lock();
        s.warmup.phase(Instant::now()) == Phase::Finished || s.warmup.is_released(frontend)
    }

    /// The warm-up phase at `now`.
    pub(crate) fn phase(&self, now: Instant) -> Phase {
        self.lock().warmup.phase(now)
    }

    /// The sync health at `now`.
    pub(crate) fn sync_health(&self, now: Instant) -> SyncHealth {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.health
            .note_pending(s.schedule.pending().map(|(f, _)| f), now);
        s.health
            .view(now, s.schedule.pending(), s.schedule.full_pending())
    }
}

/// What the reconciler believes VPP holds.
struct Belief {
    state: Option<ObservedState>,
    stale_seen: u64,
    /// A batch created VIPs after the last read: their drift is known only
    /// once VPP is read again, which the reconciler does when idle.
    read_owed: bool,
}

/// Runs the reconciler until the daemon stops.
pub(crate) async fn run(handle: Handle) {
    let shared = &handle.shared;
    let mut belief = Belief {
        state: None,
        stale_seen: 0,
        read_owed: false,
    };
    loop {
        if let Err(e) = handle.vpp() {
            // VPP is away: nothing can be synced, and its absence is no
            // failure of any frontend. Taking batches now would only build
            // up the schedule's retry backoff, which then held back the
            // resync after the reconnect (by 1 s after one attempt, up to
            // RETRY_MAX after many; see docs/performance.md). Whoever waits
            // for a sync hears now; the reconnect marks everything.
            shared.control.fail_waiters(&e);
            shared.control.sync_health(Instant::now());
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = shared.control.wake.notified() => {}
            }
            continue;
        }
        let now = Instant::now();
        let config = handle.config();
        let (batch, deadline) = next_batch(&handle, &config, now);
        let Some(batch) = batch else {
            if belief.read_owed {
                belief.read_owed = false;
                tokio::select! {
                    biased;
                    _ = shared.cancel.cancelled() => return,
                    _ = read_created(&handle, &mut belief) => {}
                }
                continue;
            }
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = shared.control.wake.notified() => {}
                _ = sleep_until(deadline) => {}
            }
            continue;
        };
        // Shutdown stops a sync between ops (a plan of 10,000 VIPs is
        // 170,000 of them): what VPP already holds stays, and the next
        // start reads VPP and plans again from what it finds.
        let outcome = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => {
                tracing::info!(full = batch.full, frontends = batch.frontends.len(),
                    "stopping: the sync in progress is abandoned; the next start reads VPP and plans again");
                return;
            }
            outcome = sync_batch(&handle, &config, &batch, &mut belief) => outcome,
        };
        finish(&handle, &config, &batch, outcome);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next batch, or when to look again.
fn next_batch(handle: &Handle, config: &Config, now: Instant) -> (Option<Batch>, Option<Instant>) {
    let shared = &handle.shared;
    let mut guard = shared.control.lock();
    let s = &mut *guard;
    if now >= s.next_periodic {
        let interval = config
            .vpp()
            .map_or(std::time::Duration::from_secs(30), |v| v.lb.sync_interval);
        s.next_periodic = now + interval;
        s.schedule
            .mark_all(config.frontends().keys().map(String::as_str));
    }
    // Slow-start steps that have begun: the frontends using the backend
    // are synced at its new weight; the backend's next step is read from
    // its status.
    let due: Vec<String> = s
        .ramps
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(b, _)| b.clone())
        .collect();
    for backend in due {
        for f in config.frontends_using(&backend) {
            s.schedule.mark(f);
        }
        match handle.next_ramp_step(&backend, now) {
            Some(at) => s.ramps.insert(backend, at),
            None => s.ramps.remove(&backend),
        };
    }
    let frontends = || config.frontends().keys().map(String::as_str);
    if s.warmup.phase(now) == Phase::Releasing {
        s.warmup.finish_if_all_released(now, frontends());
    }
    if s.warmup.poll_finished(now) {
        tracing::info!("warm-up finished: full sync");
        s.schedule.mark_all(frontends());
    }
    let full_allowed = s.warmup.may_sync_all(now);
    s.health
        .note_pending(s.schedule.pending().map(|(f, _)| f), now);
    let warmup = &mut s.warmup;
    let planned = &mut s.planned;
    let batch = s.schedule.next(
        now,
        full_allowed,
        frontends(),
        |f| {
            let released = warmup.release_frontend(now, f, all_backends_known(handle, config, f));
            if !released {
                tracing::debug!(frontend = f, "warm-up holds the sync");
            }
            released
        },
        |f| {
            let drain = is_drain(handle, config, f, now, planned);
            if drain {
                tracing::debug!(frontend = f, "a drain skips the retry delay");
            }
            drain
        },
    );
    if batch.is_some() {
        s.started += 1;
        return (batch, None);
    }
    let deadline = [
        s.warmup.next_deadline(now),
        s.schedule.next_retry(),
        Some(s.next_periodic),
        s.ramps.values().min().copied(),
    ]
    .into_iter()
    .flatten()
    .min();
    (None, deadline)
}

/// Whether `frontend`, marked again while it waits for a retry, now wants
/// a lower weight for an AS (or no longer wants it) than when it was last
/// planned or judged; the weights seen now become the reference, so the
/// same change is judged once. A frontend never planned counts as a drain.
fn is_drain(
    handle: &Handle,
    config: &Config,
    frontend: &str,
    now: Instant,
    planned: &mut BTreeMap<String, Weights>,
) -> bool {
    let Some(fe) = config.frontend(frontend) else {
        return false;
    };
    let serving_of = |b: &str| handle.serving(b, now);
    let active = handle.active_pool(frontend, fe, serving_of);
    let desired = desired_frontend(config, frontend, serving_of, active);
    let weights = weights_of(desired.as_ref());
    let drain = planned
        .get(frontend)
        .is_none_or(|before| lowers_a_weight(before, &weights));
    planned.insert(frontend.to_owned(), weights);
    drain
}

/// Whether none of `frontend`'s backends is `unknown`.
pub(crate) fn all_backends_known(handle: &Handle, config: &Config, frontend: &str) -> bool {
    config.frontend(frontend).is_some_and(|fe| {
        fe.backend_names()
            .all(|b| handle.backend_state(b) != BackendState::Unknown)
    })
}

/// How a batch ended.
struct Outcome {
    /// Ops VPP accepted, in plan order, and their table changes.
    done: SyncReport,
    /// Per frontend: the error of its first failed op.
    failed: BTreeMap<String, String>,
    /// The failed frontends whose failed (or skipped) ops would drain.
    drains: BTreeSet<String>,
    /// Everything failed (VPP away, the read failed): the error.
    all_failed: Option<DaemonError>,
}

async fn sync_batch(
    handle: &Handle,
    config: &Config,
    batch: &Batch,
    belief: &mut Belief,
) -> Outcome {
    let shared = &handle.shared;
    let failed_all = |e: DaemonError| Outcome {
        done: SyncReport::default(),
        failed: BTreeMap::new(),
        drains: BTreeSet::new(),
        all_failed: Some(e),
    };
    let link = match handle.vpp() {
        Ok(link) => link,
        Err(e) => {
            shared
                .control
                .lock()
                .health
                .failed(FailureKind::Unavailable);
            return failed_all(e);
        }
    };
    let stale = shared.control.stale.load(Ordering::Relaxed);
    if batch.full || belief.stale_seen != stale || belief.state.is_none() {
        match read(handle, &*link.dataplane).await {
            Ok(state) => {
                belief.state = Some(state);
                belief.stale_seen = stale;
                belief.read_owed = false;
                if batch.full {
                    // Someone else may have recreated VIPs: the counter
                    // scrape re-reads their indexes after every full read.
                    shared
                        .control
                        .vip_generation
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                belief.state = None;
                shared.control.lock().health.read_failed();
                tracing::warn!(error = %e, "reading VPP's LB state failed");
                return failed_all(DaemonError::Vpp(e.to_string()));
            }
        }
    }
    let observed = belief.state.as_mut().expect("read above");
    let now = Instant::now();
    let serving_of = |b: &str| handle.serving(b, now);
    // The one place a pool choice is stored.
    let pool_log = PoolLog::default();
    let active_of =
        |name: &str, fe: &Frontend| shared.pools.choose(name, fe, serving_of, &pool_log);
    let ops = {
        let mut s = shared.control.lock();
        let (desired, ops) = plan_batch(config, batch, serving_of, active_of, observed, &s.flushes);
        if batch.full {
            s.flushes.retain_desired(&desired);
        }
        for f in &batch.frontends {
            if let Some(fe) = config.frontend(f) {
                let weights = weights_of(desired.get(&fe.vip_key()));
                s.planned.insert(f.clone(), weights);
            }
        }
        ops
    };
    pool_log.finish();
    if ops.is_empty() {
        return Outcome {
            done: SyncReport::default(),
            failed: BTreeMap::new(),
            drains: BTreeSet::new(),
            all_failed: None,
        };
    }
    // The touched prefixes as they were, for the table changes.
    let touched: BTreeSet<VipKey> = ops.iter().map(Op::vip).collect();
    let before: ObservedState = touched
        .iter()
        .flat_map(|k| observed.range(k.prefix_range()))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let scope = if batch.full { "all" } else { "vip" };
    let report = link.dataplane.apply(&ops).await;
    let frontend_of = |key: &VipKey| crate::daemon::views::frontend_of(config, key);
    // Logged as soon as VPP answered: the line says when VPP held it all.
    crate::daemon::oplog::log(&report, scope, &frontend_of);
    let mut drains = BTreeSet::new();
    let failed_ops = report.failed.iter().map(|f| &f.op).chain(&report.skipped);
    for op in failed_ops {
        if drains_flows(op, &before)
            && let Some(name) = frontend_of(&op.vip())
        {
            drains.insert(name.to_string());
        }
    }
    let mut believable = report.failed.is_empty();
    for op in &report.done {
        if simulate(observed, op).is_err() {
            believable = false;
        }
    }
    // The table changes are built off this path (daemon::tables), here
    // only for an operator waiting for this sync's report.
    let tables = if shared.control.has_waiters() {
        table_changes(&before, &report.done)
    } else {
        Vec::new()
    };
    // The touched prefixes as the ops left them: from the ops' keys, not
    // `before`'s (a VIP this batch created is in no prefix `before` has).
    let after = believable.then(|| {
        touched
            .iter()
            .flat_map(|k| observed.range(k.prefix_range()))
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    });
    if !believable {
        belief.state = None;
    }
    shared
        .tables
        .update(Update::Applied {
            before,
            done: report.done.clone(),
            after,
        })
        .await;
    // One event per op, or the totals of a large plan (events::plan).
    for change in crate::events::plan::changes(&report, scope, &frontend_of) {
        handle.publish(EventKind::Vpp(change));
    }
    for op in &report.done {
        shared.metrics.lbsync(scope, op.kind());
    }
    let mut failed = BTreeMap::new();
    for f in &report.failed {
        let frontend = frontend_of(&f.op.vip());
        shared.metrics.reconcile_error(scope);
        if let Some(name) = frontend {
            failed
                .entry(name.to_string())
                .or_insert_with(|| format!("{}: {}", f.op, f.error));
        }
    }
    for op in &report.skipped {
        if let Some(name) = frontend_of(&op.vip()) {
            failed
                .entry(name.to_string())
                .or_insert_with(|| format!("{op}: skipped after an earlier failure"));
        }
    }
    if report
        .done
        .iter()
        .any(|op| matches!(op, Op::CreateVip { .. }))
    {
        belief.read_owed = true;
    }
    if report
        .done
        .iter()
        .any(|op| matches!(op, Op::CreateVip { .. } | Op::DeleteVip { .. }))
    {
        shared
            .control
            .vip_generation
            .fetch_add(1, Ordering::Relaxed);
    }
    shared.control.lock().flushes.applied(&report.done);
    Outcome {
        done: SyncReport {
            ops: report.done,
            tables,
        },
        failed,
        drains,
        all_failed: None,
    }
}

/// Whether `op` lowers a weight, removes an AS or a VIP, or flushes, as
/// against `before` (what VPP held before the batch): a drain.
fn drains_flows(op: &Op, before: &ObservedState) -> bool {
    match *op {
        Op::DeleteVip { .. } | Op::DeleteAs { .. } => true,
        Op::SetWeight {
            vip,
            address,
            weight,
            flush,
        } => {
            flush
                || before
                    .get(&vip)
                    .and_then(|v| v.ases.get(&address))
                    .is_none_or(|w| weight < *w)
        }
        Op::CreateVip { .. } | Op::AddAs { .. } => false,
    }
}

/// The read owed after batches that created VIPs, once the reconciler is
/// idle: one read for any number of batches in a row, on the reconciler's
/// own connection, so the created VIPs' drift is known within moments
/// rather than at the next full sync. It becomes the belief, as any read
/// does. A failed read is only logged: the next read (the next batch that
/// creates VIPs, or the periodic full sync) brings the drift.
async fn read_created(handle: &Handle, belief: &mut Belief) {
    let Ok(link) = handle.vpp() else {
        return;
    };
    let stale = handle.shared.control.stale.load(Ordering::Relaxed);
    match read(handle, &*link.dataplane).await {
        Ok(state) => {
            belief.state = Some(state);
            belief.stale_seen = stale;
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading VPP's LB state after creating VIPs failed; their drift waits for the next read");
        }
    }
}

/// Reads VPP's LB state; its tables and their drift from the prediction
/// (`maglev_vpp_lb_buckets_drift`) go to [`crate::daemon::tables`].
async fn read(
    handle: &Handle,
    dataplane: &dyn maglev_vpp::lb::dataplane::Dataplane,
) -> Result<ObservedState, maglev_vpp::lb::error::LbError> {
    let snapshot = dataplane.snapshot().await?;
    let observed = snapshot.observed();
    handle.shared.tables.update(Update::Read(snapshot)).await;
    Ok(observed)
}

/// The ops of `batch` against `observed`, with the desired state they aim
/// at: the one planning step of a sync and of a dry run, which therefore
/// cannot disagree.
///
/// `active_of` gives each frontend's active pool: the reconciler's choice
/// (stored), or for a dry run a peek at it.
pub(crate) fn plan_batch(
    config: &Config,
    batch: &Batch,
    serving_of: impl Fn(&str) -> Serving + Copy,
    active_of: impl Fn(&str, &Frontend) -> Option<usize>,
    observed: &ObservedState,
    flushes: &PendingFlushes,
) -> (DesiredState, Vec<Op>) {
    let desired = desired_for(config, batch, serving_of, active_of);
    let ops = if batch.full {
        let mut flushes = flushes.clone();
        flushes.retain_desired(&desired);
        plan_all(&desired, observed, &flushes)
    } else {
        plan_frontends(config, batch, &desired, observed, flushes)
    };
    (desired, ops)
}

/// The desired state the batch needs: its frontends and every frontend
/// sharing a prefix with them (the planner reads those to respect VPP's
/// per-prefix rules).
fn desired_for(
    config: &Config,
    batch: &Batch,
    serving_of: impl Fn(&str) -> Serving + Copy,
    active_of: impl Fn(&str, &Frontend) -> Option<usize>,
) -> DesiredState {
    let addresses: BTreeSet<IpAddr> = if batch.full {
        BTreeSet::new()
    } else {
        batch
            .frontends
            .iter()
            .filter_map(|f| config.frontend(f))
            .map(|f| f.address)
            .collect()
    };
    config
        .frontends()
        .iter()
        .filter(|(_, f)| batch.full || addresses.contains(&f.address))
        .filter_map(|(name, fe)| desired_frontend(config, name, serving_of, active_of(name, fe)))
        .map(|d| (d.key, d))
        .collect()
}

/// The plan of a per-frontend batch: each frontend's VIP in key order,
/// each planned on the state the previous ones leave.
fn plan_frontends(
    config: &Config,
    batch: &Batch,
    desired: &DesiredState,
    observed: &ObservedState,
    flushes: &PendingFlushes,
) -> Vec<Op> {
    let mut keys: Vec<VipKey> = batch
        .frontends
        .iter()
        .filter_map(|f| config.frontend(f))
        .map(|f| f.vip_key())
        .collect();
    keys.sort();
    // Only the batch's prefixes are read by `plan_vip` (and changed by its
    // ops): copy those, not the whole belief, which at 1,000 VIPs × 16 ASes
    // cost more than the rest of a one-frontend sync.
    let mut after: ObservedState = keys
        .iter()
        .flat_map(|k| observed.range(k.prefix_range()))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let mut ops = Vec::new();
    for key in keys {
        let vip_ops = plan_vip(key, desired, &after, flushes);
        for op in &vip_ops {
            // The planner never emits what the model refuses; if it did,
            // VPP's answer is the judge and the belief is re-read.
            let _ = simulate(&mut after, op);
        }
        ops.extend(vip_ops);
    }
    ops
}

/// Reports the batch to the schedule and answers the waiters it covers.
fn finish(handle: &Handle, config: &Config, batch: &Batch, outcome: Outcome) {
    let now = Instant::now();
    let failed: BTreeSet<String> = outcome.failed.keys().cloned().collect();
    let unix_now = handle.clock().now_unix_nanos();
    let mut s = handle.shared.control.lock();
    if batch.full {
        // The next periodic round counts from the end of this one: a round
        // longer than the interval (10,000 VIPs into a slow VPP) would
        // otherwise be followed at once by another, and a transition
        // marked during the first would wait behind both.
        let interval = config
            .vpp()
            .map_or(std::time::Duration::from_secs(30), |v| v.lb.sync_interval);
        s.next_periodic = s.next_periodic.max(now + interval);
    }
    s.schedule.finished(
        batch,
        &failed,
        &outcome.drains,
        outcome.all_failed.is_some(),
        now,
    );
    if outcome.all_failed.is_none() {
        for f in &batch.frontends {
            if failed.contains(f) {
                s.health.failed(FailureKind::Refused);
            } else {
                s.health.synced(f);
            }
        }
        if batch.full && failed.is_empty() {
            s.health.full_succeeded(unix_now);
        }
    }
    let waiters = std::mem::take(&mut s.waiters);
    let this_batch = s.started;
    for (scope, after, tx) in waiters {
        // A batch that started before the request was planned without it.
        let covered = this_batch > after
            && match &scope {
                SyncScope::All => batch.full,
                SyncScope::Frontend(f) => {
                    batch.frontends.contains(f) || config.frontend(f).is_none()
                }
            };
        if !covered {
            s.waiters.push((scope, after, tx));
            continue;
        }
        let result = if let Some(e) = &outcome.all_failed {
            Err(match e {
                DaemonError::Unavailable(m) => DaemonError::Unavailable(m.clone()),
                other => DaemonError::Vpp(other.to_string()),
            })
        } else {
            match &scope {
                SyncScope::All => match outcome.failed.values().next() {
                    Some(e) => Err(DaemonError::Vpp(e.clone())),
                    None => Ok(outcome.done.clone()),
                },
                SyncScope::Frontend(f) => match outcome.failed.get(f) {
                    Some(e) => Err(DaemonError::Vpp(e.clone())),
                    None => Ok(outcome.done.only(config.frontend(f).map(|fe| fe.vip_key()))),
                },
            }
        };
        // The asker may have gone away.
        let _ = tx.send(result);
    }
    drop(s);
    // Warm-up may have released frontends: the announcer looks again.
    handle.shared.announce.wake();
    if let Some(e) = &outcome.all_failed {
        tracing::debug!(error = %e, full = batch.full, "sync deferred");
    }
}

#[cfg(test)]
mod tests {
    use maglev_core::dataplane::{Encap, ObservedVip, Protocol};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_drain_is_a_lower_weight_a_removal_or_a_flush() {
        let vip = VipKey::host(ip("192.0.2.1"), Some(Protocol::Tcp), 80);
        let before: ObservedState = [(
            vip,
            ObservedVip {
                key: vip,
                encap: Encap::Gre4,
                table_len: 1024,
                src_ip_sticky: false,
                ases: [(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 0)].into(),
            },
        )]
        .into();
        let set = |address: &str, weight: u8, flush: bool| Op::SetWeight {
            vip,
            address: ip(address),
            weight,
            flush,
        };
        assert!(drains_flows(&set("10.0.0.1", 50, false), &before));
        assert!(!drains_flows(&set("10.0.0.2", 50, false), &before));
        assert!(drains_flows(&set("10.0.0.2", 0, true), &before));
        let delete = Op::DeleteAs {
            vip,
            address: ip("10.0.0.2"),
            flush: false,
        };
        assert!(drains_flows(&delete, &before));
        assert!(drains_flows(&Op::DeleteVip { key: vip }, &before));
        let add = Op::AddAs {
            vip,
            address: ip("10.0.0.3"),
            weight: 100,
        };
        assert!(!drains_flows(&add, &before));

        let weights: Weights = [(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 50)].into();
        let raised: Weights = [(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 100)].into();
        let lowered: Weights = [(ip("10.0.0.1"), 0), (ip("10.0.0.2"), 100)].into();
        let removed: Weights = [(ip("10.0.0.2"), 100)].into();
        assert!(!lowers_a_weight(&weights, &raised));
        assert!(lowers_a_weight(&weights, &lowered));
        assert!(lowers_a_weight(&weights, &removed));
        assert!(!lowers_a_weight(&Weights::default(), &raised));
    }
}
