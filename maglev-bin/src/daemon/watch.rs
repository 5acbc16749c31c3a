//! From the checker's transitions to everything that follows them: the
//! backend event for watchers, the frontend transitions they cause, the
//! flushes they ask for, and the marks that make the reconciler sync the
//! frontends using the backend (SPEC §3.4, §4.5).

use maglev_core::config::Config;
use maglev_core::weights::transition_flushes;
use maglev_health::status::{BackendEvent, Change};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::daemon::handle::Handle;
use crate::daemon::oplog::{Aggregate, PER_OP_LINES};
use crate::daemon::pools::PoolLog;
use crate::events::EventKind;

/// Runs until the daemon stops.
pub(crate) async fn run(handle: Handle) {
    let mut events = handle.checker().subscribe();
    // Frontend states as they are before any event: published once.
    refresh_frontends(&handle);
    loop {
        let event = tokio::select! {
            _ = handle.stopping() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(event) => on_backend_event(&handle, event),
            Err(RecvError::Lagged(n)) => {
                // Transitions were missed: every frontend may be affected.
                tracing::warn!(lost = n, "backend events lost; resyncing every frontend");
                handle.shared.control.mark_all(&handle.config());
                refresh_frontends(&handle);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn on_backend_event(handle: &Handle, event: BackendEvent) {
    let config = handle.config();
    let using: Vec<&str> = config.frontends_using(&event.backend).collect();
    match &event.change {
        Change::Transition(t) => {
            // The checker logs the transition itself (`backend-transition`).
            handle
                .metrics()
                .backend_transition(&event.backend, t.from.as_str(), t.to.as_str());
            for &name in &using {
                let Some(fe) = config.frontend(name) else {
                    continue;
                };
                let flush = transition_flushes(t.to, fe.flush_on_down)
                    .then_some((fe.vip_key(), event.address));
                handle.shared.control.mark(name, flush);
            }
            // A comeback that slow-starts: the reconciler syncs each step.
            let ramp = handle.next_ramp_step(&event.backend, t.at);
            handle.shared.control.ramp(&event.backend, ramp);
        }
        // Suppressed (weight 0, no flush) or released (and slow-starting
        // from now, if it is up): a weight change.
        Change::Damping(d) => {
            for &name in &using {
                handle.shared.control.mark(name, None);
            }
            let ramp = handle.next_ramp_step(&event.backend, d.at);
            handle.shared.control.ramp(&event.backend, ramp);
        }
        // Probes that could not run (or run again): no evidence, no
        // weight change; only watchers hear of it.
        Change::ProbeBlocked(_) => {}
    }
    handle.publish(EventKind::Backend {
        backend: event.backend.clone(),
        address: event.address,
        change: event.change.clone(),
    });
    // Only the frontends using the backend can change state: recomputing
    // every frontend here made each transition cost O(frontends × backends)
    // (2 ms at 1,000 × 16, see docs/performance.md).
    refresh(handle, &config, using.into_iter());
}

/// Recomputes every frontend's state and publishes the changes.
pub(crate) fn refresh_frontends(handle: &Handle) {
    let config = handle.config();
    refresh(
        handle,
        &config,
        config.frontends().keys().map(String::as_str),
    );
}

/// Recomputes the state of the frontends `names` and publishes the changes.
///
/// Above a count the `frontend-transition` (and `active-pool`) lines of
/// one pass are one summary each (`daemon::oplog::Aggregate`): the start
/// of 10,000 frontends wrote 10,000 of them; each event is still
/// published.
fn refresh<'a>(handle: &Handle, config: &'a Config, names: impl Iterator<Item = &'a str>) {
    let mut changes = Vec::new();
    let pool_log = PoolLog::default();
    {
        let mut states = handle
            .shared
            .frontend_states
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let serving_of = |b: &str| handle.serving(b, now);
        for (name, fe) in names.filter_map(|n| config.frontend(n).map(|fe| (n, fe))) {
            // Without VPP there is no reconciler: the choice is made (and
            // kept, for the thresholds' hysteresis) here, in event order.
            let active = if handle.vpp_enabled() {
                handle.active_pool(name, fe, serving_of)
            } else {
                handle.shared.pools.choose(name, fe, serving_of, &pool_log)
            };
            let state = maglev_core::frontend::frontend_state(fe, serving_of, active);
            if let Some(t) = states.update(name, state) {
                changes.push(t);
            }
        }
    }
    pool_log.finish();
    let mut lines = Aggregate::default();
    for t in &changes {
        lines.note(t, |t| format!("{}->{}", t.from, t.to));
    }
    lines.finish(
        |t| tracing::info!(frontend = %t.frontend, from = %t.from, to = %t.to, "frontend-transition"),
        |frontends, by_change| {
            tracing::info!(
                frontends,
                by_change,
                "frontend-transitions (summary: more than {PER_OP_LINES})"
            )
        },
    );
    if !changes.is_empty() {
        // A frontend's serving may decide its prefix's announcement.
        handle.shared.announce.wake();
    }
    for t in changes {
        handle.publish(EventKind::Frontend {
            frontend: t.frontend.as_str().into(),
            from: t.from,
            to: t.to,
        });
    }
}
