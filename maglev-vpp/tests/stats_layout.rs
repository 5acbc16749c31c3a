//! A hand-made segment, byte by byte as `VPP-WIRE.md` D.2–D.5 describes
//! it, read back by the reader; and the simulator's header and vectors
//! checked against the same description.

use maglev_vpp::stats::{Counter, EntryKind, StatSegment, StatValue};

const BASE: u64 = 0x7fbb_7e12_3000; // VPP's address of the segment start

/// A little-endian image under construction.
struct Image(Vec<u8>);

impl Image {
    fn u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn name(&mut self, at: usize, s: &str) {
        self.0[at..at + s.len()].copy_from_slice(s.as_bytes());
    }
}

/// Offsets (from the segment start) of what the image holds.
const DIR: usize = 4096 + 64; // directory vector data (vec header at -8)
const THREADS: usize = 8192 + 64; // /net/route/to: vector of 2 row pointers
const ROW0: usize = 8192 + 128; // thread 0 row: 3 × {packets, bytes}
const ROW1: usize = 8192 + 192; // thread 1 row
const NAMES: usize = 8192 + 320; // /if/names: vector of 2 string pointers
const STR0: usize = 8192 + 384; // "local0\0"

#[cfg(target_endian = "little")]
fn hand_made() -> Vec<u8> {
    let mut m = Image(vec![0u8; 16 * 1024]);
    // D.2 header
    m.u64(0, 2); //                        version
    m.u64(8, BASE); //                     base
    m.u64(16, 7); //                       epoch
    m.u64(24, 0); //                       in_progress
    m.u64(32, BASE + DIR as u64); //       directory_vector
    //                                     @40: 0 (no error vector)

    // D.3 directory: vec header, then 144-byte entries
    m.u32(DIR - 8, 5); //                  vec len = 5 entries
    // entry 0: SCALAR_INDEX /sys/heartbeat = 42
    m.u32(DIR, 1); //                      type
    m.u64(DIR + 8, 42); //                 value
    m.name(DIR + 16, "/sys/heartbeat"); // name[128]
    // entry 1: COUNTER_VECTOR_COMBINED /net/route/to
    let e1 = DIR + 144;
    m.u32(e1, 3);
    m.u64(e1 + 8, BASE + THREADS as u64); // data: vector of thread rows
    m.name(e1 + 16, "/net/route/to");
    // entry 2: EMPTY (deleted; name zeroed, union = free-list link)
    m.u32(DIR + 288, 5);
    m.u64(DIR + 288 + 8, u64::from(u32::MAX));
    // entry 3: SYMLINK "/routes/2" -> entry 1, column 2
    let e3 = DIR + 432;
    m.u32(e3, 6);
    m.u32(e3 + 8, 1); //                   index1: directory entry
    m.u32(e3 + 12, 2); //                  index2: column
    m.name(e3 + 16, "/routes/2");
    // entry 4: NAME_VECTOR /if/names
    let e4 = DIR + 576;
    m.u32(e4, 4);
    m.u64(e4 + 8, BASE + NAMES as u64);
    m.name(e4 + 16, "/if/names");

    // D.4/D.5 /net/route/to: 2 threads × 3 cells of {packets, bytes}
    m.u32(THREADS - 8, 2);
    m.u64(THREADS, BASE + ROW0 as u64);
    m.u64(THREADS + 8, BASE + ROW1 as u64);
    m.u32(ROW0 - 8, 3);
    m.u64(ROW0 + 32, 5); //                [0][2].packets
    m.u64(ROW0 + 40, 500); //              [0][2].bytes
    m.u32(ROW1 - 8, 3);
    m.u64(ROW1 + 16, 1); //                [1][1].packets
    m.u64(ROW1 + 24, 64); //               [1][1].bytes
    m.u64(ROW1 + 32, 10); //               [1][2].packets
    m.u64(ROW1 + 40, 1000); //             [1][2].bytes

    // /if/names: ["local0", unused]
    m.u32(NAMES - 8, 2);
    m.u64(NAMES, BASE + STR0 as u64);
    m.u64(NAMES + 8, 0); //                null: unused slot
    m.u32(STR0 - 8, 7); //                 vec len includes the NUL
    m.name(STR0, "local0");
    m.0
}

