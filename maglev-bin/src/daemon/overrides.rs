//! Operators' overrides of the config file: a backend paused, disabled
//! (or enabled against the file's `enabled: false`), and a pool member's
//! runtime weight, each with who set it and when. They are state: the
//! state file keeps them ([`crate::daemon::state_file`]), a restart and a
//! reload keep them.
//!
//! **The rule** (docs/user-guide.md, "Operator overrides"): an override
//! wins over the config file until an operator clears it (`maglevc clear
//! override`, or the opposite action), except that a config file that
//! changes the same key (a member's `weight`, a backend's `enabled`) since
//! the override was set replaces it: the file's new value applies, logged
//! at INFO naming both. A key removed from the file removes its override.
//! The same rule applies at a start, against the file the daemon starts
//! with.
//!
//! The running config is the file's with the weight overrides applied
//! ([`apply_weights`]), so the planner, and the first sync after a start,
//! only ever see the override.

use std::collections::BTreeMap;

use maglev_core::config::Config;
use maglev_health::persist::{Intent, SavedIntent, SavedOverrides, SavedWeight, WeightKey};

/// The file's weight of pool member `backend` of `frontend`'s `pool`.
pub(crate) fn file_weight(
    config: &Config,
    frontend: &str,
    pool: &str,
    backend: &str,
) -> Option<u8> {
    config
        .frontend(frontend)?
        .pools
        .iter()
        .find(|p| p.name == pool)?
        .backends
        .get(backend)
        .map(|m| m.weight)
}

/// `file` with every weight override applied (one whose member the file
/// lacks is skipped: [`rebase`] drops it first).
pub(crate) fn apply_weights(file: &Config, weights: &BTreeMap<WeightKey, SavedWeight>) -> Config {
    let mut config = file.clone();
    for ((frontend, pool, backend), w) in weights {
        if let Ok(c) = config.with_pool_weight(frontend, pool, backend, w.weight) {
            config = c;
        }
    }
    config
}

/// Applies the rule to `set` for the config file `file` (at a reload or a
/// start, `when` says which, for the log): drops every override whose key
/// the file no longer has or whose file value changed since it was set,
/// logging each at INFO with both values.
pub(crate) fn rebase(set: &mut SavedOverrides, file: &Config, when: &str) {
    rebase_quietly(set, file, Some(when));
}

/// [`rebase`], logging only with `when`.
pub(crate) fn rebase_quietly(set: &mut SavedOverrides, file: &Config, when: Option<&str>) {
    let log = when.is_some();
    let when = when.unwrap_or("");
    set.weights.retain(|(frontend, pool, backend), w| {
        match file_weight(file, frontend, pool, backend) {
            None => {
                if !log {
                    return false;
                }
                tracing::info!(
                    frontend, pool, backend, weight = w.weight, by = %w.by,
                    "override-dropped: the member left the config file at {when}; its weight override set by {} goes",
                    w.by
                );
                false
            }
            Some(now) if now != w.file_weight => {
                if !log {
                    return false;
                }
                tracing::info!(
                    frontend, pool, backend, override_weight = w.weight, by = %w.by,
                    file_weight_was = w.file_weight, file_weight = now,
                    "override-replaced: the config file changed the weight from {} to {now} at {when}; it replaces the weight {} set by {}",
                    w.file_weight, w.weight, w.by
                );
                false
            }
            Some(_) => true,
        }
    });
    set.backends.retain(|backend, i| match file.backend(backend) {
        None => {
            if !log {
                return false;
            }
            tracing::info!(
                backend, intent = %i.intent, by = %i.by,
                "override-dropped: the backend left the config file at {when}"
            );
            false
        }
        Some(b) if b.enabled != i.file_enabled => {
            if !log {
                return false;
            }
            tracing::info!(
                backend, intent = %i.intent, by = %i.by, file_enabled = b.enabled,
                "override-replaced: the config file changed enabled from {} to {} at {when}; it replaces {} by {}",
                i.file_enabled, b.enabled, i.intent, i.by
            );
            false
        }
        Some(_) => true,
    });
}

/// The intents to start the checker with, by backend.
pub(crate) fn intents(set: &SavedOverrides) -> BTreeMap<String, Intent> {
    set.backends
        .iter()
        .map(|(name, i)| (name.clone(), i.intent))
        .collect()
}

