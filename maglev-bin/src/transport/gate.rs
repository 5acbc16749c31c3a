//! Who gets in: each server's open connections, capped, and which to let
//! go when a new one arrives.
//!
//! A connection is *pending* from its accept until its first request's
//! headers are in (after its TLS handshake, on a TLS listener); after that
//! it is *serving*. A new connection is always accepted (the accept loop
//! never waits), and then:
//!
//! - if its address already has [`PER_PEER_PENDING`] pending, the oldest
//!   of them is shed;
//! - if the server has [`MAX_PENDING`] pending, the oldest pending one is
//!   shed;
//! - if the server is at its cap, the oldest pending one is shed; when
//!   every open connection is serving, the one quiet the longest is shed
//!   if it has been quiet for [`QUIET_TO_SHED`], and otherwise the new one
//!   is closed at once.
//!
//! Closing at once (rather than leaving it in the kernel's backlog) keeps
//! the process's descriptors bounded *and* the backlog empty, so a client
//! that comes when a slot frees is not stuck behind dead ones; the client
//! sees its connection closed, not a hang. Shedding the oldest pending
//! one means a flood of silent sockets cannot keep a real client out: the
//! real client is the newest, and it is pending only for as long as its
//! handshake takes. [`QUIET_TO_SHED`] is longer than gRPC's keepalive
//! interval and the event stream's ping, so a live gRPC connection or an
//! open event stream is never shed; a keep-alive HTTP connection between
//! two scrapes may be (its client reconnects).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::listeners::ListenerMetrics;

/// How many pending connections (TLS handshakes, first requests) one
/// server holds at once.
pub const MAX_PENDING: usize = 64;
/// How many of them one client address may hold.
pub const PER_PEER_PENDING: usize = 16;
/// How long a serving connection must have been quiet (no byte either
/// way) to be shed for a newcomer when the server is full.
pub const QUIET_TO_SHED: Duration = Duration::from_secs(45);
/// How often at most a server logs that it shed or refused connections.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One server's open connections.
#[derive(Debug)]
pub struct Gate {
    server: &'static str,
    cap: usize,
    /// What the connections' last-activity times count from.
    born: Instant,
    state: Mutex<State>,
    metrics: Option<ListenerMetrics>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// By age: ids only grow.
    open: BTreeMap<u64, Slot>,
    shed: u64,
    refused: u64,
    warned: Option<Instant>,
}

#[derive(Debug)]
struct Slot {
    ip: IpAddr,
    pending: Arc<AtomicBool>,
    /// Milliseconds after the gate's birth of its last byte.
    last: Arc<AtomicU64>,
    shed: CancellationToken,
}

/// An open connection's place in its server's [`Gate`]; dropping it
/// frees the place.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    pending: Arc<AtomicBool>,
    last: Arc<AtomicU64>,
    shed: CancellationToken,
}

impl Ticket {
    /// The connection's first request is in: it is no longer pending.
    pub fn serving(&self) {
        self.pending.store(false, Ordering::Relaxed);
    }

    /// Whether it is still pending.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// A byte went either way at `now`.
    pub fn active(&self, now: Instant) {
        self.last.store(self.gate.millis(now), Ordering::Relaxed);
    }

    /// Cancelled when the connection is shed to make room.
    pub fn shed(&self) -> &CancellationToken {
        &self.shed
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.gate.state();
        if st.open.remove(&self.id).is_some() {
            self.gate.count(st.open.len());
        }
    }
}

