//! The LB plugin, typed: operations over the [`Client`](crate::Client),
//! the `show lb vips verbose` parser, and applying a plan.
//!
//! - [`ops`]: global conf, VIP and AS listing, add/delete/weight, route
//!   stats index, and [`observe`](crate::Client::observe).
//! - [`vips_text`]: the parser of `show lb vips verbose`, the only source
//!   of VIP pool indexes and `src_ip_sticky`.
//! - [`apply`]: executing the planner's ops, pipelined where independent.

pub mod apply;
pub mod ops;
pub mod vips_text;
