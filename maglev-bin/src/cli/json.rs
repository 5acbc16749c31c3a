//! `--json`: a reply as JSON, by the proto3 JSON mapping over the same
//! descriptor set the server publishes for reflection, so the output has
//! exactly the proto's fields. Field names are the proto's (snake_case),
//! every field is present (defaults included) so the shape never changes
//! with the values, and 64-bit integers are numbers, not strings.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

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
);

fn pool() -> Result<&'static DescriptorPool, String> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("the built-in descriptor set does not load: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `msg` as a JSON value.
pub fn value<M: Reply>(msg: &M) -> Result<serde_json::Value, String> {
    let desc = pool()?
        .get_message_by_name(M::NAME)
        .ok_or_else(|| format!("no message {} in the descriptor set", M::NAME))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
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
            vips: vec![],
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
                pool().unwrap().get_message_by_name(name).is_some(),
                "{name}"
            );
        }
        assert!(compact(&f).unwrap().lines().count() == 1);
    }
}
