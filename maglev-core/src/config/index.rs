//! The config's reverse lookups (VIP to frontend, backend to frontends,
//! health check to backends) and its [fingerprints](super::fingerprint),
//! derived once per config on first use and kept with its data, so that
//! answering about one VIP, backend or health check costs the same at
//! 10,000 frontends as at 10, and a fingerprint costs nothing per request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use super::{Config, fingerprint};
use crate::dataplane::VipKey;

/// The reverse lookups of one [`Config`] ([`Config::index`]).
#[derive(Debug, Default)]
pub struct ConfigIndex {
    /// Each VIP's frontend.
    by_vip: BTreeMap<VipKey, Arc<str>>,
    /// Each backend's frontends, sorted by name.
    users: HashMap<String, Vec<Arc<str>>>,
    /// Each health check's backends, sorted by name.
    checked: HashMap<String, Vec<String>>,
    /// Each frontend's config fingerprint.
    fingerprints: HashMap<Arc<str>, u64>,
    /// The whole config's fingerprint.
    fingerprint: u64,
}

impl ConfigIndex {
    /// The index of `config`, built now.
    fn build(config: &Config) -> ConfigIndex {
        let mut index = ConfigIndex::default();
        for (name, fe) in config.frontends() {
            let name: Arc<str> = Arc::from(name.as_str());
            index
                .fingerprints
                .insert(name.clone(), fingerprint::frontend_fingerprint(config, fe));
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
        index.fingerprint = fingerprint::config_fingerprint(config.frontends().keys().map(|n| {
            (
                n.as_str(),
                index.fingerprints.get(n.as_str()).copied().unwrap_or(0),
            )
        }));
        index
    }

    /// The config fingerprint of the frontend named `name`
    /// ([`fingerprint::frontend_fingerprint`]), if there is one.
    pub fn frontend_fingerprint(&self, name: &str) -> Option<u64> {
        self.fingerprints.get(name).copied()
    }

    /// The whole config's fingerprint ([`fingerprint::config_fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The frontend whose VIP is `key`, if any.
    pub fn frontend_of(&self, key: &VipKey) -> Option<&Arc<str>> {
        self.by_vip.get(key)
    }

    /// The frontends using `backend` in any pool, sorted by name.
    pub fn frontends_using(&self, backend: &str) -> &[Arc<str>] {
        self.users.get(backend).map_or(&[], Vec::as_slice)
    }

    /// The backends checked by `healthcheck`, sorted by name.
    pub fn backends_checked_by(&self, healthcheck: &str) -> &[String] {
        self.checked.get(healthcheck).map_or(&[], Vec::as_slice)
    }
}

/// Where a config keeps its index: filled at the first question. Derived
/// data, so it never makes two configs unequal, and a copy of the data
/// (which is about to be changed) starts without one.
#[derive(Default)]
pub(super) struct IndexCell(OnceLock<ConfigIndex>);

impl IndexCell {
    /// The index of `config`, whose cell this is.
    pub(super) fn get(&self, config: &Config) -> &ConfigIndex {
        self.0.get_or_init(|| ConfigIndex::build(config))
    }
}

impl Clone for IndexCell {
    fn clone(&self) -> Self {
        IndexCell::default()
    }
}

impl PartialEq for IndexCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for IndexCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "IndexCell(built)"
        } else {
            "IndexCell(empty)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_answers_as_the_config_does_and_is_kept_with_its_data() {
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
        let index = config.index();
        let names = |v: &[Arc<str>]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(names(index.frontends_using("a")), ["w", "x"]);
        assert_eq!(names(index.frontends_using("b")), ["x"]);
        assert!(index.frontends_using("nope").is_empty());
        assert_eq!(index.backends_checked_by("h"), ["a"]);
        for (name, fe) in config.frontends() {
            assert_eq!(
                index.frontend_of(&fe.vip_key()).map(|n| &**n),
                Some(name.as_str())
            );
        }
        // A clone shares the data: the same index.
        assert!(std::ptr::eq(index, config.clone().index()));
        // A changed copy has its own, and compares as its data does.
        let changed = config.with_pool_weight("x", "q", "b", 7).expect("member");
        assert!(!std::ptr::eq(index, changed.index()));
        assert_ne!(config, changed);
        assert_eq!(config, config.clone());
    }
}
