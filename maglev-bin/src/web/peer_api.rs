//! The page's API for the peers (`--peer`), reads: their list, a peer's
//! summary, frontend and backend (in the shapes of `/api/summary`,
//! `/api/frontends/{name}` and `/api/backends/{name}`, so the page renders
//! a peer's cards as its own), and the fleet matrix. Writes are in
//! [`crate::web::peer_writes`].
//!
//! Reads go through each peer's cache ([`crate::web::peers`]): bounded in
//! time, one read at a time per peer, shared by every browser. A peer that
//! cannot be read answers `reachable: false` and its reason, never an
//! error status, so the page shows it as unreachable.
//!
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Request;

use crate::grpc::json;
use crate::grpc::proto::{self, maglev_server::Maglev};
use crate::web::api::{self, ApiError, error};
use crate::web::fleet;
use crate::web::peers::{self, Peer, PeerRead, READ_TIMEOUT};
use crate::web::{App, Visitor};

/// One frontend of a peer's summary: the fields of `/api/summary`'s.
#[derive(Debug, Serialize)]
struct FrontendBrief {
    name: String,
    address: String,
    protocol: String,
    port: u32,
    state: String,
    active_pool: String,
    serving: usize,
    up: usize,
    backends: usize,
    pools: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    announce: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    announce_reason: String,
}

impl FrontendBrief {
    fn of(f: &proto::FrontendInfo) -> FrontendBrief {
        let members = f.pools.iter().flat_map(|p| p.backends.iter());
        FrontendBrief {
            name: f.name.clone(),
            address: f.address.clone(),
            protocol: f.protocol.clone(),
            port: f.port,
            state: f.state.clone(),
            active_pool: f.active_pool.clone(),
            serving: f
                .pools
                .iter()
                .filter(|p| p.name == f.active_pool)
                .flat_map(|p| p.backends.iter())
                .filter(|b| b.effective_weight > 0)
                .count(),
            up: members.clone().filter(|b| b.state == "up").count(),
            backends: members.count(),
            pools: f.pools.len(),
            announce: f.announce.clone(),
            announce_reason: f.announce_reason.clone(),
        }
    }
}

/// This daemon's name in the tabs and the matrix: its node name, or
/// `local` when it has none.
async fn own_name(app: &App) -> (String, Option<proto::NodeInfo>) {
    match app
        .service
        .get_node(Request::new(proto::GetNodeRequest::default()))
        .await
    {
        Ok(r) => {
            let node = r.into_inner();
            let name = if node.name.is_empty() {
                "local".to_owned()
            } else {
                node.name.clone()
            };
            (name, Some(node))
        }
        Err(_) => ("local".to_owned(), None),
    }
}

fn peer_json(p: &Peer, read: &PeerRead) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "addr": p.addr,
        "self": false,
        "reachable": peers::report(read).is_some(),
        "error": peers::error(read),
        "node": peers::report(read).and_then(|r| json::value(&r.node).ok()),
    })
}

/// `GET /api/peers`: this daemon and every peer, in tab order, each
/// with whether it could be read.
pub async fn peers(State(app): State<App>) -> Response {
    let (name, node) = own_name(&app).await;
    let mut list = vec![serde_json::json!({
        "name": name,
        "self": true,
        "reachable": true,
        "node": node.as_ref().and_then(|n| json::value(n).ok()),
    })];
    for (p, read) in app.peers.read_all().await {
        list.push(peer_json(&p, &read));
    }
    Json(serde_json::json!({ "nodes": list })).into_response()
}

pub(super) fn find(app: &App, name: &str) -> Result<Arc<Peer>, ApiError> {
    app.peers
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no peer {name:?} (--peer)")))
}

