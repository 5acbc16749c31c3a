//! What readers see of a frontend: the config joined with the backends'
//! states and the weights maglev wants in VPP, computed on demand from the
//! snapshots, one frontend at a time (a page of a listing builds the views
//! of its own frontends only); and the config's reverse lookups
//! ([`ConfigIndex`]: VIP to frontend, backend to frontends, health check
//! to backends), built once per config and shared by every reader.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use maglev_core::config::{Config, Frontend};
use maglev_core::dataplane::{Encap, VipKey};
use maglev_core::desired::member_weights;
use maglev_core::frontend::frontend_state;
use maglev_core::state::{BackendState, FrontendState};
use maglev_core::weights::Serving;

use crate::daemon::tables::VipTable;

/// One frontend as the API shows it.
#[derive(Debug, Clone)]
pub struct FrontendView {
    /// Its name.
    pub name: String,
    /// Its configuration.
    pub frontend: Frontend,
    /// Its VIP key in VPP.
    pub key: VipKey,
    /// The encap its backends need (`None` with no backend).
    pub encap: Option<Encap>,
    /// Its aggregate state.
    pub state: FrontendState,
    /// The index of the active pool, if any pool has a usable backend.
    pub active_pool: Option<usize>,
    /// Every pool member, in pool order and then by name.
    pub members: Vec<MemberView>,
    /// Whether warm-up has released it to VPP sync.
    pub released: bool,
    /// Its new-flow table as VPP holds it (predicted); `None` while VPP
    /// does not hold its VIP or is away.
    pub table: Option<VipTable>,
}

/// One pool member as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The pool's index in priority order.
    pub pool: usize,
    /// The backend's name.
    pub backend: String,
    /// Its address.
    pub address: std::net::IpAddr,
    /// Its state.
    pub state: BackendState,
    /// Flap damping holds it at weight 0.
    pub suppressed: bool,
    /// Its slow-start step (`0..slow_start::STEPS`) while it ramps.
    pub ramp: Option<u8>,
    /// Its configured weight.
    pub weight: u8,
    /// The weight maglev wants VPP to use.
    pub effective_weight: u8,
}

impl FrontendView {
    /// The view of frontend `name` of `config`, with backend conditions
    /// from `serving_of` and pool `active` active; `None` if there is no
    /// such frontend.
    pub fn build(
        config: &Config,
        name: &str,
        serving_of: impl Fn(&str) -> Serving,
        active: Option<usize>,
        released: bool,
    ) -> Option<FrontendView> {
        let fe = config.frontend(name)?;
        let members = member_weights(fe, &serving_of, active)
            .into_iter()
            .map(|m| {
                let serving = serving_of(m.backend);
                (m, serving)
            })
            .map(|(m, serving)| MemberView {
                pool: m.pool,
                backend: m.backend.to_owned(),
                address: config.backend(m.backend).map_or(fe.address, |b| b.address),
                state: serving.state,
                suppressed: serving.suppressed,
                ramp: serving.ramp,
                weight: m.configured,
                effective_weight: m.effective.weight,
            })
            .collect::<Vec<_>>();
        let encap = members.first().map(|m| Encap::for_backend(m.address));
        Some(FrontendView {
            name: name.to_owned(),
            key: fe.vip_key(),
            encap,
            state: frontend_state(fe, &serving_of, active),
            active_pool: active,
            members,
            released,
            table: None,
            frontend: fe.clone(),
        })
    }

    /// The members of pool `index`.
    pub fn pool_members(&self, index: usize) -> impl Iterator<Item = &MemberView> {
        self.members.iter().filter(move |m| m.pool == index)
    }
}

/// The configured frontend whose VIP is `key`, if any: a lookup in the
/// config's [`ConfigIndex`] (built once per config).
pub fn frontend_of(config: &Config, key: &VipKey) -> Option<Arc<str>> {
    ConfigIndex::of(config).by_vip.get(key).cloned()
}

