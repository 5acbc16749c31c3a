//! The pure core of maglev: the vocabulary every other crate speaks.
//!
//! Nothing here does I/O, spawns tasks or reads a clock: time is passed in
//! by the caller, so every rule is a plain function that tests can drive.
//!
//! # Module map
//!
//! - [`config`]: the YAML schema, its strict parse and semantic validation,
//!   and the immutable, cheaply shared [`Config`](config::Config).
//! - [`state`]: backend and frontend state vocabulary.
//! - [`weights`]: what a backend is to the weight rules ([`Serving`](weights::Serving)),
//!   the active-pool choice with its thresholds, effective weight and flush
//!   decision.
//! - [`slow_start`]: the weight ramp of a backend that comes back.
//! - [`frontend`]: frontend state aggregation and its transitions.
//! - [`dataplane`]: VIP keys, encapsulation, and the desired and observed
//!   dataplane state of each VIP.
//! - [`desired`]: building the desired dataplane from config and states.
//! - [`plan`]: the deterministic diff planner (desired vs observed → ops).
//! - [`maglev`]: the model of VPP's Maglev new-flow table (bucket shares,
//!   flows moved by a change), identical to the `lb` plugin's, its
//!   `auto` sizing and its fingerprint.
//! - [`prediction`]: what a plan does to each VIP's table (the movement a
//!   dry run shows and a sync counts).
//! - [`warmup`]: the restart-neutral start-up policy.
//! - [`reload`]: what a reload does to VPP's VIPs (deleted, recreated)
//!   and the share of deletions allowed without force.
//! - [`announce`]: whether to announce a VIP prefix to the routing
//!   daemon (serving, VPP, warm-up, drain, damping), and when to look again.
//! - [`schedule`]: which frontends the reconciler syncs next: coalescing,
//!   batching, warm-up gating and retry backoff.
#![forbid(unsafe_code)]

pub mod announce;
pub mod config;
pub mod dataplane;
pub mod desired;
pub mod frontend;
pub mod maglev;
pub mod plan;
pub mod prediction;
pub mod reload;
pub mod schedule;
pub mod slow_start;
pub mod state;
pub mod warmup;
pub mod weights;

#[doc(hidden)]
pub mod fuzzing;