impl Gate {
    /// A gate of `cap` connections (at least 1) for `server` (named in
    /// logs and in `metrics`' series, when given).
    pub fn new(server: &'static str, cap: usize, metrics: Option<ListenerMetrics>) -> Arc<Gate> {
        let gate = Gate {
            server,
            cap: cap.max(1),
            born: Instant::now(),
            state: Mutex::default(),
            metrics,
        };
        gate.count(0);
        Arc::new(gate)
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.duration_since(self.born).as_millis()).unwrap_or(u64::MAX)
    }

    fn count(&self, open: usize) {
        if let Some(m) = &self.metrics {
            m.connections(self.server, open, self.cap);
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.state().open.len()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new connection from `ip`, shedding older pending ones
    /// as the module doc says; `None` when the server is full of serving
    /// connections (the caller closes the new one).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let mut st = self.state();
        let pending: Vec<(u64, IpAddr)> = st
            .open
            .iter()
            .filter(|(_, s)| s.pending.load(Ordering::Relaxed))
            .map(|(id, s)| (*id, s.ip))
            .collect();
        let mut shed = Vec::new();
        let of_peer: Vec<u64> = pending
            .iter()
            .filter(|(_, p)| *p == ip)
            .map(|(id, _)| *id)
            .collect();
        if of_peer.len() >= PER_PEER_PENDING {
            shed.push(of_peer[0]);
        }
        let peer_shed = shed.first().copied();
        let mut oldest = pending
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| Some(*id) != peer_shed);
        if pending.len() - shed.len() >= MAX_PENDING
            && let Some(id) = oldest.next()
        {
            shed.push(id);
        }
        let now = Instant::now();
        if st.open.len() - shed.len() >= self.cap {
            if let Some(id) = oldest.next() {
                shed.push(id);
            } else {
                // Every one serves: the quietest, if quiet for long enough.
                let now_ms = self.millis(now);
                let quietest = st
                    .open
                    .iter()
                    .filter(|(id, _)| !shed.contains(id))
                    .map(|(id, s)| (s.last.load(Ordering::Relaxed), *id))
                    .min();
                if let Some((last, id)) = quietest
                    && Duration::from_millis(now_ms.saturating_sub(last)) >= QUIET_TO_SHED
                {
                    shed.push(id);
                }
            }
        }
        let mut dropped = 0;
        for id in &shed {
            if let Some(slot) = st.open.remove(id) {
                slot.shed.cancel();
                st.shed += 1;
                dropped += 1;
            }
        }
        let admitted = st.open.len() < self.cap;
        if !admitted {
            st.refused += 1;
        }
        if let Some(m) = &self.metrics {
            m.dropped(self.server, "shed", dropped);
            m.dropped(self.server, "refused", u64::from(!admitted));
        }
        if (st.shed > 0 || st.refused > 0)
            && st
                .warned
                .is_none_or(|w| now.duration_since(w) >= WARN_EVERY)
        {
            tracing::warn!(
                server = self.server,
                cap = self.cap,
                shed = st.shed,
                refused = st.refused,
                "{} connections at their limit: oldest pending or long-quiet ones shed, new ones refused while every one is busy",
                self.server
            );
            st.warned = Some(now);
            st.shed = 0;
            st.refused = 0;
        }
        if !admitted {
            self.count(st.open.len());
            return None;
        }
        let id = st.next;
        st.next += 1;
        let pending = Arc::new(AtomicBool::new(true));
        let last = Arc::new(AtomicU64::new(self.millis(now)));
        let token = CancellationToken::new();
        st.open.insert(
            id,
            Slot {
                ip,
                pending: pending.clone(),
                last: last.clone(),
                shed: token.clone(),
            },
        );
        self.count(st.open.len());
        Some(Ticket {
            gate: self.clone(),
            id,
            pending,
            last,
            shed: token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_gate_sheds_the_oldest_pending_then_refuses() {
        let gate = Gate::new("test", 3, None);
        let a = gate.admit(ip(1)).unwrap();
        let b = gate.admit(ip(2)).unwrap();
        let c = gate.admit(ip(3)).unwrap();
        b.serving();
        // Full: the oldest pending (a) goes, not b which is serving.
        let d = gate.admit(ip(4)).unwrap();
        assert!(a.shed().is_cancelled());
        assert!(!b.shed().is_cancelled() && !c.shed().is_cancelled());
        assert_eq!(gate.open(), 3);
        c.serving();
        d.serving();
        // Every open one serves: the new one is refused.
        assert!(gate.admit(ip(5)).is_none());
        assert_eq!(gate.open(), 3);
        // A closed one frees its place (a's was freed when it was shed).
        drop(a);
        assert_eq!(gate.open(), 3);
        drop(b);
        assert!(gate.admit(ip(5)).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_gate_of_serving_connections_sheds_the_quietest_once_quiet_long_enough() {
        let gate = Gate::new("test", 2, None);
        let a = gate.admit(ip(1)).unwrap();
        let b = gate.admit(ip(2)).unwrap();
        a.serving();
        b.serving();
        tokio::time::advance(QUIET_TO_SHED - Duration::from_secs(1)).await;
        b.active(Instant::now());
        // Nobody quiet for long enough yet.
        assert!(gate.admit(ip(3)).is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        // a has been quiet for QUIET_TO_SHED: it goes, b (active since) stays.
        let c = gate.admit(ip(3)).unwrap();
        assert!(a.shed().is_cancelled());
        assert!(!b.shed().is_cancelled() && !c.shed().is_cancelled());
        c.serving();
        // b and c were both active less than QUIET_TO_SHED ago.
        assert!(gate.admit(ip(4)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn pending_connections_are_capped_per_server_and_per_peer() {
        let gate = Gate::new("test", 1000, None);
        // One peer: its oldest goes beyond PER_PEER_PENDING.
        let flood: Vec<Ticket> = (0..PER_PEER_PENDING + 1)
            .map(|_| gate.admit(ip(1)).unwrap())
            .collect();
        assert!(flood[0].shed().is_cancelled());
        assert!(flood[1..].iter().all(|t| !t.shed().is_cancelled()));
        assert_eq!(gate.open(), PER_PEER_PENDING);
        // Many peers: the oldest pending goes beyond MAX_PENDING, and a
        // serving connection never does.
        flood[1].serving();
        let many: Vec<Ticket> = (0..MAX_PENDING)
            .map(|i| gate.admit(ip(10 + (i % 200) as u8)).unwrap())
            .collect();
        let pending = flood
            .iter()
            .chain(&many)
            .filter(|t| t.pending() && !t.shed().is_cancelled())
            .count();
        assert_eq!(pending, MAX_PENDING);
        assert!(!flood[1].shed().is_cancelled());
        // The newest is always in.
        assert!(!many.last().unwrap().shed().is_cancelled());
    }
}
