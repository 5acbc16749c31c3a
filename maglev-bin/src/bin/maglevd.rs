//! `maglevd`, the maglev daemon.
//!
//! This build validates configuration (`--check`); the daemon itself
//! (probing, VPP sync, gRPC, metrics) is wired in by later work, and until
//! then running without `--check` says so and exits non-zero rather than
//! pretending to run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use maglev_core::config::DEFAULT_CONFIG_PATH;

/// maglevd: health-checks backends and programs VPP's Maglev load balancer.
#[derive(Debug, Parser)]
#[command(name = "maglevd", version)]
struct Args {
    /// The YAML config file.
    #[arg(long, env = "MAGLEV_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    /// Validate the config file and exit: 0 valid, 1 read or parse error,
    /// 2 semantic error.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check {
        return maglev_bin::check::run(&args.config);
    }
    eprintln!(
        "maglevd: this build only validates configuration; run `maglevd --check --config {}`",
        args.config.display()
    );
    ExitCode::from(2)
}
