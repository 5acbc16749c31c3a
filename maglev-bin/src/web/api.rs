//! The page's JSON API: the same answers as the gRPC service (its
//! methods are called, so validation, conversion and refusals are the
//! same), in the proto3 JSON mapping `maglevc --json` prints. Writes need
//! an admin session and the CSRF token, and go to the audit trail.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tonic::Request;

use crate::grpc::audit::{self, Outcome};
use crate::grpc::json::{self, Reply};
use crate::grpc::proto::{self, maglev_server::Maglev};
use crate::grpc::service::Operator;
use crate::web::auth::{self, Session};
use crate::web::{App, Visitor};

/// An error answer: the status and `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError(status, message.into()).into_response()
}

/// A refusal, answered as its status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub(super) StatusCode, pub(super) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// The HTTP status of a gRPC refusal.
pub(super) fn http_status(code: tonic::Code) -> StatusCode {
    match code {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(super) fn refused(status: &tonic::Status) -> ApiError {
    ApiError(http_status(status.code()), status.message().to_owned())
}

/// A gRPC refusal as the answer: its HTTP status and message.
pub(super) fn refusal(status: &tonic::Status) -> Response {
    refused(status).into_response()
}

pub(super) fn to_json<M: Reply>(m: &M) -> Result<serde_json::Value, ApiError> {
    json::value(m).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))
}

pub(super) fn reply<M: Reply>(r: Result<tonic::Response<M>, tonic::Status>) -> Response {
    r.map_err(|s| refused(&s))
        .and_then(|m| to_json(m.get_ref()))
        .map(Json)
        .into_response()
}

/// `GET /api/state`: everything the page shows, and the event id it is
/// current up to.
pub async fn state(State(app): State<App>, visitor: Visitor) -> Response {
    state_json(&app, &visitor).await.map(Json).into_response()
}

async fn state_json(app: &App, visitor: &Visitor) -> Result<serde_json::Value, ApiError> {
    // The id first: events after it may already be in the state, which is
    // harmless; none before it can be missing.
    let event_id = app.broker.last_id();
    let svc = &app.service;
    let frontends = svc.all_frontends().await.map_err(|s| refused(&s))?;
    let backends = svc.all_backends().await.map_err(|s| refused(&s))?;
    // VPP away (or off): `null`.
    let vpp = match svc
        .get_vpp_info(Request::new(proto::GetVppInfoRequest {}))
        .await
    {
        Ok(r) => to_json(r.get_ref())?,
        Err(_) => serde_json::Value::Null,
    };
    let counters = match svc.all_counters().await {
        Ok(r) => to_json(&r)?,
        Err(_) => serde_json::Value::Null,
    };
    let node = svc
        .get_node(Request::new(proto::GetNodeRequest {}))
        .await
        .map_err(|s| refused(&s))?;
    Ok(serde_json::json!({
        "version": crate::VERSION_LINE,
        "node": to_json(node.get_ref())?,
        "session": session_json(app, &visitor.session),
        "frontends": to_json(&frontends)?["frontends"],
        "backends": to_json(&backends)?["backends"],
        "vpp": vpp,
        "counters": counters,
        "event_id": event_id,
    }))
}

/// The page's view of its session (and the CSRF token writes need).
pub(super) fn session_json(app: &App, s: &Session) -> serde_json::Value {
    serde_json::json!({
        "admin": s.admin,
        "identity": s.identity,
        "auth": s.auth,
        "csrf": &*app.csrf,
        "login": app.passwords.is_some(),
    })
}

/// `GET /api/backends/{name}`.
pub async fn backend(State(app): State<App>, Path(name): Path<String>) -> Response {
    reply(
        app.service
            .get_backend(Request::new(proto::GetBackendRequest { name }))
            .await,
    )
}

/// How many frontends one `GET /api/counters` may name.
pub const COUNTERS_FRONTENDS_MAX: usize = 1000;

/// `GET /api/counters`: the latest counter snapshot, `null` without one;
/// with `?frontend=NAME` (repeated, at most [`COUNTERS_FRONTENDS_MAX`]),
/// only those frontends' VIPs.
pub async fn counters(
    State(app): State<App>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let only = match counters_query(query) {
        Ok(only) => only,
        Err(e) => return e.into_response(),
    };
    match app.service.all_counters().await {
        Ok(mut r) => {
            if let Some(only) = only {
                r.vips.retain(|v| only.contains(&v.frontend));
            }
            reply::<proto::VpplbCounters>(Ok(tonic::Response::new(r)))
        }
        Err(_) => Json(serde_json::Value::Null).into_response(),
    }
}

/// The frontends `?frontend=` names (`None`: every one), or why the
/// query is refused.
fn counters_query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Option<std::collections::HashSet<String>>, ApiError> {
    let Query(pairs) = query.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the query of /api/counters: {}", e.body_text()),
        )
    })?;
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut only = std::collections::HashSet::new();
    for (key, value) in pairs {
        if key != "frontend" {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("the query of /api/counters: no parameter {key:?} (only frontend=NAME)"),
            ));
        }
        only.insert(value);
        if only.len() > COUNTERS_FRONTENDS_MAX {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("the query of /api/counters: more than {COUNTERS_FRONTENDS_MAX} frontends"),
            ));
        }
    }
    Ok(Some(only))
}

/// A request body that is not the JSON expected, said as the error.
pub(super) fn bad_body(e: &JsonRejection) -> ApiError {
    ApiError(e.status(), format!("the request body: {}", e.body_text()))
}

/// A weight change, as the page sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightBody {
    pub(super) frontend: String,
    pub(super) pool: String,
    pub(super) backend: String,
    pub(super) weight: u32,
    #[serde(default)]
    pub(super) flush: bool,
}

