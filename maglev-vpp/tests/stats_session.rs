//! The daemon's stats session: it never blocks a tokio worker (connecting
//! and retrying a busy segment are bounded in time on `tokio::time`), and
//! counters are keyed by VIP, not by a pool index VPP reuses.
#![cfg(feature = "sim")]

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use maglev_core::dataplane::{Protocol, VipKey};
use maglev_vpp::stats::sim::SimStats;
use maglev_vpp::stats::{
    LbCounters, Scrape, StatSegment, StatsError, VipScrape, VipStats, VipStatsIndex,
};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};

fn socket_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("maglev-session-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stats.sock");
    let _ = std::fs::remove_file(&path);
    path
}

/// The seed segment with `in_progress` stuck at 1: every window is busy.
fn stuck() -> StatSegment {
    let mut img = maglev_vpp::stats::fuzzing::seed();
    img[24..32].copy_from_slice(&1u64.to_ne_bytes());
    StatSegment::from_bytes(&img).unwrap()
}

fn key(last: u8, port: u16) -> VipKey {
    VipKey::host(
        std::net::IpAddr::from([192, 0, 2, last]),
        Some(Protocol::Tcp),
        port,
    )
}

fn at(pool_index: u32, route: u32) -> VipStatsIndex {
    VipStatsIndex {
        pool_index,
        route_stats_index: Some(route),
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_sends_the_descriptor_times_out_on_tokio_time() {
    let path = socket_path("silent");
    // Listens (so connect succeeds) but never accepts nor sends.
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::bind(listener.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    socket::listen(&listener, socket::Backlog::new(4).unwrap()).unwrap();

    // Another task on this (only) thread keeps running meanwhile.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let t0 = tokio::time::Instant::now();
    let err = StatSegment::connect_async(&path, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StatsError::Connect { source, .. } if source.raw_os_error() == Some(nix::libc::ETIMEDOUT)),
        "{err}"
    );
    assert_eq!(tokio::time::Instant::now() - t0, Duration::from_secs(30));
    assert!(
        ticks.load(Ordering::Relaxed) >= 29,
        "the runtime kept running"
    );
    ticker.abort();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(start_paused = true)]
async fn an_async_scrape_of_a_busy_segment_yields_and_gives_up_at_its_budget() {
    let seg = stuck();
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let t0 = tokio::time::Instant::now();
    let mut scrape = Scrape::new([1], [8]);
    let err = scrape
        .run_async(&seg, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StatsError::Busy { attempts } if attempts > 64),
        "{err}"
    );
    assert!(tokio::time::Instant::now() - t0 >= Duration::from_millis(20));
    assert!(
        ticks.load(Ordering::Relaxed) >= 10,
        "other tasks ran while the scrape waited"
    );
    // The VIP-keyed scrape the same way.
    let mut vips = VipScrape::new([(key(1, 80), at(1, 8))]);
    assert!(matches!(
        vips.run_async(&seg, Duration::from_millis(5)).await,
        Err(StatsError::Busy { .. })
    ));
    ticker.abort();
}

#[test]
fn a_synchronous_read_of_a_busy_segment_is_bounded_in_time_not_only_in_attempts() {
    let mut seg = stuck();
    seg.set_max_attempts(u32::MAX);
    seg.set_busy_timeout(Duration::from_millis(2));
    let err = seg.list().unwrap_err();
    assert!(
        matches!(err, StatsError::Busy { attempts } if attempts < u32::MAX),
        "{err}"
    );
    assert!(seg.retries() > 0);
}

#[test]
fn counters_are_keyed_by_vip_and_follow_a_reused_pool_index() {
    let stats = SimStats::new(1).unwrap();
    let (web, dns, mail) = (key(1, 80), key(53, 53), key(25, 25));
    stats.add_vip(1, 8).unwrap();
    stats.add_vip(2, 9).unwrap();
    stats.send(1, 1, 10, 1000).unwrap();
    stats.send(2, 1, 3, 300).unwrap();
    let seg = stats.reader().unwrap();

    let mut scrape = VipScrape::new([(web, at(1, 8)), (dns, at(2, 9))]);
    let snap = scrape.run(&seg).unwrap().clone();
    assert_eq!(snap.vips().len(), 2);
    let got = snap.get(&web).unwrap();
    assert_eq!(got.lb.no_server, 10);
    assert_eq!(got.route.unwrap().bytes, 1000);
    assert_eq!(snap.get(&dns).unwrap().lb.no_server, 3);

    // The same mapping again: nothing is rebuilt.
    assert!(!scrape.set_vips([(dns, at(2, 9)), (web, at(1, 8))]));
    assert_eq!(scrape.rebuilds(), 1);

    // VPP deletes web and gives its pool index (and route) to mail.
    stats.remove_vip(1);
    stats.add_vip(1, 8).unwrap();
    stats.send(1, 1, 2, 200).unwrap();
    assert!(scrape.set_vips([(mail, at(1, 8)), (dns, at(2, 9))]));
    assert_eq!(scrape.rebuilds(), 2);
    let snap = scrape.run(&seg).unwrap();
    assert_eq!(snap.get(&web), None, "the deleted VIP is gone");
    let got = snap.get(&mail).unwrap();
    assert_eq!(got.lb.no_server, 2, "mail's counters only, not web's");
    assert_eq!(snap.get(&dns).unwrap().lb.no_server, 3);

    // A VIP whose route is unknown still has its LB counters.
    scrape.set_vips([(
        dns,
        VipStatsIndex {
            pool_index: 2,
            route_stats_index: None,
        },
    )]);
    let snap = scrape.run(&seg).unwrap();
    assert_eq!(
        snap.get(&dns),
        Some(&VipStats {
            lb: LbCounters {
                no_server: 3,
                ..LbCounters::default()
            },
            route: None,
        })
    );
}
