//! The state file (`maglev_health::persist`): the JSON layout, every
//! refusal with its message, the atomic write and `load`'s verdicts.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use maglev_core::state::BackendState;
use maglev_health::fuzzing;
use maglev_health::persist::{
    self, FORMAT, Intent, Loaded, MAX_ENTRIES, MAX_STATE_FILE_BYTES, SavedBackend, SavedDrain,
    SavedFrontend, SavedIntent, SavedOverrides, SavedState, SavedWeight, StateFileError, VERSION,
    decode, encode, load, write_atomic,
};
use proptest::prelude::*;

const ORIGIN: &str = "/var/lib/vpp-maglev/state.json";
const WRITTEN: i64 = 1_764_670_000_123;

fn backend(address: &str, state: BackendState, since: i64, penalty: f64) -> SavedBackend {
    SavedBackend {
        address: address.parse().unwrap(),
        state,
        since_unix_ms: since,
        penalty,
    }
}

/// The example of the module doc: two backends, two frontends.
fn example() -> SavedState {
    SavedState {
        written_unix_ms: WRITTEN,
        backends: BTreeMap::from([
            (
                "nginx0-ams".to_owned(),
                backend("10.0.0.2", BackendState::Up, 1_764_660_000_000, 0.0),
            ),
            (
                "nginx1-fra".to_owned(),
                backend("2001:db8::7", BackendState::Down, WRITTEN, 1.5),
            ),
        ]),
        frontends: BTreeMap::from([
            (
                "web".to_owned(),
                SavedFrontend {
                    active_pool: Some("primary".into()),
                },
            ),
            ("dns".to_owned(), SavedFrontend { active_pool: None }),
        ]),
        overrides: SavedOverrides::default(),
    }
}

/// The example with overrides: what version 2 adds.
fn example_v2() -> SavedState {
    let mut state = example();
    state.overrides.backends.insert(
        "nginx1-fra".to_owned(),
        SavedIntent {
            intent: Intent::Disabled,
            by: "bob".to_owned(),
            at_unix_ms: WRITTEN - 300_000,
            file_enabled: true,
        },
    );
    state.overrides.weights.insert(
        (
            "web".to_owned(),
            "primary".to_owned(),
            "nginx0-ams".to_owned(),
        ),
        SavedWeight {
            weight: 10,
            file_weight: 100,
            by: "CN=alice".to_owned(),
            at_unix_ms: WRITTEN - 7_200_000,
        },
    );
    state
}

const EXAMPLE_JSON: &str = r#"{
  "format": "vpp-maglev-state",
  "version": 1,
  "written-unix-ms": 1764670000123,
  "backends": {
    "nginx0-ams": {
      "address": "10.0.0.2",
      "state": "up",
      "since-unix-ms": 1764660000000,
      "penalty": 0.0
    },
    "nginx1-fra": {
      "address": "2001:db8::7",
      "state": "down",
      "since-unix-ms": 1764670000123,
      "penalty": 1.5
    }
  },
  "frontends": {
    "dns": {
      "active-pool": null
    },
    "web": {
      "active-pool": "primary"
    }
  }
}
"#;

/// The example with overrides as version 2 writes it.
const EXAMPLE_V2_JSON: &str = r#"{
  "format": "vpp-maglev-state",
  "version": 2,
  "written-unix-ms": 1764670000123,
  "backends": {
    "nginx0-ams": {
      "address": "10.0.0.2",
      "state": "up",
      "since-unix-ms": 1764660000000,
      "penalty": 0.0
    },
    "nginx1-fra": {
      "address": "2001:db8::7",
      "state": "down",
      "since-unix-ms": 1764670000123,
      "penalty": 1.5
    }
  },
  "frontends": {
    "dns": {
      "active-pool": null
    },
    "web": {
      "active-pool": "primary"
    }
  },
  "overrides": {
    "backends": {
      "nginx1-fra": {
        "state": "disabled",
        "by": "bob",
        "at-unix-ms": 1764669700123,
        "file-enabled": true
      }
    },
    "weights": [
      {
        "frontend": "web",
        "pool": "primary",
        "backend": "nginx0-ams",
        "weight": 10,
        "file-weight": 100,
        "by": "CN=alice",
        "at-unix-ms": 1764662800123
      }
    ]
  }
}
"#;

/// The example with the node drained: what version 3 adds.
fn example_v3() -> SavedState {
    let mut state = example_v2();
    state.overrides.drain = Some(SavedDrain {
        by: "carol".to_owned(),
        at_unix_ms: WRITTEN - 60_000,
    });
    state
}

