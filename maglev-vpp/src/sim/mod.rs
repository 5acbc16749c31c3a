//! An in-process VPP simulator (feature `sim`): the socket framing and
//! handshake of VPP's binary API, with a message table of the same names
//! and CRCs, in front of a model of the `lb` plugin ([`lb_model`]).
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use maglev_vpp::sim::{Sim, SimConfig};
//! let mut sim = Sim::start(SimConfig::new("/tmp/api.sock")).await?;
//! let vpp = maglev_vpp::Client::connect(sim.api_socket()).await.unwrap();
//! sim.restart().await?; // new pid, new message ids, empty state
//! vpp.reconnect().await.unwrap();
//! sim.stop().await;
//! # Ok(()) }
//! ```
//!
//! - [`lb_model`]: the plugin's state and rules, pure.
//! - [`SimClients`]: the API registrations, with VPP 26.10's leak: a
//!   connection that goes away without `sockclnt_delete` after a large
//!   reply stays registered for good, and with
//!   [`SimConfig::max_dead`] of them the API answers nobody (VPP-WIRE
//!   A.10).
//! - [`faults`]: dropped replies, delays, error retvals, closed sockets.
//! - `api_server`: the socket server.

mod api_server;
pub mod faults;
pub mod lb_model;
mod stats_link;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::messages::{MsgId, SOCKCLNT_CREATE_ID, SOCKCLNT_CREATE_REPLY_ID};
use crate::api::types::MessageTableEntry;
use faults::Faults;
pub use faults::{Fault, FaultAction};
pub use lb_model::{LbModel, ModelEvent};

/// Hook for the stats side: called after each request that added or
/// removed VIPs, outside the simulator's locks.
pub trait SimObserver: Send + Sync + 'static {
    /// A VIP got `pool_index`; its prefix's route counts in row
    /// `route_stats_index` of `/net/route/to`.
    fn vip_added(&self, pool_index: u32, route_stats_index: u32);
    /// The VIP at `pool_index` was deleted.
    fn vip_removed(&self, pool_index: u32);
    /// The ASes of the VIP at `pool_index` changed; `serving` says whether
    /// any live AS has a weight above 0.
    fn vip_serving(&self, pool_index: u32, serving: bool) {
        let _ = (pool_index, serving);
    }
}

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen.
    pub api_socket: PathBuf,
    /// The id of the first non-memclnt message in the table (memclnt ids
    /// are fixed as in VPP); [`Sim::restart`] moves it.
    pub id_base: u16,
    /// The pid reported by `control_ping_reply`.
    pub vpe_pid: u32,
    /// The version reported by `show_version`.
    pub version: String,
    /// Messages advertised differently, to test version checks: `None`
    /// leaves the message out of the table, `Some(crc)` lists it under
    /// another CRC.
    pub tamper: Vec<(MsgId, Option<u32>)>,
    /// A write of more reply bytes than this is "large": it is taken to
    /// fill the socket's send buffer, so VPP's `send()` hits `EAGAIN` and
    /// leaves that `errno` behind. Default 128 KiB: Linux gives a unix
    /// stream socket `net.core.wmem_default` (208 KiB) of send buffer,
    /// charged with per-packet overhead, so a reply this big usually
    /// blocks once unless the client reads it as fast as VPP writes; the
    /// real captures were a big `lb_as_v2_dump` and a 686 KB `show lb vips
    /// verbose`.
    pub large_reply: usize,
    /// How many dead registrations VPP survives: with this many the API
    /// stops answering (every later request, handshakes included, gets no
    /// reply) until [`Sim::restart`]. 16 is VPP's `epoll_wait`
    /// maxevents.
    pub max_dead: usize,
}

impl SimConfig {
    /// Defaults for a socket path.
    pub fn new(api_socket: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            api_socket: api_socket.into(),
            id_base: 89,
            vpe_pid: 16738,
            version: "26.10-rc0~374-gb575ec2c56d".to_owned(),
            tamper: Vec::new(),
            large_reply: 128 * 1024,
            max_dead: 16,
        }
    }
}

/// The API registrations of a simulator, as `show api clients` would
/// count them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimClients {
    /// Names of the registered connections still open, in registration
    /// order.
    pub live: Vec<String>,
    /// Connections that left with `sockclnt_delete`.
    pub deleted: u64,
    /// Connections that closed without it (reaped, as VPP does, unless
    /// they had a large reply).
    pub closed: u64,
    /// Names of the connections that closed without `sockclnt_delete`
    /// after a large reply: VPP never reaps them (its read handler takes
    /// the EOF for "no data yet" while the stale `errno` is `EAGAIN`).
    pub dead: Vec<String>,
}

