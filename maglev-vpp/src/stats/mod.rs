//! VPP's statistics segment: a zero-copy reader, the cached LB scrape and
//! (feature `sim`) a simulator that writes a segment in the same layout.
//!
//! The byte layout is `VPP-WIRE.md` sections D and E: a 40-byte header
//! (version 2, VPP's base address, `epoch`, `in_progress`, directory
//! pointer), a directory vector of 144-byte entries, and VPP vectors
//! (length 8 bytes before the first element) of per-thread counter rows.
//!
//! # Module map
//!
//! - `raw`: the only `unsafe` of the crate: a bounds-checked raw view of
//!   the mapping (volatile/atomic copies, never a reference into it) and
//!   ownership of received descriptors.
//! - `layout`: offsets, sizes and type numbers.
//! - [`StatSegment`] (`segment`): open from `stats.sock`, a descriptor, a
//!   file or bytes; the optimistic access window; directory listing,
//!   exact-name lookup and typed reads.
//! - [`Scrape`] (`scrape`): the plan that resolves the four LB counters and
//!   `/net/route/to` once per epoch and then reads only the watched cells,
//!   by pool index and route stats index; [`VipScrape`] on top of it keys
//!   them by [`VipKey`](maglev_core::dataplane::VipKey) from the caller's
//!   LB snapshot (what the daemon uses: VPP reuses pool indexes).
//! - [`StatsClient`] (`client`): keeps a segment mapped and remaps it when
//!   VPP restarts (socket replaced or gone, heartbeat stalled, segment
//!   replaced).
//! - `sim` (feature `sim`): `sim::SimStats`, the writer used by the VPP
//!   simulator, and `sim::serve` to serve it on a `stats.sock`.
//!
//! # Vocabulary
//!
//! - [`LbCounter`]: one of the LB plugin's four per-VIP counters (VPP's
//!   `lb_vip_counter_t`: next packet, first packet, untracked, no server).
//! - [`LbCounters`]: the values of all four for one VIP, summed over
//!   threads.
//! - [`Counter`]: a combined counter cell, packets and bytes
//!   (`/net/route/to`).
//! - [`VipStats`]: everything one VIP has: its [`LbCounters`] and its
//!   prefix's route [`Counter`]; [`VipStatsIndex`] says where they live
//!   (pool index, route stats index).
//!
//! # Never `SIGBUS`: mapped or `pread`
//!
//! A file that shrinks under a mapping raises `SIGBUS` on the next access,
//! which would kill the daemon. VPP creates its stats memfd with
//! `MFD_ALLOW_SEALING` and seals it with `F_SEAL_SHRINK`
//! (`clib_mem_vm_create_fd`, `src/vppinfra/linux/mem.c`), and so does the
//! simulator, so such a segment is mapped: nobody can shrink it. A memfd
//! that allows sealing gets the seal from us before we map it. Anything
//! else could shrink: a regular file (a saved image, the fixtures), VPP's
//! hugepage segment (`MFD_HUGETLB` without `MFD_ALLOW_SEALING`, so its
//! seals are sealed), a descriptor we may not seal. Those are never
//! mapped: [`StatSegment`] reads them with `pread` through the same
//! bounds-checked accessors and the same epoch protocol, a `pread` that
//! comes back short is [`StatsError::Truncated`], and
//! [`StatSegment::access`] says which way a segment is read. `pread` costs
//! a system call per read (a scrape of many VIPs takes milliseconds, not
//! microseconds), which is acceptable for the rare unsealed segment and
//! far better than refusing it.
//!
//! # Never blocking a tokio worker
//!
//! [`StatSegment::connect_async`] and [`StatsClient::check`] receive the
//! descriptor on a non-blocking socket, bounded by a timeout on
//! `tokio::time`. A read of a busy segment (`in_progress` set, epoch
//! moving) retries at most [`DEFAULT_MAX_ATTEMPTS`] windows and at most
//! [`DEFAULT_BUSY_TIMEOUT`]; [`Scrape::run_async`] and
//! [`VipScrape::run_async`] try a few windows at a time and sleep on
//! `tokio::time` in between, until their budget. [`StatSegment::retries`]
//! counts the windows thrown away.
//!
//! # Reading
//!
//! ```no_run
//! use maglev_core::dataplane::{Protocol, VipKey};
//! use maglev_vpp::stats::{LbCounter, StatSegment, VipScrape, VipStatsIndex};
//!
//! let seg = StatSegment::connect("/run/vpp/stats.sock")?;
//! let hits = seg.simple(LbCounter::NextPacket.name())?;
//! println!("VIP 1: {} packets", hits.sum(1));
//!
//! // The daemon's loop: the mapping from the LB snapshot, resolved once per
//! // epoch (and again when the mapping changes); then only the watched cells.
//! let web = VipKey::host("192.0.2.1".parse().unwrap(), Some(Protocol::Tcp), 80);
//! let at = VipStatsIndex { pool_index: 1, route_stats_index: Some(8) };
//! let mut scrape = VipScrape::new([(web, at)]);
//! let snap = scrape.run(&seg)?;
//! println!("{:?}", snap.get(&web));
//! # Ok::<(), maglev_vpp::stats::StatsError>(())
//! ```
//!
//! **Invariant:** nothing outside `raw` touches the mapping; only a segment
//! that cannot shrink is mapped; every offset `raw` reads was checked
//! against the segment size first; nothing read in an access window is
//! trusted before the window's epoch check passes.

