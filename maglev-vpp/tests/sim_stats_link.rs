//! The API simulator and the stats simulator line up: a VIP created over
//! the binary API has its pool index's LB counters and its route's
//! `/net/route/to` row in the segment, so traffic "sent" to it is read back
//! by a scrape with the indexes the API reported.

use std::sync::Arc;

use maglev_core::dataplane::{Encap, Protocol, VipKey};
use maglev_vpp::Client;
use maglev_vpp::api::types::Prefix;
use maglev_vpp::sim::{Sim, SimConfig};
use maglev_vpp::stats::sim::SimStats;
use maglev_vpp::stats::{Scrape, VipScrape, VipStatsIndex};

#[tokio::test]
async fn traffic_sent_to_a_vip_is_scraped_at_the_indexes_the_api_reports() {
    let dir = std::env::temp_dir().join(format!("maglev-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stats = SimStats::new(2).unwrap();
    let mut sim = Sim::start(SimConfig::new(dir.join("api.sock")))
        .await
        .unwrap();
    sim.set_observer(Arc::new(stats.clone()));
    let client = Client::connect(dir.join("api.sock")).await.unwrap();

    let web = VipKey::host("192.0.2.1".parse().unwrap(), Some(Protocol::Tcp), 80);
    let dns = VipKey::host("192.0.2.53".parse().unwrap(), Some(Protocol::Udp), 53);
    for key in [&web, &dns] {
        client.add_vip(key, Encap::Gre4, false).await.unwrap();
    }
    client
        .add_as(&web, "10.0.0.1".parse().unwrap(), 100)
        .await
        .unwrap();

    let snapshot = client.lb_snapshot().await.unwrap();
    let (web_pool, dns_pool) = (
        snapshot.pool_index(&web).unwrap(),
        snapshot.pool_index(&dns).unwrap(),
    );
    let web_route = client
        .route_stats_index(Prefix {
            address: web.address,
            len: 32,
        })
        .await
        .unwrap();
    assert_eq!(
        stats.route_of(web_pool),
        Some(web_route),
        "the stats side knows the VIP's route"
    );

    // Thread 1 and 2 each see 3 packets of 100 bytes for web; dns has no AS.
    for thread in [1, 2] {
        stats.send(web_pool, thread, 3, 300).unwrap();
    }
    stats.send(dns_pool, 1, 5, 500).unwrap();

    let segment = stats.reader().unwrap();
    let mut scrape = Scrape::new([web_pool, dns_pool], [web_route]);
    let snap = scrape.run(&segment).unwrap();
    let web_counters = snap.vip(web_pool).unwrap();
    assert_eq!(web_counters.first_packet + web_counters.next_packet, 6);
    assert_eq!(web_counters.no_server, 0);
    assert_eq!(
        snap.vip(dns_pool).unwrap().no_server,
        5,
        "a VIP without ASes counts no-server"
    );
    let route = snap.route(web_route).unwrap();
    assert_eq!((route.packets, route.bytes), (6, 600));

    // The daemon's way: the mapping from the LB snapshot, counters by key.
    let dns_route = client
        .route_stats_index(Prefix {
            address: dns.address,
            len: 32,
        })
        .await
        .unwrap();
    let mapping = [(web, web_pool, web_route), (dns, dns_pool, dns_route)].map(|(k, p, r)| {
        (
            k,
            VipStatsIndex {
                pool_index: p,
                route_stats_index: Some(r),
            },
        )
    });
    let mut by_vip = VipScrape::new(mapping);
    let snap = by_vip.run(&segment).unwrap();
    let web_stats = snap.get(&web).unwrap();
    assert_eq!(web_stats.lb.first_packet + web_stats.lb.next_packet, 6);
    assert_eq!(
        web_stats.route.map(|r| (r.packets, r.bytes)),
        Some((6, 600))
    );
    assert_eq!(snap.get(&dns).unwrap().lb.no_server, 5);
    assert_eq!(snap.get(&dns).unwrap().route.unwrap().packets, 5);

    // Only the VIP with a serving AS gets the background trickle.
    stats.trickle().unwrap();
    let snap = scrape.run(&segment).unwrap();
    assert!(snap.vip(web_pool).unwrap().next_packet + snap.vip(web_pool).unwrap().first_packet > 6);
    assert_eq!(snap.vip(dns_pool).unwrap().first_packet, 0);

    client
        .del_as(&web, "10.0.0.1".parse().unwrap(), true)
        .await
        .unwrap();
    client.del_vip(&web).await.unwrap();
    assert_eq!(
        stats.route_of(web_pool),
        None,
        "the stats side forgot the deleted VIP"
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of this test process for `name`'s sockets.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("maglev-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_replaced_stats_segment_is_told_every_live_vip() {
    let dir = scratch("replace");
    let sim = Sim::start(SimConfig::new(dir.join("api.sock")))
        .await
        .unwrap();
    sim.set_observer(Arc::new(SimStats::new(1).unwrap()));
    let client = Client::connect(dir.join("api.sock")).await.unwrap();
    let web = VipKey::host("192.0.2.1".parse().unwrap(), Some(Protocol::Tcp), 80);
    client.add_vip(&web, Encap::Gre4, false).await.unwrap();
    let pool = client
        .lb_snapshot()
        .await
        .unwrap()
        .pool_index(&web)
        .unwrap();
    let route = client
        .route_stats_index(Prefix {
            address: web.address,
            len: 32,
        })
        .await
        .unwrap();

    let fresh = SimStats::new(1).unwrap();
    assert_eq!(fresh.route_of(pool), None);
    sim.replace_observer(Arc::new(fresh.clone()));
    assert_eq!(fresh.route_of(pool), Some(route));
    assert_eq!(fresh.vips(), vec![pool]);
}

#[tokio::test]
async fn pending_faults_count_the_uses_left() {
    use maglev_vpp::sim::{Fault, FaultAction};
    let dir = scratch("pending");
    let sim = Sim::start(SimConfig::new(dir.join("api.sock")))
        .await
        .unwrap();
    sim.inject(Fault {
        message: Some("lb_vip_dump"),
        action: FaultAction::Retval(-1),
        times: 2,
    });
    sim.inject(Fault::once("lb_as_set_weight", FaultAction::Retval(-1)));
    assert_eq!(sim.pending_faults(), 3);
    let client = Client::connect(dir.join("api.sock")).await.unwrap();
    // A dump answered with a retval (its outcome is the client's business).
    let _ = client.lb_snapshot().await;
    assert_eq!(sim.pending_faults(), 2);
    sim.clear_faults();
    assert_eq!(sim.pending_faults(), 0);
}
