//! Replies as JSON (`maglevc --json`, the web dashboard), by the proto3 JSON mapping over the same
//! descriptor set the server publishes for reflection, so the output has
//! exactly the proto's fields. Field names are the proto's (snake_case);
//! every scalar, list and map field is present (defaults included), so
//! they never come and go with the values, while a message or `optional`
//! field that is unset (`damping`, `slow_start_step`, a backend event's
//! `transition`) is left out; 64-bit integers are numbers, not strings.

use prost::Message;
use prost_reflect::{DynamicMessage, SerializeOptions};

use crate::grpc::proto;

/// A reply message that can be printed as JSON: its full proto name.
pub trait Reply: Message {
    /// The message's full name, e.g. `maglev.FrontendInfo`.
    const NAME: &'static str;
}

macro_rules! replies {
    ($($t:ident = $name:literal),* $(,)?) => {
        $(impl Reply for proto::$t {
            const NAME: &'static str = $name;
        })*
    };
}

replies!(
    ListFrontendsResponse = "maglev.ListFrontendsResponse",
    FrontendInfo = "maglev.FrontendInfo",
    ListBackendsResponse = "maglev.ListBackendsResponse",
    BackendInfo = "maglev.BackendInfo",
    ListHealthChecksResponse = "maglev.ListHealthChecksResponse",
    HealthCheckInfo = "maglev.HealthCheckInfo",
    Event = "maglev.Event",
    CheckConfigResponse = "maglev.CheckConfigResponse",
    ReloadConfigResponse = "maglev.ReloadConfigResponse",
    VppInfo = "maglev.VPPInfo",
    VpplbState = "maglev.VPPLBState",
    SyncVpplbStateResponse = "maglev.SyncVPPLBStateResponse",
    VpplbCounters = "maglev.VPPLBCounters",
    ListOverridesResponse = "maglev.ListOverridesResponse",
    OperatorOverride = "maglev.OperatorOverride",
    ListAnnouncementsResponse = "maglev.ListAnnouncementsResponse",
    NodeInfo = "maglev.NodeInfo",
);

/// `msg` as a JSON value.
pub fn value<M: Reply>(msg: &M) -> Result<serde_json::Value, String> {
    value_of_encoded::<M>(&msg.encode_to_vec())
}

/// An `M` already encoded (e.g. an event the hub encoded once) as a JSON
/// value.
pub fn value_of_encoded<M: Reply>(encoded: &[u8]) -> Result<serde_json::Value, String> {
    let desc = proto::descriptors()?
        .get_message_by_name(M::NAME)
        .ok_or_else(|| format!("no message {} in the descriptor set", M::NAME))?;
    let dynamic = DynamicMessage::decode(desc, encoded)
        .map_err(|e| format!("{} does not decode: {e}", M::NAME))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("{} does not serialize: {e}", M::NAME))
}

/// `msg` as pretty JSON, ending in a newline.
pub fn pretty<M: Reply>(msg: &M) -> Result<String, String> {
    let v = value(msg)?;
    serde_json::to_string_pretty(&v)
        .map(|s| s + "\n")
        .map_err(|e| format!("{} does not print: {e}", M::NAME))
}