/// The example with overrides and the drain as version 3 writes it.
fn example_v3_json() -> String {
    EXAMPLE_V2_JSON
        .replacen(r#""version": 2"#, r#""version": 3"#, 1)
        .replacen(
            "\n    },\n    \"weights\"",
            "\n    },\n    \"drain\": {\n      \"by\": \"carol\",\n      \"at-unix-ms\": 1764669940123\n    },\n    \"weights\"",
            1,
        )
}

/// The message of refusing `text`.
fn refusal(text: &str) -> String {
    match decode(text.as_bytes(), ORIGIN) {
        Ok(s) => panic!("accepted {text:?} as {s:?}"),
        Err(e) => e.to_string(),
    }
}

/// The example file with `from` replaced by `to` (which must occur).
fn edited(from: &str, to: &str) -> String {
    assert!(
        EXAMPLE_JSON.contains(from),
        "{from:?} is not in the example"
    );
    EXAMPLE_JSON.replacen(from, to, 1)
}

// ---- The layout -------------------------------------------------------

#[test]
fn encode_writes_the_documented_layout() {
    let bytes = encode(&example_v3());
    assert_eq!(std::str::from_utf8(&bytes).unwrap(), example_v3_json());
    assert_eq!(decode(&bytes, ORIGIN), Ok(example_v3()));
    // Not drained: `null`.
    let bytes = encode(&example_v2());
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("\n    \"drain\": null,\n"), "{text}");
    assert_eq!(decode(&bytes, ORIGIN), Ok(example_v2()));
}

