//! `soak`: the chaos soak of the daemon (see `maglev_benches::soak`).
//!
//! ```text
//! cargo run --release -p maglev-benches --bin soak -- --seconds 1800 --seed 1
//! ```
//!
//! Prints a progress line a minute and each violation on one line as it
//! happens (time, seed, invariant, what), then the details (faults and
//! actions by kind, floods, storms, resources, violations by invariant,
//! every violation with the events before it) and the one summary line;
//! exits 1 on any violation.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use maglev_benches::soak::{self, Options};

/// The daemon against the VPP simulator and loopback backends under seeded
/// random faults, checking its invariants as it runs.
#[derive(Debug, Parser)]
#[command(name = "soak", version)]
struct Flags {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The RNG seed: the same seed replays the same faults and actions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The third octet of the backends' addresses (127.0.NET.1-8).
    #[arg(long, default_value_t = 77)]
    net: u8,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    let opts = Options {
        seconds: flags.seconds,
        seed: flags.seed,
        net: flags.net,
        progress: Some(Arc::new(|line: &str| eprintln!("{line}"))),
    };
    match soak::run(opts).await {
        Ok(report) => {
            print!("{}", report.details());
            println!("{}", report.summary());
            if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "soak: {} violations; replay with --seed {}",
                    report.violations.len(),
                    report.seed
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: could not run: {e:#}");
            ExitCode::from(2)
        }
    }
}
