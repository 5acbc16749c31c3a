//! The checker: one probe task per backend (however many frontends use
//! it), transitions broadcast to subscribers, a snapshot readable without
//! locks, operator actions and config reload (SPEC §2.8, §3).
//!
//! **Invariant:** a backend has a probe task only while its state is
//! `unknown`, `up` or `down` and it has a health check; pausing,
//! disabling or removing it cancels the task before the call returns, and
//! a result from a cancelled task is never recorded (generations).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use maglev_core::config::{Config, HealthCheck, ProbeKind, Timing};
use maglev_core::state::BackendState;
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::damping::{self, Damper};
use crate::error::Error;
use crate::machine::{Action, Checking, Machine, Refusal, Transition, jittered};
use crate::netns::Sockets;
use crate::observe::{ProbeObserver, ProbeRecord};
use crate::probe::{self, LocalCause, ProbeEnv, Prober};
use crate::status::{
    BackendEvent, BackendStatus, BlockedChange, Change, DampingChange, LastProbe, ProbeBlocked,
    Ramp,
};
use crate::transition_log::{self, TransitionLog};

/// How many events a subscriber may fall behind before it sees
/// [`broadcast::error::RecvError::Lagged`] (and should re-read the snapshot).
pub const EVENT_CAPACITY: usize = 4096;

/// Builds the prober of a health check. The checker calls it once per
/// health check and (re)load; tests inject fakes.
pub trait ProbeFactory: Send + Sync {
    /// The prober of `check`, with sockets from `env`.
    fn build(&self, check: &HealthCheck, env: &ProbeEnv) -> Result<Arc<dyn Prober>, Error>;
}

/// The real probes of [`probe::build`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RealProbes;

impl ProbeFactory for RealProbes {
    fn build(&self, check: &HealthCheck, env: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
        probe::build(check, env)
    }
}

/// The backends' statuses at one moment, by name.
pub type Snapshot = BTreeMap<Arc<str>, Arc<BackendStatus>>;

/// Owns every backend's state machine and probe task.
///
/// Cheap to clone; every clone is the same checker. Created inside a tokio
/// runtime, whose handle it keeps, so its methods may be called from any
/// thread.
#[derive(Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("backends", &self.inner.slots.load().len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// Read without locks by [`Checker::backend`] and friends; replaced
    /// only by reload.
    slots: ArcSwap<BTreeMap<Arc<str>, Arc<Slot>>>,
    events: broadcast::Sender<BackendEvent>,
    /// Serialises reloads and operator actions with each other.
    control: Mutex<Control>,
    factory: Arc<dyn ProbeFactory>,
    /// Told of every probe result; `None` costs one branch per probe.
    observer: Option<Arc<dyn ProbeObserver>>,
    /// Set by shutdown: no task starts any more.
    stopped: AtomicBool,
    tracker: TaskTracker,
    runtime: Handle,
}

struct Control {
    env: ProbeEnv,
    netns: Option<String>,
    history_len: usize,
    closed: bool,
}

/// One backend.
struct Slot {
    /// Its name is the status's ([`Slot::name`]), not kept twice.
    status: ArcSwap<BackendStatus>,
    core: Mutex<Core>,
}

struct Core {
    machine: Machine,
    address: IpAddr,
    /// The resolved health check and its name, shared by its backends;
    /// `None` for a static backend (8 bytes, not a whole check, per static
    /// backend).
    check: Option<Arc<Resolved>>,
    prober: Option<Arc<dyn Prober>>,
    /// Bumped whenever the probe task is cancelled or replaced.
    generation: u64,
    /// Aborting it drops the probe in flight (closing its socket).
    task: Option<AbortHandle>,
    last_probe: Option<Arc<LastProbe>>,
    /// Flap damping, if the health check has it (boxed: most backends
    /// have none, and the status shares the box's contents by value).
    damper: Option<Box<Damper>>,
    /// The task that releases a suppressed backend when its penalty has
    /// decayed.
    release: Option<AbortHandle>,
    flaps: u64,
    /// Shared with the published status (a ramp is rare: 8 bytes, not 32).
    ramp: Option<Arc<Ramp>>,
    /// Still in the `unknown` it started in at the checker's start: its
    /// first `up` gets no slow start (warm-up covers a start).
    initial: bool,
    /// Set while its probes cannot run for a reason of ours (boxed: rare).
    blocked: Option<Box<ProbeBlocked>>,
    /// The config file's `enabled` at the last (re)load: a reload applies
    /// `enabled` only when the file changed it, so an operator's disable
    /// or enable holds until then.
    file_enabled: bool,
}

