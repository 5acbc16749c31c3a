//! `WatchEvents` (SPEC §7.3): one hub subscription per stream, filtered
//! and forwarded to tonic by a task of its own.
//!
//! Streams send each event's protobuf encoding made once for all of them
//! ([`Published::encoded`](crate::events::Published::encoded)), as an
//! [`Encoded`] message that tonic writes as is (the daemon serves the RPC
//! through [`EncodedWatch`](crate::grpc::encoded::EncodedWatch)); only
//! the initial snapshot and lag notices, which are per stream, are
//! encoded per stream. The filters only select events, so every stream
//! sends the same bytes for an event.
//!
//! The stream subscribes to the hub first and then snapshots the
//! frontends, so no transition falls between the snapshot and the first
//! live event. A slow client never slows the daemon: the hub is a
//! broadcast ring that never waits, and the forwarding task hands events to
//! tonic through a bounded channel of [`STREAM_BUFFER`] events. When that
//! channel is full the task counts what it drops (as it counts what the
//! hub's ring dropped for it) and, as soon as there is room again, sends one
//! `LagEvent` saying how many were lost, then goes on. What the hub's ring
//! dropped is counted before filtering (the ring does not know the
//! filter), so a filtered stream's count may include events it would not
//! have carried: it is an upper bound, never an undercount.
//!
//! # Filters
//!
//! With no kind flag set the stream carries backend, frontend and VPP
//! events. `frontends` keeps events about those frontends: their frontend
//! and VPP events and the backend events of the backends they use.
//! `backends` keeps events about those backends: their backend events and
//! the frontend and VPP events of the frontends using one of them. With
//! both, an event must pass both. Names are not checked against the config
//! (a later reload may add them); an empty name is refused. Log and lag
//! events are never name-filtered, nor is the summary of a large plan
//! ([`events::plan`](crate::events::plan)), which may concern any
//! frontend. Log records of the gRPC transport
//! itself (h2, hyper, tonic, tower) are not streamed: sending each one
//! would log again and feed itself.

use std::collections::BTreeSet;

use maglev_core::config::Config;
use prost::Message;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use crate::daemon::Handle;
use crate::events::{EventKind, Received, Subscription};
use crate::grpc::encoded::Encoded;
use crate::grpc::{convert, proto, status};

/// How many converted events wait for a client before the stream starts
/// dropping (and counting) them.
pub const STREAM_BUFFER: usize = 256;

/// The log targets whose records are never streamed (see the module doc).
const TRANSPORT_TARGETS: &[&str] = &["h2", "hyper", "hyper_util", "tonic", "tower"];

/// What a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Log records at this level or more severe; `None` for no logs.
    pub log: Option<tracing::Level>,
    /// Backend transitions.
    pub backend: bool,
    /// Frontend transitions (and the initial snapshot).
    pub frontend: bool,
    /// VPP changes.
    pub vpp: bool,
    /// Announcements, withdraws and the node's drain.
    pub announce: bool,
    /// Only these frontends (empty for all).
    pub frontends: BTreeSet<String>,
    /// Only these backends (empty for all).
    pub backends: BTreeSet<String>,
}

impl Filter {
    /// The filter a request asks for, or `INVALID_ARGUMENT` naming the bad
    /// field.
    pub fn from_request(req: &proto::WatchRequest) -> Result<Filter, Status> {
        let level = status::log_level(&req.log_level)?;
        let names = |field: &str, list: &[String]| -> Result<BTreeSet<String>, Status> {
            list.iter()
                .map(|n| status::required(field, n).map(str::to_owned))
                .collect()
        };
        let any = req.log || req.backend || req.frontend || req.vpp || req.announce;
        Ok(Filter {
            log: req.log.then_some(level),
            backend: req.backend || !any,
            frontend: req.frontend || !any,
            vpp: req.vpp || !any,
            announce: req.announce || !any,
            frontends: names("a frontends filter name", &req.frontends)?,
            backends: names("a backends filter name", &req.backends)?,
        })
    }

    /// Whether the stream carries an event of `kind`, with `config` the
    /// running config (for which frontend uses which backend).
    pub fn wants(&self, kind: &EventKind, config: &Config) -> bool {
        match kind {
            EventKind::Log(r) => {
                self.log.is_some_and(|max| r.level <= max) && !is_transport(&r.target)
            }
            EventKind::Backend { backend, .. } => {
                self.backend
                    && (self.backends.is_empty() || self.backends.contains(&**backend))
                    && (self.frontends.is_empty()
                        || self.frontends.iter().any(|f| {
                            config
                                .frontend(f)
                                .is_some_and(|fe| fe.uses_backend(backend))
                        }))
            }
            EventKind::Frontend { frontend, .. } => {
                self.frontend && self.wants_frontend(frontend, config)
            }
            EventKind::Vpp(change) => {
                self.vpp
                    && match &change.frontend {
                        Some(f) => self.wants_frontend(f, config),
                        // A large plan's totals may cover any frontend.
                        None if change.summary.is_some() => true,
                        None => self.frontends.is_empty() && self.backends.is_empty(),
                    }
            }
            EventKind::Announce(a) => {
                self.announce
                    && ((self.frontends.is_empty() && self.backends.is_empty())
                        || a.frontends.iter().any(|f| self.wants_frontend(f, config)))
            }
            EventKind::Node(_) => self.announce,
        }
    }

