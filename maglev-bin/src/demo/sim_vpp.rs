//! A whole simulated VPP in-process: the API simulator and the stats
//! segment lined up (a VIP's pool index and route stats index are its
//! counters' columns), each on its own unix socket in a directory.
//!
//! `maglevd --demo`, the end-to-end tests and the benches run the real
//! daemon against it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use maglev_vpp::sim::{Sim, SimConfig};
use maglev_vpp::stats::sim::{ServeOptions, SimStats, StatsListener};
use tokio_util::sync::CancellationToken;

use crate::daemon::VppSockets;

/// A running simulated VPP.
#[derive(Debug)]
pub struct SimVpp {
    /// The API simulator (inspect or fault it through here).
    pub sim: Sim,
    /// The stats segment it writes.
    pub stats: SimStats,
    api: PathBuf,
    stats_path: PathBuf,
    stop_stats: CancellationToken,
    stats_task: tokio::task::JoinHandle<()>,
}

impl SimVpp {
    /// Starts the simulator with `workers` worker threads, its sockets
    /// `api.sock` and `stats.sock` in `dir`, and a packet to every serving
    /// VIP every `trickle`.
    pub async fn start(
        dir: &Path,
        workers: usize,
        trickle: Option<Duration>,
    ) -> anyhow::Result<SimVpp> {
        let api = dir.join("api.sock");
        let stats_path = dir.join("stats.sock");
        let sim = Sim::start(SimConfig::new(&api))
            .await
            .with_context(|| format!("starting the VPP simulator on {}", api.display()))?;
        let stats = SimStats::new(workers).context("creating the simulated stats segment")?;
        sim.set_observer(Arc::new(stats.clone()));
        let listener = StatsListener::bind(&stats_path)
            .with_context(|| format!("binding {}", stats_path.display()))?;
        let stop_stats = CancellationToken::new();
        let opts = ServeOptions {
            trickle,
            ..ServeOptions::default()
        };
        let task = {
            let stats = stats.clone();
            let stop = stop_stats.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    maglev_vpp::stats::sim::run(listener, stats, opts, stop.cancelled_owned()).await
                {
                    tracing::warn!(error = %e, "simulated stats server stopped");
                }
            })
        };
        Ok(SimVpp {
            sim,
            stats,
            api,
            stats_path,
            stop_stats,
            stats_task: task,
        })
    }

    /// The sockets, as the daemon's settings name them.
    pub fn sockets(&self) -> VppSockets {
        VppSockets {
            api: self.api.clone(),
            stats: Some(self.stats_path.clone()),
        }
    }

    /// Stops both sockets.
    pub async fn stop(mut self) {
        self.sim.stop().await;
        self.stop_stats.cancel();
        let _ = (&mut self.stats_task).await;
    }
}
