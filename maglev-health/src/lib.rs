//! Health checking for maglev: probes, the rise/fall state machine and the
//! checker that owns every backend. It never knows about VPP.
//!
//! # Module map
//!
//! - [`code`]: result codes (`L4OK` … `SOCKERR`) and operator codes.
//! - [`machine`]: the pure per-backend state machine (rise/fall counter,
//!   operator transitions, history) and interval jitter.
//! - [`probe`]: the [`Prober`](probe::Prober) trait and the HTTP(S), TCP and
//!   ICMP probes, built from a health check by [`probe::build`].
//! - [`netns`]: creating sockets inside a network namespace from a
//!   dedicated thread.
//! - [`checker`]: the [`Checker`](checker::Checker), which runs one probe
//!   task per backend, publishes transitions and keeps a lock-free snapshot.
//! - [`status`]: the published per-backend status and transition events.
//! - [`error`]: the crate's error type.
#![forbid(unsafe_code)]

pub mod checker;
pub mod code;
pub mod error;
pub mod machine;
pub mod netns;
pub mod probe;
pub mod status;

pub use checker::Checker;
pub use code::Code;
pub use error::Error;
