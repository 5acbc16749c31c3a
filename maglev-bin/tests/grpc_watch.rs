//! `WatchEvents` end to end: the initial frontend snapshot, the kind and
//! name filters, VPP change events, the lag notice of a subscriber that
//! does not read, and streams closing when the daemon stops (even one
//! whose client stopped reading).

mod common;
mod grpc_common;

use common::until;
use grpc_common::{next_event, start};
use maglev_bin::events::{Event, EventKind};
use maglev_bin::grpc::proto;
use maglev_bin::grpc::proto::event::Kind;
use maglev_core::state::FrontendState;

fn w(list: &[(&str, u8)]) -> Vec<(String, u8)> {
    list.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_first_then_only_what_the_filters_keep() {
    let (world, c) = start(47, |_| {}).await;
    let web = "192.0.2.47";
    until("web is programmed", || {
        world.weights(web) == w(&[("127.0.47.1", 100), ("127.0.47.2", 100), ("127.0.47.3", 0)])
    })
    .await;
    let watch = |req: proto::WatchRequest| {
        let mut c = c.clone();
        async move { c.watch_events(req).await.unwrap().into_inner() }
    };
    let mut web_only = watch(proto::WatchRequest {
        frontend: true,
        frontends: vec!["web".into()],
        ..Default::default()
    })
    .await;
    let mut only_a = watch(proto::WatchRequest {
        backend: true,
        backends: vec!["a".into()],
        ..Default::default()
    })
    .await;
    let mut everything = watch(proto::WatchRequest::default()).await;

    // One synthetic event per frontend, from == to, sorted by name.
    match next_event(&mut web_only).await {
        Kind::Frontend(f) => assert_eq!(
            (f.frontend.as_str(), f.from.as_str(), f.to.as_str()),
            ("web", "up", "up")
        ),
        other => panic!("expected web's snapshot, got {other:?}"),
    }
    let mut snapshot = Vec::new();
    for _ in 0..2 {
        match next_event(&mut everything).await {
            Kind::Frontend(f) if f.from == f.to => snapshot.push(f.frontend),
            other => panic!("expected the snapshot, got {other:?}"),
        }
    }
    assert_eq!(snapshot, ["api", "web"]);

    // b goes down first: the unfiltered stream sees it, `only_a` must not.
    world.backends[1].set_healthy(false);
    // (Late first transitions of the other backends may come before it.)
    loop {
        if let Kind::Backend(b) = next_event(&mut everything).await {
            let t = b.transition.unwrap();
            if b.backend == "b" && t.to == "down" {
                assert_eq!(t.from, "up");
                assert_eq!(t.code, "L7STS");
                break;
            }
        }
    }
    world.backends[0].set_healthy(false);
    world.backends[2].set_healthy(false);
    loop {
        match next_event(&mut only_a).await {
            Kind::Backend(b) => {
                assert_eq!(
                    (b.backend.as_str(), b.address.as_str()),
                    ("a", "127.0.47.1"),
                    "only a's events pass the filter"
                );
                if b.transition.unwrap().to == "down" {
                    break;
                }
            }
            other => panic!("expected a's transition, got {other:?}"),
        }
    }
    // With a, b and c down, web is down (api keeps its static backend).
    match next_event(&mut web_only).await {
        Kind::Frontend(f) => assert_eq!(
            (f.frontend.as_str(), f.from.as_str(), f.to.as_str()),
            ("web", "up", "down")
        ),
        other => panic!("expected web going down, got {other:?}"),
    }
    world.stop().await;
}

/// The next event `wanted` accepts, skipping at most 100 others.
async fn next_event_where(
    stream: &mut tonic::Streaming<proto::Event>,
    wanted: impl Fn(&Kind) -> bool,
) -> Kind {
    for _ in 0..100 {
        let kind = next_event(stream).await;
        if wanted(&kind) {
            return kind;
        }
    }
    panic!("100 events and none of those expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_changes_name_their_frontend_and_op() {
    let (world, mut c) = start(48, |_| {}).await;
    until("web is programmed", || {
        world.weights("192.0.2.48")
            == w(&[("127.0.48.1", 100), ("127.0.48.2", 100), ("127.0.48.3", 0)])
    })
    .await;
    let vpp = |frontends: Vec<String>| proto::WatchRequest {
        vpp: true,
        frontends,
        ..Default::default()
    };
    let mut web_vpp = c
        .watch_events(vpp(vec!["web".into()]))
        .await
        .unwrap()
        .into_inner();
    let mut all_vpp = c.watch_events(vpp(Vec::new())).await.unwrap().into_inner();
    let weight =
        |frontend: &str, pool: &str, backend: &str, weight, flush| proto::SetWeightRequest {
            frontend: frontend.into(),
            pool: pool.into(),
            backend: backend.into(),
            weight,
            flush,
        };
    c.set_frontend_pool_backend_weight(weight("api", "main", "b", 20, false))
        .await
        .unwrap();
    c.set_frontend_pool_backend_weight(weight("web", "primary", "a", 30, true))
        .await
        .unwrap();

    // The streams may begin with the last ops of the start-up sync: the
    // simulator holds an op before maglevd publishes it.
    match next_event_where(
        &mut all_vpp,
        |k| matches!(k, Kind::Vpp(v) if v.frontend == "api"),
    )
    .await
    {
        Kind::Vpp(v) => {
            assert_eq!(
                (v.frontend.as_str(), v.kind.as_str()),
                ("api", "as_weight_updated")
            );
            assert!(
                v.op.contains("127.0.48.2") && v.op.contains("weight 20"),
                "{v:?}"
            );
        }
        other => panic!("expected api's change, got {other:?}"),
    }
    match next_event_where(
        &mut web_vpp,
        |k| matches!(k, Kind::Vpp(v) if v.op.contains("127.0.48.1")),
    )
    .await
    {
        Kind::Vpp(v) => {
            assert_eq!(
                (
                    v.frontend.as_str(),
                    v.kind.as_str(),
                    v.scope.as_str(),
                    v.error.as_str()
                ),
                ("web", "as_weight_updated", "vip", "")
            );
            assert!(
                v.op.contains("127.0.48.1") && v.op.contains("weight 30"),
                "{v:?}"
            );
            assert!(v.op.ends_with("flush"), "the flush reaches VPP: {v:?}");
        }
        other => panic!("expected web's change, got {other:?}"),
    }
    assert_eq!(
        world.weights("192.0.2.48"),
        w(&[("127.0.48.1", 30), ("127.0.48.2", 100), ("127.0.48.3", 0)])
    );
    world.stop().await;
}

fn frontend_event(name: &str) -> Event {
    Event {
        unix_nanos: 1,
        kind: EventKind::Frontend {
            frontend: name.into(),
            from: FrontendState::Unknown,
            to: FrontendState::Up,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_told_what_it_lost_and_goes_on() {
    const BURST: u64 = 50_000;
    let (world, mut c) = start(49, |_| {}).await;
    until("web is programmed (the daemon is quiet)", || {
        world.weights("192.0.2.49")
            == w(&[("127.0.49.1", 100), ("127.0.49.2", 100), ("127.0.49.3", 0)])
    })
    .await;
    let mut slow = c
        .watch_events(proto::WatchRequest {
            frontend: true,
            frontends: vec!["burst".into(), "marker".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The stream is subscribed once its response arrived. Publishing never
    // waits for it.
    let hub = world.daemon().handle().events().clone();
    for _ in 0..BURST {
        hub.publish(frontend_event("burst"));
    }
    // Every burst event is delivered or counted as lost. The count may be
    // higher: the hub's ring counts every event it dropped for this
    // reader, including the daemon's own that the filter would have
    // skipped.
    let (mut received, mut lost, mut notices) = (0u64, 0u64, 0u32);
    let mut markers = 0;
    loop {
        match next_event(&mut slow).await {
            Kind::Frontend(f) if f.frontend == "marker" => break,
            Kind::Frontend(f) => {
                assert_eq!(f.frontend, "burst");
                received += 1;
            }
            Kind::Lag(l) => {
                assert!(l.lost > 0);
                lost += l.lost;
                notices += 1;
                if markers > 0 {
                    // The marker may have been one of those lost.
                    hub.publish(frontend_event("marker"));
                    markers += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
        if markers == 0 && received + lost >= BURST {
            // And the stream goes on.
            hub.publish(frontend_event("marker"));
            markers += 1;
        }
    }
    assert!(received + lost >= BURST, "received {received}, lost {lost}");
    assert!(
        received < BURST && notices >= 1,
        "received {received}, lost {lost}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_when_the_daemon_stops() {
    let (mut world, mut c) = start(50, |_| {}).await;
    let mut stream = c
        .watch_events(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(next_event(&mut stream).await, Kind::Frontend(_)));
    let daemon = world.daemon.take().unwrap();
    let stopping = tokio::spawn(daemon.shutdown());
    loop {
        match tokio::time::timeout(common::PATIENCE, stream.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => break,
            Ok(Err(status)) => panic!("the stream should end cleanly: {status:?}"),
            Err(_) => panic!("the stream did not end"),
        }
    }
    stopping.await.unwrap();
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stopped_reading_cannot_hold_up_shutdown() {
    let (mut world, _) = start(51, |s| {
        s.shutdown_grace = std::time::Duration::from_millis(100);
    })
    .await;
    // A client with the smallest flow-control window HTTP/2 allows.
    let addr = world.daemon().grpc_addrs()[0];
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .initial_stream_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stuck = proto::maglev_client::MaglevClient::new(channel)
        .watch_events(proto::WatchRequest {
            frontend: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(next_event(&mut stuck).await, Kind::Frontend(_)));
    // The stream's buffer alone (256 events of 1 KB) is four windows: once
    // the client stops reading, the daemon's side of the stream can never
    // finish.
    let hub = world.daemon().handle().events().clone();
    let name = "x".repeat(1000);
    for _ in 0..20_000 {
        hub.publish(frontend_event(&name));
    }
    let daemon = world.daemon.take().unwrap();
    tokio::time::timeout(common::PATIENCE, daemon.shutdown())
        .await
        .expect("the daemon stopped despite the stuck stream");
    drop(stuck);
    world.stop().await;
}

/// A frontend event numbered `n`, for a frontend the config does not have.
fn numbered_event(name: &str, n: i64) -> Event {
    Event {
        unix_nanos: n,
        ..frontend_event(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_sends_an_event_encoded_once() {
    const STREAMS: usize = 8;
    const EVENTS: i64 = 50;
    let (world, c) = start(147, |_| {}).await;
    until("web is programmed (the daemon is quiet)", || {
        world.weights("192.0.2.147")
            == w(&[
                ("127.0.147.1", 100),
                ("127.0.147.2", 100),
                ("127.0.147.3", 0),
            ])
    })
    .await;
    // Streams that want only `enc`'s events (no snapshot: the config has
    // no such frontend), so nothing else the daemon publishes meanwhile is
    // encoded: nobody sends it.
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let mut c = c.clone();
        streams.push(
            c.watch_events(proto::WatchRequest {
                frontend: true,
                frontends: vec!["enc".into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner(),
        );
    }
    let hub = world.daemon().handle().events().clone();
    let before = hub.encodings();
    for n in 1..=EVENTS {
        hub.publish(numbered_event("enc", n));
    }
    for stream in &mut streams {
        for n in 1..=EVENTS {
            let event = tokio::time::timeout(common::PATIENCE, stream.message())
                .await
                .expect("an event in time")
                .expect("the stream is open")
                .expect("an event");
            assert_eq!(event.unix_nanos, n, "every event, in order");
            match event.kind {
                Some(Kind::Frontend(f)) => assert_eq!(
                    (f.frontend.as_str(), f.from.as_str(), f.to.as_str()),
                    ("enc", "unknown", "up")
                ),
                other => panic!("expected enc's event, got {other:?}"),
            }
        }
    }
    assert_eq!(
        hub.encodings() - before,
        EVENTS as u64,
        "{STREAMS} streams, one encoding per event"
    );
    world.stop().await;
}
