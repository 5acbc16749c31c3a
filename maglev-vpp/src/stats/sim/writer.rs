//! [`SegmentWriter`]: writes a stats segment in VPP's layout into a memfd.
//!
//! Layout as VPP makes it (VPP-WIRE D.2–D.5): the 40-byte header at 0, a
//! heap from 4096 holding the directory vector (144-byte entries), per-entry
//! thread vectors of row pointers, counter rows (64-byte aligned, as VPP
//! allocates them) and name strings, each a VPP vector with its 8-byte
//! header (`u32 len`, `hdr_size`, `log2_align`) right before element 0.
//! Pointers are written as `base + offset` with a made-up `base`, as if VPP
//! had mapped the segment there, so readers must translate.
//!
//! Structural changes (new or removed entries, any change of a vector's
//! length or place) run inside `in_progress = 1 … epoch += 1,
//! in_progress = 0`; counter values are stored in place without touching
//! the epoch, as VPP's workers do.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use crate::stats::error::{Result, StatsError};
use crate::stats::layout::{self as l, ty};
use crate::stats::raw::Region;
use crate::stats::types::EntryKind;

/// The address the simulated VPP "mapped" the segment at.
pub const SIM_BASE: u64 = 0x7e57_0000_0000;

/// Bytes reserved in front of every vector's data (its 8-byte header at
/// the end): keeps data 64-byte (cache line) aligned.
const BLOCK_HEAD: usize = 64;

/// An allocation in the heap: `size` bytes from `start`, data at
/// `start + 64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    start: usize,
    size: usize,
}

impl Block {
    fn data(self) -> usize {
        self.start + BLOCK_HEAD
    }
    fn cap(self, elem: usize) -> usize {
        (self.size - BLOCK_HEAD) / elem
    }
}

/// Power-of-two size classes with free lists; never returns memory.
#[derive(Debug)]
struct Heap {
    top: usize,
    end: usize,
    free: HashMap<usize, Vec<usize>>,
}

impl Heap {
    /// A block with room for `bytes` of data; `true` if it was used before
    /// (and so must be zeroed).
    fn alloc(&mut self, bytes: usize) -> Result<(Block, bool)> {
        let size = bytes
            .checked_add(BLOCK_HEAD)
            .and_then(usize::checked_next_power_of_two)
            .ok_or(StatsError::SegmentFull {
                needed: bytes,
                size: self.end,
            })?
            .max(128);
        if let Some(start) = self.free.get_mut(&size).and_then(Vec::pop) {
            return Ok((Block { start, size }, true));
        }
        if self.end - self.top < size {
            return Err(StatsError::SegmentFull {
                needed: size,
                size: self.end,
            });
        }
        let start = self.top;
        self.top += size;
        Ok((Block { start, size }, false))
    }

    fn free(&mut self, b: Block) {
        self.free.entry(b.size).or_default().push(b.start);
    }
}

/// What the writer remembers about each directory slot.
#[derive(Debug, Clone)]
enum Slot {
    Empty,
    Value,
    Counters {
        elem: usize,
        threads: Block,
        rows: Vec<Block>,
        len: usize,
    },
    Names {
        vec: Block,
        strings: Vec<Option<Block>>,
    },
    Symlink,
}

/// Writes a VPP-layout stats segment into a memfd (see the module doc).
///
/// Not thread-safe by itself (one writer, like VPP's stats lock); readers
/// in other threads or processes map the same memfd and read concurrently.
#[derive(Debug)]
pub struct SegmentWriter {
    region: Region,
    fd: OwnedFd,
    heap: Heap,
    dir: Block,
    dir_len: usize,
    slots: Vec<Slot>,
    by_name: HashMap<String, u32>,
    free_slots: Vec<u32>,
    depth: u32,
    epoch: u64,
}

fn io(what: &str) -> impl FnOnce(nix::Error) -> StatsError + '_ {
    move |e| StatsError::Io {
        what: what.to_owned(),
        source: e.into(),
    }
}

impl SegmentWriter {
    /// A fresh segment of `size` bytes (at least 64 KiB) holding an empty
    /// directory, epoch 1, in a memfd made as VPP makes its own
    /// (`clib_mem_vm_create_fd` in `src/vppinfra/linux/mem.c`, called from
    /// `src/vlib/stats/init.c`): `memfd_create("stat segment",
    /// MFD_ALLOW_SEALING | MFD_CLOEXEC)`, then `F_ADD_SEALS F_SEAL_SHRINK`,
    /// then `ftruncate` to the size (growing is still allowed). Nobody can
    /// shrink it under a reader's mapping, which is what lets readers map it.
    pub fn new(size: usize) -> Result<Self> {
        Self::create(size, true)
    }

