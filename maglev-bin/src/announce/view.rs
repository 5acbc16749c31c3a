//! What readers see of announcements and of the node: the snapshot the
//! announcer publishes after every change, read by gRPC, `/metrics`, the
//! dashboard and maglevc.

use std::time::Duration;

use maglev_core::announce::{Prefix, Reason};

/// Every prefix and where its route goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcements {
    /// Whether the config has an announce section (else `prefixes` is
    /// empty).
    pub enabled: bool,
    /// Where the routes go ([`RouteTable::describe`](super::table::RouteTable::describe)).
    pub table: String,
    /// Whether they are only kept in memory.
    pub in_memory: bool,
    /// Every prefix a frontend claims and every route of ours found in the
    /// table, by prefix (IPv4 first).
    pub prefixes: Vec<PrefixView>,
}

/// One prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixView {
    /// The prefix.
    pub prefix: Prefix,
    /// The frontends whose VIP it is, by name (empty: unclaimed).
    pub frontends: Vec<String>,
    /// Whether its route is in the table.
    pub announced: bool,
    /// Why it is in that state.
    pub reason: Reason,
    /// When this process last announced or withdrew it (wall clock, ns
    /// since the epoch); `None` if it has not since its start.
    pub since_unix_nanos: Option<i64>,
    /// When the policy looks again by itself, from now.
    pub next_look: Option<Duration>,
    /// The last failure to change the table for it, if the last attempt
    /// failed.
    pub error: Option<String>,
}

/// A frontend's prefix, as its view shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontendAnnounce {
    /// Whether its prefix is announced.
    pub announced: bool,
    /// Why.
    pub reason: Reason,
}

/// The node's drain, as an operator set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    /// Who drained it.
    pub by: String,
    /// When (wall clock, ms since the epoch).
    pub at_unix_ms: i64,
}

/// This node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    /// The drain, if the node is drained.
    pub drained: Option<Drain>,
    /// Whether the config has an announce section.
    pub announce_enabled: bool,
    /// Where the routes go.
    pub table: String,
    /// Prefixes announced now.
    pub announced: usize,
    /// Prefixes known.
    pub prefixes: usize,
    /// The node's name (`--node-name`); filled by the daemon's handle,
    /// not the announcer.
    pub name: String,
    /// The running config's fingerprint
    /// ([`Config::fingerprint`](maglev_core::config::Config::fingerprint));
    /// filled by the daemon's handle, not the announcer.
    pub config_fingerprint: u64,
}
