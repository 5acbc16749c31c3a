//! The raw YAML layer: the file decoded strictly into serde structs.
//!
//! This is the only module that knows `serde_yaml`. Every struct denies
//! unknown keys, maps reject duplicate keys, and durations and status-code
//! sets are decoded here so their errors carry a line and column. Nothing is
//! defaulted here; `validate` turns these into the typed model.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ParseError;
use super::duration::parse_duration;
use crate::dataplane::Protocol;

/// Decodes `text` strictly. `origin` names the input in errors.
pub(super) fn parse(text: &str, origin: &str) -> Result<RawMaglev, ParseError> {
    let de = serde_yaml::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, RawFile>(de) {
        Ok(file) => Ok(file.maglev),
        Err(err) => {
            // serde_path_to_error writes `?` for a key it could not read yet.
            let mut path = err.path().to_string();
            while let Some(p) = path.strip_suffix(".?") {
                path = p.to_owned();
            }
            let inner = err.into_inner();
            let (line, column) = inner.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = bare_message(&inner.to_string(), &path, line, column);
            let path = if path == "." {
                "(top level)".to_owned()
            } else {
                path
            };
            Err(ParseError {
                origin: origin.to_owned(),
                line,
                column,
                path,
                message,
            })
        }
    }
}

/// serde_yaml's message without the path prefix and the location suffix it
/// adds itself (we report both separately).
fn bare_message(full: &str, path: &str, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    let mut msg = full.strip_suffix(suffix.as_str()).unwrap_or(full);
    // serde_yaml prefixes the path of the value being decoded, which for an
    // unknown key is the parent of the key's path.
    let mut prefix = path;
    loop {
        if let Some(rest) = msg.strip_prefix(prefix).and_then(|r| r.strip_prefix(": ")) {
            msg = rest;
            break;
        }
        match prefix.rfind(['.', '[']) {
            Some(i) if i > 0 => prefix = &prefix[..i],
            _ => break,
        }
    }
    msg.to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    maglev: RawMaglev,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMaglev {
    pub(super) healthchecker: Option<RawHealthChecker>,
    pub(super) access: Option<RawAccess>,
    pub(super) vpp: Option<RawVpp>,
    pub(super) announce: Option<RawAnnounce>,
    pub(super) healthchecks: Option<UniqueMap<RawHealthCheck>>,
    pub(super) backends: Option<UniqueMap<RawBackend>>,
    pub(super) frontends: Option<UniqueMap<RawFrontend>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHealthChecker {
    pub(super) transition_history: Option<u64>,
    pub(super) netns: Option<String>,
    pub(super) state_max_age: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAccess {
    pub(super) admins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawVpp {
    pub(super) lb: Option<RawLb>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAnnounce {
    pub(super) table: Option<u32>,
    pub(super) protocol: Option<u8>,
    pub(super) netns: Option<String>,
    pub(super) min_interval: Option<Dur>,
    pub(super) vpp_grace: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawLb {
    pub(super) ipv4_src_address: Option<IpAddr>,
    pub(super) ipv6_src_address: Option<IpAddr>,
    pub(super) sticky_buckets_per_core: Option<u32>,
    pub(super) flow_timeout: Option<Dur>,
    pub(super) sync_interval: Option<Dur>,
    pub(super) startup_min_delay: Option<Dur>,
    pub(super) startup_max_delay: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHealthCheck {
    #[serde(rename = "type")]
    pub(super) kind: RawProbeKind,
    pub(super) port: Option<u16>,
    pub(super) interval: Option<Dur>,
    pub(super) fast_interval: Option<Dur>,
    pub(super) down_interval: Option<Dur>,
    pub(super) timeout: Option<Dur>,
    pub(super) rise: Option<u32>,
    pub(super) fall: Option<u32>,
    pub(super) params: Option<RawParams>,
    pub(super) damping: Option<RawDamping>,
    pub(super) slow_start: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDamping {
    pub(super) half_life: Option<Dur>,
    pub(super) suppress: Option<f64>,
    pub(super) reuse: Option<f64>,
    pub(super) max_suppress: Option<Dur>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawProbeKind {
    Http,
    Https,
    Tcp,
    Icmp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawParams {
    pub(super) path: Option<String>,
    pub(super) method: Option<RawMethod>,
    pub(super) host: Option<String>,
    pub(super) response_code: Option<RawCodes>,
    pub(super) response_regex: Option<String>,
    pub(super) max_body: Option<u64>,
    pub(super) server_name: Option<String>,
    pub(super) insecure_skip_verify: Option<bool>,
    pub(super) tls: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) enum RawMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBackend {
    pub(super) address: IpAddr,
    pub(super) healthcheck: Option<String>,
    pub(super) enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFrontend {
    pub(super) address: IpAddr,
    pub(super) protocol: Option<RawProtocol>,
    pub(super) port: Option<u16>,
    pub(super) description: Option<String>,
    pub(super) pools: Option<Vec<RawPool>>,
    pub(super) src_ip_sticky: Option<bool>,
    pub(super) flush_on_down: Option<bool>,
    pub(super) flow_table_length: Option<RawTableLength>,
}

/// `flow-table-length`: a number (checked in `validate`) or `auto`.
#[derive(Debug, Clone, Copy)]
pub(super) enum RawTableLength {
    Fixed(u64),
    Auto,
}

impl<'de> Deserialize<'de> for RawTableLength {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawTableLength;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a power of two like 1024, or auto")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawTableLength, E> {
                Ok(RawTableLength::Fixed(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawTableLength, E> {
                Err(E::custom(format!(
                    "{n} is not a table length: a power of two like 1024, or auto"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawTableLength, E> {
                match s {
                    "auto" => Ok(RawTableLength::Auto),
                    other => Err(E::custom(format!(
                        "{other:?} is not a table length: a power of two like 1024, or auto"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawProtocol {
    Tcp,
    Udp,
}

impl From<RawProtocol> for Protocol {
    fn from(p: RawProtocol) -> Protocol {
        match p {
            RawProtocol::Tcp => Protocol::Tcp,
            RawProtocol::Udp => Protocol::Udp,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPool {
    pub(super) name: Option<String>,
    pub(super) backends: Option<UniqueMap<Option<RawMember>>>,
    pub(super) min_up: Option<RawThreshold>,
    pub(super) min_up_to_return: Option<RawThreshold>,
}

/// `min-up` and `min-up-to-return`: a count of backends or a percentage
/// of the pool (`50%`), range-checked in `validate`.
#[derive(Debug, Clone, Copy)]
pub(super) enum RawThreshold {
    Count(u64),
    Percent(u64),
}

impl<'de> Deserialize<'de> for RawThreshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawThreshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of backends like 3, or a percentage like 50%")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawThreshold, E> {
                Err(E::custom(format!(
                    "{n} is not a number of backends: write a count like 3 or a percentage like 50%"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawThreshold, E> {
                s.strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .map(RawThreshold::Percent)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{s:?} is not a threshold: write a count like 3 or a percentage like 50%"
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMember {
    pub(super) weight: Option<u64>,
}

/// A duration written with a unit (`2s`, `500ms`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Dur(pub(super) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, like 2s or 500ms")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                if n == 0 {
                    Ok(Dur(Duration::ZERO))
                } else {
                    Err(E::custom(format!(
                        "duration {n} has no unit: write {n}s or {n}ms"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write it like 2s or 500ms"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// An HTTP status code set: `200`, `"200-399"` or a list of either.
#[derive(Debug, Clone)]
pub(super) struct RawCodes(pub(super) Vec<(u64, u64)>);

fn parse_code_item(s: &str) -> Result<(u64, u64), String> {
    let bad =
        || format!("invalid response code {s:?}: expected a code like 200 or a range like 200-399");
    let parse = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
    match s.split_once('-') {
        Some((lo, hi)) => Ok((parse(lo)?, parse(hi)?)),
        None => parse(s).map(|c| (c, c)),
    }
}

impl<'de> Deserialize<'de> for RawCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCodes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code, a range like \"200-399\", or a list of them")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawCodes, E> {
                Ok(RawCodes(vec![(n, n)]))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawCodes, E> {
                parse_code_item(s)
                    .map(|r| RawCodes(vec![r]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCodes, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<CodeItem>()? {
                    out.push(item.0);
                }
                Ok(RawCodes(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct CodeItem((u64, u64));

impl<'de> Deserialize<'de> for CodeItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CodeItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code or a range like \"200-399\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<CodeItem, E> {
                Ok(CodeItem((n, n)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CodeItem, E> {
                parse_code_item(s).map(CodeItem).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A map keyed by name that refuses a key given twice (YAML would otherwise
/// keep the last one silently).
#[derive(Debug)]
pub(super) struct UniqueMap<V>(pub(super) BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map keyed by name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap<V>, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.contains_key(&key) {
                        return Err(de::Error::custom(format!("duplicate key {key:?}")));
                    }
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_serde_yaml_decoration() {
        assert_eq!(
            bare_message(
                "maglev.backends.a: unknown field `wat`, expected `x` at line 4 column 7",
                "maglev.backends.a.wat",
                4,
                7
            ),
            "unknown field `wat`, expected `x`"
        );
        assert_eq!(
            bare_message("missing field `maglev`", ".", 1, 1),
            "missing field `maglev`"
        );
    }
}
