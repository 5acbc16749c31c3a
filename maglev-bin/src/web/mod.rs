//! The web dashboard, served by maglevd itself on `--http-addr` (off by
//! default; `--demo` turns it on): a page that shows every frontend,
//! backend, the VPP link and the counters, kept live over Server-Sent
//! Events, with operator actions for admins.
//!
//! - [`assets`]: the page's files, embedded at build time.
//! - [`api`]: the JSON API, over the gRPC service's own methods.
//! - [`summary`]: the page's first load (every frontend in brief) and a
//!   frontend's detail.
//! - [`stream`]: the event broker (ids, replay ring, resync) and the SSE
//!   response.
//! - [`auth`]: sessions (password file, client certificate), CSRF.
//! - [`throttle`]: failed logins rate limited per peer.
//! - [`peers`]: the other maglevds (`--peer`), their clients and cached
//!   reads; [`peer_api`]: their API (reads, the fleet); [`peer_writes`]:
//!   an admin's actions forwarded to a peer; [`peer_stream`]: each
//!   peer's `WatchEvents`, forwarded as `peer` SSE events;
//!   [`fleet`]: the agreement matrix.
//!
//! Paths: `/` (the page), `/assets/{file}`, `/favicon.svg`, `/healthz`,
//! `/login` (basic auth challenge), `GET /api/state`, `GET /api/summary`,
//! `GET /api/frontends/{name}`, `GET /api/backends/{name}`,
//! `GET /api/counters` (`?frontend=` to choose), `GET /api/events`
//! (SSE; `Last-Event-ID` or `?since=`), `POST /api/plan` (a dry run),
//! and for admins `POST /api/backends/{name}/{pause|resume|enable|disable}`,
//! `POST /api/weight` and `POST /api/node/{drain|undrain}`. The peers:
//! `GET /api/peers`, `GET /api/peers/{peer}/summary`,
//! `GET /api/peers/{peer}/frontends/{name}`,
//! `GET /api/peers/{peer}/backends/{name}`, `GET /api/fleet`, and for
//! admins `POST /api/peers/{peer}/backends/{name}/{action}`,
//! `POST /api/peers/{peer}/weight`, `POST /api/peers/{peer}/node/{action}`.

pub mod api;
pub mod assets;
pub mod auth;
pub mod fleet;
pub mod peer_api;
pub mod peer_stream;
pub mod peer_writes;
pub mod peers;
pub mod stream;
pub mod summary;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts as RequestParts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::daemon::Handle;
use crate::grpc::service::MaglevService;
use crate::transport::{self, Peer};
use crate::web::auth::{Passwords, Session};
use crate::web::stream::Broker;

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    handle: Handle,
    service: MaglevService,
    broker: Arc<Broker>,
    passwords: Option<Arc<Passwords>>,
    csrf: Arc<str>,
    peers: Arc<peers::Peers>,
}

/// The dashboard, ready to serve.
pub struct Web {
    app: App,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").finish_non_exhaustive()
    }
}

impl Web {
    /// The dashboard of `handle`'s daemon: reads the password file
    /// (failing with its name and line) and starts numbering events.
    pub fn new(handle: &Handle) -> anyhow::Result<Web> {
        let passwords = match &handle.settings().http_password_file {
            Some(path) => Some(Arc::new(Passwords::load(path)?)),
            None => None,
        };
        let settings = handle.settings();
        let peers = peers::Peers::new(&settings.peers, settings.peer_tls.as_ref())?;
        let epoch = u64::try_from(handle.clock().now_unix_nanos() / 1_000_000).unwrap_or(0);
        Ok(Web {
            app: App {
                handle: handle.clone(),
                service: MaglevService::new(handle.clone()),
                broker: Arc::new(Broker::new(epoch)),
                passwords,
                csrf: Arc::from(auth::csrf_token()),
                peers: Arc::new(peers),
            },
        })
    }

    /// The router (for tests: `tower::ServiceExt::oneshot`).
    pub fn router(&self) -> Router {
        router(self.app.clone())
    }

