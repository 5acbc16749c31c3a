//! `maglevd --check`: validate a config file and report every error; and,
//! when a daemon is running, warn of every VIP a reload of this file would
//! delete (its flows are dropped) or recreate (a new table length or
//! stickiness: VPP cannot change either in place, so every flow of the VIP
//! re-hashes).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use maglev_core::config::{Config, ConfigError};
use maglev_core::dataplane::VipKey;
use maglev_core::reload::{DeleteLimit, VipSpec, vip_changes};

/// The outcome of checking a config file, with the exit codes of the
/// original: 0 valid, 1 read or parse error, 2 semantic error.
#[derive(Debug)]
pub enum CheckOutcome {
    /// The file is valid.
    Valid(Config),
    /// The file could not be read.
    Unreadable(String),
    /// The file is not valid YAML or does not fit the schema.
    Parse(ConfigError),
    /// The file breaks semantic rules.
    Semantic(ConfigError),
}

impl CheckOutcome {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            CheckOutcome::Valid(_) => 0,
            CheckOutcome::Unreadable(_) | CheckOutcome::Parse(_) => 1,
            CheckOutcome::Semantic(_) => 2,
        }
    }

    /// The lines to print: one per error, nothing when valid.
    pub fn lines(&self) -> Vec<String> {
        match self {
            CheckOutcome::Valid(_) => Vec::new(),
            CheckOutcome::Unreadable(msg) => vec![msg.clone()],
            CheckOutcome::Parse(e) | CheckOutcome::Semantic(e) => e.lines(),
        }
    }
}

/// Reads and validates the config file at `path`.
pub fn check_file(path: &Path) -> CheckOutcome {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Err(e) => CheckOutcome::Unreadable(format!("{origin}: cannot read config: {e}")),
        Ok(text) => match Config::from_yaml(&text, &origin) {
            Ok(config) => CheckOutcome::Valid(config),
            Err(e @ ConfigError::Parse(_)) => CheckOutcome::Parse(e),
            Err(e) => CheckOutcome::Semantic(e),
        },
    }
}

/// How long `--check` waits for the running daemon.
const DAEMON_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `--check`: errors to stderr one per line, a summary line to stdout
/// when valid, and the exit code. A valid file without frontends is
/// warned about (reloaded, it deletes every VIP). With `daemon` (the gRPC
/// address of a running maglevd), a valid file is also compared with what
/// it runs: a warning on stderr per VIP a reload would delete or recreate,
/// and a summary of the deletions (the exit code stays 0), or a note on
/// stdout when no daemon answers.
pub fn run(path: &Path, daemon: Option<&str>) -> ExitCode {
    let outcome = check_file(path);
    match &outcome {
        CheckOutcome::Valid(config) => {
            let mut out = std::io::stdout().lock();
            // A closed stdout is not worth failing a check over.
            let _ = writeln!(
                out,
                "{}: ok ({} frontends, {} backends, {} health checks)",
                path.display(),
                config.frontends().len(),
                config.backends().len(),
                config.healthchecks().len()
            );
            let mut err = std::io::stderr().lock();
            if config.frontends().is_empty() {
                let _ = writeln!(
                    err,
                    "warning: the file has no frontends: a reload of it deletes every VIP the daemon runs"
                );
            }
            if let Some(addr) = daemon {
                match running_frontends(addr) {
                    Ok(running) => {
                        for w in reload_warnings(config, &running) {
                            let _ = writeln!(err, "warning: {w}");
                        }
                    }
                    Err(why) => {
                        let _ = writeln!(
                            out,
                            "(no running maglevd answered at {addr}: {why}; VIP deletions and recreations not checked)"
                        );
                    }
                }
            }
        }
        _ => {
            let mut err = std::io::stderr().lock();
            for line in outcome.lines() {
                let _ = writeln!(err, "{line}");
            }
        }
    }
    ExitCode::from(outcome.exit_code())
}

/// What a reload of `config` would do to a daemon running `running`: a
/// line per VIP it deletes or recreates, then a summary of the deletions.
pub fn reload_warnings(
    config: &Config,
    running: &[crate::grpc::proto::FrontendInfo],
) -> Vec<String> {
    let running: Vec<VipSpec> = running.iter().filter_map(running_spec).collect();
    let changes = vip_changes(&running, &VipSpec::of_config(config));
    let mut lines = changes.deletion_lines();
    lines.extend(changes.recreation_lines());
    if !changes.deleted.is_empty() {
        lines.push(format!(
            "a reload deletes {} of the {} VIPs the daemon runs; the daemon refuses one that deletes more than its --reload-delete-limit (default {}%) unless forced",
            changes.deleted.len(),
            changes.running,
            DeleteLimit::DEFAULT.0
        ));
    }
    lines
}

/// A running frontend as the reload comparison needs it; `None` for one
/// whose address or protocol does not parse (not a maglevd's answer).
fn running_spec(r: &crate::grpc::proto::FrontendInfo) -> Option<VipSpec> {
    let address = r.address.parse().ok()?;
    let protocol = match r.protocol.as_str() {
        "" => None,
        p => Some(p.parse().ok()?),
    };
    let port = u16::try_from(r.port).ok()?;
    Some(VipSpec {
        frontend: r.name.clone(),
        key: VipKey::host(address, protocol, port),
        table_len: r.table_length,
        src_ip_sticky: r.src_ip_sticky,
    })
}

/// The frontends the daemon at `addr` (a listen address: `:port` means
/// this host) runs.
fn running_frontends(addr: &str) -> Result<Vec<crate::grpc::proto::FrontendInfo>, String> {
    use crate::grpc::proto::maglev_client::MaglevClient;
    let target = match addr.strip_prefix(':') {
        Some(port) => format!("http://localhost:{port}"),
        None => format!("http://{addr}"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let ask = async {
            let channel = tonic::transport::Endpoint::from_shared(target)
                .map_err(|e| e.to_string())?
                .connect_timeout(DAEMON_TIMEOUT)
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            crate::grpc::paging::all_frontends(&MaglevClient::new(channel), Default::default())
                .await
                .map(|r| r.frontends)
                .map_err(|s| s.message().to_owned())
        };
        tokio::time::timeout(DAEMON_TIMEOUT, ask)
            .await
            .map_err(|_| "no answer".to_owned())?
    })
}