impl Slot {
    /// The backend's name.
    fn name(&self) -> Arc<str> {
        self.status.load().name.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves a consistent machine (its
        // methods do not panic midway), so poisoning is ignored.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, core: &Core) {
        let (rise, fall) = match core.machine.checking() {
            Checking::Probed { rise, fall } => (rise, fall),
            Checking::Static => (0, 0),
        };
        self.status.store(Arc::new(BackendStatus {
            name: self.name(),
            address: core.address,
            state: core.machine.state(),
            enabled: core.machine.enabled(),
            healthcheck: core.check.as_ref().map(|c| c.name.clone()),
            counter: core.machine.counter(),
            rise,
            fall,
            last_probe: core.last_probe.clone(),
            history: core.machine.history().clone(),
            damping: core.damper.clone(),
            flaps: core.flaps,
            ramp: core.ramp.clone(),
            probe_blocked: core.blocked.clone(),
        }));
    }
}

impl Core {
    /// Flap damping released the backend at `now`: if it is up, that is a
    /// comeback, and it slow-starts (over `slow_start`) from here: a ramp
    /// that began when it came up while suppressed carried no traffic.
    fn released(&mut self, now: Instant, slow_start: Duration) {
        if self.machine.state() == BackendState::Up && !slow_start.is_zero() {
            self.ramp = Some(Arc::new(Ramp {
                since: now,
                length: slow_start,
            }));
        }
    }

    /// A probe could not run because of `cause` (ours, not the
    /// backend's): the machine is left alone; the spell is counted, and
    /// logged once when it starts and once per change of cause (then the
    /// spell is returned, for watchers).
    fn probe_blocked(
        &mut self,
        backend: &str,
        cause: LocalCause,
        detail: &str,
        now: Instant,
    ) -> Option<ProbeBlocked> {
        let logged = self.blocked.as_ref().map(|b| b.reason);
        let b = self.blocked.get_or_insert_with(|| {
            Box::new(ProbeBlocked {
                reason: cause,
                detail: String::new(),
                since: now,
                count: 0,
            })
        });
        b.reason = cause;
        b.count += 1;
        if b.detail != detail {
            detail.clone_into(&mut b.detail);
        }
        if logged != Some(cause) {
            tracing::warn!(
                backend,
                reason = %cause,
                detail,
                state = %self.machine.state(),
                "probe-blocked: the probe could not run for a reason of ours; the backend keeps its state"
            );
            return Some(ProbeBlocked::clone(b));
        }
        None
    }

    /// A probe ran: a spell of blocked probes, if any, is over (and
    /// returned, for watchers).
    fn probe_ran(&mut self, backend: &str, now: Instant) -> Option<ProbeBlocked> {
        let ended = self.blocked.take().map(|b| *b);
        if let Some(b) = &ended {
            tracing::warn!(
                backend,
                reason = %b.reason,
                blocked = b.count,
                after = ?now.saturating_duration_since(b.since),
                "probe-unblocked: probes run again"
            );
        }
        ended
    }

    /// The slow start of the backend's health check (zero without one).
    fn slow_start(&self) -> Duration {
        self.check.as_ref().map_or(Duration::ZERO, |c| c.slow_start)
    }

    /// What a transition does to the flap count, the damping and the
    /// ramp; the damping's change, if any.
    fn follow(&mut self, t: &Transition) -> Option<damping::Change> {
        use BackendState::{Down, Unknown, Up};
        let initial = std::mem::replace(&mut self.initial, false);
        let flap = matches!((t.from, t.to), (Up, Down) | (Down, Up));
        self.ramp = match (t.from, t.to) {
            (_, Up) if initial && t.from == Unknown => None,
            (_, Up) if t.code == crate::code::Code::Restored => None,
            (_, Up) => Some(self.slow_start())
                .filter(|l| !l.is_zero())
                .map(|length| {
                    Arc::new(Ramp {
                        since: t.at,
                        length,
                    })
                }),
            _ => None,
        };
        if !flap {
            return None;
        }
        self.flaps += 1;
        self.damper.as_mut()?.flap(t.at)
    }
}

/// Why a slot is made.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// At the checker's start, maybe with a seed and an operator's intent.
    Initial(Option<&'a Seed>, Option<Intent>),
    /// By a reload: a backend new to the config.
    Reload,
}

/// A health check of the config, with its name.
struct Resolved {
    name: Arc<str>,
    check: HealthCheck,
}

impl std::ops::Deref for Resolved {
    type Target = HealthCheck;

