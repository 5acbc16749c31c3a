//! Request/reply matching by context, admission and deadlines, without I/O.
//!
//! Every request gets a fresh non-zero context; VPP copies it into every
//! reply and details message it produces for that request. A plain request
//! completes with the first frame carrying its context; a dump collects
//! details until the `control_ping_reply` with its context (the client
//! sends the ping right after the dump, VPP-WIRE A.9).
//!
//! The matcher is the whole protocol state of a connection, in the manner
//! of quinn-proto: the caller feeds it received frames
//! ([`on_frame`](Matcher::on_frame)) and the time
//! ([`handle_timeout`](Matcher::handle_timeout)), and takes from it the
//! frames to write ([`poll_transmit`](Matcher::poll_transmit)) and the
//! next instant it must be woken ([`poll_timeout`](Matcher::poll_timeout)).
//!
//! - **Admission:** at most `max_in_flight` requests are handed out for
//!   writing and await their reply; later ones wait in start order (their
//!   frames held here) and are admitted as earlier ones finish.
//! - **Deadlines:** a request's reply deadline is counted from the moment
//!   its frame is handed out for writing ([`poll_transmit`] with the time),
//!   never from its start: time spent waiting for room behind other
//!   requests is ours, not VPP's. Until it is handed out, a request has a
//!   send deadline instead (its start plus the matcher's `queue_limit`),
//!   so a request stuck behind a writer that cannot write still ends. An
//!   expired request is forgotten (a late reply is then unsolicited); one
//!   never handed out is never sent.
//!
//! [`poll_transmit`]: Matcher::poll_transmit
//! - **Cancellation:** [`cancel`](Matcher::cancel) forgets a request; if
//!   its frame was not handed out yet it is withdrawn.
//! - **Dumps are bounded:** a dump whose details exceed
//!   [`MAX_DUMP_BYTES`] fails instead of growing without end.
//!
//! The async client owns one [`Matcher`] and a waiter `W` per request (a
//! channel sender); tests use `W = ()` or a number.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::messages::{peek_msg_id, peek_reply_context};

/// The most payload bytes one dump may collect before it fails (a VPP
/// with ten thousand ASes sends well under a megabyte).
pub const MAX_DUMP_BYTES: usize = 64 << 20;

/// What a finished request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The payload of the one reply.
    Reply(Bytes),
    /// The payloads of every details message, in order.
    Dump(Vec<Bytes>),
}

/// Why a frame with a request's context did not complete it normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// A frame with that context but neither the reply, details nor the
    /// end-of-dump ping.
    UnexpectedId {
        /// The id that came.
        msg_id: u16,
    },
    /// The dump's details passed [`MAX_DUMP_BYTES`].
    DumpTooLarge {
        /// Bytes collected, the last frame included.
        bytes: usize,
    },
}

/// What one received frame did.
#[derive(Debug)]
pub enum Outcome<W> {
    /// It completed the request of `waiter` (or broke it).
    Done(W, Result<Completion, Mismatch>),
    /// It was one more details message of a dump.
    Progress,
    /// Nobody waits for its context: an event, or the late reply of a
    /// request that timed out or was cancelled.
    Unsolicited {
        /// Its message id.
        msg_id: u16,
        /// Its context.
        context: u32,
    },
    /// Shorter than a reply header: nothing can be done with it.
    Malformed,
}

/// What a request expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One message with this id.
    Reply(u16),
    /// Messages with this id until the `control_ping_reply`.
    Dump(u16),
}

/// A frame to write, with the request it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The request's context.
    pub context: u32,
    /// The request's message name (for observers and logs).
    pub message: &'static str,
    /// The bytes to write: whole frames, header included.
    pub frame: Bytes,
}

#[derive(Debug)]
enum Kind {
    Single {
        reply_id: u16,
    },
    Dump {
        details_id: u16,
        items: Vec<Bytes>,
        bytes: usize,
    },
}

#[derive(Debug)]
enum Stage {
    /// Waiting for room; the frame is written once admitted.
    Queued(Transmit),
    /// Admitted (counted against the in-flight limit), its frame waiting
    /// in `transmits` to be handed out.
    Admitted,
    /// Handed out for writing: its reply deadline runs.
    Sent,
}

