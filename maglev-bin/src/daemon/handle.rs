//! [`Handle`]: the daemon's one API. gRPC, `/metrics`, the web page and
//! embedders read state and ask for changes through it; it owns the
//! shared state the daemon's tasks publish into.
//!
//! Reads are lock-free snapshots (the config, the checker's statuses, the
//! VPP link, the counters); operator actions go to the checker or mark
//! work for the reconciler, never to VPP directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use arc_swap::{ArcSwap, ArcSwapOption};
use maglev_core::config::Config;
use maglev_core::dataplane::VipKey;
use maglev_core::frontend::FrontendStates;
use maglev_core::state::{BackendState, FrontendState};
use maglev_core::warmup::Phase;
use maglev_core::weights::Serving;
use maglev_health::Checker;
use maglev_health::persist::{Intent, SavedIntent, SavedOverrides, SavedWeight};
use maglev_health::status::BackendStatus;
use maglev_vpp::lb::ops::LbSnapshot;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::WallClock;
use crate::daemon::Parts;
use crate::daemon::beats::{Beat, Observers};
use crate::daemon::counters::CounterSnapshot;
use crate::daemon::error::DaemonError;
use crate::daemon::overrides::{self, Override, OverrideKey};
use crate::daemon::pools::PoolChoices;
use crate::daemon::reads::{Dump, ReadStats};
use crate::daemon::reconciler::{Control, SyncReport, SyncScope, plan_batch};
use crate::daemon::reload::{self, ConfigReport};
use crate::daemon::settings::Settings;
use crate::daemon::tables::{Tables, VipTable};
use crate::daemon::views::FrontendView;
use crate::daemon::vpp::VppLink;
use crate::events::{Event, EventHub, EventKind, Subscription};
use crate::metrics::Metrics;
use crate::transport::{ServerTls, TlsError};

/// The daemon's API. Cheap to clone; every clone is the same daemon.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// What the daemon's tasks share.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) config: ArcSwap<Config>,
    pub(crate) checker: Checker,
    pub(crate) hub: EventHub,
    pub(crate) clock: WallClock,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cancel: CancellationToken,
    /// The last state of each frontend, for transitions.
    pub(crate) frontend_states: Mutex<FrontendStates>,
    /// The connected VPP, if any.
    pub(crate) vpp: ArcSwapOption<VppLink>,
    /// A dataplane given by the embedder instead of VPP's sockets.
    pub(crate) fixed_dataplane: Option<Arc<dyn maglev_vpp::lb::dataplane::Dataplane>>,
    /// The latest counter snapshot (none while VPP is away).
    pub(crate) counters: ArcSwapOption<CounterSnapshot>,
    /// The reconciler's schedule, warm-up and pending flushes.
    pub(crate) control: Control,
    /// Serialises reloads.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// The new-flow tables VPP holds, as predicted.
    pub(crate) tables: Tables,
    /// Each frontend's active pool.
    pub(crate) pools: PoolChoices,
    /// The gRPC (and `/metrics`) listener's TLS, if any.
    pub(crate) server_tls: Option<Arc<ServerTls>>,
    /// Probe heartbeats, sent while someone listens.
    pub(crate) beats: tokio::sync::broadcast::Sender<Beat>,
    /// The config as its file says (the running config is this with the
    /// operators' weight overrides applied).
    pub(crate) file_config: ArcSwap<Config>,
    /// The operators' overrides ([`overrides`](crate::daemon::overrides)).
    pub(crate) overrides: Mutex<SavedOverrides>,
    /// Woken when an override changes (the state file writer listens).
    pub(crate) overrides_changed: tokio::sync::Notify,
    /// The announcer's snapshots, the node's drain and its wake-up.
    pub(crate) announce: crate::announce::shared::AnnounceShared,
}

/// An operator's change of a pool member's weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightChange {
    /// The frontend.
    pub frontend: String,
    /// Its pool.
    pub pool: String,
    /// The pool's member.
    pub backend: String,
    /// The new weight, 0..=100.
    pub weight: u32,
    /// Also flush the member's existing flows.
    pub flush: bool,
}

/// `weight` as a pool member's weight, or `INVALID_ARGUMENT` naming
/// `backend`.
fn checked_weight(weight: u32, backend: &str) -> Result<u8, DaemonError> {
    u8::try_from(weight)
        .ok()
        .filter(|w| *w <= maglev_core::config::MAX_WEIGHT)
        .ok_or_else(|| {
            DaemonError::InvalidArgument(format!(
                "weight {weight} for backend {backend:?} is out of range 0..=100"
            ))
        })
}

