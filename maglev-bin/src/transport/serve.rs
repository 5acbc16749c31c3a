//! Running a server until the daemon stops: when it does, the server
//! stops accepting and lets open connections finish, for at most
//! [`Settings::shutdown_grace`](crate::daemon::Settings::shutdown_grace)
//! (a client that stopped reading would otherwise hold the daemon up
//! forever). The HTTP servers (`/metrics`, the dashboard) are axum
//! routers over [`accept`]'s connections, plain or TLS.

use std::fmt::Display;
use std::future::{Future, IntoFuture};

use axum::Router;
use axum::extract::connect_info::Connected;
use tokio::net::TcpListener;

use crate::daemon::Handle;
use crate::transport::{Alpn, Incoming, Peer, accept};

/// Runs `server` (which stops accepting when the daemon stops) until it
/// ends or the grace after the stop runs out; `name` names it in logs.
pub async fn until_stopped<E: Display>(
    handle: &Handle,
    server: impl Future<Output = Result<(), E>>,
    name: &str,
) {
    let deadline = async {
        handle.stopping().await;
        tokio::time::sleep(handle.settings().shutdown_grace).await;
    };
    tokio::select! {
        served = server => if let Err(e) = served {
            tracing::error!(error = %e, "{name} server failed");
        },
        _ = deadline => tracing::warn!("{name} connections still open at shutdown; closed"),
    }
}

/// Serves `router` over HTTP/1.1 on `listeners` until the daemon stops,
/// over the daemon's TLS when `tls` (and the daemon has it). Handlers see
/// the [`Peer`] as `ConnectInfo<Peer>`.
pub async fn serve_http(
    handle: Handle,
    listeners: Vec<TcpListener>,
    tls: bool,
    name: &'static str,
    router: Router,
) {
    let local = listeners.first().and_then(|l| l.local_addr().ok());
    let tls = handle.server_tls().filter(|_| tls);
    let cap = crate::transport::conn::caps(&handle).of(name);
    let incoming = Incoming::new(
        accept(&handle, listeners, tls, Alpn::Http1, name, cap),
        local,
    );
    let stop = handle.clone();
    let server = axum::serve(
        incoming,
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(async move { stop.stopping().await });
    until_stopped(&handle, server.into_future(), name).await;
}

impl Connected<axum::serve::IncomingStream<'_, Incoming>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Incoming>) -> Peer {
        stream.remote_addr().clone()
    }
}
