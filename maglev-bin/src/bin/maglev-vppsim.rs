//! maglev-vppsim: VPP's binary API, simulated, on a unix socket.
//!
//! Runs the `maglev-vpp` simulator on its own so that `vpp_papi`, GoVPP,
//! `maglevd` or any other VPP API client can be pointed at it from a shell:
//!
//! ```text
//! maglev-vppsim --api-socket /tmp/vpp-api.sock --stats-socket /tmp/vpp-stats.sock --workers 2
//! ```
//!
//! With `--stats-socket` it also serves a simulated stats segment in VPP's
//! layout, lined up with the API side (a VIP's pool index and route stats
//! index are its counters' columns), with a steady trickle of packets to
//! every VIP that has a serving AS, so counters move when someone looks.
//!
//! Every request is logged (`RUST_LOG` filters, default `info`). It runs
//! until SIGINT or SIGTERM and removes its sockets.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use maglev_vpp::sim::{Sim, SimConfig};
use maglev_vpp::stats::sim::SimStats;
use tokio::signal::unix::{SignalKind, signal};

/// VPP's binary API (the `lb` plugin), simulated.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen for API clients (VPP's default is /run/vpp/api.sock).
    #[arg(long, env = "MAGLEV_VPPSIM_API_SOCKET")]
    api_socket: PathBuf,
    /// Where to serve the stats segment (VPP's default is
    /// /run/vpp/stats.sock); none when absent.
    #[arg(long, env = "MAGLEV_VPPSIM_STATS_SOCKET")]
    stats_socket: Option<PathBuf>,
    /// Worker threads of the simulated VPP: per-thread counters have one row
    /// more (the main thread).
    #[arg(long, default_value_t = 1)]
    workers: usize,
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
    let (stop_stats, stats_stopped) = tokio::sync::oneshot::channel::<()>();
    let stats_task = match &args.stats_socket {
        None => None,
        Some(path) => {
            let stats = SimStats::new(args.workers).context("creating the stats segment")?;
            sim.set_observer(Arc::new(stats.clone()));
            tracing::info!(stats_socket = %path.display(), workers = args.workers, "serving the stats segment");
            let path = path.clone();
            Some(tokio::spawn(async move {
                let shutdown = async {
                    let _ = stats_stopped.await;
                };
                maglev_vpp::stats::sim::serve(&path, stats, shutdown)
                    .await
                    .with_context(|| format!("serving stats on {}", path.display()))
            }))
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    sim.stop().await;
    let _ = stop_stats.send(());
    if let Some(task) = stats_task {
        task.await.context("the stats server task failed")??;
    }
    Ok(())
}
