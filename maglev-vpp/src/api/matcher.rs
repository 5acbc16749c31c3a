//! Request/reply matching by context, without I/O.
//!
//! Every request gets a fresh non-zero context; VPP copies it into every
//! reply and details message it produces for that request. A plain request
//! completes with the first frame carrying its context; a dump collects
//! details until the `control_ping_reply` with its context (the client
//! sends the ping right after the dump, VPP-WIRE A.9). The async client
//! owns one [`Matcher`] and a waiter `W` per request (a channel sender);
//! tests use `W = ()` or a number.

use std::collections::HashMap;

use bytes::Bytes;

use super::messages::{peek_msg_id, peek_reply_context};

/// What a finished request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The payload of the one reply.
    Reply(Bytes),
    /// The payloads of every details message, in order.
    Dump(Vec<Bytes>),
}

/// A frame that completes a request the wrong way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnexpectedId {
    /// The id that came.
    pub msg_id: u16,
}

/// What one received frame did.
#[derive(Debug)]
pub enum Outcome<W> {
    /// It completed the request of `waiter` (or broke it: a frame with that
    /// context but neither the reply, details nor the end-of-dump ping).
    Done(W, Result<Completion, UnexpectedId>),
    /// It was one more details message of a dump.
    Progress,
    /// Nobody waits for its context: an event, or the late reply of a
    /// request that timed out.
    Unsolicited {
        /// Its message id.
        msg_id: u16,
        /// Its context.
        context: u32,
    },
    /// Shorter than a reply header: nothing can be done with it.
    Malformed,
}

#[derive(Debug)]
enum Kind {
    Single { reply_id: u16 },
    Dump { details_id: u16, items: Vec<Bytes> },
}

/// Pending requests by context.
#[derive(Debug)]
pub struct Matcher<W> {
    next_context: u32,
    control_ping_reply_id: u16,
    pending: HashMap<u32, (W, Kind)>,
}

impl<W> Matcher<W> {
    /// A matcher for a connection whose `control_ping_reply` has the id
    /// `control_ping_reply_id`.
    pub fn new(control_ping_reply_id: u16) -> Matcher<W> {
        Matcher {
            next_context: 1,
            control_ping_reply_id,
            pending: HashMap::new(),
        }
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
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

    /// Registers a request answered by one `reply_id` message; returns the
    /// context to send it with.
    pub fn start_request(&mut self, reply_id: u16, waiter: W) -> u32 {
        let c = self.fresh_context();
        self.pending.insert(c, (waiter, Kind::Single { reply_id }));
        c
    }

    /// Registers a dump answered by `details_id` messages and ended by the
    /// `control_ping_reply`; returns the context to send the dump and the
    /// ping with.
    pub fn start_dump(&mut self, details_id: u16, waiter: W) -> u32 {
        let c = self.fresh_context();
        self.pending.insert(
            c,
            (
                waiter,
                Kind::Dump {
                    details_id,
                    items: Vec::new(),
                },
            ),
        );
        c
    }

    /// Feeds one received payload.
    pub fn on_frame(&mut self, payload: Bytes) -> Outcome<W> {
        let (Some(msg_id), Some(context)) = (peek_msg_id(&payload), peek_reply_context(&payload))
        else {
            return Outcome::Malformed;
        };
        let Some((_, kind)) = self.pending.get_mut(&context) else {
            return Outcome::Unsolicited { msg_id, context };
        };
        let result = match kind {
            Kind::Single { reply_id } if *reply_id == msg_id => Ok(Completion::Reply(payload)),
            Kind::Dump { details_id, items } if *details_id == msg_id => {
                items.push(payload);
                return Outcome::Progress;
            }
            Kind::Dump { items, .. } if msg_id == self.control_ping_reply_id => {
                Ok(Completion::Dump(std::mem::take(items)))
            }
            _ => Err(UnexpectedId { msg_id }),
        };
        let (waiter, _) = self.pending.remove(&context).expect("present");
        Outcome::Done(waiter, result)
    }

    /// Forgets a request (it timed out); a late reply is then unsolicited.
    pub fn cancel(&mut self, context: u32) -> Option<W> {
        self.pending.remove(&context).map(|(w, _)| w)
    }

    /// Forgets every request (the connection is gone), returning their
    /// waiters to be failed.
    pub fn drain(&mut self) -> Vec<W> {
        self.pending.drain().map(|(_, (w, _))| w).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING_REPLY: u16 = 24;

    fn frame(msg_id: u16, context: u32, tail: &[u8]) -> Bytes {
        let mut v = msg_id.to_be_bytes().to_vec();
        v.extend_from_slice(&context.to_be_bytes());
        v.extend_from_slice(tail);
        Bytes::from(v)
    }

    #[test]
    fn replies_match_by_context_in_any_order() {
        let mut m = Matcher::new(PING_REPLY);
        let a = m.start_request(102, "a");
        let b = m.start_request(102, "b");
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
    }

    #[test]
    fn dump_ends_at_the_ping_reply() {
        let mut m = Matcher::new(PING_REPLY);
        let c = m.start_dump(110, ());
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
    fn wrong_ids_late_replies_and_short_frames() {
        let mut m = Matcher::new(PING_REPLY);
        let c = m.start_request(102, 1);
        assert!(matches!(
            m.on_frame(frame(999, c, &[])),
            Outcome::Done(1, Err(UnexpectedId { msg_id: 999 }))
        ));
        let c = m.start_request(102, 2);
        assert_eq!(m.cancel(c), Some(2));
        assert!(matches!(
            m.on_frame(frame(102, c, &[])),
            Outcome::Unsolicited { msg_id: 102, .. }
        ));
        assert!(matches!(
            m.on_frame(Bytes::from_static(&[0, 1, 0])),
            Outcome::Malformed
        ));
        m.start_request(102, 3);
        m.start_dump(110, 4);
        let mut drained = m.drain();
        drained.sort();
        assert_eq!(drained, [3, 4]);
    }

    #[test]
    fn contexts_skip_zero_and_pending_ones() {
        let mut m = Matcher::new(PING_REPLY);
        m.next_context = u32::MAX;
        let a = m.start_request(1, ());
        let b = m.start_request(1, ());
        assert_eq!((a, b), (u32::MAX, 1));
        m.next_context = 1;
        assert_eq!(m.start_request(1, ()), 2, "1 is still pending");
    }
}
