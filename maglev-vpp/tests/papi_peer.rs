//! `vpp_papi` (PyPI `vpp-papi`, VPP's own Python binding) as an
//! independent peer: it loads `../shared/vpp-api/*.api.json`, connects to
//! the simulator and runs the scenario that produced the real capture; the
//! retvals and dumps it sees must match what real VPP answered.
//!
//! The python comes from `MAGLEV_PYTHON` (CI creates a virtualenv with
//! `vpp-papi==2.4.2`, see `ci/peers.sh`). Without it the test says why and
//! passes, unless `MAGLEV_REQUIRE_PEERS=1`, then it fails.

mod common;

use std::path::PathBuf;

use maglev_core::dataplane::{Encap, VipKey};
use maglev_vpp::api::messages::{LbAsV2Details, Message, decode_message, peek_msg_id};
use maglev_vpp::api::table::MessageIds;
use maglev_vpp::lb::ops::{as_request, vip_request};
use maglev_vpp::sim::{Sim, SimConfig};

/// The python to run `vpp_papi` with, or why there is none.
fn peer_python() -> Result<PathBuf, String> {
    let python = std::env::var_os("MAGLEV_PYTHON").ok_or("MAGLEV_PYTHON is not set")?;
    let out = std::process::Command::new(&python)
        .args(["-c", "import vpp_papi; print(vpp_papi.__file__)"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import vpp_papi: {}",
            python.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(python))
}

/// Returns the python, or None after saying why the peer test cannot run
/// (a failure when `MAGLEV_REQUIRE_PEERS=1`).
fn python_or_skip() -> Option<PathBuf> {
    match peer_python() {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(
                std::env::var("MAGLEV_REQUIRE_PEERS").as_deref() != Ok("1"),
                "MAGLEV_REQUIRE_PEERS=1 but the vpp_papi peer cannot run: {why}"
            );
            eprintln!("vpp_papi peer test not run: {why}");
            None
        }
    }
}

/// What real VPP answered in the capture: every reply's retval in order,
/// and the `lb_as_v2_details` as (weight, num_buckets).
fn captured_answers() -> (Vec<i32>, Vec<(u8, u32)>) {
    let frames = common::capture();
    let (_, hs) =
        decode_message::<maglev_vpp::api::messages::SockclntCreateReply>(frames[1].payload())
            .unwrap();
    let (ids, _) = MessageIds::resolve(&hs.message_table);
    let mut retvals = Vec::new();
    let mut ases = Vec::new();
    for f in frames.iter().skip(2).filter(|f| !f.to_server) {
        let p = f.payload();
        let id = ids.message(peek_msg_id(p).unwrap()).unwrap();
        let name = id.name();
        if id == LbAsV2Details::ID {
            let (_, d) = decode_message::<LbAsV2Details>(p).unwrap();
            ases.push((d.weight, d.num_buckets));
        } else if name.ends_with("_reply")
            && name != "control_ping_reply"
            && name != "sockclnt_delete_reply"
        {
            retvals.push(i32::from_be_bytes(p[6..10].try_into().unwrap()));
        }
    }
    (retvals, ases)
}

/// The values of `key=` in a printed papi namedtuple.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let end = rest.find([',', ')']).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_papi_runs_the_capture_scenario_against_the_simulator() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let sim = Sim::start(SimConfig::new(common::sock_path("papi")))
        .await
        .unwrap();
    // The state the capture started from: one VIP with two ASes.
    let vip = VipKey {
        address: "192.0.2.1".parse().unwrap(),
        prefix_len: 32,
        protocol: 6,
        port: 80,
    };
    sim.with_model(|m| {
        assert_eq!(
            m.add_del_vip(&vip_request(&vip, Encap::Gre4, false, false), 0),
            0
        );
        assert_eq!(
            m.add_del_as(
                &as_request(&vip, "10.1.0.2".parse().unwrap(), 100, false, false),
                0
            ),
            0
        );
        assert_eq!(
            m.add_del_as(
                &as_request(&vip, "10.1.0.1".parse().unwrap(), 99, false, false),
                0
            ),
            0
        );
        let c = &mut m.vip_mut(&vip).unwrap().counters;
        c.existing_sessions = 999;
        c.first_session = 1;
    });
    let scenario = common::shared().join("fixtures/vpp-26.10/api-capture-scenario.py");
    let out = tokio::process::Command::new(&python)
        .arg(&scenario)
        .arg(sim.api_socket())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scenario failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let retvals: Vec<i32> = lines
        .iter()
        .filter(|l| l.contains("_reply("))
        .map(|l| field(l, "retval").unwrap().parse().unwrap())
        .collect();
    let ases: Vec<(u8, u32)> = lines
        .iter()
        .filter(|l| l.starts_with("lb_as_v2_details("))
        .map(|l| {
            (
                field(l, "weight").unwrap().parse().unwrap(),
                field(l, "num_buckets").unwrap().parse().unwrap(),
            )
        })
        .collect();
    let vips = lines
        .iter()
        .filter(|l| l.starts_with("lb_vip_details("))
        .count();
    let (want_retvals, want_ases) = captured_answers();
    assert_eq!(retvals, want_retvals, "retvals, in order:\n{stdout}");
    assert_eq!(ases, want_ases, "AS dump:\n{stdout}");
    assert_eq!(vips, 3, "VIP dump:\n{stdout}");
    // The CLI text papi got names the pool indexes as real VPP did.
    let cli = lines
        .iter()
        .find(|l| l.starts_with("cli_inband_reply("))
        .unwrap();
    for header in [
        " ip4-gre4 [1] 192.0.2.1/32\\\\n",
        " ip4-gre4 [2] 198.51.100.10/32 src_ip_sticky\\\\n",
        " ip6-gre6 [3] 2001:db8:100::10/128\\\\n",
        "packet from existing sessions: 999",
        "10.1.0.2 weight:100 buckets:514",
    ] {
        assert!(
            cli.contains(header.replace("\\\\", "\\").as_str()),
            "{header} in {cli}"
        );
    }
    let route = lines
        .iter()
        .find(|l| l.starts_with("ip_route_lookup_reply("))
        .unwrap();
    let want_index = sim.with_model(|m| {
        m.route_stats_index(maglev_vpp::api::types::Prefix {
            address: "198.51.100.10".parse().unwrap(),
            len: 32,
        })
    });
    let got: u32 = field(route, "stats_index").unwrap().parse().unwrap();
    assert_eq!(Some(got), want_index, "{route}");
    assert!(route.contains("retval=0"), "{route}");
}