#[test]
fn a_version_2_file_is_read_as_a_node_not_drained() {
    assert_eq!(decode(EXAMPLE_V2_JSON.as_bytes(), ORIGIN), Ok(example_v2()));
    // A version 3 file without the field, or with null, is not drained.
    let v3 = EXAMPLE_V2_JSON.replacen(r#""version": 2"#, r#""version": 3"#, 1);
    assert_eq!(decode(v3.as_bytes(), ORIGIN), Ok(example_v2()));
}

#[test]
fn a_drain_is_refused_in_version_2() {
    let v2_with = example_v3_json().replacen(r#""version": 3"#, r#""version": 2"#, 1);
    assert_eq!(
        refusal(&v2_with),
        format!(r#"state file {ORIGIN}: "drain" in a version 2 file"#)
    );
}

#[test]
fn a_bad_drain_record_is_refused_naming_the_field() {
    let v3 = example_v3_json();
    for (from, to, why) in [
        (
            r#""by": "carol""#,
            r#""by": """#,
            r#"drain: "by" is empty"#.to_owned(),
        ),
        (
            r#""at-unix-ms": 1764669940123"#,
            r#""at-unix-ms": 1764670000124"#,
            "drain: at-unix-ms 1764670000124 is after written-unix-ms 1764670000123".to_owned(),
        ),
        (
            r#""by": "carol""#,
            &format!(r#""by": "{}""#, "x".repeat(persist::MAX_IDENTITY_BYTES + 1)),
            "drain: \"by\" is 1025 bytes, more than 1024".to_owned(),
        ),
    ] {
        assert!(v3.contains(from), "{from}");
        let text = v3.replacen(from, to, 1);
        assert_eq!(
            refusal(&text),
            format!("state file {ORIGIN}: {why}"),
            "{to}"
        );
    }
    // A field of another name, or one missing, is named too.
    for (from, to, field) in [
        (r#""by": "carol""#, r#""who": "carol""#, "who"),
        (r#""at-unix-ms": 1764669940123"#, r#""at": 1"#, "at"),
    ] {
        let message = refusal(&v3.replacen(from, to, 1));
        assert!(message.contains(field), "{message}");
    }
    let message = refusal(&v3.replacen(r#""by": "carol","#, "", 1));
    assert!(message.contains("by"), "{message}");
    let message = refusal(&v3.replacen("\"drain\": {", "\"drain\": [\"carol\", 1], \"x\": {", 1));
    assert!(message.contains("object"), "{message}");
}

#[test]
fn a_version_1_file_is_read_as_one_without_overrides() {
    assert_eq!(decode(EXAMPLE_JSON.as_bytes(), ORIGIN), Ok(example()));
}

#[test]
fn overrides_are_refused_in_version_1_and_required_from_version_2() {
    let v1_with = EXAMPLE_V2_JSON.replacen(r#""version": 2"#, r#""version": 1"#, 1);
    assert_eq!(
        refusal(&v1_with),
        format!(r#"state file {ORIGIN}: "overrides" in a version 1 file"#)
    );
    let v2_without = EXAMPLE_JSON.replacen(r#""version": 1"#, r#""version": 2"#, 1);
    assert_eq!(
        refusal(&v2_without),
        format!(r#"state file {ORIGIN}: no "overrides" field"#)
    );
}

#[test]
fn every_bad_override_is_refused_naming_it() {
    let weight = r#"weight override of frontend "web" pool "primary" backend "nginx0-ams""#;
    for (from, to, why) in [
        (
            r#""state": "disabled""#,
            r#""state": "drained""#,
            r#"override of backend "nginx1-fra": state "drained" is not paused, disabled or enabled"#
                .to_owned(),
        ),
        (
            r#""by": "bob""#,
            r#""by": """#,
            r#"override of backend "nginx1-fra": "by" is empty"#.to_owned(),
        ),
        (
            r#""weight": 10"#,
            r#""weight": 101"#,
            format!("{weight}: weight 101 is above 100"),
        ),
        (
            r#""file-weight": 100"#,
            r#""file-weight": 255"#,
            format!("{weight}: file-weight 255 is above 100"),
        ),
        (
            r#""at-unix-ms": 1764662800123"#,
            r#""at-unix-ms": 1764670000124"#,
            format!("{weight}: at-unix-ms 1764670000124 is after written-unix-ms 1764670000123"),
        ),
        (
            r#""by": "CN=alice""#,
            &format!(r#""by": "{}""#, "x".repeat(persist::MAX_IDENTITY_BYTES + 1)),
            format!("{weight}: \"by\" is 1025 bytes, more than 1024"),
        ),
    ] {
        assert!(EXAMPLE_V2_JSON.contains(from), "{from}");
        let text = EXAMPLE_V2_JSON.replacen(from, to, 1);
        assert_eq!(refusal(&text), format!("state file {ORIGIN}: {why}"), "{to}");
    }
    // A member given twice.
    let entry = &EXAMPLE_V2_JSON[EXAMPLE_V2_JSON
        .find("      {\n        \"frontend\"")
        .unwrap()..EXAMPLE_V2_JSON.find("\n    ]").unwrap()];
    let twice = EXAMPLE_V2_JSON.replacen(entry, &format!("{entry},\n{entry}"), 1);
    assert_eq!(
        refusal(&twice),
        format!("state file {ORIGIN}: {weight}: given twice")
    );
}

#[test]
fn an_empty_state_round_trips() {
    let empty = SavedState::default();
    let bytes = encode(&empty);
    assert!(bytes.ends_with(b"}\n"));
    assert_eq!(decode(&bytes, ORIGIN), Ok(empty));
}

#[test]
fn compact_json_and_a_missing_active_pool_are_read() {
    let text = r#"{"version":1,"format":"vpp-maglev-state","written-unix-ms":5,
        "backends":{"a":{"penalty":0,"state":"up","address":"::1","since-unix-ms":-3}},
        "frontends":{"web":{}}}"#;
    let state = decode(text.as_bytes(), ORIGIN).unwrap();
    assert_eq!(
        state.backends["a"],
        backend("::1", BackendState::Up, -3, 0.0)
    );
    assert_eq!(state.frontends["web"], SavedFrontend { active_pool: None });
}

#[test]
fn constants_are_the_documented_ones() {
    assert_eq!(FORMAT, "vpp-maglev-state");
    assert_eq!(VERSION, 3);
    assert_eq!(persist::OLDEST_VERSION, 1);
    assert_eq!(MAX_STATE_FILE_BYTES, 64 * 1024 * 1024);
    assert_eq!(MAX_ENTRIES, 1_000_000);
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,15}",
        // Anything JSON must escape or carry as UTF-8.
        any::<String>().prop_filter("names are not empty", |s| !s.is_empty()),
    ]
}

fn arb_penalty() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(persist::MAX_PENALTY),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        0.0..=persist::MAX_PENALTY,
        (0u32..1_000_000).prop_map(f64::from),
    ]
}

fn arb_state() -> impl Strategy<Value = SavedState> {
    any::<i64>().prop_flat_map(|written| {
        let backend = (
            any::<IpAddr>(),
            prop_oneof![Just(BackendState::Up), Just(BackendState::Down)],
            prop_oneof![Just(0u64), 0..100_000_000_000u64, any::<u64>()],
            arb_penalty(),
        )
            .prop_map(move |(address, state, before, penalty)| SavedBackend {
                address,
                state,
                since_unix_ms: written.saturating_sub_unsigned(before),
                penalty,
            });
        let frontend =
            proptest::option::of(arb_name()).prop_map(|active_pool| SavedFrontend { active_pool });
        let at = prop_oneof![Just(0u64), 0..100_000_000_000u64, any::<u64>()]
            .prop_map(move |before| written.saturating_sub_unsigned(before));
        let by =
            || arb_name().prop_filter("identities fit", |s| s.len() <= persist::MAX_IDENTITY_BYTES);
        let intent = (
            prop_oneof![
                Just(Intent::Paused),
                Just(Intent::Disabled),
                Just(Intent::Enabled)
            ],
            by(),
            at.clone(),
            any::<bool>(),
        )
            .prop_map(|(intent, by, at_unix_ms, file_enabled)| SavedIntent {
                intent,
                by,
                at_unix_ms,
                file_enabled,
            });
        let weight = (0u8..=100, 0u8..=100, by(), at.clone()).prop_map(
            |(weight, file_weight, by, at_unix_ms)| SavedWeight {
                weight,
                file_weight,
                by,
                at_unix_ms,
            },
        );
        let overrides = (
            proptest::collection::btree_map(arb_name(), intent, 0..4),
            proptest::collection::btree_map((arb_name(), arb_name(), arb_name()), weight, 0..4),
            proptest::option::of(
                (by(), at.clone()).prop_map(|(by, at_unix_ms)| SavedDrain { by, at_unix_ms }),
            ),
        )
            .prop_map(|(backends, weights, drain)| SavedOverrides {
                backends,
                weights,
                drain,
            });
        (
            proptest::collection::btree_map(arb_name(), backend, 0..12),
            proptest::collection::btree_map(arb_name(), frontend, 0..6),
            overrides,
        )
            .prop_map(move |(backends, frontends, overrides)| SavedState {
                written_unix_ms: written,
                backends,
                frontends,
                overrides,
            })
    })
}

#[test]
fn penalties_come_back_bit_for_bit() {
    // Found by the round-trip property before serde_json's
    // `float_roundtrip` was on: its default parser was one ULP off here.
    for penalty in [
        934_480.005_465_084_3,
        0.1,
        1.0 / 3.0,
        999_999.999_999_999_9,
        5e-324,
    ] {
        let mut state = example();
        state.backends.get_mut("nginx0-ams").unwrap().penalty = penalty;
        let back = decode(&encode(&state), ORIGIN).unwrap();
        assert_eq!(
            back.backends["nginx0-ams"].penalty.to_bits(),
            penalty.to_bits(),
            "{penalty}"
        );
    }
}

proptest! {
    #[test]
    fn every_valid_state_round_trips(state in arb_state()) {
        let bytes = encode(&state);
        prop_assert_eq!(bytes.last(), Some(&b'\n'));
        prop_assert_eq!(decode(&bytes, ORIGIN), Ok(state));
        fuzzing::state_file(&bytes);
    }
}

// ---- Refusals ---------------------------------------------------------

#[test]
fn an_empty_file_is_refused() {
    for text in ["", " \n\t\r\n"] {
        assert_eq!(
            decode(text.as_bytes(), ORIGIN),
            Err(StateFileError::Empty {
                origin: ORIGIN.into()
            })
        );
    }
    assert_eq!(refusal(""), format!("state file {ORIGIN}: empty"));
}

#[test]
fn json_syntax_errors_name_line_and_column() {
    let text = "{\n  \"format\": \"vpp-maglev-state\",\n  \"version\": 1,\n  x";
    assert_eq!(
        refusal(text),
        format!("state file {ORIGIN}: line 4 column 3: key must be a string")
    );
    assert_eq!(
        decode(text.as_bytes(), ORIGIN),
        Err(StateFileError::Json {
            origin: ORIGIN.into(),
            line: 4,
            column: 3,
            reason: "key must be a string".into(),
        })
    );
    assert_eq!(
        refusal(&format!("{EXAMPLE_JSON}x")),
        format!("state file {ORIGIN}: line 28 column 1: trailing characters")
    );
    assert_eq!(
        refusal("\u{feff}{}"),
        format!("state file {ORIGIN}: line 1 column 1: expected value")
    );
}

#[test]
fn every_prefix_of_a_valid_file_is_refused_without_panic() {
    let full = EXAMPLE_JSON.as_bytes();
    let complete = EXAMPLE_JSON.trim_end().len();
    for len in 0..full.len() {
        let prefix = &full[..len];
        fuzzing::state_file(prefix);
        let got = decode(prefix, ORIGIN);
        if len < complete {
            let e = got.expect_err("a strict prefix is not a file");
            assert!(
                e.to_string().starts_with(&format!("state file {ORIGIN}: ")),
                "{e}"
            );
        } else {
            assert_eq!(got, Ok(example()), "only the trailing newline is missing");
        }
    }
    assert_eq!(
        refusal(&EXAMPLE_JSON[..200]),
        format!("state file {ORIGIN}: line 9 column 28: EOF while parsing an object")
    );
}

#[test]
fn every_byte_changed_is_refused_or_round_trips() {
    // The fuzz entry asserts the round trip of whatever decodes.
    let full = EXAMPLE_JSON.as_bytes();
    for i in 0..full.len() {
        for b in [
            b'"', b'{', b'}', b'0', b'9', b'-', b',', b' ', b'\\', 0xff, b'e',
        ] {
            let mut m = full.to_vec();
            m[i] = b;
            fuzzing::state_file(&m);
        }
        let mut cut = full.to_vec();
        cut.remove(i);
        fuzzing::state_file(&cut);
    }
}

#[test]
fn a_foreign_json_file_is_not_a_state_file() {
    let package_json = r#"{
  "name": "maglev-ui",
  "version": "1.0.0",
  "dependencies": { "react": "^19.0.0" }
}
"#;
    for (text, found) in [
        (r#"{"hello": 1}"#, r#"no "format" field"#),
        (package_json, r#"no "format" field"#),
        ("{}", r#"no "format" field"#),
        (r#"{"format": "foo", "version": 1}"#, r#"format "foo""#),
        (r#"{"format": 3}"#, "format 3"),
        (
            r#"{"format": ["vpp-maglev-state"]}"#,
            r#"format ["vpp-maglev-state"]"#,
        ),
        ("[1, 2]", "an array, not an object"),
        (r#""vpp-maglev-state""#, "a string, not an object"),
        ("12", "a number, not an object"),
        ("-1.5", "a number, not an object"),
        ("true", "a boolean, not an object"),
        ("null", "null, not an object"),
    ] {
        assert_eq!(
            refusal(text),
            format!("state file {ORIGIN}: not a maglev state file ({found})"),
            "{text}"
        );
    }
    // A long foreign format is shortened in the message.
    let long = format!(r#"{{"format": "{}"}}"#, "y".repeat(10_000));
    let msg = refusal(&long);
    assert!(msg.len() < 200 && msg.ends_with("…)"), "{msg}");
}

#[test]
fn the_format_is_checked_before_the_layout() {
    // Unknown fields and wrong types elsewhere do not hide a foreign file.
    assert_eq!(
        refusal(r#"{"backends": 3, "format": "other", "x": [1, {"y": null}]}"#),
        format!(r#"state file {ORIGIN}: not a maglev state file (format "other")"#)
    );
}

#[test]
fn a_newer_version_is_refused() {
    let text = edited(r#""version": 1"#, r#""version": 4"#);
    assert_eq!(
        refusal(&text),
        format!(
            "state file {ORIGIN}: written by a newer maglevd (version 4, this one reads 1 to 3)"
        )
    );
    assert_eq!(
        decode(text.as_bytes(), ORIGIN),
        Err(StateFileError::Newer {
            origin: ORIGIN.into(),
            version: 4
        })
    );
    // A newer version may have any layout: it is refused as newer, not as
    // unknown fields.
    assert_eq!(
        refusal(r#"{"format": "vpp-maglev-state", "version": 18446744073709551615, "shards": []}"#),
        format!(
            "state file {ORIGIN}: written by a newer maglevd (version 18446744073709551615, this one reads 1 to 3)"
        )
    );
}

#[test]
fn a_missing_or_odd_version_is_refused() {
    assert_eq!(
        refusal(r#"{"format": "vpp-maglev-state"}"#),
        format!(r#"state file {ORIGIN}: no "version" field"#)
    );
    for (version, shown) in [
        ("0", "0"),
        (r#""1""#, r#""1""#),
        ("1.0", "1.0"),
        ("-1", "-1"),
        ("null", "null"),
    ] {
        assert_eq!(
            refusal(&edited(
                r#""version": 1"#,
                &format!(r#""version": {version}"#)
            )),
            format!(
                "state file {ORIGIN}: version {shown} is not one this maglevd reads (it reads 1 to 3)"
            )
        );
    }
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    assert_eq!(
        refusal(&edited(
            r#""version": 1,"#,
            r#""version": 1, "checksum": 0,"#
        )),
        format!(
            "state file {ORIGIN}: line 3 column 26: unknown field `checksum`, expected one of \
             `format`, `version`, `written-unix-ms`, `backends`, `frontends`, `overrides`"
        )
    );
    assert_eq!(
        refusal(&edited(
            r#""penalty": 0.0"#,
            r#""penalty": 0.0, "weight": 3"#
        )),
        format!(
            "state file {ORIGIN}: line 10 column 30: unknown field `weight`, expected one of \
             `address`, `state`, `since-unix-ms`, `penalty`"
        )
    );
    assert_eq!(
        refusal(&edited(
            r#""active-pool": null"#,
            r#""active-pool": null, "pool": "b""#
        )),
        format!(
            "state file {ORIGIN}: line 21 column 33: unknown field `pool`, expected `active-pool`"
        )
    );
    // snake_case is not the layout.
    assert_eq!(
        refusal(&edited(
            r#""since-unix-ms": 1764660000000"#,
            r#""since_unix_ms": 1764660000000"#
        )),
        format!(
            "state file {ORIGIN}: line 9 column 21: unknown field `since_unix_ms`, expected one of \
             `address`, `state`, `since-unix-ms`, `penalty`"
        )
    );
}

#[test]
fn duplicate_keys_are_refused() {
    assert_eq!(
        refusal(&edited(
            r#""version": 1,"#,
            r#""version": 1, "version": 1,"#
        )),
        format!("state file {ORIGIN}: line 3 column 25: duplicate field `version`")
    );
    assert_eq!(
        refusal(&edited(
            r#""written-unix-ms": 1764670000123,"#,
            r#""written-unix-ms": 1764670000123, "written-unix-ms": 1,"#
        )),
        format!("state file {ORIGIN}: line 4 column 53: duplicate field `written-unix-ms`")
    );
    assert_eq!(
        refusal(&edited(
            r#""nginx1-fra": {"#,
            r#""nginx0-ams": { "address": "10.0.0.3", "state": "up", "since-unix-ms": 0, "penalty": 0 },
    "nginx1-fra": {"#
        )),
        format!(r#"state file {ORIGIN}: line 12 column 16: backend "nginx0-ams" is given twice"#)
    );
    assert_eq!(
        refusal(&edited(
            r#""state": "up","#,
            r#""state": "up", "state": "down","#
        )),
        format!("state file {ORIGIN}: line 8 column 28: duplicate field `state`")
    );
    assert_eq!(
        refusal(&edited(
            r#""web": {"#,
            r#""dns": {},
    "web": {"#
        )),
        format!(r#"state file {ORIGIN}: line 23 column 9: frontend "dns" is given twice"#)
    );
}

#[test]
fn missing_fields_and_wrong_types_are_refused() {
    assert_eq!(
        refusal(&edited(",\n      \"penalty\": 0.0", "")),
        format!("state file {ORIGIN}: line 10 column 5: missing field `penalty`"),
    );
    for (from, to, reason) in [
        (
            r#""written-unix-ms": 1764670000123"#,
            r#""written-unix-ms": "now""#,
            r#"line 4 column 26: invalid type: string "now", expected i64"#,
        ),
        (
            r#""written-unix-ms": 1764670000123"#,
            r#""written-unix-ms": 1.5"#,
            "line 4 column 24: invalid type: floating point `1.5`, expected i64",
        ),
        (
            r#""written-unix-ms": 1764670000123"#,
            r#""written-unix-ms": 9223372036854775808"#,
            "line 4 column 40: invalid value: integer `9223372036854775808`, expected i64",
        ),
        (
            r#""state": "up""#,
            r#""state": 1"#,
            "line 8 column 16: invalid type: integer `1`, expected a string",
        ),
        (
            r#""penalty": 0.0"#,
            r#""penalty": 1e400"#,
            "line 10 column 22: number out of range",
        ),
        (
            r#""penalty": 0.0"#,
            r#""penalty": null"#,
            "line 10 column 21: invalid type: null, expected f64",
        ),
        (
            r#""active-pool": "primary""#,
            r#""active-pool": 7"#,
            "line 24 column 22: invalid type: integer `7`, expected a string",
        ),
        (
            r#""backends": {"#,
            r#""backends": [], "x": {"#,
            "line 5 column 14: invalid type: sequence, expected an object of backends by name",
        ),
    ] {
        assert_eq!(
            refusal(&edited(from, to)),
            format!("state file {ORIGIN}: {reason}"),
            "{to}"
        );
    }
}

#[test]
fn entries_must_be_objects_not_arrays() {
    // serde's derive would take the fields in order from an array.
    assert_eq!(
        refusal(&edited(
            r#""nginx0-ams": {
      "address": "10.0.0.2",
      "state": "up",
      "since-unix-ms": 1764660000000,
      "penalty": 0.0
    }"#,
            r#""nginx0-ams": ["10.0.0.2", "up", 1764660000000, 0.0]"#
        )),
        format!(
            "state file {ORIGIN}: line 6 column 18: invalid type: sequence, expected a JSON object"
        )
    );
    assert_eq!(
        refusal(r#"["vpp-maglev-state", 1, 0, {}, {}]"#),
        format!("state file {ORIGIN}: not a maglev state file (an array, not an object)")
    );
}

#[test]
fn a_state_other_than_up_or_down_is_refused() {
    for state in ["paused", "unknown", "disabled", "removed", "UP", ""] {
        let text = edited(r#""state": "up""#, &format!(r#""state": "{state}""#));
        assert_eq!(
            refusal(&text),
            format!(
                r#"state file {ORIGIN}: backend "nginx0-ams": state "{state}" is not up or down"#
            )
        );
        assert_eq!(
            decode(text.as_bytes(), ORIGIN),
            Err(StateFileError::BadState {
                origin: ORIGIN.into(),
                backend: "nginx0-ams".into(),
                state: state.into(),
            })
        );
    }
}

#[test]
fn an_address_must_be_an_ip_address() {
    for address in [
        "nginx0",
        "10.0.0.256",
        "10.0.0.2/32",
        "[::1]",
        "fe80::1%eth0",
        "",
    ] {
        assert_eq!(
            refusal(&edited(r#""10.0.0.2""#, &format!("{address:?}"))),
            format!(
                r#"state file {ORIGIN}: backend "nginx0-ams": address {address:?} is not an IP address"#
            )
        );
    }
}

#[test]
fn a_penalty_is_between_zero_and_a_million() {
    for (penalty, shown) in [
        ("-1", "-1"),
        ("-0.001", "-0.001"),
        ("1000000.5", "1000000.5"),
        ("1e7", "10000000"),
    ] {
        assert_eq!(
            refusal(&edited(
                r#""penalty": 1.5"#,
                &format!(r#""penalty": {penalty}"#)
            )),
            format!(
                r#"state file {ORIGIN}: backend "nginx1-fra": penalty {shown} is not between 0 and 1000000"#
            )
        );
    }
    for ok in ["0", "-0.0", "1000000", "1e6", "0.000001"] {
        let text = edited(r#""penalty": 1.5"#, &format!(r#""penalty": {ok}"#));
        assert!(decode(text.as_bytes(), ORIGIN).is_ok(), "{ok}");
    }
}

#[test]
fn since_after_written_is_refused() {
    let text = edited(
        r#""since-unix-ms": 1764670000123"#,
        r#""since-unix-ms": 1764670000124"#,
    );
    assert_eq!(
        refusal(&text),
        format!(
            r#"state file {ORIGIN}: backend "nginx1-fra": since-unix-ms 1764670000124 is after written-unix-ms 1764670000123"#
        )
    );
    assert_eq!(
        decode(text.as_bytes(), ORIGIN),
        Err(StateFileError::SinceAfterWritten {
            origin: ORIGIN.into(),
            backend: "nginx1-fra".into(),
            since_unix_ms: 1_764_670_000_124,
            written_unix_ms: WRITTEN,
        })
    );
}

#[test]
fn names_must_not_be_empty() {
    assert_eq!(
        refusal(&edited(r#""nginx0-ams""#, r#""""#)),
        format!("state file {ORIGIN}: backend with an empty name")
    );
    assert_eq!(
        refusal(&edited(r#""dns""#, r#""""#)),
        format!("state file {ORIGIN}: frontend with an empty name")
    );
    assert_eq!(
        refusal(&edited(r#""primary""#, r#""""#)),
        format!(r#"state file {ORIGIN}: frontend "web": active-pool with an empty name"#)
    );
}

#[test]
fn at_most_a_million_entries() {
    // Frontends are the cheapest entries to write a million of; backends
    // share the same map type and limit.
    let mut text = String::from(
        r#"{"format":"vpp-maglev-state","version":1,"written-unix-ms":0,"backends":{},"frontends":{"#,
    );
    for i in 0..MAX_ENTRIES {
        text.push_str(&format!(r#""{i}":{{}},"#));
    }
    let at_limit = format!("{}}}}}", text.trim_end_matches(','));
    assert_eq!(
        decode(at_limit.as_bytes(), ORIGIN).map(|s| s.frontends.len()),
        Ok(MAX_ENTRIES)
    );
    text.push_str(r#""one-more":{}}}"#);
    let msg = refusal(&text);
    assert!(
        msg.starts_with(&format!("state file {ORIGIN}: line 1 column "))
            && msg.ends_with(": more than 1000000 frontends"),
        "{msg}"
    );
}

// ---- write_atomic -----------------------------------------------------

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn write_atomic_replaces_the_file_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    write_atomic(&path, b"old\n").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"old\n");
    let first = encode(&example());
    write_atomic(&path, &first).unwrap();
    assert_eq!(fs::read(&path).unwrap(), first);
    write_atomic(&path, b"").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"");
    assert_eq!(names_in(dir.path()), ["state.json"]);
    // Only the daemon's user reads it: it names who overrode what.
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_failed_write_atomic_leaves_the_old_state_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a directory: the rename fails after the temporary file
    // was written.
    let target = dir.path().join("state.json");
    fs::create_dir(&target).unwrap();
    let err = write_atomic(&target, b"new").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::IsADirectory, "{err}");
    assert_eq!(names_in(dir.path()), ["state.json"]);
    assert!(target.is_dir());

    // No such directory: nothing is created.
    let missing = dir.path().join("nowhere/state.json");
    let err = write_atomic(&missing, b"new").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert_eq!(names_in(dir.path()), ["state.json"]);

    // A path without a file name.
    let err = write_atomic(Path::new("/"), b"new").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "/ does not name a file");
}

// ---- load -------------------------------------------------------------

const MINUTE: i64 = 60_000;

fn with_file(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    write_atomic(&path, bytes).unwrap();
    (dir, path)
}

fn why(loaded: Loaded) -> String {
    match loaded {
        Loaded::Ignored { why, .. } => why,
        other => panic!("expected Ignored, got {other:?}"),
    }
}

#[test]
fn load_without_a_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load(
            &dir.path().join("state.json"),
            WRITTEN,
            Duration::from_secs(300)
        ),
        Loaded::Missing
    );
    // Nor when the directory is missing.
    assert_eq!(
        load(
            &dir.path().join("no/state.json"),
            WRITTEN,
            Duration::from_secs(300)
        ),
        Loaded::Missing
    );
}

#[test]
fn load_a_fresh_file() {
    let (_dir, path) = with_file(&encode(&example()));
    let max = Duration::from_secs(300);
    assert_eq!(load(&path, WRITTEN, max), Loaded::Fresh(example()));
    // Exactly max-age old is still fresh; a millisecond more is not.
    assert_eq!(
        load(&path, WRITTEN + 5 * MINUTE, max),
        Loaded::Fresh(example())
    );
    assert!(matches!(
        load(&path, WRITTEN + 5 * MINUTE + 1, max),
        Loaded::Ignored { .. }
    ));
    // Written up to a minute ahead of our clock (clocks of two machines, a
    // small step back) is fine.
    assert_eq!(load(&path, WRITTEN - MINUTE, max), Loaded::Fresh(example()));
}

#[test]
fn an_old_or_future_file_still_gives_its_overrides() {
    let (_dir, path) = with_file(&encode(&example_v2()));
    let max = Duration::from_secs(300);
    for now in [WRITTEN + 60 * MINUTE, WRITTEN - 10 * MINUTE] {
        match load(&path, now, max) {
            Loaded::Ignored { overrides, .. } => assert_eq!(overrides, example_v2().overrides),
            other => panic!("expected Ignored, got {other:?}"),
        }
    }
    // An invalid file gives none.
    let (_dir, bad) = with_file(b"{}");
    assert!(matches!(
        load(&bad, WRITTEN, max),
        Loaded::Ignored { overrides, .. } if overrides.is_empty()
    ));
}

#[test]
fn load_an_old_file_is_ignored() {
    let (_dir, path) = with_file(&encode(&example()));
    let now = WRITTEN + 12 * MINUTE + 30_000;
    assert_eq!(
        why(load(&path, now, Duration::from_secs(300))),
        format!(
            "state file {} was written 12m30s ago, more than state-max-age 5m: cold start",
            path.display()
        )
    );
    // Sub-second ages round up.
    assert_eq!(
        why(load(&path, WRITTEN + 2_001, Duration::from_secs(2))),
        format!(
            "state file {} was written 3s ago, more than state-max-age 2s: cold start",
            path.display()
        )
    );
    assert_eq!(
        why(load(&path, WRITTEN + 1, Duration::ZERO)),
        format!(
            "state file {} was written 1ms ago, more than state-max-age 0s: cold start",
            path.display()
        )
    );
    // Far apart clocks do not overflow.
    assert!(
        why(load(&path, i64::MAX, Duration::from_secs(300)))
            .ends_with(" ago, more than state-max-age 5m: cold start")
    );
    assert_eq!(
        load(&path, i64::MAX, Duration::MAX),
        Loaded::Fresh(example())
    );
}

#[test]
fn load_a_file_from_the_future_is_ignored() {
    let (_dir, path) = with_file(&encode(&example()));
    assert_eq!(
        why(load(&path, WRITTEN - MINUTE - 1, Duration::from_secs(300))),
        format!(
            "state file {} was written 1m1s in the future (was the clock stepped back?): cold start",
            path.display()
        )
    );
    assert_eq!(
        why(load(&path, i64::MIN, Duration::MAX)),
        format!(
            "state file {} was written 2562048278201h19m36s in the future (was the clock stepped back?): cold start",
            path.display(),
        )
    );
}

#[test]
fn load_an_invalid_file_is_ignored_with_the_decode_error() {
    let (_dir, path) = with_file(br#"{"hello": 1}"#);
    assert_eq!(
        why(load(&path, WRITTEN, Duration::from_secs(300))),
        format!(
            r#"state file {}: not a maglev state file (no "format" field): cold start"#,
            path.display()
        )
    );
    let (_dir, path) = with_file(b"");
    assert_eq!(
        why(load(&path, WRITTEN, Duration::from_secs(300))),
        format!("state file {}: empty: cold start", path.display())
    );
    let (_dir, path) = with_file(&EXAMPLE_JSON.as_bytes()[..100]);
    assert_eq!(
        why(load(&path, WRITTEN, Duration::from_secs(300))),
        format!(
            "state file {}: line 5 column 14: EOF while parsing a value: cold start",
            path.display()
        )
    );
}

#[test]
fn load_a_directory_or_fifo_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let max = Duration::from_secs(300);
    assert_eq!(
        why(load(dir.path(), WRITTEN, max)),
        format!(
            "state file {} is a directory: cold start",
            dir.path().display()
        )
    );
    // A FIFO would block a plain open until a writer came.
    let fifo = dir.path().join("state.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(
        why(load(&fifo, WRITTEN, max)),
        format!(
            "state file {} is not a regular file: cold start",
            fifo.display()
        )
    );
}

#[test]
fn load_an_unreadable_file_is_ignored() {
    let (_dir, path) = with_file(&encode(&example()));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let loaded = load(&path, WRITTEN, Duration::from_secs(300));
    if fs::File::open(&path).is_ok() {
        // root (CAP_DAC_OVERRIDE) reads whatever the mode says; the
        // directory and FIFO cases above cover a file that cannot be read.
        eprintln!("a mode of 000 does not stop this process reading (root?): checked it loads");
        assert_eq!(loaded, Loaded::Fresh(example()));
    } else {
        assert_eq!(
            why(loaded),
            format!(
                "state file {}: cannot open it: Permission denied (os error 13): cold start",
                path.display()
            )
        );
    }
}

#[test]
fn load_a_huge_file_is_ignored_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // Sparse: no disk, and nothing to read if the size check works.
    fs::File::create(&path)
        .unwrap()
        .set_len(MAX_STATE_FILE_BYTES + 1)
        .unwrap();
    assert_eq!(
        why(load(&path, WRITTEN, Duration::from_secs(300))),
        format!(
            "state file {} is 67108865 bytes, more than the 67108864 allowed: cold start",
            path.display()
        )
    );
    fs::File::create(&path).unwrap().set_len(100 << 30).unwrap();
    assert_eq!(
        why(load(&path, WRITTEN, Duration::from_secs(300))),
        format!(
            "state file {} is 107374182400 bytes, more than the 67108864 allowed: cold start",
            path.display()
        )
    );
}

#[test]
fn load_a_file_of_exactly_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // A valid file padded with whitespace up to the limit.
    let mut bytes = encode(&example());
    bytes.resize(usize::try_from(MAX_STATE_FILE_BYTES).unwrap(), b' ');
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        load(&path, WRITTEN, Duration::from_secs(300)),
        Loaded::Fresh(example())
    );
}
