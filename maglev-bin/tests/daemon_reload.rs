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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_deletes_most_vips_is_refused_unless_forced() {
    let mut world = World::new(4, 3).await;
    let two = TWO
        .replace("127.0.3.", "127.0.4.")
        .replace("192.0.2.3", "192.0.2.4");
    world.add_backend("::1").await;
    world.write_config(&config(&two));
    world.start(world.settings()).await;
    until("web and api are programmed", || {
        world.vips().len() == 2 && world.vips().iter().all(|v| !v.ases.is_empty())
    })
    .await;
    let before = world.vips();

    // The file lost its frontends: valid, and it would delete every VIP.
    let no_frontends = "  backends:\n    a: { address: 127.0.4.1, healthcheck: web }\n";
    world.write_config(&config(no_frontends));
    let report = world.handle().reload().await;
    assert!(!report.ok());
    assert_eq!(
        report.semantic_error.as_deref(),
        Some(
            "reload refused: it deletes 2 of 2 VIPs (more than 50%): frontends api, web; \
             reload with force to apply"
        )
    );
    assert_eq!(
        world.handle().config().frontends().len(),
        2,
        "the running config stays"
    );
    // Nothing moved in VPP: a sync finds nothing to do.
    assert_eq!(world.handle().sync(None).await.unwrap().ops, []);
    assert_eq!(world.vips(), before);

    // Forced, it applies and names what it deleted.
    let report = world.handle().reload_with(true).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.deleted,
        [
            "frontend api: VIP 192.0.2.41/32 tcp/443 is deleted: its flows are dropped",
            "frontend web: VIP 192.0.2.40/32 tcp/80 is deleted: its flows are dropped",
        ]
    );
    until("every VIP is gone", || world.vips().is_empty()).await;
    world.stop().await;
}

/// [`ONE`] under a head with `vpp.lb` extended by `lb` (indented lines).
fn with_lb(lb: &str) -> String {
    format!("{}{ONE}", common::head_with_lb(lb))
}

/// What the simulator holds of `lb_conf`: (sticky buckets, flow timeout,
/// sticky table resets).
fn sim_conf(world: &World) -> (u32, u32, u64) {
    world.vpp.sim.with_model(|m| {
        (
            m.conf.sticky_buckets_per_core,
            m.conf.flow_timeout,
            m.sticky_resets(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpp_lb_reload_reaches_vpp_at_once() {
    let mut world = World::new(3, 2).await;
    let lb = "      sticky-buckets-per-core: 1024\n";
    world.write_config(&with_lb(&format!("{lb}      flow-timeout: 40s\n")));
    world.start(world.settings()).await;
    until("web is programmed", || {
        world.weights("192.0.2.30") == w(&[("127.0.3.1", 100), ("127.0.3.2", 100)])
    })
    .await;
    assert_eq!(sim_conf(&world), (1024, 40, 0));
    // A new flow timeout: sent before the reload answers.
    world.write_config(&with_lb(&format!("{lb}      flow-timeout: 77s\n")));
    let report = world.handle().reload().await;
    assert!(report.ok(), "{}", report.message());
    assert_eq!(sim_conf(&world), (1024, 77, 0));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_table_resize_is_refused_unless_forced() {
    let mut world = World::new(3, 2).await;
    world.write_config(&with_lb("      sticky-buckets-per-core: 1024\n"));
    world.start(world.settings()).await;
    until("web is programmed", || {
        world.weights("192.0.2.30") == w(&[("127.0.3.1", 100), ("127.0.3.2", 100)])
    })
    .await;
    world.write_config(&with_lb(
        "      sticky-buckets-per-core: 2048\n      flow-timeout: 77s\n",
    ));
    let report = world.handle().reload().await;
    assert!(!report.ok());
    assert_eq!(
        report.message(),
        "vpp.lb.sticky-buckets-per-core 1024 -> 2048 resets VPP's sticky table: every \
         established flow of every VIP may move; reload with force to apply"
    );
    // Nothing of the file was applied: not the timeout either.
    assert_eq!(sim_conf(&world), (1024, 40, 0));
    let running = world.handle().config();
    assert_eq!(
        running.vpp().unwrap().lb.sticky_buckets_per_core,
        Some(1024)
    );
    // Forced: applied at once, and VPP resets its sticky tables once.
    let report = world.handle().reload_with(true).await;
    assert!(report.ok(), "{}", report.message());
    assert_eq!(sim_conf(&world), (2048, 77, 1));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_resize_the_sticky_table_of_a_serving_vpp() {
    let mut world = World::new(5, 2).await;
    let one = |lb: &str| {
        with_lb(lb)
            .replace("127.0.3.", "127.0.5.")
            .replace("192.0.2.30", "192.0.2.50")
    };
    world.write_config(&one("      sticky-buckets-per-core: 1024\n"));
    world.start(world.settings()).await;
    until("web is programmed", || {
        world.weights("192.0.2.50") == w(&[("127.0.5.1", 100), ("127.0.5.2", 100)])
    })
    .await;
    world.daemon.take().unwrap().shutdown().await;

    // The file now asks for 2048; maglevd restarts against the VPP that
    // still serves the VIP: VPP's 1024 is kept, no sticky flow moves.
    world.write_config(&one(
        "      sticky-buckets-per-core: 2048\n      flow-timeout: 77s\n",
    ));
    world.start(world.settings()).await;
    until("VPP is connected", || world.handle().vpp().is_ok()).await;
    assert_eq!(
        sim_conf(&world),
        (1024, 77, 0),
        "the rest of vpp.lb is applied"
    );
    // A forced reload is the operator's way to apply it.
    let report = world.handle().reload_with(true).await;
    assert!(report.ok(), "{}", report.message());
    assert_eq!(sim_conf(&world), (2048, 77, 1));
    world.stop().await;
}
