//! [`StatSegment`]: a mapped stats segment, the optimistic read protocol,
//! the directory and typed reads.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::{Result, StatsError};
use super::layout::{self as l, ty};
use super::raw::{Fault, Region};
use super::{Counter, DirEntry, EntryKind, PerThread, StatValue};

/// Default number of access windows tried before a read gives up with
/// [`StatsError::Busy`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10_000;

/// Default time a read keeps retrying before [`StatsError::Busy`], whatever
/// the attempts left: VPP holds `in_progress` for microseconds, so a
/// segment busy for this long is stuck, and the caller's thread (maybe a
/// tokio worker) must not spin on it.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_millis(5);

/// Attempts between two looks at the clock in the retry loop.
const CLOCK_EVERY: u32 = 16;

/// A mapped stats segment (read-only).
///
/// Every read runs inside an *access window* (VPP-WIRE D.6): note the
/// epoch, wait for `in_progress == 0`, re-read the directory pointer, copy
/// out what is needed with bounds-checked volatile loads, and keep the copy
/// only if the epoch did not move and no change is in progress; otherwise
/// retry, at most [`max_attempts`](Self::set_max_attempts) times, then fail
/// with [`StatsError::Busy`]. A corrupt segment gives an error, never a
/// panic, a hang or undefined behaviour.
#[derive(Debug)]
pub struct StatSegment {
    region: Region,
    base: u64,
    max_attempts: u32,
    busy_timeout: Duration,
    /// `(st_dev, st_ino)` of the mapped file, to tell segments apart.
    identity: Option<(u64, u64)>,
    /// Access windows thrown away because the writer was changing the
    /// segment (see [`retries`](StatSegment::retries)).
    retries: AtomicU64,
}

/// How a [`StatSegment`] reads the segment's memory (see
/// [`StatSegment::from_fd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentAccess {
    /// Mapped read-only: the memfd is sealed against shrinking, so every
    /// bounds-checked load stays inside live memory. Also an in-memory
    /// image ([`StatSegment::from_bytes`]).
    Mapped,
    /// Read with `pread`, never mapped: the file could shrink (a regular
    /// file, an unsealable memfd). A read past the end of a shrunk file is
    /// [`StatsError::Truncated`]. Slower: a system call per read.
    Pread,
}

/// Makes sure `fd` cannot shrink: `true` if it carries `F_SEAL_SHRINK`
/// already or accepted it now; `false` for files without seals (regular
/// files: `EINVAL`), memfds whose seals are sealed (`F_SEAL_SEAL`, which is
/// how a memfd without `MFD_ALLOW_SEALING` starts), and descriptors not
/// open for writing (`EPERM`).
fn seal_shrink(fd: &OwnedFd) -> bool {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    let Ok(bits) = fcntl(fd, FcntlArg::F_GET_SEALS) else {
        return false;
    };
    let seals = SealFlag::from_bits_truncate(bits);
    if seals.contains(SealFlag::F_SEAL_SHRINK) {
        return true;
    }
    !seals.contains(SealFlag::F_SEAL_SEAL)
        && fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).is_ok()
}

/// Where a vector lives: segment offset of element 0 and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vector {
    pub(crate) offset: usize,
    pub(crate) len: usize,
}

