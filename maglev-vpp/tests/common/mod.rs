//! Helpers shared by the integration tests: the fixtures in `../shared`,
//! socket paths, the live-VPP switch, and ([`tables`]) generated AS sets
//! with the check of VPP's bucket counts against the prediction.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use std::path::PathBuf;

pub mod tables;

/// `../shared` relative to the workspace root.
pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// One frame of `api-capture.jsonl`.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// `c2s` or `s2c`.
    pub to_server: bool,
    /// The whole frame, header included.
    pub bytes: Vec<u8>,
}

impl CapturedFrame {
    /// The payload after the 16-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[16..]
    }
}

/// The frames of the real API conversation.
pub fn capture() -> Vec<CapturedFrame> {
    let path = shared().join("fixtures/vpp-26.10/api-capture.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            CapturedFrame {
                to_server: v["dir"] == "c2s",
                bytes: hex(v["hex"].as_str().unwrap()),
            }
        })
        .collect()
}

/// Decodes a hex string.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A unique unix socket path for one test.
pub fn sock_path(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("maglev-vpp-{}-{n}-{name}.sock", std::process::id()))
}

/// The API socket of a real VPP from `MAGLEV_TEST_VPP_API`, or `None`
/// (the test then says so and passes, unless `MAGLEV_REQUIRE_VPP=1`).
pub fn live_api_socket() -> Option<String> {
    match std::env::var("MAGLEV_TEST_VPP_API") {
        Ok(path) => Some(path),
        Err(_) => {
            assert!(
                std::env::var("MAGLEV_REQUIRE_VPP").as_deref() != Ok("1"),
                "MAGLEV_REQUIRE_VPP=1 but MAGLEV_TEST_VPP_API is not set"
            );
            eprintln!("MAGLEV_TEST_VPP_API not set: live VPP checks not run");
            None
        }
    }
}
