//! One fan-out of everything a watcher may want to see: backend and
//! frontend transitions, every change made to VPP, and log records.
//!
//! gRPC `WatchEvents`, the web page's event stream and any embedder read
//! the same [`EventHub`]. Publishing never waits for a reader: the hub is a
//! bounded broadcast ring of shared events (one allocation per event, not
//! one per reader), and a reader that falls more than
//! [`EVENT_CAPACITY`] events behind is told how many it lost
//! ([`Received::Lost`]) and goes on from the oldest event still held.
//!
//! Each event is encoded to protobuf at most once, however many streams
//! send it: the first reader that needs the bytes builds them
//! ([`Published::encoded`]) and every other reader shares them (an event
//! nobody wants is never encoded). [`EventHub::encodings`] counts the
//! encodings made, for tests and benches.
//!
//! Log records reach the hub through [`LogLayer`], a `tracing` layer whose
//! level follows the most verbose current log subscriber, independently of
//! the daemon's own `--log-level`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use maglev_core::state::FrontendState;
use maglev_health::status::Change;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::clock::WallClock;

pub mod plan;

/// How many events a reader may fall behind before it loses some.
pub const EVENT_CAPACITY: usize = 8192;

/// One event, with the wall-clock time it happened.
#[derive(Debug, Clone)]
pub struct Event {
    /// Unix nanoseconds.
    pub unix_nanos: i64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// A log record.
    Log(LogRecord),
    /// A backend changed state, or flap damping suppressed or released it.
    Backend {
        /// The backend.
        backend: Arc<str>,
        /// Its address.
        address: IpAddr,
        /// The change.
        change: Change,
    },
    /// A frontend changed state (or, for a new subscriber, its current
    /// state with `from == to`).
    Frontend {
        /// The frontend.
        frontend: Arc<str>,
        /// The state before.
        from: FrontendState,
        /// The state after.
        to: FrontendState,
    },
    /// An operation sent to VPP.
    Vpp(VppChange),
    /// A VIP prefix announced or withdrawn, or a failure to change its
    /// route.
    Announce(AnnounceChange),
    /// The node drained or undrained by an operator.
    Node(NodeChange),
}

/// A VIP prefix announced or withdrawn.
#[derive(Debug, Clone)]
pub struct AnnounceChange {
    /// The prefix.
    pub prefix: maglev_core::announce::Prefix,
    /// The frontends whose VIP it is.
    pub frontends: Vec<Arc<str>>,
    /// Whether it is announced now.
    pub announced: bool,
    /// Why.
    pub reason: maglev_core::announce::Reason,
    /// The table change failed with this (the state is unchanged).
    pub error: Option<String>,
}

/// The node drained or undrained.
#[derive(Debug, Clone)]
pub struct NodeChange {
    /// Whether it is drained now.
    pub drained: bool,
    /// Who did it.
    pub by: String,
}

/// A log record as watchers see it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// The module that logged it.
    pub target: String,
    /// The message.
    pub message: String,
    /// Its structured fields, by name.
    pub fields: BTreeMap<String, String>,
}

/// One operation sent to VPP and how it ended.
#[derive(Debug, Clone)]
pub struct VppChange {
    /// The configured frontend it was for; `None` for a VIP not in the
    /// config.
    pub frontend: Option<Arc<str>>,
    /// `vip_added`, `vip_removed`, `as_added`, `as_removed`,
    /// `as_weight_updated`, or `summary` for the totals of a large plan.
    pub kind: &'static str,
    /// The op as logged.
    pub op: String,
    /// `all` for a full sync, `vip` for a per-frontend one.
    pub scope: &'static str,
    /// VPP's (or the connection's) error; `None` on success.
    pub error: Option<String>,
    /// For a plan too large for an event per op (`kind` `summary`, no
    /// frontend): its totals per op kind ([`plan`]).
    pub summary: Option<plan::OpTotals>,
}

/// An event as the hub holds it: shared by every reader, with its
/// protobuf encoding made once, on first use. Reads as the [`Event`] it
/// holds.
#[derive(Debug)]
pub struct Published {
    event: Event,
    encoded: OnceLock<Bytes>,
    encodings: Arc<AtomicU64>,
}

