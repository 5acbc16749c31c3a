//! Arbitrary bytes as a route message of maglevd's kernel table dump: a
//! prefix of ours or nothing, never a panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run route_message` (from `fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_bin::fuzzing::route_message(data);
});
