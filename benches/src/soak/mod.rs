//! The chaos soak: the real daemon in-process against the VPP simulator and
//! loopback backends, driven by a seeded RNG through chaos windows (backend
//! flaps, stalls, slow and refused answers; simulator faults, VPP restarts,
//! stats segment replacements; descriptor floods on every listener and
//! reader storms; operator actions and reloads over gRPC), quiet phases
//! (faults stop, backends settle, convergence is timed) and intent
//! episodes (an operator disables, pauses and sets weights, then the
//! daemon restarts with its state file, without it, or reloads; later
//! some of it is undone), with `WatchEvents` subscribers that read fast,
//! slowly or never, while the invariants of [`invariants`], [`steady`] and
//! [`intent`] are checked every 50 ms.
//!
//! `cargo run --release -p maglev-benches --bin soak -- --seconds N --seed S`
//! runs it; `benches/tests/soak.rs` runs a short one in the test suite.
//! The RNG alone decides the sequence of faults and actions (never what it
//! observes), so a failing seed replays the same sequence; timing is real,
//! so interleavings can differ between runs.
//!
//! - [`backends`]: switchable loopback HTTP backends.
//! - [`world`]: the simulated VPP, the config, the daemon's runtimes,
//!   gRPC and the event subscribers.
//! - [`faults`]: the actions and how the RNG draws them.
//! - [`flood`]: descriptor floods, bounded by the descriptors free.
//! - [`storm`]: reader storms over gRPC, `/metrics` and the dashboard.
//! - [`invariants`]: desired vs held state and the checks (1 to 4).
//! - [`steady`]: a healthy backend never leaves `up` (5).
//! - [`intent`]: operator intent across restarts and reloads (6).
//! - [`report`]: the counts, the summary line and the journal.

pub mod backends;
pub mod faults;
pub mod flood;
pub mod intent;
pub mod invariants;
pub mod report;
pub mod steady;
pub mod storm;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use maglev_bin::daemon::Daemon;
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use maglev_core::state::BackendState;
use maglev_core::warmup::Phase;
use maglev_vpp::sim::{Fault, FaultAction};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;

use backends::{Backend, Mode};
use faults::{Action, Listener};
use flood::FloodOutcome;
use intent::Intent;
use invariants::Drains;
use report::{Journal, Report, Violation};
use steady::SteadyWatch;
use storm::{StormOutcome, Targets};
use tokio_util::sync::CancellationToken;
use world::{DaemonRuntime, Reader, Vpp, Watchers};

/// Where progress lines go.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// How to run a soak.
#[derive(Clone)]
pub struct Options {
    /// How long (the last quiet phase may run past it).
    pub seconds: u64,
    /// The RNG seed.
    pub seed: u64,
    /// The third octet of the backends' loopback addresses (127.0.`net`.x).
    pub net: u8,
    /// Told a progress line now and then (`None`: silent).
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("seconds", &self.seconds)
            .field("seed", &self.seed)
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

/// The `WatchEvents` subscribers on every daemon: one fast (it counts the
/// transitions), one that reads an event every half second, one that
/// never reads.
const READERS: &[Reader] = &[
    Reader::Fast,
    Reader::Slow(Duration::from_millis(500)),
    Reader::Never,
];

/// How often the invariants are checked.
const SAMPLE: Duration = Duration::from_millis(50);

/// How long backends take to settle after a change: `fall`/`rise` 2 at a
/// 150 ms interval with a 100 ms timeout, with margin.
const SETTLE: Duration = Duration::from_millis(1500);

/// The VPP client's reply timeout (a dropped reply costs this long).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a quiet phase waits for convergence before it gives up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// How long after the last flood or storm ended the daemon's tasks and
/// memory are sampled again (its connections take a moment to end).
const BACKGROUND_LINGER: Duration = Duration::from_secs(2);

/// The longest a priming flood is held waiting for the daemon to take
/// its connections.
const PRIME_WAIT: Duration = Duration::from_secs(5);

/// How long the priming storm lasts.
const PRIME_STORM: Duration = Duration::from_secs(2);

/// How long an operator's call in an intent episode may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a flood or a storm of a chaos window did.
#[derive(Debug)]
enum Background {
    Flood(FloodOutcome),
    Storm(StormOutcome),
}

/// What follows a quiet phase now and then.
#[derive(Debug, Clone, Copy)]
enum Episode {
    /// A restart, with the state file kept (`true`) or lost.
    Restart(bool),
    /// A reload of config variant A (`false`) or B.
    Reload(bool),
}

/// How many panics happened in this process since [`install_panic_counter`].
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts every panic (in any thread or task) on top of the usual report.
fn install_panic_counter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::Relaxed);
            previous(info);
        }));
    });
}

/// The retry delay the daemon may be waiting out after `n` failed batches
/// in a row (its backoff: 1 s, doubling, at most 30 s).
fn backoff_bound(n: u32) -> Duration {
    if n == 0 {
        Duration::ZERO
    } else {
        maglev_core::schedule::RETRY_MIN
            .saturating_mul(1 << (n - 1).min(5))
            .min(maglev_core::schedule::RETRY_MAX)
    }
}

