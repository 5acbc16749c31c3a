//! The fuzz target's entry point over generated and mutated inputs, so the
//! path `cargo fuzz` exercises also runs in every test run.

use maglev_core::fuzzing;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../docs/examples/maglev.yaml");

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::config(&data);
    }

    #[test]
    fn mutated_example_never_panics(cuts in prop::collection::vec((0usize..EXAMPLE.len(), any::<u8>()), 1..8)) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        let len = bytes.len();
        for (at, byte) in cuts {
            bytes[at % len] = byte;
        }
        fuzzing::config(&bytes);
    }

    #[test]
    fn truncated_example_never_panics(len in 0usize..EXAMPLE.len()) {
        fuzzing::config(&EXAMPLE.as_bytes()[..len]);
    }
}
