//! Independent peer: a Python gRPC client (PyPI `grpcio` and
//! `grpcio-reflection`, see `tests/peers/grpc_reflect.py`) that has no
//! `.proto` lists maglevd's services through reflection, builds the
//! `ListFrontends` request from the reflected descriptors, and calls it.
//!
//! Python comes from `MAGLEV_PYTHON` (CI: `ci/peers.sh` makes a venv with
//! the peers), or a `python3` that has grpc. Without one the test says why
//! and passes, unless `MAGLEV_REQUIRE_PEERS=1`.

mod common;
mod grpc_common;

use std::process::Command;

use grpc_common::start;

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/grpc_reflect.py");
const IMPORTS: &str = "import grpc, grpc_reflection.v1alpha.proto_reflection_descriptor_database";

fn require() -> bool {
    std::env::var("MAGLEV_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn has_grpc(python: &str) -> bool {
    Command::new(python)
        .args(["-c", IMPORTS])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A python with grpcio and grpcio-reflection, or why there is none.
fn python() -> Result<String, String> {
    match std::env::var("MAGLEV_PYTHON") {
        Ok(p) if has_grpc(&p) => Ok(p),
        Ok(p) => Err(format!(
            "MAGLEV_PYTHON={p} cannot import grpc and grpc_reflection (run ci/peers.sh)"
        )),
        Err(_) if has_grpc("python3") => Ok("python3".into()),
        Err(_) => Err("no MAGLEV_PYTHON, and python3 has no grpc (run ci/peers.sh)".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_lists_services_and_frontends_through_reflection() {
    let python = match python() {
        Ok(p) => p,
        Err(why) => {
            assert!(!require(), "MAGLEV_REQUIRE_PEERS=1 but no gRPC peer: {why}");
            eprintln!("skipping the Python gRPC peer test: {why}");
            return;
        }
    };
    let (world, _) = start(54, |_| {}).await;
    let addr = world.daemon().grpc_addrs()[0].to_string();
    let output = tokio::process::Command::new(&python)
        .arg(PEER)
        .arg(&addr)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{PEER} failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = |kind: &str| -> Vec<String> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(kind))
            .filter_map(|l| l.strip_prefix(' '))
            .map(str::to_owned)
            .collect()
    };
    let services = lines("service");
    for s in ["maglev.Maglev", "grpc.health.v1.Health"] {
        assert!(services.iter().any(|x| x == s), "{s} not in {stdout}");
    }
    assert_eq!(
        lines("frontend"),
        ["api 198.51.100.54", "web 192.0.2.54"],
        "{stdout}"
    );
    let fields = lines("field");
    for f in ["name", "pools", "state", "active_pool", "released"] {
        assert!(fields.iter().any(|x| x == f), "{f} not in {stdout}");
    }
    world.stop().await;
}
