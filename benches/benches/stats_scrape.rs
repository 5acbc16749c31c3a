//! One stats scrape (`maglev_vpp::stats::Scrape::run`) on a simulated
//! segment, next to the floor (a plain copy of the same cells) and, when a
//! python with `vpp_papi` is given in `MAGLEV_PYTHON`, `vpp_papi` doing the
//! same scrape on the same segment through a real `stats.sock`.
//!
//! ```text
//! MAGLEV_PYTHON=/path/to/venv/bin/python cargo bench -p maglev-benches --bench stats_scrape
//! ```
//!
//! Figures go to `docs/performance.md` ("Stats segment scrape").
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use maglev_core::dataplane::{Protocol, VipKey};
use maglev_vpp::stats::bench_support::PlainCopy;
use maglev_vpp::stats::sim::{self, ServeOptions, SimStats, StatsListener};
use maglev_vpp::stats::{ROUTE_TO, Scrape, StatSegment, VipScrape, VipStatsIndex};

/// A segment with `vips` VIPs (pool indexes 1..=vips) on `threads` threads,
/// `/net/route/to` of `rows` rows with the VIPs' routes at `routes`, and a
/// different non-zero value in every watched cell.
fn segment(vips: u32, threads: usize, rows: usize, routes: &[u32]) -> SimStats {
    // Rows are power-of-two blocks with room to grow: 4 × each row.
    let size = (64 << 20) + (threads * rows * 16 * 4).next_power_of_two();
    let stats = SimStats::with_size(threads - 1, size).expect("segment");
    stats.with_writer(|w| {
        let rt = w.index_of(ROUTE_TO).expect("route/to");
        w.resize(rt, rows).expect("grow route/to");
    });
    for pool in 1..=vips {
        let route = routes[(pool as usize - 1) % routes.len()];
        stats.add_vip(pool, route).expect("vip");
        stats.set_active(pool, true);
    }
    for pool in 1..=vips {
        for t in 0..threads {
            let n = u64::from(pool) + t as u64 + 2;
            stats.send(pool, t, n, n * 100).expect("traffic");
        }
    }
    stats
}

