//! The per-backend state machine (SPEC §3.3): HAProxy's single rise/fall
//! counter, quick resolution of `unknown`, operator transitions with their
//! refusals, static backends and the bounded transition history.
//!
//! This module is pure: it is fed probe codes and `now` and answers with
//! transitions. The checker moves bytes and timers around it.
//!
//! **Invariant:** `counter` is in `0..=rise + fall - 1`; a probed backend is
//! `up` only with `counter >= rise` and `down` only with `counter < rise`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::Timing;
use maglev_core::state::BackendState;
use tokio::time::Instant;

use crate::code::Code;

/// One change of a backend's state, as kept in its history and broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: BackendState,
    /// The state after.
    pub to: BackendState,
    /// The probe code or operator code that caused it.
    pub code: Code,
    /// Human-readable detail (the probe's, or what the operator did).
    pub detail: String,
    /// When it happened.
    pub at: Instant,
}

/// How a backend is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checking {
    /// Probed, with the rise and fall of its health check (each ≥ 1).
    Probed {
        /// Consecutive passes that bring a down backend up.
        rise: u32,
        /// Consecutive failures that bring an up backend down.
        fall: u32,
    },
    /// A static backend: never probed, `up` whenever it would be `unknown`.
    Static,
}

impl Checking {
    /// The checking of a backend with the given timing, or a static one.
    pub fn from_timing(timing: Option<&Timing>) -> Checking {
        match timing {
            Some(t) => Checking::Probed {
                rise: t.rise,
                fall: t.fall,
            },
            None => Checking::Static,
        }
    }
}

/// An operator (or reload) action on a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Stop health checking.
    Pause,
    /// Start health checking again.
    Resume,
    /// Take the backend out of service.
    Disable,
    /// Put the backend back in service.
    Enable,
    /// Remove the backend (config reload).
    Remove,
}

impl Action {
    /// The action's name as typed by an operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Disable => "disable",
            Action::Enable => "enable",
            Action::Remove => "remove",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator action the machine refused in its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// What was asked.
    pub action: Action,
    /// The state that refused it.
    pub state: BackendState,
}

/// The state machine of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    state: BackendState,
    counter: u32,
    checking: Checking,
    enabled: bool,
    /// Oldest first; shared with the published status (a transition
    /// makes a new one, so no second copy is kept per backend).
    history: Arc<[Transition]>,
    /// At least 1 (a `u32`: 8 bytes less a backend).
    history_len: u32,
}

impl Machine {
    /// A new backend: `unknown` (counter `rise - 1`) if it is probed,
    /// `up` with code `static` if it is static, `disabled` if `enabled` is
    /// false. Returns the initial transition, if the state is not `unknown`;
    /// it is also in the history. `history_len` is at least 1.
    pub fn new(
        checking: Checking,
        enabled: bool,
        history_len: usize,
        now: Instant,
    ) -> (Machine, Option<Transition>) {
        let checking = sanitize(checking);
        let mut m = Machine {
            state: BackendState::Unknown,
            counter: 0,
            checking,
            enabled,
            history: no_history(),
            history_len: clamp_len(history_len),
        };
        let t = if enabled {
            m.enter_unknown(Code::Static, "static backend", now)
        } else {
            m.go(
                BackendState::Disabled,
                Code::Disabled,
                "disabled in config",
                now,
            )
        };
        (m, t)
    }

    /// A probed, enabled backend whose state was restored from a state
    /// file, reached at `since`, with the counter where a running daemon
    /// would have it after a steady period in that state: `up` at its
    /// fullest (`rise + fall - 1`, so `fall` consecutive failures take it
    /// down, exactly as before the restart) or `down` at 0 (`rise` passes
    /// bring it up). A restart is no evidence about the backend, so it
    /// changes no hysteresis.
    /// Returns the transition `unknown → state` (code `restored`), also in
    /// the history; `None` for a static backend or a state other than `up`
    /// or `down` (use [`Machine::new`]).
    pub fn seeded(
        checking: Checking,
        state: BackendState,
        history_len: usize,
        since: Instant,
    ) -> Option<(Machine, Transition)> {
        let Checking::Probed { rise, fall } = sanitize(checking) else {
            return None;
        };
        let counter = match state {
            BackendState::Up => rise + fall - 1,
            BackendState::Down => 0,
            _ => return None,
        };
        let mut m = Machine {
            state: BackendState::Unknown,
            counter,
            checking: sanitize(checking),
            enabled: true,
            history: no_history(),
            history_len: clamp_len(history_len),
        };
        let t = m.go(state, Code::Restored, "restored from the state file", since)?;
        Some((m, t))
    }