mod client;
mod error;
mod layout;
mod raw;
mod scrape;
mod segment;
mod socket;
mod types;

#[cfg(feature = "sim")]
pub mod sim;

pub use client::{ClientEvent, DEFAULT_CONNECT_TIMEOUT, StatsClient};
pub use error::{Result, StatsError};
pub use scrape::{LbCounters, Scrape, Snapshot, VipScrape, VipSnapshot, VipStats, VipStatsIndex};
pub use segment::{DEFAULT_BUSY_TIMEOUT, DEFAULT_MAX_ATTEMPTS, SegmentAccess, StatSegment};
pub use types::{
    Counter, CounterCell, DirEntry, EntryKind, LbCounter, PerThread, ROUTE_TO, StatValue,
};

impl StatSegment {
    /// Connects to VPP's `stats.sock` (default `/run/vpp/stats.sock`),
    /// receives the segment's memfd and maps it read-only.
    ///
    /// Blocks the thread until the descriptor arrives (at most one second,
    /// as `vpp_papi` waits); async code uses
    /// [`connect_async`](Self::connect_async).
    pub fn connect(socket: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::from_fd(socket::receive_segment_fd(socket.as_ref())?)
    }

    /// [`connect`](Self::connect) without blocking the thread: the socket
    /// is non-blocking and the wait for the descriptor is bounded by
    /// `timeout` on `tokio::time` (a server that accepts but never sends
    /// gives [`StatsError::Connect`] with `ETIMEDOUT`). Must be called
    /// inside a tokio runtime.
    pub async fn connect_async(
        socket: impl AsRef<std::path::Path>,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        Self::from_fd(socket::receive_segment_fd_async(socket.as_ref(), timeout).await?)
    }
}

