//! `maglevd --demo`: the real daemon against a built-in VPP simulator (API
//! and stats, in-process) and loopback HTTP backends.

use tokio_util::sync::CancellationToken;

use crate::daemon::{Parts, Settings};

/// Runs the demo until `shutdown` is cancelled.
pub async fn run(settings: Settings, parts: Parts, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = (settings, parts, shutdown);
    anyhow::bail!("the demo is not built yet")
}
