//! Layouts and CRCs against VPP's own API definitions
//! (`../shared/vpp-api/*.api.json` and `messages.json`): for every message
//! maglev uses, the name, CRC, header shape and encoded size match, and the
//! decoder reads the fields in VPP's order at VPP's offsets.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use maglev_vpp::api::codec::Codec;
use maglev_vpp::api::messages::*;
use maglev_vpp::api::types::{IpRoute, LbEncapType, LbSrvType, LbVip, Prefix, PrefixMatcher};
use serde_json::Value;

/// Every `*.api.json`: messages by name, and the sizes of types.
struct ApiJson {
    messages: HashMap<String, Vec<Value>>,
    types: HashMap<String, Vec<Value>>,
    unions: HashMap<String, Vec<Value>>,
    enums: HashMap<String, String>,
    aliases: HashMap<String, Value>,
}

fn load_api_json() -> ApiJson {
    let mut api = ApiJson {
        messages: HashMap::new(),
        types: HashMap::new(),
        unions: HashMap::new(),
        enums: HashMap::new(),
        aliases: HashMap::new(),
    };
    let dir = common::shared().join("vpp-api");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".api.json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let named = |key: &str| -> Vec<(String, Vec<Value>)> {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|m| {
                            let m = m.as_array().unwrap();
                            (m[0].as_str().unwrap().to_owned(), m[1..].to_vec())
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        api.messages.extend(named("messages"));
        api.types.extend(named("types"));
        api.unions.extend(named("unions"));
        for kind in ["enums", "enumflags"] {
            for (name, body) in named(kind) {
                let base = body
                    .iter()
                    .find_map(|b| b.get("enumtype"))
                    .and_then(Value::as_str)
                    .unwrap_or("u32")
                    .to_owned();
                api.enums.insert(name, base);
            }
        }
        if let Some(a) = v["aliases"].as_object() {
            api.aliases
                .extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    api
}

impl ApiJson {
    /// Size of a type with its variable parts empty.
    fn size(&self, ty: &str) -> usize {
        match ty {
            "u8" | "i8" | "bool" => 1,
            "u16" | "i16" => 2,
            "u32" | "i32" => 4,
            "u64" | "i64" | "f64" => 8,
            _ => {
                let name = ty.trim_start_matches("vl_api_").trim_end_matches("_t");
                if let Some(fields) = self.types.get(name) {
                    self.fields_size(fields)
                } else if let Some(arms) = self.unions.get(name) {
                    arms.iter()
                        .filter_map(|a| a.as_array())
                        .map(|a| self.field_size(a))
                        .max()
                        .unwrap()
                } else if let Some(base) = self.enums.get(name) {
                    self.size(base)
                } else if let Some(alias) = self.aliases.get(name) {
                    let n = alias["length"].as_u64().unwrap_or(1) as usize;
                    n * self.size(alias["type"].as_str().unwrap())
                } else {
                    panic!("unknown type {ty}")
                }
            }
        }
    }

    fn field_size(&self, f: &[Value]) -> usize {
        let ty = f[0].as_str().unwrap();
        match f.get(2) {
            Some(Value::Number(n)) if ty == "string" && n.as_u64() == Some(0) => 4,
            Some(Value::Number(n)) if ty == "string" => n.as_u64().unwrap() as usize,
            Some(Value::Number(n)) => n.as_u64().unwrap() as usize * self.size(ty),
            Some(Value::String(_)) => 0,
            _ if ty == "string" => 4,
            _ => self.size(ty),
        }
    }

    fn fields_size(&self, fields: &[Value]) -> usize {
        fields
            .iter()
            .filter_map(|f| f.as_array())
            .map(|f| self.field_size(f))
            .sum()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One encoded message and its decoder.
struct Sample {
    id: MsgId,
    bytes: Vec<u8>,
    decode: fn(&[u8]) -> Result<(), maglev_vpp::api::codec::DecodeError>,
}

fn encoded<M: Message>(m: M) -> Sample {
    let mut buf = BytesMut::new();
    encode_message(&m, Envelope::default(), &mut buf);
    Sample {
        id: M::ID,
        bytes: buf.to_vec(),
        decode: |b| decode_message::<M>(b).map(drop),
    }
}

/// One sample of every message, variable parts empty.
fn samples() -> Vec<Sample> {
    let pfx = Prefix {
        address: ip("192.0.2.1"),
        len: 32,
    };
    let vip = LbVip {
        pfx,
        protocol: 6,
        port: 80,
    };
    let conf = LbConf {
        ip4_src_address: Ipv4Addr::LOCALHOST,
        ip6_src_address: Ipv6Addr::LOCALHOST,
        sticky_buckets_per_core: 1024,
        flow_timeout: 40,
    };
    vec![
        encoded(SockclntCreate {
            name: "maglev".into(),
        }),
        encoded(SockclntCreateReply {
            response: 0,
            index: 1,
            message_table: vec![],
        }),
        encoded(SockclntDelete { index: 1 }),
        encoded(SockclntDeleteReply { response: 1 }),
        encoded(MemclntKeepalive),
        encoded(MemclntKeepaliveReply { retval: 0 }),
        encoded(ControlPing),
        encoded(ControlPingReply {
            retval: 0,
            client_index: 1,
            vpe_pid: 2,
        }),
        encoded(ShowVersion),
        encoded(ShowVersionReply::default()),
        encoded(CliInband::default()),
        encoded(CliInbandReply::default()),
        encoded(conf),
        encoded(LbConfReply { retval: 0 }),
        encoded(LbConfGet),
        encoded(LbConfGetReply { retval: 0, conf }),
        encoded(LbAddDelVipV2 {
            pfx,
            protocol: 6,
            port: 80,
            encap: LbEncapType::GRE4,
            dscp: 0,
            srv_type: LbSrvType::CLUSTERIP,
            target_port: 0,
            node_port: 0,
            new_flows_table_length: 1024,
            src_ip_sticky: false,
            is_del: false,
        }),
        encoded(LbAddDelVipV2Reply { retval: 0 }),
        encoded(LbAddDelAsV2 {
            pfx,
            protocol: 6,
            port: 80,
            as_address: ip("2001:db8::1"),
            weight: 1,
            is_del: false,
            is_flush: false,
        }),
        encoded(LbAddDelAsV2Reply { retval: 0 }),
        encoded(LbAsSetWeight {
            pfx,
            protocol: 6,
            port: 80,
            as_address: ip("10.0.0.1"),
            weight: 1,
            is_flush: true,
        }),
        encoded(LbAsSetWeightReply { retval: 0 }),
        encoded(LbFlushVip {
            pfx,
            protocol: 6,
            port: 80,
        }),
        encoded(LbFlushVipReply { retval: 0 }),
        encoded(LbVipDump {
            pfx,
            pfx_matcher: PrefixMatcher::default(),
            protocol: 255,
            port: 0,
        }),
        encoded(LbVipDetails {
            vip,
            encap: LbEncapType::GRE6,
            dscp: 0,
            srv_type: LbSrvType::CLUSTERIP,
            target_port: 0,
            flow_table_length: 1024,
        }),
        encoded(LbAsV2Dump::default()),
        encoded(LbAsV2Details {
            vip,
            app_srv: ip("10.0.0.1"),
            flags: 1,
            in_use_since: 0,
            weight: 100,
            num_buckets: 1024,
        }),
        encoded(IpRouteLookup {
            table_id: 0,
            exact: 1,
            prefix: pfx,
        }),
        encoded(IpRouteLookupReply {
            retval: 0,
            route: IpRoute {
                table_id: 0,
                stats_index: 1,
                prefix: pfx,
                paths: vec![],
            },
        }),
    ]
}

#[test]
fn names_crcs_shapes_and_sizes_match_vpp() {
    let api = load_api_json();
    let samples = samples();
    assert_eq!(samples.len(), MsgId::ALL.len(), "a sample per message");
    for Sample { id, bytes, .. } in samples {
        let len = bytes.len();
        let def = api
            .messages
            .get(id.name())
            .unwrap_or_else(|| panic!("{} not in the .api.json files", id.name()));
        let crc = def
            .iter()
            .find_map(|v| v.get("crc"))
            .and_then(Value::as_str)
            .unwrap();
        assert_eq!(crc, format!("0x{:08x}", id.crc()), "CRC of {}", id.name());
        let fields: Vec<&str> = def
            .iter()
            .filter_map(|f| f.as_array())
            .map(|f| f[1].as_str().unwrap())
            .collect();
        let shape = if fields.get(1) == Some(&"client_index") {
            Shape::WithClientIndex
        } else {
            Shape::ContextOnly
        };
        assert_eq!(shape, id.shape(), "header of {}", id.name());
        assert_eq!(
            len,
            api.fields_size(def),
            "encoded size of {} (fields {fields:?})",
            id.name()
        );
    }
}

#[test]
fn flattened_messages_json_agrees() {
    let path = common::shared().join("vpp-api/messages.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let by_name: HashMap<&str, &Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m))
        .collect();
    let sizes: HashMap<MsgId, usize> = samples()
        .into_iter()
        .map(|s| (s.id, s.bytes.len()))
        .collect();
    for &id in MsgId::ALL {
        let m = by_name
            .get(id.name())
            .unwrap_or_else(|| panic!("{} not in messages.json", id.name()));
        assert_eq!(m["name_crc"].as_str().unwrap(), id.key());
        assert_eq!(
            m["fixed_size"].as_u64().unwrap() as usize,
            sizes[&id],
            "{}",
            id.name()
        );
    }
}

/// Cutting a message just before a field makes the decoder fail on that
/// field: so it reads VPP's fields in VPP's order, at VPP's offsets.
#[test]
fn fields_in_vpp_order_at_vpp_offsets() {
    let api = load_api_json();
    for s in samples() {
        let name = s.id.name();
        let mut offset = 0;
        for f in api.messages[name].iter().filter_map(|f| f.as_array()) {
            let field = f[1].as_str().unwrap();
            let size = api.field_size(f);
            // An empty variable-length array has no bytes to cut before.
            if size > 0 {
                let err = (s.decode)(&s.bytes[..offset])
                    .expect_err("a message cut short must not decode");
                assert!(
                    err.field == field || err.field.starts_with(&format!("{field}.")),
                    "{name}: cut at offset {offset}, before `{field}`, the decoder was reading `{}`",
                    err.field
                );
                assert!(
                    matches!(
                        err.kind,
                        maglev_vpp::api::codec::DecodeErrorKind::Truncated { .. }
                    ),
                    "{name}.{field}: {err}"
                );
            }
            offset += size;
        }
        assert_eq!(
            offset,
            s.bytes.len(),
            "{name}: fields add up to the encoding"
        );
    }
}

#[test]
fn ip_route_paths_are_167_bytes_each() {
    let api = load_api_json();
    assert_eq!(api.size("vl_api_fib_path_t"), 167);
    let mut buf = BytesMut::new();
    maglev_vpp::api::types::FibPath::default().encode(&mut buf);
    assert_eq!(buf.len(), 167);
}
