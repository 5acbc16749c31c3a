//! Properties of the model of VPP's Maglev new-flow table
//! ([`maglev_core::maglev`]), over generated AS sets, weights and table
//! lengths: buckets add up, every AS is served, what removing an AS moves,
//! the balance `flow-table-length: auto` promises, and the bookkeeping of
//! [`Movement`].
//!
//! Case counts are kept small (the file runs in a few seconds in a debug
//! build); long tables go with fewer ASes, as the fill costs about
//! `len · log(len)` probes.
//!
//! On disruption: Maglev trades minimal disruption for balance (Eisenbud
//! et al., NSDI 2016, §3.4). Removing one of `N` equal ASes moves its own
//! `≈ len/N` buckets plus others between the survivors, because every
//! later pick of the round-robin fill sees a different set of free
//! buckets. Measured on this model (random addresses, weights 1..=100,
//! lengths 2^2..2^16), the extra movement stays below `2.7 · √(N · len)`:
//! so the bound "at most `1.1 · len/N` beyond the removed AS's own" only
//! holds when `len/N` is large next to `√(N · len)`, that is when
//! `len ≥ (2.7/1.1)² · N³ ≈ 6 · N³`.
//! [`removing_one_as_moves_at_most_one_point_one_over_n_beyond_its_own`]
//! asserts it where `len ≥ 8 · N³`, and
//! [`the_one_point_one_over_n_bound_fails_on_the_tables_maglev_uses`] pins
//! where it does not (the default 1,024 buckets with 10 ASes, and `auto`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::maglev::{
    BUCKETS_PER_MEMBER, MAX_TABLE_LEN, MaglevTable, Movement, auto_table_len,
};
use proptest::prelude::*;

/// The `i`-th address of a family: `10.0.0.0 + i` or `2001:db8::/32 + i`.
fn nth(v6: bool, i: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 + u128::from(i),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }
}

/// An address of either family, anywhere in its space (the table hashes
/// the address, so spread-out addresses reach other permutations than
/// consecutive ones).
fn address(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed()
    }
}

/// Most ASes generated with a table of `2^exp` buckets: up to 300 for
/// tables of up to 4,096 buckets, 64 above (a 65,536-bucket table with 300
/// ASes of weight 100 takes a while in a debug build; the bench times it).
fn max_ases(exp: u32) -> usize {
    if exp <= 12 { 300 } else { 64 }
}

/// A table length `2^0..=2^16` and an AS set of one family for it:
/// distinct addresses, weights 0..=100 (0 drains).
fn ases_and_len() -> impl Strategy<Value = (Vec<(IpAddr, u8)>, usize)> {
    (0u32..=16, any::<bool>()).prop_flat_map(|(exp, v6)| {
        (
            prop::collection::btree_map(address(v6), 0u8..=100, 0..=max_ases(exp))
                .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            Just(1usize << exp),
        )
    })
}

/// `n` ASes of weight `w` at spread-out addresses, and a table length of
/// `2^exp`.
fn equal_ases(
    n: std::ops::RangeInclusive<usize>,
    exp: std::ops::RangeInclusive<u32>,
) -> impl Strategy<Value = (Vec<IpAddr>, u8, usize)> {
    (exp, any::<bool>()).prop_flat_map(move |(exp, v6)| {
        let most = (*n.end()).min(max_ases(exp));
        (
            prop::collection::btree_set(address(v6), (*n.start()).min(most)..=most)
                .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
            1u8..=100,
            Just(1usize << exp),
        )
    })
}

/// Buckets per AS, the drop AS (`None`) included.
fn census(t: &MaglevTable) -> BTreeMap<Option<IpAddr>, u32> {
    let mut c = BTreeMap::new();
    for b in t.buckets() {
        *c.entry(*b).or_insert(0) += 1;
    }
    c
}

