//! Announcements: the routes of the VIP prefixes this router announces, in
//! maglevd's own kernel routing table, for the routing daemon the operator
//! already runs (BIRD, FRR) to learn and export to BGP.
//!
//! The decision is `maglev-core`'s ([`maglev_core::announce`]); this module
//! only carries it out and reads the table back at start:
//!
//! - [`table`]: the [`RouteTable`](table::RouteTable) the routes go to, and
//!   the in-memory one (the demo, tests, embedders);
//! - [`kernel`]: the kernel table, through netlink;
//! - [`privilege`]: whether this process may change routes;
//! - [`view`]: what readers see (gRPC, `/metrics`, the dashboard, maglevc);
//! - [`announcer`]: the task that feeds the policy and carries its
//!   decisions out (adopting the table at start, repairing drift,
//!   retrying failures), `inputs` what it reads of the daemon, `shared`
//!   what it shares with the [`Handle`](crate::daemon::Handle) (the
//!   published snapshots, the drain).

pub mod announcer;
pub(crate) mod inputs;
pub mod kernel;
pub mod privilege;
pub(crate) mod shared;
pub mod table;
pub mod view;
