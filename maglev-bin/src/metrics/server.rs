//! The HTTP endpoint: `GET /metrics` (and `HEAD`), the default set of
//! families (every family with `--metrics-detail`), and
//! `GET /metrics/detail`, the detail families alone (for a second scrape
//! job, usually at a longer interval); 404 for any other path, 405 for any
//! other method, until the daemon stops. Plain HTTP (the Prometheus
//! convention), or with `--metrics-tls` the gRPC listener's TLS, client
//! certificate check included.
//!
//! The format follows the `Accept` header: OpenMetrics for Prometheus
//! (which asks for it), the Prometheus text format otherwise. Concurrent
//! scrapes share one rendering ([`super::shared`]), which runs on the
//! blocking pool, so a large scrape never holds up the daemon's async
//! tasks.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::daemon::Handle;
use crate::metrics::{Families, Format};
use crate::transport;

/// The `/metrics` router over `handle`.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/detail", get(detail))
        .fallback(not_found)
        .with_state(handle)
}

async fn metrics(State(handle): State<Handle>, headers: axum::http::HeaderMap) -> Response {
    let families = if handle.settings().metrics_detail {
        Families::All
    } else {
        Families::Default
    };
    answer(handle, &headers, families).await
}

async fn detail(State(handle): State<Handle>, headers: axum::http::HeaderMap) -> Response {
    answer(handle, &headers, Families::Detail).await
}

async fn answer(handle: Handle, headers: &axum::http::HeaderMap, families: Families) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match handle
        .metrics()
        .renderings()
        .get(&handle, families, format)
        .await
    {
        Some(rendered) => (
            [(header::CONTENT_TYPE, format.content_type())],
            rendered.into_body(),
        )
            .into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering /metrics failed\n",
        )
            .into_response(),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: the paths are /metrics and /metrics/detail\n",
    )
        .into_response()
}

/// Serves `/metrics` on `listeners` (over the gRPC listener's TLS with
/// `--metrics-tls`) until the daemon stops; connections still open then
/// get [`Settings::shutdown_grace`](crate::daemon::Settings::shutdown_grace)
/// to finish.
pub async fn serve(handle: Handle, listeners: Vec<TcpListener>) {
    let tls = handle.settings().metrics_tls;
    transport::serve::serve_http(handle.clone(), listeners, tls, "metrics", router(handle)).await;
}