struct Soak {
    opts: Options,
    rng: StdRng,
    start: Instant,
    dir: tempfile::TempDir,
    vpp: Vpp,
    backends: Vec<Arc<Backend>>,
    port: u16,
    runtime: DaemonRuntime,
    daemon: Option<Daemon>,
    client: Option<MaglevClient<tonic::transport::Channel>>,
    watchers: Option<Watchers>,
    /// Events and transitions read by subscribers of earlier daemons.
    watched: (u64, u64),
    /// gRPC actions in flight.
    calls: JoinSet<bool>,
    /// Floods and storms of the current chaos window.
    background: JoinSet<Background>,
    /// Ends them (at the next quiet phase).
    background_stop: CancellationToken,
    /// When the last of them was joined.
    background_ended: Instant,
    /// A flood is running.
    flooding: Arc<AtomicBool>,
    /// The most RSS (KiB) seen while a priming flood held its connections.
    prime_peak: u64,
    /// Where the daemon listens.
    targets: Option<Targets>,
    /// Invariant 5's reader of the daemon's transitions.
    steady: Option<SteadyWatch>,
    /// Invariant 6's runtime weights.
    intent: Intent,
    report: Report,
    journal: Journal,
    drains: Drains,
    /// The valid config variant on disk.
    variant_b: bool,
    /// The last time VPP was unreachable, faulted or warming up.
    dirty_at: Instant,
    /// A fault is pending in the simulator; how long it may hold the
    /// daemon up once it hits.
    pending: Option<Duration>,
    /// Faults that fail a batch without a reconnect since the last quiet
    /// phase (the daemon's backoff grows with them).
    failures: u32,
    baseline_at: Duration,
    last_resource_sample: Instant,
    /// Leaked sessions reported so far (a VPP restart clears them).
    dead_reported: usize,
}

/// Runs a soak and reports what it found (violations included); `Err`
/// only if the world could not be set up.
pub async fn run(opts: Options) -> anyhow::Result<Report> {
    install_panic_counter();
    let panics_before = PANICS.load(Ordering::Relaxed);
    let dir = tempfile::tempdir()?;
    let vpp = Vpp::start(dir.path()).await?;
    let backends = world::backends(opts.net).await?;
    let port = backends[0].addr().port();
    let now = Instant::now();
    let mut soak = Soak {
        rng: StdRng::seed_from_u64(opts.seed),
        start: now,
        vpp,
        backends,
        port,
        runtime: DaemonRuntime::new()?,
        daemon: None,
        client: None,
        watchers: None,
        watched: (0, 0),
        calls: JoinSet::new(),
        background: JoinSet::new(),
        background_stop: CancellationToken::new(),
        background_ended: now,
        flooding: Arc::new(AtomicBool::new(false)),
        prime_peak: 0,
        targets: None,
        steady: None,
        intent: Intent::default(),
        report: Report::new(opts.seed),
        journal: Journal::default(),
        drains: Drains::default(),
        variant_b: false,
        dirty_at: now,
        pending: None,
        failures: 0,
        baseline_at: Duration::from_secs(60.min(opts.seconds / 4)),
        last_resource_sample: now,
        dead_reported: 0,
        dir,
        opts,
    };
    soak.write_config(false);
    soak.start_daemon(true).await?;
    soak.prime().await;
    soak.quiet().await?;
    // Every run has at least one restart with the state file.
    soak.episode(Episode::Restart(true)).await?;
    soak.quiet().await?;
    let total = Duration::from_secs(soak.opts.seconds);
    let mut last_progress = Duration::ZERO;
    while soak.start.elapsed() < total {
        soak.chaos(total).await?;
        let episode = match soak.rng.random_range(0..8u32) {
            0 | 1 => Some(Episode::Restart(soak.rng.random_range(0..3u32) > 0)),
            2 | 3 => Some(Episode::Reload(soak.rng.random_bool(0.5))),
            _ => None,
        };
        soak.quiet().await?;
        if let Some(episode) = episode {
            soak.episode(episode).await?;
            soak.quiet().await?;
        }
        let at = soak.start.elapsed();
        if at - last_progress >= Duration::from_secs(60) {
            last_progress = at;
            soak.report.elapsed = at;
            let line = format!("{:.0} s: {}", at.as_secs_f64(), soak.report.summary());
            if let Some(p) = &soak.opts.progress {
                p(&line);
            }
        }
    }
    soak.finish(panics_before).await;
    Ok(soak.report)
}

impl Soak {
    fn at(&self) -> Duration {
        self.start.elapsed()
    }

    fn note(&mut self, what: impl std::fmt::Display) {
        let at = self.at();
        self.journal.push(at, what);
    }

