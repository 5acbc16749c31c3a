//! Each peer's events, streamed: one `WatchEvents` call per peer (backend,
//! frontend and announce events) through the peer's [`fleet::Node`]
//! client, with this daemon's client identity. Every event becomes a
//! `peer` event on this daemon's SSE stream, `{"peer": NAME, "event":
//! EVENT}` (EVENT in the proto3 JSON mapping of `maglev.Event`), numbered
//! and kept by the [`Broker`] like this daemon's own (so its ring and
//! per-client bounds hold; the gRPC stream is read one event at a time,
//! so a flood from a peer waits in its flow control, not here).
//!
//! A stream that ends or cannot be opened marks the peer unreachable in
//! its cached read (what `/api/peers` reports until the next read) and
//! sends `{"peer": NAME, "event": null, "error": WHY}`; it is retried
//! after [`BACKOFF_MIN`], doubling up to [`BACKOFF_MAX`] while the peer
//! stays away.
//!
//! [`fleet::Node`]: crate::fleet::Node

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::peers::Peer;
use super::stream::Broker;
use crate::daemon::Handle;
use crate::grpc::proto;

/// The first wait before a lost stream is opened again.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// The longest wait between attempts while a peer stays away.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Streams `peer`'s events into `broker` until the daemon stops.
pub async fn follow(handle: Handle, peer: Arc<Peer>, broker: Arc<Broker>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let why = tokio::select! {
            _ = handle.stopping() => return,
            why = stream_once(&peer, &broker, &mut backoff) => why,
        };
        peer.mark_unreachable(&why).await;
        let data = serde_json::json!({ "peer": &peer.name, "event": null, "error": &why });
        broker.push("peer", Arc::from(data.to_string()), Instant::now());
        tokio::select! {
            _ = handle.stopping() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One `WatchEvents` call, forwarded until it ends; why it ended. The
/// backoff is reset once the stream is open.
async fn stream_once(peer: &Peer, broker: &Broker, backoff: &mut Duration) -> String {
    let request = proto::WatchRequest {
        backend: true,
        frontend: true,
        announce: true,
        ..Default::default()
    };
    let mut events = match peer.client().watch_events(request).await {
        Ok(r) => r.into_inner(),
        Err(e) => return format!("its event stream: {}", e.message()),
    };
    *backoff = BACKOFF_MIN;
    peer.forget_read().await;
    loop {
        match events.message().await {
            Ok(Some(event)) => {
                let event = match crate::grpc::json::value(&event) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(peer = %peer.name, error = %e, "a peer's event could not be written as JSON");
                        continue;
                    }
                };
                peer.mark_stale();
                let data = serde_json::json!({ "peer": &peer.name, "event": event });
                broker.push("peer", Arc::from(data.to_string()), Instant::now());
            }
            Ok(None) => return "its event stream ended".to_owned(),
            Err(e) => return format!("its event stream: {}", e.message()),
        }
    }
}
