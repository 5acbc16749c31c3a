//! Arbitrary bytes mapped as a stats segment: every read must end in a
//! value or an error, never a panic, a hang or a sanitizer report.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run stats_segment` (from the workspace root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    maglev_vpp::stats::fuzzing::segment(data);
});
