//! Opt-in: the reader against a running VPP. Set `MAGLEV_TEST_VPP_STATS`
//! to its `stats.sock` (usually `/run/vpp/stats.sock`); without it the test
//! says so and passes, unless `MAGLEV_REQUIRE_VPP=1`.

use maglev_vpp::stats::{EntryKind, LbCounter, ROUTE_TO, Scrape, StatSegment, StatsError};

#[test]
fn live_vpp_stats_segment() {
    let Ok(path) = std::env::var("MAGLEV_TEST_VPP_STATS") else {
        assert!(
            std::env::var("MAGLEV_REQUIRE_VPP").as_deref() != Ok("1"),
            "MAGLEV_REQUIRE_VPP=1 but MAGLEV_TEST_VPP_STATS is not set"
        );
        eprintln!("skipping the live VPP stats test: MAGLEV_TEST_VPP_STATS is not set");
        return;
    };
    let seg = StatSegment::connect(&path).unwrap_or_else(|e| panic!("connect {path}: {e}"));
    let list = seg.list().unwrap();
    assert_eq!(list[0].name, "/sys/heartbeat");
    assert_eq!(list[0].kind, EntryKind::Scalar);
    assert!(seg.heartbeat().unwrap() > 0);
    let routes = seg.combined(ROUTE_TO).unwrap();
    assert!(routes.threads() >= 1);

    // The LB counters exist once a VIP was ever added.
    match seg.simple(LbCounter::FirstPacket.name()) {
        Ok(v) => assert_eq!(v.threads(), routes.threads()),
        Err(StatsError::NotFound { .. }) => eprintln!("no LB counters yet (no VIP was ever added)"),
        Err(e) => panic!("{e}"),
    }
    let width = routes.thread(0).len() as u32;
    let mut scrape = Scrape::new(0..16, 0..width.min(64));
    let snap = scrape.run(&seg).unwrap();
    assert_eq!(snap.threads, routes.threads());
    eprintln!(
        "live VPP: {} entries, {} threads, epoch {}, heartbeat {}",
        list.len(),
        snap.threads,
        snap.epoch,
        seg.heartbeat().unwrap()
    );
}
