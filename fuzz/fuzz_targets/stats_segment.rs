//! Arbitrary bytes mapped as a stats segment, and the same bytes read as
//! patches over a valid segment: every read must end in a value or an
//! error, never a panic, a hang or a sanitizer report.
//!
//! `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run stats_segment`
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    maglev_vpp::stats::fuzzing::segment(data);
    maglev_vpp::stats::fuzzing::segment_patched(data);
});
