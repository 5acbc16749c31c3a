//! maglevd's gRPC API: the `maglev.Maglev` service over the daemon's
//! handle, with reflection and the standard health service.
//!
//! - [`service`]: every RPC of `proto/maglev.proto`.
//! - [`convert`]: the daemon's types as proto messages.
//! - [`status`]: refusals as gRPC status codes, request checks.
//! - [`watch`]: `WatchEvents` streams, their filters and lag notices.
//! - [`metered`]: every request counted by method and code.
//! - [`proto`]: the generated code (server and client).
//!
//! [`serve`] runs them all on the daemon's listeners: `maglev.Maglev`,
//! `grpc.health.v1.Health` (`maglev.Maglev` and the server as a whole,
//! `""`, reported `SERVING` until the daemon stops) and, unless
//! `--reflection=false`, server reflection v1 and v1alpha (for older
//! `grpcurl`).

pub mod convert;
pub mod metered;
pub mod proto;
pub mod service;
pub mod status;
pub mod watch;

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::daemon::Handle;
use crate::grpc::metered::Metered;
use crate::grpc::proto::maglev_server::MaglevServer;
use crate::grpc::service::MaglevService;

/// How long accepting waits after a failed `accept` (out of descriptors,
/// say) before trying again, so a persistent failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves gRPC on `listeners` until the daemon stops, then drains: open
/// streams end (the event streams close themselves) and the server
/// returns, closing whatever is still open after
/// [`Settings::shutdown_grace`](crate::daemon::Settings::shutdown_grace).
pub async fn serve(handle: Handle, listeners: Vec<TcpListener>) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<MaglevServer<MaglevService>>().await;
    let maglev = Metered::new(
        MaglevServer::new(MaglevService::new(handle.clone())),
        handle.clone(),
    );
    // Descriptors that do not load turn reflection off, logged.
    let reflect = handle.settings().reflection;
    let v1 = reflect
        .then(|| {
            reflection()
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                )
                .build_v1()
        })
        .and_then(|r| {
            r.map_err(|e| tracing::error!(error = %e, "gRPC reflection is off"))
                .ok()
        });
    let v1alpha = reflect
        .then(|| {
            reflection()
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .build_v1alpha()
        })
        .and_then(|r| {
            r.map_err(|e| tracing::error!(error = %e, "gRPC reflection v1alpha is off"))
                .ok()
        });
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(maglev)
        .add_optional_service(v1)
        .add_optional_service(v1alpha);
    let incoming = accept(&handle, listeners).map(Ok::<TcpStream, std::io::Error>);
    let shutdown = {
        let handle = handle.clone();
        async move {
            handle.stopping().await;
            reporter
                .set_not_serving::<MaglevServer<MaglevService>>()
                .await;
        }
    };
    let server = router.serve_with_incoming_shutdown(incoming, shutdown);
    // A stream whose client stopped reading can never finish (its flow
    // control window stays shut), so the graceful shutdown has a deadline.
    let deadline = async {
        handle.stopping().await;
        tokio::time::sleep(handle.settings().shutdown_grace).await;
    };
    tokio::select! {
        served = server => if let Err(e) = served {
            tracing::error!(error = %e, "gRPC server failed");
        },
        _ = deadline => {
            tracing::warn!("gRPC connections still open at shutdown; closed");
        }
    }
}

/// A reflection builder over `maglev.proto` and the health service's
/// descriptors. Each build adds its own version's descriptors; the caller
/// adds the other's, so both versions list every service served.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The connections of every listener as one stream, until the daemon
/// stops. Each listener has an accept task; an accept error is logged and
/// retried after [`ACCEPT_BACKOFF`].
fn accept(handle: &Handle, listeners: Vec<TcpListener>) -> ReceiverStream<TcpStream> {
    let (tx, rx) = mpsc::channel(16);
    for listener in listeners {
        let tx = tx.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = handle.stopping() => return,
                    _ = tx.closed() => return,
                    a = listener.accept() => a,
                };
                match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        if tx.send(stream).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            listener = ?listener.local_addr().ok(),
                            error = %e,
                            "gRPC accept failed"
                        );
                        tokio::select! {
                            _ = handle.stopping() => return,
                            _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                }
            }
        });
    }
    ReceiverStream::new(rx)
}
