//! What the page loads first, sized for 10,000 frontends: a compact
//! summary of every frontend (its VIP, state, active pool and how many
//! backends serve), and one frontend's full detail (its pools and their
//! backends) when the page opens it.
//!
//! The summary is bounded per frontend: a fixed set of numbers and short
//! words (with an announce section, its prefix's state and reason), the frontend's name and its active pool's name, and nothing
//! that grows with its backends (no member lists, no history, no
//! description). The VPP panel's pending-sync list is cut to its first
//! [`PENDING_SHOWN`] names, with the count beside it.

use std::collections::{BTreeSet, HashMap};
use tokio::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maglev_core::config::Frontend;
use maglev_core::desired::member_weights;
use maglev_core::frontend::frontend_state;
use maglev_core::state::BackendState;
use maglev_core::weights::Serving;
use serde::Serialize;
use tonic::Request;

use crate::announce::view::FrontendAnnounce;
use crate::grpc::json;
use crate::grpc::proto::{self, maglev_server::Maglev};
use crate::web::api::{self, error};
use crate::web::{App, Visitor};

/// How many pending frontends the summary's VPP panel names.
pub const PENDING_SHOWN: usize = 8;

/// One frontend in the summary.
#[derive(Debug, Serialize)]
struct FrontendSummary {
    name: String,
    address: String,
    /// `tcp`, `udp`, or empty for every protocol.
    protocol: &'static str,
    /// 0: every port.
    port: u16,
    state: &'static str,
    /// Empty: no pool is active.
    active_pool: String,
    /// Members of the active pool carrying traffic.
    serving: usize,
    /// Members (of every pool) that are up.
    up: usize,
    /// Members of every pool.
    backends: usize,
    /// Its pools.
    pools: usize,
    /// Its VIP prefix: `announced` or `withdrawn`; left out without an
    /// announce section.
    #[serde(skip_serializing_if = "str::is_empty")]
    announce: &'static str,
    /// Why (a reason of the announce policy); left out without an
    /// announce section.
    #[serde(skip_serializing_if = "str::is_empty")]
    announce_reason: &'static str,
}

impl FrontendSummary {
    /// Frontend `name` (`fe`), its backends' conditions from `serving_of`.
    fn of(
        handle: &crate::daemon::Handle,
        name: &str,
        fe: &Frontend,
        serving_of: impl Fn(&str) -> Serving + Copy,
        announce: Option<FrontendAnnounce>,
    ) -> FrontendSummary {
        let active = handle.active_pool(name, fe, serving_of);
        let members = member_weights(fe, serving_of, active);
        FrontendSummary {
            name: name.to_owned(),
            address: fe.address.to_string(),
            protocol: fe.protocol.map_or("", |p| p.as_str()),
            port: fe.port,
            state: frontend_state(fe, serving_of, active).as_str(),
            active_pool: active
                .and_then(|i| fe.pools.get(i))
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            serving: active.map_or(0, |i| {
                members
                    .iter()
                    .filter(|m| m.pool == i && m.effective.weight > 0)
                    .count()
            }),
            up: members
                .iter()
                .filter(|m| serving_of(m.backend).state == BackendState::Up)
                .count(),
            backends: members.len(),
            pools: fe.pools.len(),
            announce: announce.map_or("", |a| {
                if a.announced {
                    "announced"
                } else {
                    "withdrawn"
                }
            }),
            announce_reason: announce.map_or("", |a| a.reason.as_str()),
        }
    }
}

/// The answer of `GET /api/summary`.
#[derive(Debug, Serialize)]
struct Summary {
    version: &'static str,
    session: serde_json::Value,
    total: usize,
    frontends: Vec<FrontendSummary>,
    vpp: serde_json::Value,
    /// This node (`GetNode`): its drain and its announcements in totals.
    node: serde_json::Value,
    event_id: String,
}

