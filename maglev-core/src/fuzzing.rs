//! Entry points for the cargo-fuzz targets in `fuzz/`; not a stable API.

/// Feeds arbitrary bytes to the config loader. It must return an error or a
/// config, never panic or hang.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::Config::from_yaml(text, "fuzz.yaml");
    }
}