impl SimClients {
    /// Whether so many dead registrations pile up that the API answers
    /// nobody.
    pub fn wedged(&self, max_dead: usize) -> bool {
        self.dead.len() >= max_dead
    }
}

/// The message table of one simulator run.
#[derive(Debug)]
pub(crate) struct SimTable {
    ids: Vec<(MsgId, u16)>,
    tamper: Vec<(MsgId, Option<u32>)>,
    pub(crate) vpe_pid: u32,
    pub(crate) version: String,
    pub(crate) large_reply: usize,
    pub(crate) max_dead: usize,
}

impl SimTable {
    fn new(config: &SimConfig) -> SimTable {
        let mut next = config.id_base;
        let ids = MsgId::ALL
            .iter()
            .map(|&m| {
                let id = match m {
                    MsgId::SockclntCreate => SOCKCLNT_CREATE_ID,
                    MsgId::SockclntCreateReply => SOCKCLNT_CREATE_REPLY_ID,
                    MsgId::SockclntDelete => 17,
                    MsgId::SockclntDeleteReply => 18,
                    MsgId::MemclntKeepalive => 21,
                    MsgId::MemclntKeepaliveReply => 22,
                    MsgId::ControlPing => 23,
                    MsgId::ControlPingReply => 24,
                    _ => {
                        next += 1;
                        next - 1
                    }
                };
                (m, id)
            })
            .collect();
        SimTable {
            ids,
            tamper: config.tamper.clone(),
            vpe_pid: config.vpe_pid,
            version: config.version.clone(),
            large_reply: config.large_reply,
            max_dead: config.max_dead,
        }
    }

    pub(crate) fn id(&self, m: MsgId) -> u16 {
        self.ids
            .iter()
            .find(|(k, _)| *k == m)
            .map_or(0, |(_, id)| *id)
    }

    pub(crate) fn message(&self, id: u16) -> Option<MsgId> {
        self.ids.iter().find(|(_, i)| *i == id).map(|(m, _)| *m)
    }

    pub(crate) fn entries(&self) -> Vec<MessageTableEntry> {
        self.ids
            .iter()
            .filter_map(|&(m, index)| {
                let name = match self.tamper.iter().find(|(t, _)| *t == m) {
                    None => m.key(),
                    Some((_, None)) => return None,
                    Some((_, Some(crc))) => format!("{}_{crc:08x}", m.name()),
                };
                Some(MessageTableEntry { index, name })
            })
            .collect()
    }
}

/// What the server tasks share with the handle.
pub(crate) struct SimShared {
    model: Mutex<LbModel>,
    faults: Mutex<Faults>,
    observer: Mutex<Option<Arc<dyn SimObserver>>>,
    pub(crate) next_client: AtomicU32,
    pub(crate) requests: AtomicU64,
    pub(crate) clients: tokio::sync::watch::Sender<SimClients>,
    epoch: tokio::time::Instant,
}

impl std::fmt::Debug for SimShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimShared").finish_non_exhaustive()
    }
}

impl SimShared {
    pub(crate) fn lock_model(&self) -> MutexGuard<'_, LbModel> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Model seconds since the simulator started.
    pub(crate) fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    pub(crate) fn notify(&self, events: &[ModelEvent]) {
        if events.is_empty() {
            return;
        }
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(o) = observer else { return };
        for e in events {
            match *e {
                ModelEvent::VipAdded {
                    pool_index,
                    route_stats_index,
                } => o.vip_added(pool_index, route_stats_index),
                ModelEvent::VipRemoved { pool_index } => o.vip_removed(pool_index),
                ModelEvent::VipServing {
                    pool_index,
                    serving,
                } => o.vip_serving(pool_index, serving),
            }
        }
    }
}

/// A cloneable handle on a simulator's LB state ([`Sim::model`]).
#[derive(Clone)]
pub struct SimModel {
    shared: Arc<SimShared>,
}

impl std::fmt::Debug for SimModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimModel").finish_non_exhaustive()
    }
}

impl SimModel {
    /// Reads or changes the LB state, as [`Sim::with_model`] does.
    pub fn with_model<R>(&self, f: impl FnOnce(&mut LbModel) -> R) -> R {
        let (r, events) = {
            let mut m = self.shared.lock_model();
            let r = f(&mut m);
            (r, m.take_events())
        };
        self.shared.notify(&events);
        r
    }
}

