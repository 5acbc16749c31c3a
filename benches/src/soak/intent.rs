//! Invariant 6: operator intent holds across restarts and reloads.
//!
//! Before a restart (with the state file) or a reload, the soak notes
//! which backends an operator has paused or disabled
//! ([`operator_states`]); after it, once VPP holds the desired state
//! again, each must still be paused or disabled ([`check`]). Runtime
//! weights (`SetFrontendPoolBackendWeight`) are tracked in [`Intent`]:
//! each weight the daemon accepted in an intent episode (one call at a
//! time, nothing else in flight) must still be what VPP holds for that
//! member, as the planner would compute it from the config file with the
//! operator's weights laid over it.
//!
//! What the soak cannot know for sure it does not check: a weight set in
//! a chaos window (concurrent calls and reloads land in an order the
//! soak does not see) is "unsure" until an episode sets it again; so is a
//! weight whose value in the file a reload changed (which of the two wins
//! is the daemon's documented rule, not the soak's); a frontend a reload
//! removed takes its weights with it; a restart without the state file
//! forgets everything.

use std::collections::BTreeMap;

use maglev_bin::daemon::Handle;
use maglev_core::config::Config;
use maglev_core::desired::desired_frontend;
use maglev_core::state::BackendState;
use maglev_vpp::sim::Sim;
use tokio::time::Instant;

use super::world::backend_name;

/// A pool member: frontend, pool and backend index.
pub type Member = (&'static str, &'static str, usize);

/// The runtime weights an operator set, as far as the soak knows them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Intent {
    /// By member: the weight, or `None` when the soak cannot be sure.
    weights: BTreeMap<Member, Option<u8>>,
}

impl Intent {
    /// The daemon accepted weight `w` for `m`, nothing else in flight.
    pub fn set(&mut self, m: Member, w: u8) {
        self.weights.insert(m, Some(w));
    }

    /// A weight call for `m` whose order against other calls and reloads
    /// the soak cannot see.
    pub fn unsure(&mut self, m: Member) {
        self.weights.insert(m, None);
    }

    /// The daemon moved from config `from` to `to`: members `to` lacks
    /// are forgotten, and members whose weight in the file changed become
    /// unsure.
    pub fn reloaded(&mut self, from: &Config, to: &Config) {
        self.weights.retain(|m, _| file_weight(to, *m).is_some());
        for (m, w) in &mut self.weights {
            if file_weight(from, *m) != file_weight(to, *m) {
                *w = None;
            }
        }
    }

    /// A start without the state file: nothing is kept.
    pub fn forget(&mut self) {
        self.weights.clear();
    }

    /// The weights the soak is sure of.
    pub fn sure(&self) -> impl Iterator<Item = (Member, u8)> + '_ {
        self.weights.iter().filter_map(|(m, w)| w.map(|w| (*m, w)))
    }

    /// Whether an operator set a weight of `backend` in `frontend`
    /// (sure or not).
    pub fn touches(&self, frontend: &str, backend: usize) -> bool {
        self.weights
            .keys()
            .any(|(f, _, b)| *f == frontend && *b == backend)
    }
}

/// The weight `config` (a config file) gives member `m`; `None` if it has
/// no such member.
pub fn file_weight(config: &Config, (frontend, pool, backend): Member) -> Option<u8> {
    config
        .frontend(frontend)?
        .pools
        .iter()
        .find(|p| p.name == pool)?
        .backends
        .get(&backend_name(backend))
        .map(|m| m.weight)
}

/// The backends an operator paused or disabled, by name.
pub fn operator_states(handle: &Handle) -> BTreeMap<String, BackendState> {
    handle
        .backends()
        .iter()
        .filter(|(_, s)| matches!(s.state, BackendState::Paused | BackendState::Disabled))
        .map(|(name, s)| (name.to_string(), s.state))
        .collect()
}

/// Invariant 6 after `what` (e.g. "a restart with the state file"):
/// every backend of `before` in the same state, and every weight the soak
/// is sure of held by VPP as the planner computes it from `file` with the
/// operator's weights laid over it. One line per broken intent.
pub fn check(
    what: &str,
    before: &BTreeMap<String, BackendState>,
    intent: &Intent,
    file: &Config,
    handle: &Handle,
    sim: &Sim,
) -> Vec<String> {
    let mut out = Vec::new();
    let now_states = handle.backends();
    for (name, was) in before {
        let is = now_states.get(name.as_str()).map(|s| s.state);
        if is != Some(*was) {
            out.push(format!(
                "invariant 6: backend {name} was {was} by an operator before {what}, and is {} after it",
                is.map_or("gone".to_owned(), |s| s.to_string())
            ));
        }
    }
    let mut intended = file.clone();
    for ((frontend, pool, backend), w) in intent.sure() {
        if let Ok(c) = intended.with_pool_weight(frontend, pool, &backend_name(backend), w) {
            intended = c;
        }
    }
    let now = Instant::now();
    let observed = super::invariants::observed(sim);
    for ((frontend, pool, backend), w) in intent.sure() {
        let (Ok(view), Some(fe)) = (handle.frontend(frontend), intended.frontend(frontend)) else {
            continue;
        };
        let Some(address) = intended.backend(&backend_name(backend)).map(|b| b.address) else {
            continue;
        };
        let serving_of = |b: &str| handle.serving(b, now);
        let Some(desired) = desired_frontend(&intended, frontend, serving_of, view.active_pool)
        else {
            continue;
        };
        let want = desired.ases.get(&address).map_or(0, |a| a.weight);
        let held = observed
            .get(&fe.vip_key())
            .and_then(|v| v.ases.get(&address))
            .copied();
        if held != Some(want) {
            out.push(format!(
                "invariant 6: weight {w} set by an operator for {frontend}/{pool}/{} before {what}: \
                 VPP holds {} for it after it, and should hold {want} (file says {})",
                backend_name(backend),
                held.map_or("nothing".to_owned(), |h| h.to_string()),
                file_weight(file, (frontend, pool, backend)).map_or("-".to_owned(), |f| f.to_string()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::world::config_yaml;

    fn variant(b: bool) -> Config {
        Config::from_yaml(&config_yaml(8080, 90, b), "t").unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_reload_drops_what_it_removed_and_doubts_what_it_changed() {
        let mut i = Intent::default();
        i.set(("web", "pool0", 1), 30);
        i.set(("web", "pool0", 2), 40);
        i.set(("dns", "pool0", 6), 10);
        i.unsure(("api", "pool1", 5));
        assert_eq!(file_weight(&variant(false), ("web", "pool0", 1)), Some(100));
        assert_eq!(file_weight(&variant(true), ("web", "pool0", 1)), Some(50));
        i.reloaded(&variant(false), &variant(true));
        assert_eq!(
            i.sure().collect::<Vec<_>>(),
            vec![(("web", "pool0", 2), 40)]
        );
        assert!(i.touches("web", 1));
        assert!(i.touches("api", 5));
        assert!(!i.touches("dns", 6));
        i.forget();
        assert!(!i.touches("web", 2));
    }
}
