//! Arbitrary bytes as the text of `show lb vips verbose` (VPP's CLI reply
//! carried by `cli_inband_reply`): a list of VIPs or an error naming a
//! line, never a panic, and nothing parsed that the text did not hold.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run vips_text` (from `fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_vpp::fuzzing::parse_vips_text(data);
});
