//! The model of VPP's Maglev new-flow table (the `lb` plugin's
//! `lb_vip_update_new_flow_table`), to predict bucket shares and how many
//! flows a change moves.
//!
//! The table has a power-of-two number of buckets (1024 for the VIPs
//! maglev creates); each bucket names the AS that new flows hashing to it
//! go to. VPP fills it like this, and so does [`MaglevTable::build`]:
//!
//! 1. every AS with weight `w > 0` contributes `w` entries, one per
//!    replica `0..w`;
//! 2. the entries are sorted by (replica, address), with addresses
//!    compared as VPP's 16-byte `ip46_address_t` (an IPv4 address is 12
//!    zero bytes then its 4 bytes), so the result does not depend on the
//!    order ASes were added;
//! 3. each entry gets a permutation from a 64-bit hash of its address and
//!    replica: the low 32 bits (forced odd) are the `skip`, the high 32
//!    bits the first bucket `offset`, both masked to the table size;
//! 4. round-robin over the sorted entries, each takes the next free bucket
//!    on its permutation, until every bucket is taken.
//!
//! With no AS of non-zero weight, every bucket is unassigned (VPP points
//! them at its drop AS and counts "no server configured").
//!
//! The hash is `clib_xxhash` of `as_u64[0] ^ as_u64[1] ^ replica`, where
//! `as_u64` are the two halves of the address read as native (little-
//! endian) 64-bit words, as on every host VPP runs on.
//!
//! Because entries take buckets round-robin, equal weights share a table
//! within one bucket each: with `n` equal ASes every AS gets `⌊len/n⌋` or
//! `⌈len/n⌉` buckets. The imbalance is that rounding, so a table of more
//! than [`BUCKETS_PER_MEMBER`] buckets per AS keeps the busiest AS within
//! 1 % of its share ([`auto_table_len`]).
//!
//! On top of the fill: [`MaglevTable::fingerprint`], a stable hash that
//! proves two routers hold the same table, and [`MaglevTable::movement`],
//! which buckets a change moves from which AS to which.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The new-flow table length of a VIP whose frontend sets none (the
/// original's, and VPP's CLI default).
pub const DEFAULT_TABLE_LEN: usize = 1024;

/// The longest table maglev creates. VPP takes any power of two, but
/// reports lengths of 65,536 and more as 0 in `lb_vip_dump` (a 16-bit
/// field); 65,536 buckets already hold 655 equal ASes within 1 %.
pub const MAX_TABLE_LEN: usize = 65_536;

/// Buckets per pool member that `flow-table-length: auto` asks for: the
/// Maglev paper's "more than 100 times the backends" for at most 1 %
/// imbalance.
pub const BUCKETS_PER_MEMBER: usize = 100;

/// The table length `auto` picks for `members` pool members: the smallest
/// power of two of at least [`BUCKETS_PER_MEMBER`] buckets per member,
/// at most [`MAX_TABLE_LEN`].
pub fn auto_table_len(members: usize) -> usize {
    members
        .max(1)
        .saturating_mul(BUCKETS_PER_MEMBER)
        .checked_next_power_of_two()
        .unwrap_or(MAX_TABLE_LEN)
        .min(MAX_TABLE_LEN)
}

/// Bits of [`MaglevTable::fingerprint`]: few enough to be exact in a
/// Prometheus sample (a float64 holds integers of 53 bits).
pub const FINGERPRINT_BITS: u32 = 48;

/// A filled new-flow table: for each bucket, the AS it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    buckets: Vec<Option<IpAddr>>,
}

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaglevError {
    /// The length is not a power of two (VPP's -70).
    #[error("table length {0} is not a non-zero power of two")]
    BadLength(usize),
}