/// A running (or stopped) simulator.
#[derive(Debug)]
pub struct Sim {
    config: SimConfig,
    shared: Arc<SimShared>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Sim {
    /// Starts listening on `config.api_socket` (a stale socket file is
    /// replaced).
    pub async fn start(config: SimConfig) -> std::io::Result<Sim> {
        let mut sim = Sim {
            config,
            shared: Arc::new(SimShared {
                model: Mutex::new(LbModel::new()),
                faults: Mutex::new(Faults::default()),
                observer: Mutex::new(None),
                next_client: AtomicU32::new(1),
                requests: AtomicU64::new(0),
                clients: tokio::sync::watch::Sender::new(SimClients::default()),
                epoch: tokio::time::Instant::now(),
            }),
            running: None,
        };
        sim.resume().await?;
        Ok(sim)
    }

    /// The API socket path.
    pub fn api_socket(&self) -> &Path {
        &self.config.api_socket
    }

    /// The current config (ids, pid, version).
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Stops listening, closes every connection (clients see EOF) and
    /// removes the socket. The LB state is kept.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.config.api_socket);
    }

    /// Listens again after [`Sim::stop`], with the same state and ids.
    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let _ = std::fs::remove_file(&self.config.api_socket);
        let listener = UnixListener::bind(&self.config.api_socket)?;
        let stop = CancellationToken::new();
        let table = Arc::new(SimTable::new(&self.config));
        let task = tokio::spawn(api_server::serve(
            listener,
            self.shared.clone(),
            table,
            stop.clone(),
        ));
        self.running = Some((stop, task));
        Ok(())
    }

    /// A VPP restart: connections close, the LB state and every
    /// registration (dead ones included) are lost, the pid changes and so
    /// do the message ids of every non-memclnt message.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        self.shared
            .clients
            .send_modify(|c| *c = SimClients::default());
        *self.shared.lock_model() = LbModel::new();
        self.shared.lock_faults().clear();
        self.config.vpe_pid += 1;
        self.config.id_base = if self.config.id_base > 1000 {
            89
        } else {
            self.config.id_base + 311
        };
        self.resume().await
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock_faults().push(fault);
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.shared.lock_faults().clear();
    }

    /// How many injected faults are still waiting for a request to hit
    /// (each counts its remaining uses).
    pub fn pending_faults(&self) -> usize {
        self.shared.lock_faults().pending()
    }

    /// Sets the hook told about VIP pool and route stats indexes.
    pub fn set_observer(&self, observer: Arc<dyn SimObserver>) {
        *self
            .shared
            .observer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }

    /// Replaces the stats hook with `observer` and tells it about every
    /// live VIP (its pool index, its route's stats index, whether it
    /// serves), as a new stats segment would list them: for a test that
    /// swaps the segment while the LB state stays.
    pub fn replace_observer(&self, observer: Arc<dyn SimObserver>) {
        let live: Vec<(u32, u32, bool)> = self.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used)
                .filter_map(|(i, v)| {
                    let prefix = crate::api::types::Prefix {
                        address: v.key.address,
                        len: v.key.prefix_len,
                    };
                    let serving = v.ases.iter().flatten().any(|a| a.used && a.weight > 0);
                    Some((i, m.route_stats_index(prefix)?, serving))
                })
                .collect()
        });
        self.set_observer(observer.clone());
        for (pool_index, route, serving) in live {
            observer.vip_added(pool_index, route);
            observer.vip_serving(pool_index, serving);
        }
    }

    /// Reads or changes the LB state directly (e.g. to set counters, or to
    /// set up VIPs someone else created).
    pub fn with_model<R>(&self, f: impl FnOnce(&mut LbModel) -> R) -> R {
        self.model().with_model(f)
    }

    /// A handle on the LB state that outlives borrows of the simulator
    /// (for tasks that read the tables while it runs, as a dataplane does).
    pub fn model(&self) -> SimModel {
        SimModel {
            shared: self.shared.clone(),
        }
    }

    /// Runs garbage collection now, ignoring its delays.
    pub fn gc_now(&self) {
        let now = self.shared.now();
        self.shared.lock_model().gc(now, true);
    }

    /// The API registrations now.
    pub fn clients(&self) -> SimClients {
        self.shared.clients.borrow().clone()
    }

    /// Waits until the registrations satisfy `pred` (an explicit signal
    /// for tests: a goodbye is sent on the client's own task), and returns
    /// them.
    pub async fn clients_until(&self, mut pred: impl FnMut(&SimClients) -> bool) -> SimClients {
        let mut rx = self.shared.clients.subscribe();
        let c = rx.wait_for(|c| pred(c)).await;
        match c {
            Ok(c) => c.clone(),
            // The sender lives in `self`: it cannot be gone.
            Err(_) => self.clients(),
        }
    }

    /// Requests handled so far (handshakes excluded).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            stop.cancel();
        }
        let _ = std::fs::remove_file(&self.config.api_socket);
    }
}