/// The reverse lookups readers need, built once per config (see
/// [`ConfigIndex::of`]) so that answering about one VIP, backend or
/// health check costs the same at 10,000 frontends as at 10.
#[derive(Debug, Default)]
pub struct ConfigIndex {
    /// Each VIP's frontend.
    pub by_vip: BTreeMap<VipKey, Arc<str>>,
    /// Each backend's frontends, sorted by name.
    pub users: HashMap<String, Vec<Arc<str>>>,
    /// Each health check's backends, sorted by name.
    pub checked: HashMap<String, Vec<String>>,
}

/// How many configs' indexes are kept (the running one, the file's, a
/// reload's, a weight change's).
const INDEXES: usize = 4;

/// The indexes of the latest configs asked about, newest last; each with
/// its config, which keeps the config's data alive so that an address
/// match is an identity match.
static INDEX_CACHE: Mutex<Vec<(Config, Arc<ConfigIndex>)>> = Mutex::new(Vec::new());

impl ConfigIndex {
    /// The index of `config`: built at the first question about this
    /// config (the same data: clones share it) and shared after that.
    pub fn of(config: &Config) -> Arc<ConfigIndex> {
        let same = |c: &Config| std::ptr::eq(c.frontends(), config.frontends());
        {
            let cache = INDEX_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, index)) = cache.iter().rev().find(|(c, _)| same(c)) {
                return index.clone();
            }
        }
        let index = Arc::new(ConfigIndex::build(config));
        let mut cache = INDEX_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.iter().any(|(c, _)| same(c)) {
            if cache.len() >= INDEXES {
                cache.remove(0);
            }
            cache.push((config.clone(), index.clone()));
        }
        index
    }

    /// The index of `config`, built now.
    pub fn build(config: &Config) -> ConfigIndex {
        let mut index = ConfigIndex::default();
        for (name, fe) in config.frontends() {
            let name: Arc<str> = Arc::from(name.as_str());
            index
                .by_vip
                .entry(fe.vip_key())
                .or_insert_with(|| name.clone());
            let mut members: Vec<&str> = fe
                .pools
                .iter()
                .flat_map(|p| p.backends.keys().map(String::as_str))
                .collect();
            members.sort_unstable();
            members.dedup();
            for b in members {
                // Frontends come in name order: each list stays sorted.
                index
                    .users
                    .entry(b.to_owned())
                    .or_default()
                    .push(name.clone());
            }
        }
        for (name, b) in config.backends() {
            if let Some(hc) = &b.healthcheck {
                index
                    .checked
                    .entry(hc.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        index
    }

    /// The frontends using `backend`, sorted by name.
    pub fn frontends_using(&self, backend: &str) -> &[Arc<str>] {
        self.users.get(backend).map_or(&[], Vec::as_slice)
    }

    /// The backends checked by `healthcheck`, sorted by name.
    pub fn backends_checked_by(&self, healthcheck: &str) -> &[String] {
        self.checked.get(healthcheck).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_answers_as_the_config_does_and_is_shared_per_config() {
        let yaml = r#"
maglev:
  healthchecks:
    h: { type: tcp, port: 80 }
  backends:
    a: { address: 10.0.0.1, healthcheck: h }
    b: { address: 10.0.0.2 }
  frontends:
    x:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools:
        - { name: p, backends: { a: {} } }
        - { name: q, backends: { b: {} } }
    w:
      address: 192.0.2.2
      protocol: tcp
      port: 80
      pools:
        - { name: p, backends: { a: {} } }
"#;
        let config = Config::from_yaml(yaml, "test.yaml").expect("valid");
        let index = ConfigIndex::of(&config);
        let names = |v: &[Arc<str>]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(names(index.frontends_using("a")), ["w", "x"]);
        assert_eq!(names(index.frontends_using("b")), ["x"]);
        assert!(index.frontends_using("nope").is_empty());
        assert_eq!(index.backends_checked_by("h"), ["a"]);
        for (name, fe) in config.frontends() {
            assert_eq!(
                frontend_of(&config, &fe.vip_key()).as_deref(),
                Some(name.as_str())
            );
        }
        // A clone is the same config: the same index.
        assert!(Arc::ptr_eq(&index, &ConfigIndex::of(&config.clone())));
    }
}
