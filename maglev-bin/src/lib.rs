//! The composition layer behind maglev's binaries.
//!
//! # Module map
//!
//! - [`check`]: `maglevd --check`, validating a config file and printing
//!   each error on its own line with the exit-code split 0/1/2.
//!
//! The binaries in `src/bin/` are thin: they parse flags and call in here.

pub mod check;
pub mod clock;
pub mod events;
pub mod grpc;
