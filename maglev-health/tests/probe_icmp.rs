//! The ICMP probe to 127.0.0.0/8 and ::1: replies are matched to their
//! own probe even when many run at once.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use maglev_health::Code;
use maglev_health::probe::{self, ProbeEnv, ProbeResult};

/// Neither a datagram ICMP socket (`ping_group_range`) nor a raw one
/// (`CAP_NET_RAW`) is allowed here: say so, and fail when the run asked
/// for these tests with `MAGLEV_REQUIRE_ICMP=1`.
fn skip(r: &ProbeResult) {
    assert!(
        std::env::var("MAGLEV_REQUIRE_ICMP").as_deref() != Ok("1"),
        "MAGLEV_REQUIRE_ICMP=1 but ICMP sockets are refused: {r}"
    );
    eprintln!("skipped: ICMP sockets are refused here: {r}");
}

#[tokio::test]
async fn echo_to_ipv4_and_ipv6_loopback_passes() {
    let prober = probe::build(&icmp_check(LONG), &ProbeEnv::new()).unwrap();
    for target in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        let r = prober.probe(target).await;
        if r.code == Code::SockErr {
            return skip(&r);
        }
        assert_eq!(r.code, Code::L4Ok, "{target}: {r}");
        assert!(
            r.detail
                .starts_with(&format!("ICMP echo reply from {target} (")),
            "{r}"
        );
    }
}

#[tokio::test]
async fn concurrent_probes_never_take_each_others_replies() {
    let prober = probe::build(&icmp_check(LONG), &ProbeEnv::new()).unwrap();
    let targets: Vec<IpAddr> = (1..=64u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .chain([IpAddr::V6(Ipv6Addr::LOCALHOST)])
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for &t in &targets {
        let p = prober.clone();
        tasks.spawn(async move { (t, p.probe(t).await) });
    }
    let mut seen = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (t, r) = done.unwrap();
        if r.code == Code::SockErr {
            return skip(&r);
        }
        assert_eq!(r.code, Code::L4Ok, "{t}: {r}");
        assert!(
            r.detail.starts_with(&format!("ICMP echo reply from {t} (")),
            "{t}: {r}"
        );
        seen.push(t);
    }
    seen.sort();
    let mut want = targets.clone();
    want.sort();
    assert_eq!(seen, want);
}
