//! Loading and reloading the config file (SPEC §2.8): SIGHUP, the
//! `ReloadConfig` RPC and `config reload` all come here.
//!
//! The file is validated first; a file that does not parse or breaks a
//! rule is refused with every problem logged, and the running config stays.

use std::path::Path;

use maglev_core::config::Config;
use maglev_core::reload::{DeleteLimit, VipChanges, VipSpec};

use crate::check::{CheckOutcome, check_file};

/// What a check or reload of the config file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigReport {
    /// The file.
    pub path: String,
    /// The read or parse error, if any.
    pub parse_error: Option<String>,
    /// The semantic errors, one per line, if any (a reload refused for the
    /// VIPs it deletes says so here).
    pub semantic_error: Option<String>,
    /// The VIPs a reload deleted, one line each.
    pub deleted: Vec<String>,
}

impl ConfigReport {
    /// Whether the file was valid.
    pub fn ok(&self) -> bool {
        self.parse_error.is_none() && self.semantic_error.is_none()
    }

    /// Every problem, one per line.
    pub fn message(&self) -> String {
        [&self.parse_error, &self.semantic_error]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn of(path: &Path, outcome: &CheckOutcome) -> ConfigReport {
        let lines = outcome.lines().join("\n");
        let (parse_error, semantic_error) = match outcome {
            CheckOutcome::Valid(_) => (None, None),
            CheckOutcome::Unreadable(_) | CheckOutcome::Parse(_) => (Some(lines), None),
            CheckOutcome::Semantic(_) => (None, Some(lines)),
        };
        ConfigReport {
            path: path.display().to_string(),
            parse_error,
            semantic_error,
            deleted: Vec::new(),
        }
    }
}

/// Reads and validates the file at `path`: the config, or the report of
/// what is wrong with it.
pub fn load(path: &Path) -> Result<Config, ConfigReport> {
    let outcome = check_file(path);
    let report = ConfigReport::of(path, &outcome);
    match outcome {
        CheckOutcome::Valid(config) => Ok(config),
        _ => Err(report),
    }
}

/// Checks the VIPs a reload from `running` to `new` deletes against
/// `limit`: what it deletes, or the report of the refusal.
pub fn check_deletions(
    path: &Path,
    running: &Config,
    new: &Config,
    limit: DeleteLimit,
    force: bool,
) -> Result<VipChanges, ConfigReport> {
    maglev_core::reload::check_deletions(
        &VipSpec::of_config(running),
        &VipSpec::of_config(new),
        limit,
        force,
    )
    .map_err(|refused| ConfigReport {
        path: path.display().to_string(),
        parse_error: None,
        semantic_error: Some(refused.to_string()),
        deleted: Vec::new(),
    })
}

/// Validates the file at `path` without loading it, logging nothing.
pub fn check(path: &Path) -> ConfigReport {
    ConfigReport::of(path, &check_file(path))
}

/// Logs a refused reload: parse and semantic problems separately, one
/// record per problem.
pub fn log_refusal(report: &ConfigReport) {
    for line in report.parse_error.iter().flat_map(|e| e.lines()) {
        tracing::error!(path = %report.path, error = line, "config-reload-parse-error");
    }
    for line in report.semantic_error.iter().flat_map(|e| e.lines()) {
        tracing::error!(path = %report.path, error = line, "config-reload-semantic-error");
    }
}
