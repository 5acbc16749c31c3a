//! A dry run: what a sync would change in VPP to make it hold a config,
//! printed as the ordered ops, none of them sent.
//!
//! ```text
//! cargo run -p maglev-vpp --example vpp_plan -- /etc/vpp-maglev/maglev.yaml /run/vpp/api.sock [DOWN_BACKEND...]
//! ```
//!
//! It is `desired → plan` without `apply`: the desired dataplane from the
//! config (`maglev_core::desired`), what VPP holds ([`Client::observe`]),
//! and the deterministic diff (`maglev_core::plan::plan_all`). With no
//! health checker running, every enabled backend is taken to be up,
//! except those named after the socket, which are taken to be down (so a
//! frontend whose primary pool is named fails over to the next). To carry
//! the plan out, pass the ops to `maglev_vpp::lb::apply::apply`.

use std::error::Error;
use std::fmt::Write as _;

use maglev_core::config::Config;
use maglev_core::desired::desired_all;
use maglev_core::plan::{PendingFlushes, plan_all};
use maglev_core::state::BackendState;
use maglev_core::weights::Serving;
use maglev_vpp::Client;

/// Plans the sync of the config file `args[0]` against the VPP on the API
/// socket `args[1]`, with the backends in `args[2..]` down, and renders
/// one op per line.
/// (`main` only prints the result; `tests/examples.rs` calls this.)
pub async fn run(args: &[String]) -> Result<String, Box<dyn Error>> {
    let [config_path, api_socket, down @ ..] = args else {
        return Err("usage: vpp_plan CONFIG API_SOCKET [DOWN_BACKEND...]".into());
    };
    let text = std::fs::read_to_string(config_path).map_err(|e| format!("{config_path}: {e}"))?;
    let config = Config::from_yaml(&text, config_path)?;

    let vpp = Client::connect(api_socket).await?;
    let observed = vpp.observe().await;
    vpp.close().await?;
    let observed = observed?;

    let serving = |backend: &str| -> Serving {
        let state = if down.iter().any(|d| d == backend) {
            BackendState::Down
        } else if config.backend(backend).is_some_and(|b| b.enabled) {
            BackendState::Up
        } else {
            BackendState::Disabled
        };
        state.into()
    };
    // No earlier pool choice: each frontend takes its first pool that serves.
    let desired = desired_all(&config, serving, |_frontend| None);
    let ops = plan_all(&desired, &observed, &PendingFlushes::new());

    let mut out = String::new();
    for op in &ops {
        writeln!(out, "{op}")?;
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
            eprintln!("vpp_plan: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
