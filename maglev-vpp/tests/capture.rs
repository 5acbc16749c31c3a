//! Known answers from a real VPP 26.10: every request of the captured
//! `vpp_papi` conversation encodes to the captured bytes, and every reply
//! decodes to the values the scenario printed.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use maglev_core::dataplane::{Encap, VipKey};
use maglev_vpp::api::frame::encode_frame;
use maglev_vpp::api::messages::*;
use maglev_vpp::api::table::MessageIds;
use maglev_vpp::api::types::{LbEncapType, LbVip, Prefix};
use maglev_vpp::lb::ops::{as_request, snapshot_from, vip_request, weight_request};

use common::{CapturedFrame, capture};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip443() -> VipKey {
    VipKey {
        address: ip("198.51.100.10"),
        prefix_len: 32,
        protocol: 6,
        port: 443,
    }
}

fn vip53() -> VipKey {
    VipKey {
        address: ip("2001:db8:100::10"),
        prefix_len: 128,
        protocol: 17,
        port: 53,
    }
}

struct Capture {
    frames: Vec<CapturedFrame>,
    ids: MessageIds,
}

fn load() -> Capture {
    let frames = capture();
    let (_, reply) = decode_message::<SockclntCreateReply>(frames[1].payload()).unwrap();
    let (ids, problems) = MessageIds::resolve(&reply.message_table);
    assert!(problems.is_empty(), "{problems:?}");
    Capture { frames, ids }
}

/// Encodes `msg` with the captured frame's id, client_index and context,
/// and compares everything but the header's first 8 bytes.
fn assert_encodes<M: Message + std::fmt::Debug>(cap: &Capture, frame: usize, msg: &M) {
    let f = &cap.frames[frame];
    assert!(f.to_server, "frame {frame} is a request");
    let p = f.payload();
    let msg_id = u16::from_be_bytes([p[0], p[1]]);
    assert_eq!(
        Some(msg_id),
        cap.ids.get(M::ID),
        "frame {frame} is {}",
        M::NAME
    );
    let (client_index, context) = match M::SHAPE {
        Shape::WithClientIndex => (
            u32::from_be_bytes(p[2..6].try_into().unwrap()),
            u32::from_be_bytes(p[6..10].try_into().unwrap()),
        ),
        Shape::ContextOnly => (0, u32::from_be_bytes(p[2..6].try_into().unwrap())),
    };
    let mut buf = BytesMut::new();
    encode_frame(
        msg,
        Envelope {
            msg_id,
            client_index,
            context,
        },
        &mut buf,
    );
    assert_eq!(
        &buf[8..],
        &f.bytes[8..],
        "frame {frame}: {} {msg:?}",
        M::NAME
    );
    let (_, back) = decode_message::<M>(p).unwrap();
    let mut again = BytesMut::new();
    back.encode(&mut again);
    let mut orig = BytesMut::new();
    msg.encode(&mut orig);
    assert_eq!(again, orig, "frame {frame} decodes back to the same call");
}

/// Decodes a reply frame as `M`, checking its id.
fn reply<M: Message>(cap: &Capture, frame: usize) -> M {
    let f = &cap.frames[frame];
    assert!(!f.to_server, "frame {frame} is from VPP");
    decode_expected::<M>(f.payload(), cap.ids.get(M::ID).unwrap())
        .unwrap_or_else(|e| panic!("frame {frame}: {e}"))
}