    fn deref(&self) -> &HealthCheck {
        &self.check
    }
}

/// What a backend of a config needs: its address, check and prober.
struct Wanted {
    address: IpAddr,
    check: Option<Arc<Resolved>>,
    prober: Option<Arc<dyn Prober>>,
    enabled: bool,
}

/// Resolves every backend of `config` and builds one prober per health
/// check, before anything changes (so a bad config changes nothing).
fn resolve(
    config: &Config,
    factory: &dyn ProbeFactory,
    env: &ProbeEnv,
) -> Result<BTreeMap<String, Wanted>, Error> {
    // One check, prober and name per health check, shared by its backends.
    type Shared = (Arc<Resolved>, Arc<dyn Prober>);
    let mut probers: BTreeMap<&str, Shared> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, b) in config.backends() {
        let (check, prober) = match &b.healthcheck {
            None => (None, None),
            Some(hc) => {
                let check = config.healthcheck(hc).ok_or_else(|| Error::NoHealthCheck {
                    backend: name.clone(),
                    healthcheck: hc.clone(),
                })?;
                let (check, prober) = match probers.get(hc.as_str()) {
                    Some(p) => p.clone(),
                    None => {
                        let resolved = Resolved {
                            name: Arc::from(hc.as_str()),
                            check: check.clone(),
                        };
                        let p = (Arc::new(resolved), factory.build(check, env)?);
                        probers.insert(hc, p.clone());
                        p
                    }
                };
                (Some(check), Some(prober))
            }
        };
        out.insert(
            name.clone(),
            Wanted {
                address: b.address,
                check,
                prober,
                enabled: b.enabled,
            },
        );
    }
    Ok(out)
}

/// A backend's state as a state file restored it, to seed the checker.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    /// The address the state was about: a backend whose address has
    /// changed since is not seeded.
    pub address: IpAddr,
    /// `up` or `down` (anything else is not seeded).
    pub state: BackendState,
    /// When the state was reached.
    pub since: Instant,
    /// The damping penalty at `penalty_at` (used if the health check has
    /// damping): it has decayed since, and a backend suppressed then is
    /// still suppressed only if the penalty is not yet below `reuse`.
    pub penalty: f64,
    /// When the penalty was `penalty` (the state file's writing).
    pub penalty_at: Instant,
}

/// An operator's intent restored from a state file, applied at start
/// after the config's `enabled` (see [`CheckerBuilder::intents`]).
pub use crate::persist::Intent;

/// Sets up a [`Checker`]: the real probes, the default environment and
/// no observer unless told otherwise.
///
/// ```no_run
/// # fn demo(config: &maglev_core::config::Config,
/// #         observer: std::sync::Arc<dyn maglev_health::observe::ProbeObserver>)
/// #         -> Result<(), maglev_health::Error> {
/// let checker = maglev_health::Checker::builder()
///     .observer(observer)
///     .start(config)?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct CheckerBuilder {
    factory: Arc<dyn ProbeFactory>,
    env: ProbeEnv,
    observer: Option<Arc<dyn ProbeObserver>>,
    seeds: BTreeMap<String, Seed>,
    intents: BTreeMap<String, Intent>,
}

impl std::fmt::Debug for CheckerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckerBuilder")
            .field("env", &self.env)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

impl CheckerBuilder {
    /// Probers from `factory` instead of the real ones.
    pub fn probes(mut self, factory: Arc<dyn ProbeFactory>) -> CheckerBuilder {
        self.factory = factory;
        self
    }

    /// Probes in `env`. Its sockets are replaced by `healthchecker.netns`'s
    /// when that is set (its trusted roots are kept).
    pub fn env(mut self, env: ProbeEnv) -> CheckerBuilder {
        self.env = env;
        self
    }

    /// Tell `observer` of every probe result (for metrics).
    pub fn observer(mut self, observer: Arc<dyn ProbeObserver>) -> CheckerBuilder {
        self.observer = Some(observer);
        self
    }

    /// Start backends in the states a state file restored, by name. A
    /// seed applies to a probed, enabled backend with the same address
    /// ([`Machine::seeded`]: the probes confirm it); the others start as
    /// usual.
    pub fn seed(mut self, seeds: BTreeMap<String, Seed>) -> CheckerBuilder {
        self.seeds = seeds;
        self
    }

    /// Start backends as operators left them, by name: [`Intent::Paused`]
    /// starts paused (no probe is sent), [`Intent::Disabled`] disabled,
    /// [`Intent::Enabled`] enabled although the config disables it. The
    /// caller decides which intents still hold (the file may have changed
    /// since); an intent the state refuses (pausing a disabled backend) is
    /// ignored.
    pub fn intents(mut self, intents: BTreeMap<String, Intent>) -> CheckerBuilder {
        self.intents = intents;
        self
    }