impl StatSegment {
    /// Opens a segment image from a file (a decompressed capture, or a
    /// segment someone saved). A regular file can be truncated by anyone
    /// who can write it, so it is read with `pread`
    /// ([`SegmentAccess::Pread`]), never mapped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| StatsError::Io {
            what: format!("open {}", path.display()),
            source,
        })?;
        Self::from_fd(OwnedFd::from(file))
    }

    /// Opens the segment behind `fd` (a memfd received from VPP, or a
    /// file); the segment owns the descriptor from here on.
    ///
    /// A segment that shrinks under a mapping would kill the process with
    /// `SIGBUS`, so the descriptor is only mapped when it cannot shrink: a
    /// memfd that carries `F_SEAL_SHRINK` (VPP seals its stats memfd so,
    /// and so does the simulator), or one that accepts the seal from us
    /// now. Anything else (a regular file, a memfd created without
    /// `MFD_ALLOW_SEALING` such as VPP's hugepage segment, a descriptor we
    /// may not seal) is read with `pread`: same API and protocol, a system
    /// call per read, and a file that shrinks gives
    /// [`StatsError::Truncated`]. See [`access`](Self::access).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        // Seal first, size second: once sealed the size can only grow.
        let sealed = seal_shrink(&fd);
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| StatsError::Io {
            what: "fstat".into(),
            source: e.into(),
        })?;
        let size = usize::try_from(st.st_size).unwrap_or(0);
        if size < l::HEAP_START {
            return Err(StatsError::TooSmall { size });
        }
        #[allow(
            clippy::useless_conversion,
            reason = "st_dev/st_ino widths differ between targets"
        )]
        let identity = Some((u64::from(st.st_dev), u64::from(st.st_ino)));
        let region = if sealed {
            let map = memmap2::MmapOptions::new()
                .len(size)
                .map_raw_read_only(&fd)
                .map_err(|source| StatsError::Io {
                    what: "mmap".into(),
                    source,
                })?;
            Region::from_map(map, false)
        } else {
            tracing::info!(
                size,
                "stats segment can shrink (no F_SEAL_SHRINK, cannot add it): reading it with pread, not mapping it"
            );
            Region::from_file(fd, size)
        };
        Self::from_region(region, identity)
    }

    /// A segment from an in-memory image (copied; for tests and fuzzing).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < l::HEADER_SIZE + 8 {
            return Err(StatsError::TooSmall { size: bytes.len() });
        }
        Self::from_region(Region::from_bytes(bytes), None)
    }

    pub(crate) fn from_region(region: Region, identity: Option<(u64, u64)>) -> Result<Self> {
        let size = region.len();
        let word = |off| region.u64(off).map_err(|_| StatsError::TooSmall { size });
        let version = word(l::HDR_VERSION)?;
        if version != l::SEGMENT_VERSION {
            return Err(StatsError::UnsupportedVersion { found: version });
        }
        let base = word(l::HDR_BASE)?;
        // The 20.09-22.02 layout keeps a pointer to the error vector right
        // after the current header; in the current layout the word is 0.
        let legacy = word(l::HDR_LEGACY_ERROR_VECTOR)?;
        if legacy != 0 {
            let off = legacy.wrapping_sub(base);
            if off > 0 && off < size as u64 {
                return Err(StatsError::LegacyLayout {
                    error_vector: legacy,
                });
            }
        }
        Ok(StatSegment {
            region,
            base,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            identity,
            retries: AtomicU64::new(0),
        })
    }

    /// Size of the segment in bytes.
    pub fn size(&self) -> usize {
        self.region.len()
    }

    /// VPP's address of the segment start (the header's `base`).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// `(st_dev, st_ino)` of the mapped file or memfd, when mapped from one:
    /// two segments with the same identity are the same memory.
    pub fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// The current epoch (changes with every structural change).
    pub fn epoch(&self) -> u64 {
        self.region.u64_acquire(l::HDR_EPOCH).unwrap_or(0)
    }

    /// Whether a structural change is under way right now.
    pub fn in_progress(&self) -> bool {
        self.region.u64_acquire(l::HDR_IN_PROGRESS).unwrap_or(0) != 0
    }

    /// Sets how many access windows a read tries before [`StatsError::Busy`]
    /// (at least 1).
    pub fn set_max_attempts(&mut self, attempts: u32) {
        self.max_attempts = attempts.max(1);
    }

    /// Sets how long a read keeps retrying a busy segment before
    /// [`StatsError::Busy`] ([`DEFAULT_BUSY_TIMEOUT`]); whichever of this
    /// and the attempts runs out first ends the read. The clock is
    /// `tokio::time`'s (so a paused test clock leaves only the attempts).
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        self.busy_timeout = timeout;
    }

    /// How this segment is read: mapped, or with `pread` because it could
    /// shrink.
    pub fn access(&self) -> SegmentAccess {
        if self.region.is_memory() {
            SegmentAccess::Mapped
        } else {
            SegmentAccess::Pread
        }
    }

    /// How many access windows were thrown away and retried so far because
    /// the writer was changing the segment (`in_progress` set, or the epoch
    /// moved during the window). Shared by every read of this segment.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// A header word, for the retry loop (a short `pread` is `Truncated`).
    fn header(&self, offset: usize) -> Result<u64> {
        self.region
            .u64_acquire(offset)
            .map_err(|f| self.fault(f, "<header>", "header".into(), offset))
    }

    /// Runs `f` inside an access window until it sees a consistent segment.
    ///
    /// `f` gets the window (directory location, epoch) and may fail; its
    /// result, `Ok` or `Err`, is only returned when the epoch check after it
    /// passes, because anything read in a torn window may be garbage.
    pub(crate) fn with_window<T>(&self, f: impl FnMut(&Window<'_>) -> Result<T>) -> Result<T> {
        let deadline = Some(self.busy_timeout);
        self.with_window_limited(self.max_attempts, deadline, f)
    }

    /// [`with_window`](Self::with_window) with explicit limits: at most
    /// `attempts` windows, and no retry once `budget` (if any) has passed
    /// since the first retry. A segment that shrank (`Truncated`) or cannot
    /// be read ends the loop at once: retrying cannot help.
    pub(crate) fn with_window_limited<T>(
        &self,
        attempts: u32,
        budget: Option<Duration>,
        mut f: impl FnMut(&Window<'_>) -> Result<T>,
    ) -> Result<T> {
        let attempts = attempts.max(1);
        let mut deadline: Option<tokio::time::Instant> = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
                if let Some(budget) = budget
                    && attempt % CLOCK_EVERY == 1
                {
                    let now = tokio::time::Instant::now();
                    match deadline {
                        None => deadline = Some(now + budget),
                        Some(d) if now >= d => {
                            return Err(StatsError::Busy { attempts: attempt });
                        }
                        Some(_) => {}
                    }
                }
                backoff(attempt);
            }
            let epoch = self.header(l::HDR_EPOCH)?;
            if self.header(l::HDR_IN_PROGRESS)? != 0 {
                continue;
            }
            let result = self.directory().and_then(|dir| {
                f(&Window {
                    seg: self,
                    dir,
                    epoch,
                })
            });
            if let Err(e @ (StatsError::Truncated { .. } | StatsError::Io { .. })) = result {
                return Err(e);
            }
            Region::fence_acquire();
            let still =
                self.header(l::HDR_EPOCH)? == epoch && self.header(l::HDR_IN_PROGRESS)? == 0;
            if still {
                return result;
            }
        }
        Err(StatsError::Busy { attempts })
    }

    /// The directory vector, re-read from the header.
    fn directory(&self) -> Result<Vector> {
        let ptr = self.region.u64(l::HDR_DIRECTORY).map_err(|f| match f {
            Fault::Truncated | Fault::Io(_) => {
                self.fault(f, "<header>", "directory pointer".into(), l::HDR_DIRECTORY)
            }
            _ => StatsError::TooSmall { size: self.size() },
        })?;
        self.vector(ptr, l::ENTRY_SIZE, 8, &|| "<directory>".into(), "directory")
    }

    /// Translates a VPP pointer to a vector of `elem`-byte elements (data
    /// aligned to `align`), reads its length and checks that all of it lies
    /// inside the segment.
    pub(crate) fn vector(
        &self,
        ptr: u64,
        elem: usize,
        align: usize,
        entry: &dyn Fn() -> String,
        what: &str,
    ) -> Result<Vector> {
        let size = self.size();
        let offset = ptr.wrapping_sub(self.base);
        let bad_pointer = || StatsError::BadPointer {
            entry: entry(),
            what: what.to_owned(),
            pointer: ptr,
            offset,
            size,
        };
        if ptr == 0 || offset < l::VEC_LEN_BEFORE as u64 || offset > size as u64 {
            return Err(bad_pointer());
        }
        let off = offset as usize;
        if !off.is_multiple_of(align) {
            return Err(StatsError::Misaligned {
                entry: entry(),
                what: what.to_owned(),
                offset,
            });
        }
        let len = self
            .region
            .u32(off - l::VEC_LEN_BEFORE)
            .map_err(|f| match f {
                Fault::Misaligned => StatsError::Misaligned {
                    entry: entry(),
                    what: what.to_owned(),
                    offset,
                },
                Fault::OutOfBounds => bad_pointer(),
                other => self.fault(other, &entry(), what.to_owned(), off - l::VEC_LEN_BEFORE),
            })? as usize;
        let fits = len <= l::MAX_ELEMENTS
            && len
                .checked_mul(elem)
                .and_then(|n| n.checked_add(off))
                .is_some_and(|end| end <= size);
        if !fits {
            return Err(StatsError::BadLength {
                entry: entry(),
                what: what.to_owned(),
                offset,
                len: len as u64,
            });
        }
        Ok(Vector { offset: off, len })
    }

    /// The error for a fault of a read that [`vector`](Self::vector)
    /// already bounds-checked (so it should not happen).
    pub(crate) fn fault(
        &self,
        fault: Fault,
        entry: &str,
        what: String,
        offset: usize,
    ) -> StatsError {
        match fault {
            Fault::Misaligned => StatsError::Misaligned {
                entry: entry.to_owned(),
                what,
                offset: offset as u64,
            },
            Fault::OutOfBounds => StatsError::BadPointer {
                entry: entry.to_owned(),
                what,
                pointer: self.base.wrapping_add(offset as u64),
                offset: offset as u64,
                size: self.size(),
            },
            Fault::Truncated => StatsError::Truncated {
                offset: offset as u64,
                size: self.size(),
            },
            Fault::Io(e) => StatsError::Io {
                what: format!("pread at offset {offset:#x}"),
                source: e.into(),
            },
        }
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Lists the directory: every entry that is not `EMPTY` and has a name.
    pub fn list(&self) -> Result<Vec<DirEntry>> {
        self.with_window(|w| {
            let mut out = Vec::with_capacity(w.dir.len);
            for i in 0..w.dir.len {
                let kind = w.kind(i)?;
                if kind == EntryKind::Empty {
                    continue;
                }
                let name = w.name(i)?;
                if name.is_empty() {
                    continue;
                }
                out.push(DirEntry {
                    index: i as u32,
                    name: String::from_utf8_lossy(&name).into_owned(),
                    kind,
                });
            }
            Ok(out)
        })
    }

    /// Number of directory slots (including `EMPTY` ones), which is what
    /// `vpp_papi` reports as the number of entries.
    pub fn directory_len(&self) -> Result<usize> {
        self.with_window(|w| Ok(w.dir.len))
    }

    /// Looks up an entry by its exact name (bytes up to the first NUL).
    pub fn find(&self, name: &str) -> Result<Option<DirEntry>> {
        self.with_window(|w| {
            Ok(match w.find(name.as_bytes())? {
                Some(i) => Some(DirEntry {
                    index: i as u32,
                    name: name.to_owned(),
                    kind: w.kind(i)?,
                }),
                None => None,
            })
        })
    }

    /// Reads the entry called `name`, whatever its type.
    pub fn read(&self, name: &str) -> Result<StatValue> {
        self.with_window(|w| {
            let i = w
                .find(name.as_bytes())?
                .ok_or_else(|| StatsError::NotFound {
                    name: name.to_owned(),
                })?;
            w.value(i, name)
        })
    }

    /// Reads the entry at directory index `index` (as listed), with its
    /// directory record.
    pub fn read_index(&self, index: u32) -> Result<(DirEntry, StatValue)> {
        self.with_window(|w| {
            let i = index as usize;
            if i >= w.dir.len {
                return Err(StatsError::NotFound {
                    name: format!("#{index}"),
                });
            }
            let name = String::from_utf8_lossy(&w.name(i)?).into_owned();
            let value = w.value(i, &name)?;
            Ok((
                DirEntry {
                    index,
                    name,
                    kind: w.kind(i)?,
                },
                value,
            ))
        })
    }

    /// Reads a scalar or gauge entry.
    pub fn scalar(&self, name: &str) -> Result<u64> {
        match self.read(name)? {
            StatValue::Scalar(v) | StatValue::Gauge(v) => Ok(v),
            other => Err(wrong_type(name, "a scalar or gauge", &other)),
        }
    }

    /// Reads a simple counter vector, `[thread][index]`.
    pub fn simple(&self, name: &str) -> Result<PerThread<u64>> {
        match self.read(name)? {
            StatValue::Simple(v) => Ok(v),
            other => Err(wrong_type(name, "a simple counter vector", &other)),
        }
    }

    /// Reads a combined counter vector, `[thread][index]`.
    pub fn combined(&self, name: &str) -> Result<PerThread<Counter>> {
        match self.read(name)? {
            StatValue::Combined(v) => Ok(v),
            other => Err(wrong_type(name, "a combined counter vector", &other)),
        }
    }

    /// Reads a name vector (`None` for unused slots).
    pub fn names(&self, name: &str) -> Result<Vec<Option<String>>> {
        match self.read(name)? {
            StatValue::Names(v) => Ok(v),
            other => Err(wrong_type(name, "a name vector", &other)),
        }
    }

    /// `/sys/heartbeat`: VPP bumps it at every stats collector run.
    pub fn heartbeat(&self) -> Result<u64> {
        self.scalar("/sys/heartbeat")
    }
}

