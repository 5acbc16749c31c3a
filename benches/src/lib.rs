//! Shared fixtures for maglev's criterion benchmarks (see `benches/`).
//!
//! The benchmarks themselves live in `benches/benches/*.rs`; run them with
//! `cargo bench -p maglev-benches`. Their figures are written down in
//! `docs/performance.md` together with the command that produced them.

use std::fmt::Write;

use maglev_core::config::Config;

/// The YAML of a config with `frontends` VIPs (TCP/80 on 192.0.x.y, y in 1..=250), each
/// with `backends` backends of its own split over two pools, all probed by
/// one HTTP check.
pub fn synthetic_yaml(frontends: usize, backends: usize) -> String {
    let mut y = String::from(
        "maglev:\n  healthchecks:\n    web: { type: http, interval: 1s, timeout: 500ms }\n  backends:\n",
    );
    for f in 0..frontends {
        for b in 0..backends {
            let n = f * backends + b;
            let _ = writeln!(
                y,
                "    f{f}b{b}: {{ address: 10.{}.{}.{}, healthcheck: web }}",
                n >> 16,
                (n >> 8) & 0xff,
                n & 0xff
            );
        }
    }
    y.push_str("  frontends:\n");
    for f in 0..frontends {
        let _ = writeln!(
            y,
            "    f{f}:\n      address: 192.0.{}.{}\n      protocol: tcp\n      port: 80\n      pools:",
            f / 250,
            f % 250 + 1
        );
        for (pool, range) in [
            ("primary", 0..backends / 2),
            ("fallback", backends / 2..backends),
        ] {
            let _ = write!(y, "        - name: {pool}\n          backends: {{");
            for b in range {
                let _ = write!(y, " f{f}b{b}: {{}},");
            }
            y.push_str(" }\n");
        }
    }
    y
}

/// The config of [`synthetic_yaml`].
pub fn synthetic_config(frontends: usize, backends: usize) -> Config {
    Config::from_yaml(&synthetic_yaml(frontends, backends), "synthetic")
        .unwrap_or_else(|e| panic!("synthetic config is invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_config_has_the_asked_size() {
        let c = synthetic_config(300, 16);
        assert_eq!(c.frontends().len(), 300);
        assert_eq!(c.backends().len(), 4800);
        assert_eq!(c.frontend("f299").unwrap().pools[1].backends.len(), 8);
    }
}
