//! Arbitrary bytes as a state file (`/var/lib/vpp-maglev/state.json`): a
//! saved state or an error naming the fault, never a panic, and a state
//! that decodes comes back equal from its own encoding.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run state_file` (from `fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_health::fuzzing::state_file(data);
});