fn wrong_type(name: &str, expected: &'static str, found: &StatValue) -> StatsError {
    StatsError::WrongType {
        name: name.to_owned(),
        expected,
        found: found.kind(),
    }
}

/// Between two attempts: spin a little, then let other threads run (the
/// writer may be on our core). No sleeping: a frozen segment must give
/// `Busy` quickly, and tests must not depend on timing.
fn backoff(attempt: u32) {
    if attempt < 16 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// One access window: where the directory is, and the epoch it started at.
pub(crate) struct Window<'a> {
    pub(crate) seg: &'a StatSegment,
    pub(crate) dir: Vector,
    pub(crate) epoch: u64,
}

impl Window<'_> {
    fn entry_offset(&self, i: usize) -> usize {
        self.dir.offset + i * l::ENTRY_SIZE
    }

    fn dir_fault(&self, i: usize) -> impl Fn(Fault) -> StatsError + '_ {
        move |f| {
            self.seg.fault(
                f,
                &format!("#{i}"),
                "directory entry".into(),
                self.entry_offset(i),
            )
        }
    }

    /// Raw type number of entry `i` (`i < dir.len`).
    pub(crate) fn raw_type(&self, i: usize) -> Result<u32> {
        self.seg
            .region()
            .u32(self.entry_offset(i) + l::ENTRY_TYPE)
            .map_err(self.dir_fault(i))
    }

    pub(crate) fn kind(&self, i: usize) -> Result<EntryKind> {
        Ok(EntryKind::from_raw(self.raw_type(i)?))
    }

    pub(crate) fn raw_value(&self, i: usize) -> Result<u64> {
        self.seg
            .region()
            .u64(self.entry_offset(i) + l::ENTRY_VALUE)
            .map_err(self.dir_fault(i))
    }

    /// Name of entry `i`, up to the first NUL.
    pub(crate) fn name(&self, i: usize) -> Result<Vec<u8>> {
        let mut buf = [0u8; l::NAME_LEN];
        self.seg
            .region()
            .bytes(self.entry_offset(i) + l::ENTRY_NAME, &mut buf)
            .map_err(self.dir_fault(i))?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(l::NAME_LEN);
        Ok(buf[..end].to_vec())
    }

    /// Whether entry `i` is called exactly `name`.
    pub(crate) fn name_is(&self, i: usize, name: &[u8]) -> Result<bool> {
        if name.len() >= l::NAME_LEN || name.contains(&0) {
            return Ok(false);
        }
        let at = self.entry_offset(i) + l::ENTRY_NAME;
        let region = self.seg.region();
        // Compare the first byte before the rest: most entries differ there
        // or in the first few bytes.
        for (k, &want) in name.iter().chain(std::iter::once(&0)).enumerate() {
            if region.u8(at + k).map_err(self.dir_fault(i))? != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Directory index of the live entry called `name`.
    pub(crate) fn find(&self, name: &[u8]) -> Result<Option<usize>> {
        for i in 0..self.dir.len {
            if self.name_is(i, name)? && self.raw_type(i)? != ty::EMPTY {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// The per-thread rows of a counter entry whose data pointer is `ptr`,
    /// each a vector of `elem`-byte cells.
    pub(crate) fn rows(&self, name: &str, ptr: u64, elem: usize) -> Result<Vec<Vector>> {
        let ctx = || name.to_owned();
        let threads = self.seg.vector(ptr, 8, 8, &ctx, "thread vector")?;
        if threads.len > l::MAX_THREADS {
            return Err(StatsError::BadLength {
                entry: name.to_owned(),
                what: "thread vector".into(),
                offset: threads.offset as u64,
                len: threads.len as u64,
            });
        }
        let mut rows = Vec::with_capacity(threads.len);
        let mut total = 0usize;
        for t in 0..threads.len {
            let at = threads.offset + 8 * t;
            let what = format!("thread {t} row");
            let row_ptr = self
                .seg
                .region()
                .u64(at)
                .map_err(|f| self.seg.fault(f, name, what.clone(), at))?;
            let row = self.seg.vector(row_ptr, elem, 8, &ctx, &what)?;
            // Rows are distinct memory, so all of them fit in the segment:
            // this stops rows aliasing one huge vector from making us
            // allocate thousands of times the segment size.
            total = total.saturating_add(row.len * elem);
            if total > self.seg.size() {
                return Err(StatsError::BadLength {
                    entry: name.to_owned(),
                    what: format!("{what} (rows add up to more than the segment)"),
                    offset: row.offset as u64,
                    len: row.len as u64,
                });
            }
            rows.push(row);
        }
        Ok(rows)
    }

    fn read_rows(
        &self,
        name: &str,
        rows: &[Vector],
        words_per_cell: usize,
    ) -> Result<Vec<Vec<u64>>> {
        rows.iter()
            .enumerate()
            .map(|(t, row)| {
                let mut out = vec![0u64; row.len * words_per_cell];
                self.seg.region().u64s(row.offset, &mut out).map_err(|f| {
                    self.seg
                        .fault(f, name, format!("thread {t} row"), row.offset)
                })?;
                Ok(out)
            })
            .collect()
    }

    fn read_names(&self, name: &str, ptr: u64) -> Result<Vec<Option<String>>> {
        let ctx = || name.to_owned();
        let slots = self.seg.vector(ptr, 8, 8, &ctx, "name vector")?;
        let mut out = Vec::with_capacity(slots.len);
        let mut total = 0usize;
        for k in 0..slots.len {
            let at = slots.offset + 8 * k;
            let what = format!("name {k}");
            let p = self
                .seg
                .region()
                .u64(at)
                .map_err(|f| self.seg.fault(f, name, what.clone(), at))?;
            if p == 0 {
                out.push(None);
                continue;
            }
            let s = self.seg.vector(p, 1, 1, &ctx, &what)?;
            total = total.saturating_add(s.len);
            if total > self.seg.size() {
                return Err(StatsError::BadLength {
                    entry: name.to_owned(),
                    what: format!("{what} (names add up to more than the segment)"),
                    offset: s.offset as u64,
                    len: s.len as u64,
                });
            }
            let mut bytes = vec![0u8; s.len];
            self.seg
                .region()
                .bytes(s.offset, &mut bytes)
                .map_err(|f| self.seg.fault(f, name, what.clone(), s.offset))?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            out.push(Some(String::from_utf8_lossy(&bytes[..end]).into_owned()));
        }
        Ok(out)
    }

    /// Reads entry `i` (called `name`, for errors).
    pub(crate) fn value(&self, i: usize, name: &str) -> Result<StatValue> {
        let kind = self.kind(i)?;
        let raw = self.raw_value(i)?;
        Ok(match kind {
            EntryKind::Scalar => StatValue::Scalar(raw),
            EntryKind::Gauge => StatValue::Gauge(raw),
            EntryKind::Empty => StatValue::Empty,
            EntryKind::Simple => {
                let rows = self.rows(name, raw, 8)?;
                StatValue::Simple(PerThread::new(self.read_rows(name, &rows, 1)?))
            }
            EntryKind::Combined => {
                let rows = self.rows(name, raw, 16)?;
                let rows = self.read_rows(name, &rows, 2)?;
                StatValue::Combined(PerThread::new(
                    rows.into_iter().map(|r| pairs(&r)).collect(),
                ))
            }
            EntryKind::NameVector => StatValue::Names(self.read_names(name, raw)?),
            EntryKind::Symlink => {
                let at = self.entry_offset(i) + l::ENTRY_VALUE;
                let target = self.seg.region().u32(at).map_err(self.dir_fault(i))?;
                let column = self.seg.region().u32(at + 4).map_err(self.dir_fault(i))?;
                let bad = || StatsError::BadSymlink {
                    entry: name.to_owned(),
                    target,
                    column,
                };
                let t = target as usize;
                if t >= self.dir.len {
                    return Err(bad());
                }
                let traw = self.raw_value(t)?;
                let col = column as usize;
                match self.kind(t)? {
                    EntryKind::Simple => {
                        let rows = self.rows(name, traw, 8)?;
                        let cells = self.column(name, &rows, col, 1)?;
                        StatValue::SimpleColumn(cells)
                    }
                    EntryKind::Combined => {
                        let rows = self.rows(name, traw, 16)?;
                        StatValue::CombinedColumn(pairs(&self.column(name, &rows, col, 2)?))
                    }
                    _ => return Err(bad()),
                }
            }
            other => StatValue::Unsupported(other),
        })
    }

    /// Cell `col` of every row (0 where a row is shorter).
    fn column(&self, name: &str, rows: &[Vector], col: usize, words: usize) -> Result<Vec<u64>> {
        let mut out = vec![0u64; rows.len() * words];
        for (t, row) in rows.iter().enumerate() {
            if col < row.len {
                let at = row.offset + col * 8 * words;
                self.seg
                    .region()
                    .u64s(at, &mut out[t * words..(t + 1) * words])
                    .map_err(|f| self.seg.fault(f, name, format!("thread {t} row"), at))?;
            }
        }
        Ok(out)
    }
}

fn pairs(words: &[u64]) -> Vec<Counter> {
    words
        .chunks_exact(2)
        .map(|p| Counter {
            packets: p[0],
            bytes: p[1],
        })
        .collect()
}
