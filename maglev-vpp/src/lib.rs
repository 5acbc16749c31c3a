//! maglev's side of VPP: everything that knows VPP's wire formats.
//!
//! This crate will hold the binary-API codec and async client, typed LB
//! operations, the stats-segment reader, plan application and (feature
//! `sim`) the VPP simulator. It never knows about health checks.
#![deny(unsafe_code)]

pub mod stats;
