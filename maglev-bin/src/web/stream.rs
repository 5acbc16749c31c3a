//! The page's live updates: Server-Sent Events from a broker that numbers
//! the daemon's events and keeps the recent ones for reconnects.
//!
//! The broker subscribes to the daemon's event hub once (as `WatchEvents`
//! does), writes each event's JSON once for every client (from the
//! protobuf encoding the hub shares with the `WatchEvents` streams), and
//! gives each backend, frontend, VPP and log event an id
//! `<epoch>-<seq>`: the epoch is when the broker started, so ids from a
//! restarted daemon never match. The last [`REPLAY_EVENTS`] events of the
//! last [`REPLAY_AGE`] stay in a ring. A client reconnecting with
//! `Last-Event-ID` (or `?since=`) gets exactly the events after it when
//! they are all still in the ring, and a `resync` event (reload
//! everything) when they are not, when the id is from another epoch, or
//! when the broker itself fell behind the hub.
//!
//! Probe starts and ends (the daemon's [probe beats](crate::daemon::beats))
//! go out as `probe` events without an id: a heartbeat, not worth
//! replaying.
//!
//! Log records (`log` events, the audit trail among them: identities,
//! peers, RPCs) go only to known visitors (logged in, or by client
//! certificate); an anonymous viewer sees states and transitions.
//!
//! The stream: a `retry` hint first, a `: ping` comment every
//! [`PING_INTERVAL`], `Cache-Control: no-cache`, `X-Accel-Buffering: no`,
//! never compressed; it ends when the client goes or the daemon stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_stream::Stream;

use crate::daemon::Handle;
use crate::events::{EventKind, Received};
use crate::grpc::proto;

/// How many events the replay ring keeps.
pub const REPLAY_EVENTS: usize = 2000;
/// How old an event in the ring may get.
pub const REPLAY_AGE: Duration = Duration::from_secs(30);
/// How often an idle stream gets a comment, so proxies keep it open and
/// the page sees it is alive.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// The reconnect delay the page's EventSource is told.
pub const RETRY: Duration = Duration::from_secs(2);
/// How many live events a slow client may fall behind before it is told
/// to resync.
const CLIENT_BUFFER: usize = 1024;

/// One numbered event.
#[derive(Debug)]
pub struct Entry {
    /// Its sequence number in the broker's epoch.
    pub seq: u64,
    /// When the broker got it.
    at: Instant,
    /// `backend`, `frontend`, `vpp`, `log`, or `resync` for a gap the
    /// broker itself has.
    pub kind: &'static str,
    /// The event as JSON (the proto3 JSON mapping of `maglev.Event`).
    pub data: Arc<str>,
}

/// What a live client is sent.
#[derive(Debug, Clone)]
enum Live {
    /// A numbered event.
    Event(Arc<Entry>),
    /// A probe heartbeat: backend and phase.
    Probe(Arc<str>),
}

/// The numbering, the ring and the live fan-out.
#[derive(Debug)]
pub struct Broker {
    epoch: u64,
    ring: Mutex<Ring>,
    live: broadcast::Sender<Live>,
}

#[derive(Debug, Default)]
struct Ring {
    next: u64,
    entries: VecDeque<Arc<Entry>>,
}

impl Ring {
    fn prune(&mut self, now: Instant) {
        while self.entries.len() > REPLAY_EVENTS
            || self
                .entries
                .front()
                .is_some_and(|e| now.duration_since(e.at) > REPLAY_AGE)
        {
            self.entries.pop_front();
        }
    }
}

/// Where a client picks up.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// These events, then live ones after `last`.
    Replay {
        /// The missed events, oldest first.
        missed: Vec<Arc<Entry>>,
        /// The last sequence number covered.
        last: u64,
    },
    /// Too much is missing: the page reloads, then goes on after `last`.
    Resync {
        /// The last sequence number now.
        last: u64,
    },
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}

impl Eq for Entry {}

