//! Corrupt segments give exact errors, never a panic, a hang or UB:
//! targeted corruptions of each pointer and length the reader follows,
//! property tests that overwrite random words of a real layout, and the
//! fuzz entry over pseudo-random inputs.
#![cfg(feature = "sim")]

use std::io::Read;

use maglev_vpp::stats::sim::{SIM_BASE, SimStats};
use maglev_vpp::stats::{LbCounter, ROUTE_TO, Scrape, StatSegment, StatsError};
use proptest::prelude::*;

/// A small simulated segment (two threads, three VIPs) as bytes.
fn image() -> Vec<u8> {
    let stats = SimStats::with_size(1, 256 * 1024).unwrap();
    for pool in 1..=3 {
        stats.add_vip(pool, 7 + pool).unwrap();
        stats.set_active(pool, true);
        stats.send(pool, 1, 10 * u64::from(pool), 1000).unwrap();
    }
    let mut bytes = Vec::new();
    std::fs::File::from(stats.fd().unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn word(img: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(img[off..off + 8].try_into().unwrap())
}

fn put(img: &mut [u8], off: usize, v: u64) {
    img[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

fn put32(img: &mut [u8], off: usize, v: u32) {
    img[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Segment offset of a pointer (header word 8 is the base).
fn off(img: &[u8], ptr: u64) -> usize {
    (ptr - word(img, 8)) as usize
}

/// Offset of the directory entry called `name`, read by hand from the
/// layout (VPP-WIRE D.3).
fn entry(img: &[u8], name: &str) -> usize {
    let dir = off(img, word(img, 32));
    let len = u32::from_ne_bytes(img[dir - 8..dir - 4].try_into().unwrap()) as usize;
    (0..len)
        .map(|i| dir + 144 * i)
        .find(|&e| img[e + 16..].starts_with(name.as_bytes()) && img[e + 16 + name.len()] == 0)
        .unwrap()
}

fn open(img: &[u8]) -> StatSegment {
    let mut seg = StatSegment::from_bytes(img).unwrap();
    seg.set_max_attempts(3);
    seg
}

#[test]
fn pristine_image_reads() {
    let seg = open(&image());
    assert_eq!(seg.base(), SIM_BASE);
    assert_eq!(
        seg.simple(LbCounter::NextPacket.name()).unwrap().get(1, 3),
        29
    );
}

#[test]
fn header_checks() {
    let mut img = image();
    put(&mut img, 0, 1);
    assert!(matches!(
        StatSegment::from_bytes(&img),
        Err(StatsError::UnsupportedVersion { found: 1 })
    ));

    let mut img = image();
    put(&mut img, 40, SIM_BASE + 4096);
    assert!(matches!(
        StatSegment::from_bytes(&img),
        Err(StatsError::LegacyLayout { error_vector }) if error_vector == SIM_BASE + 4096
    ));

    assert!(matches!(
        StatSegment::from_bytes(&[2, 0, 0]),
        Err(StatsError::TooSmall { size: 3 })
    ));
}

#[test]
fn directory_pointer_outside_the_segment() {
    let mut img = image();
    let size = img.len();
    put(&mut img, 32, SIM_BASE + (1 << 40));
    let err = open(&img).list().unwrap_err();
    assert!(
        matches!(&err, StatsError::BadPointer { entry, size: s, .. } if entry == "<directory>" && *s == size),
        "{err}"
    );
    put(&mut img, 32, 0);
    assert!(matches!(
        open(&img).find("x"),
        Err(StatsError::BadPointer { pointer: 0, .. })
    ));
}

#[test]
fn directory_length_beyond_the_segment() {
    let mut img = image();
    let dir = off(&img, word(&img, 32));
    put32(&mut img, dir - 8, u32::MAX);
    let err = open(&img).directory_len().unwrap_err();
    assert!(
        matches!(&err, StatsError::BadLength { len, .. } if *len == u64::from(u32::MAX)),
        "{err}"
    );
}

#[test]
fn misaligned_data_pointer() {
    let mut img = image();
    let e = entry(&img, ROUTE_TO);
    let p = word(&img, e + 8);
    put(&mut img, e + 8, p + 3);
    let err = open(&img).combined(ROUTE_TO).unwrap_err();
    assert!(
        matches!(&err, StatsError::Misaligned { entry, what, .. } if entry == ROUTE_TO && what == "thread vector"),
        "{err}"
    );
}

#[test]
fn thread_row_length_beyond_the_segment() {
    let mut img = image();
    let e = entry(&img, ROUTE_TO);
    let threads = off(&img, word(&img, e + 8));
    let row1 = off(&img, word(&img, threads + 8));
    put32(&mut img, row1 - 8, 0x0100_0000);
    let err = open(&img).combined(ROUTE_TO).unwrap_err();
    assert!(
        matches!(&err, StatsError::BadLength { entry, what, len: 0x0100_0000, offset } if entry == ROUTE_TO && what == "thread 1 row" && *offset == row1 as u64),
        "{err}"
    );
    // The scrape fails the same way (and keeps no plan built on it).
    let mut scrape = Scrape::new([1], [8]);
    assert!(matches!(
        scrape.run(&open(&img)),
        Err(StatsError::BadLength { .. })
    ));
}

#[test]
fn thread_row_pointer_before_the_segment() {
    let mut img = image();
    let e = entry(&img, LbCounter::FirstPacket.name());
    let threads = off(&img, word(&img, e + 8));
    put(&mut img, threads, SIM_BASE - 64);
    let err = open(&img)
        .simple(LbCounter::FirstPacket.name())
        .unwrap_err();
    assert!(
        matches!(&err, StatsError::BadPointer { what, .. } if what == "thread 0 row"),
        "{err}"
    );
}

#[test]
fn rows_aliasing_one_huge_vector() {
    let mut img = image();
    let size = img.len();
    let e = entry(&img, ROUTE_TO);
    let threads = off(&img, word(&img, e + 8));
    let row0_ptr = word(&img, threads);
    let row0 = off(&img, row0_ptr);
    assert!(row0 < size / 2);
    put32(&mut img, row0 - 8, ((size - row0) / 16) as u32);
    put(&mut img, threads + 8, row0_ptr);
    let err = open(&img).combined(ROUTE_TO).unwrap_err();
    assert!(
        matches!(&err, StatsError::BadLength { what, .. } if what.starts_with("thread 1 row")),
        "{err}"
    );
}

#[test]
fn too_many_threads() {
    let mut img = image();
    let e = entry(&img, ROUTE_TO);
    let threads = off(&img, word(&img, e + 8));
    put32(&mut img, threads - 8, 5000);
    // 5000 pointers fit in the segment but exceed the thread cap.
    let err = open(&img).combined(ROUTE_TO).unwrap_err();
    assert!(
        matches!(&err, StatsError::BadLength { what, len: 5000, .. } if what == "thread vector"),
        "{err}"
    );
}

#[test]
fn symlink_to_nowhere() {
    let mut img = image();
    let e = entry(&img, "/interfaces/local0/rx");
    put32(&mut img, e + 8, 100_000);
    let err = open(&img).read("/interfaces/local0/rx").unwrap_err();
    assert!(
        matches!(
            err,
            StatsError::BadSymlink {
                target: 100_000,
                column: 0,
                ..
            }
        ),
        "{err}"
    );
    // Pointing at a scalar is not a counter either.
    put32(&mut img, e + 8, 0);
    assert!(matches!(
        open(&img).read("/interfaces/local0/rx"),
        Err(StatsError::BadSymlink { target: 0, .. })
    ));
}

#[test]
fn name_string_pointer_garbage() {
    let mut img = image();
    let e = entry(&img, "/if/names");
    let names = off(&img, word(&img, e + 8));
    put(&mut img, names, 0xdead_beef);
    let err = open(&img).names("/if/names").unwrap_err();
    assert!(
        matches!(&err, StatsError::BadPointer { what, pointer: 0xdead_beef, .. } if what == "name 0"),
        "{err}"
    );
}

#[test]
fn stuck_in_progress_is_busy_not_a_hang() {
    let mut img = image();
    put(&mut img, 24, 1);
    let seg = open(&img);
    assert!(matches!(seg.list(), Err(StatsError::Busy { attempts: 3 })));
    assert!(matches!(
        Scrape::new([1], []).run(&seg),
        Err(StatsError::Busy { attempts: 3 })
    ));
}

/// Offsets of every 8-byte word the reader may follow: header, directory
/// entries' values, and the heap in use.
fn interesting(img: &[u8]) -> usize {
    // The simulator's heap grows from 4096; everything lives below the
    // last non-zero byte.
    img.iter().rposition(|&b| b != 0).unwrap_or(0) / 8 + 1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any word of the layout overwritten with anything: reads end with a
    /// value or an error.
    #[test]
    fn random_word_corruption_never_panics(picks in proptest::collection::vec((any::<u32>(), any::<u64>(), 0u8..4), 1..6)) {
        let mut img = image();
        let words = interesting(&img);
        for (at, value, how) in picks {
            let w = 8 * (at as usize % words);
            let base = word(&img, 8);
            let v = match how {
                // A plausible pointer into (or just outside) the segment.
                0 => base.wrapping_add(value % (img.len() as u64 + 4096)),
                // A length-sized number.
                1 => value % 100_000,
                2 => value,
                _ => value & 0xff,
            };
            if how == 1 {
                put32(&mut img, w, v as u32);
            } else {
                put(&mut img, w, v);
            }
        }
        maglev_vpp::stats::fuzzing::segment(&img);
    }

    /// Counters near 2^64 on every thread: sums wrap as VPP's counters do,
    /// in whole-vector reads, scrapes and the fuzz entry alike.
    #[test]
    fn huge_counter_values_wrap_and_never_panic(
        cells in proptest::collection::vec((u64::MAX - 16..=u64::MAX, any::<u64>()), 4),
    ) {
        let stats = SimStats::with_size(3, 256 * 1024).unwrap();
        stats.add_vip(1, 8).unwrap();
        for (t, &(packets, bytes)) in cells.iter().enumerate() {
            for c in LbCounter::ALL {
                stats.count_lb(c, t, 1, packets).unwrap();
            }
            stats.count_route(8, t, packets, bytes).unwrap();
        }
        let want = cells.iter().fold(0u64, |a, c| a.wrapping_add(c.0));
        let want_bytes = cells.iter().fold(0u64, |a, c| a.wrapping_add(c.1));
        let seg = stats.reader().unwrap();
        prop_assert_eq!(seg.simple(LbCounter::NoServer.name()).unwrap().sum(1), want);
        let route = seg.combined(ROUTE_TO).unwrap().sum(8);
        prop_assert_eq!((route.packets, route.bytes), (want, want_bytes));
        let mut scrape = Scrape::new([1], [8]);
        let snap = scrape.run(&seg).unwrap();
        prop_assert_eq!(snap.vip(1).unwrap().untracked, want);
        prop_assert_eq!(snap.route(8).unwrap().bytes, want_bytes);
        let mut bytes = Vec::new();
        std::fs::File::from(stats.fd().unwrap()).read_to_end(&mut bytes).unwrap();
        maglev_vpp::stats::fuzzing::segment(&bytes);
    }

    /// Same with single bytes, anywhere in the first 64 KiB.
    #[test]
    fn random_byte_corruption_never_panics(picks in proptest::collection::vec((0usize..65536, any::<u8>()), 1..32)) {
        let mut img = image();
        for (at, b) in picks {
            img[at] = b;
        }
        maglev_vpp::stats::fuzzing::segment(&img);
    }
}

/// The fuzz target's entry over a few hundred pseudo-random inputs, so the
/// path runs in every CI (`cargo fuzz` explores further).
#[test]
fn fuzz_entry_over_pseudo_random_inputs() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pristine = image();
    for round in 0..400 {
        if round % 4 == 3 {
            // Patches over the fuzzer's own seed segment.
            let patches: Vec<u8> = (0..10 * (1 + next() % 6)).map(|_| next() as u8).collect();
            maglev_vpp::stats::fuzzing::segment_patched(&patches);
            continue;
        }
        let input = match round % 4 {
            // Pure noise with a valid header (so the reader goes further).
            0 => {
                let len = 48 + (next() % 20_000) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                v[..8].copy_from_slice(&2u64.to_ne_bytes());
                v[40..48].fill(0);
                v
            }
            // Noise with plausible pointers everywhere.
            1 => {
                let len = 8 * (6 + (next() % 4000) as usize);
                let base = 0x7f00_0000_0000u64;
                let mut v = Vec::with_capacity(len);
                for i in 0..len / 8 {
                    let w = match i {
                        0 => 2,
                        1 => base,
                        2 | 3 | 5 => 0,
                        _ if next() % 2 == 0 => base + next() % (len as u64 + 64),
                        _ => next() % 64,
                    };
                    v.extend_from_slice(&w.to_ne_bytes());
                }
                v
            }
            // A real layout with a few words flipped.
            _ => {
                let mut v = pristine.clone();
                let words = interesting(&v);
                for _ in 0..1 + next() % 8 {
                    let w = 8 * (next() as usize % words);
                    let bit = next() % 64;
                    let flipped = word(&v, w) ^ (1 << bit);
                    put(&mut v, w, flipped);
                }
                v
            }
        };
        maglev_vpp::stats::fuzzing::segment(&input);
    }
}