/// How long [`Handle::set_drain`] waits for the announcer to carry the
/// drain out before it answers anyway.
pub const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who an operator action is by when the caller names no one (an embedder
/// calling the handle directly).
pub const LOCAL: &str = "local";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before it could
    // panic, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handle {
    pub(crate) fn new(
        settings: Settings,
        parts: Parts,
        config: Config,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
        announce: Option<crate::announce::announcer::Opened>,
    ) -> anyhow::Result<Handle> {
        // Before anything starts: a bad certificate file stops the start.
        let server_tls = match &settings.grpc_tls {
            Some(files) => Some(Arc::new(
                ServerTls::load(files.clone()).context("gRPC TLS")?,
            )),
            None if settings.metrics_tls || settings.http_tls => {
                anyhow::bail!(
                    "--metrics-tls and --http-tls need the gRPC listener's TLS (--grpc-tls-cert and --grpc-tls-key)"
                )
            }
            None => None,
        };
        let mut restored = match &settings.state_file {
            Some(path) => crate::daemon::state_file::restore(path, &config, &parts.clock),
            None => Default::default(),
        };
        // The drain is the announcer's to keep (and the state file's).
        let drain = restored.overrides.drain.take().map(|d| {
            tracing::info!(
                by = %d.by,
                at_unix_ms = d.at_unix_ms,
                announce = config.announce().is_some(),
                "restored the node's drain from the state file: every VIP prefix stays withdrawn until an operator undrains it"
            );
            crate::announce::view::Drain {
                by: d.by,
                at_unix_ms: d.at_unix_ms,
            }
        });
        // The file as read, and the running config with the restored weight
        // overrides: the first plan already has them, so VPP never sees the
        // file's weight in between.
        let file_config = config.clone();
        let config = overrides::apply_weights(&file_config, &restored.overrides.weights);
        let beats = crate::daemon::beats::channel();
        let checker = {
            // The checker spawns its probe tasks on the runtime it starts in.
            let _on = parts.checker_runtime.as_ref().map(|rt| rt.enter());
            Checker::builder()
                .probes(parts.probes)
                .observer(Arc::new(Observers {
                    metrics: metrics.probe_observer(),
                    beats: beats.clone(),
                }))
                .seed(restored.seeds)
                .intents(overrides::intents(&restored.overrides))
                .start(&config)?
        };
        crate::grpc::access::warn_about(&config, &settings);
        let control = Control::new(&config, Instant::now());
        Ok(Handle {
            shared: Arc::new(Shared {
                settings,
                config: ArcSwap::from_pointee(config),
                checker,
                hub: parts.hub,
                clock: parts.clock,
                metrics,
                cancel,
                frontend_states: Mutex::new(FrontendStates::new()),
                vpp: ArcSwapOption::empty(),
                fixed_dataplane: parts.dataplane,
                counters: ArcSwapOption::empty(),
                control,
                reload_lock: tokio::sync::Mutex::new(()),
                tables: Tables::default(),
                pools: PoolChoices::new(restored.pools),
                server_tls,
                beats,
                file_config: ArcSwap::from_pointee(file_config),
                announce: crate::announce::shared::AnnounceShared::new(announce, drain),
                overrides: Mutex::new(restored.overrides),
                overrides_changed: tokio::sync::Notify::new(),
            }),
        })
    }

    /// The process settings.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// Probe starts and ends from now on (for the dashboard's heartbeat);
    /// a listener that falls behind loses the oldest.
    pub fn probe_beats(&self) -> tokio::sync::broadcast::Receiver<Beat> {
        self.shared.beats.subscribe()
    }

    /// The gRPC listener's TLS configuration (`None` for plain gRPC).
    pub fn server_tls(&self) -> Option<Arc<ServerTls>> {
        self.shared.server_tls.clone()
    }

    /// Reads the TLS certificate, key and client CA files again (SIGHUP):
    /// new connections get them, open ones keep what they have. `Ok(false)`
    /// without TLS; on an error the files in use stay, and it is logged.
    pub fn reload_tls(&self) -> Result<bool, TlsError> {
        let Some(tls) = &self.shared.server_tls else {
            return Ok(false);
        };
        match tls.reload() {
            Ok(()) => {
                tracing::info!(cert = %tls.files().cert.display(), "TLS certificates reloaded");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificates not reloaded; the old ones stay in use");
                Err(e)
            }
        }
    }

    /// Whether VPP integration is on (a socket or an embedded dataplane).
    pub fn vpp_enabled(&self) -> bool {
        self.shared.settings.vpp.is_some() || self.shared.fixed_dataplane.is_some()
    }

    /// The running config (with operators' weight changes).
    pub fn config(&self) -> Arc<Config> {
        self.shared.config.load_full()
    }

    /// The health checker.
    pub fn checker(&self) -> &Checker {
        &self.shared.checker
    }

    /// The event fan-out.
    pub fn events(&self) -> &EventHub {
        &self.shared.hub
    }

    /// The wall clock.
    pub fn clock(&self) -> &WallClock {
        &self.shared.clock
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// A backend's state now (`removed` for an unknown name).
    pub fn backend_state(&self, name: &str) -> BackendState {
        self.shared.checker.state(name)
    }

    /// What the weight rules see of a backend at `now`: its state, whether
    /// flap damping holds it, its slow-start step (`removed` for an
    /// unknown name).
    pub fn serving(&self, name: &str, now: Instant) -> Serving {
        self.shared
            .checker
            .backend(name)
            .map_or(BackendState::Removed.into(), |s| s.serving(now))
    }

    /// When `backend`'s next slow-start step after `after` begins; `None`
    /// unless it is up and ramping.
    pub(crate) fn next_ramp_step(&self, backend: &str, after: Instant) -> Option<Instant> {
        self.shared
            .checker
            .backend(backend)
            .filter(|s| s.state == BackendState::Up)
            .and_then(|s| s.ramp.as_deref().and_then(|r| r.next_step_at(after)))
    }

    /// The active pool of frontend `name` (`fe`) now, as the reconciler
    /// would choose it.
    pub(crate) fn active_pool(
        &self,
        name: &str,
        fe: &maglev_core::config::Frontend,
        serving_of: impl Fn(&str) -> Serving,
    ) -> Option<usize> {
        self.shared.pools.peek(name, fe, serving_of)
    }

    // ----------------------------------------------------------- frontends

    /// Every frontend, by name. Builds every view: a reader that may face
    /// thousands takes them a page at a time with
    /// [`frontends_after`](Self::frontends_after).
    pub fn frontends(&self) -> Vec<FrontendView> {
        let config = self.config();
        self.frontends_after(&config, None).collect()
    }

    /// The frontends of `config` (the running [`config`](Self::config),
    /// taken once per page) after the name `after` (from the first
    /// without), by name; each view is built only when the iterator gets
    /// to it, so a page costs its own frontends, not all of them.
    pub fn frontends_after<'a>(
        &'a self,
        config: &'a Config,
        after: Option<&str>,
    ) -> impl Iterator<Item = FrontendView> + 'a {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        config
            .frontends()
            .range::<String, _>((from, Bound::Unbounded))
            .filter_map(move |(name, _)| self.view(config, name))
    }

    /// One frontend.
    pub fn frontend(&self, name: &str) -> Result<FrontendView, DaemonError> {
        let config = self.config();
        self.view(&config, name)
            .ok_or_else(|| DaemonError::not_found("frontend", name))
    }

    fn view(&self, config: &Config, name: &str) -> Option<FrontendView> {
        let released = self.shared.control.is_released(name);
        let now = Instant::now();
        let serving_of = |b: &str| self.serving(b, now);
        let active = self.active_pool(name, config.frontend(name)?, serving_of);
        let mut view = FrontendView::build(config, name, serving_of, active, released)?;
        if self.vpp().is_ok() {
            view.table = self.shared.tables.get(&view.key);
        }
        view.announce = crate::announce::announcer::frontend_announce(
            &self.shared.announce.announcements(),
            view.frontend.address,
        );
        Some(view)
    }

    /// The last published state of every frontend.
    pub fn frontend_states(&self) -> BTreeMap<String, FrontendState> {
        lock(&self.shared.frontend_states)
            .iter()
            .map(|(n, s)| (n.to_owned(), s))
            .collect()
    }

    /// The warm-up phase now.
    pub fn warmup_phase(&self) -> Phase {
        self.shared.control.phase(Instant::now())
    }

    // ------------------------------------------------------------ backends

    /// Every backend's status, by name. Copies every status: a reader
    /// that may face thousands takes them a page at a time with
    /// [`backends_after`](Self::backends_after).
    pub fn backends(&self) -> maglev_health::checker::Snapshot {
        self.shared.checker.snapshot()
    }

    /// The statuses of `config`'s backends (the running
    /// [`config`](Self::config), taken once per page) after the name
    /// `after` (from the first without), by name, each looked up only when
    /// the iterator gets to it.
    pub fn backends_after<'a>(
        &'a self,
        config: &'a Config,
        after: Option<&str>,
    ) -> impl Iterator<Item = Arc<BackendStatus>> + 'a {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        config
            .backends()
            .range::<String, _>((from, Bound::Unbounded))
            .filter_map(|(name, _)| self.shared.checker.backend(name))
    }

    /// One backend's status.
    pub fn backend(&self, name: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.shared
            .checker
            .backend(name)
            .ok_or_else(|| DaemonError::not_found("backend", name))
    }

    /// The frontends that use `backend`, by name (from the config's
    /// [`ConfigIndex`](maglev_core::config::ConfigIndex): no walk over
    /// every frontend).
    pub fn frontends_using(&self, backend: &str) -> Vec<String> {
        self.config()
            .index()
            .frontends_using(backend)
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    /// Pauses probing `name` (weight 0, no flush), as [`LOCAL`].
    pub fn pause(&self, name: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.pause_by(name, LOCAL)
    }

    /// Resumes probing `name` from `unknown`, as [`LOCAL`].
    pub fn resume(&self, name: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.resume_by(name, LOCAL)
    }

    /// Re-enables `name`, as [`LOCAL`].
    pub fn enable(&self, name: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.enable_by(name, LOCAL)
    }

    /// Disables `name` (weight 0 with flush), as [`LOCAL`].
    pub fn disable(&self, name: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.disable_by(name, LOCAL)
    }

    /// Pauses probing `name` for operator `by` (an audited identity): an
    /// override until resumed or cleared, kept across restarts.
    pub fn pause_by(&self, name: &str, by: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.operator(name, by, Checker::pause)
    }

    /// Resumes probing `name` for operator `by`.
    pub fn resume_by(&self, name: &str, by: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.operator(name, by, Checker::resume)
    }

    /// Re-enables `name` for operator `by` (an override while the file
    /// says `enabled: false`).
    pub fn enable_by(&self, name: &str, by: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.operator(name, by, Checker::enable)
    }

    /// Disables `name` for operator `by` (an override while the file says
    /// enabled), weight 0 with flush.
    pub fn disable_by(&self, name: &str, by: &str) -> Result<Arc<BackendStatus>, DaemonError> {
        self.operator(name, by, Checker::disable)
    }

    fn operator<T>(
        &self,
        name: &str,
        by: &str,
        action: impl Fn(&Checker, &str) -> Result<T, maglev_health::Error>,
    ) -> Result<Arc<BackendStatus>, DaemonError> {
        // The transition, if any, reaches the reconciler as an event.
        action(&self.shared.checker, name)?;
        let status = self.backend(name)?;
        self.note_intent(name, &status, by);
        Ok(status)
    }

    /// Records what an operator made of backend `name` (now `status`)
    /// against the file: paused, disabled or enabled against it, or no
    /// override when it is as the file says.
    fn note_intent(&self, name: &str, status: &BackendStatus, by: &str) {
        let file_enabled = self
            .shared
            .file_config
            .load()
            .backend(name)
            .is_none_or(|b| b.enabled);
        let intent = match status.state {
            BackendState::Paused => Some(Intent::Paused),
            BackendState::Disabled if file_enabled => Some(Intent::Disabled),
            BackendState::Disabled => None,
            _ if !file_enabled && status.enabled => Some(Intent::Enabled),
            _ => None,
        };
        let mut set = lock(&self.shared.overrides);
        let changed = match intent {
            // The same intent again keeps who set it first, and when.
            Some(i) if set.backends.get(name).is_some_and(|s| s.intent == i) => false,
            Some(intent) => {
                set.backends.insert(
                    name.to_owned(),
                    SavedIntent {
                        intent,
                        by: by.to_owned(),
                        at_unix_ms: self.now_unix_ms(),
                        file_enabled,
                    },
                );
                true
            }
            None => set.backends.remove(name).is_some(),
        };
        drop(set);
        if changed {
            self.shared.overrides_changed.notify_one();
        }
    }

    fn now_unix_ms(&self) -> i64 {
        self.shared.clock.now_unix_nanos() / 1_000_000
    }

    // ----------------------------------------------------------- overrides

    /// Every operator override: backends' states, then pool members'
    /// weights, each sorted by name.
    pub fn overrides(&self) -> Vec<Override> {
        overrides::list(&lock(&self.shared.overrides))
    }

    /// The operator override of backend `name`'s state, if any.
    pub fn backend_override(&self, name: &str) -> Option<SavedIntent> {
        lock(&self.shared.overrides).backends.get(name).cloned()
    }

    /// The operator's runtime weight of a pool member, if any, with what
    /// the config file says now.
    pub fn weight_override(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
    ) -> Option<(SavedWeight, Option<u8>)> {
        let key = (frontend.to_owned(), pool.to_owned(), backend.to_owned());
        let w = lock(&self.shared.overrides).weights.get(&key).cloned()?;
        let file = overrides::file_weight(&self.shared.file_config.load(), frontend, pool, backend);
        Some((w, file))
    }

    /// Clears an override for operator `by`: the backend or member goes
    /// back to what the config file says (a paused backend resumes, a
    /// disabled one is enabled, a weight returns to the file's, synced at
    /// once). `NOT_FOUND` when there is no such override. Returns what was
    /// cleared.
    pub async fn clear_override(
        &self,
        key: &OverrideKey,
        by: &str,
    ) -> Result<Override, DaemonError> {
        match key {
            OverrideKey::Backend(name) => {
                let intent = self
                    .backend_override(name)
                    .ok_or_else(|| DaemonError::not_found("override of backend", name))?;
                let checker = &self.shared.checker;
                match intent.intent {
                    Intent::Paused => checker.resume(name).map(drop)?,
                    Intent::Disabled => checker.enable(name).map(drop)?,
                    Intent::Enabled => checker.disable(name).map(drop)?,
                }
                lock(&self.shared.overrides).backends.remove(name);
                self.shared.overrides_changed.notify_one();
                tracing::info!(backend = %name, intent = %intent.intent, set_by = %intent.by, by, "override-cleared");
                Ok(Override::Backend {
                    backend: name.clone(),
                    intent,
                })
            }
            OverrideKey::Weight(frontend, pool, backend) => {
                let key = (frontend.clone(), pool.clone(), backend.clone());
                let weight = lock(&self.shared.overrides)
                    .weights
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| {
                        DaemonError::not_found(
                            "weight override of",
                            format!("{frontend}/{pool}/{backend}"),
                        )
                    })?;
                let file = self.shared.file_config.load_full();
                let to = overrides::file_weight(&file, frontend, pool, backend)
                    .unwrap_or(weight.file_weight);
                tracing::info!(frontend, pool, backend, weight = weight.weight, set_by = %weight.by, by, file_weight = to, "override-cleared");
                self.change_weight(frontend, pool, backend, to, false, None)
                    .await?;
                Ok(Override::Weight { key, weight })
            }
        }
    }

    /// The running config for a config file just read: the file with
    /// the weight overrides that hold for it by the rule of [`overrides`]
    /// (weights change only under the reload lock, which the caller
    /// holds).
    fn rebased(&self, file: &Config) -> Config {
        let mut set = lock(&self.shared.overrides).clone();
        overrides::rebase_quietly(&mut set, file, None);
        overrides::apply_weights(file, &set.weights)
    }

    // ------------------------------------------------------------- weights

    /// Sets a pool member's configured weight in the running config and
    /// syncs the frontend at once, flushing the backend's flows if asked,
    /// as [`LOCAL`]. Returns once the sync ran (or was held by warm-up or
    /// VPP's absence).
    pub async fn set_weight(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u32,
        flush: bool,
    ) -> Result<FrontendView, DaemonError> {
        self.set_weight_by(frontend, pool, backend, weight, flush, LOCAL)
            .await
    }

    /// [`set_weight`](Handle::set_weight) for operator `by` (an audited
    /// identity): a weight other than the file's is an override, kept
    /// across restarts and reloads by the rule of [`overrides`]; the
    /// file's weight clears it.
    pub async fn set_weight_by(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u32,
        flush: bool,
        by: &str,
    ) -> Result<FrontendView, DaemonError> {
        let weight = checked_weight(weight, backend)?;
        self.change_weight(frontend, pool, backend, weight, flush, Some(by))
            .await
    }

    /// Sets a pool member's weight in the running config, recording (with
    /// `by`) or, without, dropping its override, and syncs the frontend.
    async fn change_weight(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u8,
        flush: bool,
        by: Option<&str>,
    ) -> Result<FrontendView, DaemonError> {
        let guard = self.shared.reload_lock.lock().await;
        let current = self.config();
        let updated = current.with_pool_weight(frontend, pool, backend, weight)?;
        let file_weight =
            overrides::file_weight(&self.shared.file_config.load(), frontend, pool, backend);
        {
            let key = (frontend.to_owned(), pool.to_owned(), backend.to_owned());
            let mut set = lock(&self.shared.overrides);
            match (by, file_weight) {
                (Some(by), Some(file_weight)) if file_weight != weight => {
                    set.weights.insert(
                        key,
                        SavedWeight {
                            weight,
                            file_weight,
                            by: by.to_owned(),
                            at_unix_ms: self.now_unix_ms(),
                        },
                    );
                }
                _ => {
                    set.weights.remove(&key);
                }
            }
        }
        self.shared.overrides_changed.notify_one();
        self.shared.config.store(Arc::new(updated));
        tracing::info!(
            frontend,
            pool,
            backend,
            weight,
            flush,
            by = by.unwrap_or(LOCAL),
            "weight-change"
        );
        let flush_address = flush
            .then(|| current.backend(backend).map(|b| b.address))
            .flatten();
        let key = current
            .frontend(frontend)
            .map(|f| f.vip_key())
            .ok_or_else(|| DaemonError::not_found("frontend", frontend))?;
        let flush = flush_address.map(|a| (key, a));
        let scope = SyncScope::Frontend(frontend.to_owned());
        let held = self.held(&scope);
        if held.is_some() || self.vpp().is_err() {
            // The change is in the config; the frontend is synced (with the
            // flush) when warm-up releases it or VPP is back.
            self.shared.control.mark(frontend, flush);
        } else {
            let waiter = self.shared.control.request(scope, flush);
            drop(guard);
            if let Err(e) = self.wait_sync(waiter).await {
                tracing::warn!(frontend, error = %e, "weight change not applied yet; it stays pending");
            }
        }
        self.frontend(frontend)
    }

    // -------------------------------------------------------------- config

    /// Validates the config file on disk.
    pub fn check_config(&self) -> ConfigReport {
        reload::check(&self.shared.settings.config_path)
    }

    /// The config file's path.
    pub fn config_path(&self) -> &PathBuf {
        &self.shared.settings.config_path
    }

    /// Reloads the config file (SPEC §2.8), unforced: see
    /// [`reload_with`](Self::reload_with).
    pub async fn reload(&self) -> ConfigReport {
        self.reload_with(false).await
    }

    /// Reloads the config file (SPEC §2.8). On an error the running config
    /// stays and every problem is logged. A file that deletes more of the
    /// running VIPs than `--reload-delete-limit` allows is refused unless
    /// `force`; each VIP it deletes is logged. So is a change that resets
    /// state VPP keeps for established flows (a new
    /// `vpp.lb.sticky-buckets-per-core`); the rest of `vpp.lb` is sent to
    /// VPP before the reload answers.
    pub async fn reload_with(&self, force: bool) -> ConfigReport {
        let _guard = self.shared.reload_lock.lock().await;
        let path = &self.shared.settings.config_path;
        let new = match reload::load(path) {
            Ok(config) => config,
            Err(report) => {
                reload::log_refusal(&report);
                self.shared.metrics.reload(false);
                return report;
            }
        };
        let limit = self.shared.settings.reload_delete_limit;
        let running = self.shared.config.load_full();
        let deletions = match reload::check_deletions(path, &running, &new, limit, force) {
            Ok(changes) => changes,
            Err(report) => {
                reload::log_refusal(&report);
                self.shared.metrics.reload(false);
                return report;
            }
        };
        // `vpp.lb` is applied now or the reload is refused, never deferred.
        if let Err(reason) =
            crate::daemon::lb_conf::apply_on_reload(self, &running, &new, force).await
        {
            let report = ConfigReport {
                path: path.display().to_string(),
                parse_error: None,
                semantic_error: Some(reason),
                deleted: Vec::new(),
            };
            reload::log_refusal(&report);
            self.shared.metrics.reload(false);
            return report;
        }
        // The operators' overrides that hold for this file, and the running
        // config with them.
        let file = new;
        let new = self.rebased(&file);
        if let Err(e) = self.shared.checker.reload(&new) {
            let report = ConfigReport {
                path: path.display().to_string(),
                parse_error: None,
                semantic_error: Some(e.to_string()),
                deleted: Vec::new(),
            };
            reload::log_refusal(&report);
            self.shared.metrics.reload(false);
            return report;
        }
        let old = self.shared.config.swap(Arc::new(new.clone()));
        // The rule, on the overrides as they are now (an operator may have
        // paused a backend meanwhile), logging each one the file replaces.
        let changed = {
            let mut set = lock(&self.shared.overrides);
            let before = set.clone();
            overrides::rebase(&mut set, &file, "reload");
            *set != before
        };
        self.shared.file_config.store(Arc::new(file));
        if changed {
            self.shared.overrides_changed.notify_one();
        }
        let removed: Vec<&String> = old
            .frontends()
            .keys()
            .filter(|f| new.frontend(f).is_none())
            .collect();
        for f in &removed {
            self.shared.metrics.forget_frontend(f);
        }
        lock(&self.shared.frontend_states).retain(|f| new.frontend(f).is_some());
        self.shared.pools.retain(&new);
        self.shared
            .control
            .reloaded(&new, removed.iter().map(|s| s.as_str()));
        tracing::info!(
            path = %path.display(),
            frontends = new.frontends().len(),
            backends = new.backends().len(),
            "config-reloaded"
        );
        for line in deletions.deletion_lines() {
            tracing::warn!(path = %path.display(), force, "config-reload-deletes {line}");
        }
        self.shared.metrics.reload(true);
        crate::grpc::access::warn_about(&new, &self.shared.settings);
        // Frontends whose state the new config changes (weights, pools).
        crate::daemon::watch::refresh_frontends(self);
        // Prefixes gained or lost, or the announce section changed.
        if new.announce().is_some() && !self.shared.announce.started() {
            tracing::warn!("maglev.announce added by a reload: it takes effect at the next start");
        }
        self.shared.announce.wake();
        ConfigReport {
            deleted: deletions.deletion_lines(),
            ..reload::check(path)
        }
    }

    // ----------------------------------------------------------------- VPP

    /// The connected VPP, or `Unavailable`.
    pub fn vpp(&self) -> Result<Arc<VppLink>, DaemonError> {
        if !self.vpp_enabled() {
            return Err(DaemonError::Unavailable(
                "VPP integration is off (--vpp-api-addr is empty)".to_owned(),
            ));
        }
        self.shared.vpp.load_full().ok_or_else(|| {
            DaemonError::Unavailable(match &self.shared.settings.vpp {
                Some(s) => format!("VPP is not connected ({})", s.api.display()),
                None => "VPP is not connected".to_owned(),
            })
        })
    }

    /// A live dump of VPP's LB state, on the readers' connection, shared
    /// with concurrent readers (at most [`FRESH`](crate::daemon::reads::FRESH)
    /// old; see [`crate::daemon::reads`]).
    pub async fn lb_state(&self) -> Result<LbSnapshot, DaemonError> {
        let dump = self.lb_dump(None).await?;
        Ok(LbSnapshot::clone(&dump.snapshot))
    }

    /// [`lb_state`](Self::lb_state) shared, not copied, with its dump's
    /// id; with `continuing` (the id a listing's first page got), the same
    /// dump again while maglev changed nothing in VPP (see
    /// [`crate::daemon::reads`]), so the pages of one listing are cut from
    /// one dump.
    pub async fn lb_dump(&self, continuing: Option<u64>) -> Result<Dump, DaemonError> {
        let link = self.vpp()?;
        let dump = match continuing {
            Some(id) => link.reads.snapshot_continuing(&*link.reader, id).await,
            None => link.reads.dump(&*link.reader).await,
        };
        dump.map_err(|e| DaemonError::Vpp(e.to_string()))
    }

    /// What the readers' dumps of VPP have done (dumps, the one in flight,
    /// those abandoned by readers who went away); `None` while VPP is
    /// away.
    pub fn lb_reads(&self) -> Option<ReadStats> {
        Some(self.vpp().ok()?.reads.stats())
    }

    /// VPP's global LB conf (`lb_conf_get`), where the link can read it.
    pub async fn lb_conf(&self) -> Result<Option<maglev_vpp::api::messages::LbConf>, DaemonError> {
        let link = self.vpp()?;
        match &link.reader_client {
            Some(client) => client
                .lb_conf_get()
                .await
                .map(Some)
                .map_err(|e| DaemonError::Vpp(e.to_string())),
            None => Ok(None),
        }
    }

    /// Reconciles now: one frontend, or everything (removing VIPs not in
    /// the config), after re-reading VPP (so drift is repaired). Returns the
    /// ops sent and what they did to each table.
    pub async fn sync(&self, frontend: Option<&str>) -> Result<SyncReport, DaemonError> {
        self.vpp()?;
        let scope = match frontend {
            Some(name) => {
                if self.config().frontend(name).is_none() {
                    return Err(DaemonError::not_found("frontend", name));
                }
                SyncScope::Frontend(name.to_owned())
            }
            None => SyncScope::All,
        };
        if let Some(why) = self.held(&scope) {
            return Err(DaemonError::FailedPrecondition(why));
        }
        // An operator asking for a sync wants VPP as it is now, not as the
        // daemon believes it is: the batch re-reads VPP first.
        self.shared.control.forget_belief();
        let waiter = self.shared.control.request(scope, None);
        self.wait_sync(waiter).await
    }

    /// A dry run of [`sync`](Handle::sync): the ops it would send now and
    /// what they would do to each table, planned by the reconciler's own
    /// planning step on a fresh read of VPP (on the readers' connection,
    /// started after this call and shared with concurrent dry runs: see
    /// [`crate::daemon::reads`]), with nothing sent. With
    /// `weight`, as if that change (and its flush) were made first: the
    /// dry run of [`set_weight`](Handle::set_weight), for its frontend.
    pub async fn plan_sync(
        &self,
        frontend: Option<&str>,
        weight: Option<&WeightChange>,
    ) -> Result<SyncReport, DaemonError> {
        let link = self.vpp()?;
        let mut config = self.config();
        let frontend = weight.map(|w| w.frontend.as_str()).or(frontend);
        if let Some(name) = frontend
            && config.frontend(name).is_none()
        {
            return Err(DaemonError::not_found("frontend", name));
        }
        let mut flushes = self.shared.control.flushes();
        if let Some(w) = weight {
            let value = checked_weight(w.weight, &w.backend)?;
            let updated = config.with_pool_weight(&w.frontend, &w.pool, &w.backend, value)?;
            if w.flush
                && let (Some(fe), Some(b)) =
                    (config.frontend(&w.frontend), config.backend(&w.backend))
            {
                flushes.request(fe.vip_key(), b.address);
            }
            config = Arc::new(updated);
        }
        let batch = maglev_core::schedule::Batch {
            full: frontend.is_none(),
            frontends: match frontend {
                Some(name) => [name.to_owned()].into(),
                None => config.frontends().keys().cloned().collect(),
            },
        };
        // A dry run plans on VPP as it is now: a dump started after this
        // call, shared with every dry run that asked before it started.
        let observed = link
            .reads
            .snapshot_started_after(&*link.reader)
            .await
            .map_err(|e| DaemonError::Vpp(e.to_string()))?
            .observed();
        let now = Instant::now();
        let serving_of = |b: &str| self.serving(b, now);
        let active_of =
            |name: &str, fe: &maglev_core::config::Frontend| self.active_pool(name, fe, serving_of);
        let (_, ops) = plan_batch(&config, &batch, serving_of, active_of, &observed, &flushes);
        let tables = maglev_core::prediction::table_changes(&observed, &ops);
        Ok(SyncReport { ops, tables })
    }

    /// The new-flow table of `frontend`'s VIP as VPP holds it (predicted
    /// from its ASes and weights, with the drift the last read found);
    /// `None` while VPP does not hold the VIP or is away.
    pub fn table(&self, frontend: &str) -> Option<VipTable> {
        self.vpp().ok()?;
        let key = self.config().frontend(frontend)?.vip_key();
        self.shared.tables.get(&key)
    }

    /// Every VIP's table fingerprint and last drift, for `/metrics`.
    pub(crate) fn table_fingerprints(&self) -> Vec<(VipKey, u64, Option<u32>)> {
        self.shared.tables.fingerprints()
    }

    fn held(&self, scope: &SyncScope) -> Option<String> {
        let config = self.config();
        self.shared.control.held(scope, Instant::now(), |f| {
            crate::daemon::reconciler::all_backends_known(self, &config, f)
        })
    }

    async fn wait_sync(
        &self,
        waiter: oneshot::Receiver<Result<SyncReport, DaemonError>>,
    ) -> Result<SyncReport, DaemonError> {
        tokio::select! {
            r = waiter => r.unwrap_or(Err(DaemonError::ShuttingDown)),
            _ = self.shared.cancel.cancelled() => Err(DaemonError::ShuttingDown),
        }
    }

    /// The latest counter snapshot; `None` while VPP is away or before the
    /// first scrape.
    pub fn counters(&self) -> Option<Arc<CounterSnapshot>> {
        self.shared.counters.load_full()
    }

    // ------------------------------------------------------- announcements

    /// Every prefix and where its route goes, as the announcer last
    /// published them.
    pub fn announcements(&self) -> Arc<crate::announce::view::Announcements> {
        self.shared.announce.announcements()
    }

    /// This node: its name (`--node-name`), the running config's
    /// fingerprint, and its drain and announcements in totals as the
    /// announcer last published them.
    pub fn node(&self) -> crate::announce::view::NodeView {
        let mut node = self.shared.announce.node();
        node.name = self.shared.settings.node_name.clone();
        node.config_fingerprint = self.config().fingerprint();
        node
    }

    /// Drains the node (`drained`) or undrains it, as operator `by`: kept in
    /// the state file, logged with who (the gRPC layer audits the call),
    /// published as an event; answers once the announcer has carried it
    /// out (at most [`DRAIN_WAIT`] later: a table that does not answer
    /// keeps being retried, and the node view says what is announced).
    /// `FAILED_PRECONDITION` without an announce section. Draining a
    /// drained node keeps who drained it first, and when.
    pub async fn set_drain(
        &self,
        drained: bool,
        by: &str,
    ) -> Result<crate::announce::view::NodeView, DaemonError> {
        if self.config().announce().is_none() || !self.shared.announce.started() {
            return Err(DaemonError::FailedPrecondition(
                "node drain withdraws the announced VIP prefixes, but the running config has no maglev.announce section".to_owned(),
            ));
        }
        let drain = drained.then(|| crate::announce::view::Drain {
            by: by.to_owned(),
            at_unix_ms: self.now_unix_ms(),
        });
        let request = self.shared.announce.set_drain(drain, || {
            if drained {
                tracing::info!(by, "node-drain: every announced VIP prefix is withdrawn");
            } else {
                tracing::info!(
                    by,
                    "node-undrain: VIP prefixes are announced again as the policy allows"
                );
            }
            self.publish(EventKind::Node(crate::events::NodeChange {
                drained,
                by: by.to_owned(),
            }));
        });
        // The state file keeps it.
        self.shared.overrides_changed.notify_one();
        self.shared.announce.wake();
        let carried_out = self.shared.announce.wait_carried_out(request);
        tokio::select! {
            r = tokio::time::timeout(DRAIN_WAIT, carried_out) => {
                if r.is_err() {
                    tracing::warn!(by, drained, wait_s = DRAIN_WAIT.as_secs(),
                        "node drain recorded, but the announcer has not carried it out yet");
                }
            }
            _ = self.shared.cancel.cancelled() => return Err(DaemonError::ShuttingDown),
        }
        Ok(self.node())
    }

    // -------------------------------------------------------------- events

    /// A new event reader; with `log_level`, log records at that level or
    /// above are included.
    pub fn subscribe(&self, log_level: Option<tracing::Level>) -> Subscription {
        self.shared.hub.subscribe(log_level)
    }

    /// Publishes an event stamped now.
    pub(crate) fn publish(&self, kind: EventKind) {
        self.shared.hub.publish(Event {
            unix_nanos: self.shared.clock.now_unix_nanos(),
            kind,
        });
    }

    /// Resolves when the daemon is stopping.
    pub async fn stopping(&self) {
        self.shared.cancel.cancelled().await;
    }
}