impl MaglevTable {
    /// Fills a table of `len` buckets from `(address, weight)` pairs, as VPP
    /// does. Pairs with weight 0 take no bucket; a repeated address counts
    /// once (its last weight), as VPP keeps one AS per address and VIP.
    pub fn build(
        ases: impl IntoIterator<Item = (IpAddr, u8)>,
        len: usize,
    ) -> Result<MaglevTable, MaglevError> {
        if len == 0 || !len.is_power_of_two() {
            return Err(MaglevError::BadLength(len));
        }
        let ases: BTreeMap<[u8; 16], (IpAddr, u8)> =
            ases.into_iter().map(|(a, w)| (ip46(a), (a, w))).collect();
        let mask = (len - 1) as u64;
        // Sorted by (replica, ip46 bytes): BTreeMap iteration gives the
        // address order, the outer loop the replica order.
        let max_weight = ases.values().map(|&(_, w)| w).max().unwrap_or(0);
        let mut entries: Vec<Entry> = Vec::new();
        for replica in 0..u32::from(max_weight) {
            for (raw, &(address, weight)) in &ases {
                if replica < u32::from(weight) {
                    let (lo, hi) = halves(raw);
                    let seed = xxhash(lo ^ hi ^ u64::from(replica));
                    entries.push(Entry {
                        address,
                        skip: ((seed & 0xffff_ffff) | 1) & mask,
                        next: (seed >> 32) & mask,
                    });
                }
            }
        }
        let mut buckets = vec![None; len];
        if entries.is_empty() {
            return Ok(MaglevTable { buckets });
        }
        let mut filled = 0;
        'fill: loop {
            for e in &mut entries {
                loop {
                    let b = e.next as usize;
                    e.next = (e.next + e.skip) & mask;
                    if buckets[b].is_none() {
                        buckets[b] = Some(e.address);
                        break;
                    }
                }
                filled += 1;
                if filled == len {
                    break 'fill;
                }
            }
        }
        Ok(MaglevTable { buckets })
    }

    /// The buckets, in order: the AS each points at (None: drop).
    pub fn buckets(&self) -> &[Option<IpAddr>] {
        &self.buckets
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether the table has no bucket (never, for a built table).
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Buckets per AS (ASes with none are absent).
    pub fn counts(&self) -> BTreeMap<IpAddr, u32> {
        let mut counts = BTreeMap::new();
        for a in self.buckets.iter().flatten() {
            *counts.entry(*a).or_insert(0) += 1;
        }
        counts
    }

    /// The share of new flows going to `address` (0.0..=1.0).
    pub fn share(&self, address: IpAddr) -> f64 {
        let n = self.buckets.iter().filter(|b| **b == Some(address)).count();
        n as f64 / self.buckets.len() as f64
    }

    /// How many buckets point at a different AS in `other`: the new flows
    /// (and, for flows without a sticky entry, established ones) that a
    /// change from `self` to `other` moves. Tables of different lengths
    /// differ in every bucket.
    pub fn moved(&self, other: &MaglevTable) -> usize {
        if self.len() != other.len() {
            return self.len().max(other.len());
        }
        self.buckets
            .iter()
            .zip(&other.buckets)
            .filter(|(a, b)| a != b)
            .count()
    }
}

impl MaglevTable {
    /// A stable 48-bit hash of the table: equal on two routers exactly
    /// when their tables send every bucket to the same AS.
    ///
    /// FNV-1a (64-bit) over the length as 4 little-endian bytes, then each
    /// bucket's AS as its 16 `ip46` bytes ([`ip46`]; 16 zero bytes for a
    /// bucket that drops), keeping the low [`FINGERPRINT_BITS`] bits. It
    /// depends only on the buckets, never on the order ASes were added or
    /// on maglev's version.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv48::new();
        let len = u32::try_from(self.buckets.len()).unwrap_or(u32::MAX);
        h.eat(&len.to_le_bytes());
        for bucket in &self.buckets {
            h.eat(&bucket.map(ip46).unwrap_or([0; 16]));
        }
        h.finish()
    }

    /// What changing this table into `after` does to new flows: which
    /// buckets move from which AS to which. Tables of different lengths
    /// (a recreated VIP) move every bucket, and their transfers are not
    /// meaningful: [`Movement::recreated`] says so.
    pub fn movement(&self, after: &MaglevTable) -> Movement {
        let len = after.len();
        if self.len() != after.len() {
            return Movement {
                len,
                moved: len,
                recreated: true,
                transfers: BTreeMap::new(),
            };
        }
        let mut transfers = BTreeMap::new();
        for (from, to) in self.buckets.iter().zip(&after.buckets) {
            if from != to {
                *transfers.entry((*from, *to)).or_insert(0u32) += 1;
            }
        }
        Movement {
            len,
            moved: transfers.values().map(|&n| n as usize).sum(),
            recreated: false,
            transfers,
        }
    }
}

/// The buckets a table change moves ([`MaglevTable::movement`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movement {
    /// Buckets of the table after the change.
    pub len: usize,
    /// Buckets that point at another AS after the change.
    pub moved: usize,
    /// The table was replaced by one of another length (the VIP is
    /// recreated): every bucket moves, and established flows lose their
    /// sticky entries too.
    pub recreated: bool,
    /// Buckets moved, by (from, to); `None` is the drop AS (no AS of
    /// non-zero weight).
    pub transfers: BTreeMap<(Option<IpAddr>, Option<IpAddr>), u32>,
}