/// What removing `ases[gone]` from `ases` (all of weight `w`) does: the
/// table before, the movement, and the removed AS's own buckets. Checks
/// that draining (weight 0) and deleting give the same table.
fn remove_one(ases: &[IpAddr], w: u8, len: usize, gone: usize) -> (MaglevTable, Movement, usize) {
    let before = MaglevTable::build(ases.iter().map(|&a| (a, w)), len).unwrap();
    let deleted = MaglevTable::build(
        ases.iter()
            .enumerate()
            .filter(|&(i, _)| i != gone)
            .map(|(_, &a)| (a, w)),
        len,
    )
    .unwrap();
    let drained = MaglevTable::build(
        ases.iter()
            .enumerate()
            .map(|(i, &a)| (a, if i == gone { 0 } else { w })),
        len,
    )
    .unwrap();
    assert_eq!(
        deleted, drained,
        "weight 0 and deletion fill the same table"
    );
    let own = before.counts().get(&ases[gone]).copied().unwrap_or(0) as usize;
    let m = before.movement(&deleted);
    (before, m, own)
}

/// `⌈1.1 · len / n⌉`, in integers: `⌈11 · len / (10 · n)⌉`.
fn one_point_one_over_n(len: usize, n: usize) -> usize {
    (11 * len).div_ceil(10 * n)
}

/// The smallest power-of-two exponent `e` with `2^e ≥ 8 · n³`.
fn cube_exp(n: usize) -> u32 {
    (8 * n * n * n).next_power_of_two().trailing_zeros()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// (a) Every bucket belongs to exactly one AS: the counts add up to
    /// the length when any AS has a weight, and every bucket drops when
    /// none has.
    #[test]
    fn bucket_counts_sum_to_the_length((ases, len) in ases_and_len()) {
        let t = MaglevTable::build(ases.iter().copied(), len).unwrap();
        prop_assert_eq!(t.len(), len);
        let total: u64 = t.counts().values().map(|&n| u64::from(n)).sum();
        if ases.iter().any(|&(_, w)| w > 0) {
            prop_assert_eq!(total, len as u64);
        } else {
            prop_assert_eq!(total, 0);
            prop_assert!(t.buckets().iter().all(Option::is_none));
        }
        // Only ASes of non-zero weight hold buckets.
        let weights: BTreeMap<IpAddr, u8> = ases.iter().copied().collect();
        for a in t.counts().keys() {
            prop_assert!(weights[a] > 0, "{a} has weight 0 but holds buckets");
        }
    }

    /// (b) With no more serving ASes than buckets, each AS of non-zero
    /// weight gets at least one: the first round of the fill gives every
    /// AS's replica 0 a bucket before any replica 1 takes one.
    #[test]
    fn every_serving_as_gets_a_bucket((ases, len) in ases_and_len()) {
        let serving: Vec<IpAddr> =
            ases.iter().filter(|&&(_, w)| w > 0).map(|&(a, _)| a).collect();
        prop_assume!(serving.len() <= len);
        let counts = MaglevTable::build(ases.iter().copied(), len).unwrap().counts();
        for a in &serving {
            prop_assert!(counts.get(a).copied().unwrap_or(0) >= 1, "{a} got no bucket");
        }
    }

    /// (c, what always holds) Removing one of `N` equal ASes (weight 0 or
    /// deletion: the same table) moves every bucket it had, none to it,
    /// and beyond its own at most `3 · √(N · len)` buckets. The last bound
    /// is measured, not proven: over random sets the worst seen was
    /// `2.69 · √(N · len)` (13 ASes of weight 100, 8,192 buckets).
    #[test]
    fn removing_an_as_moves_all_its_buckets_and_a_bounded_rest(
        (ases, w, len) in equal_ases(1..=300, 0..=16),
        pick in any::<prop::sample::Index>(),
    ) {
        let n = ases.len();
        let gone = pick.index(n);
        let (before, m, own) = remove_one(&ases, w, len, gone);
        let removed = Some(ases[gone]);
        let out: u32 = m.transfers.iter().filter(|((f, _), _)| *f == removed).map(|(_, n)| n).sum();
        prop_assert_eq!(out as usize, own, "all of the removed AS's buckets move");
        prop_assert!(m.transfers.keys().all(|(_, to)| *to != removed));
        prop_assert!(m.moved >= own);
        if n == 1 {
            // The last AS goes: every bucket drops.
            prop_assert_eq!((m.moved, own), (len, len));
        }
        let extra = m.moved - own;
        let envelope = 3.0 * ((n * len) as f64).sqrt();
        prop_assert!(
            (extra as f64) <= envelope,
            "N={} len={} w={}: {} moved beyond the removed AS's {}, envelope {:.0}",
            n, len, w, extra, own, envelope
        );
        prop_assert_eq!(before.len(), len);
    }

    /// (c, the 1.1/N bound) Where the table is long enough,
    /// `len ≥ 8 · N³`, removing one of `N` equal ASes moves at most
    /// `⌈1.1 · len/N⌉` buckets beyond the removed AS's own: the survivors
    /// trade less than one AS's share among themselves. (Worst measured
    /// in that domain: 0.91 · len/N, 8 ASes of weight 100 at 4,096
    /// buckets.) `8 · N³ ≤ 65,536` limits this to `N ≤ 20`.
    #[test]
    fn removing_one_as_moves_at_most_one_point_one_over_n_beyond_its_own(
        (ases, w, len) in (1usize..=20).prop_flat_map(|n| equal_ases(n..=n, cube_exp(n)..=16)),
        pick in any::<prop::sample::Index>(),
    ) {
        let n = ases.len();
        prop_assert!(len >= 8 * n * n * n);
        let gone = pick.index(n);
        let (_, m, own) = remove_one(&ases, w, len, gone);
        let bound = one_point_one_over_n(len, n);
        prop_assert!(
            m.moved - own <= bound,
            "N={} len={} w={}: {} moved beyond the removed AS's {}, bound {}",
            n, len, w, m.moved - own, own, bound
        );
    }
}

