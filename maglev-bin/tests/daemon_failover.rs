//! End to end: the daemon against the simulated VPP with real loopback
//! backends; a primary pool fails over to its fallback and back.

mod common;

use common::{World, until, w};

/// Backends and frontends, after [`common::HEAD`].
const CONFIG: &str = r#"
  backends:
    a: { address: 127.0.1.1, healthcheck: web }
    b: { address: 127.0.1.2, healthcheck: web }
    c: { address: 127.0.1.3, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.10
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_fails_over_to_fallback_and_back() {
    let mut world = World::new(1, 3).await;
    world.write_body(CONFIG);
    world.start(world.settings()).await;
    until("the primary pool carries the traffic", || {
        world.weights("192.0.2.10")
            == w(&[("127.0.1.1", 100), ("127.0.1.2", 100), ("127.0.1.3", 0)])
    })
    .await;
    world.backends[0].set_healthy(false);
    world.backends[1].set_healthy(false);
    until("the fallback pool carries the traffic", || {
        world.weights("192.0.2.10") == w(&[("127.0.1.1", 0), ("127.0.1.2", 0), ("127.0.1.3", 100)])
    })
    .await;
    world.backends[0].set_healthy(true);
    until("the primary pool is back", || {
        world.weights("192.0.2.10") == w(&[("127.0.1.1", 100), ("127.0.1.2", 0), ("127.0.1.3", 0)])
    })
    .await;
    world.stop().await;
}