#[test]
fn every_request_encodes_to_the_captured_bytes() {
    let cap = load();
    assert_encodes(
        &cap,
        0,
        &SockclntCreate {
            name: "capture".into(),
        },
    );
    assert_encodes(&cap, 2, &ShowVersion);
    assert_encodes(
        &cap,
        4,
        &LbConf {
            ip4_src_address: Ipv4Addr::new(10, 0, 0, 1),
            ip6_src_address: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            sticky_buckets_per_core: 1024,
            flow_timeout: 40,
        },
    );
    assert_encodes(&cap, 6, &LbConfGet);
    assert_encodes(&cap, 8, &vip_request(&vip443(), Encap::Gre4, true, false));
    assert_encodes(&cap, 10, &vip_request(&vip53(), Encap::Gre6, false, false));
    assert_encodes(
        &cap,
        12,
        &as_request(&vip443(), ip("10.2.0.1"), 100, false, false),
    );
    assert_encodes(
        &cap,
        14,
        &as_request(&vip443(), ip("10.2.0.2"), 50, false, false),
    );
    assert_encodes(
        &cap,
        16,
        &as_request(&vip53(), ip("2001:db8:2::1"), 100, false, false),
    );
    assert_encodes(
        &cap,
        18,
        &weight_request(&vip443(), ip("10.2.0.2"), 0, true),
    );
    let unknown = VipKey {
        address: ip("198.51.100.99"),
        ..vip443()
    };
    assert_encodes(&cap, 20, &weight_request(&unknown, ip("10.2.0.2"), 0, true));
    assert_encodes(
        &cap,
        22,
        &as_request(&vip443(), ip("10.2.0.1"), 100, false, false),
    );
    assert_encodes(&cap, 24, &LbVipDump::default());
    assert_encodes(&cap, 25, &ControlPing);
    assert_encodes(&cap, 30, &LbAsV2Dump::default());
    assert_encodes(&cap, 31, &ControlPing);
    assert_encodes(
        &cap,
        38,
        &CliInband {
            cmd: "show lb vips verbose".into(),
        },
    );
    assert_encodes(
        &cap,
        40,
        &IpRouteLookup {
            table_id: 0,
            exact: 1,
            prefix: Prefix {
                address: ip("198.51.100.10"),
                len: 32,
            },
        },
    );
    // The capture deletes with weight 0 and flush, like `del_as(.., true)`.
    assert_encodes(
        &cap,
        42,
        &as_request(&vip443(), ip("10.2.0.2"), 0, true, true),
    );
    assert_encodes(&cap, 44, &vip_request(&vip53(), Encap::Gre6, false, true));
    assert_encodes(&cap, 46, &SockclntDelete { index: 0x8000_0001 });
}

#[test]
fn handshake_reply_carries_the_whole_table() {
    let cap = load();
    let (env, r) = decode_message::<SockclntCreateReply>(cap.frames[1].payload()).unwrap();
    assert_eq!(env.msg_id, SOCKCLNT_CREATE_REPLY_ID);
    assert_eq!(env.context, 124);
    assert_eq!(r.response, 0);
    assert_eq!(r.index, 0x8000_0001);
    assert_eq!(r.message_table.len(), 850);
    assert_eq!(cap.ids.get(MsgId::SockclntCreate), Some(15));
    assert_eq!(cap.ids.get(MsgId::ControlPing), Some(23));
    assert_eq!(cap.ids.get(MsgId::LbAsSetWeight), Some(101));
    assert_eq!(cap.ids.get(MsgId::IpRouteLookup), Some(399));
}