/// Why a request expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// It was sent and no answer came within its reply timeout.
    Reply,
    /// It was never handed out for writing within the queue limit.
    Unsent,
}

#[derive(Debug)]
struct Entry<W> {
    waiter: W,
    kind: Kind,
    /// The reply timeout, started when the frame is handed out.
    timeout: Duration,
    /// The send deadline until handed out, then the reply deadline.
    deadline: Instant,
    stage: Stage,
}

/// The pending requests of one connection.
#[derive(Debug)]
pub struct Matcher<W> {
    next_context: u32,
    control_ping_reply_id: u16,
    max_in_flight: usize,
    queue_limit: Duration,
    in_flight: usize,
    pending: HashMap<u32, Entry<W>>,
    /// Contexts waiting for room, in start order.
    queue: VecDeque<u32>,
    /// Admitted frames not yet taken by [`Matcher::poll_transmit`].
    transmits: VecDeque<Transmit>,
    deadlines: BTreeSet<(Instant, u32)>,
}

impl<W> Matcher<W> {
    /// A matcher for a connection whose `control_ping_reply` has the id
    /// `control_ping_reply_id`, with at most `max_in_flight` requests
    /// admitted at once (at least 1), where a request not handed out for
    /// writing within `queue_limit` of its start expires unsent.
    pub fn new(
        control_ping_reply_id: u16,
        max_in_flight: usize,
        queue_limit: Duration,
    ) -> Matcher<W> {
        Matcher {
            next_context: 1,
            control_ping_reply_id,
            max_in_flight: max_in_flight.max(1),
            queue_limit,
            in_flight: 0,
            pending: HashMap::new(),
            queue: VecDeque::new(),
            transmits: VecDeque::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// Number of requests not finished (waiting for room or in flight).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no request is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Number of requests admitted and not finished; never above the
    /// limit.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Number of requests waiting for room.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn fresh_context(&mut self) -> u32 {
        loop {
            let c = self.next_context;
            self.next_context = self.next_context.wrapping_add(1);
            if c != 0 && !self.pending.contains_key(&c) {
                return c;
            }
        }
    }

    /// Registers a request expecting `expect`, started at `now`, to be
    /// answered within `timeout` of being handed out for writing; `encode`
    /// builds its frame(s) for the context it is given. Returns that
    /// context. The frame is handed out by [`Matcher::poll_transmit`] at
    /// once if there is room, otherwise when earlier requests finish.
    pub fn start(
        &mut self,
        expect: Expect,
        waiter: W,
        now: Instant,
        timeout: Duration,
        message: &'static str,
        encode: impl FnOnce(u32) -> Bytes,
    ) -> u32 {
        let context = self.fresh_context();
        let kind = match expect {
            Expect::Reply(reply_id) => Kind::Single { reply_id },
            Expect::Dump(details_id) => Kind::Dump {
                details_id,
                items: Vec::new(),
                bytes: 0,
            },
        };
        let transmit = Transmit {
            context,
            message,
            frame: encode(context),
        };
        let deadline = now + self.queue_limit;
        self.pending.insert(
            context,
            Entry {
                waiter,
                kind,
                timeout,
                deadline,
                stage: Stage::Queued(transmit),
            },
        );
        self.deadlines.insert((deadline, context));
        self.queue.push_back(context);
        self.admit();
        context
    }

    /// Moves requests from the queue to the transmits while there is room.
    fn admit(&mut self) {
        while self.in_flight < self.max_in_flight {
            let Some(context) = self.queue.pop_front() else {
                return;
            };
            let Some(entry) = self.pending.get_mut(&context) else {
                continue;
            };
            if let Stage::Queued(t) = std::mem::replace(&mut entry.stage, Stage::Admitted) {
                self.transmits.push_back(t);
                self.in_flight += 1;
            }
        }
    }

    /// The next frame to write, if any, handed out at `now`: its reply
    /// deadline starts here.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        if let Some(entry) = self.pending.get_mut(&t.context) {
            self.deadlines.remove(&(entry.deadline, t.context));
            entry.deadline = now + entry.timeout;
            entry.stage = Stage::Sent;
            self.deadlines.insert((entry.deadline, t.context));
        }
        Some(t)
    }

    /// The earliest deadline of a pending request: when
    /// [`Matcher::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    /// Forgets every request whose deadline is at or before `now` and
    /// returns their contexts, waiters and why they expired (to be failed
    /// with a timeout).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(u32, W, Expiry)> {
        let mut expired = Vec::new();
        while let Some(&(deadline, context)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let why = match self.pending.get(&context).map(|e| &e.stage) {
                Some(Stage::Sent) => Expiry::Reply,
                _ => Expiry::Unsent,
            };
            if let Some(w) = self.cancel(context) {
                expired.push((context, w, why));
            } else {
                self.deadlines.remove(&(deadline, context));
            }
        }
        expired
    }

    /// Removes `context`'s entry, freeing its room and withdrawing its
    /// frame if it was not handed out yet.
    fn remove(&mut self, context: u32) -> Option<Entry<W>> {
        let entry = self.pending.remove(&context)?;
        self.deadlines.remove(&(entry.deadline, context));
        match entry.stage {
            Stage::Queued(_) => self.queue.retain(|&c| c != context),
            Stage::Admitted => {
                self.in_flight -= 1;
                self.transmits.retain(|t| t.context != context);
                self.admit();
            }
            Stage::Sent => {
                self.in_flight -= 1;
                self.admit();
            }
        }
        Some(entry)
    }

    /// Feeds one received payload.
    pub fn on_frame(&mut self, payload: Bytes) -> Outcome<W> {
        let (Some(msg_id), Some(context)) = (peek_msg_id(&payload), peek_reply_context(&payload))
        else {
            return Outcome::Malformed;
        };
        let Some(entry) = self.pending.get_mut(&context) else {
            return Outcome::Unsolicited { msg_id, context };
        };
        if !matches!(entry.stage, Stage::Sent) {
            // Not sent yet, so this cannot be its answer.
            return Outcome::Unsolicited { msg_id, context };
        }
        let result = match &mut entry.kind {
            Kind::Single { reply_id } if *reply_id == msg_id => Ok(Completion::Reply(payload)),
            Kind::Dump {
                details_id,
                items,
                bytes,
            } if *details_id == msg_id => {
                *bytes = bytes.saturating_add(payload.len());
                if *bytes <= MAX_DUMP_BYTES {
                    items.push(payload);
                    return Outcome::Progress;
                }
                Err(Mismatch::DumpTooLarge { bytes: *bytes })
            }
            Kind::Dump { items, .. } if msg_id == self.control_ping_reply_id => {
                Ok(Completion::Dump(std::mem::take(items)))
            }
            _ => Err(Mismatch::UnexpectedId { msg_id }),
        };
        match self.remove(context) {
            Some(entry) => Outcome::Done(entry.waiter, result),
            None => Outcome::Unsolicited { msg_id, context },
        }
    }

    /// Forgets a request (timed out, or its caller lost interest); a late
    /// reply is then unsolicited.
    pub fn cancel(&mut self, context: u32) -> Option<W> {
        self.remove(context).map(|e| e.waiter)
    }

    /// Forgets every request (the connection is gone), returning their
    /// waiters to be failed.
    pub fn drain(&mut self) -> Vec<W> {
        self.queue.clear();
        self.transmits.clear();
        self.deadlines.clear();
        self.in_flight = 0;
        self.pending.drain().map(|(_, e)| e.waiter).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PING_REPLY: u16 = 24;

    fn frame(msg_id: u16, context: u32, tail: &[u8]) -> Bytes {
        let mut v = msg_id.to_be_bytes().to_vec();
        v.extend_from_slice(&context.to_be_bytes());
        v.extend_from_slice(tail);
        Bytes::from(v)
    }

    /// A fixed origin for deadlines: tests never read the clock.
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        #[allow(clippy::disallowed_methods, reason = "one fixed origin for the tests")]
        *T0.get_or_init(Instant::now)
    }

    fn at(ms: u64) -> Instant {
        t0() + Duration::from_millis(ms)
    }

    const SECOND: Duration = Duration::from_secs(1);
    const QUEUE_LIMIT: Duration = Duration::from_secs(60);

    fn matcher<W>(max_in_flight: usize) -> Matcher<W> {
        Matcher::new(PING_REPLY, max_in_flight, QUEUE_LIMIT)
    }

    fn req<W>(m: &mut Matcher<W>, reply_id: u16, w: W) -> u32 {
        m.start(Expect::Reply(reply_id), w, at(0), SECOND, "req", |c| {
            Bytes::from(c.to_be_bytes().to_vec())
        })
    }

    fn dump<W>(m: &mut Matcher<W>, details_id: u16, w: W) -> u32 {
        m.start(Expect::Dump(details_id), w, at(0), SECOND, "dump", |_| {
            Bytes::new()
        })
    }

    /// Hands out every frame there is room for at `now`: their contexts.
    fn send_all<W>(m: &mut Matcher<W>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| m.poll_transmit(now).map(|t| t.context)).collect()
    }

    #[test]
    fn replies_match_by_context_in_any_order() {
        let mut m = matcher(8);
        let a = req(&mut m, 102, "a");
        let b = req(&mut m, 102, "b");
        assert_eq!(send_all(&mut m, at(0)), [a, b]);
        assert_ne!(a, b);
        assert!(a != 0 && b != 0);
        match m.on_frame(frame(102, b, &[0, 0, 0, 0])) {
            Outcome::Done("b", Ok(Completion::Reply(_))) => {}
            other => panic!("{other:?}"),
        }
        match m.on_frame(frame(102, a, &[0, 0, 0, 0])) {
            Outcome::Done("a", Ok(Completion::Reply(_))) => {}
            other => panic!("{other:?}"),
        }
        assert!(m.is_empty());
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn dump_ends_at_the_ping_reply() {
        let mut m = matcher(8);
        let c = dump(&mut m, 110, ());
        send_all(&mut m, at(0));
        assert!(matches!(m.on_frame(frame(110, c, &[1])), Outcome::Progress));
        assert!(matches!(m.on_frame(frame(110, c, &[2])), Outcome::Progress));
        match m.on_frame(frame(PING_REPLY, c, &[0; 12])) {
            Outcome::Done((), Ok(Completion::Dump(items))) => {
                assert_eq!(items, [frame(110, c, &[1]), frame(110, c, &[2])]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dump_that_never_ends_is_bounded() {
        let mut m = matcher(8);
        let c = dump(&mut m, 110, ());
        send_all(&mut m, at(0));
        let big = frame(110, c, &vec![0; 1 << 20]);
        let mut n = 0;
        let outcome = loop {
            match m.on_frame(big.clone()) {
                Outcome::Progress => n += 1,
                other => break other,
            }
        };
        assert_eq!(n, MAX_DUMP_BYTES / big.len());
        assert!(matches!(
            outcome,
            Outcome::Done((), Err(Mismatch::DumpTooLarge { bytes })) if bytes > MAX_DUMP_BYTES
        ));
        assert!(m.is_empty());
    }

    #[test]
    fn wrong_ids_late_replies_and_short_frames() {
        let mut m = matcher(8);
        let c = req(&mut m, 102, 1);
        send_all(&mut m, at(0));
        assert!(matches!(
            m.on_frame(frame(999, c, &[])),
            Outcome::Done(1, Err(Mismatch::UnexpectedId { msg_id: 999 }))
        ));
        let c = req(&mut m, 102, 2);
        assert_eq!(m.cancel(c), Some(2));
        assert!(matches!(
            m.on_frame(frame(102, c, &[])),
            Outcome::Unsolicited { msg_id: 102, .. }
        ));
        assert!(matches!(
            m.on_frame(Bytes::from_static(&[0, 1, 0])),
            Outcome::Malformed
        ));
        req(&mut m, 102, 3);
        dump(&mut m, 110, 4);
        let mut drained = m.drain();
        drained.sort();
        assert_eq!(drained, [3, 4]);
        assert_eq!(m.poll_transmit(at(0)), None);
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn contexts_skip_zero_and_pending_ones() {
        let mut m = matcher(8);
        m.next_context = u32::MAX;
        let a = req(&mut m, 1, ());
        let b = req(&mut m, 1, ());
        assert_eq!((a, b), (u32::MAX, 1));
        m.next_context = 1;
        assert_eq!(req(&mut m, 1, ()), 2, "1 is still pending");
    }

    #[test]
    fn admission_is_bounded_and_in_start_order() {
        let mut m = matcher(2);
        let cs: Vec<u32> = (0..5).map(|i| req(&mut m, 102, i)).collect();
        let sent = send_all(&mut m, at(0));
        assert_eq!(sent, cs[..2]);
        assert_eq!((m.in_flight(), m.queued()), (2, 3));
        // A reply for a request that was never sent is not its answer.
        assert!(matches!(
            m.on_frame(frame(102, cs[3], &[])),
            Outcome::Unsolicited { .. }
        ));
        // Cancelling a queued request withdraws it: it is never sent.
        assert_eq!(m.cancel(cs[2]), Some(2));
        assert!(matches!(
            m.on_frame(frame(102, cs[0], &[])),
            Outcome::Done(0, Ok(_))
        ));
        assert_eq!(m.poll_transmit(at(0)).map(|t| t.context), Some(cs[3]));
        assert_eq!(m.poll_transmit(at(0)), None);
        // Cancelling an admitted request frees its room.
        assert_eq!(m.cancel(cs[1]), Some(1));
        assert_eq!(m.poll_transmit(at(0)).map(|t| t.context), Some(cs[4]));
        assert_eq!((m.in_flight(), m.queued()), (2, 0));
    }

    #[test]
    fn a_cancelled_request_not_yet_written_is_withdrawn() {
        let mut m = matcher(4);
        let a = req(&mut m, 102, ());
        let b = req(&mut m, 102, ());
        m.cancel(a);
        assert_eq!(m.poll_transmit(at(0)).map(|t| t.context), Some(b));
        assert_eq!(m.poll_transmit(at(0)), None);
    }

    #[test]
    fn reply_deadlines_start_when_sent_not_when_queued() {
        let mut m = matcher(1);
        let enc = |c: u32| Bytes::from(c.to_be_bytes().to_vec());
        let ms = Duration::from_millis;
        // Three requests started at 0 with a 100 ms reply timeout, room
        // for one at a time.
        let a = m.start(Expect::Reply(102), 'a', at(0), ms(100), "a", enc);
        let b = m.start(Expect::Reply(102), 'b', at(0), ms(100), "b", enc);
        let c = m.start(Expect::Reply(102), 'c', at(0), ms(100), "c", enc);
        // Not sent yet: only the queue limit bounds them.
        assert_eq!(m.poll_timeout(), Some(at(0) + QUEUE_LIMIT));
        assert_eq!(send_all(&mut m, at(10)), [a]);
        assert_eq!(m.poll_timeout(), Some(at(110)));
        // `a` is answered at 90; `b` is handed out at 95, long after it
        // was started.
        assert!(matches!(
            m.on_frame(frame(102, a, &[])),
            Outcome::Done('a', Ok(_))
        ));
        assert_eq!(send_all(&mut m, at(95)), [b]);
        // At 150 (150 ms after its start, 55 ms after it was sent) `b` is
        // still waiting for VPP: time queued is not VPP's.
        assert_eq!(m.handle_timeout(at(150)), []);
        assert_eq!(m.poll_timeout(), Some(at(195)));
        assert_eq!(m.handle_timeout(at(195)), [(b, 'b', Expiry::Reply)]);
        // `c` is handed out once `b` is gone, its deadline from then.
        assert_eq!(send_all(&mut m, at(196)), [c]);
        assert_eq!(m.poll_timeout(), Some(at(296)));
        assert!(matches!(
            m.on_frame(frame(102, c, &[])),
            Outcome::Done('c', Ok(_))
        ));
        assert!(m.is_empty());
    }

    #[test]
    fn a_request_never_sent_expires_at_the_queue_limit() {
        let mut m = matcher(1);
        let enc = |c: u32| Bytes::from(c.to_be_bytes().to_vec());
        let a = m.start(Expect::Reply(102), 'a', at(0), SECOND, "a", enc);
        let b = m.start(Expect::Reply(102), 'b', at(5), SECOND, "b", enc);
        // Nothing is handed out (a writer that cannot write): both end at
        // their queue limit, unsent, in start order.
        assert_eq!(
            m.handle_timeout(at(0) + QUEUE_LIMIT),
            [(a, 'a', Expiry::Unsent)]
        );
        assert_eq!(
            m.handle_timeout(at(5) + QUEUE_LIMIT),
            [(b, 'b', Expiry::Unsent)]
        );
        assert_eq!(
            m.poll_transmit(at(0)),
            None,
            "expired requests are never sent"
        );
        assert!(m.is_empty());
        assert_eq!(m.in_flight(), 0);
    }
}