/// `POST /api/plan`: a dry run of a weight change (a read: no admin
/// needed, nothing changes).
pub async fn plan(
    State(app): State<App>,
    body: Result<Json<WeightBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad_body(&e).into_response(),
    };
    let req = proto::PlanSyncRequest {
        frontend: body.frontend.clone(),
        weight: Some(proto::SetWeightRequest {
            frontend: body.frontend,
            pool: body.pool,
            backend: body.backend,
            weight: body.weight,
            flush: body.flush,
        }),
    };
    reply(app.service.plan_sync(Request::new(req)).await)
}

/// Whether `visitor` may write, answering why not: an admin session, and
/// the CSRF token in `X-CSRF-Token`. A refusal is audited.
pub(super) fn may_write(
    app: &App,
    visitor: &Visitor,
    headers: &HeaderMap,
    rpc: &str,
    args: &str,
) -> Result<(), ApiError> {
    let why = if !visitor.session.admin {
        Some(format!(
            "{rpc} is a write and {} may only read (log in as an admin)",
            visitor.session.identity
        ))
    } else if !auth::csrf_ok(
        &app.csrf,
        headers.get("x-csrf-token").and_then(|v| v.to_str().ok()),
    ) {
        Some(format!("{rpc}: missing or wrong X-CSRF-Token"))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => {
            visitor.audit(app, rpc, args, &Outcome::Denied(why.clone()));
            Err(ApiError(StatusCode::FORBIDDEN, why))
        }
    }
}

impl Visitor {
    /// Puts this visitor's `rpc` with `args` and its `outcome` in the
    /// audit trail.
    pub(super) fn audit(&self, app: &App, rpc: &str, args: &str, outcome: &Outcome) {
        audit::record(
            &app.handle,
            rpc,
            &self.session.identity,
            self.addr,
            args,
            outcome,
        );
    }
}

fn audited<M: Reply>(
    app: &App,
    visitor: &Visitor,
    rpc: &str,
    args: &str,
    r: Result<tonic::Response<M>, tonic::Status>,
) -> Response {
    let outcome = match &r {
        Ok(_) => Outcome::Success,
        Err(s) => Outcome::of(s),
    };
    visitor.audit(app, rpc, args, &outcome);
    reply(r)
}

/// The write RPC of a backend action (`pause`, `resume`, `enable`,
/// `disable`), or the 404 naming the four.
pub(crate) fn backend_rpc(action: &str) -> Result<&'static str, ApiError> {
    match action {
        "pause" => Ok("PauseBackend"),
        "resume" => Ok("ResumeBackend"),
        "enable" => Ok("EnableBackend"),
        "disable" => Ok("DisableBackend"),
        other => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no action {other:?}: pause, resume, enable or disable"),
        )),
    }
}

/// `POST /api/backends/{name}/{action}`: pause, resume, enable, disable.
pub async fn backend_action(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let rpc = match backend_rpc(&action) {
        Ok(rpc) => rpc,
        Err(e) => return e.into_response(),
    };
    let args = serde_json::json!({ "name": name }).to_string();
    if let Err(e) = may_write(&app, &visitor, &headers, rpc, &args) {
        return e.into_response();
    }
    let req = || {
        let mut r = Request::new(proto::BackendRequest { name: name.clone() });
        // The override's "by": the dashboard's user.
        r.extensions_mut()
            .insert(Operator(visitor.session.identity.clone()));
        r
    };
    let svc = &app.service;
    let r = match action.as_str() {
        "pause" => svc.pause_backend(req()).await,
        "resume" => svc.resume_backend(req()).await,
        "enable" => svc.enable_backend(req()).await,
        _ => svc.disable_backend(req()).await,
    };
    audited(&app, &visitor, rpc, &args, r)
}

/// `POST /api/weight`: set a pool member's weight (and flush).
pub async fn weight(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Result<Json<WeightBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad_body(&e).into_response(),
    };
    let rpc = "SetFrontendPoolBackendWeight";
    let args = serde_json::json!({
        "frontend": body.frontend, "pool": body.pool, "backend": body.backend,
        "weight": body.weight, "flush": body.flush,
    })
    .to_string();
    if let Err(e) = may_write(&app, &visitor, &headers, rpc, &args) {
        return e.into_response();
    }
    let req = proto::SetWeightRequest {
        frontend: body.frontend,
        pool: body.pool,
        backend: body.backend,
        weight: body.weight,
        flush: body.flush,
    };
    let mut req = Request::new(req);
    req.extensions_mut()
        .insert(Operator(visitor.session.identity.clone()));
    let r = app.service.set_frontend_pool_backend_weight(req).await;
    audited(&app, &visitor, rpc, &args, r)
}

/// `POST /api/node/{drain|undrain}`: drain this node (every VIP prefix
/// withdrawn, kept withdrawn across restarts) or undrain it; answers the
/// node (`NodeInfo`) once the announcer has carried it out.
pub async fn node_action(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(action): Path<String>,
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
    let rpc = "SetNodeDrain";
    // As the gRPC audit records the request: its JSON, defaults left out.
    let args = if drained { r#"{"drained":true}"# } else { "{}" };
    if let Err(e) = may_write(&app, &visitor, &headers, rpc, args) {
        return e.into_response();
    }
    let mut req = Request::new(proto::SetNodeDrainRequest { drained });
    // The drain's "by": the dashboard's user.
    req.extensions_mut()
        .insert(Operator(visitor.session.identity.clone()));
    let r = app.service.set_node_drain(req).await;
    audited(&app, &visitor, rpc, args, r)
}