impl Broker {
    /// A broker whose ids start with `epoch` (unique per start: the wall
    /// clock in milliseconds).
    pub fn new(epoch: u64) -> Broker {
        let (live, _) = broadcast::channel(CLIENT_BUFFER);
        Broker {
            epoch,
            ring: Mutex::new(Ring {
                next: 1,
                entries: VecDeque::new(),
            }),
            live,
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of `seq` in this epoch.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The id of the last event so far (`<epoch>-0` before the first): a
    /// state snapshot taken now is current up to it.
    pub fn last_id(&self) -> String {
        self.id(self.ring().next - 1)
    }

    /// Numbers, keeps and sends one event.
    pub fn push(&self, kind: &'static str, data: Arc<str>, now: Instant) -> u64 {
        let entry = {
            let mut ring = self.ring();
            let entry = Arc::new(Entry {
                seq: ring.next,
                at: now,
                kind,
                data,
            });
            ring.next += 1;
            ring.entries.push_back(entry.clone());
            ring.prune(now);
            entry
        };
        let _ = self.live.send(Live::Event(entry.clone()));
        entry.seq
    }

    /// Sends a heartbeat.
    fn probe(&self, data: Arc<str>) {
        let _ = self.live.send(Live::Probe(data));
    }

    /// What a client that last saw `since` (an id, or none for a new one
    /// that wants only what comes next) should get, at `now`.
    pub fn resume(&self, since: Option<&str>, now: Instant) -> Resume {
        let mut ring = self.ring();
        ring.prune(now);
        let last = ring.next - 1;
        let Some(since) = since else {
            return Resume::Replay {
                missed: Vec::new(),
                last,
            };
        };
        let seq = since
            .split_once('-')
            .filter(|(epoch, _)| epoch.parse() == Ok(self.epoch))
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .filter(|seq| *seq <= last);
        let Some(seq) = seq else {
            return Resume::Resync { last };
        };
        // Every event after `seq` must still be in the ring.
        let first = ring.entries.front().map_or(ring.next, |e| e.seq);
        if seq + 1 < first {
            return Resume::Resync { last };
        }
        let missed: Vec<Arc<Entry>> = ring
            .entries
            .iter()
            .filter(|e| e.seq > seq)
            .cloned()
            .collect();
        if missed.iter().any(|e| e.kind == "resync") {
            return Resume::Resync { last };
        }
        Resume::Replay { missed, last }
    }
}

/// Feeds `broker` from the daemon's hub and its probe beats until the
/// daemon stops.
pub async fn pump(handle: Handle, broker: Arc<Broker>) {
    let mut sub = handle.subscribe(Some(tracing::Level::INFO));
    let mut beats = handle.probe_beats();
    let clock = handle.clock().clone();
    loop {
        let received = tokio::select! {
            _ = handle.stopping() => return,
            beat = beats.recv() => {
                match beat {
                    Ok(beat) => {
                        let phase = if beat.started { "start" } else { "end" };
                        let data = serde_json::json!({ "backend": &*beat.backend, "phase": phase });
                        broker.probe(Arc::from(data.to_string()));
                    }
                    // Missed beats are gone; the next ones are what matter.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                continue;
            }
            r = sub.recv() => r,
        };
        let event = match received {
            None => return,
            Some(Received::Lost(_)) => {
                broker.push("resync", Arc::from("{}"), Instant::now());
                continue;
            }
            Some(Received::Event(event)) => event,
        };
        let kind = match &event.kind {
            EventKind::Log(_) => "log",
            EventKind::Backend { .. } => "backend",
            EventKind::Frontend { .. } => "frontend",
            EventKind::Vpp(_) => "vpp",
            EventKind::Announce(_) => "announce",
            EventKind::Node(_) => "node",
        };
        // From the protobuf encoding the hub keeps for every reader (made
        // once, shared with the `WatchEvents` streams): one JSON text per
        // event, shared by every client and the replay ring.
        let encoded = event.encoded(&clock);
        let data = match crate::grpc::json::value_of_encoded::<proto::Event>(encoded) {
            Ok(v) => v.to_string(),
            Err(e) => {
                tracing::warn!(error = %e, "an event could not be written as JSON");
                continue;
            }
        };
        broker.push(kind, Arc::from(data), Instant::now());
    }
}

fn sse_event(broker: &Broker, entry: &Entry) -> SseEvent {
    SseEvent::default()
        .id(broker.id(entry.seq))
        .event(entry.kind)
        .data(&*entry.data)
}

/// The SSE response for a client that last saw `since`; `logs` when it
/// may see log records.
pub fn respond(
    handle: Handle,
    broker: Arc<Broker>,
    since: Option<String>,
    logs: bool,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let shown = move |entry: &Entry| logs || entry.kind != "log";
    // Subscribed before the ring is read: nothing falls between the two.
    let mut live = broker.live.subscribe();
    let resume = broker.resume(since.as_deref(), Instant::now());
    let stream = async_stream(move |tx| async move {
        let send = |e: SseEvent| {
            let tx = tx.clone();
            async move { tx.send(Ok(e)).await.is_ok() }
        };
        if !send(SseEvent::default().retry(RETRY).comment("hello")).await {
            return;
        }
        let mut last = match resume {
            Resume::Replay { missed, last } => {
                for entry in missed.iter().filter(|e| shown(e)) {
                    if !send(sse_event(&broker, entry)).await {
                        return;
                    }
                }
                last
            }
            Resume::Resync { last } => {
                if !send(resync(&broker, last)).await {
                    return;
                }
                last
            }
        };
        loop {
            let next = tokio::select! {
                _ = handle.stopping() => return,
                _ = tx.closed() => return,
                n = live.recv() => n,
            };
            let event = match next {
                Ok(Live::Event(entry)) if entry.seq <= last => continue,
                Ok(Live::Event(entry)) if !shown(&entry) => {
                    last = entry.seq;
                    continue;
                }
                Ok(Live::Event(entry)) => {
                    last = entry.seq;
                    if entry.kind == "resync" {
                        resync(&broker, last)
                    } else {
                        sse_event(&broker, &entry)
                    }
                }
                Ok(Live::Probe(data)) => SseEvent::default().event("probe").data(&*data),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow: what it missed is unknown, so reload.
                    let now = broker.ring().next - 1;
                    last = now;
                    resync(&broker, now)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !send(event).await {
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(PING_INTERVAL).text("ping"))
}

/// A `resync` event, with the id the page goes on from.
fn resync(broker: &Broker, last: u64) -> SseEvent {
    SseEvent::default()
        .id(broker.id(last))
        .event("resync")
        .data("{}")
}

/// A stream fed by a task: `body` gets the sender and runs until it
/// returns or the stream is dropped.
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &Broker, n: u64, now: Instant) {
        for _ in 0..n {
            b.push("backend", Arc::from("{}"), now);
        }
    }

    fn seqs(r: &Resume) -> Vec<u64> {
        match r {
            Resume::Replay { missed, .. } => missed.iter().map(|e| e.seq).collect(),
            Resume::Resync { .. } => panic!("resync"),
        }
    }

    #[test]
    fn a_reconnect_within_the_ring_gets_exactly_what_it_missed() {
        let now = Instant::now();
        let b = Broker::new(7);
        assert_eq!(b.last_id(), "7-0");
        push(&b, 5, now);
        assert_eq!(b.last_id(), "7-5");
        assert_eq!(seqs(&b.resume(Some("7-2"), now)), [3, 4, 5]);
        assert_eq!(seqs(&b.resume(Some("7-5"), now)), Vec::<u64>::new());
        assert_eq!(seqs(&b.resume(Some("7-0"), now)), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(&b.resume(None, now)), Vec::<u64>::new());
    }

    #[test]
    fn a_gap_too_long_an_other_epoch_or_a_broker_gap_is_a_resync() {
        let now = Instant::now();
        let b = Broker::new(7);
        push(&b, REPLAY_EVENTS as u64 + 10, now);
        // Events 1..=10 fell out of the ring.
        assert!(matches!(b.resume(Some("7-5"), now), Resume::Resync { .. }));
        assert_eq!(seqs(&b.resume(Some("7-10"), now)).len(), REPLAY_EVENTS);
        assert!(matches!(b.resume(Some("8-10"), now), Resume::Resync { .. }));
        assert!(matches!(
            b.resume(Some("garbage"), now),
            Resume::Resync { .. }
        ));
        assert!(matches!(
            b.resume(Some("7-999999"), now),
            Resume::Resync { .. }
        ));
        // Too old.
        let later = now + REPLAY_AGE + Duration::from_secs(1);
        assert!(matches!(
            b.resume(Some("7-2000"), later),
            Resume::Resync { .. }
        ));

        let b = Broker::new(1);
        push(&b, 2, now);
        b.push("resync", Arc::from("{}"), now);
        push(&b, 2, now);
        assert!(matches!(
            b.resume(Some("1-1"), now),
            Resume::Resync { last: 5 }
        ));
        assert_eq!(seqs(&b.resume(Some("1-3"), now)), [4, 5]);
    }
}
