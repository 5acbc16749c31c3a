//! The HTTP endpoint: `GET /metrics` (and `HEAD`) on every listener,
//! 404 for any other path, 405 for any other method, until the daemon
//! stops.
//!
//! The format follows the `Accept` header: OpenMetrics for Prometheus
//! (which asks for it), the Prometheus text format otherwise. Encoding runs
//! on the blocking pool, so a large scrape never holds up the daemon's
//! async tasks.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::daemon::Handle;
use crate::metrics::{Format, render_as};

/// The `/metrics` router over `handle`.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(handle)
}

async fn metrics(State(handle): State<Handle>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match tokio::task::spawn_blocking(move || render_as(&handle, format)).await {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "rendering /metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering /metrics failed\n",
            )
                .into_response()
        }
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: the only path is /metrics\n",
    )
        .into_response()
}

/// Serves `/metrics` on `listeners` until the daemon stops; connections
/// still open then get [`Settings::shutdown_grace`](crate::daemon::Settings::shutdown_grace)
/// to finish.
pub async fn serve(handle: Handle, listeners: Vec<TcpListener>) {
    let app = router(handle.clone());
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let addr = listener.local_addr().ok();
        let app = app.clone();
        let handle = handle.clone();
        servers.spawn(async move {
            let stop = handle.clone();
            let server = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.stopping().await });
            let deadline = async {
                handle.stopping().await;
                tokio::time::sleep(handle.settings().shutdown_grace).await;
            };
            tokio::select! {
                r = server => {
                    if let Err(e) = r {
                        tracing::warn!(addr = ?addr, error = %e, "metrics server failed");
                    }
                }
                _ = deadline => {
                    tracing::warn!(addr = ?addr, "metrics connections still open at shutdown; closed");
                }
            }
        });
    }
    while servers.join_next().await.is_some() {}
}
