//! Independent peer: `vpp_papi`'s `VPPStats` (PyPI `vpp-papi==2.4.2`)
//! connects to the simulator's `stats.sock` and must read exactly what the
//! simulator wrote: simple and combined counters on several threads, the
//! directory, scalars, name vectors and symlinks.
//!
//! Python comes from `MAGLEV_PYTHON` (CI: `ci/peers.sh` makes a venv), or a
//! `python3` that has `vpp_papi`, or a venv this test makes under the
//! target directory. Without one the test says why and passes, unless
//! `MAGLEV_REQUIRE_PEERS=1`.
#![cfg(feature = "sim")]

use std::path::PathBuf;
use std::process::Command;

use maglev_vpp::stats::sim::{self, ServeOptions, SimStats, StatsListener};
use maglev_vpp::stats::{LbCounter, ROUTE_TO, StatSegment, StatValue};
use serde_json::{Value, json};

/// Reads the named entries with VPPStats and prints them as JSON.
const DUMP: &str = r#"
import json, sys
from vpp_papi.vpp_stats import VPPStats
sock, names = sys.argv[1], sys.argv[2:]
s = VPPStats(socketname=sock)
s.connect()
def plain(v):
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v
out = {"directory": sorted(k for k in s.directory.keys() if k), "epoch": s.epoch, "values": {}}
for n in names:
    out["values"][n] = plain(s[n])
s.disconnect()
print(json.dumps(out))
"#;

fn require() -> bool {
    std::env::var("MAGLEV_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn has_papi(python: &str) -> bool {
    Command::new(python)
        .args(["-c", "import vpp_papi.vpp_stats"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A python with vpp_papi, or why there is none.
fn python() -> Result<String, String> {
    if let Ok(p) = std::env::var("MAGLEV_PYTHON") {
        return if has_papi(&p) {
            Ok(p)
        } else {
            Err(format!("MAGLEV_PYTHON={p} cannot import vpp_papi"))
        };
    }
    if has_papi("python3") {
        return Ok("python3".into());
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("papi-venv");
    let py = venv.join("bin/python").display().to_string();
    if has_papi(&py) {
        return Ok(py);
    }
    let made = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return Err("no python3 with venv support".into());
    }
    let pip = Command::new(&py)
        .args(["-m", "pip", "install", "-q", "vpp-papi==2.4.2"])
        .status();
    if pip.is_ok_and(|s| s.success()) && has_papi(&py) {
        Ok(py)
    } else {
        Err("pip could not install vpp-papi==2.4.2".into())
    }
}

fn to_json(v: &StatValue) -> Value {
    match v {
        StatValue::Scalar(x) | StatValue::Gauge(x) => json!(x),
        StatValue::Simple(pt) => json!(pt.rows()),
        StatValue::Combined(pt) => {
            json!(
                pt.rows()
                    .iter()
                    .map(|r| r.iter().map(|c| [c.packets, c.bytes]).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            )
        }
        StatValue::Names(n) => json!(n.iter().flatten().collect::<Vec<_>>()),
        StatValue::SimpleColumn(c) => json!(c),
        StatValue::CombinedColumn(c) => {
            json!(c.iter().map(|c| [c.packets, c.bytes]).collect::<Vec<_>>())
        }
        other => panic!("not compared: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_papi_reads_what_the_simulator_wrote() {
    let python = match python() {
        Ok(p) => p,
        Err(why) => {
            assert!(
                !require(),
                "MAGLEV_REQUIRE_PEERS=1 but no vpp_papi peer: {why}"
            );
            eprintln!("skipping the vpp_papi peer test: {why}");
            return;
        }
    };

    // Four threads (main + 3 workers), distinct values in every row.
    let stats = SimStats::new(3).unwrap();
    for pool in 1..=5u32 {
        let route = stats.alloc_route_index();
        stats.add_vip(pool, route).unwrap();
        stats.set_active(pool, pool % 2 == 1);
        for thread in 0..4 {
            let n = u64::from(pool) * 100 + thread as u64 * 7 + 1;
            stats.send(pool, thread, n, n * 90).unwrap();
            stats
                .count_lb(
                    LbCounter::Untracked,
                    thread,
                    pool,
                    u64::from(pool) + thread as u64,
                )
                .unwrap();
        }
    }
    stats.with_writer(|w| {
        let rx = w.index_of("/if/rx").unwrap();
        for t in 0..4 {
            w.set(rx, t, 0, 11 * t as u64, 1100 * t as u64).unwrap();
        }
        let names = w.index_of("/if/names").unwrap();
        w.set_names(names, &[Some("local0"), None, Some("eth0")])
            .unwrap();
    });
    for _ in 0..7 {
        stats.beat().unwrap();
    }

    let dir = std::env::temp_dir().join(format!("maglev-stats-papi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stats.sock");
    let listener = StatsListener::bind(&path).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        trickle: None,
        heartbeat: None,
    };
    let server = tokio::spawn(sim::run(listener, stats.clone(), opts, async {
        let _ = stopped.await;
    }));

    let mut names: Vec<String> = LbCounter::ALL.iter().map(|c| c.name().to_owned()).collect();
    names.extend(
        [
            ROUTE_TO,
            "/sys/heartbeat",
            "/sys/vector_rate",
            "/if/names",
            "/if/rx",
            "/interfaces/local0/rx",
        ]
        .map(String::from),
    );
    let args = names.clone();
    let sock = path.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg("-c")
            .arg(DUMP)
            .arg(&sock)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "vpp_papi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let papi: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Our reader, through the same socket.
    let sock = path.clone();
    let seg = tokio::task::spawn_blocking(move || StatSegment::connect(&sock))
        .await
        .unwrap()
        .unwrap();
    for n in &names {
        let ours = to_json(&seg.read(n).unwrap());
        assert_eq!(papi["values"][n], ours, "{n}");
    }
    let mut listed: Vec<String> = seg.list().unwrap().into_iter().map(|e| e.name).collect();
    listed.sort();
    assert_eq!(papi["directory"], json!(listed));
    assert_eq!(papi["epoch"], json!(seg.epoch()));

    // And against what the simulator wrote, independently of any reader.
    let next = &papi["values"][LbCounter::NextPacket.name()];
    let first = &papi["values"][LbCounter::FirstPacket.name()];
    let noserver = &papi["values"][LbCounter::NoServer.name()];
    for pool in 1..=5u64 {
        let route = 7 + pool as usize;
        for t in 0..4u64 {
            let n = pool * 100 + t * 7 + 1;
            let (p, t) = (pool as usize, t as usize);
            if pool % 2 == 1 {
                assert_eq!(next[t][p], json!(n - 1));
                assert_eq!(first[t][p], json!(1));
            } else {
                assert_eq!(noserver[t][p], json!(n));
            }
            assert_eq!(
                papi["values"]["untracked packet"][t][p],
                json!(pool + t as u64)
            );
            assert_eq!(papi["values"][ROUTE_TO][t][route], json!([n, n * 90]));
        }
    }
    assert_eq!(papi["values"]["/if/names"], json!(["local0", "eth0"]));
    assert_eq!(
        papi["values"]["/interfaces/local0/rx"][3],
        json!([33, 3300])
    );
    assert_eq!(papi["values"]["/sys/heartbeat"], json!(8));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
