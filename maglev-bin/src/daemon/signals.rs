//! Process signals (SPEC §8.2): SIGHUP reloads the config and the TLS
//! certificates, SIGTERM and SIGINT stop.
//! The only module that knows about signals.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::daemon::Handle;

/// Until `shutdown` is cancelled: reloads the config and the TLS files
/// on SIGHUP, and cancels
/// `shutdown` on SIGTERM or SIGINT.
pub async fn run(handle: Handle, shutdown: CancellationToken) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config and the TLS certificates");
                handle.reload().await;
                // A failure is logged; the certificates in use stay.
                let _ = handle.reload_tls();
            }
            _ = term.recv() => {
                tracing::info!("SIGTERM: stopping");
                shutdown.cancel();
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping");
                shutdown.cancel();
            }
        }
    }
}
