//! `decode(encode(x)) == x` for every message, and decoding never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use maglev_vpp::api::messages::*;
use maglev_vpp::api::types::*;
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn prefix() -> impl Strategy<Value = Prefix> {
    (addr(), any::<u8>()).prop_map(|(address, len)| Prefix { address, len })
}

fn lb_vip() -> impl Strategy<Value = LbVip> {
    (prefix(), any::<u8>(), any::<u16>()).prop_map(|(pfx, protocol, port)| LbVip {
        pfx,
        protocol,
        port,
    })
}

/// Printable ASCII without NUL, at most `n` bytes.
fn text(n: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{n}}}")).unwrap()
}

fn conf() -> impl Strategy<Value = LbConf> {
    (
        any::<[u8; 4]>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(a, b, s, t)| LbConf {
            ip4_src_address: a.into(),
            ip6_src_address: b.into(),
            sticky_buckets_per_core: s,
            flow_timeout: t,
        })
}

fn path() -> impl Strategy<Value = FibPath> {
    (any::<[u32; 6]>(), any::<[u8; 3]>(), any::<[u8; 16]>()).prop_map(|(w, b, a)| FibPath {
        sw_if_index: w[0],
        table_id: w[1],
        rpf_id: w[2],
        weight: b[0],
        preference: b[1],
        path_type: w[3],
        flags: w[4],
        proto: w[5],
        nh: FibPathNh {
            address: a,
            via_label: w[0] ^ 1,
            obj_id: w[1] ^ 2,
            classify_table_index: w[2] ^ 3,
        },
        n_labels: b[2],
        label_stack: [FibMplsLabel {
            is_uniform: b[0],
            label: w[3],
            ttl: b[1],
            exp: b[2],
        }; 16],
    })
}

fn roundtrip<M: Message + PartialEq + std::fmt::Debug>(m: M, context: u32, client_index: u32) {
    let env = Envelope {
        msg_id: 4242,
        client_index: if M::SHAPE == Shape::WithClientIndex {
            client_index
        } else {
            0
        },
        context,
    };
    let mut buf = BytesMut::new();
    encode_message(&m, env, &mut buf);
    let (back_env, back) = decode_message::<M>(&buf).unwrap();
    assert_eq!(back_env, env);
    assert_eq!(back, m);
    // Every strict prefix is an error, never a panic.
    for cut in [0, 1, buf.len() / 2, buf.len() - 1] {
        assert!(
            decode_message::<M>(&buf[..cut]).is_err(),
            "{} cut at {cut}",
            M::NAME
        );
    }
}

