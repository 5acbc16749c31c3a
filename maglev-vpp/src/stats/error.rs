//! The one error type of the stats segment reader and simulator.

use std::path::PathBuf;

use super::EntryKind;

/// Why a stats-segment operation failed.
///
/// Variants say who is at fault: the socket or file (`Connect`, `Io`,
/// `NoDescriptor`), VPP's layout (`UnsupportedVersion`, `LegacyLayout`), a
/// corrupt segment (`BadPointer`, `BadLength`, `Misaligned`, `BadSymlink`),
/// a writer that never lets us finish (`Busy`), or the caller (`NotFound`,
/// `WrongType`). Corruption errors name the directory entry being read and
/// the segment offset that was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// Connecting to or receiving from the stats socket failed.
    #[error("stats socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The stats socket answered without passing a file descriptor.
    #[error("stats socket {path}: no file descriptor in the reply")]
    NoDescriptor {
        /// The socket path.
        path: PathBuf,
    },
    /// Opening, sizing or mapping the segment failed.
    #[error("stats segment {what}: {source}")]
    Io {
        /// What was being done (`"open <path>"`, `"mmap"`, `"memfd"` ...).
        what: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The segment is smaller than its own header (or than a page).
    #[error("stats segment is {size} bytes, too small for a version 2 segment")]
    TooSmall {
        /// Size of the segment in bytes.
        size: usize,
    },
    /// The header's `version` is not 2.
    #[error("stats segment version {found} is not supported (only version 2, VPP >= 20.09)")]
    UnsupportedVersion {
        /// The version word found at offset 0.
        found: u64,
    },
    /// Version 2 but the 20.09–22.02 layout (with an error vector): its
    /// type numbering differs, so it is refused rather than misread.
    #[error(
        "stats segment has the VPP 20.09-22.02 layout (error vector pointer {error_vector:#x} at offset 40); \
         only the VPP >= 22.06 layout is supported"
    )]
    LegacyLayout {
        /// The word at offset 40, a pointer into the segment.
        error_vector: u64,
    },
    /// A pointer read from the segment does not point inside it.
    #[error(
        "stats entry {entry:?}: {what} pointer {pointer:#x} (offset {offset:#x}) is outside the {size}-byte segment"
    )]
    BadPointer {
        /// The directory entry being read (`<directory>` for the directory).
        entry: String,
        /// Which pointer (`"data"`, `"thread 3 row"`, `"name 7"` ...).
        what: String,
        /// The pointer as found (a VPP address).
        pointer: u64,
        /// The pointer minus the segment base.
        offset: u64,
        /// Size of the segment.
        size: usize,
    },
    /// A vector length read from the segment does not fit in it.
    #[error(
        "stats entry {entry:?}: {what} at offset {offset:#x} has length {len}, which does not fit in the segment"
    )]
    BadLength {
        /// The directory entry being read.
        entry: String,
        /// Which vector.
        what: String,
        /// Segment offset of the vector's first element.
        offset: u64,
        /// The length found.
        len: u64,
    },
    /// A pointer read from the segment is not aligned for what it points to.
    #[error("stats entry {entry:?}: {what} at offset {offset:#x} is misaligned")]
    Misaligned {
        /// The directory entry being read.
        entry: String,
        /// Which pointer.
        what: String,
        /// The misaligned segment offset.
        offset: u64,
    },
    /// A symlink entry points at a directory index that is not a counter.
    #[error(
        "stats symlink {entry:?} points at entry {target} column {column}, which is not a counter vector"
    )]
    BadSymlink {
        /// The symlink's name.
        entry: String,
        /// The directory index it points at.
        target: u32,
        /// The column it points at.
        column: u32,
    },
    /// The segment's file shrank under the reader (VPP truncated or replaced
    /// it, or someone truncated a saved image): a read at `offset` found the
    /// end of the file. Only a segment read with `pread` can see this (see
    /// [`SegmentAccess`](super::SegmentAccess)); a mapped one is sealed
    /// against shrinking.
    #[error(
        "stats segment shrank under the reader: offset {offset:#x} is past its end (it was {size} bytes when opened)"
    )]
    Truncated {
        /// The segment offset the read started at.
        offset: u64,
        /// Size of the segment when it was opened.
        size: usize,
    },
    /// The writer kept the segment in flux for every attempt.
    #[error(
        "stats segment busy: no consistent read in {attempts} attempts (epoch kept changing or in_progress stayed set until the attempts or the time budget ran out)"
    )]
    Busy {
        /// How many access windows were tried.
        attempts: u32,
    },
    /// No directory entry has this exact name.
    #[error("stats entry {name:?} not found")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The entry exists but has another type than the read asked for.
    #[error("stats entry {name:?} is {found:?}, not {expected}")]
    WrongType {
        /// The entry's name.
        name: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the entry is.
        found: EntryKind,
    },
    /// Simulator: a thread index beyond the segment's threads.
    #[error("stats simulator: thread {thread} out of range (the segment has {threads} threads)")]
    ThreadOutOfRange {
        /// The thread asked for.
        thread: usize,
        /// Threads of the segment (main + workers).
        threads: usize,
    },
    /// Simulator: the segment has no room for an allocation.
    #[error("stats simulator: segment full ({needed} more bytes needed, segment is {size} bytes)")]
    SegmentFull {
        /// Bytes asked for.
        needed: usize,
        /// Size of the segment.
        size: usize,
    },
    /// Simulator: an operation on a directory index that holds no entry of
    /// the right type.
    #[error("stats simulator: directory entry {index} is not a live {expected}")]
    NoSuchEntry {
        /// The directory index.
        index: u32,
        /// What was expected there.
        expected: &'static str,
    },
    /// Simulator: a name that is already registered.
    #[error("stats simulator: an entry called {name:?} already exists")]
    NameTaken {
        /// The name.
        name: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = StatsError> = std::result::Result<T, E>;