    /// Records a broken invariant (`invariant` 1 to 6; 0 for anything
    /// else that must not happen) and tells progress one line.
    fn violation(&mut self, invariant: u8, what: String) {
        let at = self.at();
        self.journal.push(at, format!("VIOLATION: {what}"));
        let v = Violation {
            at,
            invariant,
            what,
            before: self.journal.lines(),
        };
        if let Some(p) = &self.opts.progress {
            p(&v.line(self.opts.seed));
        }
        self.report.violations.push(v);
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("maglev.yaml")
    }

    fn write_config(&mut self, b: bool) {
        self.variant_b = b;
        let yaml = world::config_yaml(self.port, self.opts.net, b);
        // The directory is ours; a failed write shows as a refused reload.
        let _ = std::fs::write(self.config_path(), yaml);
    }

    fn handle(&self) -> &maglev_bin::daemon::Handle {
        self.daemon.as_ref().expect("a daemon runs").handle()
    }

    /// Starts a daemon with the state file, which is kept between
    /// restarts; without `with_state` it is deleted first (lost: a cold
    /// start).
    async fn start_daemon(&mut self, with_state: bool) -> anyhow::Result<()> {
        let state = self.dir.path().join("state.json");
        if !with_state {
            let _ = std::fs::remove_file(&state);
        }
        let settings = world::settings(&self.config_path(), self.vpp.sockets(), Some(state));
        let daemon = self
            .runtime
            .start(settings)
            .await
            .context("starting the daemon")?;
        self.steady = Some(SteadyWatch::start(daemon.handle()));
        let addr = *daemon.grpc_addrs().first().context("a gRPC address")?;
        self.targets = Some(Targets {
            grpc: addr,
            metrics: daemon.metrics_addrs().first().copied(),
            http: daemon.http_addrs().first().copied(),
        });
        self.client = Some(world::client(addr).await?);
        self.watchers = Some(world::watchers(addr, READERS).await?);
        self.daemon = Some(daemon);
        self.dirty_at = Instant::now();
        self.note(format!(
            "daemon started ({} state file)",
            if with_state { "with" } else { "without" }
        ));
        Ok(())
    }

    async fn stop_daemon(&mut self) {
        self.check_steady();
        if let Some(s) = self.steady.take() {
            self.report.lost_events += s.lost();
        }
        self.targets = None;
        if let Some(w) = self.watchers.take() {
            self.watched.0 += w.read.load(Ordering::Relaxed);
            self.watched.1 += w.transitions.load(Ordering::Relaxed);
        }
        self.client = None;
        while self.calls.join_next().await.is_some() {}
        if let Some(d) = self.daemon.take() {
            self.runtime.stop(d).await;
        }
        self.note("daemon stopped");
    }

    /// One chaos window: 3 to 8 s of actions every 100 to 600 ms.
    async fn chaos(&mut self, total: Duration) -> anyhow::Result<()> {
        let window = Duration::from_millis(self.rng.random_range(3000..8000));
        let end = Instant::now() + window.min(total.saturating_sub(self.at()));
        self.note(format!("chaos window of {:.1} s", window.as_secs_f64()));
        while Instant::now() < end {
            let action = faults::draw(&mut self.rng);
            let pause = Duration::from_millis(self.rng.random_range(100..600));
            self.apply(action).await?;
            self.sample_for(pause).await;
        }
        Ok(())
    }