impl Published {
    /// The event as an encoded `maglev.Event` (what `WatchEvents` sends),
    /// built by the first caller, with `clock` for its instants; every
    /// later call shares those bytes.
    pub fn encoded(&self, clock: &WallClock) -> &Bytes {
        self.encoded.get_or_init(|| {
            self.encodings.fetch_add(1, Ordering::Relaxed);
            let proto = crate::grpc::convert::event(&self.event, clock);
            Bytes::from(prost::Message::encode_to_vec(&proto))
        })
    }

    /// The event itself.
    pub fn event(&self) -> &Event {
        &self.event
    }
}

impl std::ops::Deref for Published {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

/// What a reader got.
#[derive(Debug, Clone)]
pub enum Received {
    /// The next event, shared with every other reader.
    Event(Arc<Published>),
    /// The reader was too slow and this many events were dropped for it.
    Lost(u64),
}

/// The fan-out. Cheap to clone; every clone is the same hub.
#[derive(Debug, Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    sender: broadcast::Sender<Arc<Published>>,
    /// Log subscribers per level index (0 = error … 4 = trace).
    log_levels: [AtomicUsize; 5],
    /// Events encoded so far (shared with each [`Published`]).
    encodings: Arc<AtomicU64>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new()
    }
}

impl EventHub {
    /// A hub with no readers.
    pub fn new() -> EventHub {
        let (sender, _) = broadcast::channel(EVENT_CAPACITY);
        EventHub {
            inner: Arc::new(HubInner {
                sender,
                log_levels: Default::default(),
                encodings: Arc::default(),
            }),
        }
    }

    /// Publishes an event; never waits. Events published with no reader
    /// are dropped.
    pub fn publish(&self, event: Event) {
        // An error only means nobody is listening.
        let _ = self.inner.sender.send(Arc::new(Published {
            event,
            encoded: OnceLock::new(),
            encodings: self.inner.encodings.clone(),
        }));
    }

    /// How many events have been encoded to protobuf so far: at most one
    /// encoding per event published, however many streams sent it.
    pub fn encodings(&self) -> u64 {
        self.inner.encodings.load(Ordering::Relaxed)
    }

    /// Whether anyone is reading.
    pub fn has_readers(&self) -> bool {
        self.inner.sender.receiver_count() > 0
    }

    /// A new reader, seeing every event published from now on. With
    /// `log_level`, log records at that level or more severe are published
    /// for as long as the reader lives.
    pub fn subscribe(&self, log_level: Option<Level>) -> Subscription {
        let log_slot = log_level.map(|level| {
            let slot = level_index(level);
            self.inner.log_levels[slot].fetch_add(1, Ordering::Relaxed);
            slot
        });
        Subscription {
            receiver: self.inner.sender.subscribe(),
            hub: self.clone(),
            log_slot,
        }
    }

    /// The most verbose level any current reader asked for.
    pub fn log_level(&self) -> Option<Level> {
        (0..5)
            .rev()
            .find(|&i| self.inner.log_levels[i].load(Ordering::Relaxed) > 0)
            .map(level_of_index)
    }
}

fn level_index(level: Level) -> usize {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

fn level_of_index(i: usize) -> Level {
    [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ][i.min(4)]
}

/// One reader of the hub.
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Published>>,
    hub: EventHub,
    log_slot: Option<usize>,
}

