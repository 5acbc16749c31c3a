//! Tidy checks: the architecture's machine-checkable invariants, as tests.
//! See `docs/architecture.md`.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

const LIBRARY_CRATES: [&str; 3] = ["maglev-core", "maglev-health", "maglev-vpp"];
const ALL_CRATES: [&str; 4] = ["maglev-core", "maglev-health", "maglev-vpp", "maglev-bin"];

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Source without `//` comment lines, so docs may name what code must not use.
fn code(p: &Path) -> String {
    read(p)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rel(p: &Path) -> String {
    p.strip_prefix(workspace())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn serde_yaml_is_confined_to_the_config_yaml_module() {
    let allowed = workspace().join("maglev-core/src/config/yaml.rs");
    for krate in ALL_CRATES {
        for f in rust_files(&workspace().join(krate).join("src")) {
            if f != allowed {
                assert!(
                    !code(&f).contains("serde_yaml"),
                    "{} uses serde_yaml",
                    rel(&f)
                );
            }
        }
    }
}

#[test]
fn every_module_says_what_it_is_for() {
    for krate in ALL_CRATES.iter().chain(&["benches"]) {
        for dir in ["src", "tests", "benches", "examples"] {
            for f in rust_files(&workspace().join(krate).join(dir)) {
                let text = read(&f);
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default();
                assert!(
                    first.starts_with("//!"),
                    "{} does not start with a //! module doc",
                    rel(&f)
                );
            }
        }
    }
}

#[test]
fn unsafe_policy_is_declared() {
    for krate in ["maglev-core", "maglev-health"] {
        let lib = read(&workspace().join(krate).join("src/lib.rs"));
        assert!(
            lib.contains("#![forbid(unsafe_code)]"),
            "{krate} must forbid unsafe code"
        );
    }
    let vpp = read(&workspace().join("maglev-vpp/src/lib.rs"));
    assert!(
        vpp.contains("#![deny(unsafe_code)]"),
        "maglev-vpp must deny unsafe code outside its stats mapping"
    );
}

#[test]
fn unsafe_code_lives_only_in_the_stats_mapping() {
    let allowed = workspace().join("maglev-vpp/src/stats/raw.rs");
    let dirs = ALL_CRATES
        .iter()
        .flat_map(|k| ["src", "tests"].map(|d| workspace().join(k).join(d)))
        .chain(
            [
                "benches/benches",
                "benches/src",
                "benches/tests",
                "fuzz/fuzz_targets",
            ]
            .map(|d| workspace().join(d)),
        );
    for dir in dirs {
        for f in rust_files(&dir) {
            // This file names what it looks for.
            if f == allowed || f.ends_with("maglev-bin/tests/tidy.rs") {
                continue;
            }
            let text = code(&f);
            for bad in ["unsafe {", "unsafe fn", "unsafe impl"] {
                assert!(
                    !text.contains(bad),
                    "{} has `{bad}`: unsafe belongs in {}",
                    rel(&f),
                    rel(&allowed)
                );
            }
        }
    }
}

#[test]
fn libraries_do_not_print() {
    for krate in LIBRARY_CRATES {
        for f in rust_files(&workspace().join(krate).join("src")) {
            let text = code(&f);
            for bad in ["println!", "print!(", "eprintln!", "eprint!(", "dbg!("] {
                assert!(
                    !text.contains(bad),
                    "{} uses {bad}: libraries log with tracing",
                    rel(&f)
                );
            }
        }
    }
}

#[test]
fn no_ignored_or_should_panic_tests() {
    for krate in ALL_CRATES.iter().chain(&["benches"]) {
        for f in rust_files(&workspace().join(krate)) {
            if f.components().any(|c| c.as_os_str() == "target") {
                continue;
            }
            let text = code(&f);
            // Spelt in two halves so this file does not match itself.
            for bad in [concat!("#[", "ignore"), concat!("#[", "should_panic")] {
                assert!(
                    !text.contains(bad),
                    "{} has {bad}: a test runs and asserts the exact outcome",
                    rel(&f)
                );
            }
        }
    }
}

#[test]
fn architecture_names_every_crate() {
    let arch = read(&workspace().join("docs/architecture.md"));
    for krate in ALL_CRATES {
        assert!(
            arch.contains(&format!("### `{krate}`")),
            "docs/architecture.md has no section for {krate}"
        );
    }
}

#[test]
fn crates_inherit_workspace_lints_and_versions() {
    for krate in ALL_CRATES.iter().chain(&["benches"]) {
        let manifest = read(&workspace().join(krate).join("Cargo.toml"));
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{krate} does not inherit workspace lints"
        );
        let mut in_deps = false;
        for line in manifest.lines() {
            if line.starts_with('[') {
                in_deps = line.contains("dependencies");
                continue;
            }
            if in_deps && line.contains('=') && !line.trim_start().starts_with('#') {
                assert!(
                    line.contains("workspace = true"),
                    "{krate}/Cargo.toml: `{line}` must take its version from [workspace.dependencies]"
                );
            }
        }
    }
}