/// Serves `stats` on a temporary `stats.sock` and runs the vpp_papi
/// scrape script against it; prints its figures.
fn papi(
    label: &str,
    stats: &SimStats,
    vips: (u32, u32),
    routes: (u32, u32),
    expect: (u64, u64, u64),
) {
    let Ok(python) = std::env::var("MAGLEV_PYTHON") else {
        eprintln!("vpp_papi {label}: skipped (set MAGLEV_PYTHON to a python with vpp-papi==2.4.2)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("maglev-bench-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("stats.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(async { StatsListener::bind(&path) })
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stats = stats.clone();
    let server = std::thread::spawn(move || {
        let opts = ServeOptions {
            trickle: None,
            heartbeat: None,
        };
        rt.block_on(sim::run(listener, stats, opts, async {
            let _ = stopped.await;
        }))
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/stats_papi_scrape.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(&path)
        .args([vips.0, vips.1, routes.0, routes.1].map(|n| n.to_string()))
        .output()
        .expect("run python");
    let _ = stop.send(());
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        eprintln!(
            "vpp_papi {label}: failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let same = (
        v["lb_sum"].as_u64(),
        v["route_packets"].as_u64(),
        v["route_bytes"].as_u64(),
    ) == (Some(expect.0), Some(expect.1), Some(expect.2));
    eprintln!(
        "vpp_papi {label}: mean {:.1} us, min {:.1} us over {} scrapes (same values as ours: {same})",
        v["mean_us"].as_f64().unwrap_or(f64::NAN),
        v["min_us"].as_f64().unwrap_or(f64::NAN),
        v["iterations"],
    );
}

/// Totals of a snapshot, to check vpp_papi saw the same counters.
fn totals(scrape: &mut Scrape, seg: &StatSegment) -> (u64, u64, u64) {
    let snap = scrape.run(seg).expect("scrape");
    let lb = snap
        .vips()
        .iter()
        .map(|(_, c)| c.next_packet + c.first_packet + c.untracked + c.no_server)
        .sum();
    let pk = snap.routes().iter().map(|(_, c)| c.packets).sum();
    let by = snap.routes().iter().map(|(_, c)| c.bytes).sum();
    (lb, pk, by)
}

fn lb(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats_scrape_lb");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for vips in [1_000u32, 10_000] {
        for threads in [1usize, 4, 16] {
            let stats = segment(vips, threads, 1_000, &[8]);
            let seg = stats.reader().expect("reader");
            let id = format!("{vips}vips_{threads}threads");
            let mut scrape = Scrape::new(1..=vips, []);
            scrape.run(&seg).expect("scrape");
            g.bench_function(BenchmarkId::new("scrape", &id), |b| {
                b.iter(|| black_box(scrape.run(&seg).expect("scrape").vips().len()))
            });
            // The daemon's scrape: the same cells, keyed by VIP.
            let mut by_vip = VipScrape::new((1..=vips).map(|pool| {
                let address = std::net::Ipv4Addr::from(0x0a00_0000 + pool).into();
                let at = VipStatsIndex {
                    pool_index: pool,
                    route_stats_index: None,
                };
                (VipKey::host(address, Some(Protocol::Tcp), 80), at)
            }));
            by_vip.run(&seg).expect("scrape");
            g.bench_function(BenchmarkId::new("vip_scrape", &id), |b| {
                b.iter(|| black_box(by_vip.run(&seg).expect("scrape").vips().len()))
            });
            let pool: Vec<u32> = (1..=vips).collect();
            let plain = PlainCopy::new(&seg, &pool, &[]).expect("plain");
            let mut out = vec![0u64; plain.cells()];
            g.bench_function(BenchmarkId::new("plain_copy", &id), |b| {
                b.iter(|| {
                    plain.copy(&seg, &mut out);
                    black_box(out[0])
                })
            });
            let expect = totals(&mut scrape, &seg);
            papi(&format!("lb {id}"), &stats, (1, vips), (0, 0), expect);
        }
    }
    g.finish();
}

fn routes(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats_scrape_routes");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let (vips, threads) = (1_000u32, 16usize);
    // 1,000 rows: the VIPs are the whole table. 1,000,000 rows: a full
    // BGP table, the VIPs' load-balances allocated after it (at the end),
    // or scattered through it (every 997th row).
    let cases: [(&str, usize, Vec<u32>); 3] = [
        ("1k_rows", 1_000, (0..vips).collect()),
        (
            "1M_rows_end",
            1_000_000,
            (1_000_000 - vips..1_000_000).collect(),
        ),
        (
            "1M_rows_scattered",
            1_000_000,
            (0..vips).map(|i| i * 997 + 13).collect(),
        ),
    ];
    for (label, rows, route_ix) in cases {
        let stats = segment(vips, threads, rows, &route_ix);
        let seg = stats.reader().expect("reader");
        let id = format!("{label}_{vips}vips_{threads}threads");
        let mut scrape = Scrape::new([], route_ix.iter().copied());
        scrape.run(&seg).expect("scrape");
        g.bench_function(BenchmarkId::new("scrape", &id), |b| {
            b.iter(|| black_box(scrape.run(&seg).expect("scrape").routes().len()))
        });
        let plain = PlainCopy::new(&seg, &[], &route_ix).expect("plain");
        let mut out = vec![0u64; plain.cells()];
        g.bench_function(BenchmarkId::new("plain_copy", &id), |b| {
            b.iter(|| {
                plain.copy(&seg, &mut out);
                black_box(out[0])
            })
        });
        let mut full = Scrape::new(1..=vips, route_ix.iter().copied());
        full.run(&seg).expect("scrape");
        g.bench_function(BenchmarkId::new("scrape_lb_and_routes", &id), |b| {
            b.iter(|| black_box(full.run(&seg).expect("scrape").routes().len()))
        });
        if rows == 1_000 {
            let expect = totals(&mut full, &seg);
            papi(
                &format!("lb+routes {id}"),
                &stats,
                (1, vips),
                (0, vips),
                expect,
            );
        }
    }
    g.finish();
}

criterion_group!(benches, lb, routes);
criterion_main!(benches);
