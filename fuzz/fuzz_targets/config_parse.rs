//! Arbitrary bytes into the config loader: an error or a config, never a
//! panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maglev_core::fuzzing::config(data);
});