impl Movement {
    /// The share of new flows that go elsewhere after the change
    /// (0.0..=1.0).
    pub fn share(&self) -> f64 {
        if self.len == 0 {
            0.0
        } else {
            self.moved as f64 / self.len as f64
        }
    }
}

/// FNV-1a (64-bit) kept to its low [`FINGERPRINT_BITS`] bits: the hash
/// of every maglev fingerprint (tables here, configs in
/// [`crate::config::fingerprint`]).
pub(crate) struct Fnv48(u64);

impl Fnv48 {
    /// The hash of nothing yet.
    pub(crate) fn new() -> Fnv48 {
        Fnv48(0xcbf2_9ce4_8422_2325)
    }

    /// Feeds `bytes`.
    pub(crate) fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The low [`FINGERPRINT_BITS`] bits of the hash.
    pub(crate) fn finish(&self) -> u64 {
        self.0 & ((1 << FINGERPRINT_BITS) - 1)
    }
}

struct Entry {
    address: IpAddr,
    skip: u64,
    next: u64,
}

/// The 16 bytes of VPP's `ip46_address_t` for `a` (IPv4 is 12 zero bytes
/// then the address): what the table hashes and sorts by, and how VPP keys
/// VIP prefixes internally.
pub fn ip46(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[12..].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// `as_u64[0]`, `as_u64[1]` of an `ip46_address_t` on a little-endian host.
fn halves(raw: &[u8; 16]) -> (u64, u64) {
    let lo = u64::from_le_bytes(raw[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(raw[8..].try_into().expect("8 bytes"));
    (lo, hi)
}

const PRIME64_1: u64 = 11_400_714_785_074_694_791;
const PRIME64_2: u64 = 14_029_467_366_897_019_727;
const PRIME64_3: u64 = 1_609_587_929_392_839_161;
const PRIME64_4: u64 = 9_650_029_242_287_828_579;
const PRIME64_5: u64 = 2_870_177_450_012_600_261;

/// VPP's `clib_xxhash`: the xxHash64 finalisation of one 64-bit key with
/// seed 0 and length 8.
fn xxhash(key: u64) -> u64 {
    let k1 = key
        .wrapping_mul(PRIME64_2)
        .rotate_left(31)
        .wrapping_mul(PRIME64_1);
    let mut h = 0x9e37_79b9_7f4a_7c13_u64
        .wrapping_add(PRIME64_5)
        .wrapping_add(8);
    h ^= k1;
    h = h
        .rotate_left(27)
        .wrapping_mul(PRIME64_1)
        .wrapping_add(PRIME64_4);
    h ^= h >> 33;
    h = h.wrapping_mul(PRIME64_2);
    h ^= h >> 29;
    h = h.wrapping_mul(PRIME64_3);
    h ^= h >> 32;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn counts(ases: &[(&str, u8)]) -> Vec<u32> {
        let t =
            MaglevTable::build(ases.iter().map(|&(a, w)| (ip(a), w)), DEFAULT_TABLE_LEN).unwrap();
        let c = t.counts();
        ases.iter()
            .map(|(a, _)| c.get(&ip(a)).copied().unwrap_or(0))
            .collect()
    }

    /// `lb_as_v2_dump` of the real VPP in `fixtures/vpp-26.10/api-capture.jsonl`.
    #[test]
    fn matches_real_vpp_capture() {
        assert_eq!(counts(&[("10.1.0.2", 100), ("10.1.0.1", 99)]), [514, 510]);
        assert_eq!(counts(&[("10.2.0.1", 100), ("10.2.0.2", 0)]), [1024, 0]);
        assert_eq!(counts(&[("2001:db8:2::1", 100)]), [1024]);
    }

    /// `show lb vips verbose` of the real VPP in `statseg-w1.expected.json`.
    #[test]
    fn matches_real_vpp_statseg() {
        assert_eq!(
            counts(&[("10.1.0.3", 100), ("10.1.0.2", 100), ("10.1.0.1", 100)]),
            [341, 341, 342]
        );
        assert_eq!(
            counts(&[("2001:db8:1::2", 100), ("2001:db8:1::1", 100)]),
            [512, 512]
        );
    }

    #[test]
    fn independent_of_insertion_order_and_zero_weights() {
        let a = MaglevTable::build([(ip("10.0.0.1"), 30), (ip("10.0.0.2"), 70)], 1024).unwrap();
        let b = MaglevTable::build(
            [
                (ip("10.0.0.9"), 0),
                (ip("10.0.0.2"), 70),
                (ip("10.0.0.1"), 30),
            ],
            1024,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.moved(&b), 0);
        assert_eq!(a.counts().values().sum::<u32>(), 1024);
    }

    #[test]
    fn empty_and_bad_lengths() {
        let t = MaglevTable::build([(ip("10.0.0.1"), 0)], 8).unwrap();
        assert!(t.buckets().iter().all(Option::is_none));
        assert_eq!(
            MaglevTable::build([], 1000),
            Err(MaglevError::BadLength(1000))
        );
        assert_eq!(MaglevTable::build([], 0), Err(MaglevError::BadLength(0)));
        let one = MaglevTable::build([(ip("10.0.0.1"), 1)], 1).unwrap();
        assert_eq!(one.buckets(), [Some(ip("10.0.0.1"))]);
    }

    #[test]
    fn auto_lengths() {
        assert_eq!(auto_table_len(0), 128);
        assert_eq!(auto_table_len(1), 128);
        assert_eq!(auto_table_len(10), 1024);
        assert_eq!(auto_table_len(11), 2048);
        assert_eq!(auto_table_len(300), 32_768);
        assert_eq!(auto_table_len(655), 65_536);
        assert_eq!(auto_table_len(10_000), MAX_TABLE_LEN);
        assert_eq!(auto_table_len(usize::MAX), MAX_TABLE_LEN);
    }

    #[test]
    fn fingerprints_follow_the_buckets() {
        let a = MaglevTable::build([(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 100)], 1024).unwrap();
        let b = MaglevTable::build([(ip("10.0.0.2"), 100), (ip("10.0.0.1"), 100)], 1024).unwrap();
        let c = MaglevTable::build([(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 99)], 1024).unwrap();
        let d = MaglevTable::build([(ip("10.0.0.1"), 100), (ip("10.0.0.2"), 100)], 2048).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_ne!(a.fingerprint(), d.fingerprint());
        assert!(a.fingerprint() < 1 << FINGERPRINT_BITS);
        // Pinned: a change here breaks the cross-node comparison between
        // routers running different maglev versions.
        let drop = MaglevTable::build([], 4).unwrap();
        assert_eq!(drop.fingerprint(), 0xb875_ebc9_92b1);
    }

    #[test]
    fn movement_names_who_loses_to_whom() {
        let three = [
            (ip("10.0.0.1"), 100),
            (ip("10.0.0.2"), 100),
            (ip("10.0.0.3"), 100),
        ];
        let before = MaglevTable::build(three, 1024).unwrap();
        let after = MaglevTable::build([three[0], three[1], (ip("10.0.0.3"), 0)], 1024).unwrap();
        let m = before.movement(&after);
        assert!(!m.recreated);
        let lost = before.counts()[&ip("10.0.0.3")];
        let from_3: u32 = m
            .transfers
            .iter()
            .filter(|((from, _), _)| *from == Some(ip("10.0.0.3")))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(from_3, lost);
        assert!(
            m.transfers
                .keys()
                .all(|(_, to)| *to != Some(ip("10.0.0.3")))
        );
        assert_eq!(m.moved, m.transfers.values().sum::<u32>() as usize);
        let bigger = MaglevTable::build(three, 2048).unwrap();
        let r = before.movement(&bigger);
        assert!(r.recreated);
        assert_eq!((r.moved, r.share()), (2048, 1.0));
    }

    #[test]
    fn draining_one_as_moves_only_its_buckets() {
        let before = MaglevTable::build(
            [
                (ip("10.0.0.1"), 100),
                (ip("10.0.0.2"), 100),
                (ip("10.0.0.3"), 100),
            ],
            1024,
        )
        .unwrap();
        let after = MaglevTable::build(
            [
                (ip("10.0.0.1"), 100),
                (ip("10.0.0.2"), 100),
                (ip("10.0.0.3"), 0),
            ],
            1024,
        )
        .unwrap();
        let gone = before.counts()[&ip("10.0.0.3")] as usize;
        assert!(after.moved(&before) >= gone);
        assert!(after.share(ip("10.0.0.3")) == 0.0);
    }
}
