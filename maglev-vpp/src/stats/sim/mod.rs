//! The VPP simulator's stats segment (feature `sim`).
//!
//! [`SimStats`] is a cheaply cloneable, thread-safe handle on a segment in
//! VPP's exact layout (a memfd, see [`SegmentWriter`]) holding what a VPP
//! with the `lb` plugin shows: `/sys/heartbeat`, `/sys/boottime`,
//! `/net/route/to`, interface names and counters with a symlink, and, from
//! the first VIP on, the four LB counters. [`serve`] hands the memfd to
//! anyone connecting to a `stats.sock` (exactly as VPP does, so `vpp_papi`
//! and [`StatSegment::connect`](crate::stats::StatSegment::connect) both
//! read it) and keeps a trickle of packets flowing to every VIP that has
//! ASes.
//!
//! # Wiring it into the API simulator
//!
//! The API simulator owns VIP pool indexes and route stats indexes and
//! tells the stats side about them, so both views agree:
//!
//! | API simulator event | call |
//! | --- | --- |
//! | `lb_add_del_vip` add, VIP gets pool index `p`; its prefix has no FIB entry yet | `let si = stats.alloc_route_index(); stats.add_vip(p, si)?` |
//! | … a per-port VIP on a prefix that already has one (stats index `si`) | `stats.add_vip(p, si)?` |
//! | `ip_route_lookup` (exact) on a VIP prefix | reply `stats_index = si` (also [`SimStats::route_of`]`(p)`) |
//! | an AS added / removed (VIP has `n` usable ASes) | `stats.set_active(p, n > 0)` |
//! | `lb_add_del_vip` delete | `stats.remove_vip(p)` (drops the route when no VIP shares it) |
//! | a test "sends traffic" to a VIP | `stats.send(p, thread, packets, bytes)?` |
//!
//! Pool index 0 is VPP's placeholder: use pool indexes from 1, as VPP does.
//!
//! # Serving it next to the API socket
//!
//! ```no_run
//! # async fn demo() -> Result<(), maglev_vpp::stats::StatsError> {
//! use maglev_vpp::stats::sim::{self, SimStats};
//!
//! let stats = SimStats::new(2)?; // 2 workers: threads 0 (main), 1, 2
//! // give `stats.clone()` to the API simulator, then:
//! let shutdown = async { tokio::signal::ctrl_c().await.ok(); };
//! sim::serve("/run/vpp/stats.sock", stats, shutdown).await?;
//! # Ok(()) }
//! ```

mod server;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

pub use server::{ServeOptions, StatsListener, run, serve, serve_stats};
pub use writer::{SIM_BASE, SegmentWriter};

use super::error::{Result, StatsError};
use super::segment::StatSegment;
use super::types::{EntryKind, LbCounter, ROUTE_TO};

/// Default segment size: 64 MiB (VPP's default is 32 MiB; the simulator
/// wastes some to power-of-two blocks).
pub const DEFAULT_SIZE: usize = 64 << 20;

/// First route stats index [`SimStats::alloc_route_index`] hands out: VPP
/// already has a few load-balance objects (default routes, drops ...) before
/// the first VIP.
pub const FIRST_ROUTE_INDEX: u32 = 8;

/// Bytes per packet of the trickle.
const TRICKLE_PACKET_BYTES: u64 = 64;

#[derive(Debug, Clone)]
struct Vip {
    route: u32,
    active: bool,
    /// The trickle flow's first packet has been counted.
    flowing: bool,
}

#[derive(Debug)]
struct Inner {
    w: SegmentWriter,
    threads: usize,
    heartbeat: u32,
    route_to: u32,
    /// Directory indexes of the four LB counters once the first VIP exists.
    lb: Option<[u32; 4]>,
    vips: BTreeMap<u32, Vip>,
    /// Route stats indexes in use (by a VIP) or reserved.
    routes: BTreeSet<u32>,
    next_thread: usize,
}

/// A simulated VPP stats segment (see the module doc). Clones share it.
#[derive(Debug, Clone)]
pub struct SimStats {
    inner: Arc<Mutex<Inner>>,
}

impl SimStats {
    /// A segment of [`DEFAULT_SIZE`] for VPP with `workers` worker threads
    /// (counters then have `workers + 1` rows: main thread first).
    pub fn new(workers: usize) -> Result<Self> {
        Self::with_size(workers, DEFAULT_SIZE)
    }

