//! The soak's invariants, checked against what the simulator holds:
//!
//! 1. a backend that is down, disabled or paused has weight 0 in VPP within
//!    one reconcile of its transition while VPP is reachable ([`Drains`]);
//! 2. once faults stop, VPP holds exactly the planner's desired state
//!    ([`converged`]);
//! 3. no weight is lowered during the warm-up after a restart
//!    ([`lowered`]);
//! 4. bounded tasks, API sessions and memory, no leaked VPP session
//!    (checked by the driver with [`rss_kib`] and the simulator's clients).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use maglev_bin::daemon::Handle;
use maglev_core::dataplane::{DesiredState, ObservedState, VipKey};
use maglev_core::desired::desired_frontend;
use maglev_core::plan::{Op, PendingFlushes, plan_all};
use maglev_core::state::BackendState;
use maglev_vpp::sim::Sim;
use tokio::time::Instant;

/// What the simulator holds, as the planner reads VPP.
pub fn observed(sim: &Sim) -> ObservedState {
    sim.with_model(|m| m.observed())
}

/// The desired state now: the running config, the checker's states and
/// each frontend's active pool, through the planner's own `desired`.
pub fn desired(handle: &Handle) -> DesiredState {
    let config = handle.config();
    let now = Instant::now();
    let serving_of = |b: &str| handle.serving(b, now);
    config
        .frontends()
        .keys()
        .filter_map(|name| {
            let active = handle.frontend(name).ok()?.active_pool;
            desired_frontend(&config, name, serving_of, active)
        })
        .map(|v| (v.key, v))
        .collect()
}

/// The ops that would still be needed to make VPP hold the desired state
/// (none: converged).
pub fn converged(handle: &Handle, sim: &Sim) -> Vec<Op> {
    plan_all(&desired(handle), &observed(sim), &PendingFlushes::new())
}

/// Every AS weight of a state, by VIP and address.
pub fn weights(state: &ObservedState) -> BTreeMap<(VipKey, IpAddr), u8> {
    state
        .values()
        .flat_map(|v| v.ases.iter().map(|(a, w)| ((v.key, *a), *w)))
        .collect()
}

/// The weights of `before` that `now` holds lower (or not at all), as
/// (VIP, AS, before, now).
pub fn lowered(
    before: &BTreeMap<(VipKey, IpAddr), u8>,
    now: &ObservedState,
) -> Vec<(VipKey, IpAddr, u8, u8)> {
    let now = weights(now);
    before
        .iter()
        .filter(|(_, w)| **w > 0)
        .filter_map(|(k, w)| {
            let n = now.get(k).copied().unwrap_or(0);
            (n < *w).then_some((k.0, k.1, *w, n))
        })
        .collect()
}

/// Invariant 1: when each backend went down, disabled or paused, and
/// whether a violation was already reported for that episode.
#[derive(Debug, Default)]
pub struct Drains {
    since: BTreeMap<String, (BackendState, Instant, bool)>,
}

/// How long "one reconcile" may take once VPP is reachable: the
/// reconciler acts on a transition at once; this covers a batch in flight
/// and the sampling.
pub const REACT: Duration = Duration::from_millis(1500);

impl Drains {
    /// Checks every backend at `now`; `reachable_from` is when VPP became
    /// reachable (and warm-up was over) and stayed so. Returns the new
    /// violations.
    pub fn check(
        &mut self,
        handle: &Handle,
        observed: &ObservedState,
        now: Instant,
        reachable_from: Option<Instant>,
    ) -> Vec<String> {
        let config = handle.config();
        let mut out = Vec::new();
        let snapshot = handle.backends();
        self.since
            .retain(|name, _| snapshot.contains_key(name.as_str()));
        for (name, status) in &snapshot {
            let bad = matches!(
                status.state,
                BackendState::Down | BackendState::Disabled | BackendState::Paused
            );
            if !bad {
                self.since.remove(name.as_ref());
                continue;
            }
            let entry = self
                .since
                .entry(name.to_string())
                .or_insert((status.state, now, false));
            if entry.0 != status.state {
                *entry = (status.state, now, false);
            }
            let Some(reachable) = reachable_from else {
                continue;
            };
            if entry.2 || now < entry.1.max(reachable) + REACT {
                continue;
            }
            for fe in config.frontends_using(name) {
                let Some(frontend) = config.frontend(fe) else {
                    continue;
                };
                let weight = observed
                    .get(&frontend.vip_key())
                    .and_then(|v| v.ases.get(&status.address))
                    .copied()
                    .unwrap_or(0);
                if weight > 0 {
                    entry.2 = true;
                    out.push(format!(
                        "invariant 1: backend {name} ({}) is {} since {:.1} s, VPP reachable since {:.1} s, \
                         and still has weight {weight} in {fe}",
                        status.address,
                        status.state,
                        now.duration_since(entry.1).as_secs_f64(),
                        now.duration_since(reachable).as_secs_f64(),
                    ));
                }
            }
        }
        out
    }
}

/// The resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    crate::usage(std::process::id()).map_or(0, |(_, rss, _)| rss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maglev_core::dataplane::{Encap, ObservedVip};

    fn state(ases: &[(&str, u8)]) -> ObservedState {
        let key = VipKey::host("192.0.2.1".parse().unwrap(), None, 0);
        let vip = ObservedVip {
            key,
            encap: Encap::for_backend("127.0.0.1".parse().unwrap()),
            table_len: 1024,
            src_ip_sticky: false,
            ases: ases.iter().map(|(a, w)| (a.parse().unwrap(), *w)).collect(),
        };
        [(key, vip)].into()
    }

    #[test]
    fn lowered_names_each_weight_that_fell_or_went() {
        let before = weights(&state(&[
            ("127.0.0.1", 100),
            ("127.0.0.2", 50),
            ("127.0.0.3", 0),
        ]));
        assert!(lowered(&before, &state(&[("127.0.0.1", 100), ("127.0.0.2", 60)])).is_empty());
        let key = VipKey::host("192.0.2.1".parse().unwrap(), None, 0);
        assert_eq!(
            lowered(&before, &state(&[("127.0.0.1", 10), ("127.0.0.3", 0)])),
            vec![
                (key, "127.0.0.1".parse().unwrap(), 100, 10),
                (key, "127.0.0.2".parse().unwrap(), 50, 0),
            ]
        );
    }
}
