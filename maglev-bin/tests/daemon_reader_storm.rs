//! The writer first (issue 24): readers dumping VPP's LB state in a loop
//! (`GetVPPLBState`, `PlanSync`, the dashboard's plan) never hold up the
//! reconciler or the keepalive, and a big sync logs a summary instead of
//! a line per op. Its own test binary: it installs the process's global
//! subscriber (the [`LogLayer`] feeding the daemon's hub) to see the log
//! records.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{World, until, w};
use maglev_bin::daemon::Parts;
use maglev_bin::events::{EventHub, EventKind, LogLayer, Received, Subscription};
use maglev_vpp::sim::{Fault, FaultAction};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The global subscriber feeds one hub for the whole binary; each test's
/// daemon gets it.
fn hub() -> EventHub {
    static HUB: std::sync::OnceLock<EventHub> = std::sync::OnceLock::new();
    HUB.get_or_init(|| {
        let parts = Parts::default();
        tracing_subscriber::registry()
            .with(LogLayer::new(parts.hub.clone(), parts.clock))
            .try_init()
            .unwrap();
        parts.hub
    })
    .clone()
}

/// The tests of this binary share the hub: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every log record of the daemon (not the simulator's) read so far.
fn daemon_logs(events: &mut Subscription) -> Vec<maglev_bin::events::LogRecord> {
    let mut out = Vec::new();
    while let Some(r) = events.try_recv() {
        match r {
            Received::Event(e) => {
                if let EventKind::Log(l) = &e.kind
                    && l.target.starts_with("maglev_bin")
                {
                    out.push(l.clone());
                }
            }
            Received::Lost(n) => panic!("{n} events lost: the test reads too slowly"),
        }
    }
    out
}

/// The daemon's log records from now on, until `done` holds of them all:
/// the simulator holds an op's result before the daemon has its reply and
/// logs it, so a wait on the simulator does not mean the line is written.
async fn daemon_logs_until(
    events: &mut Subscription,
    what: &str,
    done: impl Fn(&[maglev_bin::events::LogRecord]) -> bool,
) -> Vec<maglev_bin::events::LogRecord> {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut logs = Vec::new();
    loop {
        logs.extend(daemon_logs(events));
        if done(&logs) {
            return logs;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}: {logs:?}");
        }
        tick.tick().await;
    }
}

/// Whether `logs` hold a `vpp-lbsync` line.
fn has_lbsync(logs: &[maglev_bin::events::LogRecord]) -> bool {
    logs.iter().any(|l| l.message.starts_with("vpp-lbsync"))
}

