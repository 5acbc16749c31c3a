//! The demo's dataplane: what VPP does to a client's TCP connection to a
//! VIP, played on loopback, so a client on this host (`maglevt`, `curl`)
//! meets the VIPs as clients meet them through VPP.
//!
//! One listener per TCP (or all-port) frontend of the config, on the VIP's
//! address and port (an all-port VIP on the backends' port). For each new
//! connection it does what VPP's `lb` node does to a new flow:
//!
//! - it finds the live VIP in the simulator by destination (a port VIP
//!   before the all-port VIP of the same address), and hashes the flow
//!   (source and destination address and port, or with `src_ip_sticky` the
//!   source address only) onto that VIP's Maglev new-flow table;
//! - the bucket's AS gets the connection, on the same destination port (GRE
//!   delivers the client's packet unchanged); bytes are relayed both ways;
//! - no VIP, or no AS with a bucket: the flow is dropped, so the client
//!   hears nothing and times out (the listener has already completed the
//!   TCP handshake, so a bare connect still succeeds: the one place the
//!   demo is kinder than VPP);
//! - the AS refuses: the client gets a reset, as from the AS itself;
//! - the AS is flushed from the VIP while the connection lasts (VPP clears
//!   its sticky entries): the connection is reset, as a flushed flow's next
//!   packet reaches an AS that has no socket for it.
//!
//! Each connection is counted in the simulated stats segment as one new
//! flow of the VIP (its packets estimated from the bytes the client sent),
//! so the counters move with real traffic too. VPP's sticky flow table is
//! not modelled beyond a connection keeping its AS for its life.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::Config;
use maglev_core::dataplane::{Protocol, VipKey};
use maglev_vpp::sim::{LbModel, SimModel};
use maglev_vpp::stats::sim::SimStats;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The most connections one VIP carries (or holds) at once; beyond, new
/// connections are reset.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a dropped flow's connection is held silent before it is reset.
pub const HOLD_DROPPED: Duration = Duration::from_secs(30);

/// How long connecting to an AS may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a relayed connection looks for a flush of its AS.
const FLUSH_POLL: Duration = Duration::from_millis(100);

/// The payload of one estimated packet (an Ethernet MTU's TCP segment).
const SEGMENT_BYTES: u64 = 1448;

/// The running listeners.
#[derive(Debug)]
pub struct Forwarder {
    listening: Vec<(String, SocketAddr)>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Forwarder {
    /// Listens on every TCP and all-port VIP of `config`; an all-port VIP
    /// on `port`. A VIP whose address cannot be bound (no IPv6 on the
    /// loopback, the port taken) is skipped with a warning: the rest of the
    /// demo does not need it.
    pub async fn start(config: &Config, port: u16, sim: SimModel, stats: SimStats) -> Forwarder {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut listening = Vec::new();
        for (name, frontend) in config.frontends() {
            if frontend.protocol == Some(Protocol::Udp) {
                continue;
            }
            let vip_port = if frontend.port == 0 {
                port
            } else {
                frontend.port
            };
            let addr = SocketAddr::new(frontend.address, vip_port);
            let listener = match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(frontend = %name, %addr, error = %e,
                        "the demo cannot listen on this VIP; clients cannot reach it");
                    continue;
                }
            };
            let addr = listener.local_addr().unwrap_or(addr);
            listening.push((name.clone(), addr));
            let door = Door {
                sim: sim.clone(),
                stats: stats.clone(),
                slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
                stop: stop.clone(),
                tasks: tasks.clone(),
            };
            tasks.spawn(door.serve(listener));
        }
        Forwarder {
            listening,
            stop,
            tasks,
        }
    }

    /// Each VIP listened on: frontend name and address.
    pub fn listening(&self) -> &[(String, SocketAddr)] {
        &self.listening
    }

    /// Stops listening and cuts every connection.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// One VIP's listener and what its connections need.
#[derive(Clone)]
struct Door {
    sim: SimModel,
    stats: SimStats,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// Where VPP sends a new flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pick {
    /// The VIP's key and pool index.
    key: VipKey,
    pool_index: u32,
    /// The AS the flow's bucket names; `None`: dropped.
    to: Option<IpAddr>,
    /// The worker thread the flow is counted on.
    thread: usize,
    /// How many flushes the simulator had done when the flow started.
    flushes: usize,
}