    /// Starts checking every backend of `config`. Must be called inside a
    /// tokio runtime ([`Error::NoRuntime`] otherwise), on which the probe
    /// tasks run.
    pub fn start(self, config: &Config) -> Result<Checker, Error> {
        let CheckerBuilder {
            factory,
            env,
            observer,
            seeds,
            intents,
        } = self;
        let hc = config.healthchecker();
        let env = match &hc.netns {
            Some(ns) => env.with_sockets(Sockets::in_netns(ns)),
            None => env,
        };
        let runtime = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let wanted = resolve(config, factory.as_ref(), &env)?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let inner = Arc::new(Inner {
            slots: ArcSwap::from_pointee(BTreeMap::new()),
            events,
            control: Mutex::new(Control {
                env,
                netns: hc.netns.clone(),
                history_len: hc.transition_history,
                closed: false,
            }),
            factory,
            observer,
            stopped: AtomicBool::new(false),
            tracker: TaskTracker::new(),
            runtime,
        });
        let now = Instant::now();
        let mut shared = None;
        let new: Vec<_> = wanted
            .into_iter()
            .map(|(name, w)| {
                let start = Start::Initial(seeds.get(&name), intents.get(&name).copied());
                inner.new_slot(&name, w, hc.transition_history, now, start, &mut shared)
            })
            .collect();
        let slots = new.iter().map(|(s, _)| (s.name(), s.clone())).collect();
        inner.slots.store(Arc::new(slots));
        let mut log = TransitionLog::default();
        inner.settle_new(new, &mut log);
        log.finish("start");
        Ok(Checker { inner })
    }
}

impl Checker {
    /// Starts checking every backend of `config` with the real probes (in
    /// `healthchecker.netns` if set). Must be called inside a tokio
    /// runtime ([`Error::NoRuntime`] otherwise), on which the probe tasks
    /// run. A dedicated current-thread runtime is the cheapest (see
    /// docs/performance.md).
    pub fn start(config: &Config) -> Result<Checker, Error> {
        Checker::builder().start(config)
    }

    /// Starts checking with probers from `factory`. `env`'s sockets are
    /// replaced by `healthchecker.netns`'s when that is set (its trusted
    /// roots are kept). Must be called inside a tokio runtime.
    pub fn with_probes(
        config: &Config,
        factory: Arc<dyn ProbeFactory>,
        env: ProbeEnv,
    ) -> Result<Checker, Error> {
        Checker::builder().probes(factory).env(env).start(config)
    }

    /// A builder, for the probers, their environment and a probe observer.
    pub fn builder() -> CheckerBuilder {
        CheckerBuilder {
            factory: Arc::new(RealProbes),
            env: ProbeEnv::new(),
            observer: None,
            seeds: BTreeMap::new(),
            intents: BTreeMap::new(),
        }
    }

    /// A receiver of every transition from now on. Subscribe first, then
    /// read the [`snapshot`](Checker::snapshot), to miss nothing.
    pub fn subscribe(&self) -> broadcast::Receiver<BackendEvent> {
        self.inner.events.subscribe()
    }

    /// Every backend's status, without locks.
    pub fn snapshot(&self) -> Snapshot {
        self.inner
            .slots
            .load()
            .iter()
            .map(|(name, slot)| (name.clone(), slot.status.load_full()))
            .collect()
    }

    /// One backend's status, without locks.
    pub fn backend(&self, name: &str) -> Option<Arc<BackendStatus>> {
        self.inner
            .slots
            .load()
            .get(name)
            .map(|s| s.status.load_full())
    }

    /// One backend's state, without locks; `removed` for an unknown name.
    /// Fits `maglev_core::desired`'s `state_of`.
    pub fn state(&self, name: &str) -> BackendState {
        self.inner
            .slots
            .load()
            .get(name)
            .map_or(BackendState::Removed, |s| s.status.load().state)
    }