/// `msg` as one line of JSON, ending in a newline.
pub fn compact<M: Reply>(msg: &M) -> Result<String, String> {
    let v = value(msg)?;
    serde_json::to_string(&v)
        .map(|s| s + "\n")
        .map_err(|e| format!("{} does not print: {e}", M::NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_has_its_descriptor_and_prints_every_field() {
        let f = proto::FrontendInfo {
            name: "web".into(),
            port: 80,
            pools: vec![proto::PoolInfo {
                name: "primary".into(),
                backends: vec![proto::PoolBackendInfo {
                    name: "b1".into(),
                    weight: 100,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = value(&f).unwrap();
        assert_eq!(v["name"], "web");
        assert_eq!(v["port"], 80);
        assert_eq!(v["src_ip_sticky"], false);
        assert_eq!(v["pools"][0]["backends"][0]["effective_weight"], 0);
        let c = proto::VpplbCounters {
            scrape_unix_nanos: 1_796_158_858_000_000_000,
            ..Default::default()
        };
        assert_eq!(
            value(&c).unwrap()["scrape_unix_nanos"],
            1_796_158_858_000_000_000_i64
        );
        let b = proto::BackendInfo {
            last_probe: Some(proto::ProbeResult {
                duration: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 1_500_000,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(value(&b).unwrap()["last_probe"]["duration"], "0.001500s");
        for name in [
            proto::ListFrontendsResponse::NAME,
            proto::VppInfo::NAME,
            proto::VpplbState::NAME,
            proto::SyncVpplbStateResponse::NAME,
            proto::Event::NAME,
            proto::ReloadConfigResponse::NAME,
        ] {
            assert!(
                proto::descriptors()
                    .unwrap()
                    .get_message_by_name(name)
                    .is_some(),
                "{name}"
            );
        }
        assert!(compact(&f).unwrap().lines().count() == 1);
    }

    #[test]
    fn damping_slow_start_and_pool_thresholds_print_and_unset_ones_are_left_out() {
        let f = proto::FrontendInfo {
            pools: vec![proto::PoolInfo {
                name: "primary".into(),
                backends: vec![
                    proto::PoolBackendInfo {
                        name: "a".into(),
                        suppressed: true,
                        ..Default::default()
                    },
                    proto::PoolBackendInfo {
                        name: "b".into(),
                        slow_start_step: Some(0),
                        ..Default::default()
                    },
                ],
                min_up: 2,
                min_up_to_return: 3,
                serving: 1,
            }],
            ..Default::default()
        };
        let v = value(&f).unwrap();
        let p = &v["pools"][0];
        assert_eq!(
            (&p["min_up"], &p["min_up_to_return"], &p["serving"]),
            (&2.into(), &3.into(), &1.into())
        );
        let a = p["backends"][0].as_object().unwrap();
        assert_eq!(a["suppressed"], true);
        // `optional`: left out when unset, printed when set, even to 0.
        assert_eq!(a.get("slow_start_step"), None);
        assert_eq!(p["backends"][1]["slow_start_step"], 0);
        assert_eq!(p["backends"][1]["suppressed"], false);

        let b = proto::BackendInfo {
            flaps: 7,
            damping: Some(proto::Damping {
                suppressed: true,
                penalty: 3.5,
                release_unix_nanos: 1_796_158_858_000_000_000,
                half_life: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                suppress: 3.0,
                reuse: 1.0,
                max_suppress: None,
            }),
            slow_start: Some(proto::SlowStart {
                since_unix_nanos: 1,
                length: Some(prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
                step: 4,
            }),
            ..Default::default()
        };
        let v = value(&b).unwrap();
        assert_eq!(v["flaps"], 7);
        assert_eq!(v["damping"]["suppressed"], true);
        assert_eq!(v["damping"]["penalty"], 3.5);
        assert_eq!(
            v["damping"]["release_unix_nanos"],
            1_796_158_858_000_000_000_i64
        );
        assert_eq!(v["damping"]["half_life"], "60s");
        assert_eq!(v["slow_start"]["step"], 4);
        assert_eq!(v["slow_start"]["length"], "30s");
        // Messages are left out when unset, scalars never.
        let v = value(&proto::BackendInfo::default()).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o["flaps"], 0);
        assert_eq!((o.get("damping"), o.get("slow_start")), (None, None));

        let e = proto::Event {
            unix_nanos: 1,
            kind: Some(proto::event::Kind::Backend(proto::BackendEvent {
                backend: "a".into(),
                damping: Some(proto::DampingEvent {
                    suppressed: false,
                    penalty: 0.75,
                    release_unix_nanos: 0,
                }),
                ..Default::default()
            })),
        };
        let v = value(&e).unwrap();
        assert_eq!(v["backend"]["damping"]["suppressed"], false);
        assert_eq!(v["backend"]["damping"]["penalty"], 0.75);
        assert_eq!(v["backend"].as_object().unwrap().get("transition"), None);
    }
}