#[test]
fn every_reply_decodes_to_what_vpp_said() {
    let cap = load();
    let v: ShowVersionReply = reply(&cap, 3);
    assert_eq!(v.retval, 0);
    assert_eq!(v.program, "vpe");
    assert_eq!(v.version, "26.10-rc0~374-gb575ec2c56d");
    assert_eq!(v.build_date, "2026-11-24T20:07:50");
    assert_eq!(v.build_directory, "/usr/src/vpp-tree");
    assert_eq!(reply::<LbConfReply>(&cap, 5).retval, 0);
    let conf: LbConfGetReply = reply(&cap, 7);
    assert_eq!(conf.retval, 0);
    assert_eq!(conf.conf.ip4_src_address, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(
        conf.conf.ip6_src_address,
        "2001:db8::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        (conf.conf.sticky_buckets_per_core, conf.conf.flow_timeout),
        (1024, 40)
    );
    for f in [9, 11] {
        assert_eq!(reply::<LbAddDelVipV2Reply>(&cap, f).retval, 0);
    }
    for f in [13, 15, 17] {
        assert_eq!(reply::<LbAddDelAsV2Reply>(&cap, f).retval, 0);
    }
    assert_eq!(reply::<LbAsSetWeightReply>(&cap, 19).retval, 0);
    assert_eq!(
        reply::<LbAsSetWeightReply>(&cap, 21).retval,
        -6,
        "unknown VIP"
    );
    assert_eq!(
        reply::<LbAddDelAsV2Reply>(&cap, 23).retval,
        -81,
        "duplicate AS"
    );

    let vips: Vec<LbVipDetails> = (26..=28).map(|f| reply(&cap, f)).collect();
    let lbvip = |a: &str, len, protocol, port| LbVip {
        pfx: Prefix {
            address: ip(a),
            len,
        },
        protocol,
        port,
    };
    assert_eq!(vips[0].vip, lbvip("192.0.2.1", 32, 6, 80));
    assert_eq!(vips[1].vip, lbvip("198.51.100.10", 32, 6, 443));
    assert_eq!(vips[2].vip, lbvip("2001:db8:100::10", 128, 17, 53));
    assert_eq!(
        vips.iter()
            .map(|v| (v.encap, v.flow_table_length))
            .collect::<Vec<_>>(),
        [
            (LbEncapType::GRE4, 1024),
            (LbEncapType::GRE4, 1024),
            (LbEncapType::GRE6, 1024)
        ]
    );
    let ping: ControlPingReply = reply(&cap, 29);
    assert_eq!(
        (ping.retval, ping.client_index, ping.vpe_pid),
        (0, 0x8000_0001, 0x4162)
    );

    let ases: Vec<LbAsV2Details> = (32..=36).map(|f| reply(&cap, f)).collect();
    let summary: Vec<(String, IpAddr, u8, u8, u32)> = ases
        .iter()
        .map(|a| {
            (
                a.vip.pfx.address.to_string(),
                a.app_srv,
                a.flags,
                a.weight,
                a.num_buckets,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("192.0.2.1".into(), ip("10.1.0.2"), 1, 100, 514),
            ("192.0.2.1".into(), ip("10.1.0.1"), 1, 99, 510),
            ("198.51.100.10".into(), ip("10.2.0.1"), 1, 100, 1024),
            ("198.51.100.10".into(), ip("10.2.0.2"), 1, 0, 0),
            ("2001:db8:100::10".into(), ip("2001:db8:2::1"), 1, 100, 1024),
        ]
    );
    let _: ControlPingReply = reply(&cap, 37);

    let cli: CliInbandReply = reply(&cap, 39);
    assert_eq!(cli.retval, 0);
    assert!(
        cli.reply
            .starts_with(" ip4-gre4 [1] 192.0.2.1/32\n  new_size:1024\n")
    );
    assert!(
        cli.reply
            .contains(" ip4-gre4 [2] 198.51.100.10/32 src_ip_sticky\n")
    );

    let route: IpRouteLookupReply = reply(&cap, 41);
    assert_eq!(route.retval, 0);
    assert_eq!(route.route.stats_index, 15);
    assert_eq!(
        route.route.prefix,
        Prefix {
            address: ip("198.51.100.10"),
            len: 32
        }
    );
    assert_eq!(route.route.paths.len(), 1);
    assert_eq!(route.route.paths[0].sw_if_index, u32::MAX);
    assert_eq!(route.route.paths[0].weight, 1);

    assert_eq!(reply::<LbAddDelAsV2Reply>(&cap, 43).retval, 0);
    assert_eq!(reply::<LbAddDelVipV2Reply>(&cap, 45).retval, 0);
    assert_eq!(reply::<SockclntDeleteReply>(&cap, 47).response, 1);

    // The LB layer joins the three listings into pool indexes and flags.
    let snap = snapshot_from(&vips, &cli.reply, &ases).unwrap();
    let idx: Vec<(String, u32, bool)> = snap
        .vips
        .iter()
        .map(|v| (v.key.to_string(), v.pool_index, v.src_ip_sticky))
        .collect();
    assert_eq!(
        idx,
        [
            ("192.0.2.1/32 tcp/80".into(), 1, false),
            ("198.51.100.10/32 tcp/443".into(), 2, true),
            ("2001:db8:100::10/128 udp/53".into(), 3, false),
        ]
    );
    let obs = snap.observed();
    assert_eq!(obs[&vip443()].ases[&ip("10.2.0.2")], 0);
    assert_eq!(obs[&vip53()].encap, Encap::Gre6);
    assert_eq!(snap.ases.len(), 5);
}

#[test]
fn truncated_and_padded_replies_are_errors_naming_the_field() {
    let cap = load();
    let p = cap.frames[41].payload();
    let e = decode_message::<IpRouteLookupReply>(&p[..p.len() - 1]).unwrap_err();
    assert_eq!(e.message, "ip_route_lookup_reply");
    // Cut in the last byte of the last path: the field is named down to
    // the leaf, through the route, the path and its label stack.
    assert_eq!(e.field, "route.paths.label_stack.exp");
    assert_eq!(
        e.to_string(),
        "decoding ip_route_lookup_reply.route.paths.label_stack.exp: truncated: needs 1 bytes, 0 left"
    );
    let mut long = cap.frames[7].payload().to_vec();
    long.push(0);
    let e = decode_message::<LbConfGetReply>(&long).unwrap_err();
    assert_eq!(
        e.to_string(),
        "decoding lb_conf_get_reply.(end): 1 trailing bytes"
    );
}