    /// The same segment in a memfd without seals that cannot be sealed,
    /// as VPP makes it for a hugepage stats segment (`statseg { page-size
    /// 2M }`: `MFD_HUGETLB` without `MFD_ALLOW_SEALING`, so the memfd starts
    /// with `F_SEAL_SEAL`). Anyone holding the descriptor can truncate it:
    /// readers must not map it (for tests of that case).
    pub fn new_unsealed(size: usize) -> Result<Self> {
        Self::create(size, false)
    }

    fn create(size: usize, seal: bool) -> Result<Self> {
        use nix::fcntl::{FcntlArg, SealFlag, fcntl};
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let size = size.max(64 * 1024).next_multiple_of(4096);
        let flags = if seal {
            MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC
        } else {
            MFdFlags::MFD_CLOEXEC
        };
        let fd = memfd_create(c"stat segment", flags).map_err(io("memfd_create"))?;
        if seal {
            fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK))
                .map_err(io("fcntl(F_ADD_SEALS, F_SEAL_SHRINK)"))?;
        }
        nix::unistd::ftruncate(&fd, size as i64).map_err(io("ftruncate"))?;
        let map = memmap2::MmapOptions::new()
            .len(size)
            .map_raw(&fd)
            .map_err(|source| StatsError::Io {
                what: "mmap".into(),
                source,
            })?;
        let region = Region::from_map(map, true);
        let mut w = SegmentWriter {
            region,
            fd,
            heap: Heap {
                top: l::HEAP_START,
                end: size,
                free: HashMap::new(),
            },
            dir: Block { start: 0, size: 0 },
            dir_len: 0,
            slots: Vec::new(),
            by_name: HashMap::new(),
            free_slots: Vec::new(),
            depth: 0,
            epoch: 1,
        };
        w.dir = w.new_vec(0, l::ENTRY_SIZE, 64)?;
        w.store(l::HDR_VERSION, l::SEGMENT_VERSION)?;
        w.store(l::HDR_BASE, SIM_BASE)?;
        w.store(l::HDR_EPOCH, 1)?;
        w.store(l::HDR_IN_PROGRESS, 0)?;
        w.store(l::HDR_DIRECTORY, SIM_BASE + w.dir.data() as u64)?;
        Ok(w)
    }

    /// The memfd (to pass to readers, or to map with
    /// [`StatSegment::from_fd`](crate::stats::StatSegment::from_fd) after
    /// `try_clone`).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Size of the segment in bytes.
    pub fn size(&self) -> usize {
        self.region.len()
    }

    /// The epoch as last published.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of directory slots (live and empty).
    pub fn directory_len(&self) -> usize {
        self.dir_len
    }

    /// Directory index of the live entry called `name`.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    fn store(&self, off: usize, v: u64) -> Result<()> {
        self.region
            .set_u64(off, v)
            .map_err(|_| StatsError::SegmentFull {
                needed: off + 8,
                size: self.size(),
            })
    }

    fn store32(&self, off: usize, v: u32) -> Result<()> {
        self.region
            .set_u32(off, v)
            .map_err(|_| StatsError::SegmentFull {
                needed: off + 4,
                size: self.size(),
            })
    }

    fn load(&self, off: usize) -> u64 {
        self.region.u64(off).unwrap_or(0)
    }

    /// Runs `f` as one structural change: `in_progress = 1`, `f`, then
    /// `epoch += 1` and `in_progress = 0` (release). Nested calls make one
    /// change.
    pub fn change<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth == 0 {
            self.region
                .set_u64_release(l::HDR_IN_PROGRESS, 1)
                .map_err(|_| StatsError::TooSmall { size: 0 })?;
            Region::fence_seqcst();
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        if self.depth == 0 {
            self.epoch += 1;
            let _ = self.region.set_u64_release(l::HDR_EPOCH, self.epoch);
            let _ = self.region.set_u64_release(l::HDR_IN_PROGRESS, 0);
        }
        r
    }

    /// Bumps the epoch without changing anything (readers re-resolve).
    pub fn bump_epoch(&mut self) -> Result<()> {
        self.change(|_| Ok(()))
    }

    /// Allocates a zeroed vector of `len` elements of `elem` bytes with
    /// room for `cap` elements at least.
    fn new_vec(&mut self, len: usize, elem: usize, cap: usize) -> Result<Block> {
        let bytes = len
            .max(cap)
            .max(1)
            .checked_mul(elem)
            .ok_or(StatsError::SegmentFull {
                needed: usize::MAX,
                size: self.size(),
            })?;
        let (b, reused) = self.heap.alloc(bytes)?;
        if reused {
            for off in (b.start..b.start + b.size).step_by(8) {
                self.store(off, 0)?;
            }
        }
        // vec_header_t: u32 len, u8 hdr_size (in 8-byte words), u8 log2_align.
        self.store32(b.data() - 8, len as u32)?;
        self.store32(b.data() - 4, 1 | (6 << 8))?;
        Ok(b)
    }

    fn set_vec_len(&self, b: Block, len: usize) -> Result<()> {
        self.store32(b.data() - 8, len as u32)
    }

    fn ptr(b: Block) -> u64 {
        SIM_BASE + b.data() as u64
    }

    fn entry_off(&self, index: u32) -> usize {
        self.dir.data() + index as usize * l::ENTRY_SIZE
    }

    fn write_entry(&self, index: u32, raw_type: u32, value: u64, name: &str) -> Result<()> {
        let at = self.entry_off(index);
        self.store32(at + l::ENTRY_TYPE, raw_type)?;
        self.store32(at + 4, 0)?;
        self.store(at + l::ENTRY_VALUE, value)?;
        let mut buf = [0u8; l::NAME_LEN];
        let n = name.len().min(l::NAME_LEN - 1);
        buf[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.region
            .set_bytes(at + l::ENTRY_NAME, &buf)
            .map_err(|_| StatsError::SegmentFull {
                needed: at + l::ENTRY_SIZE,
                size: self.size(),
            })
    }

    /// Takes a directory slot for `name` (growing and moving the directory
    /// vector when it is full). Must run inside [`change`](Self::change).
    fn new_entry(&mut self, name: &str, raw_type: u32, value: u64, slot: Slot) -> Result<u32> {
        if self.by_name.contains_key(name) {
            return Err(StatsError::NameTaken {
                name: name.to_owned(),
            });
        }
        let index = if let Some(i) = self.free_slots.pop() {
            i
        } else {
            if self.dir_len == self.dir.cap(l::ENTRY_SIZE) {
                let bigger =
                    self.new_vec(self.dir_len, l::ENTRY_SIZE, (self.dir_len * 2).max(64))?;
                for off in (0..self.dir_len * l::ENTRY_SIZE).step_by(8) {
                    self.store(bigger.data() + off, self.load(self.dir.data() + off))?;
                }
                let old = self.dir;
                self.dir = bigger;
                self.store(l::HDR_DIRECTORY, Self::ptr(bigger))?;
                self.heap.free(old);
            }
            self.dir_len += 1;
            self.set_vec_len(self.dir, self.dir_len)?;
            self.slots.push(Slot::Empty);
            (self.dir_len - 1) as u32
        };
        self.write_entry(index, raw_type, value, name)?;
        self.slots[index as usize] = slot;
        self.by_name.insert(name.to_owned(), index);
        Ok(index)
    }

    /// Adds a scalar (type 1) entry.
    pub fn add_scalar(&mut self, name: &str, value: u64) -> Result<u32> {
        self.change(|w| w.new_entry(name, ty::SCALAR_INDEX, value, Slot::Value))
    }

    /// Adds a gauge (type 9) entry.
    pub fn add_gauge(&mut self, name: &str, value: u64) -> Result<u32> {
        self.change(|w| w.new_entry(name, ty::GAUGE, value, Slot::Value))
    }

    /// Sets the value of a scalar or gauge in place (no epoch change).
    pub fn set_value(&mut self, index: u32, value: u64) -> Result<()> {
        match self.slots.get(index as usize) {
            Some(Slot::Value) => self.store(self.entry_off(index) + l::ENTRY_VALUE, value),
            _ => Err(StatsError::NoSuchEntry {
                index,
                expected: "scalar or gauge",
            }),
        }
    }

    /// The value of a scalar or gauge.
    pub fn value(&self, index: u32) -> Result<u64> {
        match self.slots.get(index as usize) {
            Some(Slot::Value) => Ok(self.load(self.entry_off(index) + l::ENTRY_VALUE)),
            _ => Err(StatsError::NoSuchEntry {
                index,
                expected: "scalar or gauge",
            }),
        }
    }

    /// Adds a counter vector of `kind` ([`EntryKind::Simple`] or
    /// [`EntryKind::Combined`]) with `threads` rows of `len` zeroed cells.
    pub fn add_counters(
        &mut self,
        name: &str,
        kind: EntryKind,
        threads: usize,
        len: usize,
    ) -> Result<u32> {
        let (elem, raw) = match kind {
            EntryKind::Simple => (8, ty::COUNTER_VECTOR_SIMPLE),
            EntryKind::Combined => (16, ty::COUNTER_VECTOR_COMBINED),
            _ => {
                return Err(StatsError::NoSuchEntry {
                    index: u32::MAX,
                    expected: "counter kind",
                });
            }
        };
        self.change(|w| {
            let tv = w.new_vec(threads, 8, 0)?;
            let mut rows = Vec::with_capacity(threads);
            for t in 0..threads {
                let row = w.new_vec(len, elem, 0)?;
                w.store(tv.data() + 8 * t, Self::ptr(row))?;
                rows.push(row);
            }
            w.new_entry(
                name,
                raw,
                Self::ptr(tv),
                Slot::Counters {
                    elem,
                    threads: tv,
                    rows,
                    len,
                },
            )
        })
    }

    /// Length (cells per row) of a counter vector.
    pub fn counter_len(&self, index: u32) -> Result<usize> {
        match self.slots.get(index as usize) {
            Some(Slot::Counters { len, .. }) => Ok(*len),
            _ => Err(StatsError::NoSuchEntry {
                index,
                expected: "counter vector",
            }),
        }
    }

    /// Sets the length of every row of a counter vector: new cells are
    /// zero; a row that outgrows its block moves to a new one (so readers
    /// must re-resolve, which the epoch tells them).
    pub fn resize(&mut self, index: u32, new_len: usize) -> Result<()> {
        let Some(Slot::Counters {
            elem,
            threads,
            rows,
            len,
        }) = self.slots.get(index as usize).cloned()
        else {
            return Err(StatsError::NoSuchEntry {
                index,
                expected: "counter vector",
            });
        };
        self.change(|w| {
            let mut new_rows = rows.clone();
            for (t, row) in rows.iter().enumerate() {
                if new_len <= row.cap(elem) {
                    // Keep shrunk-away cells zero so growing back reads 0.
                    for off in (row.data() + new_len * elem..row.data() + len * elem).step_by(8) {
                        w.store(off, 0)?;
                    }
                    w.set_vec_len(*row, new_len)?;
                } else {
                    let moved = w.new_vec(new_len, elem, new_len + new_len / 2)?;
                    for off in (0..len.min(new_len) * elem).step_by(8) {
                        w.store(moved.data() + off, w.load(row.data() + off))?;
                    }
                    w.store(threads.data() + 8 * t, Self::ptr(moved))?;
                    w.heap.free(*row);
                    new_rows[t] = moved;
                }
            }
            w.slots[index as usize] = Slot::Counters {
                elem,
                threads,
                rows: new_rows,
                len: new_len,
            };
            Ok(())
        })
    }

    fn cell(&self, index: u32, thread: usize, col: usize) -> Result<(usize, usize)> {
        let Some(Slot::Counters {
            elem, rows, len, ..
        }) = self.slots.get(index as usize)
        else {
            return Err(StatsError::NoSuchEntry {
                index,
                expected: "counter vector",
            });
        };
        let Some(row) = rows.get(thread) else {
            return Err(StatsError::ThreadOutOfRange {
                thread,
                threads: rows.len(),
            });
        };
        if col >= *len {
            return Err(StatsError::NoSuchEntry {
                index,
                expected: "counter vector that long",
            });
        }
        Ok((row.data() + col * elem, *elem))
    }

    /// Grows a counter vector so that `col` exists (as VPP's
    /// `vlib_validate_*_counter` does).
    pub fn validate(&mut self, index: u32, col: usize) -> Result<()> {
        if col >= self.counter_len(index)? {
            self.resize(index, col + 1)
        } else {
            Ok(())
        }
    }

    /// Reads cell `[thread][col]`: `[packets, bytes]` (`bytes` is 0 for a
    /// simple counter).
    pub fn get(&self, index: u32, thread: usize, col: usize) -> Result<[u64; 2]> {
        let (at, elem) = self.cell(index, thread, col)?;
        Ok([
            self.load(at),
            if elem == 16 { self.load(at + 8) } else { 0 },
        ])
    }

    /// Sets cell `[thread][col]` in place (no epoch change). `bytes` is
    /// ignored for simple counters.
    pub fn set(
        &mut self,
        index: u32,
        thread: usize,
        col: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<()> {
        let (at, elem) = self.cell(index, thread, col)?;
        self.store(at, packets)?;
        if elem == 16 {
            self.store(at + 8, bytes)?;
        }
        Ok(())
    }

    /// Adds to cell `[thread][col]` in place, growing the vector first if
    /// `col` does not exist yet.
    pub fn add(
        &mut self,
        index: u32,
        thread: usize,
        col: usize,
        packets: u64,
        bytes: u64,
    ) -> Result<()> {
        self.validate(index, col)?;
        let [p, b] = self.get(index, thread, col)?;
        self.set(
            index,
            thread,
            col,
            p.wrapping_add(packets),
            b.wrapping_add(bytes),
        )
    }

    /// Adds a name vector (type 4); `None` leaves a slot unused.
    pub fn add_names(&mut self, name: &str, names: &[Option<&str>]) -> Result<u32> {
        self.change(|w| {
            let (vec, strings) = w.write_names(names)?;
            w.new_entry(
                name,
                ty::NAME_VECTOR,
                Self::ptr(vec),
                Slot::Names { vec, strings },
            )
        })
    }

    fn write_names(&mut self, names: &[Option<&str>]) -> Result<(Block, Vec<Option<Block>>)> {
        let vec = self.new_vec(names.len(), 8, 0)?;
        let mut strings = Vec::with_capacity(names.len());
        for (k, n) in names.iter().enumerate() {
            let Some(n) = n else {
                strings.push(None);
                continue;
            };
            let mut bytes = n.as_bytes().to_vec();
            bytes.push(0);
            let s = self.new_vec(bytes.len(), 1, 0)?;
            self.region
                .set_bytes(s.data(), &bytes)
                .map_err(|_| StatsError::SegmentFull {
                    needed: bytes.len(),
                    size: self.size(),
                })?;
            self.store(vec.data() + 8 * k, Self::ptr(s))?;
            strings.push(Some(s));
        }
        Ok((vec, strings))
    }

    /// Replaces the strings of a name vector.
    pub fn set_names(&mut self, index: u32, names: &[Option<&str>]) -> Result<()> {
        let Some(Slot::Names { vec, strings }) = self.slots.get(index as usize).cloned() else {
            return Err(StatsError::NoSuchEntry {
                index,
                expected: "name vector",
            });
        };
        self.change(|w| {
            let (nvec, nstrings) = w.write_names(names)?;
            w.store(w.entry_off(index) + l::ENTRY_VALUE, Self::ptr(nvec))?;
            w.heap.free(vec);
            strings.into_iter().flatten().for_each(|b| w.heap.free(b));
            w.slots[index as usize] = Slot::Names {
                vec: nvec,
                strings: nstrings,
            };
            Ok(())
        })
    }

    /// Adds a symlink (type 6) to column `column` of entry `target`.
    pub fn add_symlink(&mut self, name: &str, target: u32, column: u32) -> Result<u32> {
        let value = u64::from(target) | (u64::from(column) << 32);
        let value = if cfg!(target_endian = "little") {
            value
        } else {
            value.rotate_left(32)
        };
        self.change(|w| w.new_entry(name, ty::SYMLINK, value, Slot::Symlink))
    }

    /// Deletes an entry: its slot becomes `EMPTY` (name zeroed) and is
    /// reused by the next registration; its memory goes back to the heap.
    pub fn remove(&mut self, index: u32) -> Result<()> {
        let slot = match self.slots.get(index as usize) {
            Some(Slot::Empty) | None => {
                return Err(StatsError::NoSuchEntry {
                    index,
                    expected: "entry",
                });
            }
            Some(s) => s.clone(),
        };
        self.change(|w| {
            match slot {
                Slot::Counters { threads, rows, .. } => {
                    w.heap.free(threads);
                    rows.into_iter().for_each(|b| w.heap.free(b));
                }
                Slot::Names { vec, strings } => {
                    w.heap.free(vec);
                    strings.into_iter().flatten().for_each(|b| w.heap.free(b));
                }
                Slot::Value | Slot::Symlink | Slot::Empty => {}
            }
            let next_free = w
                .free_slots
                .last()
                .map_or(u64::from(u32::MAX), |&i| u64::from(i));
            w.write_entry(index, ty::EMPTY, next_free, "")?;
            w.slots[index as usize] = Slot::Empty;
            w.by_name.retain(|_, i| *i != index);
            w.free_slots.push(index);
            Ok(())
        })
    }
}
