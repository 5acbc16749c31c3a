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
//!   `/net/route/to` once per epoch and then reads only the watched cells.
//! - [`StatsClient`] (`client`): keeps a segment mapped and remaps it when
//!   VPP restarts (socket replaced or gone, heartbeat stalled, segment
//!   replaced).
//! - `sim` (feature `sim`): `sim::SimStats`, the writer used by the VPP
//!   simulator, and `sim::serve` to serve it on a `stats.sock`.
//!
//! # Reading
//!
//! ```no_run
//! use maglev_vpp::stats::{LbCounter, Scrape, StatSegment};
//!
//! let seg = StatSegment::connect("/run/vpp/stats.sock")?;
//! let hits = seg.simple(LbCounter::NextPacket.name())?;
//! println!("VIP 1: {} packets", hits.sum(1));
//!
//! // The daemon's loop: resolve once per epoch, then read only what it watches.
//! let mut scrape = Scrape::new([1, 2, 3], [8, 9, 10]);
//! let snap = scrape.run(&seg)?;
//! println!("{:?}", snap.vip(1));
//! # Ok::<(), maglev_vpp::stats::StatsError>(())
//! ```
//!
//! **Invariant:** nothing outside `raw` touches the mapping; every offset
//! `raw` reads was checked against the segment size first; nothing read in
//! an access window is trusted before the window's epoch check passes.

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

pub use client::{ClientEvent, StatsClient};
pub use error::{Result, StatsError};
pub use scrape::{LbCounters, Scrape, Snapshot};
pub use segment::{DEFAULT_MAX_ATTEMPTS, StatSegment};
pub use types::{Counter, DirEntry, EntryKind, LbCounter, PerThread, ROUTE_TO, StatValue};

impl StatSegment {
    /// Connects to VPP's `stats.sock` (default `/run/vpp/stats.sock`),
    /// receives the segment's memfd and maps it read-only.
    pub fn connect(socket: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::from_fd(socket::receive_segment_fd(socket.as_ref())?)
    }
}

/// Entry points for `cargo fuzz` (`fuzz/fuzz_targets/stats_segment.rs`) and
/// the tests that replay the same inputs. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{LbCounter, ROUTE_TO, Scrape, StatSegment};

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
        for c in LbCounter::ALL {
            let _ = seg.simple(c.name());
        }
        let _ = seg.combined(ROUTE_TO);
        let _ = seg.heartbeat();
        let mut scrape = Scrape::new([0, 1, 2, 3, 1000], [0, 8, 9, 10, u32::MAX]);
        let _ = scrape.run(&seg);
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
