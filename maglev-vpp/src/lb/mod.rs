//! The LB plugin, typed: operations over the [`Client`](crate::Client),
//! the `show lb vips verbose` parser, applying a plan, and the
//! [`Dataplane`](dataplane::Dataplane) trait a reconciler drives.
//!
//! - [`ops`]: global conf, VIP and AS listing, add/delete/weight, route
//!   stats index, and [`observe`](crate::Client::observe).
//! - [`vips_text`]: the parser of `show lb vips verbose`, the only source
//!   of VIP pool indexes and `src_ip_sticky`.
//! - [`apply`]: executing the planner's ops, pipelined where independent,
//!   failures isolated per prefix.
//! - [`dataplane`]: the `Dataplane` trait, implemented by the client and
//!   (feature `sim`) by an in-memory model.
//! - [`error`]: [`LbError`](error::LbError), a VPP error or a refusal to
//!   send.

pub mod apply;
pub mod dataplane;
pub mod error;
pub mod ops;
pub mod vips_text;
