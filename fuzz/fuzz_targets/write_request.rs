//! Arbitrary bytes as the body of every write RPC, as maglevd's access
//! guard reads it for the audit trail: a short description always, never
//! a panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run write_request` (from `fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_bin::fuzzing::write_request(data);
});