    /// Same with an explicit segment size in bytes.
    pub fn with_size(workers: usize, size: usize) -> Result<Self> {
        let threads = workers + 1;
        let mut w = SegmentWriter::new(size)?;
        // The fixed entries VPP registers first, in its order.
        let heartbeat = w.add_scalar("/sys/heartbeat", 1)?;
        w.add_scalar("/sys/last_stats_clear", 0)?;
        w.add_scalar("/sys/boottime", 1_700_000_000)?;
        w.add_gauge("/sys/vector_rate", 0)?;
        w.add_scalar("/sys/num_worker_threads", workers as u64)?;
        let route_to = w.add_counters(
            ROUTE_TO,
            EntryKind::Combined,
            threads,
            FIRST_ROUTE_INDEX as usize,
        )?;
        w.add_counters(
            "/net/route/via",
            EntryKind::Combined,
            threads,
            FIRST_ROUTE_INDEX as usize,
        )?;
        w.add_names("/if/names", &[Some("local0")])?;
        let rx = w.add_counters("/if/rx", EntryKind::Combined, threads, 1)?;
        let drops = w.add_counters("/if/drops", EntryKind::Simple, threads, 1)?;
        w.add_symlink("/interfaces/local0/rx", rx, 0)?;
        w.add_symlink("/interfaces/local0/drops", drops, 0)?;
        Ok(SimStats {
            inner: Arc::new(Mutex::new(Inner {
                w,
                threads,
                heartbeat,
                route_to,
                lb: None,
                vips: BTreeMap::new(),
                routes: BTreeSet::new(),
                next_thread: 0,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent writer (every
        // structural change ends its epoch even on error), so go on.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Threads of every counter: main + workers.
    pub fn threads(&self) -> usize {
        self.lock().threads
    }

    /// A duplicate of the segment's memfd (what `stats.sock` hands out).
    pub fn fd(&self) -> Result<std::os::fd::OwnedFd> {
        self.lock()
            .w
            .fd()
            .try_clone()
            .map_err(|source| StatsError::Io {
                what: "dup memfd".into(),
                source,
            })
    }

    /// Maps the segment read-only, as a client would after connecting.
    pub fn reader(&self) -> Result<StatSegment> {
        StatSegment::from_fd(self.fd()?)
    }

    /// Runs `f` on the raw writer (for tests that need arbitrary entries).
    pub fn with_writer<T>(&self, f: impl FnOnce(&mut SegmentWriter) -> T) -> T {
        f(&mut self.lock().w)
    }

    /// A route stats index nobody uses, reserved until
    /// [`remove_route`](Self::remove_route) (lowest first, from
    /// [`FIRST_ROUTE_INDEX`]).
    pub fn alloc_route_index(&self) -> u32 {
        let mut g = self.lock();
        let idx = (FIRST_ROUTE_INDEX..)
            .find(|i| !g.routes.contains(i))
            .unwrap_or(u32::MAX);
        g.routes.insert(idx);
        idx
    }

    /// Registers route `stats_index` in `/net/route/to` (grown to cover it)
    /// with zeroed counters, as VPP does when it allocates a load-balance.
    pub fn set_route(&self, stats_index: u32) -> Result<()> {
        let mut g = self.lock();
        let g = &mut *g;
        g.routes.insert(stats_index);
        let (w, route_to, threads) = (&mut g.w, g.route_to, g.threads);
        w.change(|w| {
            w.validate(route_to, stats_index as usize)?;
            for t in 0..threads {
                w.set(route_to, t, stats_index as usize, 0, 0)?;
            }
            Ok(())
        })
    }

    /// Releases route `stats_index` (its counters stay until reused).
    pub fn remove_route(&self, stats_index: u32) {
        self.lock().routes.remove(&stats_index);
    }

    /// The route stats index of VIP `pool_index`.
    pub fn route_of(&self, pool_index: u32) -> Option<u32> {
        self.lock().vips.get(&pool_index).map(|v| v.route)
    }

    /// A VIP was added with pool index `pool_index`, its prefix counted in
    /// route `route_stats_index`. Registers the LB counters on the first
    /// VIP, grows them to `pool_index + 1` and zeroes the VIP's cells; sets
    /// up the route (zeroed) unless another VIP already uses it.
    pub fn add_vip(&self, pool_index: u32, route_stats_index: u32) -> Result<()> {
        let shared = self
            .lock()
            .vips
            .values()
            .any(|v| v.route == route_stats_index);
        if !shared {
            self.set_route(route_stats_index)?;
        }
        let mut g = self.lock();
        let g = &mut *g;
        let threads = g.threads;
        let col = pool_index as usize;
        let lb = match g.lb {
            Some(lb) => lb,
            None => {
                let mut lb = [0u32; 4];
                for (slot, c) in lb.iter_mut().zip(LbCounter::ALL) {
                    *slot =
                        g.w.add_counters(c.name(), EntryKind::Simple, threads, col + 1)?;
                }
                g.lb = Some(lb);
                lb
            }
        };
        g.w.change(|w| {
            for idx in lb {
                w.validate(idx, col)?;
                for t in 0..threads {
                    w.set(idx, t, col, 0, 0)?;
                }
            }
            Ok(())
        })?;
        g.routes.insert(route_stats_index);
        g.vips.insert(
            pool_index,
            Vip {
                route: route_stats_index,
                active: false,
                flowing: false,
            },
        );
        Ok(())
    }

    /// A VIP was deleted: forget it (its counters stay until the index is
    /// reused) and release its route unless another VIP shares it.
    pub fn remove_vip(&self, pool_index: u32) {
        let mut g = self.lock();
        if let Some(v) = g.vips.remove(&pool_index)
            && !g.vips.values().any(|o| o.route == v.route)
        {
            g.routes.remove(&v.route);
        }
    }

    /// Whether VIP `pool_index` has usable ASes (only those get the
    /// trickle).
    pub fn set_active(&self, pool_index: u32, active: bool) {
        if let Some(v) = self.lock().vips.get_mut(&pool_index) {
            v.active = active;
            if !active {
                v.flowing = false;
            }
        }
    }

    /// Adds `n` to LB counter `kind` of VIP `pool_index` on `thread`.
    pub fn count_lb(&self, kind: LbCounter, thread: usize, pool_index: u32, n: u64) -> Result<()> {
        let mut g = self.lock();
        let g = &mut *g;
        let Some(lb) = g.lb else {
            return Err(StatsError::NotFound {
                name: kind.name().to_owned(),
            });
        };
        check_thread(thread, g.threads)?;
        g.w.add(lb[kind as usize], thread, pool_index as usize, n, 0)
    }

    /// Adds `packets`/`bytes` to route `stats_index` on `thread`.
    pub fn count_route(
        &self,
        stats_index: u32,
        thread: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<()> {
        let mut g = self.lock();
        let g = &mut *g;
        check_thread(thread, g.threads)?;
        g.w.add(g.route_to, thread, stats_index as usize, packets, bytes)
    }

    /// "Sends" one new flow of `packets` packets (`bytes` in all) to VIP
    /// `pool_index` on `thread`, as VPP would count it: the VIP's route
    /// counts every packet; with ASes the first packet is a `first session
    /// packet` and the rest `packet from existing sessions`; without, all
    /// are `no server configured`.
    pub fn send(&self, pool_index: u32, thread: usize, packets: u64, bytes: u64) -> Result<()> {
        let vip = self.lock().vips.get(&pool_index).cloned();
        let Some(vip) = vip else {
            return Err(StatsError::NoSuchEntry {
                index: pool_index,
                expected: "VIP",
            });
        };
        self.count_route(vip.route, thread, packets, bytes)?;
        if packets == 0 {
            return Ok(());
        }
        if vip.active {
            self.count_lb(LbCounter::FirstPacket, thread, pool_index, 1)?;
            self.count_lb(LbCounter::NextPacket, thread, pool_index, packets - 1)
        } else {
            self.count_lb(LbCounter::NoServer, thread, pool_index, packets)
        }
    }

    /// One tick of the trickle: every VIP with ASes gets one 64-byte packet
    /// of its own long-lived flow (first tick: `first session packet`, then
    /// `packet from existing sessions`), on the workers in turn.
    pub fn trickle(&self) -> Result<()> {
        let mut g = self.lock();
        let g = &mut *g;
        let Some(lb) = g.lb else { return Ok(()) };
        let threads = g.threads;
        for (&pool, vip) in g.vips.iter_mut().filter(|(_, v)| v.active) {
            // Workers are threads 1..; with no workers the main thread works.
            let thread = if threads > 1 {
                1 + g.next_thread % (threads - 1)
            } else {
                0
            };
            g.next_thread = g.next_thread.wrapping_add(1);
            g.w.add(
                g.route_to,
                thread,
                vip.route as usize,
                1,
                TRICKLE_PACKET_BYTES,
            )?;
            let kind = if vip.flowing {
                LbCounter::NextPacket
            } else {
                LbCounter::FirstPacket
            };
            vip.flowing = true;
            g.w.add(lb[kind as usize], thread, pool as usize, 1, 0)?;
        }
        Ok(())
    }

    /// Bumps `/sys/heartbeat`, as VPP's stats collector does every run.
    pub fn beat(&self) -> Result<()> {
        let mut g = self.lock();
        let hb = g.heartbeat;
        let v = g.w.value(hb)?;
        g.w.set_value(hb, v.wrapping_add(1))
    }

    /// VIP pool indexes currently registered, in order.
    pub fn vips(&self) -> Vec<u32> {
        self.lock().vips.keys().copied().collect()
    }
}

fn check_thread(thread: usize, threads: usize) -> Result<()> {
    if thread < threads {
        Ok(())
    } else {
        Err(StatsError::ThreadOutOfRange { thread, threads })
    }
}
