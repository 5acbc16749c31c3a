//! maglev-vppsim: VPP's binary API, simulated, on a unix socket.
//!
//! Runs the `maglev-vpp` simulator on its own so that `vpp_papi`, GoVPP,
//! `maglevd` or any other VPP API client can be pointed at it from a shell:
//!
//! ```text
//! maglev-vppsim --api-socket /tmp/vpp-api.sock
//! ```
//!
//! Every request is logged (`RUST_LOG` filters, default `info`). It runs
//! until SIGINT or SIGTERM and removes its socket.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use maglev_vpp::sim::{Sim, SimConfig};
use tokio::signal::unix::{SignalKind, signal};

/// VPP's binary API (the `lb` plugin), simulated.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen for API clients (VPP's default is /run/vpp/api.sock).
    #[arg(long, env = "MAGLEV_VPPSIM_API_SOCKET")]
    api_socket: PathBuf,
    /// The pid reported by control_ping.
    #[arg(long, default_value_t = std::process::id())]
    vpe_pid: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = SimConfig::new(&args.api_socket);
    config.vpe_pid = args.vpe_pid;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sim = Sim::start(config)
        .await
        .with_context(|| format!("listening on {}", args.api_socket.display()))?;
    tracing::info!(api_socket = %args.api_socket.display(), "maglev-vppsim listening");
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    sim.stop().await;
    Ok(())
}
