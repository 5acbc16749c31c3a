//! Where announced routes go: a [`RouteTable`] holds one route per
//! announced VIP prefix, marked as maglevd's, and nothing else of ours.
//!
//! [`MemoryTable`] keeps them in memory: the demo (which never touches the
//! host's routes), tests and embedders that want to see the decisions
//! without a kernel.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;
use maglev_core::announce::Prefix;

/// A failure to read or change the routing table, naming the table and
/// what was asked.
#[derive(Debug, thiserror::Error)]
#[error("{table}: {action}: {message}")]
pub struct RouteError {
    /// The table, as [`RouteTable::describe`] names it.
    pub table: String,
    /// What was asked (`add 192.0.2.1/32`, `list`, `open`).
    pub action: String,
    /// What went wrong.
    pub message: String,
}

/// A routing table that holds maglevd's routes, one per announced prefix.
#[async_trait]
pub trait RouteTable: Send + Sync + std::fmt::Debug {
    /// Names the table for people: `kernel table 200 (protocol 201)`, with
    /// its network namespace if any, or `memory`.
    fn describe(&self) -> String;

    /// Whether the routes are only kept in memory (no kernel table).
    fn in_memory(&self) -> bool;

    /// Every prefix with a route of ours in the table.
    async fn list(&self) -> Result<BTreeSet<Prefix>, RouteError>;

    /// Adds the route of `prefix` (already there is not an error).
    async fn add(&self, prefix: Prefix) -> Result<(), RouteError>;

    /// Removes the route of `prefix` (already gone is not an error).
    async fn remove(&self, prefix: Prefix) -> Result<(), RouteError>;
}

/// Routes kept in memory.
#[derive(Debug, Default)]
pub struct MemoryTable {
    routes: Mutex<BTreeSet<Prefix>>,
}

impl MemoryTable {
    /// An empty table.
    pub fn new() -> MemoryTable {
        MemoryTable::default()
    }

    /// A table that already holds `routes` (as a restart finds them).
    pub fn with(routes: impl IntoIterator<Item = Prefix>) -> MemoryTable {
        MemoryTable {
            routes: Mutex::new(routes.into_iter().collect()),
        }
    }

    /// The routes held now.
    pub fn routes(&self) -> BTreeSet<Prefix> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<Prefix>> {
        // No critical section can panic half-way.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl RouteTable for MemoryTable {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn in_memory(&self) -> bool {
        true
    }

    async fn list(&self) -> Result<BTreeSet<Prefix>, RouteError> {
        Ok(self.routes())
    }

    async fn add(&self, prefix: Prefix) -> Result<(), RouteError> {
        self.lock().insert(prefix);
        Ok(())
    }

    async fn remove(&self, prefix: Prefix) -> Result<(), RouteError> {
        self.lock().remove(&prefix);
        Ok(())
    }
}
