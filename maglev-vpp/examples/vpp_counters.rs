//! Read each VIP's packet counters from VPP's stats segment.
//!
//! ```text
//! cargo run -p maglev-vpp --example vpp_counters -- /run/vpp/api.sock /run/vpp/stats.sock
//! ```
//!
//! The stats segment counts by VPP's indexes (a VIP's pool index, its
//! route's stats index), which VPP reuses, so the mapping comes from a
//! fresh LB snapshot over the API ([`Client::vip_stats_indexes`]). A
//! [`VipScrape`] resolves it once per segment epoch and then reads only
//! those cells, summed over VPP's threads. A daemon keeps the scrape and
//! the mapped [`StatSegment`] and calls `run_async` every few seconds.

use std::error::Error;
use std::fmt::Write as _;
use std::time::Duration;

use maglev_vpp::Client;
use maglev_vpp::stats::{StatSegment, VipScrape};

/// How long a connect or a read of a busy segment may take.
const WAIT: Duration = Duration::from_secs(1);

/// Maps the VIPs over the API socket `args[0]`, reads their counters from
/// the stats socket `args[1]` and renders them.
/// (`main` only prints the result; `tests/examples.rs` calls this.)
pub async fn run(args: &[String]) -> Result<String, Box<dyn Error>> {
    let [api_socket, stats_socket] = args else {
        return Err("usage: vpp_counters API_SOCKET STATS_SOCKET".into());
    };
    let vpp = Client::connect(api_socket).await?;
    let mapping = async {
        let snapshot = vpp.lb_snapshot().await?;
        vpp.vip_stats_indexes(&snapshot).await
    }
    .await;
    vpp.close().await?;
    let mut scrape = VipScrape::new(mapping?);

    let segment = StatSegment::connect_async(stats_socket, WAIT).await?;
    let snapshot = scrape.run_async(&segment, WAIT).await?;
    let mut out = String::new();
    for (vip, stats) in snapshot.vips() {
        let lb = stats.lb;
        write!(
            out,
            "{vip} first {} next {} untracked {} no-server {}",
            lb.first_packet, lb.next_packet, lb.untracked, lb.no_server
        )?;
        if let Some(route) = stats.route {
            write!(
                out,
                " route {} packets {} bytes",
                route.packets, route.bytes
            )?;
        }
        out.push('\n');
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(out) => {
            print!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vpp_counters: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