    /// Serves on `listeners` (over the gRPC TLS with `--http-tls`) until
    /// the daemon stops; open streams end then, and connections still
    /// open get the shutdown grace.
    pub async fn serve(self, listeners: Vec<TcpListener>) {
        let handle = self.app.handle.clone();
        tokio::spawn(stream::pump(handle.clone(), self.app.broker.clone()));
        for peer in self.app.peers.all() {
            tokio::spawn(peer_stream::follow(
                handle.clone(),
                peer.clone(),
                self.app.broker.clone(),
            ));
        }
        let tls = handle.settings().http_tls;
        transport::serve::serve_http(handle, listeners, tls, "web", router(self.app)).await;
    }
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { assets::file("index.html") }))
        .route("/assets/{name}", get(assets::asset))
        .route(
            "/favicon.svg",
            get(|| async { assets::file("favicon.svg") }),
        )
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/favicon.svg") }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/login", get(login))
        .route("/api/state", get(api::state))
        .route("/api/summary", get(summary::summary))
        .route("/api/frontends/{name}", get(summary::frontend))
        .route("/api/backends/{name}", get(api::backend))
        .route("/api/backends/{name}/{action}", post(api::backend_action))
        .route("/api/counters", get(api::counters))
        .route("/api/weight", post(api::weight))
        .route("/api/node/{action}", post(api::node_action))
        .route("/api/plan", post(api::plan))
        .route("/api/events", get(events))
        .route("/api/peers", get(peer_api::peers))
        .route("/api/peers/{peer}/summary", get(peer_api::summary))
        .route(
            "/api/peers/{peer}/frontends/{name}",
            get(peer_api::frontend),
        )
        .route("/api/peers/{peer}/backends/{name}", get(peer_api::backend))
        .route(
            "/api/peers/{peer}/backends/{name}/{action}",
            post(peer_writes::backend_action),
        )
        .route("/api/peers/{peer}/weight", post(peer_writes::weight))
        .route(
            "/api/peers/{peer}/node/{action}",
            post(peer_writes::node_action),
        )
        .route("/api/fleet", get(peer_api::fleet))
        .fallback(|| async { api::error(StatusCode::NOT_FOUND, "no such path") })
        .with_state(app)
}

/// Who is asking: the session, and the address it came from.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The session.
    pub session: Session,
    /// The client's address.
    pub addr: Option<SocketAddr>,
}

impl FromRequestParts<App> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut RequestParts,
        app: &App,
    ) -> Result<Visitor, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let session =
            auth::session(&app.handle, app.passwords.as_ref(), &parts.headers, &peer).await;
        Ok(Visitor {
            session,
            addr: peer.addr,
        })
    }
}

/// `GET /login`: a basic-auth challenge until the browser sends a
/// password-file user's credentials, then back to the page.
async fn login(State(app): State<App>, visitor: Visitor) -> Response {
    if app.passwords.is_none() {
        return api::error(
            StatusCode::NOT_FOUND,
            "no logins: maglevd has no --http-password-file",
        );
    }
    if visitor.session.auth == auth::AuthKind::Basic {
        return Redirect::to("/").into_response();
    }
    if visitor.session.limited {
        let wait = throttle::REFILL.as_secs().to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait)],
            "too many failed logins from your address: try again later\n",
        )
            .into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"maglev\", charset=\"UTF-8\"",
        )],
        "log in as a user of maglevd's --http-password-file\n",
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    since: Option<String>,
}

/// `GET /api/events`: the SSE stream, resuming after `Last-Event-ID` (a
/// reconnect) or `?since=` (the id `/api/state` returned). Log records
/// (the audit trail among them) go only to known visitors.
async fn events(
    State(app): State<App>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.since);
    let logs = visitor.session.known();
    let sse = stream::respond(app.handle.clone(), app.broker.clone(), since, logs);
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        sse,
    )
        .into_response()
}