/// `GET /api/summary`: every frontend in brief (by name), the VPP panel,
/// the session, and the event id it is current up to.
pub async fn summary(State(app): State<App>, visitor: Visitor) -> Response {
    // The id first, as `/api/state` does: no event before it is missing.
    let event_id = app.broker.last_id();
    let handle = app.handle.clone();
    let built = tokio::task::spawn_blocking(move || frontends(&handle)).await;
    let Ok(frontends) = built else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the summary failed");
    };
    let vpp = match app
        .service
        .get_vpp_info(Request::new(proto::GetVppInfoRequest::default()))
        .await
    {
        Ok(r) => match json::value(r.get_ref()) {
            Ok(v) => cut_pending(v),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
        Err(_) => serde_json::Value::Null,
    };
    let node = match app
        .service
        .get_node(Request::new(proto::GetNodeRequest::default()))
        .await
        .map_err(|s| s.message().to_owned())
        .and_then(|r| json::value(r.get_ref()))
    {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    Json(Summary {
        version: crate::VERSION_LINE,
        session: api::session_json(&app, &visitor.session),
        total: frontends.len(),
        frontends,
        vpp,
        node,
        event_id,
    })
    .into_response()
}

/// Every frontend's summary, by name: one read of every backend's
/// condition, shared by all.
fn frontends(handle: &crate::daemon::Handle) -> Vec<FrontendSummary> {
    let config = handle.config();
    let now = Instant::now();
    let snapshot = handle.backends();
    let serving: HashMap<&str, Serving> = snapshot
        .iter()
        .map(|(name, s)| (&**name, s.serving(now)))
        .collect();
    let serving_of = |b: &str| {
        serving
            .get(b)
            .copied()
            .unwrap_or_else(|| BackendState::Removed.into())
    };
    // Each frontend's prefix, as the announcer last published them.
    let announcements = handle.announcements();
    let announce: HashMap<&str, FrontendAnnounce> = announcements
        .prefixes
        .iter()
        .flat_map(|p| {
            p.frontends.iter().map(|f| {
                (
                    f.as_str(),
                    FrontendAnnounce {
                        announced: p.announced,
                        reason: p.reason,
                    },
                )
            })
        })
        .collect();
    config
        .frontends()
        .iter()
        .map(|(name, fe)| {
            let a = announce.get(name.as_str()).copied();
            FrontendSummary::of(handle, name, fe, serving_of, a)
        })
        .collect()
}

/// VPPInfo's JSON with `sync_pending` cut to its first [`PENDING_SHOWN`]
/// entries and their number as `sync_pending_count`.
fn cut_pending(mut vpp: serde_json::Value) -> serde_json::Value {
    if let Some(list) = vpp
        .get_mut("sync_pending")
        .and_then(serde_json::Value::as_array_mut)
    {
        let count = list.len();
        list.truncate(PENDING_SHOWN);
        vpp["sync_pending_count"] = count.into();
    }
    vpp
}

/// `GET /api/frontends/{name}`: one frontend as `GetFrontend` answers,
/// and each of its backends as `GetBackend` does (by name).
pub async fn frontend(State(app): State<App>, Path(name): Path<String>) -> Response {
    let svc = &app.service;
    let info = match svc
        .get_frontend(Request::new(proto::GetFrontendRequest { name }))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => return api::refusal(&s),
    };
    let names: BTreeSet<String> = info
        .pools
        .iter()
        .flat_map(|p| p.backends.iter().map(|b| b.name.clone()))
        .collect();
    let mut backends = Vec::with_capacity(names.len());
    for name in names {
        match svc
            .get_backend(Request::new(proto::GetBackendRequest { name }))
            .await
        {
            Ok(r) => match json::value(r.get_ref()) {
                Ok(v) => backends.push(v),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
            },
            // Gone by a reload since: the next refresh has the new config.
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return api::refusal(&s),
        }
    }
    match json::value(&info) {
        Ok(frontend) => Json(serde_json::json!({
            "frontend": frontend,
            "backends": backends,
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
