//! The page's API for the peers (`--peer`), writes: an admin's actions
//! on a peer's tab (pause, resume, enable, disable, weight, drain).
//!
//! A forwarded action needs the same here as a local one (an admin
//! session, the CSRF token), then goes to the peer over gRPC with this
//! daemon's client identity (`--peer-cert`): the peer's own access rules
//! decide and its audit trail records the call as any other. This
//! daemon's audit trail records it too, the RPC with `peer` (the target)
//! in its arguments.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::grpc::audit::Outcome;
use crate::grpc::json;
use crate::grpc::proto;
use crate::web::api::{self, ApiError, WeightBody, error};
use crate::web::peer_api::find;
use crate::web::peers::READ_TIMEOUT;
use crate::web::{App, Visitor};

/// Forwards one write to `peer` after this daemon's checks, and records
/// it in this daemon's audit trail with the peer named in its arguments.
async fn forward<M, F, Fut>(
    app: &App,
    visitor: &Visitor,
    headers: &HeaderMap,
    peer: &str,
    rpc: &str,
    mut args: serde_json::Value,
    call: F,
) -> Response
where
    M: json::Reply,
    F: FnOnce(proto::maglev_client::MaglevClient<tonic::transport::Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<M>, tonic::Status>>,
{
    let p = match find(app, peer) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    args["peer"] = serde_json::Value::String(p.name.clone());
    let args = args.to_string();
    if let Err(e) = api::may_write(app, visitor, headers, rpc, &args) {
        return e.into_response();
    }
    let r = match tokio::time::timeout(READ_TIMEOUT, call(p.client())).await {
        Ok(r) => r,
        Err(_) => Err(tonic::Status::unavailable(format!(
            "peer {:?}: no answer within {} s",
            p.name,
            READ_TIMEOUT.as_secs()
        ))),
    };
    let outcome = match &r {
        Ok(_) => Outcome::Success,
        Err(s) => Outcome::of(s),
    };
    visitor.audit(app, rpc, &args, &outcome);
    match r {
        Ok(m) => api::to_json(m.get_ref()).map(Json).into_response(),
        Err(s) => ApiError(
            api::http_status(s.code()),
            format!("peer {:?}: {}", p.name, s.message()),
        )
        .into_response(),
    }
}

/// `POST /api/peers/{peer}/backends/{name}/{action}`: pause, resume,
/// enable or disable a backend on the peer.
pub async fn backend_action(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((peer, name, action)): Path<(String, String, String)>,
) -> Response {
    let rpc = match api::backend_rpc(&action) {
        Ok(rpc) => rpc,
        Err(e) => return e.into_response(),
    };
    let args = serde_json::json!({ "name": name });
    let req = proto::BackendRequest { name };
    forward(
        &app,
        &visitor,
        &headers,
        &peer,
        rpc,
        args,
        |mut c| async move {
            match action.as_str() {
                "pause" => c.pause_backend(req).await,
                "resume" => c.resume_backend(req).await,
                "enable" => c.enable_backend(req).await,
                _ => c.disable_backend(req).await,
            }
        },
    )
    .await
}

/// `POST /api/peers/{peer}/weight`: a pool member's weight on the peer.
pub async fn weight(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(peer): Path<String>,
    body: Result<Json<WeightBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return api::bad_body(&e).into_response(),
    };
    let args = serde_json::json!({
        "frontend": body.frontend, "pool": body.pool, "backend": body.backend,
        "weight": body.weight, "flush": body.flush,
    });
    let req = proto::SetWeightRequest {
        frontend: body.frontend,
        pool: body.pool,
        backend: body.backend,
        weight: body.weight,
        flush: body.flush,
    };
    forward(
        &app,
        &visitor,
        &headers,
        &peer,
        "SetFrontendPoolBackendWeight",
        args,
        |mut c| async move { c.set_frontend_pool_backend_weight(req).await },
    )
    .await
}

/// `POST /api/peers/{peer}/node/{drain|undrain}`: drain the peer.
pub async fn node_action(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((peer, action)): Path<(String, String)>,
) -> Response {
    let drained = match action.as_str() {
        "drain" => true,
        "undrain" => false,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no action {other:?}: drain or undrain"),
            );
        }
    };
    let args = serde_json::json!({ "drained": drained });
    forward(
        &app,
        &visitor,
        &headers,
        &peer,
        "SetNodeDrain",
        args,
        |mut c| async move {
            c.set_node_drain(proto::SetNodeDrainRequest { drained })
                .await
        },
    )
    .await
}
