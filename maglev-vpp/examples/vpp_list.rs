//! List the VIPs and ASes VPP's `lb` plugin holds, over the binary API.
//!
//! ```text
//! cargo run -p maglev-vpp --example vpp_list -- /run/vpp/api.sock
//! ```
//!
//! [`Client::lb_snapshot`] pipelines `lb_vip_dump`, `show lb vips verbose`
//! (the only source of pool indexes and stickiness) and `lb_as_v2_dump`,
//! and joins them: VIPs in key order, each VIP's ASes by address.
//! [`Client::close`] says goodbye (`sockclnt_delete`), which VPP needs to
//! forget the client.

use std::error::Error;
use std::fmt::Write as _;

use maglev_vpp::Client;

/// Connects to the API socket in `args[0]` and renders what VPP holds.
/// (`main` only prints the result; `tests/examples.rs` calls this.)
pub async fn run(args: &[String]) -> Result<String, Box<dyn Error>> {
    let [api_socket] = args else {
        return Err("usage: vpp_list API_SOCKET".into());
    };
    let vpp = Client::connect(api_socket).await?;
    let snapshot = vpp.lb_snapshot().await;
    vpp.close().await?;
    let snapshot = snapshot?;

    let mut out = String::new();
    for vip in &snapshot.vips {
        writeln!(
            out,
            "{} encap {} table {} pool-index {}{}",
            vip.key,
            vip.encap,
            vip.table_len,
            vip.pool_index,
            if vip.src_ip_sticky {
                " src-ip-sticky"
            } else {
                ""
            },
        )?;
        for a in snapshot.ases.iter().filter(|a| a.vip == vip.key) {
            writeln!(
                out,
                "  as {} weight {} buckets {}",
                a.address, a.weight, a.num_buckets
            )?;
        }
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
            eprintln!("vpp_list: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