    async fn apply(&mut self, action: Action) -> anyhow::Result<()> {
        self.note(&action);
        let kind = action.kind();
        if action.is_fault() {
            *self.report.faults.entry(kind).or_default() += 1;
        } else {
            *self.report.actions.entry(kind).or_default() += 1;
        }
        let Some(client) = self.client.clone() else {
            return Ok(());
        };
        match action {
            Action::Backend(i, mode) => {
                if let Err(e) = self.backends[i].set(mode).await {
                    self.note(format!("backend b{i}: {e}"));
                }
            }
            Action::Vpp { message, action } => {
                let hold = match action {
                    FaultAction::Delay(d) => Some(d),
                    FaultAction::DropReply => Some(CLIENT_TIMEOUT),
                    _ => Some(Duration::ZERO),
                };
                if matches!(
                    action,
                    FaultAction::Delay(_) | FaultAction::DropReply | FaultAction::Retval(_)
                ) {
                    self.failures += 1;
                }
                self.pending = self.pending.max(hold);
                self.vpp.sim.inject(Fault {
                    message,
                    action,
                    times: 1,
                });
            }
            Action::VppRestart => {
                self.check_sessions();
                self.vpp.restart().await?;
                self.dead_reported = 0;
                self.failures = 0;
                self.pending = None;
            }
            Action::StatsReplaced => {
                self.vpp.replace_stats().await?;
                self.pending = self.pending.max(Some(Duration::ZERO));
                self.vpp.sim.inject(Fault {
                    message: None,
                    action: FaultAction::CloseSocket,
                    times: 1,
                });
            }
            Action::Flood {
                listener,
                conns,
                hold,
            } => {
                let Some(t) = self.targets else { return Ok(()) };
                let addr = match listener {
                    Listener::Grpc => Some(t.grpc),
                    Listener::Metrics => t.metrics,
                    Listener::Dashboard => t.http,
                };
                // One flood at a time: no more than the priming flood
                // (invariant 4's baseline) ever held at once.
                if self.flooding.load(Ordering::Relaxed) {
                    self.note("flood skipped: one is running");
                    return Ok(());
                }
                let conns = flood::budget(conns);
                if let (Some(addr), true) = (addr, conns > 0) {
                    let stop = self.background_stop.clone();
                    let flooding = self.flooding.clone();
                    flooding.store(true, Ordering::Relaxed);
                    self.background.spawn(async move {
                        let f = flood::flood(addr, conns, hold, stop).await;
                        flooding.store(false, Ordering::Relaxed);
                        Background::Flood(f)
                    });
                    self.report.floods.0 += u64::from(conns);
                }
            }
            Action::Storm { readers, lasting } => {
                let Some(t) = self.targets else { return Ok(()) };
                let stop = self.background_stop.clone();
                self.background.spawn(async move {
                    Background::Storm(storm::storm(t, readers, lasting, stop).await)
                });
            }
            Action::Pause(b) => self.call(client, move |mut c| async move {
                c.pause_backend(backend_request(b)).await.is_ok()
            }),
            Action::Resume(b) => self.call(client, move |mut c| async move {
                c.resume_backend(backend_request(b)).await.is_ok()
            }),
            Action::Disable(b) => self.call(client, move |mut c| async move {
                c.disable_backend(backend_request(b)).await.is_ok()
            }),
            Action::Enable(b) => self.call(client, move |mut c| async move {
                c.enable_backend(backend_request(b)).await.is_ok()
            }),
            Action::Weight {
                frontend,
                pool,
                backend,
                weight,
                flush,
            } => {
                // Concurrent calls and reloads land in an order the soak
                // does not see.
                self.intent.unsure((frontend, pool, backend));
                self.call(client, move |mut c| async move {
                    c.set_frontend_pool_backend_weight(proto::SetWeightRequest {
                        frontend: frontend.to_owned(),
                        pool: pool.to_owned(),
                        backend: world::backend_name(backend),
                        weight,
                        flush,
                    })
                    .await
                    .is_ok()
                });
            }
            Action::Sync(frontend) => self.call(client, move |mut c| async move {
                c.sync_vpplb_state(proto::SyncVpplbStateRequest {
                    frontend: frontend.unwrap_or_default().to_owned(),
                })
                .await
                .is_ok()
            }),
            Action::Reload(b) => {
                let from = self.file_config();
                self.write_config(b);
                let to = self.file_config();
                self.intent.reloaded(&from, &to);
                self.call(client, |mut c| async move {
                    c.reload_config(proto::ReloadConfigRequest::default())
                        .await
                        .is_ok_and(|r| r.into_inner().ok)
                });
            }
            Action::ReloadInvalid(i) => {
                let _ = std::fs::write(self.config_path(), world::INVALID_CONFIGS[i]);
                let mut c = client;
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.reload_config(proto::ReloadConfigRequest::default()),
                )
                .await;
                let b = self.variant_b;
                self.write_config(b);
                match r {
                    Ok(Ok(r)) if r.get_ref().ok => {
                        self.violation(0, format!("invalid config {i} was accepted by a reload"));
                    }
                    Ok(_) => self.report.refused += 1,
                    Err(_) => self.violation(0, "a refused reload took over 10 s".to_owned()),
                }
            }
        }
        Ok(())
    }

    /// Runs a gRPC call in the background (it may wait for a sync).
    fn call<F, Fut>(&mut self, client: MaglevClient<tonic::transport::Channel>, f: F)
    where
        F: FnOnce(MaglevClient<tonic::transport::Channel>) -> Fut,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.calls.spawn(f(client));
    }

    /// Waits for the gRPC calls in flight, counting refusals.
    async fn join_calls(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let next = tokio::time::timeout_at(deadline, self.calls.join_next()).await;
            match next {
                Ok(Some(Ok(true))) => {}
                Ok(Some(_)) => self.report.refused += 1,
                Ok(None) => return,
                Err(_) => {
                    self.violation(
                        0,
                        "gRPC calls still waiting 40 s after faults stopped".to_owned(),
                    );
                    self.calls.abort_all();
                }
            }
        }
    }

    /// Samples the invariants every [`SAMPLE`] for `d`.
    async fn sample_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            self.sample();
            let now = Instant::now();
            if now >= end {
                return;
            }
            tokio::time::sleep(SAMPLE.min(end - now)).await;
        }
    }

    /// One check of the invariants that hold at all times.
    fn sample(&mut self) {
        let Some(daemon) = &self.daemon else { return };
        let handle = daemon.handle().clone();
        let now = Instant::now();
        while let Some(Ok(ok)) = self.calls.try_join_next() {
            if !ok {
                self.report.refused += 1;
            }
        }
        self.check_steady();
        // Invariant 1, while VPP is reachable.
        let pending = self.vpp.sim.pending_faults();
        if pending == 0
            && let Some(hold) = self.pending.take()
        {
            self.dirty_at = self.dirty_at.max(now + hold);
        }
        let reachable =
            handle.vpp().is_ok() && pending == 0 && handle.warmup_phase() == Phase::Finished;
        if !reachable {
            self.dirty_at = self.dirty_at.max(now);
        }
        let observed = invariants::observed(&self.vpp.sim);
        let from = reachable.then(|| self.dirty_at + backoff_bound(self.failures));
        for v in self.drains.check(&handle, &observed, now, from) {
            self.violation(1, v);
        }
        // Invariant 4: sessions, tasks, memory.
        self.check_sessions();
        // Connections a flood or a storm holds are tasks and memory of the
        // daemon's for as long as they last: sampled only once they have
        // been closed for a while.
        let calm = self.background.is_empty()
            && now.duration_since(self.background_ended) >= BACKGROUND_LINGER;
        if calm && now.duration_since(self.last_resource_sample) >= Duration::from_secs(1) {
            self.last_resource_sample = now;
            let tasks = self.runtime.tasks();
            if self.report.tasks.0 == 0 {
                if self.at() >= self.baseline_at {
                    self.report.tasks.0 = tasks;
                    // The allocator may keep what a flood's connections
                    // freed, up to what the largest flood needed.
                    self.report.rss.0 = invariants::rss_kib().max(self.prime_peak);
                    self.note(format!(
                        "baseline: {tasks} daemon tasks, {} KiB RSS",
                        self.report.rss.0
                    ));
                }
            } else if tasks > 2 * self.report.tasks.0 + 100 {
                self.violation(
                    4,
                    format!(
                        "invariant 4: {tasks} tasks alive on the daemon's runtimes (baseline {})",
                        self.report.tasks.0
                    ),
                );
                // Once per doubling.
                self.report.tasks.0 = tasks;
            }
            self.report.tasks.1 = self.report.tasks.1.max(tasks);
        }
    }

    /// Invariant 4: at most two API registrations of each name (one while
    /// reconnecting) and no leaked one.
    fn check_sessions(&mut self) {
        let clients = self.vpp.sim.clients();
        self.report.max_sessions = self.report.max_sessions.max(clients.live.len());
        if clients.dead.len() > self.dead_reported {
            self.dead_reported = clients.dead.len();
            let dead = clients.dead.clone();
            self.violation(4, format!("invariant 4: leaked VPP sessions {dead:?}"));
        }
        // Per client name (the daemon may hold one connection for its
        // changes and one for readers): the one open, and its replacement
        // while reconnecting.
        let mut by_name = std::collections::BTreeMap::<&str, usize>::new();
        for name in &clients.live {
            *by_name.entry(name.as_str()).or_default() += 1;
        }
        if let Some((name, n)) = by_name.into_iter().find(|(_, n)| *n > 2) {
            let what = format!(
                "invariant 4: {n} API sessions named {name:?} open at once: {:?}",
                clients.live
            );
            self.violation(4, what);
        }
    }

    /// A quiet phase: faults stop (floods and storms end), backends settle
    /// in a mode each (drawn: healthy, failing or refusing), and VPP must
    /// hold the desired state within one sync interval (plus the time the
    /// last fault and the daemon's retry backoff may hold it).
    async fn quiet(&mut self) -> anyhow::Result<()> {
        let modes: Vec<Mode> = (0..self.backends.len())
            .map(|_| match self.rng.random_range(0..10u32) {
                0 => Mode::Failing,
                1 => Mode::Refuse,
                _ => Mode::Healthy,
            })
            .collect();
        self.vpp.sim.clear_faults();
        let t0 = Instant::now();
        self.note(format!(
            "quiet: faults stop ({} KiB RSS, {} daemon tasks)",
            invariants::rss_kib(),
            self.runtime.tasks()
        ));
        self.join_background().await;
        for (b, m) in self.backends.clone().iter().zip(&modes) {
            if let Err(e) = b.set(*m).await {
                self.note(format!("backend {}: {e}", b.addr()));
            }
        }
        let hold = self.pending.take().unwrap_or_default();
        self.join_calls().await;
        // A fault that hit just before may still hold the daemon up (a
        // dropped reply costs the client's 5 s timeout; `dirty_at` is then
        // in the future), and the failed batch is retried after the
        // daemon's backoff.
        let overhang = hold.max(self.dirty_at.saturating_duration_since(t0));
        let bound = world::SYNC_INTERVAL.max(overhang + backoff_bound(self.failures)) + SETTLE;
        if let Some(ms) = self.converge(t0, &modes, Some(bound)).await {
            let _ = self.report.convergence.record(ms);
        }
        self.failures = 0;
        Ok(())
    }

    /// Waits (sampling) until the backends agree with `modes` and VPP
    /// holds the desired state; returns the milliseconds since `t0`, or
    /// `None` after [`GIVE_UP`]. Past `bound`, invariant 2 is broken.
    async fn converge(
        &mut self,
        t0: Instant,
        modes: &[Mode],
        bound: Option<Duration>,
    ) -> Option<u64> {
        let mut late = false;
        loop {
            self.sample();
            let elapsed = t0.elapsed();
            let handle = self.handle().clone();
            let settled = self.settled(&handle, modes);
            let ready = handle.vpp().is_ok() && handle.warmup_phase() == Phase::Finished;
            let ops = if ready {
                invariants::converged(&handle, &self.vpp.sim)
            } else {
                Vec::new()
            };
            if settled && ready && ops.is_empty() {
                let ms = elapsed.as_millis().max(1) as u64;
                self.note(format!("converged in {ms} ms"));
                return Some(ms);
            }
            if let Some(bound) = bound
                && !late
                && elapsed > bound
            {
                late = true;
                self.violation(2, format!(
                    "invariant 2: VPP does not hold the desired state {:.1} s after faults stopped \
                     (bound {:.1} s; settled {settled}, VPP connected {}, warm-up {:?}); ops still needed: {}",
                    elapsed.as_secs_f64(),
                    bound.as_secs_f64(),
                    handle.vpp().is_ok(),
                    handle.warmup_phase(),
                    ops.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join("; ")
                ));
            }
            if elapsed > GIVE_UP {
                self.note("gave up waiting for convergence");
                return None;
            }
            tokio::time::sleep(SAMPLE).await;
        }
    }

    /// Ends the floods and storms of the last chaos window and adds up
    /// what they did.
    async fn join_background(&mut self) {
        if self.background.is_empty() {
            return;
        }
        self.background_stop.cancel();
        while let Some(r) = self.background.join_next().await {
            match r {
                Ok(Background::Flood(f)) => {
                    self.report.floods.1 += f.opened;
                    self.report.floods.2 += f.failed;
                }
                Ok(Background::Storm(s)) => {
                    self.report.storms.0 += s.answered;
                    self.report.storms.1 += s.failed;
                    self.report.storms.2 = self.report.storms.2.max(s.slowest);
                }
                Err(_) => {}
            }
        }
        self.background_stop = CancellationToken::new();
        self.background_ended = Instant::now();
    }

    /// Before the baseline of invariant 4: the largest flood the budget
    /// allows on each listener in turn, held until the daemon has taken
    /// what it will of it (its task count stops growing), then a storm of
    /// 12 readers, so that the baseline's memory includes what the largest
    /// of them costs (freed memory the allocator keeps is not growth).
    async fn prime(&mut self) {
        let Some(t) = self.targets else { return };
        for addr in [Some(t.grpc), t.metrics, t.http].into_iter().flatten() {
            let stop = CancellationToken::new();
            let asked = flood::budget(flood::MAX_FLOOD);
            let (conns, f) = flood::open(addr, asked, &stop).await;
            self.tasks_settle().await;
            self.prime_peak = self.prime_peak.max(invariants::rss_kib());
            flood::close(conns);
            self.note(format!("priming flood of {addr}: {f:?}"));
            self.report.floods.0 += u64::from(asked);
            self.report.floods.1 += f.opened;
            self.report.floods.2 += f.failed;
        }
        let s = storm::storm(t, 12, PRIME_STORM, CancellationToken::new()).await;
        self.note(format!("priming storm: {s:?}"));
        self.report.storms.0 += s.answered;
        self.report.storms.1 += s.failed;
        self.report.storms.2 = self.report.storms.2.max(s.slowest);
        self.background_ended = Instant::now();
        let rss = invariants::rss_kib();
        self.note(format!(
            "primed: {rss} KiB RSS, {} KiB at the floods' peak",
            self.prime_peak
        ));
    }

    /// Waits (polling, at most [`PRIME_WAIT`]) until the daemon's task
    /// count has not changed for half a second.
    async fn tasks_settle(&mut self) {
        let deadline = Instant::now() + PRIME_WAIT;
        let mut last = self.runtime.tasks();
        let mut same = 0;
        while same < 5 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = self.runtime.tasks();
            same = if n == last { same + 1 } else { 0 };
            last = n;
        }
    }

    /// Invariant 5: the transitions away from `up` read since the last
    /// check, each against how long its backend had been healthy.
    fn check_steady(&mut self) {
        let Some(watch) = self.steady.as_mut() else {
            return;
        };
        let left = watch.drain();
        for l in left {
            self.report.left_up += 1;
            let since = l
                .backend
                .strip_prefix('b')
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| self.backends.get(i))
                .and_then(|b| b.healthy_since());
            if steady::breaks(since, &l) {
                let secs = |t: Instant| t.saturating_duration_since(self.start).as_secs_f64();
                let what = format!(
                    "invariant 5: backend {} went {} at {:.3} s though its target has answered \
                     200 at once since {:.3} s: {}",
                    l.backend,
                    l.to,
                    secs(l.at),
                    since.map_or(0.0, secs),
                    l.why
                );
                self.violation(5, what);
            }
        }
    }

    /// The config file's current variant, as the daemon reads it.
    fn file_config(&self) -> maglev_core::config::Config {
        world::file_config(self.port, self.opts.net, self.variant_b)
    }

    /// One operator call of an intent episode, waited for; whether the
    /// daemon accepted it.
    async fn op<F, Fut>(&mut self, kind: &'static str, f: F) -> bool
    where
        F: FnOnce(MaglevClient<tonic::transport::Channel>) -> Fut,
        Fut: Future<Output = bool>,
    {
        *self.report.actions.entry(kind).or_default() += 1;
        let Some(client) = self.client.clone() else {
            return false;
        };
        let ok = tokio::time::timeout(CALL_TIMEOUT, f(client))
            .await
            .unwrap_or(false);
        if !ok {
            self.report.refused += 1;
        }
        ok
    }

    /// An intent episode after a quiet phase: an operator undoes some of
    /// what was done before (enable, resume, the file's weight back), then
    /// disables, pauses and sets weights of random backends, one call at
    /// a time; once VPP holds all of it, the daemon restarts or reloads,
    /// and once VPP holds the desired state again, the operator's intent
    /// must still be there (invariant 6).
    async fn episode(&mut self, episode: Episode) -> anyhow::Result<()> {
        self.note(format!("intent episode: {episode:?}"));
        self.intent_actions().await;
        let modes: Vec<Mode> = self.backends.iter().map(|b| b.mode()).collect();
        self.converge(Instant::now(), &modes, None).await;
        let before = intent::operator_states(self.handle());
        let what = match episode {
            Episode::Restart(with_state) => {
                self.restart(with_state).await?;
                if !with_state {
                    // Nothing to keep intent in: a cold start.
                    self.intent.forget();
                }
                if with_state {
                    "a restart with the state file"
                } else {
                    "a restart without it"
                }
            }
            Episode::Reload(b) => {
                *self.report.actions.entry("intent-reload").or_default() += 1;
                let was_b = self.variant_b;
                let from = self.file_config();
                self.write_config(b);
                let to = self.file_config();
                let answer = match self.client.clone() {
                    Some(mut c) => tokio::time::timeout(
                        CALL_TIMEOUT,
                        c.reload_config(proto::ReloadConfigRequest::default()),
                    )
                    .await
                    .map_err(|_| "no answer in time".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map(tonic::Response::into_inner),
                    None => Err("no client".to_owned()),
                };
                match answer {
                    Ok(r) if r.ok => self.intent.reloaded(&from, &to),
                    refused => {
                        // A reload to the other variant deletes a VIP, which
                        // a guard against deleting reloads may refuse; a
                        // reload of the same variant deletes nothing.
                        self.report.refused += 1;
                        let why = match refused {
                            Ok(r) => format!("{}{}", r.parse_error, r.semantic_error),
                            Err(e) => e,
                        };
                        self.write_config(was_b);
                        if b == was_b {
                            self.violation(
                                0,
                                format!("a reload of the running config was refused: {why}"),
                            );
                        } else {
                            self.note(format!("reload to the other variant refused: {why}"));
                        }
                        return Ok(());
                    }
                }
                "a reload"
            }
        };
        self.converge(Instant::now(), &modes, None).await;
        if matches!(episode, Episode::Restart(false)) {
            return Ok(());
        }
        self.report.intent_checks += 1;
        let file = self.file_config();
        let handle = self.handle().clone();
        let broken = intent::check(what, &before, &self.intent, &file, &handle, &self.vpp.sim);
        for v in broken {
            self.violation(6, v);
        }
        Ok(())
    }

    /// The operator's side of an intent episode. The RNG draws the same
    /// number of values whatever the daemon's state, so a seed replays
    /// the same sequence.
    async fn intent_actions(&mut self) {
        let states = self.handle().backends();
        for i in 0..self.backends.len() {
            let undo = self.rng.random_bool(0.5);
            let name = world::backend_name(i);
            match states.get(name.as_str()).map(|s| s.state) {
                Some(BackendState::Disabled) if undo => {
                    self.op("intent-enable", move |mut c| async move {
                        c.enable_backend(backend_request(i)).await.is_ok()
                    })
                    .await;
                }
                Some(BackendState::Paused) if undo => {
                    self.op("intent-resume", move |mut c| async move {
                        c.resume_backend(backend_request(i)).await.is_ok()
                    })
                    .await;
                }
                _ => {}
            }
        }
        let file = self.file_config();
        let set: Vec<(intent::Member, u8)> = self.intent.sure().collect();
        for &m in faults::POOL_MEMBERS {
            let undo = self.rng.random_bool(0.5);
            let Some(w) = intent::file_weight(&file, m) else {
                continue;
            };
            if undo && set.iter().any(|(s, v)| *s == m && *v != w) {
                self.set_weight(m, w, "intent-weight-back").await;
            }
        }
        let disable = self.rng.random_range(0..=1u32);
        for _ in 0..disable {
            let b = self.rng.random_range(0..self.backends.len());
            self.op("intent-disable", move |mut c| async move {
                c.disable_backend(backend_request(b)).await.is_ok()
            })
            .await;
        }
        let pause = self.rng.random_range(0..=2u32);
        for _ in 0..pause {
            let b = self.rng.random_range(0..self.backends.len());
            self.op("intent-pause", move |mut c| async move {
                c.pause_backend(backend_request(b)).await.is_ok()
            })
            .await;
        }
        let weights = self.rng.random_range(1..=2u32);
        for _ in 0..weights {
            let m = faults::POOL_MEMBERS[self.rng.random_range(0..faults::POOL_MEMBERS.len())];
            let w = self.rng.random_range(1..=100u8);
            self.set_weight(m, w, "intent-weight").await;
        }
    }

    /// Sets a runtime weight (no flush), waited for; the intent follows
    /// what the daemon accepted.
    async fn set_weight(&mut self, m: intent::Member, weight: u8, kind: &'static str) {
        let (frontend, pool, backend) = m;
        let ok = self
            .op(kind, move |mut c| async move {
                c.set_frontend_pool_backend_weight(proto::SetWeightRequest {
                    frontend: frontend.to_owned(),
                    pool: pool.to_owned(),
                    backend: world::backend_name(backend),
                    weight: u32::from(weight),
                    flush: false,
                })
                .await
                .is_ok()
            })
            .await;
        if ok {
            self.intent.set(m, weight);
        }
    }

    /// Whether every backend's state agrees with its mode (operator
    /// states count as settled) and none is slow-starting.
    fn settled(&self, handle: &maglev_bin::daemon::Handle, modes: &[Mode]) -> bool {
        let snapshot = handle.backends();
        (0..self.backends.len()).all(|i| {
            let Some(s) = snapshot.get(world::backend_name(i).as_str()) else {
                return true;
            };
            let want = if modes[i] == Mode::Healthy {
                BackendState::Up
            } else {
                BackendState::Down
            };
            let state_ok =
                matches!(s.state, BackendState::Paused | BackendState::Disabled) || s.state == want;
            state_ok
                && s.ramp
                    .as_deref()
                    .is_none_or(|r| r.next_step_at(Instant::now()).is_none())
        })
    }

    /// A daemon restart (with the state file kept, or lost) in an intent
    /// episode: through the warm-up that follows, no weight VPP held may
    /// be lowered (invariant 3), except weights an operator set.
    async fn restart(&mut self, with_state: bool) -> anyhow::Result<()> {
        *self.report.faults.entry("daemon-restart").or_default() += 1;
        if with_state {
            self.report.restarts.0 += 1;
        } else {
            self.report.restarts.1 += 1;
        }
        let mut before = invariants::weights(&invariants::observed(&self.vpp.sim));
        // A weight an operator set is invariant 6's (kept with the state
        // file, legitimately lost without it), not warm-up's.
        let config = self.handle().config();
        before.retain(|(key, address), _| {
            !config.frontends().iter().any(|(name, fe)| {
                fe.vip_key() == *key
                    && (0..self.backends.len()).any(|i| {
                        self.intent.touches(name, i)
                            && config
                                .backend(&world::backend_name(i))
                                .is_some_and(|b| b.address == *address)
                    })
            })
        });
        self.stop_daemon().await;
        self.start_daemon(with_state).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut reported = false;
        while self.handle().warmup_phase() != Phase::Finished && Instant::now() < deadline {
            self.sample();
            let lowered = invariants::lowered(&before, &invariants::observed(&self.vpp.sim));
            if !lowered.is_empty() && !reported {
                reported = true;
                self.violation(3, format!(
                    "invariant 3: weights lowered during warm-up after a restart {} a state file: {}",
                    if with_state { "with" } else { "without" },
                    lowered
                        .iter()
                        .map(|(k, a, w, n)| format!("{k} {a} {w}->{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            tokio::time::sleep(SAMPLE).await;
        }
        Ok(())
    }

    /// The end: resources against the baseline, panics, totals.
    async fn finish(&mut self, panics_before: u64) {
        self.join_background().await;
        // The connections of the last flood take a moment to end.
        self.sample_for(BACKGROUND_LINGER).await;
        self.report.rss.1 = invariants::rss_kib();
        let (base, end) = self.report.rss;
        if base > 0 && end * 10 > base * 12 {
            self.violation(
                4,
                format!(
                    "invariant 4: RSS grew from {base} KiB after warm-up to {end} KiB (over 1.2x)"
                ),
            );
        }
        let panics = PANICS.load(Ordering::Relaxed) - panics_before;
        if panics > 0 {
            self.violation(4, format!("invariant 4: {panics} panics"));
        }
        self.check_sessions();
        self.stop_daemon().await;
        self.report.watched = self.watched.0;
        self.report.transitions = self.watched.1;
        self.report.elapsed = self.at();
        for b in &self.backends {
            b.stop();
        }
    }
}

fn backend_request(b: usize) -> proto::BackendRequest {
    proto::BackendRequest {
        name: world::backend_name(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_bound_follows_the_daemons_retry_delays() {
        let s = Duration::from_secs;
        let bounds: Vec<Duration> = (0..8).map(backoff_bound).collect();
        assert_eq!(bounds, [0, 1, 2, 4, 8, 16, 30, 30].map(s));
    }
}
