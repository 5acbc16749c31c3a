//! End to end: VPP going away and coming back, VPP refusing ops or closing
//! mid-dump, and counters reaching the daemon.

mod common;

use common::{World, until, w};
use maglev_bin::events::{EventKind, Received};
use maglev_vpp::sim::{Fault, FaultAction};

/// Backends and frontends, after [`common::HEAD`].
const CONFIG: &str = r#"
  backends:
    a: { address: 127.0.4.1, healthcheck: web }
    b: { address: 127.0.4.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.40
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
    dns:
      address: 192.0.2.41
      protocol: udp
      port: 53
      pools:
        - name: primary
          backends: { b: {} }
"#;

async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`] with its daemon's settings changed by `tweak`.
async fn world_with(tweak: impl FnOnce(&mut maglev_bin::daemon::Settings)) -> World {
    let mut world = World::new(4, 2).await;
    world.write_body(CONFIG);
    let mut settings = world.settings();
    tweak(&mut settings);
    world.start(settings).await;
    until("everything is programmed", || {
        world.weights("192.0.2.40") == w(&[("127.0.4.1", 100), ("127.0.4.2", 100)])
            && world.weights("192.0.2.41") == w(&[("127.0.4.2", 100)])
    })
    .await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_vpp_is_programmed_again() {
    let mut world = world().await;
    let pid_before = world.handle().vpp().unwrap().info.pid;
    // VPP restarts: its LB state is gone and its message ids change.
    world.vpp.sim.restart().await.unwrap();
    until("the daemon reconnected and resynced", || {
        world.handle().vpp().is_ok_and(|l| l.info.pid != pid_before)
            && world.weights("192.0.2.40") == w(&[("127.0.4.1", 100), ("127.0.4.2", 100)])
            && world.weights("192.0.2.41") == w(&[("127.0.4.2", 100)])
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_op_is_retried_until_vpp_accepts_it() {
    let world = world().await;
    let mut events = world.handle().subscribe(None);
    world.vpp.sim.inject(Fault {
        message: Some("lb_as_set_weight"),
        action: FaultAction::Retval(-1),
        times: 2,
    });
    world.backends[0].set_healthy(false);
    // Refused twice, then applied by a retry.
    until("a is drained despite two refusals", || {
        world.weights("192.0.2.40") == w(&[("127.0.4.1", 0), ("127.0.4.2", 100)])
    })
    .await;
    let mut refusals = 0;
    while let Ok(Some(r)) =
        tokio::time::timeout(std::time::Duration::from_millis(1), events.recv()).await
    {
        if let Received::Event(e) = r
            && let EventKind::Vpp(change) = &e.kind
            && change.error.is_some()
        {
            assert_eq!(change.frontend.as_deref(), Some("web"));
            assert_eq!(change.kind, "as_weight_updated");
            refusals += 1;
        }
    }
    assert_eq!(
        refusals, 2,
        "each refusal is reported with its op and frontend"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_cut_short_is_not_believed() {
    // No counter scrape: its re-mapping dumps on the readers' connection
    // and could take the fault meant for the sync's dump.
    let world = world_with(|s| {
        if let Some(vpp) = s.vpp.as_mut() {
            vpp.stats = None;
        }
    })
    .await;
    // The reconciler's read after creating the VIPs is done: the fault is
    // the full sync's.
    world.until_drift_read().await;
    // The next full sync's dump is cut: the daemon must not plan on half a
    // picture (which would re-add or delete ASes); it retries.
    world
        .vpp
        .sim
        .inject(Fault::once("lb_as_v2_dump", FaultAction::CloseMidDump));
    let connected = world.handle().vpp().unwrap().connected_unix_nanos;
    let ops = world.handle().sync(None).await;
    assert!(ops.is_err(), "the cut dump fails the sync: {ops:?}");
    until("VPP is reconnected", || {
        world
            .handle()
            .vpp()
            .is_ok_and(|l| l.connected_unix_nanos != connected)
    })
    .await;
    let ops = world.handle().sync(None).await.unwrap().ops;
    assert_eq!(
        ops,
        [],
        "nothing was changed on the strength of the cut dump"
    );
    assert_eq!(
        world.weights("192.0.2.40"),
        w(&[("127.0.4.1", 100), ("127.0.4.2", 100)])
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_reach_the_daemon() {
    let world = world().await;
    until("the scrape reports packets for both VIPs", || {
        world.handle().counters().is_some_and(|c| {
            c.vips.len() == 2
                && c.vips.iter().all(|v| {
                    v.stats.lb.first_packet + v.stats.lb.next_packet > 0
                        && v.stats.route.is_some_and(|r| r.packets > 0)
                })
        })
    })
    .await;
    let c = world.handle().counters().unwrap();
    let names: Vec<&str> = c.vips.iter().map(|v| &*v.frontend).collect();
    assert_eq!(names, ["dns", "web"]);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sync_of_one_frontend_repairs_drift() {
    let world = world().await;
    // Someone else changes VPP behind the daemon's back.
    let key = maglev_core::dataplane::VipKey::host(
        "192.0.2.40".parse().unwrap(),
        Some(maglev_core::dataplane::Protocol::Tcp),
        80,
    );
    let drift = maglev_vpp::lb::ops::weight_request(&key, "127.0.4.1".parse().unwrap(), 7, false);
    assert_eq!(world.vpp.sim.with_model(|m| m.set_weight(&drift)), 0);
    let ops = world.handle().sync(Some("web")).await.unwrap().ops;
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(
        world.weights("192.0.2.40"),
        w(&[("127.0.4.1", 100), ("127.0.4.2", 100)])
    );
    world.stop().await;
}

/// One frontend of two backends, with the periodic full sync out of the way
/// (it would retry everything at once and hide the schedule's own choice).
const DRAIN_CONFIG: &str = r#"
  backends:
    a: { address: 127.0.24.1, healthcheck: web }
    b: { address: 127.0.24.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.124
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
"#;

/// When `frontend`'s retry is due, if it waits for one.
fn retry_in(world: &World, frontend: &str) -> Option<std::time::Duration> {
    world
        .handle()
        .sync_health()
        .pending
        .into_iter()
        .find(|p| p.frontend == frontend)
        .and_then(|p| p.retry_in)
}

/// Syncs of frontends VPP refused so far.
fn refused(world: &World) -> u64 {
    world
        .handle()
        .sync_health()
        .failures
        .iter()
        .find(|(k, _)| k.as_str() == "refused")
        .map_or(0, |(_, n)| *n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_while_vpp_refuses_ops_does_not_wait_for_the_backoff() {
    use maglev_core::schedule::RETRY_MIN;
    let mut world = World::new(24, 2).await;
    let head = common::head_with_lb("      sync-interval: 1h\n");
    world.write_config(&format!("{head}{DRAIN_CONFIG}"));
    world.start(world.settings()).await;
    until("web is programmed", || {
        world.weights("192.0.2.124") == w(&[("127.0.24.1", 100), ("127.0.24.2", 100)])
    })
    .await;
    let handle = world.handle().clone();
    handle
        .set_weight("web", "primary", "a", 50, false)
        .await
        .unwrap();
    assert_eq!(
        world.weights("192.0.2.124"),
        w(&[("127.0.24.1", 50), ("127.0.24.2", 100)])
    );
    // VPP refuses every weight change from now on. Raising a back is no
    // drain: its retries back off (an operator's sync runs at once, and
    // each refusal doubles the delay: 1, 2, 4, 8, 16 s).
    world.vpp.sim.inject(Fault {
        message: Some("lb_as_set_weight"),
        action: FaultAction::Retval(-1),
        times: usize::MAX,
    });
    handle
        .set_weight("web", "primary", "a", 100, false)
        .await
        .unwrap();
    for _ in 0..4 {
        assert!(handle.sync(Some("web")).await.is_err(), "VPP refuses");
    }
    let backoff = retry_in(&world, "web").expect("web waits for its retry");
    assert!(
        backoff > RETRY_MIN * 8,
        "the refused raise backs off: retry in {backoff:?}"
    );
    // b dies while VPP still refuses: its drain is tried at once, and its
    // refusal is retried after RETRY_MIN, not after the backoff.
    let before = refused(&world);
    world.backends[1].set_healthy(false);
    until("the drain of b was tried (and refused)", || {
        refused(&world) > before
    })
    .await;
    let retry = retry_in(&world, "web").expect("the refused drain waits for a retry");
    assert!(
        retry <= RETRY_MIN,
        "a refused drain is retried within {RETRY_MIN:?}, not in {retry:?}"
    );
    // VPP accepts again: the drain (and the raise with it) lands at the
    // next retry.
    world.vpp.sim.clear_faults();
    until("b is drained", || {
        world.weights("192.0.2.124") == w(&[("127.0.24.1", 100), ("127.0.24.2", 0)])
    })
    .await;
    assert_eq!(retry_in(&world, "web"), None);
    world.stop().await;
}

/// Ten frontends of four static backends (no health check: up from the
/// start), and a periodic full sync every second.
fn periodic_config() -> String {
    let mut y = common::head_with_lb("      sync-interval: 1s\n");
    y += "  backends:\n";
    for f in 0..10 {
        for b in 1..=4 {
            y += &format!("    f{f}b{b}: {{ address: 10.34.{f}.{b} }}\n");
        }
    }
    y += "  frontends:\n";
    for f in 0..10 {
        y += &format!(
            "    f{f}:\n      address: 192.0.2.{}\n      protocol: tcp\n      port: 80\n      \
             pools:\n        - name: primary\n          backends: {{ f{f}b1: {{}}, f{f}b2: {{}}, f{f}b3: {{}}, f{f}b4: {{}} }}\n",
            140 + f
        );
    }
    y
}

/// A periodic full sync that takes longer than its interval (VPP slowed
/// per op, 36 weights to repair) does not hold a transition marked during
/// it behind a second round: the frontend's own sync (scope `vip`) runs
/// right after the round's ops, not inside the next full round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_during_a_long_full_sync_is_synced_right_after_it() {
    let mut world = World::new(34, 1).await;
    world.write_config(&periodic_config());
    world.start(world.settings()).await;
    let all = |world: &World, weight: u8| {
        (0..10).all(|f| {
            let ws = world.weights(&format!("192.0.2.{}", 140 + f));
            ws.len() == 4 && ws.iter().all(|(_, w)| *w == weight)
        })
    };
    until("everything is programmed", || all(&world, 100)).await;
    let mut events = world.handle().subscribe(None);

    // Every set-weight takes VPP 50 ms; then someone else changes the
    // weights of f1..f9 behind the daemon's back: the next full sync
    // repairs 36 of them, one after the other, for more than its 1 s
    // interval.
    world.vpp.sim.inject(Fault {
        message: Some("lb_as_set_weight"),
        action: FaultAction::Delay(std::time::Duration::from_millis(50)),
        times: 36,
    });
    world.vpp.sim.with_model(|m| {
        for f in 1..10u8 {
            let key = maglev_core::dataplane::VipKey::host(
                std::net::IpAddr::from([192, 0, 2, 140 + f]),
                Some(maglev_core::dataplane::Protocol::Tcp),
                80,
            );
            for b in 1..=4u8 {
                let drift = maglev_vpp::lb::ops::weight_request(
                    &key,
                    std::net::IpAddr::from([10, 34, f, b]),
                    7,
                    false,
                );
                assert_eq!(m.set_weight(&drift), 0);
            }
        }
    });
    let repaired = |world: &World| {
        (1..10)
            .flat_map(|f| world.weights(&format!("192.0.2.{}", 140 + f)))
            .filter(|(_, w)| *w == 100)
            .count()
    };
    until("the full sync's repair is under way", || {
        repaired(&world) > 0
    })
    .await;
    assert!(repaired(&world) < 36, "the round is still running");
    // A transition of f0 during the round.
    world.handle().disable("f0b1").unwrap();
    until("f0b1 is drained", || {
        !world
            .weights("192.0.2.140")
            .contains(&("10.34.0.1".to_owned(), 100))
    })
    .await;
    assert_eq!(repaired(&world), 36, "the round finished first");

    // The order of the ops as the daemon applied them (after the first
    // sync's, which may be published after the simulator held them), up to
    // f0's drain: the simulator holds an op a moment before maglevd
    // publishes it, so the events are read until that one arrives.
    let mut ops = Vec::new();
    while !ops.iter().any(|(f, _): &(String, &str)| f == "f0") {
        let r = tokio::time::timeout(common::PATIENCE, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no event of f0's drain: {ops:?}"))
            .expect("the hub lives");
        if let Received::Event(e) = r
            && let EventKind::Vpp(v) = &e.kind
            && !matches!(v.kind, "vip_added" | "as_added")
        {
            ops.push((v.frontend.as_deref().unwrap_or("").to_owned(), v.scope));
        }
    }
    let f0: Vec<_> = ops.iter().filter(|(f, _)| f == "f0").collect();
    assert!(!f0.is_empty(), "{ops:?}");
    assert!(
        f0.iter().all(|(_, scope)| *scope == "vip"),
        "f0 was synced on its own, not inside a second full round: {ops:?}"
    );
    let first_f0 = ops.iter().position(|(f, _)| f == "f0").unwrap();
    assert_eq!(
        ops[..first_f0]
            .iter()
            .filter(|(_, scope)| *scope == "all")
            .count(),
        36,
        "the round's repairs came first: {ops:?}"
    );
    world.stop().await;
}

/// The frontends and static backends of the mid-sync shutdown test.
const MID_SYNC_FRONTENDS: usize = 2000;
const MID_SYNC_BACKENDS: usize = 4;

/// [`common::HEAD`]'s body: `MID_SYNC_FRONTENDS` frontends of
/// `MID_SYNC_BACKENDS` static backends each (addresses only the
/// simulator's model sees).
fn mid_sync_body() -> String {
    use std::fmt::Write;
    let mut y = String::from("  backends:\n");
    for f in 0..MID_SYNC_FRONTENDS {
        for b in 0..MID_SYNC_BACKENDS {
            let n = f * MID_SYNC_BACKENDS + b;
            let _ = writeln!(
                y,
                "    f{f}b{b}: {{ address: 10.9.{}.{} }}",
                n >> 8,
                n & 255
            );
        }
    }
    y.push_str("  frontends:\n");
    for f in 0..MID_SYNC_FRONTENDS {
        let _ = write!(
            y,
            "    f{f}:\n      address: 192.0.{}.{}\n      protocol: tcp\n      port: 80\n      \
             pools:\n        - name: primary\n          backends: {{",
            f / 250,
            f % 250 + 1
        );
        for b in 0..MID_SYNC_BACKENDS {
            let _ = write!(y, " f{f}b{b}: {{}},");
        }
        y.push_str(" }\n");
    }
    y
}

/// ASes the simulator holds.
fn sim_ases(world: &World) -> usize {
    world.vpp.sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| v.ases.iter().flatten().filter(|a| a.used).count())
            .sum()
    })
}

/// A shutdown during the cold-start full sync stops the reconciler between
/// ops instead of finishing the plan (at 10,000 VIPs, 170,000 ops), and
/// still writes the state file and says goodbye on both VPP connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_sync_abandons_the_plan_and_still_says_goodbye() {
    let planned = MID_SYNC_FRONTENDS * MID_SYNC_BACKENDS;
    let mut world = World::new(4, 1).await;
    world.write_body(&mid_sync_body());
    // Every AS add waits a little: the sync is under way for seconds.
    world.vpp.sim.inject(Fault {
        message: Some("lb_add_del_as_v2"),
        action: FaultAction::Delay(std::time::Duration::from_millis(1)),
        times: planned,
    });
    let state = world.dir.path().join("state.json");
    let mut settings = world.settings();
    settings.state_file = Some(state.clone());
    world.start(settings).await;
    until("the full sync is under way", || sim_ases(&world) > 0).await;
    let daemon = world.daemon.take().expect("started");
    daemon.shutdown().await;
    let held = sim_ases(&world);
    assert!(
        held < planned,
        "the shutdown waited for the whole plan: {held} of {planned} ASes"
    );
    assert!(state.exists(), "the state file was written");
    let clients = world.vpp.sim.clients();
    assert_eq!(
        clients.deleted, 2,
        "both connections said goodbye: {clients:?}"
    );
    assert!(clients.live.is_empty(), "{clients:?}");
    // The next start reads the half-applied plan and completes it.
    world.vpp.sim.clear_faults();
    let mut settings = world.settings();
    settings.state_file = Some(state);
    world.start(settings).await;
    until("the next start completed the sync", || {
        sim_ases(&world) == planned
    })
    .await;
    world.stop().await;
}

// ------------------------------------------------ tables at once (issue 27)

/// The fingerprint of the table the simulator holds for `vip`, checked to
/// be the table VPP fills from the ASes and weights it holds (so the
/// daemon's prediction has something real to equal); `None` while the
/// simulator has no such VIP.
fn sim_fingerprint(world: &World, vip: &str) -> Option<u64> {
    use maglev_core::maglev::MaglevTable;
    let address: std::net::IpAddr = vip.parse().unwrap();
    let v = world
        .vips()
        .into_iter()
        .find(|v| v.key.address == address)?;
    let ases = v.ases.iter().map(|(a, w)| (a.parse().unwrap(), *w));
    let table = MaglevTable::build(ases, v.buckets.len()).unwrap();
    assert_eq!(
        table.buckets(),
        &v.buckets[..],
        "the simulator's table of {vip}"
    );
    Some(table.fingerprint())
}

/// Whether every frontend's predicted table is the one the simulator
/// holds, by fingerprint (non-zero).
fn tables_match(world: &World, frontends: &[(&str, &str)]) -> bool {
    frontends.iter().all(|(name, vip)| {
        let predicted = world.handle().table(name).map(|t| t.summary.fingerprint);
        let view = world.handle().frontend(name).unwrap();
        let shown = view.table.map(|t| t.summary.fingerprint);
        predicted.is_some_and(|f| f != 0)
            && predicted == shown
            && predicted == sim_fingerprint(world, vip)
    })
}

const FRONTENDS: [(&str, &str); 2] = [("web", "192.0.2.40"), ("dns", "192.0.2.41")];

/// Whether the simulator holds both VIPs with every backend at weight 100
/// and every table is predicted as it holds it.
fn programmed_and_predicted(world: &World, net: u8) -> bool {
    let a = format!("127.0.{net}.1");
    let b = format!("127.0.{net}.2");
    world.weights("192.0.2.40") == w(&[(&a, 100), (&b, 100)])
        && world.weights("192.0.2.41") == w(&[(&b, 100)])
        && tables_match(world, &FRONTENDS)
}

/// A world of static backends whose periodic full sync is an hour away:
/// whatever a test sees of the tables came from the syncs that created or
/// changed the VIPs, not from a later read.
async fn hourly_world(net: u8) -> World {
    let mut world = World::new(net, 2).await;
    let head = common::head_with_lb("      sync-interval: 1h\n");
    // Static backends: up from the start, so the first batch creates each
    // VIP at its final weights and no later batch touches it (a created
    // VIP's table must come from the batch that created it).
    let body = CONFIG
        .replace("127.0.4.", &format!("127.0.{net}."))
        .replace(", healthcheck: web", "");
    world.write_config(&format!("{head}{body}"));
    world.start(world.settings()).await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_into_an_empty_vpp_predicts_every_table_at_once() {
    let world = hourly_world(27).await;
    // The drift is what a read of VPP says of the prediction (unset before
    // the first read of the VIP, as the proto says). The reconciler reads
    // VPP once it is idle after creating VIPs: every drift is set with no
    // sync asked for, an hour before the periodic one.
    until(
        "every VIP is created with its table predicted and its drift read",
        || {
            programmed_and_predicted(&world, 27)
                && FRONTENDS.iter().all(|(name, _)| {
                    world.handle().table(name).and_then(|t| t.drift) == Some(0)
                        && world
                            .handle()
                            .frontend(name)
                            .unwrap()
                            .table
                            .and_then(|t| t.drift)
                            == Some(0)
                })
        },
    )
    .await;
    assert!(tables_match(&world, &FRONTENDS));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_after_a_vpp_restart_predicts_every_table_at_once() {
    let mut world = hourly_world(28).await;
    until("every table is predicted", || {
        programmed_and_predicted(&world, 28)
    })
    .await;
    let pid_before = world.handle().vpp().unwrap().info.pid;
    // VPP restarts empty; the daemon reconnects and creates every VIP
    // again, an hour before its next periodic sync.
    world.vpp.sim.restart().await.unwrap();
    until(
        "the daemon reconnected and every table is predicted again",
        || {
            world.handle().vpp().is_ok_and(|l| l.info.pid != pid_before)
                && programmed_and_predicted(&world, 28)
        },
    )
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_change_predicts_its_new_table_at_once() {
    let world = hourly_world(29).await;
    until("every table is predicted", || {
        programmed_and_predicted(&world, 29)
    })
    .await;
    let before = world.handle().table("web").unwrap().summary.fingerprint;
    world
        .handle()
        .set_weight("web", "primary", "a", 30, false)
        .await
        .unwrap();
    // set_weight answers once VPP has the new weight: the prediction is
    // the new table as soon as the table task has taken it in.
    assert_eq!(
        world.weights("192.0.2.40"),
        w(&[("127.0.29.1", 30), ("127.0.29.2", 100)])
    );
    until("web's new table is predicted", || {
        tables_match(&world, &FRONTENDS)
    })
    .await;
    assert_ne!(
        world.handle().table("web").unwrap().summary.fingerprint,
        before
    );
    world.stop().await;
}
