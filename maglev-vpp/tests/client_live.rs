//! Opt-in: the client against a running VPP, when `MAGLEV_TEST_VPP_API`
//! names its API socket (usually `/run/vpp/api.sock`); without it each
//! test says so and passes, unless `MAGLEV_REQUIRE_VPP=1`.
//!
//! The tests run in parallel against one VPP that may hold anything, so
//! each keeps to itself: it asserts nothing about state it did not create,
//! creates only VIPs of its own (TEST-NET-3 on a port derived from the
//! process id and the test), touches nothing else, and removes what it made
//! even when it fails. Every client leaves with `close()` (VPP 26.10 leaks
//! socket clients that do not say goodbye after a large reply).

mod common;

use std::future::Future;
use std::net::IpAddr;

use maglev_core::dataplane::{Encap, VipKey};
use maglev_vpp::api::messages::ShowVersion;
use maglev_vpp::api::types::Prefix;
use maglev_vpp::lb::ops::LbSnapshot;
use maglev_vpp::{Client, Error, Retval};

use common::live_api_socket;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A VIP no other test (nor, very likely, anyone else) uses: TEST-NET-3,
/// a port from this process's id and the test's number.
fn own_vip(test: u16) -> VipKey {
    let port = 40_000 + (std::process::id() % 2_000) as u16 * 10 + test;
    VipKey {
        address: ip("203.0.113.250"),
        prefix_len: 32,
        protocol: 6,
        port,
    }
}

/// `lb_snapshot`, retried while someone else changes VPP between its
/// dumps ([`Error::Inconsistent`]).
async fn snapshot(vpp: &Client) -> LbSnapshot {
    let mut tries = 0;
    loop {
        match vpp.lb_snapshot().await {
            Ok(s) => return s,
            Err(Error::Inconsistent { .. }) if tries < 10 => tries += 1,
            Err(e) => panic!("lb_snapshot: {e}"),
        }
    }
}

/// Runs `body`, then removes `vip` and its `ases` whatever happened, then
/// fails if `body` did.
async fn with_cleanup<F>(vpp: &Client, vip: VipKey, ases: &[IpAddr], body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body).await;
    for &a in ases {
        match vpp.del_as(&vip, a, true).await {
            Ok(()) => {}
            Err(e) if e.retval() == Some(Retval::NO_SUCH_ENTRY) => {}
            Err(e) => eprintln!("cleanup of {a} on {vip:?}: {e}"),
        }
    }
    match vpp.del_vip(&vip).await {
        Ok(()) => {}
        Err(e) if e.retval() == Some(Retval::NO_SUCH_ENTRY) => {}
        Err(e) => eprintln!("cleanup of {vip:?}: {e}"),
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Reads only: liveness, version, a snapshot, 100 pipelined requests.
#[tokio::test]
async fn live_vpp_read_only() {
    let Some(path) = live_api_socket() else {
        return;
    };
    let vpp = Client::connect(&path).await.unwrap();
    assert!(vpp.ping().await.unwrap() > 0);
    let version = vpp.vpp_version().await.unwrap();
    assert!(!version.is_empty());
    // Whatever VPP holds (others may be changing it), it reads.
    snapshot(&vpp).await;
    let pending: Vec<_> = (0..100).map(|_| vpp.start(&ShowVersion).unwrap()).collect();
    for p in pending {
        assert_eq!(p.wait().await.unwrap().version, version);
    }
    vpp.close().await.unwrap();
}

/// Writes: a VIP of its own is created, given ASes and weights through the
/// typed calls, looked up in the FIB, then removed.
#[tokio::test]
async fn live_vpp_lb_round_trip() {
    let Some(path) = live_api_socket() else {
        return;
    };
    let vpp = Client::connect(&path).await.unwrap();
    let k = own_vip(1);
    let ases = [ip("10.255.0.1"), ip("10.255.0.2")];
    let body = {
        let vpp = vpp.clone();
        async move {
            vpp.add_vip(&k, Encap::Gre4, true).await.unwrap();
            assert_eq!(
                vpp.add_vip(&k, Encap::Gre4, true)
                    .await
                    .unwrap_err()
                    .retval(),
                Some(Retval::VALUE_EXIST)
            );
            vpp.add_as(&k, ases[0], 99).await.unwrap();
            vpp.add_as(&k, ases[1], 100).await.unwrap();
            let snap = snapshot(&vpp).await;
            let info = snap.vips.iter().find(|v| v.key == k).unwrap();
            assert!(info.src_ip_sticky);
            let buckets: Vec<u32> = snap
                .ases
                .iter()
                .filter(|a| a.vip == k)
                .map(|a| a.num_buckets)
                .collect();
            assert_eq!(buckets.len(), 2);
            assert_eq!(buckets.iter().sum::<u32>(), 1024);
            vpp.route_stats_index(Prefix {
                address: k.address,
                len: k.prefix_len,
            })
            .await
            .unwrap();
            vpp.set_weight(&k, ases[1], 0, true).await.unwrap();
            vpp.del_as(&k, ases[0], true).await.unwrap();
            vpp.del_as(&k, ases[1], true).await.unwrap();
            vpp.del_vip(&k).await.unwrap();
            assert_eq!(
                vpp.del_vip(&k).await.unwrap_err().retval(),
                Some(Retval::NO_SUCH_ENTRY)
            );
        }
    };
    with_cleanup(&vpp, k, &ases, body).await;
    vpp.close().await.unwrap();
}
