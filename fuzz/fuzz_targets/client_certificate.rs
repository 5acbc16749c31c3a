//! Arbitrary bytes as a gRPC client's certificate (DER), as maglevd reads
//! its names for access checks and the audit trail: names or an error,
//! never a panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run client_certificate` (from `fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_bin::fuzzing::client_certificate(data);
});
