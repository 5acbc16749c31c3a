//! `maglevd --check`: validate a config file and report every error.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use maglev_core::config::{Config, ConfigError};

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

/// Runs `--check`: errors to stderr one per line, a summary line to stdout
/// when valid, and the exit code.
pub fn run(path: &Path) -> ExitCode {
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
