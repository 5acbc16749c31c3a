//! The composition layer behind maglev's binaries.
//!
//! # Module map
//!
//! - [`check`]: `maglevd --check`, validating a config file and printing
//!   each error on its own line with the exit-code split 0/1/2.
//! - [`cli`]: `maglevc`, the operator CLI: command tree, parser, shell,
//!   rendering, completions and man page.
//! - [`daemon`]: the composition (settings, parts, the reconciler, the VPP
//!   supervisor, the counter scrape, reload, signals) behind [`daemon::Handle`].
//! - [`events`]: the fan-out of backend, frontend, VPP-change and log events.
//! - [`fleet`]: gRPC clients of other routers' maglevds and the verdicts on
//!   whether their Maglev tables agree.
//! - [`grpc`]: the `maglev.Maglev` gRPC service, reflection and health.
//! - [`metrics`]: Prometheus `/metrics`.
//! - [`web`]: the web dashboard (page, JSON API, live events, actions).
//! - [`demo`]: `maglevd --demo`, the daemon against a built-in simulator and
//!   loopback backends.
//! - [`logging`]: the daemon's log output.
//! - [`clock`]: wall-clock time for people.
//! - [`transport`]: TCP and TLS connections, peers and their certificates.
//!
//! The binaries in `src/bin/` are thin: they parse flags and call in here.

pub mod announce;
pub mod check;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod demo;
pub mod events;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod logging;
pub mod maglevt;
pub mod manpage;
pub mod metrics;
pub mod transport;
pub mod web;

/// The crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("MAGLEV_COMMIT");
/// The date of that commit (`unknown` outside a git checkout).
pub const BUILD_DATE: &str = env!("MAGLEV_BUILD_DATE");
/// What `--version` prints after the program name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MAGLEV_COMMIT"),
    ", ",
    env!("MAGLEV_BUILD_DATE"),
    ")"
);
