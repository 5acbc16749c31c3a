//! The simulator's segment read back by our reader: in process, and over a
//! real `stats.sock` with descriptor passing.
#![cfg(feature = "sim")]

use std::time::Duration;

use maglev_vpp::stats::sim::{self, ServeOptions, SimStats, StatsListener};
use maglev_vpp::stats::{
    Counter, EntryKind, LbCounter, ROUTE_TO, Scrape, StatSegment, StatValue, StatsError,
};

fn socket_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("maglev-stats-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("stats.sock")
}

/// Three VIPs as in the real fixture, traffic on several threads.
fn populated(workers: usize) -> (SimStats, Vec<(u32, u32)>) {
    let stats = SimStats::new(workers).unwrap();
    let mut vips = Vec::new();
    for pool in [1u32, 2, 3] {
        let route = stats.alloc_route_index();
        stats.add_vip(pool, route).unwrap();
        stats.set_active(pool, pool != 3);
        vips.push((pool, route));
    }
    // VIP 1: 1000 packets on worker 1, 10 on worker 2; VIP 3 has no AS.
    stats.send(1, 1, 1000, 64_000).unwrap();
    stats.send(1, 2, 10, 640).unwrap();
    stats.send(2, 1, 77, 7700).unwrap();
    stats.send(3, 0, 5, 500).unwrap();
    stats.count_lb(LbCounter::Untracked, 2, 2, 4).unwrap();
    (stats, vips)
}

#[test]
fn reader_sees_what_the_simulator_wrote() {
    let (stats, vips) = populated(2);
    let seg = stats.reader().unwrap();
    assert_eq!(vips, vec![(1, 8), (2, 9), (3, 10)]);

    let next = seg.simple(LbCounter::NextPacket.name()).unwrap();
    assert_eq!(next.threads(), 3);
    assert_eq!(next.column(1), vec![0, 999, 9]);
    assert_eq!(next.sum(2), 76);
    let first = seg.simple(LbCounter::FirstPacket.name()).unwrap();
    assert_eq!(first.column(1), vec![0, 1, 1]);
    let none = seg.simple(LbCounter::NoServer.name()).unwrap();
    assert_eq!(none.column(3), vec![5, 0, 0]);
    assert_eq!(
        seg.simple(LbCounter::Untracked.name()).unwrap().get(2, 2),
        4
    );

    let routes = seg.combined(ROUTE_TO).unwrap();
    assert_eq!(routes.thread(0).len(), 11);
    assert_eq!(
        routes.sum(8),
        Counter {
            packets: 1010,
            bytes: 64_640
        }
    );
    assert_eq!(
        routes.get(1, 9),
        Counter {
            packets: 77,
            bytes: 7700
        }
    );

    let mut scrape = Scrape::new([1, 2, 3], [8, 9, 10]);
    let snap = scrape.run(&seg).unwrap();
    assert_eq!(snap.vip(1).unwrap().next_packet, 1008);
    assert_eq!(snap.vip(3).unwrap().no_server, 5);
    assert_eq!(
        snap.route(10).unwrap(),
        Counter {
            packets: 5,
            bytes: 500
        }
    );

    // The other entry types.
    assert_eq!(
        seg.names("/if/names").unwrap(),
        vec![Some("local0".to_owned())]
    );
    stats.with_writer(|w| {
        let rx = w.index_of("/if/rx").unwrap();
        w.set(rx, 1, 0, 3, 300).unwrap();
    });
    assert_eq!(
        seg.read("/interfaces/local0/rx").unwrap(),
        StatValue::CombinedColumn(vec![
            Counter::default(),
            Counter {
                packets: 3,
                bytes: 300
            },
            Counter::default()
        ])
    );
    assert_eq!(
        seg.read("/interfaces/local0/drops").unwrap(),
        StatValue::SimpleColumn(vec![0, 0, 0])
    );
    assert_eq!(seg.read("/sys/vector_rate").unwrap(), StatValue::Gauge(0));
    assert_eq!(seg.scalar("/sys/num_worker_threads").unwrap(), 2);
    let hb = seg.heartbeat().unwrap();
    stats.beat().unwrap();
    assert_eq!(seg.heartbeat().unwrap(), hb + 1);
}

#[test]
fn lb_counters_appear_with_the_first_vip_and_reused_indexes_start_at_zero() {
    let stats = SimStats::new(1).unwrap();
    let seg = stats.reader().unwrap();
    assert!(matches!(
        seg.simple(LbCounter::FirstPacket.name()),
        Err(StatsError::NotFound { .. })
    ));
    let mut scrape = Scrape::new([1], [8]);
    assert_eq!(
        scrape.run(&seg).unwrap().vip(1).unwrap(),
        Default::default()
    );

    stats.add_vip(1, 8).unwrap();
    stats.set_active(1, true);
    stats.send(1, 1, 3, 300).unwrap();
    assert_eq!(scrape.run(&seg).unwrap().vip(1).unwrap().next_packet, 2);
    assert_eq!(scrape.resolutions(), 2);

    // Delete and re-add the same pool index: counters start from 0.
    stats.remove_vip(1);
    stats.add_vip(1, 8).unwrap();
    assert_eq!(
        scrape.run(&seg).unwrap().vip(1).unwrap(),
        Default::default()
    );
    assert_eq!(
        scrape.run(&seg).unwrap().route(8).unwrap(),
        Counter::default()
    );
}

