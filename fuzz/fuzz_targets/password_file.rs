//! Arbitrary bytes as the dashboard's password file and as a basic
//! `Authorization` header: users or an error naming the line, never a
//! panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run password_file` (from `fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_bin::fuzzing::password_file(data);
});
