//! Predicting VPP's Maglev new-flow table ([`MaglevTable`]): one table,
//! and one change (the table after + [`MaglevTable::movement`] against the
//! one before), at 65,536 buckets × 1,000 ASes of weight 100 (the change
//! drains one AS), and at 1,024 buckets × 16 ASes for reference. Figures
//! go to `docs/performance.md`, "Maglev table predictions":
//!
//! ```sh
//! cargo bench -p maglev-benches --bench maglev_table
//! ```

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use maglev_core::maglev::MaglevTable;

/// `n` ASes `10.0.0.1..` of weight 100, the one at `drained` at weight 0.
fn ases(n: u32, drained: Option<u32>) -> Vec<(IpAddr, u8)> {
    (1..=n)
        .map(|i| {
            let w = if Some(i) == drained { 0 } else { 100 };
            (IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), w)
        })
        .collect()
}

fn case(c: &mut Criterion, len: usize, n: u32, sample_size: usize) {
    let before_ases = ases(n, None);
    let after_ases = ases(n, Some(n / 2));
    let before = MaglevTable::build(before_ases.iter().copied(), len).unwrap();
    let mut g = c.benchmark_group(format!("maglev table {len}x{n}"));
    g.sample_size(sample_size);
    g.bench_function("build", |b| {
        b.iter(|| {
            black_box(MaglevTable::build(black_box(before_ases.iter().copied()), len).unwrap())
        })
    });
    g.bench_function("change: build after + movement", |b| {
        b.iter(|| {
            let after = MaglevTable::build(black_box(after_ases.iter().copied()), len).unwrap();
            let m = before.movement(&after);
            assert!(!m.recreated && m.moved > 0);
            black_box(m)
        })
    });
    g.finish();
}

fn maglev_table(c: &mut Criterion) {
    case(c, 65_536, 1000, 20);
    case(c, 1024, 16, 100);
}

criterion_group!(benches, maglev_table);
criterion_main!(benches);
