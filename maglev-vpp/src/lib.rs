//! maglev's side of VPP: everything that knows VPP's wire formats.
//!
//! It never knows about health checks.
//!
//! # Module map
//!
//! - [`api`]: the binary API: framing, codec and messages, the request
//!   matcher (sans-IO), and the async [`Client`] (pipelined requests,
//!   dumps, timeouts, reconnect).
//! - [`lb`]: typed LB operations over the client (conf, VIPs with pool
//!   indexes, ASes, weights, route stats indexes, observe), the
//!   `show lb vips verbose` parser, and [`apply`](lb::apply::apply) of a
//!   planner's ops.
//! - [`stats`]: the stats segment: connect and map, the bounds-checked
//!   optimistic reader, the cached LB/route [`Scrape`](stats::Scrape), and
//!   (feature `sim`) the simulator's segment writer and `stats.sock` server.
//! - `sim` (feature `sim`): an in-process VPP simulator on a unix socket,
//!   with fault injection.
//!
//! The Maglev new-flow table model lives in `maglev_core::maglev`.
#![deny(unsafe_code)]

pub mod api;
pub mod lb;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stats;

#[doc(hidden)]
pub mod fuzzing;

pub use api::client::{CLIENT_NAME, Client, ClientConfig};
pub use api::error::{Error, Retval};
pub use api::observer::{ApiEvent, ApiObserver, ApiResult, Direction};
