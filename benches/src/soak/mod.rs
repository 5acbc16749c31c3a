//! The chaos soak: the real daemon in-process against the VPP simulator and
//! loopback backends, driven by a seeded RNG through chaos windows (backend
//! flaps, stalls, slow and refused answers; simulator faults, VPP restarts,
//! stats segment replacements; operator actions and reloads over gRPC)
//! and quiet phases (faults stop, backends settle, convergence is timed,
//! sometimes the daemon restarts), with `WatchEvents` subscribers that read
//! fast, slowly or never, while the invariants of [`invariants`] are
//! checked every 50 ms.
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
//! - [`invariants`]: desired vs held state and the checks.
//! - [`report`]: the counts, the summary line and the journal.

pub mod backends;
pub mod faults;
pub mod invariants;
pub mod report;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
use faults::Action;
use invariants::Drains;
use report::{Journal, Report, Violation};
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
    soak.quiet(false).await?;
    let total = Duration::from_secs(soak.opts.seconds);
    let mut last_progress = Duration::ZERO;
    while soak.start.elapsed() < total {
        soak.chaos(total).await?;
        let restart = soak.rng.random_bool(0.25);
        let with_state = soak.rng.random_bool(0.5);
        soak.quiet(restart).await?;
        if restart {
            soak.restart(with_state).await?;
            soak.quiet(false).await?;
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

    fn violation(&mut self, what: String) {
        let at = self.at();
        self.journal.push(at, format!("VIOLATION: {what}"));
        if let Some(p) = &self.opts.progress {
            p(&format!(
                "{:.1} s: VIOLATION (seed {}): {what}\n  {}",
                at.as_secs_f64(),
                self.opts.seed,
                self.journal.lines().join("\n  ")
            ));
        }
        self.report.violations.push(Violation {
            at,
            what,
            before: self.journal.lines(),
        });
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

    async fn start_daemon(&mut self, with_state: bool) -> anyhow::Result<()> {
        let state = with_state.then(|| self.dir.path().join("state.json"));
        let settings = world::settings(&self.config_path(), self.vpp.sockets(), state);
        let daemon = self
            .runtime
            .start(settings)
            .await
            .context("starting the daemon")?;
        let addr = *daemon.grpc_addrs().first().context("a gRPC address")?;
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
            } => self.call(client, move |mut c| async move {
                c.set_frontend_pool_backend_weight(proto::SetWeightRequest {
                    frontend: frontend.to_owned(),
                    pool: pool.to_owned(),
                    backend: world::backend_name(backend),
                    weight,
                    flush,
                })
                .await
                .is_ok()
            }),
            Action::Sync(frontend) => self.call(client, move |mut c| async move {
                c.sync_vpplb_state(proto::SyncVpplbStateRequest {
                    frontend: frontend.unwrap_or_default().to_owned(),
                })
                .await
                .is_ok()
            }),
            Action::Reload(b) => {
                self.write_config(b);
                self.call(client, |mut c| async move {
                    c.reload_config(proto::ReloadConfigRequest {})
                        .await
                        .is_ok_and(|r| r.into_inner().ok)
                });
            }
            Action::ReloadInvalid(i) => {
                let _ = std::fs::write(self.config_path(), world::INVALID_CONFIGS[i]);
                let mut c = client;
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.reload_config(proto::ReloadConfigRequest {}),
                )
                .await;
                let b = self.variant_b;
                self.write_config(b);
                match r {
                    Ok(Ok(r)) if r.get_ref().ok => {
                        self.violation(format!("invalid config {i} was accepted by a reload"));
                    }
                    Ok(_) => self.report.refused += 1,
                    Err(_) => self.violation("a refused reload took over 10 s".to_owned()),
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
                    self.violation("gRPC calls still waiting 40 s after faults stopped".to_owned());
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
            self.violation(v);
        }
        // Invariant 4: sessions, tasks, memory.
        self.check_sessions();
        if now.duration_since(self.last_resource_sample) >= Duration::from_secs(1) {
            self.last_resource_sample = now;
            let tasks = self.runtime.tasks();
            if self.report.tasks.0 == 0 {
                if self.at() >= self.baseline_at {
                    self.report.tasks.0 = tasks;
                    self.report.rss.0 = invariants::rss_kib();
                    self.note(format!(
                        "baseline: {tasks} daemon tasks, {} KiB RSS",
                        self.report.rss.0
                    ));
                }
            } else if tasks > 2 * self.report.tasks.0 + 100 {
                self.violation(format!(
                    "invariant 4: {tasks} tasks alive on the daemon's runtimes (baseline {})",
                    self.report.tasks.0
                ));
                // Once per doubling.
                self.report.tasks.0 = tasks;
            }
            self.report.tasks.1 = self.report.tasks.1.max(tasks);
        }
    }

    /// Invariant 4: at most four API registrations (the daemon's two,
    /// `vpp-maglev` and `vpp-maglev-reads`, each with one more while
    /// reconnecting) and no leaked one.
    fn check_sessions(&mut self) {
        let clients = self.vpp.sim.clients();
        self.report.max_sessions = self.report.max_sessions.max(clients.live.len());
        if clients.dead.len() > self.dead_reported {
            self.dead_reported = clients.dead.len();
            let dead = clients.dead.clone();
            self.violation(format!("invariant 4: leaked VPP sessions {dead:?}"));
        }
        if clients.live.len() > 4 {
            self.violation(format!(
                "invariant 4: {} API sessions open at once: {:?}",
                clients.live.len(),
                clients.live
            ));
        }
    }

    /// A quiet phase: faults stop, backends settle in a mode each (drawn:
    /// healthy, failing or refusing), and VPP must hold the desired state
    /// within one sync interval (plus the time the last fault and the
    /// daemon's retry backoff may hold it). With `before_restart`, the
    /// file's config is reloaded first (an operator's weight changes are
    /// not kept across restarts).
    async fn quiet(&mut self, before_restart: bool) -> anyhow::Result<()> {
        let modes: Vec<Mode> = (0..self.backends.len())
            .map(|_| match self.rng.random_range(0..10u32) {
                0 => Mode::Failing,
                1 => Mode::Refuse,
                _ => Mode::Healthy,
            })
            .collect();
        self.vpp.sim.clear_faults();
        let t0 = Instant::now();
        self.note("quiet: faults stop");
        for (b, m) in self.backends.clone().iter().zip(&modes) {
            if let Err(e) = b.set(*m).await {
                self.note(format!("backend {}: {e}", b.addr()));
            }
        }
        let hold = self.pending.take().unwrap_or_default();
        self.join_calls().await;
        if before_restart && let Some(mut c) = self.client.clone() {
            let ok = c
                .reload_config(proto::ReloadConfigRequest {})
                .await
                .is_ok_and(|r| r.into_inner().ok);
            if !ok {
                self.violation("the valid config on disk was refused".to_owned());
            }
        }
        // A fault that hit just before may still hold the daemon up (a
        // dropped reply costs the client's 5 s timeout; `dirty_at` is then
        // in the future), and the failed batch is retried after the
        // daemon's backoff.
        let overhang = hold.max(self.dirty_at.saturating_duration_since(t0));
        let bound = world::SYNC_INTERVAL.max(overhang + backoff_bound(self.failures)) + SETTLE;
        let mut late = false;
        loop {
            self.sample();
            let elapsed = t0.elapsed();
            let handle = self.handle().clone();
            let settled = self.settled(&handle, &modes);
            let ready = handle.vpp().is_ok() && handle.warmup_phase() == Phase::Finished;
            let ops = if ready {
                invariants::converged(&handle, &self.vpp.sim)
            } else {
                Vec::new()
            };
            if settled && ready && ops.is_empty() {
                let ms = elapsed.as_millis().max(1) as u64;
                let _ = self.report.convergence.record(ms);
                self.note(format!("converged in {ms} ms"));
                break;
            }
            if !late && elapsed > bound {
                late = true;
                self.violation(format!(
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
                break;
            }
            tokio::time::sleep(SAMPLE).await;
        }
        self.failures = 0;
        Ok(())
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
                    .is_none_or(|r| r.next_step_at(Instant::now()).is_none())
        })
    }

    /// A daemon restart (with or without the state file) after a quiet
    /// phase: through the warm-up that follows, no weight VPP held may be
    /// lowered (invariant 3).
    async fn restart(&mut self, with_state: bool) -> anyhow::Result<()> {
        *self.report.faults.entry("daemon-restart").or_default() += 1;
        if with_state {
            self.report.restarts.0 += 1;
        } else {
            self.report.restarts.1 += 1;
        }
        let before = invariants::weights(&invariants::observed(&self.vpp.sim));
        self.stop_daemon().await;
        self.start_daemon(with_state).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut reported = false;
        while self.handle().warmup_phase() != Phase::Finished && Instant::now() < deadline {
            self.sample();
            let lowered = invariants::lowered(&before, &invariants::observed(&self.vpp.sim));
            if !lowered.is_empty() && !reported {
                reported = true;
                self.violation(format!(
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
        self.report.rss.1 = invariants::rss_kib();
        let (base, end) = self.report.rss;
        if base > 0 && end * 10 > base * 12 {
            self.violation(format!(
                "invariant 4: RSS grew from {base} KiB after warm-up to {end} KiB (over 1.2x)"
            ));
        }
        let panics = PANICS.load(Ordering::Relaxed) - panics_before;
        if panics > 0 {
            self.violation(format!("invariant 4: {panics} panics"));
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