    /// A reload changed only the timing of the backend's health check
    /// (intervals, timeout, rise, fall): the state stays, and the counter
    /// keeps what it has seen, clamped to the new range. An up backend keeps
    /// the failures it has seen (at most `fall - 1`), a down one the passes
    /// (at most `rise - 1`); `unknown` stays one result from resolved.
    pub fn retime(&mut self, checking: Checking) {
        let checking = sanitize(checking);
        if let (Checking::Probed { rise: r0, fall: f0 }, Checking::Probed { rise, fall }) =
            (self.checking, checking)
        {
            let (max0, max) = (r0 + f0 - 1, rise + fall - 1);
            self.counter = match self.state {
                BackendState::Up => max - max0.saturating_sub(self.counter).min(fall - 1),
                BackendState::Down => self.counter.min(rise - 1),
                BackendState::Unknown => rise - 1,
                _ => self.counter.min(max),
            };
        } else {
            self.counter = self.full_counter(checking);
        }
        self.checking = checking;
    }

    /// A reload changed what the backend's health check probes (type, port,
    /// params, namespace), and the file's `enabled` applies. The state, and
    /// so the weight, is kept: the new probe's results move it with the usual
    /// hysteresis, counted from the state's full value (an up backend needs
    /// `fall` consecutive failures of the new probe to go down, a down one
    /// `rise` passes to come up, an unknown one resolves on the first
    /// result). A paused or disabled backend starts over from `unknown`; a
    /// backend that becomes static is `up`. Returns the transition, if any.
    pub fn reprobe(
        &mut self,
        checking: Checking,
        enabled: bool,
        now: Instant,
    ) -> Option<Transition> {
        self.checking = sanitize(checking);
        self.enabled = enabled;
        if !enabled {
            return self.go(
                BackendState::Disabled,
                Code::Disabled,
                "disabled in config",
                now,
            );
        }
        match (self.state, self.checking) {
            (BackendState::Up | BackendState::Down, Checking::Probed { .. }) => {
                self.counter = self.full_counter(self.checking);
                None
            }
            _ => self.enter_unknown(Code::Reloaded, "health check changed", now),
        }
    }

    /// A reload changed the backend's address: a new target, about which
    /// nothing is known. A probed backend in `up` or `down` starts over from
    /// `unknown` (weight 0 until a probe passes); a paused or disabled one
    /// stays so; a static one stays `up`.
    pub fn retarget(&mut self, now: Instant) -> Option<Transition> {
        if self.checking == Checking::Static || !self.state.is_probed() {
            return None;
        }
        self.enter_unknown(Code::Reloaded, "address changed", now)
    }

    /// The current state.
    pub fn state(&self) -> BackendState {
        self.state
    }

    /// The rise/fall counter, `0..=rise + fall - 1` (0 for a static
    /// backend).
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// How the backend is checked.
    pub fn checking(&self) -> Checking {
        self.checking
    }

    /// The operator's enabled flag.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The last transitions, oldest first.
    /// (A cheap clone shares it.)
    pub fn history(&self) -> &Arc<[Transition]> {
        &self.history
    }

    /// Shares `other` as the history if it holds the same transitions, so
    /// that backends made together (every static one at a start: `up`,
    /// `static backend`, at the same instant) keep one copy between them.
    pub fn share_history(&mut self, other: &Arc<[Transition]>) {
        if !Arc::ptr_eq(&self.history, other) && self.history == *other {
            self.history = other.clone();
        }
    }

    /// Changes how many transitions are kept, dropping the oldest if needed.
    pub fn set_history_len(&mut self, len: usize) {
        self.history_len = clamp_len(len);
        let keep = self.history_len as usize;
        if self.history.len() > keep {
            let skip = self.history.len() - keep;
            self.history = self.history[skip..].into();
        }
    }