    /// How many of the checker's tasks run: one probe task per backend
    /// being probed, and one per backend that flap damping holds
    /// (its release). A static, paused, disabled or removed backend has
    /// none: it costs nothing while it runs. (A task just stopped counts
    /// until the runtime next polls it.)
    pub fn tasks(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Stops health checking `name` (no probe traffic while paused).
    /// Returns the transition, or `None` if it was already paused.
    pub fn pause(&self, name: &str) -> Result<Option<Transition>, Error> {
        self.act(name, Action::Pause)
    }

    /// Starts health checking `name` again from `unknown`, history kept.
    pub fn resume(&self, name: &str) -> Result<Option<Transition>, Error> {
        self.act(name, Action::Resume)
    }

    /// Takes `name` out of service and stops probing it.
    pub fn disable(&self, name: &str) -> Result<Option<Transition>, Error> {
        self.act(name, Action::Disable)
    }

    /// Puts `name` back in service from `unknown` and probes it again.
    pub fn enable(&self, name: &str) -> Result<Option<Transition>, Error> {
        self.act(name, Action::Enable)
    }

    fn act(&self, name: &str, action: Action) -> Result<Option<Transition>, Error> {
        let control = self.inner.control();
        if control.closed {
            return Err(Error::Shutdown);
        }
        let slots = self.inner.slots.load();
        let slot = slots
            .get(name)
            .ok_or_else(|| Error::NoBackend(name.to_owned()))?;
        let now = Instant::now();
        let mut core = slot.lock();
        let r = match action {
            Action::Pause => core.machine.pause(now),
            Action::Resume => core.machine.resume(now),
            Action::Disable => core.machine.disable(now),
            Action::Enable => core.machine.enable(now),
            Action::Remove => Ok(core.machine.remove(now)),
        };
        let t = r.map_err(|Refusal { action, state }| Error::Refused {
            backend: name.to_owned(),
            action,
            state,
        })?;
        self.inner.settle(slot, &mut core, t.as_ref());
        Ok(t)
    }

    /// Applies a new config (SPEC §2.8); a reload never drains a healthy
    /// backend. Backends new in it start probing from `unknown`; backends
    /// gone from it go to `removed`, stop, and leave the snapshot (after
    /// their `removed` event is broadcast). For the others:
    ///
    /// - nothing of their check changed: they keep probing without a gap
    ///   and keep their operator state;
    /// - only the timing changed (intervals, timeout, rise, fall): state
    ///   and operator state are kept, the counter is clamped to the new
    ///   range ([`Machine::retime`]), and probing goes on at the new pace;
    /// - the probe changed (type, port, params, namespace, or the check
    ///   came or went): the state, and so the weight, is kept until the new
    ///   probe's results move it with the usual hysteresis
    ///   ([`Machine::reprobe`]); a paused or disabled backend stays so;
    /// - the address changed: a new target, it starts over from `unknown`
    ///   (weight 0 until a probe passes; [`Machine::retarget`]), and no
    ///   result of a probe to the old address is recorded.
    ///
    /// The file's `enabled` applies when the file changed it since the last
    /// (re)load ([`Machine::configure_enabled`]), replacing an operator's
    /// disable or enable; unchanged, the operator's state holds.
    ///
    /// On error nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), Error> {
        let mut control = self.inner.control();
        if control.closed {
            return Err(Error::Shutdown);
        }
        let hc = config.healthchecker();
        let netns_changed = hc.netns != control.netns;
        let env = if netns_changed {
            control
                .env
                .clone()
                .with_sockets(Sockets::for_config(hc.netns.as_deref()))
        } else {
            control.env.clone()
        };
        let wanted = resolve(config, self.inner.factory.as_ref(), &env)?;
        control.env = env;
        control.netns = hc.netns.clone();
        control.history_len = hc.transition_history;
        let now = Instant::now();
        let old = self.inner.slots.load_full();
        let mut slots = BTreeMap::new();
        let mut new = Vec::new();
        let mut log = TransitionLog::default();
        let mut shared = None;
        for (name, w) in wanted {
            let Some(slot) = old.get(name.as_str()) else {
                let (slot, ts) = self.inner.new_slot(
                    &name,
                    w,
                    hc.transition_history,
                    now,
                    Start::Reload,
                    &mut shared,
                );
                slots.insert(slot.name(), slot.clone());
                new.push((slot, ts));
                continue;
            };
            let mut core = slot.lock();
            core.machine.set_history_len(hc.transition_history);
            let damping = Inner::redamp(&mut core, &w, now);
            let probe_of = |c: &Option<Arc<Resolved>>| c.as_ref().map(|c| c.probe.clone());
            let timing_of = |c: &Option<Arc<Resolved>>| c.as_ref().map(|c| c.timing);
            let readdressed = core.address != w.address;
            let reprobed = netns_changed || probe_of(&core.check) != probe_of(&w.check);
            let retimed = timing_of(&core.check) != timing_of(&w.check);
            let enabled_changed = core.file_enabled != w.enabled;
            core.file_enabled = w.enabled;
            if !(readdressed || reprobed || retimed || enabled_changed) {
                // Nothing changed: the running task goes on.
                core.check = w.check;
                slot.publish(&core);
                self.inner.damping_event(slot, &mut core, damping);
                drop(core);
                slots.insert(slot.name(), slot.clone());
                continue;
            }
            // A new task with the new prober and timing; the result of a
            // probe in flight (old probe, old address) is never recorded.
            self.inner.stop_task(&mut core);
            let checking = Checking::from_timing(w.check.as_ref().map(|c| &c.timing));
            core.check = w.check;
            core.prober = w.prober;
            core.address = w.address;
            let mut transitions = Vec::new();
            if enabled_changed {
                transitions.extend(core.machine.configure_enabled(w.enabled, now));
            }
            // What an operator made of it (paused, disabled) holds across a
            // new probe; only the file's changed `enabled` moves it.
            let held = matches!(
                core.machine.state(),
                BackendState::Paused | BackendState::Disabled
            );
            if reprobed && !held {
                core.last_probe = None;
                let enabled = core.machine.enabled();
                transitions.extend(core.machine.reprobe(checking, enabled, now));
            } else {
                if reprobed {
                    core.last_probe = None;
                }
                core.machine.retime(checking);
            }
            if readdressed {
                core.last_probe = None;
                transitions.extend(core.machine.retarget(now));
            }
            if transitions.is_empty() {
                self.inner
                    .settle_logged(slot, &mut core, None, Some(&mut log));
            }
            for t in &transitions {
                self.inner
                    .settle_logged(slot, &mut core, Some(t), Some(&mut log));
            }
            self.inner.damping_event(slot, &mut core, damping);
            drop(core);
            slots.insert(slot.name(), slot.clone());
        }
        for (name, slot) in old.iter() {
            if !slots.contains_key(name) {
                let mut core = slot.lock();
                let t = core.machine.remove(now);
                self.inner
                    .settle_logged(slot, &mut core, t.as_ref(), Some(&mut log));
            }
        }
        self.inner.slots.store(Arc::new(slots));
        self.inner.settle_new(new, &mut log);
        log.finish("reload");
        Ok(())
    }

