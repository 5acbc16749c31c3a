//! The new-flow table maglev predicts against what VPP reports, through
//! the simulator's API socket and the real [`Client`]: VIPs with
//! generated AS sets, weights and table lengths (65,536 included) are
//! programmed by `desired → plan → apply`, then changed (an AS drained,
//! one deleted, one added, a weight moved), and after each step every
//! AS's `num_buckets` in `lb_as_v2_dump` must be its share of
//! [`MaglevTable::build`], the snapshot's table length must come through
//! (the dump's 16-bit `flow_table_length` reads 65,536 as 0), and
//! [`LbSnapshot::bucket_drift`] must be 0 for every VIP.
//!
//! The simulator fills its tables with the same [`MaglevTable::build`],
//! so this checks the way there and back (lengths sent and read back,
//! weights, counts, the snapshot's join), not VPP's fill itself: that is
//! what `client_live.rs` checks against a real VPP, and the unit tests of
//! `maglev_core::maglev` against the captures in `../shared`.
//!
//! Cases come from a seeded loop ([`common::tables::Rng`]); a failure
//! names its seed.
//!
//! [`MaglevTable::build`]: maglev_core::maglev::MaglevTable::build
//! [`LbSnapshot::bucket_drift`]: maglev_vpp::lb::ops::LbSnapshot::bucket_drift

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::dataplane::{DesiredAs, DesiredState, DesiredVip, Encap, Protocol, VipKey};
use maglev_core::plan::{PendingFlushes, plan_all};
use maglev_vpp::Client;
use maglev_vpp::api::messages::LbVipDump;
use maglev_vpp::lb::apply::apply;
use maglev_vpp::sim::{Sim, SimConfig};

use common::tables::{Rng, as_addresses, assert_predicted, weight};

/// Table lengths drawn from: VPP takes any power of two.
const LENGTHS: [u32; 12] = [
    1, 2, 8, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
];

/// Rounds of the loop: each programs fresh VIPs, then changes them.
const ROUNDS: u64 = 9;

/// Most ASes for a table of `len` buckets: more than buckets for short
/// tables (some ASes then get none), fewer for long ones (the simulator
/// refills the table on every AS added, as VPP does).
fn most_ases(len: u32) -> u64 {
    match len {
        0..=1024 => 120,
        1025..=8192 => 60,
        _ => 24,
    }
}

/// The VIP `slot` of round `round`: its own address, either family.
fn vip_key(rng: &mut Rng, round: u64, slot: u64) -> VipKey {
    let host = (round * 4 + slot + 1) as u8;
    let address = if rng.chance(50) {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, host))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host)))
    };
    VipKey::host(address, Some(Protocol::Tcp), 8000 + slot as u16)
}

/// A VIP with a generated length and AS set; VIP 0 of every third round
/// has 65,536 buckets.
fn generated_vip(rng: &mut Rng, round: u64, slot: u64) -> DesiredVip {
    let key = vip_key(rng, round, slot);
    let table_len = if slot == 0 && round.is_multiple_of(3) {
        65_536
    } else {
        rng.pick(&LENGTHS)
    };
    let v6 = rng.chance(50);
    let n = rng.below(most_ases(table_len) + 1) as usize;
    let ases = as_addresses(rng, v6, n)
        .into_iter()
        .map(|a| (a, as_of(weight(rng))))
        .collect();
    DesiredVip {
        key,
        encap: if v6 { Encap::Gre6 } else { Encap::Gre4 },
        table_len,
        src_ip_sticky: rng.chance(30),
        ases,
    }
}

fn as_of(weight: u8) -> DesiredAs {
    DesiredAs {
        weight,
        flush: false,
    }
}

/// The change of a round's second step: one AS drained, one deleted, one
/// added, one weight moved (those the VIP has ASes for).
fn change(rng: &mut Rng, vip: &mut DesiredVip) {
    let addresses: Vec<IpAddr> = vip.ases.keys().copied().collect();
    if !addresses.is_empty() {
        let drained = rng.pick(&addresses);
        vip.ases.insert(drained, as_of(0));
        let deleted = rng.pick(&addresses);
        vip.ases.remove(&deleted);
        let moved = rng.pick(&addresses);
        if let Some(a) = vip.ases.get_mut(&moved) {
            a.weight = weight(rng);
        }
    }
    let v6 = vip.encap == Encap::Gre6;
    if let Some(&added) = as_addresses(rng, v6, 20)
        .iter()
        .find(|a| !vip.ases.contains_key(a))
    {
        vip.ases.insert(added, as_of(1 + rng.below(100) as u8));
    }
}

/// Brings the simulator to `desired` through the planner, then checks
/// every VIP's buckets against the prediction.
async fn converge_and_check(vpp: &Client, desired: &DesiredState, what: &str) {
    let observed = vpp.observe().await.unwrap();
    let ops = plan_all(desired, &observed, &PendingFlushes::new());
    let report = apply(vpp, &ops).await;
    assert!(report.is_complete(), "{what}: {report}");
    let snap = vpp.lb_snapshot().await.unwrap();
    for (key, vip) in desired {
        let ases: BTreeMap<IpAddr, u8> = vip.ases.iter().map(|(&a, s)| (a, s.weight)).collect();
        assert_predicted(&snap, key, vip.table_len, &ases, what);
    }
    let drift = snap.bucket_drift();
    assert_eq!(
        drift.keys().collect::<Vec<_>>(),
        desired.keys().collect::<Vec<_>>(),
        "{what}: a drift for every VIP and no other"
    );
    // Why the snapshot reads the length from `show lb vips verbose`.
    for d in vpp.dump(&LbVipDump::default()).await.unwrap() {
        let key = maglev_vpp::lb::ops::key_of(&d.vip);
        let len = desired[&key].table_len;
        assert_eq!(u32::from(d.flow_table_length), len % 65_536, "{what}");
    }
}

#[tokio::test]
async fn simulator_buckets_match_the_prediction() {
    let mut sim = Sim::start(SimConfig::new(common::sock_path("table-prediction")))
        .await
        .unwrap();
    let vpp = Client::connect(sim.api_socket()).await.unwrap();
    let mut long_tables = 0;
    for round in 0..ROUNDS {
        let seed = 0x7ab1_e000 + round;
        let mut rng = Rng::new(seed);
        let vips = 1 + rng.below(3);
        let mut desired: DesiredState = (0..vips)
            .map(|slot| {
                let v = generated_vip(&mut rng, round, slot);
                (v.key, v)
            })
            .collect();
        long_tables += desired.values().filter(|v| v.table_len == 65_536).count();
        converge_and_check(&vpp, &desired, &format!("seed {seed:#x}, programmed")).await;
        for vip in desired.values_mut() {
            change(&mut rng, vip);
        }
        converge_and_check(&vpp, &desired, &format!("seed {seed:#x}, changed")).await;
    }
    assert!(long_tables >= 3, "{long_tables} VIPs of 65,536 buckets");
    vpp.close().await.unwrap();
    sim.stop().await;
}
