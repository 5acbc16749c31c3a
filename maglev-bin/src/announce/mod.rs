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
//! - [`view`]: what readers see (gRPC, `/metrics`, the dashboard, maglevc).

pub mod kernel;
pub mod privilege;
pub mod table;
pub mod view;