/// `GET /api/peers/{name}/summary`: the peer's frontends in the shape of
/// `/api/summary`, with `peer`, `reachable` and `error`.
pub async fn summary(
    State(app): State<App>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Response {
    let peer = match find(&app, &name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let read = peer.read().await;
    let report = peers::report(&read);
    let frontends: Vec<FrontendBrief> = report
        .map(|r| r.frontends.iter().map(FrontendBrief::of).collect())
        .unwrap_or_default();
    Json(serde_json::json!({
        "peer": peer.name,
        "addr": peer.addr,
        "reachable": report.is_some(),
        "error": peers::error(&read),
        "version": report.map(|r| r.node.version.clone()),
        "session": api::session_json(&app, &visitor.session),
        "total": frontends.len(),
        "frontends": frontends,
        "vpp": serde_json::Value::Null,
        "node": report.and_then(|r| json::value(&r.node).ok()),
    }))
    .into_response()
}

/// `GET /api/peers/{name}/frontends/{frontend}`: as
/// `/api/frontends/{name}`, read from the peer (bounded by the read
/// timeout; not cached: one card's detail).
pub async fn frontend(
    State(app): State<App>,
    Path((name, frontend)): Path<(String, String)>,
) -> Response {
    let peer = match find(&app, &name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut client = peer.client();
    let work = async {
        let info = client
            .get_frontend(proto::GetFrontendRequest { name: frontend })
            .await?
            .into_inner();
        let names: std::collections::BTreeSet<String> = info
            .pools
            .iter()
            .flat_map(|p| p.backends.iter().map(|b| b.name.clone()))
            .collect();
        let mut backends = Vec::with_capacity(names.len());
        for name in names {
            match client.get_backend(proto::GetBackendRequest { name }).await {
                Ok(r) => backends.push(r.into_inner()),
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(s),
            }
        }
        Ok::<_, tonic::Status>((info, backends))
    };
    match tokio::time::timeout(READ_TIMEOUT, work).await {
        Ok(Ok((info, backends))) => {
            let backends: Result<Vec<_>, _> = backends.iter().map(json::value).collect();
            match (json::value(&info), backends) {
                (Ok(f), Ok(b)) => {
                    Json(serde_json::json!({ "frontend": f, "backends": b })).into_response()
                }
                (Err(e), _) | (_, Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
            }
        }
        Ok(Err(s)) => api::refusal(&s),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "peer {name:?}: no answer within {} s",
                READ_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// `GET /api/peers/{name}/backends/{backend}`: as
/// `/api/backends/{name}`, read from the peer.
pub async fn backend(
    State(app): State<App>,
    Path((name, backend)): Path<(String, String)>,
) -> Response {
    let peer = match find(&app, &name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut client = peer.client();
    let call = client.get_backend(proto::GetBackendRequest { name: backend });
    match tokio::time::timeout(READ_TIMEOUT, call).await {
        Ok(Ok(r)) => api::to_json(r.get_ref()).map(Json).into_response(),
        Ok(Err(s)) => api::refusal(&s),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "peer {name:?}: no answer within {} s",
                READ_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// `GET /api/fleet`: the agreement matrix, this daemon and every peer.
pub async fn fleet(State(app): State<App>) -> Response {
    let (own, node) = own_name(&app).await;
    let local = match (node, app.service.all_frontends().await) {
        (Some(node), Ok(list)) => Some(crate::fleet::NodeReport {
            node,
            frontends: list.frontends,
        }),
        _ => None,
    };
    let reads = app.peers.read_all().await;
    let mut nodes = vec![(own.as_str(), local.as_ref())];
    for (p, r) in &reads {
        nodes.push((p.name.as_str(), peers::report(r)));
    }
    let rows = fleet::matrix(&nodes);
    let mut heads = vec![serde_json::json!({
        "name": own,
        "self": true,
        "reachable": local.is_some(),
        "config_fingerprint": local.as_ref().map(|r| fleet::hex(r.node.config_fingerprint)),
    })];
    for (p, r) in &reads {
        let report = peers::report(r);
        heads.push(serde_json::json!({
            "name": p.name,
            "self": false,
            "reachable": report.is_some(),
            "error": peers::error(r),
            "config_fingerprint": report.map(|r| fleet::hex(r.node.config_fingerprint)),
        }));
    }
    Json(serde_json::json!({ "nodes": heads, "frontends": rows })).into_response()
}