/// Entry points for `cargo fuzz` (`fuzz/fuzz_targets/stats_segment.rs`) and
/// the tests that replay the same inputs. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use maglev_core::dataplane::VipKey;

    use super::{LbCounter, ROUTE_TO, Scrape, StatSegment, VipScrape, VipStatsIndex};

    /// Maps `data` as a segment and runs every read on it. Must never
    /// panic, hang or misbehave, whatever `data` is.
    pub fn segment(data: &[u8]) {
        let Ok(mut seg) = StatSegment::from_bytes(data) else {
            return;
        };
        // A static image never changes, so one attempt is enough and a
        // fuzzed `in_progress = 1` cannot make us spin.
        seg.set_max_attempts(1);
        let _ = seg.directory_len();
        if let Ok(list) = seg.list() {
            for e in list.iter().take(64) {
                let _ = seg.read_index(e.index);
            }
        }
        // Sums of whatever the cells hold (huge values wrap, never panic).
        for c in LbCounter::ALL {
            if let Ok(v) = seg.simple(c.name()) {
                for i in 0..4 {
                    let _ = v.sum(i);
                }
            }
        }
        if let Ok(v) = seg.combined(ROUTE_TO) {
            for i in 0..4 {
                let _ = v.sum(i);
            }
        }
        let _ = seg.names("/if/names");
        let _ = seg.read("/link");
        let _ = seg.heartbeat();
        let mut scrape = Scrape::new([0, 1, 2, 3, 1000], [0, 1, 2, 8, u32::MAX]);
        let _ = scrape.run(&seg);
        let _ = scrape.run(&seg);
        let key = |port| VipKey::host([192, 0, 2, 1].into(), None, port);
        let index = |pool_index, route_stats_index| VipStatsIndex {
            pool_index,
            route_stats_index,
        };
        let mut vips = VipScrape::new([
            (key(0), index(1, Some(1))),
            (key(1), index(1, Some(u32::MAX))),
            (key(2), index(u32::MAX, None)),
        ]);
        let _ = vips.run(&seg);
    }

    /// Patches a valid segment ([`seed`]) with `data` read as records of
    /// a little-endian `u16` word index and a `u64` value, then runs
    /// [`segment`] on it: the fuzzer reaches deep paths far sooner than
    /// from raw bytes.
    pub fn segment_patched(data: &[u8]) {
        let mut img = seed();
        let words = img.len() / 8;
        for rec in data.chunks_exact(10) {
            let w = usize::from(u16::from_le_bytes([rec[0], rec[1]])) % words;
            let mut v = [0u8; 8];
            v.copy_from_slice(&rec[2..10]);
            img[8 * w..8 * w + 8].copy_from_slice(&v);
        }
        segment(&img);
    }

    /// A small valid segment (current layout, two threads): scalar
    /// `/sys/heartbeat`, the LB counter `first session packet` (simple),
    /// `/net/route/to` (combined), `/if/names` (name vector), `/link`
    /// (symlink to route column 1) and one `EMPTY` entry.
    pub fn seed() -> Vec<u8> {
        const BASE: u64 = 0x7f00_0000_0000;
        fn put(m: &mut [u8], at: usize, v: u64) {
            m[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        }
        fn put32(m: &mut [u8], at: usize, v: u32) {
            m[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let mut img = vec![0u8; 8192];
        let m = &mut img[..];
        // Vectors: (data offset, len); the u32 len sits 8 bytes before.
        let (dir, threads_a, row_a0, row_a1, threads_b, row_b0, row_b1, names, s0) =
            (4160, 5184, 5248, 5312, 5376, 5440, 5504, 5632, 5696);
        put(m, 0, 2);
        put(m, 8, BASE);
        put(m, 16, 1);
        put(m, 32, BASE + dir as u64);
        let lens = [
            (dir, 6u32),
            (threads_a, 2),
            (row_a0, 3),
            (row_a1, 3),
            (threads_b, 2),
            (row_b0, 2),
            (row_b1, 2),
            (names, 2),
            (s0, 7),
        ];
        for (at, len) in lens {
            put32(m, at - 8, len);
        }
        let entries: [(u32, u64, &str); 6] = [
            (1, 5, "/sys/heartbeat"),
            (2, BASE + threads_a as u64, "first session packet"),
            (3, BASE + threads_b as u64, ROUTE_TO),
            (4, BASE + names as u64, "/if/names"),
            (6, 0, "/link"),
            (5, u64::from(u32::MAX), ""),
        ];
        for (i, (ty, value, name)) in entries.into_iter().enumerate() {
            let e = dir + 144 * i;
            put32(m, e, ty);
            put(m, e + 8, value);
            m[e + 16..e + 16 + name.len()].copy_from_slice(name.as_bytes());
        }
        put(m, threads_a, BASE + row_a0 as u64);
        put(m, threads_a + 8, BASE + row_a1 as u64);
        put(m, threads_b, BASE + row_b0 as u64);
        put(m, threads_b + 8, BASE + row_b1 as u64);
        put(m, row_a1 + 8, 9);
        put(m, row_b1 + 16, 4);
        put(m, row_b1 + 24, 400);
        put(m, names, BASE + s0 as u64);
        m[s0..s0 + 6].copy_from_slice(b"local0");
        // The symlink: entry 2 (`/net/route/to`), column 1.
        put32(m, dir + 144 * 4 + 8, 2);
        put32(m, dir + 144 * 4 + 12, 1);
        img
    }
}

/// Support for `benches/benches/stats_scrape.rs`: the floor a scrape is
/// compared with. Not a stable API.
#[doc(hidden)]
pub mod bench_support {
    use super::segment::StatSegment;
    use super::types::{LbCounter, ROUTE_TO};
    use super::{Result, StatsError};

    /// The segment offsets of the cells a [`Scrape`](super::Scrape) of the
    /// same VIPs and routes reads, resolved once.
    #[derive(Debug, Clone)]
    pub struct PlainCopy {
        offsets: Vec<usize>,
    }

    impl PlainCopy {
        /// Resolves the cells of `vips` in the four LB counters and of
        /// `routes` (packets and bytes) in `/net/route/to`, every thread.
        pub fn new(seg: &StatSegment, vips: &[u32], routes: &[u32]) -> Result<Self> {
            seg.with_window(|w| {
                let mut offsets = Vec::new();
                let lb = LbCounter::ALL.map(|c| (c.name(), 8usize, vips, 1usize));
                for (name, elem, cols, words) in lb.into_iter().chain([(ROUTE_TO, 16, routes, 2)]) {
                    let i = w
                        .find(name.as_bytes())?
                        .ok_or_else(|| StatsError::NotFound {
                            name: name.to_owned(),
                        })?;
                    for row in w.rows(name, w.raw_value(i)?, elem)? {
                        for &c in cols {
                            if (c as usize) < row.len {
                                for k in 0..words {
                                    offsets.push(row.offset + c as usize * elem + 8 * k);
                                }
                            }
                        }
                    }
                }
                Ok(PlainCopy { offsets })
            })
        }

        /// Number of `u64` cells.
        pub fn cells(&self) -> usize {
            self.offsets.len()
        }

        /// Copies every cell into `out` with the reader's volatile loads:
        /// no access window, no plan, no summing.
        pub fn copy(&self, seg: &StatSegment, out: &mut [u64]) {
            let region = seg.region();
            for (slot, &off) in out.iter_mut().zip(&self.offsets) {
                *slot = region.u64(off).unwrap_or(0);
            }
        }
    }
}
