//! `maglevd --check` as an operator runs it: the binary, real files, exit
//! codes 0/1/2 and one error per line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn check(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--check")
        .arg("--config")
        .arg(config)
        .env_remove("MAGLEV_CONFIG")
        .output()
        .unwrap()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stderr.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn valid_config_exits_0() {
    let out = check(&workspace().join("docs/examples/maglev.yaml"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("ok (3 frontends, 6 backends, 4 health checks)"),
        "{stdout}"
    );
}

#[test]
fn parse_error_exits_1_with_place_and_path() {
    let file = workspace().join("maglev-core/tests/configs/invalid/weight-type.yaml");
    let out = check(&file);
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let want = format!(
        "{}:10:36: maglev.frontends.web.pools[0].backends.a.weight: invalid type",
        file.display()
    );
    assert!(lines[0].starts_with(&want), "{lines:?}");
}

#[test]
fn unreadable_file_exits_1() {
    let out = check(Path::new("/nonexistent/maglev.yaml"));
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert!(
        lines[0].starts_with("/nonexistent/maglev.yaml: cannot read config:"),
        "{lines:?}"
    );
}

#[test]
fn semantic_errors_exit_2_one_per_line() {
    let out = check(&workspace().join("maglev-core/tests/configs/invalid/vips.yaml"));
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines.contains(
            &"maglev.frontends.b: same VIP 192.0.2.1/32 tcp/80 as frontend \"a\"".to_owned()
        ),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("maglev.frontends.")),
        "{lines:?}"
    );
}

#[test]
fn multi_line_messages_stay_on_one_line() {
    let out = check(&workspace().join("maglev-core/tests/configs/invalid/params.yaml"));
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.starts_with("maglev.healthchecks.")),
        "{lines:?}"
    );
}

#[test]
fn config_path_from_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--check")
        .env(
            "MAGLEV_CONFIG",
            workspace().join("docs/examples/maglev.yaml"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn help_and_version() {
    let help = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("--check") && text.contains("--config"),
        "{text}"
    );
    let version = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(version.status.code(), Some(0));
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(
        version.starts_with(&format!("maglevd {} (commit ", env!("CARGO_PKG_VERSION"))),
        "version, commit and date: {version}"
    );
}

#[test]
fn unknown_flags_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--no-such-flag"), "{err}");
}
