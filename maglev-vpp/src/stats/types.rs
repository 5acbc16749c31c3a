//! Owned values copied out of the segment.

use std::ops::Add;

use super::layout::ty;

/// Type of a directory entry (`stat_directory_type_t`, VPP ≥ 22.06).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// 0: never valid.
    Illegal,
    /// 1: a u64 held in the entry itself (`/sys/heartbeat`, ...).
    Scalar,
    /// 2: `[thread][index]` → u64 packets.
    Simple,
    /// 3: `[thread][index]` → `{packets, bytes}`.
    Combined,
    /// 4: a vector of strings (`/if/names`, ...).
    NameVector,
    /// 5: a deleted entry.
    Empty,
    /// 6: an alias for one column of another counter entry.
    Symlink,
    /// 7: a per-thread log2 histogram (not decoded).
    HistogramLog2,
    /// 8: a ring buffer (not decoded).
    RingBuffer,
    /// 9: an integer gauge held in the entry itself.
    Gauge,
    /// A type number this reader does not know.
    Unknown(u32),
}

impl EntryKind {
    /// From the raw `type` word of a directory entry.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            ty::ILLEGAL => EntryKind::Illegal,
            ty::SCALAR_INDEX => EntryKind::Scalar,
            ty::COUNTER_VECTOR_SIMPLE => EntryKind::Simple,
            ty::COUNTER_VECTOR_COMBINED => EntryKind::Combined,
            ty::NAME_VECTOR => EntryKind::NameVector,
            ty::EMPTY => EntryKind::Empty,
            ty::SYMLINK => EntryKind::Symlink,
            ty::HISTOGRAM_LOG2 => EntryKind::HistogramLog2,
            ty::RING_BUFFER => EntryKind::RingBuffer,
            ty::GAUGE => EntryKind::Gauge,
            other => EntryKind::Unknown(other),
        }
    }

    /// The raw `type` word.
    pub fn raw(self) -> u32 {
        match self {
            EntryKind::Illegal => ty::ILLEGAL,
            EntryKind::Scalar => ty::SCALAR_INDEX,
            EntryKind::Simple => ty::COUNTER_VECTOR_SIMPLE,
            EntryKind::Combined => ty::COUNTER_VECTOR_COMBINED,
            EntryKind::NameVector => ty::NAME_VECTOR,
            EntryKind::Empty => ty::EMPTY,
            EntryKind::Symlink => ty::SYMLINK,
            EntryKind::HistogramLog2 => ty::HISTOGRAM_LOG2,
            EntryKind::RingBuffer => ty::RING_BUFFER,
            EntryKind::Gauge => ty::GAUGE,
            EntryKind::Unknown(raw) => raw,
        }
    }
}

/// One directory entry as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Position in the directory (the "stat index" symlinks use).
    pub index: u32,
    /// Exact name (no leading `/` for the LB counters).
    pub name: String,
    /// Entry type.
    pub kind: EntryKind,
}

/// One cell of a combined counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Adds field by field, wrapping at 2^64 as VPP's counters do.
impl Add for Counter {
    type Output = Counter;
    fn add(self, o: Counter) -> Counter {
        Counter {
            packets: self.packets.wrapping_add(o.packets),
            bytes: self.bytes.wrapping_add(o.bytes),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for super::Counter {}
}

/// A cell of a counter vector: `u64` (simple counters) or [`Counter`]
/// (combined). Sealed.
///
/// VPP's counters are `u64`s that wrap at 2^64 (a worker adds with plain C
/// `+=`), and anything in the segment may be garbage: sums wrap the same
/// way, so no value read from a segment can make an addition panic.
pub trait CounterCell: Copy + Default + sealed::Sealed {
    /// `self + other`, wrapping at 2^64 (each field of a [`Counter`]).
    fn wrapping_add(self, other: Self) -> Self;
}

impl CounterCell for u64 {
    fn wrapping_add(self, other: u64) -> u64 {
        u64::wrapping_add(self, other)
    }
}

impl CounterCell for Counter {
    fn wrapping_add(self, other: Counter) -> Counter {
        self + other
    }
}

/// A counter vector copied out of the segment: one row per thread (thread 0
/// is VPP's main thread, then the workers), one cell per object index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerThread<T> {
    rows: Vec<Vec<T>>,
}

impl<T: CounterCell> PerThread<T> {
    /// From rows `[thread][index]`.
    pub fn new(rows: Vec<Vec<T>>) -> Self {
        PerThread { rows }
    }

    /// Number of threads (rows).
    pub fn threads(&self) -> usize {
        self.rows.len()
    }

    /// All rows, `[thread][index]`.
    pub fn rows(&self) -> &[Vec<T>] {
        &self.rows
    }

    /// The row of one thread (empty if there is no such thread).
    pub fn thread(&self, thread: usize) -> &[T] {
        self.rows.get(thread).map_or(&[], Vec::as_slice)
    }

    /// Cell `[thread][index]`; an index beyond the row reads as zero (VPP
    /// has not grown the vector that far yet).
    pub fn get(&self, thread: usize, index: usize) -> T {
        self.thread(thread).get(index).copied().unwrap_or_default()
    }

    /// Cell `index` of every thread.
    pub fn column(&self, index: usize) -> Vec<T> {
        (0..self.threads()).map(|t| self.get(t, index)).collect()
    }

