//! maglevd's gRPC API: the `maglev.Maglev` service over the daemon's
//! handle, with reflection and the standard health service.
//!
//! - [`service`]: every RPC of `proto/maglev.proto`.
//! - [`convert`]: the daemon's types as proto messages.
//! - [`status`]: refusals as gRPC status codes, request checks.
//! - [`watch`]: `WatchEvents` streams, their filters and lag notices.
//! - [`encoded`]: `WatchEvents` served from events encoded once.
//! - [`metered`]: every request counted by method and code.
//! - [`paging`]: paged lists (page size, byte bound, tokens) and
//!   following them as a client.
//! - [`access`]: which RPCs write, and who may call them.
//! - [`audit`]: every write RPC logged and counted with its caller.
//! - [`proto`]: the generated code (server and client).
//! - [`json`]: replies in the proto3 JSON mapping (`maglevc --json`, the
//!   web dashboard's API and events).
//!
//! [`serve`] runs them all on the daemon's listeners: `maglev.Maglev`,
//! `grpc.health.v1.Health` (`maglev.Maglev` and the server as a whole,
//! `""`, reported `SERVING` until the daemon stops) and, unless
//! `--reflection=false`, server reflection v1 and v1alpha (for older
//! `grpcurl`).
//!
//! The server's limits: at most [`STREAMS_PER_CONNECTION`] streams and
//! [`REQUESTS_PER_CONNECTION`] requests in progress per connection, an
//! HTTP/2 ping every [`KEEPALIVE_INTERVAL`] (a peer that does not answer
//! within [`KEEPALIVE_TIMEOUT`] is dropped, and the pings keep a live
//! connection clear of the idle timeout), and [`REQUEST_TIMEOUT`] for a
//! reply to start. The timeout bounds the wait for a reply's headers, not
//! a stream's life: `WatchEvents` answers at once and streams for as long
//! as its client reads. Connections are capped and timed out by
//! [`transport::conn`].

pub mod access;
pub mod audit;
pub mod convert;
pub mod encoded;
pub mod json;
pub mod metered;
pub mod paging;
pub mod proto;
pub mod service;
pub mod status;
pub mod watch;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::daemon::Handle;
use crate::grpc::access::{Guarded, Policy};
use crate::grpc::encoded::EncodedWatch;
use crate::grpc::metered::Metered;
use crate::grpc::proto::maglev_server::MaglevServer;
use crate::grpc::service::MaglevService;
use crate::transport::{self, Alpn, Conn};

/// The most HTTP/2 streams a connection may have open.
pub const STREAMS_PER_CONNECTION: u32 = 64;
/// The most requests a connection may have in progress (waiting for their
/// reply to start).
pub const REQUESTS_PER_CONNECTION: usize = 32;
/// How often an HTTP/2 ping goes to each connection.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping's answer may take before the connection is dropped.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a request may wait for its reply to start (a client's shorter
/// `grpc-timeout` wins).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves gRPC on `listeners` until the daemon stops, then drains: open
/// streams end (the event streams close themselves) and the server
/// returns, closing whatever is still open after
/// [`Settings::shutdown_grace`](crate::daemon::Settings::shutdown_grace).
pub async fn serve(handle: Handle, listeners: Vec<TcpListener>) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<MaglevServer<MaglevService>>().await;
    let tls = handle.server_tls();
    let policy = Policy::new(
        handle.settings().grpc_read_only,
        tls.as_ref()
            .is_some_and(|t| t.requires_client_certificates()),
    );
    if policy == Policy::Open
        && let Some(warning) = crate::daemon::listen::open_writes_warning(
            &crate::daemon::listen::local_addrs(&listeners),
            tls.is_some(),
        )
    {
        tracing::warn!(addrs = ?crate::daemon::listen::local_addrs(&listeners), "{warning}");
    }
    let maglev = Metered::new(
        Guarded::new(
            EncodedWatch::new(
                MaglevServer::new(MaglevService::new(handle.clone())),
                handle.clone(),
            ),
            handle.clone(),
            policy,
        ),
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
    let router = server(REQUEST_TIMEOUT)
        .add_service(health)
        .add_service(maglev)
        .add_optional_service(v1)
        .add_optional_service(v1alpha);
    let cap = transport::conn::caps(&handle).grpc;
    let incoming = ReceiverStream::new(transport::accept(
        &handle,
        listeners,
        tls,
        Alpn::H2,
        "gRPC",
        cap,
    ))
    .map(Ok::<Conn, std::io::Error>);
    let shutdown = {
        let handle = handle.clone();
        async move {
            handle.stopping().await;
            reporter
                .set_not_serving::<MaglevServer<MaglevService>>()
                .await;
        }
    };
    // A stream whose client stopped reading can never finish (its flow
    // control window stays shut), so the graceful shutdown has a deadline.
    let server = router.serve_with_incoming_shutdown(incoming, shutdown);
    transport::serve::until_stopped(&handle, server, "gRPC").await;
}

/// A tonic server with the limits of the module doc and `timeout` for a
/// reply to start.
fn server(timeout: Duration) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(STREAMS_PER_CONNECTION)
        .concurrency_limit_per_connection(REQUESTS_PER_CONNECTION)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .timeout(timeout)
}

/// A reflection builder over `maglev.proto` and the health service's
/// descriptors. Each build adds its own version's descriptors; the caller
/// adds the other's, so both versions list every service served.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    use super::*;

    /// The request timeout bounds the wait for a reply to start, not a
    /// stream's life: a stream outlives it many times over and still
    /// delivers.
    #[tokio::test(start_paused = true)]
    async fn a_stream_outlives_the_request_timeout() {
        let timeout = Duration::from_secs(1);
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("s", tonic_health::ServingStatus::Serving)
            .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            server(timeout)
                .add_service(health)
                .serve_with_incoming(incoming),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut stream = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: "s".to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.status(), ServingStatus::Serving);
        tokio::time::sleep(timeout * 10).await;
        reporter
            .set_service_status("s", tonic_health::ServingStatus::NotServing)
            .await;
        let next = stream.message().await.unwrap().unwrap();
        assert_eq!(next.status(), ServingStatus::NotServing);
    }
}
