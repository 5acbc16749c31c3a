//! What the gRPC tests share: a daemon with a gRPC listener on loopback, a
//! tonic client to it, and an asynchronous wait on a condition.

#![allow(dead_code, reason = "each test binary uses a part of it")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::future::Future;
use std::time::Duration;

use maglev_bin::daemon::Settings;
use maglev_bin::grpc::proto::maglev_client::MaglevClient;
use tonic::transport::Channel;

use crate::common::{PATIENCE, World};

/// A config with two frontends (`web` with a fallback pool, `api`) over
/// three HTTP backends on 127.0.<net>.1..3 and one static backend; warm-up
/// off. `{net}` is the world's network, `{port}` the backends' port.
pub const CONFIG: &str = r#"
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: 0s
      startup-max-delay: 0s
  healthchecks:
    web:
      type: http
      port: {port}
      interval: 100ms
      timeout: 100ms
      rise: 1
      fall: 1
  backends:
    a: { address: 127.0.{net}.1, healthcheck: web }
    b: { address: 127.0.{net}.2, healthcheck: web }
    c: { address: 127.0.{net}.3, healthcheck: web }
    s: { address: 127.0.{net}.9 }
  frontends:
    web:
      address: 192.0.2.{net}
      protocol: tcp
      port: 80
      description: the web site
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
    api:
      address: 198.51.100.{net}
      protocol: tcp
      port: 443
      pools:
        - name: main
          backends: { b: { weight: 50 }, s: {} }
"#;

/// [`CONFIG`] for network `net`.
pub fn config(net: u8) -> String {
    CONFIG.replace("{net}", &net.to_string())
}

/// A world on `net` with [`CONFIG`], its daemon started with a gRPC
/// listener on 127.0.0.1 (settings adjusted by `tweak`), and a client.
pub async fn start(net: u8, tweak: impl FnOnce(&mut Settings)) -> (World, MaglevClient<Channel>) {
    let mut world = World::new(net, 3).await;
    world.write_config(&config(net));
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    tweak(&mut settings);
    world.start(settings).await;
    let client = client(&world).await;
    (world, client)
}

/// A client of the world's daemon.
pub async fn client(world: &World) -> MaglevClient<Channel> {
    MaglevClient::new(channel(world).await)
}

/// A channel to the world's daemon.
pub async fn channel(world: &World) -> Channel {
    let addr = world.daemon().grpc_addrs()[0];
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Polls `probe` (every 20 ms) until it returns `Some`; fails the test
/// after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        tick.tick().await;
    }
}

/// The next event of a `WatchEvents` stream; fails the test if the stream
/// ends, errs, or stays silent for [`PATIENCE`].
pub async fn next_event(
    stream: &mut tonic::Streaming<maglev_bin::grpc::proto::Event>,
) -> maglev_bin::grpc::proto::event::Kind {
    match tokio::time::timeout(PATIENCE, stream.message()).await {
        Ok(Ok(Some(event))) => event.kind.expect("every event has a kind"),
        Ok(Ok(None)) => panic!("the event stream ended"),
        Ok(Err(status)) => panic!("the event stream failed: {status:?}"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// A `WatchEvents` request for log records at `level` and above, nothing
/// else.
pub fn logs(level: &str) -> maglev_bin::grpc::proto::WatchRequest {
    maglev_bin::grpc::proto::WatchRequest {
        log: true,
        log_level: level.into(),
        ..Default::default()
    }
}

/// Reads `stream` until an event of backend `name`; fails the test as
/// [`next_event`] does.
pub async fn until_backend_event(
    stream: &mut tonic::Streaming<maglev_bin::grpc::proto::Event>,
    name: &str,
) {
    use maglev_bin::grpc::proto::event::Kind;
    loop {
        if let Kind::Backend(b) = next_event(stream).await
            && b.backend == name
        {
            return;
        }
    }
}