/// The AS sets before and after a change, and the two table lengths.
type TablePair = (Vec<(IpAddr, u8)>, Vec<(IpAddr, u8)>, usize, usize);

/// Two AS sets and lengths that often give equal tables: the second is
/// the first with some weights changed, some ASes removed or added
/// (maybe none, or only zero weights), and sometimes another length.
fn table_pair() -> impl Strategy<Value = TablePair> {
    (0u32..=12, any::<bool>()).prop_flat_map(|(exp, v6)| {
        (
            prop::collection::btree_map(address(v6), 0u8..=100, 0..=40),
            prop::collection::vec((any::<prop::sample::Index>(), 0u8..=3, 0u8..=100), 0..4),
            prop::collection::vec((address(v6), prop_oneof![Just(0u8), 0u8..=100]), 0..3),
            prop_oneof![4 => Just(exp), 1 => 0u32..=12],
        )
            .prop_map(move |(base, edits, added, exp2)| {
                let before: Vec<(IpAddr, u8)> = base.into_iter().collect();
                let mut after: BTreeMap<IpAddr, u8> = before.iter().copied().collect();
                for (at, kind, weight) in edits {
                    if before.is_empty() {
                        break;
                    }
                    let a = before[at.index(before.len())].0;
                    match kind {
                        0 => {
                            after.remove(&a);
                        }
                        1 => {
                            after.insert(a, 0);
                        }
                        _ => {
                            after.insert(a, weight);
                        }
                    }
                }
                after.extend(added);
                // The order given does not matter to the table: reversed.
                let after: Vec<(IpAddr, u8)> = after.into_iter().rev().collect();
                (before, after, 1usize << exp, 1usize << exp2)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (e) Within one length, `movement` counts each changed bucket once
    /// under its (from, to), never (x, x), so `moved` is the sum of the
    /// transfers; per AS, buckets before − moved out + moved in = buckets
    /// after. A new length recreates: every bucket moves and there are no
    /// transfers (so there `moved` is not their sum). The fingerprints of two tables are equal exactly
    /// when their buckets are.
    #[test]
    fn movement_accounts_for_every_bucket((a, b, len_a, len_b) in table_pair()) {
        let before = MaglevTable::build(a, len_a).unwrap();
        let after = MaglevTable::build(b, len_b).unwrap();
        let m = before.movement(&after);
        prop_assert_eq!(m.len, len_b);
        prop_assert!(m.transfers.keys().all(|(from, to)| from != to));
        prop_assert!(m.transfers.values().all(|&n| n > 0));
        prop_assert!((0.0..=1.0).contains(&m.share()));
        if len_a == len_b {
            prop_assert!(!m.recreated);
            prop_assert_eq!(m.moved, before.moved(&after));
            prop_assert_eq!(m.moved, m.transfers.values().map(|&n| n as usize).sum::<usize>());
            let differing = before
                .buckets()
                .iter()
                .zip(after.buckets())
                .filter(|(x, y)| x != y)
                .count();
            prop_assert_eq!(m.moved, differing);
            let (cb, ca) = (census(&before), census(&after));
            let everyone: std::collections::BTreeSet<Option<IpAddr>> =
                cb.keys().chain(ca.keys()).copied().collect();
            for x in everyone {
                let out: u32 = m.transfers.iter().filter(|((f, _), _)| *f == x).map(|(_, n)| n).sum();
                let into: u32 = m.transfers.iter().filter(|((_, t), _)| *t == x).map(|(_, n)| n).sum();
                let had = cb.get(&x).copied().unwrap_or(0);
                prop_assert_eq!(had - out + into, ca.get(&x).copied().unwrap_or(0), "{:?}", x);
            }
        } else {
            prop_assert!(m.recreated);
            prop_assert_eq!(m.moved, len_b);
            // `moved` counts the longer table's buckets, `movement` the
            // new table's: both say "every bucket", by another measure.
            prop_assert_eq!(before.moved(&after), len_a.max(len_b));
            prop_assert!(m.transfers.is_empty());
        }
        prop_assert_eq!(
            before.fingerprint() == after.fingerprint(),
            before.buckets() == after.buckets(),
            "fingerprints {:#x} {:#x}", before.fingerprint(), after.fingerprint()
        );
        prop_assert_eq!(m.moved == 0, before == after);
    }
}

/// The generator of [`movement_accounts_for_every_bucket`] reaches equal
/// and different tables, and recreations.
#[test]
fn table_pairs_reach_equal_and_different_tables() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut equal, mut different, mut recreated) = (0, 0, 0);
    for _ in 0..200 {
        let (a, b, la, lb) = table_pair().new_tree(&mut runner).unwrap().current();
        let before = MaglevTable::build(a, la).unwrap();
        let after = MaglevTable::build(b, lb).unwrap();
        match (la == lb, before == after) {
            (false, _) => recreated += 1,
            (true, true) => equal += 1,
            (true, false) => different += 1,
        }
    }
    assert!(
        equal >= 20 && different >= 20 && recreated >= 10,
        "equal {equal}, different {different}, recreated {recreated}"
    );
}

/// (d) For every pool size `N` in 1..=300, `auto_table_len(N)` keeps the
/// busiest of `N` equal ASes within 1 % of the average share: max/avg
/// ≤ 1.01 (equal weights share within one bucket, and the length is at
/// least [`BUCKETS_PER_MEMBER`] per AS). Exhaustive, not sampled.
#[test]
fn auto_length_keeps_equal_ases_within_one_percent() {
    let mut worst = (0.0_f64, 0);
    for n in 1..=300u32 {
        let len = auto_table_len(n as usize);
        assert!(len >= BUCKETS_PER_MEMBER * n as usize && len <= MAX_TABLE_LEN);
        let t = MaglevTable::build((1..=n).map(|i| (nth(false, i), 100)), len).unwrap();
        let counts = t.counts();
        assert_eq!(counts.len(), n as usize, "N={n}: every AS has buckets");
        let max = *counts.values().max().unwrap();
        let min = *counts.values().min().unwrap();
        assert!(max - min <= 1, "N={n} len={len}: {min}..={max} buckets");
        let ratio = f64::from(max) / (len as f64 / f64::from(n));
        assert!(ratio <= 1.01, "N={n} len={len}: max/avg {ratio:.4}");
        if ratio > worst.0 {
            worst = (ratio, n);
        }
    }
    // The worst is where the length is closest to 100 per AS.
    assert!(worst.0 > 1.0, "{worst:?}");
}

/// (c, where the 1.1/N bound fails) Pinned figures of tables maglev does
/// create, at addresses `10.0.0.x`. The bound `⌈1.1 · len/N⌉` beyond the
/// removed AS's own buckets is exceeded:
/// - 3 ASes (`.1`, `.4`, `.5`, weight 1), 8 buckets: removing `.5` moves
///   its 2 buckets and 4 more, bound 3 (the fewest ASes that break it);
/// - 6 ASes `.1..=.6` of weight 100, 16 buckets: removing `.1` moves its
///   3 and 5 more, bound 3;
/// - 10 ASes `.1..=.10` of weight 100, the default 1,024 buckets: removing
///   `.2` moves its 103 and 158 more, bound 113: 25 % of new flows move
///   instead of 10 %;
/// - 100 ASes `.1..=.100` of weight 100 at `auto` (16,384 buckets):
///   removing `.96` moves its 163 and 631 more, bound 181.
#[test]
fn the_one_point_one_over_n_bound_fails_on_the_tables_maglev_uses() {
    let range = |n: u32| (1..=n).collect::<Vec<u32>>();
    for (hosts, weight, len, gone, own, extra) in [
        (vec![1, 4, 5], 1, 8, 5, 2, 4),
        (range(6), 100, 16, 1, 3, 5),
        (range(10), 100, 1024, 2, 103, 158),
        (range(100), 100, auto_table_len(100), 96, 163, 631),
    ] {
        let ases: Vec<IpAddr> = hosts.iter().map(|&h| nth(false, h)).collect();
        let at = hosts.iter().position(|&h| h == gone).unwrap();
        let (_, m, got_own) = remove_one(&ases, weight, len, at);
        let n = ases.len();
        assert_eq!(
            (got_own, m.moved - got_own),
            (own, extra),
            "N={n} len={len} removing 10.0.0.{gone}"
        );
        assert!(extra > one_point_one_over_n(len, n));
    }
}

/// [`Movement::share`]: moved / len, 0 for an empty movement, 1 for a
/// recreated table.
#[test]
fn movement_share() {
    assert_eq!(Movement::default().share(), 0.0);
    let quarter = Movement {
        len: 1024,
        moved: 256,
        ..Movement::default()
    };
    assert_eq!(quarter.share(), 0.25);
    let t = MaglevTable::build([(nth(false, 1), 100), (nth(false, 2), 100)], 1024).unwrap();
    assert_eq!(t.movement(&t).share(), 0.0);
    let longer = MaglevTable::build([(nth(false, 1), 100), (nth(false, 2), 100)], 2048).unwrap();
    let r = t.movement(&longer);
    assert!(r.recreated);
    assert_eq!(r.share(), 1.0);
    let half = MaglevTable::build([(nth(false, 1), 100), (nth(false, 2), 0)], 1024).unwrap();
    let m = t.movement(&half);
    assert_eq!(m.share(), m.moved as f64 / 1024.0);
    assert_eq!(m.moved, t.counts()[&nth(false, 2)] as usize);
}
