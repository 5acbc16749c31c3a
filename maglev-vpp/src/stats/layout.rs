//! Offsets, sizes and type numbers of the stats segment (VPP ≥ 22.06,
//! version 2 without the error vector), as in `VPP-WIRE.md` D.2–D.5.
//!
//! All words are host byte order; pointers are VPP virtual addresses,
//! translated by subtracting the header's `base`.

/// `version` (u64) at offset 0 of the shared header.
pub(crate) const HDR_VERSION: usize = 0;
/// `base` (u64): VPP's own address of the segment start.
pub(crate) const HDR_BASE: usize = 8;
/// `epoch` (u64, volatile): bumped at the end of every structural change.
pub(crate) const HDR_EPOCH: usize = 16;
/// `in_progress` (u64, volatile): 1 while a structural change is under way.
pub(crate) const HDR_IN_PROGRESS: usize = 24;
/// `directory_vector` (pointer) to the vector of directory entries.
pub(crate) const HDR_DIRECTORY: usize = 32;
/// The word after the current header: `error_vector` in the 20.09–22.02
/// layout, zero in the current one.
pub(crate) const HDR_LEGACY_ERROR_VECTOR: usize = 40;
/// Size of the current shared header.
pub(crate) const HEADER_SIZE: usize = 40;
/// The only supported `version`.
pub(crate) const SEGMENT_VERSION: u64 = 2;
/// VPP's stats heap starts one page into the segment.
pub(crate) const HEAP_START: usize = 4096;

/// Size of one directory entry (`vlib_stats_entry_t`).
pub(crate) const ENTRY_SIZE: usize = 144;
/// `type` (u32) inside an entry.
pub(crate) const ENTRY_TYPE: usize = 0;
/// The union (u64 value / pointer / two u32 symlink indexes) inside an entry.
pub(crate) const ENTRY_VALUE: usize = 8;
/// `name[128]` inside an entry.
pub(crate) const ENTRY_NAME: usize = 16;
/// Length of the name field (including the terminating NUL).
pub(crate) const NAME_LEN: usize = 128;

/// A VPP vector's length (u32) sits this many bytes before its first element.
pub(crate) const VEC_LEN_BEFORE: usize = 8;

/// Sanity cap on the number of threads of a counter (VPP-WIRE F.12).
pub(crate) const MAX_THREADS: usize = 4096;
/// Sanity cap on the number of elements of any vector (VPP-WIRE F.12).
pub(crate) const MAX_ELEMENTS: usize = 1 << 28;

/// `stat_directory_type_t`, current numbering.
pub(crate) mod ty {
    pub(crate) const ILLEGAL: u32 = 0;
    pub(crate) const SCALAR_INDEX: u32 = 1;
    pub(crate) const COUNTER_VECTOR_SIMPLE: u32 = 2;
    pub(crate) const COUNTER_VECTOR_COMBINED: u32 = 3;
    pub(crate) const NAME_VECTOR: u32 = 4;
    pub(crate) const EMPTY: u32 = 5;
    pub(crate) const SYMLINK: u32 = 6;
    pub(crate) const HISTOGRAM_LOG2: u32 = 7;
    pub(crate) const RING_BUFFER: u32 = 8;
    pub(crate) const GAUGE: u32 = 9;
}