    /// Whether probes are sent in the current state.
    pub fn is_probing(&self) -> bool {
        self.checking != Checking::Static && self.state.is_probed()
    }

    /// Feeds one probe result. Ignored (returns `None`, nothing changes)
    /// unless the backend is probed and in `unknown`, `up` or `down`, and
    /// unless the code is evidence about the backend: a `SOCKERR` (the
    /// probe could not run) leaves counter, state and history as they are.
    pub fn record(&mut self, code: Code, detail: &str, now: Instant) -> Option<Transition> {
        let Checking::Probed { rise, fall } = self.checking else {
            return None;
        };
        if !self.state.is_probed() || !code.is_evidence() {
            return None;
        }
        let max = rise + fall - 1;
        if code.is_pass() {
            self.counter = (self.counter + 1).min(max);
            if self.counter >= rise {
                self.counter = max;
            }
        } else {
            self.counter = self.counter.saturating_sub(1);
            if self.counter < rise {
                self.counter = 0;
            }
        }
        let to = if self.counter >= rise {
            BackendState::Up
        } else if self.counter == 0 {
            BackendState::Down
        } else {
            // Rising from down: only a down backend has 0 < counter < rise.
            self.state
        };
        self.go(to, code, detail, now)
    }

    /// Stops health checking: `up`, `down` or `unknown` → `paused`.
    /// Already paused: nothing changes. Refused when disabled or removed.
    pub fn pause(&mut self, now: Instant) -> Result<Option<Transition>, Refusal> {
        match self.state {
            BackendState::Disabled | BackendState::Removed => Err(self.refuse(Action::Pause)),
            BackendState::Paused => Ok(None),
            _ => Ok(self.go(
                BackendState::Paused,
                Code::Paused,
                "paused by operator",
                now,
            )),
        }
    }

    /// Starts health checking again: `paused` → `unknown` (a static backend
    /// goes straight to `up`). Not paused: nothing changes. Refused when
    /// disabled or removed.
    pub fn resume(&mut self, now: Instant) -> Result<Option<Transition>, Refusal> {
        match self.state {
            BackendState::Disabled | BackendState::Removed => Err(self.refuse(Action::Resume)),
            BackendState::Paused => {
                Ok(self.enter_unknown(Code::Resumed, "resumed by operator", now))
            }
            _ => Ok(None),
        }
    }

    /// Takes the backend out of service: any state but `removed` →
    /// `disabled`, enabled = false. Already disabled: only the flag is
    /// synced. Refused when removed.
    pub fn disable(&mut self, now: Instant) -> Result<Option<Transition>, Refusal> {
        match self.state {
            BackendState::Removed => Err(self.refuse(Action::Disable)),
            BackendState::Disabled => {
                self.enabled = false;
                Ok(None)
            }
            _ => {
                self.enabled = false;
                Ok(self.go(
                    BackendState::Disabled,
                    Code::Disabled,
                    "disabled by operator",
                    now,
                ))
            }
        }
    }

    /// Puts the backend back in service: `disabled` → `unknown` (a static
    /// backend goes straight to `up`), enabled = true. Not disabled: only
    /// the flag is synced. Refused when removed.
    pub fn enable(&mut self, now: Instant) -> Result<Option<Transition>, Refusal> {
        match self.state {
            BackendState::Removed => Err(self.refuse(Action::Enable)),
            BackendState::Disabled => {
                self.enabled = true;
                Ok(self.enter_unknown(Code::Enabled, "enabled by operator", now))
            }
            _ => {
                self.enabled = true;
                Ok(None)
            }
        }
    }

    /// A reload changed the file's `enabled` for the backend: the file's
    /// value applies, whatever an operator did before (`enabled: false`:
    /// any state but `removed` → `disabled`, code `disabled`, "disabled in
    /// config"; `enabled: true`: `disabled` → `unknown`, or `up` if static,
    /// code `enabled`, "enabled in config"; a paused backend stays paused).
    pub fn configure_enabled(&mut self, enabled: bool, now: Instant) -> Option<Transition> {
        self.enabled = enabled;
        match (enabled, self.state) {
            (_, BackendState::Removed) => None,
            (false, _) => self.go(
                BackendState::Disabled,
                Code::Disabled,
                "disabled in config",
                now,
            ),
            (true, BackendState::Disabled) => {
                self.enter_unknown(Code::Enabled, "enabled in config", now)
            }
            (true, _) => None,
        }
    }