#[test]
fn trickle_moves_counters_of_active_vips_only() {
    let (stats, _) = populated(2);
    let seg = stats.reader().unwrap();
    let mut scrape = Scrape::new([1, 2, 3], [8, 9, 10]);
    let before = scrape.run(&seg).unwrap().clone();
    for _ in 0..5 {
        stats.trickle().unwrap();
    }
    let after = scrape.run(&seg).unwrap();
    for pool in [1, 2] {
        let (b, a) = (before.vip(pool).unwrap(), after.vip(pool).unwrap());
        assert_eq!(
            a.first_packet + a.next_packet,
            b.first_packet + b.next_packet + 5,
            "vip {pool}"
        );
    }
    assert_eq!(after.vip(3), before.vip(3));
    assert_eq!(
        after.route(8).unwrap().packets,
        before.route(8).unwrap().packets + 5
    );
    assert_eq!(after.route(10), before.route(10));
}

#[test]
fn simulator_rejects_bad_arguments() {
    let (stats, _) = populated(2);
    assert!(matches!(
        stats.count_route(8, 3, 1, 1),
        Err(StatsError::ThreadOutOfRange {
            thread: 3,
            threads: 3
        })
    ));
    assert!(matches!(
        stats.send(42, 0, 1, 1),
        Err(StatsError::NoSuchEntry { index: 42, .. })
    ));
    stats.with_writer(|w| {
        assert!(matches!(
            w.add_scalar("/sys/heartbeat", 0),
            Err(StatsError::NameTaken { .. })
        ));
        assert!(matches!(
            w.add_counters("/big", EntryKind::Simple, 2, 1 << 40),
            Err(StatsError::SegmentFull { .. })
        ));
    });
}

#[test]
fn directory_slots_are_reused_after_removal() {
    let stats = SimStats::new(0).unwrap();
    let seg = stats.reader().unwrap();
    let n = seg.directory_len().unwrap();
    let idx = stats.with_writer(|w| {
        let a = w.add_scalar("/test/a", 7).unwrap();
        w.remove(a).unwrap();
        a
    });
    assert_eq!(seg.directory_len().unwrap(), n + 1);
    assert!(seg.find("/test/a").unwrap().is_none());
    assert_eq!(seg.read_index(idx).unwrap().1, StatValue::Empty);
    // Growing the directory past its first block moves it; names survive.
    stats.with_writer(|w| {
        for i in 0..200 {
            w.add_gauge(&format!("/test/g{i}"), i).unwrap();
        }
    });
    assert_eq!(seg.find("/test/g0").unwrap().unwrap().index, idx);
    assert_eq!(seg.scalar("/test/g199").unwrap(), 199);
    assert_eq!(seg.heartbeat().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_over_stats_sock_with_fd_passing() {
    let (stats, _) = populated(3);
    let path = socket_path("serve");
    let listener = StatsListener::bind(&path).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        trickle: None,
        heartbeat: None,
    };
    let server = tokio::spawn(sim::run(listener, stats.clone(), opts, async {
        let _ = stopped.await;
    }));

    let p = path.clone();
    let seg = tokio::task::spawn_blocking(move || StatSegment::connect(&p))
        .await
        .unwrap()
        .unwrap();
    let next = seg.simple(LbCounter::NextPacket.name()).unwrap();
    assert_eq!(next.threads(), 4);
    assert_eq!(next.column(1), vec![0, 999, 9, 0]);
    // Same memory: a write shows through the socket-received mapping.
    stats.send(2, 3, 2, 200).unwrap();
    assert_eq!(
        seg.simple(LbCounter::NextPacket.name()).unwrap().get(3, 2),
        1
    );
    assert_eq!(seg.identity(), stats.reader().unwrap().identity());

    // A second client gets the same segment.
    let p = path.clone();
    let again = tokio::task::spawn_blocking(move || StatSegment::connect(&p))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.identity(), seg.identity());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!path.exists(), "socket removed on shutdown");
    let err = StatSegment::connect(&path).unwrap_err();
    assert!(matches!(err, StatsError::Connect { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn serve_trickles_and_beats_on_the_tokio_clock() {
    let (stats, _) = populated(2);
    let seg = stats.reader().unwrap();
    let path = socket_path("trickle");
    let before = seg.heartbeat().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim::serve(path, stats.clone(), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(2050)).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Ticks at 0, 1 s, 2 s; trickle at 0, 100 ms, ..., 2000 ms.
    assert_eq!(seg.heartbeat().unwrap(), before + 3);
    let snap = Scrape::new([1], [8]).run(&seg).unwrap().clone();
    assert_eq!(snap.route(8).unwrap().packets, 1010 + 21);
}
