//! maglevc one-shot against a daemon that serves gRPC over TLS and
//! requires client certificates: what each kind of client is told (no
//! TLS, no certificate, a foreign one, a reader's write, a missing file)
//! and that an admin's certificate, given by flags or `MAGLEV_*`
//! variables, writes.

mod common;
mod grpc_common;
mod maglevc_common;
mod tls_common;

use common::World;
use maglevc_common::maglevc;
use tls_common::Pki;

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglevc_against_a_daemon_that_requires_client_certificates() {
    let pki = Pki::new();
    let mut world = World::new(88, 3).await;
    world.write_config(&format!(
        "{}  access:\n    admins: [alice]\n",
        grpc_common::config(88)
    ));
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    settings.grpc_tls = Some(pki.server_files(true));
    world.start(settings).await;
    let server = format!("localhost:{}", world.daemon().grpc_addrs()[0].port());
    let ca = path(&pki.ca);
    let (bob, alice, mallory) = (
        pki.client("bob"),
        pki.client("alice"),
        pki.client("mallory"),
    );

    // Plain gRPC to a TLS listener.
    let r = maglevc(&["--server", &server, "show", "frontends"], &[]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("cannot reach maglevd at {server}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("give --tls"), "{}", r.stderr);

    // TLS without a client certificate.
    let r = maglevc(&["--server", &server, "--ca", ca, "show", "frontends"], &[]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("maglevd wants a client certificate: give --cert and --key"),
        "{}",
        r.stderr
    );

    // A certificate from another CA.
    let r = maglevc(
        &[
            "--server",
            &server,
            "--ca",
            ca,
            "--cert",
            path(&mallory.cert),
            "--key",
            path(&mallory.key),
            "show",
            "frontends",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("maglevd refused the client certificate"),
        "{}",
        r.stderr
    );

    // A reader reads, and is told why a write is refused.
    let as_bob = |cmd: &'static [&'static str]| {
        let mut args = vec![
            "--server",
            server.as_str(),
            "--ca",
            ca,
            "--cert",
            path(&bob.cert),
            "--key",
            path(&bob.key),
        ];
        args.extend_from_slice(cmd);
        args
    };
    let r = maglevc(&as_bob(&["show", "frontends"]), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("web") && r.stdout.contains("api"),
        "{}",
        r.stdout
    );
    let r = maglevc(&as_bob(&["set", "backend", "a", "pause"]), &[]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "permission denied: PauseBackend is a write RPC and bob may only read (not in maglev.access.admins)"
    );
    assert_ne!(
        world.handle().backend("a").unwrap().state.to_string(),
        "paused"
    );

    // An admin, by the environment.
    let r = maglevc(
        &["set", "backend", "a", "pause"],
        &[
            ("MAGLEV_SERVER", &server),
            ("MAGLEV_CA", ca),
            ("MAGLEV_CERT", path(&alice.cert)),
            ("MAGLEV_KEY", path(&alice.key)),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        world.handle().backend("a").unwrap().state.to_string(),
        "paused"
    );

    // A file that is not there is a usage error naming it.
    let r = maglevc(
        &[
            "--server",
            &server,
            "--ca",
            "/nonexistent/ca.pem",
            "show",
            "frontends",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/ca.pem: "), "{}", r.stderr);
    world.stop().await;
}
