//! Generated AS sets and the check that what VPP (or the simulator)
//! reports per AS is the new-flow table maglev predicts: shared by
//! `table_prediction.rs` (simulator) and `client_live.rs` (a real VPP).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::dataplane::VipKey;
use maglev_core::maglev::MaglevTable;
use maglev_vpp::lb::ops::LbSnapshot;

/// SplitMix64: a seeded generator for test loops, so a failure names the
/// seed that reproduces it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// `n` distinct AS addresses of one family, in documentation ranges
/// (`198.51.100.0/24`, at most 254; `2001:db8:ffff::/48` with random
/// low bits), in random order.
pub fn as_addresses(rng: &mut Rng, v6: bool, n: usize) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(n);
    assert!(v6 || n <= 254, "198.51.100.0/24 holds 254 hosts");
    while out.len() < n {
        let a = if v6 {
            let low = u128::from(rng.next_u64()) | (u128::from(rng.below(1 << 16)) << 64);
            IpAddr::V6(Ipv6Addr::from((0x2001_0db8_ffff_u128 << 80) | low))
        } else {
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + rng.below(254) as u8))
        };
        if seen.insert(a) {
            out.push(a);
        }
    }
    out
}

/// A weight as an operator sets them: mostly 100, sometimes 0 (drained),
/// otherwise anything in 1..=100.
pub fn weight(rng: &mut Rng) -> u8 {
    match rng.below(10) {
        0..=3 => 100,
        4 => 0,
        _ => 1 + rng.below(100) as u8,
    }
}

/// Asserts that `snap` holds VIP `key` with a table of `len` buckets and
/// exactly the live ASes `ases` (address → weight), that each AS's
/// `num_buckets` is its share of [`MaglevTable::build`]`(ases, len)`, that
/// they add up to `len` (0 when no AS has a weight), and that
/// [`LbSnapshot::bucket_drift`] is 0 for it. `what` names the case in
/// failure messages.
pub fn assert_predicted(
    snap: &LbSnapshot,
    key: &VipKey,
    len: u32,
    ases: &BTreeMap<IpAddr, u8>,
    what: &str,
) {
    let vip = snap
        .vips
        .iter()
        .find(|v| v.key == *key)
        .unwrap_or_else(|| panic!("{what}: VIP {key:?} not in the snapshot"));
    assert_eq!(vip.table_len, len, "{what}: table length of {key:?}");
    let predicted = MaglevTable::build(ases.iter().map(|(&a, &w)| (a, w)), len as usize)
        .unwrap()
        .counts();
    let reported: BTreeMap<IpAddr, (u8, u32)> = snap
        .ases
        .iter()
        .filter(|a| a.vip == *key)
        .map(|a| (a.address, (a.weight, a.num_buckets)))
        .collect();
    let want: BTreeMap<IpAddr, (u8, u32)> = ases
        .iter()
        .map(|(&a, &w)| (a, (w, predicted.get(&a).copied().unwrap_or(0))))
        .collect();
    assert_eq!(
        reported, want,
        "{what}: (weight, num_buckets) per AS of {key:?}"
    );
    let total: u64 = reported.values().map(|&(_, b)| u64::from(b)).sum();
    let serving = ases.values().any(|&w| w > 0);
    assert_eq!(
        total,
        if serving { u64::from(len) } else { 0 },
        "{what}: buckets of {key:?} add up"
    );
    assert_eq!(
        snap.bucket_drift().get(key),
        Some(&0),
        "{what}: bucket_drift of {key:?}"
    );
}
