//! The man pages in `docs/man/` are what the binaries print with `--man`
//! (so they cannot fall behind the flags), and every binary prints a
//! completion script for bash, zsh and fish. The `.TH` line and the
//! `VERSION` section (build date and commit) are left out of the
//! comparison.
//!
//! After changing a flag: `cargo build -p maglev-bin` then
//! `for b in maglevd:8 maglevc:1 maglevt:1; do target/debug/${b%:*} --man > docs/man/${b%:*}.${b#*:}; done`.

use std::path::Path;
use std::process::Command;

fn run(exe: &str, args: &[&str]) -> String {
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(out.status.success(), "{exe} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The page without what names the build: the `.TH` line and the
/// `VERSION` section (date and commit).
fn without_build(page: &str) -> Vec<&str> {
    page.lines()
        .take_while(|l| *l != ".SH VERSION")
        .filter(|l| !l.starts_with(".TH "))
        .collect()
}

const BINARIES: [(&str, &str, &str); 3] = [
    ("maglevd", env!("CARGO_BIN_EXE_maglevd"), "8"),
    ("maglevc", env!("CARGO_BIN_EXE_maglevc"), "1"),
    ("maglevt", env!("CARGO_BIN_EXE_maglevt"), "1"),
];

#[test]
fn the_committed_man_pages_are_what_the_binaries_print() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man");
    for (name, exe, section) in BINARIES {
        let printed = run(exe, &["--man"]);
        assert!(
            printed.contains(&format!(".TH {name} {section} ")),
            "{name}: {printed}"
        );
        let file = docs.join(format!("{name}.{section}"));
        let committed =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (old, new) = (without_build(&committed), without_build(&printed));
        let differs = old.iter().zip(&new).position(|(a, b)| a != b);
        assert!(
            old.len() == new.len() && differs.is_none(),
            "{} is stale at line {:?}: regenerate it with `{name} --man` (see this test's header)",
            file.display(),
            differs.map(|i| (old[i], new[i]))
        );
        assert!(printed.contains(".SH SEE ALSO"), "{name}");
        assert!(printed.contains(".SH EXIT STATUS"), "{name}");
    }
}

#[test]
fn every_binary_prints_completions_for_three_shells() {
    for (name, exe, _) in BINARIES {
        for shell in ["bash", "zsh", "fish"] {
            let script = run(exe, &["--completions", shell]);
            assert!(script.contains(name), "{name} {shell}");
            assert!(
                script.contains("version"),
                "{name} {shell} completes its flags"
            );
        }
    }
}