    /// Sum over threads of cell `index` (what VPP's CLI prints), wrapping
    /// at 2^64 as VPP's counters do.
    pub fn sum(&self, index: usize) -> T {
        (0..self.threads()).fold(T::default(), |acc, t| acc.wrapping_add(self.get(t, index)))
    }
}

/// Everything one entry can hold, copied out of the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatValue {
    /// A scalar (type 1).
    Scalar(u64),
    /// A gauge (type 9).
    Gauge(u64),
    /// A simple counter vector (type 2).
    Simple(PerThread<u64>),
    /// A combined counter vector (type 3).
    Combined(PerThread<Counter>),
    /// A name vector (type 4); `None` for unused slots.
    Names(Vec<Option<String>>),
    /// A symlink to a column of a simple counter: one value per thread.
    SimpleColumn(Vec<u64>),
    /// A symlink to a column of a combined counter: one value per thread.
    CombinedColumn(Vec<Counter>),
    /// A deleted entry (type 5).
    Empty,
    /// A type this reader does not decode (histograms, ring buffers,
    /// unknown numbers).
    Unsupported(EntryKind),
}

impl StatValue {
    /// The entry type this value came from.
    pub fn kind(&self) -> EntryKind {
        match self {
            StatValue::Scalar(_) => EntryKind::Scalar,
            StatValue::Gauge(_) => EntryKind::Gauge,
            StatValue::Simple(_) => EntryKind::Simple,
            StatValue::Combined(_) => EntryKind::Combined,
            StatValue::Names(_) => EntryKind::NameVector,
            StatValue::SimpleColumn(_) | StatValue::CombinedColumn(_) => EntryKind::Symlink,
            StatValue::Empty => EntryKind::Empty,
            StatValue::Unsupported(k) => *k,
        }
    }
}

/// The four LB plugin counters (VPP-WIRE C.6), in the plugin's enum order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LbCounter {
    /// `packet from existing sessions`: matched a sticky entry.
    NextPacket = 0,
    /// `first session packet`: new flow, AS chosen from the Maglev table.
    FirstPacket = 1,
    /// `untracked packet`: new flow, sticky table full.
    Untracked = 2,
    /// `no server configured`: no usable AS, dropped.
    NoServer = 3,
}

impl LbCounter {
    /// All four, in enum order.
    pub const ALL: [LbCounter; 4] = [
        LbCounter::NextPacket,
        LbCounter::FirstPacket,
        LbCounter::Untracked,
        LbCounter::NoServer,
    ];

    /// The exact stats directory name (no leading `/`, with spaces).
    pub fn name(self) -> &'static str {
        match self {
            LbCounter::NextPacket => "packet from existing sessions",
            LbCounter::FirstPacket => "first session packet",
            LbCounter::Untracked => "untracked packet",
            LbCounter::NoServer => "no server configured",
        }
    }
}

/// The name of the FIB route counters (`[thread][route stats_index]`).
pub const ROUTE_TO: &str = "/net/route/to";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_thread_sums_columns_and_reads_zero_beyond_rows() {
        let pt = PerThread::new(vec![vec![1, 2], vec![10, 20, 30]]);
        assert_eq!(pt.threads(), 2);
        assert_eq!(pt.sum(1), 22);
        assert_eq!(pt.sum(2), 30, "thread 0 has no column 2: it counts as 0");
        assert_eq!(pt.column(2), vec![0, 30]);
        assert_eq!(pt.get(5, 0), 0);
        assert_eq!(pt.thread(5), &[] as &[u64]);
        let c = PerThread::new(vec![
            vec![Counter {
                packets: 1,
                bytes: 2,
            }],
            vec![Counter {
                packets: 3,
                bytes: 4,
            }],
        ]);
        assert_eq!(
            c.sum(0),
            Counter {
                packets: 4,
                bytes: 6
            }
        );
    }

    #[test]
    fn sums_wrap_at_two_to_the_64_as_vpp_counters_do() {
        let pt = PerThread::new(vec![vec![u64::MAX], vec![2], vec![u64::MAX]]);
        assert_eq!(pt.sum(0), u64::MAX.wrapping_add(2).wrapping_add(u64::MAX));
        let big = Counter {
            packets: u64::MAX,
            bytes: u64::MAX - 1,
        };
        let c = PerThread::new(vec![vec![big], vec![big]]);
        assert_eq!(
            c.sum(0),
            Counter {
                packets: u64::MAX - 1,
                bytes: u64::MAX - 3
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn sums_never_panic_and_equal_the_wrapping_fold(
            rows in proptest::collection::vec(proptest::collection::vec(proptest::num::u64::ANY, 0..4), 0..6),
            index in 0usize..5,
        ) {
            let want = rows
                .iter()
                .map(|r| r.get(index).copied().unwrap_or(0))
                .fold(0u64, u64::wrapping_add);
            let pt = PerThread::new(rows);
            proptest::prop_assert_eq!(pt.sum(index), want);
        }
    }

    #[test]
    fn entry_kinds_round_trip_their_numbers() {
        for raw in 0..12 {
            assert_eq!(EntryKind::from_raw(raw).raw(), raw);
        }
        assert_eq!(EntryKind::from_raw(9), EntryKind::Gauge);
        assert_eq!(EntryKind::from_raw(77), EntryKind::Unknown(77));
    }

    #[test]
    fn lb_counter_names_are_the_plugin_display_names() {
        let names: Vec<&str> = LbCounter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "packet from existing sessions",
                "first session packet",
                "untracked packet",
                "no server configured"
            ]
        );
    }
}
