//! Arbitrary bytes as a VPP API byte stream: framing, then every message
//! decoder, then the `show lb vips verbose` parser. None may panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run vpp_api_decode` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_vpp::fuzzing::decode_stream(data);
    maglev_vpp::fuzzing::decode_payload(data);
});
