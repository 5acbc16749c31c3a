//! Each frontend's active pool: the one piece of weight policy with a
//! memory. [`choose_pool`] is pure (conditions + the previous choice →
//! the choice); this register holds the previous choice, by pool name so
//! that a reload that reorders or renames pools cannot make an index point
//! at the wrong pool.
//!
//! **Invariant:** only the reconciler stores a choice ([`PoolChoices::choose`]),
//! when it plans a frontend (without VPP, a pure health checker, the watch
//! task does, as it follows the transitions); every reader (views, `/metrics`, frontend
//! states, dry runs) [`peek`](PoolChoices::peek)s, which gives what the
//! reconciler will choose at the same conditions (the choice is a fixed
//! point), and changes nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use maglev_core::config::{Config, Frontend};
use maglev_core::weights::{Serving, choose_pool};

use crate::daemon::oplog::{Aggregate, PER_OP_LINES};

/// The active pool of every frontend, by frontend name.
#[derive(Debug, Default)]
pub(crate) struct PoolChoices {
    chosen: Mutex<BTreeMap<String, String>>,
}

impl PoolChoices {
    /// A register that starts from `restored` (frontend → pool name, from
    /// the state file).
    pub(crate) fn new(restored: BTreeMap<String, String>) -> PoolChoices {
        PoolChoices {
            chosen: Mutex::new(restored),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn previous(chosen: &BTreeMap<String, String>, name: &str, fe: &Frontend) -> Option<usize> {
        let pool = chosen.get(name)?;
        fe.pools.iter().position(|p| &p.name == pool)
    }

    /// The pool the reconciler would choose for frontend `name` now,
    /// without storing it.
    pub(crate) fn peek(
        &self,
        name: &str,
        fe: &Frontend,
        serving_of: impl Fn(&str) -> Serving,
    ) -> Option<usize> {
        let previous = Self::previous(&self.lock(), name, fe);
        choose_pool(fe, serving_of, previous)
    }

    /// Chooses the pool of frontend `name` and remembers it; a change is
    /// noted in `log` (written when the caller's pass
    /// [`finish`](PoolLog::finish)es). The reconciler's alone.
    pub(crate) fn choose(
        &self,
        name: &str,
        fe: &Frontend,
        serving_of: impl Fn(&str) -> Serving,
        log: &PoolLog,
    ) -> Option<usize> {
        let mut chosen = self.lock();
        let previous = Self::previous(&chosen, name, fe);
        let choice = choose_pool(fe, serving_of, previous);
        if choice != previous {
            let from = previous.map_or(String::new(), |p| fe.pools[p].name.clone());
            let pool = choice.map(|i| fe.pools[i].name.clone());
            match &pool {
                Some(pool) => chosen.insert(name.to_owned(), pool.clone()),
                None => chosen.remove(name),
            };
            log.note(PoolChange {
                frontend: name.to_owned(),
                from,
                pool,
            });
        }
        choice
    }

    /// Every frontend's active pool, by name (for the state file).
    pub(crate) fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    /// Forgets the frontends `config` no longer has.
    pub(crate) fn retain(&self, config: &Config) {
        self.lock()
            .retain(|name, _| config.frontend(name).is_some());
    }
}

/// One frontend's new active pool, for its log line.
#[derive(Debug)]
pub(crate) struct PoolChange {
    frontend: String,
    /// The pool before (empty: none).
    from: String,
    /// The pool now (none serves: `None`).
    pool: Option<String>,
}

/// The `active-pool` lines of one pass (a sync batch, a refresh): each
/// change its own line while few, else one summary with totals per new
/// pool (the first full sync of 10,000 frontends wrote 10,000 of them).
#[derive(Debug, Default)]
pub(crate) struct PoolLog(Mutex<Aggregate<PoolChange>>);

impl PoolLog {
    fn note(&self, change: PoolChange) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note(change, |c| {
                c.pool.clone().unwrap_or_else(|| "none serves".to_owned())
            });
    }

    /// Writes the noted changes' lines.
    pub(crate) fn finish(self) {
        self.0
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .finish(
                |c| match &c.pool {
                    Some(pool) => tracing::info!(
                        frontend = c.frontend.as_str(),
                        pool = pool.as_str(),
                        from = c.from.as_str(),
                        "active-pool"
                    ),
                    None => {
                        tracing::info!(frontend = c.frontend.as_str(), "active-pool: none serves")
                    }
                },
                |frontends, by_pool| {
                    tracing::info!(
                        frontends,
                        by_pool,
                        "active-pools (summary: more than {PER_OP_LINES})"
                    )
                },
            );
    }
}
