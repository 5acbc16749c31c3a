//! Running the real `maglevc` binary once: with exactly the arguments and
//! `MAGLEV_*` variables a test gives (none inherited from the
//! environment), its exit code and output.

#![allow(dead_code, reason = "each test binary uses a part of it")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

/// How one run of maglevc ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `maglevc args` with `env` and nothing else of ours in its
/// environment.
pub async fn maglevc(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglevc"));
    for var in [
        "MAGLEV_SERVER",
        "MAGLEV_TLS",
        "MAGLEV_CA",
        "MAGLEV_CERT",
        "MAGLEV_KEY",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(std::process::Stdio::null()).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("maglevc runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
