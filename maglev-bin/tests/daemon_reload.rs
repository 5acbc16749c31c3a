//! End to end: reloads that add and remove frontends and backends, flip
//! src-ip-sticky (the VIP is recreated), change the backends' family (the
//! VIP is recreated with the other encap), and refused reloads.

mod common;

use common::{HEAD, World, until, w};

fn config(body: &str) -> String {
    format!("{HEAD}{body}")
}

const ONE: &str = r#"
  backends:
    a: { address: 127.0.3.1, healthcheck: web }
    b: { address: 127.0.3.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.30
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

const TWO: &str = r#"
  backends:
    a: { address: 127.0.3.1, healthcheck: web }
    c: { address: 127.0.3.3, healthcheck: web }
    six: { address: "::1", healthcheck: web }
  frontends:
    web:
      address: 192.0.2.30
      protocol: tcp
      port: 80
      src-ip-sticky: true
      pools:
        - name: primary
          backends: { a: {}, c: {} }
    api:
      address: 192.0.2.31
      protocol: tcp
      port: 443
      pools:
        - name: primary
          backends: { c: {} }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_recreates() {
    let mut world = World::new(3, 3).await;
    world.add_backend("::1").await;
    world.write_config(&config(ONE));
    world.start(world.settings()).await;
    until("web is programmed", || {
        world.weights("192.0.2.30") == w(&[("127.0.3.1", 100), ("127.0.3.2", 100)])
    })
    .await;
    assert!(!world.vips()[0].src_ip_sticky);

    // A refused reload keeps everything.
    world.write_config(&config("  frontends: [oops"));
    let report = world.handle().reload().await;
    assert!(!report.ok());
    assert!(report.parse_error.unwrap().contains("maglev.yaml"));
    world.write_config(&config(
        r#"
  backends:
    a: { address: 127.0.3.1, healthcheck: nope }
  frontends: {}
"#,
    ));
    let report = world.handle().reload().await;
    assert!(report.semantic_error.unwrap().contains("nope"));
    assert_eq!(
        world.handle().config().frontends().len(),
        1,
        "the running config stays"
    );

    // Backend b goes, c arrives, web turns sticky (recreated), api is new.
    world.write_config(&config(TWO));
    let report = world.handle().reload().await;
    assert!(report.ok(), "{report:?}");
    until("web is recreated sticky with a and c; api is added", || {
        let vips = world.vips();
        vips.len() == 2
            && vips[0].src_ip_sticky
            && vips[0].ases == w(&[("127.0.3.1", 100), ("127.0.3.3", 100)])
            && vips[1].key.port == 443
            && vips[1].ases == w(&[("127.0.3.3", 100)])
    })
    .await;

    // web's backends become IPv6: the VIP is recreated with GRE6; api goes.
    world.write_config(&config(
        r#"
  backends:
    six: { address: "::1", healthcheck: web }
  frontends:
    web:
      address: 192.0.2.30
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { six: {} }
"#,
    ));
    assert!(world.handle().reload().await.ok());
    until("web is recreated with GRE6 and api is removed", || {
        let vips = world.vips();
        vips.len() == 1 && vips[0].vip_type == "ip4-gre6" && vips[0].ases == w(&[("::1", 100)])
    })
    .await;
    world.stop().await;
}
