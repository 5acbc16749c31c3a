//! `StatsClient` notices VPP restarts: socket replaced or gone, heartbeat
//! stalled on the same segment, segment replaced.
#![cfg(feature = "sim")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use maglev_vpp::stats::sim::{self, ServeOptions, SimStats, StatsListener};
use maglev_vpp::stats::{ClientEvent, StatsClient, StatsError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const STALL: Duration = Duration::from_secs(30);

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StatsError>>,
}

fn start(path: &Path, stats: &SimStats) -> Server {
    let listener = StatsListener::bind(path).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let opts = ServeOptions {
        trickle: None,
        heartbeat: None,
    };
    let task = tokio::spawn(sim::run(listener, stats.clone(), opts, async {
        let _ = stopped.await;
    }));
    Server { stop, task }
}

async fn stop(s: Server) {
    s.stop.send(()).unwrap();
    s.task.await.unwrap().unwrap();
}

/// Runs `client.check(now)` on the test's runtime: it must never block
/// the thread (the simulated server runs on the same runtime).
async fn check(
    mut client: StatsClient,
    now: Instant,
) -> (StatsClient, Result<ClientEvent, StatsError>) {
    let r = client.check(now).await;
    (client, r)
}

fn path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "maglev-stats-reconnect-{tag}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("stats.sock")
}

#[tokio::test]
async fn restart_socket_gone_and_stalled_heartbeat() {
    let path = path("restart");
    let t0 = tokio::time::Instant::now().into_std();
    let a = SimStats::new(1).unwrap();
    let server = start(&path, &a);

    let client = StatsClient::new(&path, STALL);
    let (client, ev) = check(client, t0).await;
    assert_eq!(ev.unwrap(), ClientEvent::Connected);
    assert_eq!(
        client.segment().unwrap().identity(),
        a.reader().unwrap().identity()
    );

    // Heartbeat still, but not for long enough.
    let (client, ev) = check(client, t0 + STALL / 2).await;
    assert_eq!(ev.unwrap(), ClientEvent::Unchanged);

    // Heartbeat still for the whole stall time, same segment: kept.
    let (client, ev) = check(client, t0 + STALL).await;
    assert_eq!(ev.unwrap(), ClientEvent::HeartbeatStalled);

    // Heartbeat moving: nothing to do however late.
    a.beat().unwrap();
    let (client, ev) = check(client, t0 + 3 * STALL).await;
    assert_eq!(ev.unwrap(), ClientEvent::Unchanged);

    // VPP restarts: new socket, new segment.
    stop(server).await;
    let b = SimStats::new(2).unwrap();
    let server = start(&path, &b);
    let (client, ev) = check(client, t0 + 3 * STALL + STALL).await;
    // The new socket file normally has a new inode; if the filesystem
    // reused the old one, the frozen heartbeat gives the restart away.
    let ev = ev.unwrap();
    assert!(
        matches!(
            ev,
            ClientEvent::SocketReplaced | ClientEvent::SegmentReplaced
        ),
        "{ev:?}"
    );
    assert_eq!(
        client.segment().unwrap().identity(),
        b.reader().unwrap().identity()
    );
    assert_eq!(
        client
            .segment()
            .unwrap()
            .scalar("/sys/num_worker_threads")
            .unwrap(),
        2
    );

    // VPP gone: an error, and the frozen mapping is dropped.
    stop(server).await;
    let (client, ev) = check(client, t0 + 5 * STALL).await;
    assert!(matches!(ev, Err(StatsError::Connect { .. })), "{ev:?}");
    assert!(client.segment().is_none());

    // Back again: connected afresh.
    let c = SimStats::new(0).unwrap();
    let server = start(&path, &c);
    let (client, ev) = check(client, t0 + 6 * STALL).await;
    assert_eq!(ev.unwrap(), ClientEvent::Connected);
    assert_eq!(
        client.segment().unwrap().identity(),
        c.reader().unwrap().identity()
    );
    stop(server).await;
}
