//! Independent peer: a Python gRPC client (PyPI `grpcio` and
//! `grpcio-reflection`, see `tests/peers/grpc_reflect.py`) that has no
//! `.proto` lists maglevd's services through reflection, builds the
//! `ListFrontends` request from the reflected descriptors, and calls it;
//! it reads each RPC's `(maglev.access)` option as reflection serves it;
//! and over mTLS, with grpcio's own TLS stack, it is let in with a
//! certificate of the daemon's CA and, as a reader, denied a write.
//!
//! Python comes from `MAGLEV_PYTHON` (CI: `ci/peers.sh` makes a venv with
//! the peers), or a `python3` that has grpc. Without one the test says why
//! and passes, unless `MAGLEV_REQUIRE_PEERS=1`.

mod common;
mod grpc_common;
mod tls_common;

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

/// The peer's python, or `None` (said why) when there is none and none is
/// required.
fn peer_python() -> Option<String> {
    match python() {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(!require(), "MAGLEV_REQUIRE_PEERS=1 but no gRPC peer: {why}");
            eprintln!("skipping the Python gRPC peer test: {why}");
            None
        }
    }
}

/// Runs the peer with `args`; its stdout.
async fn run_peer(python: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(python)
        .arg(PEER)
        .args(args)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{PEER} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The peer's lines of `kind`, without it.
fn lines(stdout: &str, kind: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(kind))
        .filter_map(|l| l.strip_prefix(' '))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_lists_services_and_frontends_through_reflection() {
    let Some(python) = peer_python() else {
        return;
    };
    let (world, _) = start(54, |_| {}).await;
    let addr = world.daemon().grpc_addrs()[0].to_string();
    let stdout = run_peer(&python, &[&addr]).await;
    let lines = |kind: &str| lines(&stdout, kind);
    let services = lines("service");
    for s in ["maglev.Maglev", "grpc.health.v1.Health"] {
        assert!(services.iter().any(|x| x == s), "{s} not in {stdout}");
    }
    assert_eq!(
        lines("frontend"),
        ["api 198.51.100.54", "web 192.0.2.54"],
        "{stdout}"
    );
    // WatchEvents' pre-encoded bytes, as another protobuf runtime reads
    // them: the frontend snapshot.
    assert_eq!(
        lines("event"),
        ["frontend api same", "frontend web same"],
        "{stdout}"
    );
    let fields = lines("field");
    for f in ["name", "pools", "state", "active_pool", "released"] {
        assert!(fields.iter().any(|x| x == f), "{f} not in {stdout}");
    }
    // The access marks, as another protobuf runtime reads them.
    let access = lines("access");
    assert_eq!(access.len(), 24, "{stdout}");
    let mut writes: Vec<String> = access
        .iter()
        .filter_map(|l| l.strip_suffix(" ACCESS_WRITE"))
        .map(str::to_owned)
        .collect();
    writes.sort();
    assert_eq!(writes, maglev_bin::grpc::access::write_rpcs());
    assert!(
        access
            .iter()
            .all(|l| l.ends_with(" ACCESS_READ") || l.ends_with(" ACCESS_WRITE")),
        "{stdout}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_over_mtls_reads_and_is_denied_a_write() {
    let Some(python) = peer_python() else {
        return;
    };
    let pki = tls_common::Pki::new();
    let (world, _) = start(55, |s| s.grpc_tls = Some(pki.server_files(true))).await;
    let server = format!("localhost:{}", world.daemon().grpc_addrs()[0].port());
    let bob = pki.client("bob");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (ca, cert, key) = (path(&pki.ca), path(&bob.cert), path(&bob.key));
    let stdout = run_peer(
        &python,
        &[
            &server, "--ca", &ca, "--cert", &cert, "--key", &key, "--pause", "a",
        ],
    )
    .await;
    assert_eq!(
        lines(&stdout, "frontend"),
        ["api 198.51.100.55", "web 192.0.2.55"],
        "{stdout}"
    );
    assert_eq!(lines(&stdout, "pause"), ["PERMISSION_DENIED"], "{stdout}");
    assert_ne!(
        world.handle().backend("a").unwrap().state.to_string(),
        "paused"
    );
    world.stop().await;
}
