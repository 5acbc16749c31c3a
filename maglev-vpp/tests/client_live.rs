//! Opt-in: the client against a running VPP, when `MAGLEV_TEST_VPP_API`
//! names its API socket (usually `/run/vpp/api.sock`); without it each
//! test says so and passes, unless `MAGLEV_REQUIRE_VPP=1`.
//!
//! The tests run in parallel against one VPP that may hold anything, so
//! each keeps to itself: it asserts nothing about state it did not create,
//! creates only VIPs of its own (documentation addresses, TEST-NET-1/3 and
//! `2001:db8::`, on a port derived from the process id and the test),
//! touches nothing else, and removes what it made even when it fails. Every client leaves with `close()` (VPP 26.10 leaks
//! socket clients that do not say goodbye after a large reply).

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;

use maglev_core::dataplane::{Encap, VipKey};
use maglev_core::plan::Op;
use maglev_vpp::api::messages::ShowVersion;
use maglev_vpp::api::types::Prefix;
use maglev_vpp::lb::apply::apply;
use maglev_vpp::lb::ops::LbSnapshot;
use maglev_vpp::{Client, Error, Retval};

use common::live_api_socket;
use common::tables::{Rng, as_addresses, assert_predicted, weight};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A VIP no other test (nor, very likely, anyone else) uses: TEST-NET-3,
/// a port from this process's id and the test's number.
fn own_vip(test: u16) -> VipKey {
    own_vip_at(ip("203.0.113.250"), test)
}

/// [`own_vip`] at another documentation address.
fn own_vip_at(address: IpAddr, test: u16) -> VipKey {
    let port = 40_000 + (std::process::id() % 2_000) as u16 * 10 + test;
    VipKey {
        address,
        prefix_len: if address.is_ipv4() { 32 } else { 128 },
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

/// Runs `body`, then removes each VIP of `made` and its ASes whatever
/// happened, then fails if `body` did.
async fn with_cleanup<F>(vpp: &Client, made: &[(VipKey, Vec<IpAddr>)], body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body).await;
    for (vip, ases) in made {
        for &a in ases {
            match vpp.del_as(vip, a, true).await {
                Ok(()) => {}
                Err(e) if e.retval() == Some(Retval::NO_SUCH_ENTRY) => {}
                Err(e) => eprintln!("cleanup of {a} on {vip:?}: {e}"),
            }
        }
        match vpp.del_vip(vip).await {
            Ok(()) => {}
            Err(e) if e.retval() == Some(Retval::NO_SUCH_ENTRY) => {}
            Err(e) => eprintln!("cleanup of {vip:?}: {e}"),
        }
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
    with_cleanup(&vpp, &[(k, ases.to_vec())], body).await;
    vpp.close().await.unwrap();
}

/// One VIP of [`live_vpp_buckets_match_the_prediction`]: where, how long
/// a table, and its ASes before and after the change.
struct PredictedVip {
    key: VipKey,
    encap: Encap,
    table_len: u32,
    before: BTreeMap<IpAddr, u8>,
    after: BTreeMap<IpAddr, u8>,
}

impl PredictedVip {
    /// `n` generated ASes (family of `encap`), and the change: the first
    /// drained, the second deleted, the third's weight moved, one added.
    fn new(rng: &mut Rng, key: VipKey, encap: Encap, table_len: u32, n: usize) -> PredictedVip {
        let addresses = as_addresses(rng, encap == Encap::Gre6, n + 1);
        let before: BTreeMap<IpAddr, u8> =
            addresses[..n].iter().map(|&a| (a, weight(rng))).collect();
        let mut after = before.clone();
        after.insert(addresses[0], 0);
        after.remove(&addresses[1]);
        after.insert(addresses[2], weight(rng));
        after.insert(addresses[n], 1 + rng.below(100) as u8);
        PredictedVip {
            key,
            encap,
            table_len,
            before,
            after,
        }
    }

    /// Every address it ever has.
    fn addresses(&self) -> Vec<IpAddr> {
        self.before
            .keys()
            .chain(self.after.keys())
            .copied()
            .collect()
    }

    /// The ops that create it with its first ASes.
    fn create(&self) -> Vec<Op> {
        let create = Op::CreateVip {
            key: self.key,
            encap: self.encap,
            table_len: self.table_len,
            src_ip_sticky: false,
        };
        let add = self.before.iter().map(|(&address, &weight)| Op::AddAs {
            vip: self.key,
            address,
            weight,
        });
        std::iter::once(create).chain(add).collect()
    }

    /// The ops of the change.
    fn change(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        for (&address, &weight) in &self.after {
            match self.before.get(&address) {
                None => ops.push(Op::AddAs {
                    vip: self.key,
                    address,
                    weight,
                }),
                Some(&w) if w != weight => ops.push(Op::SetWeight {
                    vip: self.key,
                    address,
                    weight,
                    flush: false,
                }),
                Some(_) => {}
            }
        }
        for &address in self.before.keys().filter(|a| !self.after.contains_key(a)) {
            ops.push(Op::DeleteAs {
                vip: self.key,
                address,
                flush: true,
            });
        }
        ops
    }
}

/// Writes: VIPs of its own with generated ASes and weights, on tables of
/// 1,024, 4,096 and 65,536 buckets (the last reads 0 in `lb_vip_dump`),
/// are created, then changed (an AS drained, one deleted, one added, a
/// weight moved); after each step every AS's `num_buckets` must be its
/// share of the table maglev predicts, and `bucket_drift` 0 for each of
/// them. Everything it made is removed.
#[tokio::test]
async fn live_vpp_buckets_match_the_prediction() {
    let Some(path) = live_api_socket() else {
        return;
    };
    let vpp = Client::connect(&path).await.unwrap();
    let mut rng = Rng::new(0x11fe_7ab1e);
    let vips = vec![
        PredictedVip::new(
            &mut rng,
            own_vip_at(ip("192.0.2.250"), 2),
            Encap::Gre4,
            1024,
            40,
        ),
        PredictedVip::new(
            &mut rng,
            own_vip_at(ip("192.0.2.250"), 3),
            Encap::Gre4,
            65_536,
            16,
        ),
        PredictedVip::new(
            &mut rng,
            own_vip_at(ip("2001:db8::250"), 4),
            Encap::Gre6,
            4096,
            30,
        ),
    ];
    let made: Vec<(VipKey, Vec<IpAddr>)> = vips.iter().map(|v| (v.key, v.addresses())).collect();
    let body = {
        let vpp = vpp.clone();
        async move {
            let create: Vec<Op> = vips.iter().flat_map(PredictedVip::create).collect();
            let report = apply(&vpp, &create).await;
            assert!(report.is_complete(), "{report}");
            let snap = snapshot(&vpp).await;
            for v in &vips {
                assert_predicted(&snap, &v.key, v.table_len, &v.before, "live, created");
            }
            let change: Vec<Op> = vips.iter().flat_map(PredictedVip::change).collect();
            let report = apply(&vpp, &change).await;
            assert!(report.is_complete(), "{report}");
            let snap = snapshot(&vpp).await;
            for v in &vips {
                assert_predicted(&snap, &v.key, v.table_len, &v.after, "live, changed");
            }
        }
    };
    with_cleanup(&vpp, &made, body).await;
    vpp.close().await.unwrap();
}