    /// The backend left the config: any state → `removed` (final).
    pub fn remove(&mut self, now: Instant) -> Option<Transition> {
        self.go(
            BackendState::Removed,
            Code::Removed,
            "removed from config",
            now,
        )
    }

    /// The base period before the next probe, before jitter: `interval`
    /// when fully up, `down-interval` when fully down, `fast-interval` in
    /// between and while unknown. `None` when no probe is due in this state.
    pub fn next_interval(&self, timing: &Timing) -> Option<Duration> {
        let Checking::Probed { rise, fall } = self.checking else {
            return None;
        };
        let max = rise + fall - 1;
        match self.state {
            BackendState::Unknown => Some(timing.fast_interval),
            BackendState::Up if self.counter >= max => Some(timing.interval),
            BackendState::Down if self.counter == 0 => Some(timing.down_interval),
            BackendState::Up | BackendState::Down => Some(timing.fast_interval),
            BackendState::Paused | BackendState::Disabled | BackendState::Removed => None,
        }
    }

    /// The counter of the current state at its fullest under `checking`:
    /// `Max` when up, 0 when down, `rise - 1` when unknown.
    fn full_counter(&self, checking: Checking) -> u32 {
        match (checking, self.state) {
            (Checking::Static, _) => 0,
            (Checking::Probed { rise, fall }, BackendState::Up) => rise + fall - 1,
            (Checking::Probed { rise, .. }, BackendState::Unknown) => rise - 1,
            (Checking::Probed { .. }, _) => 0,
        }
    }

    fn refuse(&self, action: Action) -> Refusal {
        Refusal {
            action,
            state: self.state,
        }
    }

    /// Enters `unknown` with the counter at `rise - 1` so one result
    /// resolves it; a static backend goes to `up` instead.
    fn enter_unknown(&mut self, code: Code, detail: &str, now: Instant) -> Option<Transition> {
        match self.checking {
            Checking::Probed { rise, .. } => {
                self.counter = rise - 1;
                self.go(BackendState::Unknown, code, detail, now)
            }
            Checking::Static => {
                self.counter = 0;
                self.go(BackendState::Up, code, detail, now)
            }
        }
    }

    fn go(
        &mut self,
        to: BackendState,
        code: Code,
        detail: &str,
        now: Instant,
    ) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to,
            code,
            detail: detail.to_owned(),
            at: now,
        };
        self.state = to;
        // Transitions are rare: a new slice of exactly the kept ones (no
        // spare capacity), which the status shares.
        let skip = (self.history.len() + 1).saturating_sub(self.history_len as usize);
        self.history = self
            .history
            .iter()
            .skip(skip)
            .cloned()
            .chain(std::iter::once(t.clone()))
            .collect();
        Some(t)
    }
}

/// An empty history, shared: a backend without transitions allocates
/// none of its own.
fn no_history() -> Arc<[Transition]> {
    static EMPTY: std::sync::OnceLock<Arc<[Transition]>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from([])).clone()
}

/// A history length as kept: at least 1, at most `u32::MAX`.
fn clamp_len(len: usize) -> u32 {
    u32::try_from(len.max(1)).unwrap_or(u32::MAX)
}

fn sanitize(checking: Checking) -> Checking {
    match checking {
        Checking::Probed { rise, fall } => Checking::Probed {
            rise: rise.max(1),
            fall: fall.max(1),
        },
        Checking::Static => Checking::Static,
    }
}

/// The fraction of jitter applied to every interval: ±10%.
pub const JITTER: f64 = 0.1;

/// `base` moved by up to ±10%: `unit` in `-1.0..=1.0` (clamped) picks where
/// in that band. The caller draws `unit` at random; tests pass it in.
pub fn jittered(base: Duration, unit: f64) -> Duration {
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(-1.0, 1.0)
    };
    base.mul_f64(1.0 + JITTER * unit)
}

#[cfg(test)]
mod tests;