proptest! {
    #[test]
    fn memclnt_and_vpe(name in text(63), rv in any::<i32>(), idx in any::<u32>(), pid in any::<u32>(),
                       entries in proptest::collection::vec((any::<u16>(), text(63)), 0..5),
                       s in text(31), big in text(255), cli in text(300), ctx in any::<u32>()) {
        roundtrip(SockclntCreate { name: name.clone() }, ctx, 0);
        roundtrip(SockclntCreateReply {
            response: rv,
            index: idx,
            message_table: entries.into_iter().map(|(index, name)| MessageTableEntry { index, name }).collect(),
        }, ctx, idx);
        roundtrip(SockclntDelete { index: idx }, ctx, idx);
        roundtrip(SockclntDeleteReply { response: rv }, ctx, 0);
        roundtrip(MemclntKeepalive, ctx, idx);
        roundtrip(MemclntKeepaliveReply { retval: rv }, ctx, 0);
        roundtrip(ControlPing, ctx, idx);
        roundtrip(ControlPingReply { retval: rv, client_index: idx, vpe_pid: pid }, ctx, 0);
        roundtrip(ShowVersion, ctx, idx);
        roundtrip(ShowVersionReply {
            retval: rv, program: s.clone(), version: s.clone(), build_date: s, build_directory: big,
        }, ctx, 0);
        roundtrip(CliInband { cmd: cli.clone() }, ctx, idx);
        roundtrip(CliInbandReply { retval: rv, reply: cli }, ctx, 0);
    }

    #[test]
    fn lb(c in conf(), pfx in prefix(), vip in lb_vip(), a in addr(), rv in any::<i32>(),
          w in any::<[u32; 3]>(), b in any::<[u8; 4]>(), p in any::<[u16; 3]>(), ctx in any::<u32>()) {
        roundtrip(c, ctx, w[0]);
        roundtrip(LbConfReply { retval: rv }, ctx, 0);
        roundtrip(LbConfGet, ctx, w[0]);
        roundtrip(LbConfGetReply { retval: rv, conf: c }, ctx, 0);
        roundtrip(LbAddDelVipV2 {
            pfx, protocol: b[0], port: p[0], encap: LbEncapType(w[1]), dscp: b[1],
            srv_type: LbSrvType(w[2]), target_port: p[1], node_port: p[2],
            new_flows_table_length: w[0], src_ip_sticky: b[2] & 1 == 1, is_del: b[3] & 1 == 1,
        }, ctx, w[0]);
        roundtrip(LbAddDelVipV2Reply { retval: rv }, ctx, 0);
        roundtrip(LbAddDelAsV2 {
            pfx, protocol: b[0], port: p[0], as_address: a, weight: b[1],
            is_del: b[2] & 1 == 1, is_flush: b[3] & 1 == 1,
        }, ctx, w[0]);
        roundtrip(LbAddDelAsV2Reply { retval: rv }, ctx, 0);
        roundtrip(LbAsSetWeight { pfx, protocol: b[0], port: p[0], as_address: a, weight: b[1], is_flush: b[2] & 1 == 1 }, ctx, w[0]);
        roundtrip(LbAsSetWeightReply { retval: rv }, ctx, 0);
        roundtrip(LbFlushVip { pfx, protocol: b[0], port: p[0] }, ctx, w[0]);
        roundtrip(LbFlushVipReply { retval: rv }, ctx, 0);
        roundtrip(LbVipDump { pfx, pfx_matcher: PrefixMatcher { le: b[0], ge: b[1] }, protocol: b[2], port: p[0] }, ctx, w[0]);
        roundtrip(LbVipDetails {
            vip, encap: LbEncapType(w[0]), dscp: b[0], srv_type: LbSrvType(w[1]),
            target_port: p[0], flow_table_length: p[1],
        }, ctx, 0);
        roundtrip(LbAsV2Dump { pfx, protocol: b[0], port: p[0] }, ctx, w[0]);
        roundtrip(LbAsV2Details {
            vip, app_srv: a, flags: b[0], in_use_since: w[0], weight: b[1], num_buckets: w[1],
        }, ctx, 0);
    }

    #[test]
    fn ip(pfx in prefix(), rv in any::<i32>(), w in any::<[u32; 3]>(), e in any::<u8>(),
          paths in proptest::collection::vec(path(), 0..4), ctx in any::<u32>()) {
        roundtrip(IpRouteLookup { table_id: w[0], exact: e, prefix: pfx }, ctx, w[1]);
        roundtrip(IpRouteLookupReply {
            retval: rv,
            route: IpRoute { table_id: w[0], stats_index: w[1], prefix: pfx, paths },
        }, ctx, 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        maglev_vpp::fuzzing::decode_payload(&bytes);
        maglev_vpp::fuzzing::decode_stream(&bytes);
    }
}

#[test]
fn bad_address_family_names_the_field() {
    let mut buf = BytesMut::new();
    encode_message(
        &LbAsSetWeight {
            pfx: Prefix::ZERO,
            protocol: 6,
            port: 80,
            as_address: "10.0.0.1".parse().unwrap(),
            weight: 1,
            is_flush: false,
        },
        Envelope::default(),
        &mut buf,
    );
    buf[31] = 7; // as_address.af
    let e = decode_message::<LbAsSetWeight>(&buf).unwrap_err();
    assert_eq!(
        e.to_string(),
        "decoding lb_as_set_weight.as_address.af: invalid value 7: address family is neither 0 (IPv4) nor 1 (IPv6)"
    );
}

/// Errors name every nested field down to the leaf, with VPP's names.
#[test]
fn truncation_names_the_nested_field() {
    let mut buf = BytesMut::new();
    encode_message(
        &LbAddDelVipV2 {
            pfx: Prefix {
                address: "2001:db8::1".parse().unwrap(),
                len: 128,
            },
            protocol: 6,
            port: 80,
            encap: LbEncapType::GRE6,
            dscp: 0,
            srv_type: LbSrvType::CLUSTERIP,
            target_port: 0,
            node_port: 0,
            new_flows_table_length: 1024,
            src_ip_sticky: false,
            is_del: false,
        },
        Envelope::default(),
        &mut buf,
    );
    let field_at = |cut: usize| {
        decode_message::<LbAddDelVipV2>(&buf[..cut])
            .unwrap_err()
            .to_string()
    };
    // Header 10 bytes, then pfx.address.af, pfx.address.un (16), pfx.len.
    assert_eq!(
        field_at(10),
        "decoding lb_add_del_vip_v2.pfx.address.af: truncated: needs 1 bytes, 0 left"
    );
    assert_eq!(
        field_at(12),
        "decoding lb_add_del_vip_v2.pfx.address.un: truncated: needs 16 bytes, 1 left"
    );
    assert_eq!(
        field_at(27),
        "decoding lb_add_del_vip_v2.pfx.len: truncated: needs 1 bytes, 0 left"
    );
    // `srv_type` is VPP's `type`.
    assert_eq!(
        field_at(10 + 18 + 1 + 2 + 4 + 1),
        "decoding lb_add_del_vip_v2.type: truncated: needs 4 bytes, 0 left"
    );

    let mut buf = BytesMut::new();
    encode_message(
        &LbVipDetails {
            vip: LbVip {
                pfx: Prefix::ZERO,
                protocol: 6,
                port: 80,
            },
            encap: LbEncapType::GRE4,
            dscp: 0,
            srv_type: LbSrvType::CLUSTERIP,
            target_port: 0,
            flow_table_length: 1024,
        },
        Envelope::default(),
        &mut buf,
    );
    let e = decode_message::<LbVipDetails>(&buf[..6 + 18 + 1]).unwrap_err();
    assert_eq!(e.field, "vip.port");
}