    fn wants_frontend(&self, frontend: &str, config: &Config) -> bool {
        (self.frontends.is_empty() || self.frontends.contains(frontend))
            && (self.backends.is_empty()
                || config
                    .frontend(frontend)
                    .is_some_and(|fe| self.backends.iter().any(|b| fe.uses_backend(b))))
    }
}

fn is_transport(target: &str) -> bool {
    TRANSPORT_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The stream the generated `Maglev` service sends (events decoded back
/// from their shared encoding; the daemon itself serves [`start_encoded`]).
pub type EventStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send + 'static>>;

/// The stream of pre-encoded events the daemon serves.
pub type EncodedStream = ReceiverStream<Result<Encoded, Status>>;

/// Starts a stream for `filter`, as decoded messages (for the generated
/// service; the same events as [`start_encoded`]).
pub fn start(handle: Handle, filter: Filter) -> EventStream {
    Box::pin(start_encoded(handle, filter).map(|item| {
        item.and_then(|e| {
            proto::Event::decode(e.0)
                .map_err(|err| Status::internal(format!("an event does not decode: {err}")))
        })
    }))
}

/// Starts a stream for `filter`: subscribes, queues the initial frontend
/// snapshot, and spawns the forwarding task.
pub fn start_encoded(handle: Handle, filter: Filter) -> EncodedStream {
    let subscription = handle.subscribe(filter.log);
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(forward(handle, filter, subscription, tx));
    ReceiverStream::new(rx)
}

type Sender = mpsc::Sender<Result<Encoded, Status>>;

/// One synthetic event per frontend (from == to) with its state now.
fn snapshot(handle: &Handle, filter: &Filter) -> Vec<Encoded> {
    if !filter.frontend {
        return Vec::new();
    }
    let config = handle.config();
    let published = handle.frontend_states();
    let now = handle.clock().now_unix_nanos();
    handle
        .frontends()
        .into_iter()
        .map(|view| {
            let state = published.get(&view.name).copied().unwrap_or(view.state);
            EventKind::Frontend {
                frontend: view.name.as_str().into(),
                from: state,
                to: state,
            }
        })
        .filter(|kind| filter.wants(kind, &config))
        .map(|kind| {
            Encoded::of(&convert::event(
                &crate::events::Event {
                    unix_nanos: now,
                    kind,
                },
                handle.clock(),
            ))
        })
        .collect()
}

async fn forward(handle: Handle, filter: Filter, mut sub: Subscription, tx: Sender) {
    // The snapshot is taken after subscribing (in `start`), so every later
    // change is in the subscription.
    for event in snapshot(&handle, &filter) {
        tokio::select! {
            _ = handle.stopping() => return,
            sent = tx.send(Ok(event)) => if sent.is_err() { return },
        }
    }
    let clock = handle.clock().clone();
    let mut lost: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = handle.stopping() => return,
            _ = tx.closed() => return,
            permit = tx.reserve(), if lost > 0 => match permit {
                Ok(permit) => {
                    permit.send(Ok(Encoded::of(&convert::lag(lost, clock.now_unix_nanos()))));
                    lost = 0;
                }
                Err(_) => return,
            },
            received = sub.recv() => match received {
                None => return,
                Some(Received::Lost(n)) => lost = lost.saturating_add(n),
                Some(Received::Event(event)) => {
                    if !filter.wants(&event.kind, &handle.config()) {
                        continue;
                    }
                    if lost > 0 {
                        // The lag notice goes first, once there is room.
                        lost = lost.saturating_add(1);
                        continue;
                    }
                    // The bytes every stream shares: encoded by the first.
                    match tx.try_send(Ok(Encoded(event.encoded(&clock).clone()))) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => lost = 1,
                        Err(TrySendError::Closed(_)) => return,
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use maglev_core::state::FrontendState;

    use super::*;
    use crate::events::{LogRecord, VppChange};

    const CONFIG: &str = r#"
maglev:
  healthchecks:
    hc: { type: tcp, port: 80 }
  backends:
    a: { address: 10.0.0.1, healthcheck: hc }
    b: { address: 10.0.0.2, healthcheck: hc }
  frontends:
    fa:
      address: 192.0.2.1
      pools: [ { name: p, backends: { a: {} } } ]
    fb:
      address: 192.0.2.2
      pools: [ { name: p, backends: { b: {} } } ]
"#;

    fn config() -> Config {
        Config::from_yaml(CONFIG, "test").unwrap()
    }

    fn frontend(name: &str) -> EventKind {
        EventKind::Frontend {
            frontend: name.into(),
            from: FrontendState::Unknown,
            to: FrontendState::Up,
        }
    }

    fn backend(name: &str) -> EventKind {
        let t = maglev_health::machine::Transition {
            from: maglev_core::state::BackendState::Unknown,
            to: maglev_core::state::BackendState::Up,
            code: maglev_health::code::Code::L4Ok,
            detail: String::new(),
            at: tokio::time::Instant::now(),
        };
        EventKind::Backend {
            backend: Arc::from(name),
            address: "10.0.0.1".parse().unwrap(),
            change: maglev_health::status::Change::Transition(t),
        }
    }

    fn vpp(frontend: Option<&str>) -> EventKind {
        EventKind::Vpp(VppChange {
            frontend: frontend.map(Arc::from),
            kind: "as_added",
            op: "add-as".into(),
            scope: "vip",
            error: None,
            summary: None,
        })
    }

    fn log(level: tracing::Level, target: &str) -> EventKind {
        EventKind::Log(LogRecord {
            level,
            target: target.into(),
            message: "m".into(),
            fields: Default::default(),
        })
    }

    fn filter(req: proto::WatchRequest) -> Filter {
        Filter::from_request(&req).unwrap()
    }

    #[test]
    fn no_kind_means_everything_but_logs() {
        let f = filter(proto::WatchRequest::default());
        let c = config();
        assert!(f.wants(&frontend("fa"), &c));
        assert!(f.wants(&backend("a"), &c));
        assert!(f.wants(&vpp(None), &c));
        assert!(!f.wants(&log(tracing::Level::ERROR, "maglev_bin"), &c));
    }

    #[test]
    fn frontends_keep_their_backends_and_vpp_changes() {
        let f = filter(proto::WatchRequest {
            frontends: vec!["fa".into()],
            ..Default::default()
        });
        let c = config();
        assert!(f.wants(&frontend("fa"), &c));
        assert!(!f.wants(&frontend("fb"), &c));
        assert!(f.wants(&backend("a"), &c));
        assert!(!f.wants(&backend("b"), &c));
        assert!(f.wants(&vpp(Some("fa")), &c));
        assert!(!f.wants(&vpp(Some("fb")), &c));
        assert!(!f.wants(&vpp(None), &c));
        // A large plan's totals may concern fa.
        let mut summary = vpp(None);
        if let EventKind::Vpp(c) = &mut summary {
            c.kind = crate::events::plan::SUMMARY_KIND;
            c.summary = Some(crate::events::plan::OpTotals::default());
        }
        assert!(f.wants(&summary, &c));
    }

    #[test]
    fn backends_keep_their_frontends() {
        let f = filter(proto::WatchRequest {
            backend: true,
            frontend: true,
            backends: vec!["b".into()],
            ..Default::default()
        });
        let c = config();
        assert!(f.wants(&backend("b"), &c));
        assert!(!f.wants(&backend("a"), &c));
        assert!(f.wants(&frontend("fb"), &c));
        assert!(!f.wants(&frontend("fa"), &c));
        assert!(!f.wants(&vpp(Some("fb")), &c), "vpp not asked for");
    }

    #[test]
    fn logs_at_the_subscribers_level_without_the_transport() {
        let f = filter(proto::WatchRequest {
            log: true,
            log_level: "warn".into(),
            ..Default::default()
        });
        let c = config();
        assert!(f.wants(&log(tracing::Level::ERROR, "maglev_bin::daemon"), &c));
        assert!(f.wants(&log(tracing::Level::WARN, "maglev_vpp"), &c));
        assert!(!f.wants(&log(tracing::Level::INFO, "maglev_vpp"), &c));
        assert!(!f.wants(&log(tracing::Level::ERROR, "h2::codec"), &c));
        assert!(f.wants(&log(tracing::Level::ERROR, "h2o"), &c));
        assert!(!f.wants(&frontend("fa"), &c), "only logs asked for");
    }

    #[test]
    fn bad_requests_are_refused() {
        let bad = |req: proto::WatchRequest| Filter::from_request(&req).unwrap_err().code();
        assert_eq!(
            bad(proto::WatchRequest {
                log_level: "chatty".into(),
                ..Default::default()
            }),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            bad(proto::WatchRequest {
                backends: vec![String::new()],
                ..Default::default()
            }),
            tonic::Code::InvalidArgument
        );
    }
}