impl Subscription {
    /// The next event, or how many were lost; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.receiver.recv().await {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Lost(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event already published, or how many were lost; `None`
    /// when there is none yet (or the hub is gone). Never waits.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.receiver.try_recv() {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Lost(n)),
            Err(_) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(slot) = self.log_slot {
            self.hub.inner.log_levels[slot].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A `tracing` layer that publishes log records to an [`EventHub`] at the
/// level its log readers asked for. Install it with its own per-layer
/// filter, [`LogLayer::filter`], beside the daemon's output layer (which
/// keeps its own): a layer without one would turn records off for every
/// layer whenever no reader is listening.
#[derive(Debug, Clone)]
pub struct LogLayer {
    hub: EventHub,
    clock: WallClock,
}

impl LogLayer {
    /// A layer publishing to `hub`, timestamping with `clock`.
    pub fn new(hub: EventHub, clock: WallClock) -> LogLayer {
        LogLayer { hub, clock }
    }

    /// The per-layer filter that lets through what the readers of `hub`
    /// asked for, decided again for every record (readers come and go).
    pub fn filter(
        hub: EventHub,
    ) -> tracing_subscriber::filter::FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
        tracing_subscriber::filter::filter_fn(move |meta| {
            hub.log_level().is_some_and(|max| *meta.level() <= max)
        })
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if self
            .hub
            .log_level()
            .is_none_or(|max| *metadata.level() > max)
        {
            return;
        }
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        self.hub.publish(Event {
            unix_nanos: self.clock.now_unix_nanos(),
            kind: EventKind::Log(LogRecord {
                level: *metadata.level(),
                target: metadata.target().to_owned(),
                message: visitor.message,
                fields: visitor.fields,
            }),
        });
    }
}

/// Collects an event's message and fields as text.
#[derive(Default)]
struct FieldVisitor {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .insert(field.name().to_owned(), value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().to_owned(), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frontend_event(n: i64) -> Event {
        Event {
            unix_nanos: n,
            kind: EventKind::Frontend {
                frontend: "web".into(),
                from: FrontendState::Unknown,
                to: FrontendState::Up,
            },
        }
    }

    #[tokio::test]
    async fn a_slow_reader_is_told_what_it_lost_and_goes_on() {
        let hub = EventHub::new();
        let mut slow = hub.subscribe(None);
        let total = EVENT_CAPACITY as i64 + 10;
        for n in 0..total {
            hub.publish(frontend_event(n));
        }
        match slow.recv().await {
            Some(Received::Lost(n)) => assert_eq!(n, 10),
            other => panic!("expected a loss notice, got {other:?}"),
        }
        match slow.recv().await {
            Some(Received::Event(e)) => assert_eq!(e.unix_nanos, 10),
            other => panic!("expected the oldest event held, got {other:?}"),
        }
    }

    /// Counts the records it sees.
    struct Count(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn records_reach_readers_at_their_level_and_other_layers_always() {
        use tracing_subscriber::layer::SubscriberExt;
        let hub = EventHub::new();
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(Count(seen.clone()))
            .with(
                LogLayer::new(hub.clone(), WallClock::new())
                    .with_filter(LogLayer::filter(hub.clone())),
            );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("nobody watches");
            let mut reader = hub.subscribe(Some(Level::INFO));
            tracing::debug!("too verbose for the reader");
            tracing::info!(backend = "a", "watched");
            assert_eq!(
                seen.load(Ordering::Relaxed),
                3,
                "the other layer saw every record"
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let received = rt.block_on(reader.recv());
            match received.as_ref().map(|r| match r {
                Received::Event(e) => &e.kind,
                Received::Lost(_) => panic!("{r:?}"),
            }) {
                Some(EventKind::Log(r)) => {
                    assert_eq!(r.message, "watched");
                    assert_eq!(r.fields["backend"], "a");
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[tokio::test]
    async fn an_event_is_encoded_once_for_every_reader() {
        use prost::Message;
        let hub = EventHub::new();
        let clock = WallClock::new();
        let mut readers: Vec<Subscription> = (0..10).map(|_| hub.subscribe(None)).collect();
        hub.publish(frontend_event(1));
        hub.publish(frontend_event(2));
        let mut sent = Vec::new();
        for reader in &mut readers {
            for _ in 0..2 {
                match reader.recv().await {
                    Some(Received::Event(e)) => sent.push(e.encoded(&clock).clone()),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(hub.encodings(), 2, "one encoding per event");
        // And each is the event's own encoding.
        let first = crate::grpc::proto::Event::decode(sent[0].clone()).unwrap();
        assert_eq!(first.unix_nanos, 1);
        assert!(sent.chunks(2).all(|pair| pair == &sent[..2]));
        // An event nobody sends is never encoded.
        hub.publish(frontend_event(3));
        assert_eq!(hub.encodings(), 2);
    }

    #[test]
    fn log_level_follows_the_most_verbose_reader() {
        let hub = EventHub::new();
        assert_eq!(hub.log_level(), None);
        let info = hub.subscribe(Some(Level::INFO));
        let debug = hub.subscribe(Some(Level::DEBUG));
        assert_eq!(hub.log_level(), Some(Level::DEBUG));
        drop(debug);
        assert_eq!(hub.log_level(), Some(Level::INFO));
        drop(info);
        assert_eq!(hub.log_level(), None);
    }
}