const STORM: &str = r#"
  backends:
    a: { address: 127.0.24.1, healthcheck: web }
    b: { address: 127.0.24.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.24
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

/// Twelve readers loop on the LB state and the dry run while every dump
/// takes VPP 500 ms (on today's single connection, twelve of them queue
/// 6 s of dumps in front of everything, past the 5 s reply deadline of a
/// keepalive ping). An operator's weight change reaches VPP while at most
/// the reader dump in flight and the next one are handled, and the link
/// is never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_storm_never_holds_up_a_weight_change_or_the_keepalive() {
    let _serial = SERIAL.lock().await;
    let hub = hub();
    let mut events = hub.subscribe(Some(tracing::Level::INFO));
    let mut world = World::new(24, 2).await;
    world.write_body(STORM);
    let mut settings = world.settings();
    settings.ping_interval = Duration::from_millis(100);
    world
        .start_with(
            settings,
            Parts {
                hub,
                ..Parts::default()
            },
        )
        .await;
    until("everything is programmed", || {
        world.weights("192.0.2.24") == w(&[("127.0.24.1", 100), ("127.0.24.2", 100)])
    })
    .await;
    // The reconciler's read after creating the VIP is done: the dumps
    // the fault counts are the readers'.
    world.until_drift_read().await;
    let handle = world.handle().clone();
    let connected = handle.vpp().unwrap().connected_unix_nanos;

    // Every LB state dump now takes VPP half a second; the fault's uses
    // left count the dumps VPP has started.
    const DUMPS: usize = 10_000;
    world.vpp.sim.inject(Fault {
        message: Some("lb_as_v2_dump"),
        action: FaultAction::Delay(Duration::from_millis(500)),
        times: DUMPS,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..12)
        .map(|i| {
            let (h, stop, reads) = (handle.clone(), stop.clone(), reads.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if i % 2 == 0 {
                        h.lb_state().await.expect("the LB state");
                    } else {
                        h.plan_sync(None, None).await.expect("the dry run");
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    until("the readers are dumping", || {
        world.vpp.sim.pending_faults() < DUMPS
    })
    .await;

    let started = DUMPS - world.vpp.sim.pending_faults();
    handle
        .set_weight("web", "primary", "a", 50, false)
        .await
        .unwrap();
    until("the weight reaches VPP", || {
        world.weights("192.0.2.24") == w(&[("127.0.24.1", 50), ("127.0.24.2", 100)])
    })
    .await;
    let during = DUMPS - world.vpp.sim.pending_faults() - started;
    assert!(
        during <= 2,
        "the weight change waited for {during} reader dumps"
    );
    // Keep the storm up for several ping intervals and dumps more.
    let more = DUMPS - world.vpp.sim.pending_faults() + 4;
    until("the storm goes on", || {
        DUMPS - world.vpp.sim.pending_faults() >= more
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) >= 12);
    world.vpp.sim.clear_faults();

    assert_eq!(
        handle.vpp().unwrap().connected_unix_nanos,
        connected,
        "the link to VPP was never replaced"
    );
    let logs = daemon_logs(&mut events);
    assert!(
        !logs.iter().any(|l| l.message.contains("vpp-disconnect")),
        "no vpp-disconnect: {logs:?}"
    );
    assert!(
        !logs.iter().any(|l| l.level <= tracing::Level::WARN),
        "no warning: {logs:?}"
    );
    // Both connections are registered, and only those.
    assert_eq!(
        world.vpp.sim.clients().live,
        ["vpp-maglev", "vpp-maglev-reads"]
    );
    world.stop().await;
}

/// A sync of more than 20 ops (`daemon::oplog`; a cold start into an
/// empty VPP: 40 VIPs × 4 ASes) logs one summary line, not a line per
/// op, and a single change afterwards still logs its own line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_sync_logs_a_summary_and_a_single_change_its_line() {
    let _serial = SERIAL.lock().await;
    let hub = hub();
    let mut events = hub.subscribe(Some(tracing::Level::INFO));
    let mut world = World::new(25, 1).await;
    let mut body = String::from("  backends:\n");
    for f in 0..40 {
        for b in 0..4 {
            body += &format!("    f{f}b{b}: {{ address: 10.25.{f}.{} }}\n", b + 1);
        }
    }
    body += "  frontends:\n";
    for f in 0..40 {
        body += &format!(
            "    f{f}:\n      address: 192.0.2.{}\n      protocol: tcp\n      port: 80\n      \
             pools:\n        - name: primary\n          backends: {{ f{f}b0: {{}}, f{f}b1: {{}}, f{f}b2: {{}}, f{f}b3: {{}} }}\n",
            100 + f
        );
    }
    world.write_body(&body);
    world
        .start_with(
            world.settings(),
            Parts {
                hub,
                ..Parts::default()
            },
        )
        .await;
    until("every VIP is programmed", || {
        let vips = world.vips();
        vips.len() == 40 && vips.iter().all(|v| v.ases.len() == 4)
    })
    .await;
    let logs = daemon_logs_until(&mut events, "the sync's summary is logged", has_lbsync).await;
    let lbsync: Vec<_> = logs
        .iter()
        .filter(|l| l.message.starts_with("vpp-lbsync"))
        .collect();
    assert_eq!(lbsync.len(), 1, "one summary line: {lbsync:?}");
    assert_eq!(lbsync[0].fields.get("ops").map(String::as_str), Some("200"));
    assert_eq!(
        lbsync[0].fields.get("as_added").map(String::as_str),
        Some("160")
    );
    // Per frontend, its first transition and its active pool; nothing
    // per op.
    assert!(
        logs.len() <= 2 * 40 + 10,
        "{} log lines for a sync of 200 ops: {logs:?}",
        logs.len()
    );

    world
        .handle()
        .set_weight("f7", "primary", "f7b2", 10, false)
        .await
        .unwrap();
    let logs = daemon_logs_until(&mut events, "the change is logged", has_lbsync).await;
    let lbsync: Vec<_> = logs
        .iter()
        .filter(|l| l.message.starts_with("vpp-lbsync"))
        .collect();
    assert_eq!(lbsync.len(), 1, "{lbsync:?}");
    assert_eq!(
        lbsync[0].fields.get("frontend").map(String::as_str),
        Some("f7")
    );
    assert!(lbsync[0].fields.contains_key("op"), "{lbsync:?}");
    world.stop().await;
}

/// VPP closing the readers' connection costs a reader its answer, never
/// the writer's link: the readers' connection is opened again (after its
/// goodbye) and the link stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_readers_connection_is_reopened_without_touching_the_writer() {
    let _serial = SERIAL.lock().await;
    let mut world = World::new(26, 2).await;
    world.write_body(&STORM.replace("127.0.24.", "127.0.26."));
    // Without the counter scrape, whose re-mapping dumps (reader dumps of
    // its own) could take the fault or be joined by this test's read.
    let mut settings = world.settings();
    if let Some(vpp) = settings.vpp.as_mut() {
        vpp.stats = None;
    }
    world.start(settings).await;
    until("everything is programmed", || {
        world.weights("192.0.2.24") == w(&[("127.0.26.1", 100), ("127.0.26.2", 100)])
    })
    .await;
    let handle = world.handle().clone();
    // The writer's own dumps are done before the fault is set: warm-up's
    // end, then a full sync asked for (the next periodic one is 30 s
    // away), so the dump the fault cuts is the readers'.
    until("warm-up is over", || {
        handle.warmup_phase() == maglev_core::warmup::Phase::Finished
    })
    .await;
    handle.sync(None).await.unwrap();
    let connected = handle.vpp().unwrap().connected_unix_nanos;
    world
        .vpp
        .sim
        .inject(Fault::once("lb_as_v2_dump", FaultAction::CloseSocket));
    assert!(handle.lb_state().await.is_err(), "the cut dump fails");
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    let state = loop {
        if let Ok(s) = handle.lb_state().await {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "readers recover");
        tick.tick().await;
    };
    assert_eq!(state.vips.len(), 1);
    assert_eq!(
        handle.vpp().unwrap().connected_unix_nanos,
        connected,
        "the writer's link was kept"
    );
    until("both connections are registered again", || {
        world.vpp.sim.clients().live == ["vpp-maglev", "vpp-maglev-reads"]
    })
    .await;
    assert!(world.vpp.sim.clients().dead.is_empty());
    handle
        .set_weight("web", "primary", "a", 30, false)
        .await
        .unwrap();
    assert_eq!(
        world.weights("192.0.2.24"),
        w(&[("127.0.26.1", 30), ("127.0.26.2", 100)])
    );
    world.stop().await;
}
