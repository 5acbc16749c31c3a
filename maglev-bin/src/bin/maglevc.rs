//! `maglevc`, the maglevd operator CLI: flags, then [`maglev_bin::cli::main`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    maglev_bin::cli::main(maglev_bin::cli::Args::parse())
}