/// What an operator cleared or asks to clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideKey {
    /// A backend's state (paused, disabled, enabled).
    Backend(String),
    /// A pool member's weight: frontend, pool, backend.
    Weight(String, String, String),
}

/// One override, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// A backend's state.
    Backend {
        /// The backend.
        backend: String,
        /// What it is.
        intent: SavedIntent,
    },
    /// A pool member's weight.
    Weight {
        /// Frontend, pool, backend.
        key: WeightKey,
        /// What it is.
        weight: SavedWeight,
    },
}

/// Every override of `set`, backends first, each sorted by name.
pub(crate) fn list(set: &SavedOverrides) -> Vec<Override> {
    let backends = set.backends.iter().map(|(b, i)| Override::Backend {
        backend: b.clone(),
        intent: i.clone(),
    });
    let weights = set.weights.iter().map(|(k, w)| Override::Weight {
        key: k.clone(),
        weight: w.clone(),
    });
    backends.chain(weights).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "
maglev:
  backends:
    a: { address: 10.0.0.1 }
    b: { address: 10.0.0.2 }
  frontends:
    f:
      address: 192.0.2.1
      pools:
        - name: p
          backends: { a: { weight: 100 }, b: { weight: 50 } }
";

    fn weight(w: u8, file: u8) -> SavedWeight {
        SavedWeight {
            weight: w,
            file_weight: file,
            by: "alice".into(),
            at_unix_ms: 0,
        }
    }

    fn key(b: &str) -> WeightKey {
        ("f".into(), "p".into(), b.into())
    }

    /// The messages logged while `f` runs.
    fn logged(f: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt;
        struct Messages(Arc<Mutex<Vec<String>>>);
        struct Visit<'a>(&'a mut String);
        impl tracing::field::Visit for Visit<'_> {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    *self.0 = format!("{v:?}");
                }
            }
        }
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Messages {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let mut text = String::new();
                e.record(&mut Visit(&mut text));
                self.0.lock().unwrap().push(text);
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Messages(seen.clone()));
        tracing::subscriber::with_default(subscriber, f);
        seen.lock().unwrap().clone()
    }

    #[test]
    fn a_replaced_override_is_logged_naming_both_values() {
        let file = Config::from_yaml(FILE, "t.yaml").unwrap();
        let mut set = SavedOverrides::default();
        set.weights.insert(key("b"), weight(20, 40));
        let lines = logged(|| rebase(&mut set, &file, "reload"));
        assert_eq!(
            lines,
            [
                "override-replaced: the config file changed the weight from 40 to 50 at reload; it replaces the weight 20 set by alice"
            ]
        );
        // Quietly: the same outcome, nothing logged.
        let mut set = SavedOverrides::default();
        set.weights.insert(key("b"), weight(20, 40));
        assert!(logged(|| rebase_quietly(&mut set, &file, None)).is_empty());
        assert!(set.weights.is_empty());
    }

    #[test]
    fn a_file_change_of_the_same_key_replaces_the_override_and_others_stay() {
        let file = Config::from_yaml(FILE, "t.yaml").unwrap();
        let mut set = SavedOverrides::default();
        set.weights.insert(key("a"), weight(10, 100));
        set.weights.insert(key("b"), weight(20, 40));
        set.weights
            .insert(("f".into(), "p".into(), "gone".into()), weight(1, 1));
        let disabled = |file_enabled| SavedIntent {
            intent: Intent::Disabled,
            by: "bob".into(),
            at_unix_ms: 0,
            file_enabled,
        };
        set.backends.insert("a".into(), disabled(true));
        set.backends.insert("b".into(), disabled(false));
        rebase(&mut set, &file, "reload");
        // a: the file still says 100, as when it was set: the override holds.
        // b: the file went from 40 to 50: the file wins.
        assert_eq!(set.weights.keys().collect::<Vec<_>>(), [&key("a")]);
        assert_eq!(set.backends.keys().collect::<Vec<_>>(), ["a"]);
        let running = apply_weights(&file, &set.weights);
        assert_eq!(file_weight(&running, "f", "p", "a"), Some(10));
        assert_eq!(file_weight(&running, "f", "p", "b"), Some(50));
    }
}