impl Door {
    async fn serve(self, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.stop.cancelled() => return,
                a = listener.accept() => a,
            };
            let (client, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "demo forwarder: accept failed");
                    continue;
                }
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                reset(client);
                continue;
            };
            let door = self.clone();
            self.tasks.spawn(async move {
                door.carry(client, peer).await;
                drop(slot);
            });
        }
    }

    /// One connection, from pick to close.
    async fn carry(&self, client: TcpStream, peer: SocketAddr) {
        let Ok(local) = client.local_addr() else {
            return;
        };
        let threads = self.stats.threads();
        let pick = self.sim.with_model(|m| pick(m, peer, local, threads));
        let Some(pick) = pick else {
            // No VIP: VPP has no route for the flow.
            self.hold(client).await;
            return;
        };
        let Some(to) = pick.to else {
            let _ = self.stats.send(pick.pool_index, pick.thread, 1, 0);
            self.hold(client).await;
            return;
        };
        let connect = TcpStream::connect(SocketAddr::new(to, local.port()));
        let backend = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) | Err(_) => {
                let _ = self.stats.send(pick.pool_index, pick.thread, 1, 0);
                reset(client);
                return;
            }
        };
        let (sent, flushed) = self.relay(client, backend, &pick).await;
        let packets = 2 + sent.div_ceil(SEGMENT_BYTES);
        let _ = self
            .stats
            .send(pick.pool_index, pick.thread, packets, sent + 40 * packets);
        if flushed {
            tracing::debug!(%peer, backend = %to, "demo forwarder: flow flushed");
        }
    }

    /// Relays until either side closes, the AS is flushed, or the demo
    /// stops: the bytes the client sent, and whether a flush cut it.
    async fn relay(&self, client: TcpStream, backend: TcpStream, pick: &Pick) -> (u64, bool) {
        let mut client = client;
        let mut backend = backend;
        let mut poll = tokio::time::interval(FLUSH_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = {
            let copy = tokio::io::copy_bidirectional(&mut client, &mut backend);
            tokio::pin!(copy);
            loop {
                tokio::select! {
                    r = &mut copy => break r.map(|(up, _)| (up, false)).unwrap_or((0, false)),
                    _ = self.stop.cancelled() => break (0, false),
                    _ = poll.tick() => {
                        if self.sim.with_model(|m| flushed(m, pick)) {
                            break (0, true);
                        }
                    }
                }
            }
        };
        if outcome.1 {
            reset(client);
            reset(backend);
        }
        outcome
    }

    /// A dropped flow: the client hears nothing until it gives up, the
    /// hold ends or the demo stops; then the connection is reset.
    async fn hold(&self, mut client: TcpStream) {
        let mut sink = [0u8; 1024];
        let drain = async { while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {} };
        tokio::select! {
            _ = drain => {}
            _ = tokio::time::sleep(HOLD_DROPPED) => {}
            _ = self.stop.cancelled() => {}
        }
        reset(client);
    }
}

/// Where the simulator sends a new flow from `peer` to `local`, if any VIP
/// takes it.
fn pick(m: &LbModel, peer: SocketAddr, local: SocketAddr, threads: usize) -> Option<Pick> {
    let port = VipKey::host(local.ip(), Some(Protocol::Tcp), local.port());
    let any = VipKey::host(local.ip(), None, 0);
    let (pool_index, vip) = m
        .vips()
        .filter(|(_, v)| v.used)
        .find(|(_, v)| v.key == port)
        .or_else(|| m.vips().filter(|(_, v)| v.used).find(|(_, v)| v.key == any))?;
    let hash = flow_hash(peer, local, vip.src_ip_sticky);
    let buckets = vip.table.buckets();
    let to = if buckets.is_empty() {
        None
    } else {
        buckets[(hash % buckets.len() as u64) as usize]
    };
    // Workers are threads 1..; with no workers the main thread works.
    let thread = if threads > 1 {
        1 + (hash % (threads as u64 - 1)) as usize
    } else {
        0
    };
    Some(Pick {
        key: vip.key,
        pool_index,
        to,
        thread,
        flushes: m.flushes().len(),
    })
}

/// Whether the simulator flushed `pick`'s AS from its VIP since the flow
/// started.
fn flushed(m: &LbModel, pick: &Pick) -> bool {
    let Some(to) = pick.to else { return false };
    m.flushes()
        .get(pick.flushes..)
        .unwrap_or_default()
        .iter()
        .any(|(key, address)| *key == pick.key && *address == to)
}

/// The flow's hash: its 4-tuple, or its source address alone for a
/// `src_ip_sticky` VIP. Fixed keys, so the same flow always lands on the
/// same bucket.
fn flow_hash(peer: SocketAddr, local: SocketAddr, src_ip_sticky: bool) -> u64 {
    let mut h = DefaultHasher::new();
    peer.ip().hash(&mut h);
    if !src_ip_sticky {
        peer.port().hash(&mut h);
        local.hash(&mut h);
    }
    h.finish()
}

/// Closes `stream` with a reset (no FIN, no TIME_WAIT).
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sticky_flow_hashes_on_its_source_address_only() {
        let local: SocketAddr = "127.0.1.10:18080".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(flow_hash(a, local, true), flow_hash(b, local, true));
        assert_ne!(flow_hash(a, local, false), flow_hash(b, local, false));
        assert_eq!(flow_hash(a, local, false), flow_hash(a, local, false));
    }
}