    /// Stops every probe task and waits for them to end. Operator actions
    /// and reloads fail with [`Error::Shutdown`] afterwards.
    pub async fn shutdown(&self) {
        self.inner.control().closed = true;
        self.inner.stop_all();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}

impl Drop for Inner {
    /// The last handle is gone: stop every probe task (they hold only a
    /// weak reference to the checker).
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl Inner {
    fn stop_all(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for slot in self.slots.load().values() {
            let mut core = slot.lock();
            self.stop_task(&mut core);
            Inner::stop_release(&mut core);
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_slot(
        self: &Arc<Self>,
        name: &str,
        w: Wanted,
        history_len: usize,
        now: Instant,
        start: Start<'_>,
        shared: &mut Option<Arc<[Transition]>>,
    ) -> (Arc<Slot>, Vec<Transition>) {
        let checking = Checking::from_timing(w.check.as_ref().map(|c| &c.timing));
        let intent = match start {
            Start::Initial(_, intent) => intent,
            Start::Reload => None,
        };
        // A backend an operator paused or disabled is not seeded (its
        // intent applies instead); one an operator enabled against the
        // file is, as if the file enabled it.
        let enabled = match intent {
            None => w.enabled,
            Some(i) => i == Intent::Enabled,
        };
        let seed = match start {
            Start::Initial(Some(seed), _) if enabled && seed.address == w.address => {
                Machine::seeded(checking, seed.state, history_len, seed.since)
                    .map(|(m, t)| (m, t, seed))
            }
            _ => None,
        };
        let damping = w.check.as_ref().and_then(|c| c.damping);
        let (mut machine, t, damper) = match seed {
            Some((m, t, seed)) => {
                let damper = damping.map(|d| {
                    let mut damper = Damper::with_penalty(d, seed.penalty, seed.penalty_at);
                    damper.poll(now);
                    Box::new(damper)
                });
                (m, Some(t), damper)
            }
            None => {
                let (m, t) = Machine::new(checking, w.enabled, history_len, now);
                (m, t, damping.map(|d| Box::new(Damper::new(d, now))))
            }
        };
        let mut transitions: Vec<Transition> = t.into_iter().collect();
        let operated = match intent {
            Some(Intent::Paused) => machine.pause(now).ok().flatten(),
            Some(Intent::Disabled) => machine.disable(now).ok().flatten(),
            Some(Intent::Enabled) => machine.enable(now).ok().flatten(),
            None => None,
        };
        if let Some(intent) = intent.filter(|_| operated.is_some()) {
            tracing::info!(
                backend = name,
                %intent,
                "operator-intent-restored: {intent} as an operator left it (state file)"
            );
        }
        transitions.extend(operated);
        // Backends made together mostly start with the same history: one
        // copy for them all (the last one made is the one shared).
        if let Some(h) = shared.as_ref() {
            machine.share_history(h);
        }
        if !shared
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, machine.history()))
        {
            *shared = Some(machine.history().clone());
        }
        // A seeded backend is past its initial unknown.
        let initial =
            matches!(start, Start::Initial(..)) && machine.state() == BackendState::Unknown;
        let core = Core {
            damper,
            release: None,
            flaps: 0,
            ramp: None,
            initial,
            blocked: None,
            file_enabled: w.enabled,
            address: w.address,
            check: w.check,
            prober: w.prober,
            generation: 0,
            task: None,
            last_probe: None,
            machine,
        };
        let name: Arc<str> = Arc::from(name);
        let slot = Arc::new(Slot {
            status: ArcSwap::from_pointee(BackendStatus {
                name: name.clone(),
                address: core.address,
                state: core.machine.state(),
                enabled: core.machine.enabled(),
                healthcheck: None,
                counter: 0,
                rise: 0,
                fall: 0,
                last_probe: None,
                history: core.machine.history().clone(),
                damping: None,
                flaps: 0,
                ramp: None,
                probe_blocked: None,
            }),
            core: Mutex::new(core),
        });
        (slot, transitions)
    }

    /// Settles slots made by [`Inner::new_slot`] once they are in the map,
    /// so that a subscriber sees a backend in the snapshot by the time it
    /// hears of it.
    /// Their transitions are logged through `log` (aggregated above a
    /// count, [`TransitionLog`]).
    fn settle_new(
        self: &Arc<Self>,
        new: Vec<(Arc<Slot>, Vec<Transition>)>,
        log: &mut TransitionLog,
    ) {
        for (slot, ts) in new {
            let mut core = slot.lock();
            if ts.is_empty() {
                self.settle_logged(&slot, &mut core, None, Some(log));
            }
            for t in &ts {
                self.settle_logged(&slot, &mut core, Some(t), Some(log));
            }
        }
    }

    /// After a possible transition: log and broadcast it, start or stop
    /// the probe task to match the state, and publish the status.
    fn settle(self: &Arc<Self>, slot: &Arc<Slot>, core: &mut Core, t: Option<&Transition>) {
        self.settle_logged(slot, core, t, None);
    }

    /// [`Inner::settle`], its transition's line noted in `log` (a start or
    /// reload) or, without one, written at once.
    fn settle_logged(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        core: &mut Core,
        t: Option<&Transition>,
        log: Option<&mut TransitionLog>,
    ) {
        let damped = t.and_then(|t| core.follow(t));
        if core.machine.state() == BackendState::Removed {
            Inner::stop_release(core);
        }
        let probing = core.machine.is_probing();
        match (probing, core.task.is_some()) {
            (true, false) => self.start_task(slot, core),
            (false, true) => self.stop_task(core),
            _ => {}
        }
        // Publish before broadcasting, so a subscriber that reads the
        // snapshot on an event sees the new state.
        slot.publish(core);
        if let Some(t) = t {
            match log {
                Some(log) => log.note(&slot.name(), t),
                None => transition_log::log_one(&slot.name(), t),
            }
            // No subscriber is not an error.
            let _ = self.events.send(BackendEvent {
                backend: slot.name(),
                address: core.address,
                change: Change::Transition(t.clone()),
            });
        }
        self.damping_event(slot, core, damped);
    }

    /// Broadcasts that `slot`'s probes could not run (`blocked`), or run
    /// again, when `spell` says a spell began, changed cause or ended.
    fn probe_blocked_event(
        &self,
        slot: &Slot,
        core: &Core,
        spell: Option<ProbeBlocked>,
        blocked: bool,
    ) {
        if let Some(spell) = spell {
            // No subscriber is not an error.
            let _ = self.events.send(BackendEvent {
                backend: slot.name(),
                address: core.address,
                change: Change::ProbeBlocked(BlockedChange { blocked, spell }),
            });
        }
    }

    /// After the damping of a backend changed (published already): log and
    /// broadcast it, and arm the release of a suppressed backend.
    fn damping_event(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        core: &mut Core,
        change: Option<damping::Change>,
    ) {
        let Some(damper) = &core.damper else {
            return;
        };
        let Some(change) = change else {
            if damper.is_suppressed() {
                self.arm_release(slot, core);
            }
            return;
        };
        let now = Instant::now();
        let event = DampingChange {
            change,
            penalty: damper.penalty(now),
            at: now,
            release_at: damper.release_at(),
        };
        match change {
            damping::Change::Suppressed => tracing::warn!(
                backend = %slot.name(),
                penalty = event.penalty,
                release_in = ?event.release_at.map(|at| at.saturating_duration_since(now)),
                "backend-suppressed: flap damping holds it at weight 0"
            ),
            damping::Change::Released => tracing::info!(
                backend = %slot.name(),
                penalty = event.penalty,
                "backend-released: flap damping no longer holds it"
            ),
        }
        let _ = self.events.send(BackendEvent {
            backend: slot.name(),
            address: core.address,
            change: Change::Damping(event),
        });
        match change {
            damping::Change::Suppressed => self.arm_release(slot, core),
            damping::Change::Released => Inner::stop_release(core),
        }
    }

    /// Starts the task that releases `slot` once its penalty has decayed,
    /// unless one runs.
    fn arm_release(self: &Arc<Self>, slot: &Arc<Slot>, core: &mut Core) {
        if core.release.is_some() || self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let inner = Arc::downgrade(self);
        let slot = slot.clone();
        let task = async move {
            loop {
                // Read each time: a flap while suppressed pushes it later.
                let at = match slot.lock().damper.as_deref().and_then(Damper::release_at) {
                    Some(at) => at,
                    None => return,
                };
                tokio::time::sleep_until(at).await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let mut core = slot.lock();
                let now = Instant::now();
                let released = core.damper.as_mut().and_then(|d| d.poll(now));
                if released.is_some() {
                    core.release = None;
                    let slow_start = core.slow_start();
                    core.released(now, slow_start);
                    slot.publish(&core);
                    inner.damping_event(&slot, &mut core, released);
                    return;
                }
            }
        };
        let handle = self.tracker.spawn_on(task, &self.runtime);
        core.release = Some(handle.abort_handle());
    }

    /// A reload's damping and slow start for an existing backend: the
    /// penalty is kept under new settings, dropped (releasing the backend)
    /// when damping is turned off; a running ramp takes the new length,
    /// and a release starts one.
    fn redamp(core: &mut Core, w: &Wanted, now: Instant) -> Option<damping::Change> {
        let slow_start = w.check.as_ref().map_or(Duration::ZERO, |c| c.slow_start);
        core.ramp = core.ramp.take().filter(|_| !slow_start.is_zero()).map(|r| {
            Arc::new(Ramp {
                length: slow_start,
                ..*r
            })
        });
        let change = Inner::rejudge_damping(core, w, now);
        if change == Some(damping::Change::Released) {
            core.released(now, slow_start);
        }
        change
    }

    /// The damping part of [`Inner::redamp`].
    fn rejudge_damping(core: &mut Core, w: &Wanted, now: Instant) -> Option<damping::Change> {
        match (&mut core.damper, w.check.as_ref().and_then(|c| c.damping)) {
            (None, None) => None,
            (None, Some(d)) => {
                core.damper = Some(Box::new(Damper::new(d, now)));
                None
            }
            (Some(damper), Some(d)) if *damper.config() == d => None,
            (Some(damper), Some(d)) => damper.reconfigure(d, now),
            (Some(damper), None) => {
                let was = damper.is_suppressed();
                core.damper = None;
                Inner::stop_release(core);
                was.then_some(damping::Change::Released)
            }
        }
    }

    fn stop_release(core: &mut Core) {
        if let Some(task) = core.release.take() {
            task.abort();
        }
    }

    fn stop_task(&self, core: &mut Core) {
        core.generation += 1;
        if let Some(task) = core.task.take() {
            task.abort();
        }
    }

    fn start_task(self: &Arc<Self>, slot: &Arc<Slot>, core: &mut Core) {
        let (Some(prober), Some(check)) = (core.prober.clone(), core.check.as_ref()) else {
            return;
        };
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        core.generation += 1;
        let task = ProbeTask {
            inner: Arc::downgrade(self),
            slot: slot.clone(),
            prober,
            timing: check.timing,
            kind: check.kind(),
            generation: core.generation,
        };
        let handle = self.tracker.spawn_on(task.run(), &self.runtime);
        core.task = Some(handle.abort_handle());
    }
}

/// The loop that probes one backend until aborted.
struct ProbeTask {
    inner: std::sync::Weak<Inner>,
    slot: Arc<Slot>,
    prober: Arc<dyn Prober>,
    timing: Timing,
    kind: ProbeKind,
    generation: u64,
}

impl ProbeTask {
    async fn run(self) {
        let mut first = true;
        loop {
            let delay = {
                let core = self.slot.lock();
                if core.generation != self.generation {
                    return;
                }
                let Some(base) = core.machine.next_interval(&self.timing) else {
                    return;
                };
                base
            };
            // The first probe comes at a random point of the first period,
            // so that after a start the probes do not all fire together;
            // every later period gets ±10% jitter.
            let delay = if first {
                delay.mul_f64(rand::random_range(0.0..1.0))
            } else {
                jittered(delay, rand::random_range(-1.0..=1.0))
            };
            first = false;
            tokio::time::sleep(delay).await;
            // Read now, so that an address a reload changed is probed next.
            let address = self.slot.lock().address;
            tracing::debug!(backend = %self.slot.name(), %address, "probe start");
            if let Some(observer) = self.inner.upgrade().and_then(|i| i.observer.clone()) {
                observer.probe_started(&self.slot.name(), address);
            }
            let result = self.prober.probe(address).await;
            tracing::debug!(
                backend = %self.slot.name(),
                %address,
                code = %result.code,
                detail = %result.detail,
                duration = ?result.duration,
                "probe end"
            );
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            let blocked = result.could_not_run();
            if let Some(observer) = &inner.observer {
                observer.probe_ended(&ProbeRecord {
                    backend: &self.slot.name(),
                    address,
                    kind: self.kind,
                    code: result.code,
                    duration: result.duration,
                });
                if let Some(cause) = blocked {
                    observer.probe_could_not_run(&self.slot.name(), cause);
                }
            }
            let mut core = self.slot.lock();
            if core.generation != self.generation {
                return;
            }
            let now = Instant::now();
            if let Some(cause) = blocked {
                // No evidence: state, counter, history and last probe stay;
                // the next probe comes at this state's usual interval.
                let spell = core.probe_blocked(&self.slot.name(), cause, &result.detail, now);
                self.slot.publish(&core);
                inner.probe_blocked_event(&self.slot, &core, spell, true);
                continue;
            }
            let ended = core.probe_ran(&self.slot.name(), now);
            inner.probe_blocked_event(&self.slot, &core, ended, false);
            let t = core.machine.record(result.code, &result.detail, now);
            core.last_probe = Some(Arc::new(LastProbe {
                code: result.code,
                detail: result.detail,
                duration: result.duration,
                at: now,
            }));
            inner.settle(&self.slot, &mut core, t.as_ref());
        }
    }
}
