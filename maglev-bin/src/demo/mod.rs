//! `maglevd --demo`: the real daemon against a built-in VPP simulator (API
//! and stats, in-process) and loopback HTTP backends.
//!
//! - [`sim_vpp`]: the simulated VPP (also used by the tests and benches).
//! - [`backends`]: switchable loopback HTTP backends.

pub mod backends;
pub mod sim_vpp;

use tokio_util::sync::CancellationToken;

use crate::daemon::{Parts, Settings};

pub use backends::HttpBackend;
pub use sim_vpp::SimVpp;

/// Runs the demo until `shutdown` is cancelled.
pub async fn run(
    settings: Settings,
    parts: Parts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let _ = (settings, parts, shutdown);
    anyhow::bail!("the demo is not built yet")
}
