//! Entry points for the cargo-fuzz targets in `fuzz/`; not a stable API.

use crate::persist;

/// Feeds arbitrary bytes to the state file decoder. It must return an error
/// or a state, never panic; a state it accepts must come back equal from
/// its own encoding.
pub fn state_file(data: &[u8]) {
    if let Ok(state) = persist::decode(data, "fuzz.json") {
        let again = persist::decode(&persist::encode(&state), "fuzz re-encoded");
        assert_eq!(
            again.as_ref(),
            Ok(&state),
            "encode → decode changed the state"
        );
    }
}