#[cfg(target_endian = "little")]
#[test]
fn hand_made_segment_reads_as_specified() {
    let seg = StatSegment::from_bytes(&hand_made()).unwrap();
    assert_eq!(seg.base(), BASE);
    assert_eq!(seg.epoch(), 7);
    assert_eq!(seg.directory_len().unwrap(), 5);
    let names: Vec<(u32, String, EntryKind)> = seg
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.index, e.name, e.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            (0, "/sys/heartbeat".into(), EntryKind::Scalar),
            (1, "/net/route/to".into(), EntryKind::Combined),
            (3, "/routes/2".into(), EntryKind::Symlink),
            (4, "/if/names".into(), EntryKind::NameVector),
        ]
    );
    assert_eq!(seg.heartbeat().unwrap(), 42);
    let rt = seg.combined("/net/route/to").unwrap();
    assert_eq!(rt.threads(), 2);
    assert_eq!(
        rt.sum(2),
        Counter {
            packets: 15,
            bytes: 1500
        }
    );
    assert_eq!(
        rt.get(1, 1),
        Counter {
            packets: 1,
            bytes: 64
        }
    );
    assert_eq!(rt.get(1, 3), Counter::default(), "beyond the row reads 0");
    assert_eq!(
        seg.read("/routes/2").unwrap(),
        StatValue::CombinedColumn(vec![
            Counter {
                packets: 5,
                bytes: 500
            },
            Counter {
                packets: 10,
                bytes: 1000
            }
        ])
    );
    assert_eq!(
        seg.names("/if/names").unwrap(),
        vec![Some("local0".into()), None]
    );
    assert_eq!(seg.read_index(2).unwrap().1, StatValue::Empty);
}

#[cfg(all(feature = "sim", target_endian = "little"))]
#[test]
fn simulator_writes_the_same_layout() {
    use std::io::Read;

    use maglev_vpp::stats::sim::{SIM_BASE, SimStats};
    let stats = SimStats::with_size(1, 256 * 1024).unwrap();
    stats.add_vip(1, 8).unwrap();
    let mut img = Vec::new();
    std::fs::File::from(stats.fd().unwrap())
        .read_to_end(&mut img)
        .unwrap();
    let word = |at: usize| u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
    let half = |at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap());
    assert_eq!(word(0), 2, "version");
    assert_eq!(word(8), SIM_BASE, "base");
    assert!(word(16) > 1, "epoch moved with every registration");
    assert_eq!(word(24), 0, "in_progress");
    assert_eq!(word(40), 0, "no error vector");
    let dir = (word(32) - SIM_BASE) as usize;
    assert!(
        dir >= 4096 && dir.is_multiple_of(64),
        "directory in the heap, cache-line aligned"
    );
    // vec header: len, hdr_size 1 (8 bytes), log2_align 6 (64 bytes)
    let n = half(dir - 8) as usize;
    assert_eq!((img[dir - 4], img[dir - 3]), (1, 6));
    let name = |e: usize| {
        let raw = &img[e + 16..e + 144];
        String::from_utf8(raw[..raw.iter().position(|&b| b == 0).unwrap()].to_vec()).unwrap()
    };
    assert_eq!(name(dir), "/sys/heartbeat");
    assert_eq!(half(dir), 1, "SCALAR_INDEX");
    let lb = (0..n)
        .map(|i| dir + 144 * i)
        .find(|&e| name(e) == "first session packet")
        .unwrap();
    assert_eq!(half(lb), 2, "COUNTER_VECTOR_SIMPLE");
    let threads = (word(lb + 8) - SIM_BASE) as usize;
    assert_eq!(half(threads - 8), 2, "main + 1 worker");
    let row = (word(threads + 8) - SIM_BASE) as usize;
    assert!(row.is_multiple_of(64), "rows cache-line aligned");
    assert_eq!(half(row - 8), 2, "grown to pool index + 1");
}

/// The fuzzer's seed segment is valid and reads as described.
#[test]
fn fuzz_seed_segment_is_valid() {
    use maglev_vpp::stats::{LbCounter, ROUTE_TO, fuzzing};
    let seg = StatSegment::from_bytes(&fuzzing::seed()).unwrap();
    assert_eq!(seg.directory_len().unwrap(), 6);
    assert_eq!(seg.heartbeat().unwrap(), 5);
    assert_eq!(seg.simple(LbCounter::FirstPacket.name()).unwrap().sum(1), 9);
    assert_eq!(
        seg.combined(ROUTE_TO).unwrap().sum(1),
        Counter {
            packets: 4,
            bytes: 400
        }
    );
    assert_eq!(
        seg.names("/if/names").unwrap(),
        vec![Some("local0".into()), None]
    );
    assert_eq!(
        seg.read("/link").unwrap(),
        StatValue::CombinedColumn(vec![
            Counter::default(),
            Counter {
                packets: 4,
                bytes: 400
            }
        ])
    );
}
