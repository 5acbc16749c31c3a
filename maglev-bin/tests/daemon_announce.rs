//! End to end, in process: the announcer over a `MemoryTable` the test
//! keeps, with the simulated VPP and loopback backends. Routes follow the
//! backends, VPP, the drain, reloads and restarts as `maglev.announce`'s
//! policy says.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::World;
use maglev_bin::announce::table::{MemoryTable, RouteError, RouteTable};
use maglev_bin::daemon::{Parts, Settings};
use maglev_bin::events::{EventKind, Received};
use maglev_core::announce::{Prefix, Reason};

/// The announce section (after [`common::HEAD`]'s healthchecks) and two
/// frontends on one prefix (`web`, `web-tls`: 192.0.2.60) and one on
/// another (`dns`: 192.0.2.61).
const BODY: &str = r#"
  announce:
    table: 200
    min-interval: {min}
    vpp-grace: {grace}
  backends:
    a: { address: 127.0.26.1, healthcheck: web }
    b: { address: 127.0.26.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.60
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {} }
    web-tls:
      address: 192.0.2.60
      protocol: tcp
      port: 443
      pools:
        - name: primary
          backends: { a: {} }
    dns:
      address: 192.0.2.61
      protocol: udp
      port: 53
      pools:
        - name: primary
          backends: { b: {} }
"#;

/// A table in memory that records every change asked of it and fails the
/// next `fail` of them.
#[derive(Debug, Default)]
struct Recording {
    inner: MemoryTable,
    ops: Mutex<Vec<String>>,
    fail: AtomicUsize,
}

impl Recording {
    fn with(routes: BTreeSet<Prefix>) -> Recording {
        Recording {
            inner: MemoryTable::with(routes),
            ..Recording::default()
        }
    }

    fn ops(&self) -> Vec<String> {
        self.ops.lock().unwrap().clone()
    }

    fn routes(&self) -> BTreeSet<Prefix> {
        self.inner.routes()
    }

    /// Fails the next change, if asked to.
    fn change(&self, what: String) -> Result<(), RouteError> {
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        self.ops.lock().unwrap().push(if failing {
            format!("{what} (failed)")
        } else {
            what.clone()
        });
        if failing {
            return Err(RouteError {
                table: "recording".into(),
                action: what,
                message: "refused by the test".into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RouteTable for Recording {
    fn describe(&self) -> String {
        "recording".into()
    }

    fn in_memory(&self) -> bool {
        true
    }

    async fn list(&self) -> Result<BTreeSet<Prefix>, RouteError> {
        self.inner.list().await
    }

    async fn add(&self, prefix: Prefix) -> Result<(), RouteError> {
        self.change(format!("add {prefix}"))?;
        self.inner.add(prefix).await
    }

    async fn remove(&self, prefix: Prefix) -> Result<(), RouteError> {
        self.change(format!("remove {prefix}"))?;
        self.inner.remove(prefix).await
    }
}

/// Waits until `cond` holds (polling); after [`common::PATIENCE`] fails
/// the test with what the daemon and the simulator hold.
async fn until(world: &World, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        if cond() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let dump = match &world.daemon {
                Some(d) => format!(
                    "announcements {:#?}\nfrontends {:?}\nvpp connected {}\nsync {:?}",
                    d.handle().announcements(),
                    d.handle().frontend_states(),
                    d.handle().vpp().is_ok(),
                    d.handle().sync_health(),
                ),
                None => "no daemon".to_owned(),
            };
            panic!(
                "timed out waiting until {what}\n{dump}\nsimulator {:#?}",
                world.vips()
            );
        }
        tick.tick().await;
    }
}

fn prefix(s: &str) -> Prefix {
    Prefix::host(s.parse().unwrap())
}

fn set(list: &[&str]) -> BTreeSet<Prefix> {
    list.iter().map(|s| prefix(s)).collect()
}

fn body(min: &str, grace: &str) -> String {
    BODY.replace("{min}", min).replace("{grace}", grace)
}

/// A world of two backends (127.0.26.1, .2), its config written with
/// `min` and `grace`, and the table the daemon will use.
async fn world(min: &str, grace: &str) -> (World, Arc<MemoryTable>) {
    let world = World::new(26, 2).await;
    world.write_body(&body(min, grace));
    (world, Arc::new(MemoryTable::new()))
}

fn parts(table: &Arc<MemoryTable>) -> Parts {
    Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    }
}

async fn start(world: &mut World, table: &Arc<MemoryTable>, settings: Settings) {
    world.start_with(settings, parts(table)).await;
}

/// The published view of `p`: (announced, reason).
fn view(world: &World, p: &str) -> Option<(bool, Reason)> {
    let p = prefix(p);
    world
        .handle()
        .announcements()
        .prefixes
        .iter()
        .find(|v| v.prefix == p)
        .map(|v| (v.announced, v.reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_follow_the_backends() {
    let (mut world, table) = world("0s", "1s").await;
    let settings = world.settings();
    start(&mut world, &table, settings).await;
    until(&world, "both prefixes are announced", || {
        table.routes() == set(&["192.0.2.60", "192.0.2.61"])
    })
    .await;
    let a = world.handle().announcements();
    assert!(a.enabled && a.in_memory, "{a:?}");
    assert_eq!(a.table, "memory");
    let web = &a.prefixes[0];
    assert_eq!(
        web.frontends,
        ["web", "web-tls"],
        "one prefix, both frontends"
    );
    assert_eq!((web.announced, web.reason), (true, Reason::Serving));
    let fe = world.handle().frontend("web").unwrap();
    assert_eq!(
        fe.announce.map(|a| (a.announced, a.reason)),
        Some((true, Reason::Serving))
    );

    // a serves both frontends of 192.0.2.60: when it fails, the prefix goes.
    world.backends[0].set_healthy(false);
    until(&world, "192.0.2.60 is withdrawn", || {
        table.routes() == set(&["192.0.2.61"])
    })
    .await;
    assert_eq!(
        view(&world, "192.0.2.60"),
        Some((false, Reason::NothingServes))
    );
    assert_eq!(
        world
            .handle()
            .frontend("web-tls")
            .unwrap()
            .announce
            .map(|a| a.announced),
        Some(false)
    );

    // It comes back once VPP holds the VIP with a serving AS again.
    world.backends[0].set_healthy(true);
    until(&world, "192.0.2.60 is announced again", || {
        table.routes() == set(&["192.0.2.60", "192.0.2.61"])
    })
    .await;
    assert!(
        world.weights("192.0.2.60").iter().any(|(_, w)| *w > 0),
        "announced only once VPP serves it"
    );
    let node = world.handle().node();
    assert_eq!((node.announced, node.prefixes), (2, 2));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_withdraws_everything_and_undrain_announces_again() {
    let (mut world, table) = world("0s", "1s").await;
    let settings = world.settings();
    start(&mut world, &table, settings).await;
    // The view is published after the pass's events: none of them is
    // still to come.
    until(&world, "both prefixes are announced", || {
        table.routes().len() == 2
            && view(&world, "192.0.2.60") == Some((true, Reason::Serving))
            && view(&world, "192.0.2.61") == Some((true, Reason::Serving))
    })
    .await;
    let mut events = world.handle().subscribe(None);

    let node = world.handle().set_drain(true, "alice").await.unwrap();
    // set_drain answers once the announcer carried it out.
    assert_eq!(table.routes(), set(&[]));
    let drain = node.drained.clone().expect("drained");
    assert_eq!(drain.by, "alice");
    assert!(drain.at_unix_ms > 0);
    assert_eq!(node.announced, 0);
    assert_eq!(view(&world, "192.0.2.61"), Some((false, Reason::Drained)));

    // Draining again keeps who drained first.
    let again = world.handle().set_drain(true, "bob").await.unwrap();
    assert_eq!(again.drained, Some(drain));

    let node = world.handle().set_drain(false, "alice").await.unwrap();
    assert_eq!(node.drained, None);
    until(&world, "both prefixes are announced again", || {
        table.routes().len() == 2
    })
    .await;

    // Events: the drain, two withdraws, the undrain, two announces.
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let Ok(Some(Received::Event(e))) =
            tokio::time::timeout(common::PATIENCE, events.recv()).await
        else {
            panic!("events missing after {seen:?}");
        };
        match &e.kind {
            EventKind::Node(n) => seen.push(format!("node drained={} by={}", n.drained, n.by)),
            EventKind::Announce(a) => {
                assert_eq!(a.error, None);
                seen.push(format!(
                    "{} {} {}",
                    a.prefix,
                    a.announced,
                    a.reason.as_str()
                ));
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "node drained=true by=alice",
            "192.0.2.60/32 false drained",
            "192.0.2.61/32 false drained",
            "node drained=false by=alice",
            "192.0.2.60/32 true serving",
            "192.0.2.61/32 true serving",
        ]
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_without_an_announce_section_is_refused() {
    let mut world = World::new(27, 1).await;
    world.write_body(
        r#"
  backends:
    a: { address: 127.0.27.1, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.70
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {} }
"#,
    );
    let settings = world.settings();
    world.start(settings).await;
    let e = world.handle().set_drain(true, "alice").await.unwrap_err();
    assert!(
        matches!(e, maglev_bin::daemon::DaemonError::FailedPrecondition(ref m) if m.contains("maglev.announce")),
        "{e:?}"
    );
    assert!(!world.handle().announcements().enabled);
    assert!(world.handle().frontend("web").unwrap().announce.is_none());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_a_frontend_removes_its_route() {
    let (mut world, table) = world("0s", "1s").await;
    let settings = world.settings();
    start(&mut world, &table, settings).await;
    until(&world, "both prefixes are announced", || {
        table.routes().len() == 2
    })
    .await;
    // dns goes; web-tls goes too, but web still claims 192.0.2.60.
    let body = body("0s", "1s");
    let cut = body.find("    web-tls:").unwrap();
    let end = body.find("    dns:").unwrap();
    let mut fewer = body[..cut].to_owned();
    fewer.push_str(&body[end..]);
    let dns = fewer.find("    dns:").unwrap();
    fewer.truncate(dns);
    world.write_body(&fewer);
    let report = world.handle().reload_with(true).await;
    assert!(
        report.semantic_error.is_none() && report.parse_error.is_none(),
        "{report:?}"
    );
    until(&world, "192.0.2.61 is withdrawn", || {
        table.routes() == set(&["192.0.2.60"])
    })
    .await;
    until(&world, "its view is gone", || {
        view(&world, "192.0.2.61").is_none()
    })
    .await;
    assert_eq!(
        world.handle().announcements().prefixes[0].frontends,
        ["web"]
    );

    // A reload that removes the announce section withdraws every route.
    let cut = fewer.find("  backends:").unwrap();
    world.write_body(&fewer[cut..]);
    let report = world.handle().reload_with(true).await;
    assert!(report.semantic_error.is_none(), "{report:?}");
    until(&world, "every route is withdrawn", || {
        table.routes().is_empty()
    })
    .await;
    until(&world, "announcements are off", || {
        !world.handle().announcements().enabled
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_away_withdraws_after_the_grace_period_and_back_announces() {
    let (mut world, table) = world("0s", "2s").await;
    let settings = world.settings();
    start(&mut world, &table, settings).await;
    until(&world, "both prefixes are announced", || {
        table.routes().len() == 2
    })
    .await;
    world.vpp.sim.stop().await;
    // Within the grace period nothing changes.
    until(&world, "the announcer sees VPP gone", || {
        view(&world, "192.0.2.60") == Some((true, Reason::VppGrace))
    })
    .await;
    assert_eq!(table.routes().len(), 2, "held during the grace period");
    until(&world, "withdrawn after the grace period", || {
        table.routes().is_empty()
    })
    .await;
    assert_eq!(
        view(&world, "192.0.2.60"),
        Some((false, Reason::VppUnreachable))
    );
    world.vpp.sim.resume().await.unwrap();
    until(&world, "announced again once VPP is back", || {
        table.routes().len() == 2
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protective_withdraw_is_not_damped_but_a_reannounce_is() {
    let min = Duration::from_secs(3);
    let (mut world, table) = world("3s", "1s").await;
    let settings = world.settings();
    start(&mut world, &table, settings).await;
    until(&world, "192.0.2.61 is announced", || {
        table.routes().contains(&prefix("192.0.2.61"))
    })
    .await;
    let since = |w: &World| {
        let p = prefix("192.0.2.61");
        w.handle()
            .announcements()
            .prefixes
            .iter()
            .find(|v| v.prefix == p)
            .and_then(|v| v.since_unix_nanos)
            .unwrap()
    };
    let announced_at = since(&world);
    world.backends[1].set_healthy(false);
    until(&world, "192.0.2.61 is withdrawn", || {
        !table.routes().contains(&prefix("192.0.2.61"))
    })
    .await;
    let withdrawn_at = since(&world);
    assert!(
        Duration::from_nanos((withdrawn_at - announced_at) as u64) < min,
        "the withdraw protects traffic: never damped"
    );
    world.backends[1].set_healthy(true);
    until(&world, "the re-announce waits for min-interval", || {
        view(&world, "192.0.2.61") == Some((false, Reason::Damped))
    })
    .await;
    until(&world, "192.0.2.61 is announced again", || {
        table.routes().contains(&prefix("192.0.2.61"))
    })
    .await;
    let again_at = since(&world);
    assert!(
        Duration::from_nanos((again_at - withdrawn_at) as u64) >= min,
        "the re-announce came after min-interval"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_changes_nothing_before_warm_up_releases() {
    // The table as the last run left it: 192.0.2.60 and .61 announced, and
    // a route no frontend claims.
    let table = Arc::new(Recording::with(set(&[
        "192.0.2.60",
        "192.0.2.61",
        "192.0.2.99",
    ])));
    let mut world = World::new(26, 2).await;
    // b (dns) is down at the restart: warm-up holds its route until it
    // releases dns, then it goes.
    world.backends[1].set_healthy(false);
    let body = body("0s", "1s");
    world.write_config(&format!(
        "{}{body}",
        common::HEAD
            .replace("startup-min-delay: 0s", "startup-min-delay: 3s")
            .replace("startup-max-delay: 0s", "startup-max-delay: 6s")
    ));
    let settings = world.settings();
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    until(&world, "the announcer has decided", || {
        view(&world, "192.0.2.61") == Some((true, Reason::WarmingUp))
            && view(&world, "192.0.2.99") == Some((true, Reason::WarmingUp))
    })
    .await;
    until(&world, "dns is down", || {
        world.handle().frontend("dns").unwrap().state == maglev_core::state::FrontendState::Down
    })
    .await;
    assert_eq!(
        world.handle().warmup_phase(),
        maglev_core::warmup::Phase::HandsOff
    );
    assert_eq!(
        table.ops(),
        Vec::<String>::new(),
        "nothing changes while warm-up holds"
    );
    assert_eq!(view(&world, "192.0.2.61"), Some((true, Reason::WarmingUp)));
    until(
        &world,
        "dns's route goes once released, the unclaimed one after warm-up",
        || table.routes() == set(&["192.0.2.60"]),
    )
    .await;
    assert_eq!(
        table.ops(),
        ["remove 192.0.2.61/32", "remove 192.0.2.99/32"],
        "the route of a serving frontend was never touched"
    );
    assert_eq!(view(&world, "192.0.2.99"), None, "forgotten once removed");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_warm_up_waits_for_evidence() {
    // Warm-up off, no state file: the backends start unknown. The routes
    // found stay until the probes say something.
    let table = Arc::new(Recording::with(set(&["192.0.2.60", "192.0.2.61"])));
    let mut world = World::new(26, 2).await;
    world.write_body(&body("0s", "1s"));
    let settings = world.settings();
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    until(&world, "both frontends serve", || {
        view(&world, "192.0.2.60") == Some((true, Reason::Serving))
            && view(&world, "192.0.2.61") == Some((true, Reason::Serving))
    })
    .await;
    assert_eq!(
        table.ops(),
        Vec::<String>::new(),
        "adopted, never withdrawn"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_change_is_kept_reported_and_retried() {
    let table = Arc::new(Recording::default());
    let mut world = World::new(26, 2).await;
    world.write_body(&body("0s", "1s"));
    let settings = world.settings();
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    // The view is published after the pass's events: none of them is
    // still to come.
    until(&world, "both prefixes are announced", || {
        table.routes().len() == 2
            && view(&world, "192.0.2.60") == Some((true, Reason::Serving))
            && view(&world, "192.0.2.61") == Some((true, Reason::Serving))
    })
    .await;
    let mut events = world.handle().subscribe(None);

    // The table refuses the withdraw twice: the prefix stays announced
    // with the error in its view, and the withdraw is retried at once.
    table.fail.store(2, Ordering::SeqCst);
    world.backends[1].set_healthy(false);
    until(
        &world,
        "192.0.2.61 is withdrawn despite two refusals",
        || !table.routes().contains(&prefix("192.0.2.61")),
    )
    .await;
    assert_eq!(
        table.ops()[2..],
        [
            "remove 192.0.2.61/32 (failed)",
            "remove 192.0.2.61/32 (failed)",
            "remove 192.0.2.61/32",
        ]
    );
    let mut errors = 0;
    loop {
        let Ok(Some(Received::Event(e))) =
            tokio::time::timeout(common::PATIENCE, events.recv()).await
        else {
            panic!("the withdraw's event is missing");
        };
        if let EventKind::Announce(a) = &e.kind {
            if a.announced && a.error.is_none() {
                // The start's announces, published after the table
                // changed (which the wait above saw).
                continue;
            }
            assert_eq!(a.prefix, prefix("192.0.2.61"));
            assert_eq!(a.frontends, [Arc::<str>::from("dns")]);
            match &a.error {
                Some(error) => {
                    assert!(a.announced, "a failed withdraw leaves it announced");
                    assert!(error.contains("refused by the test"), "{error}");
                    errors += 1;
                }
                None => {
                    assert!(!a.announced);
                    break;
                }
            }
        }
    }
    assert_eq!(errors, 2);
    let v = world.handle().announcements();
    let dns = v
        .prefixes
        .iter()
        .find(|p| p.prefix == prefix("192.0.2.61"))
        .unwrap();
    assert_eq!(dns.error, None, "cleared by the success");

    // A refused announce keeps the prefix withdrawn with its error, and is
    // retried after a backoff.
    table.fail.store(1, Ordering::SeqCst);
    world.backends[1].set_healthy(true);
    until(&world, "the failure is in the view", || {
        world
            .handle()
            .announcements()
            .prefixes
            .iter()
            .any(|p| p.prefix == prefix("192.0.2.61") && !p.announced && p.error.is_some())
    })
    .await;
    until(&world, "announced by the retry", || {
        table.routes().len() == 2
    })
    .await;
    assert_eq!(
        table.ops()[5..],
        ["add 192.0.2.61/32 (failed)", "add 192.0.2.61/32"]
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_outlives_a_restart() {
    let (mut world, table) = world("0s", "1s").await;
    let state_file = world.dir.path().join("state.json");
    let mut settings = world.settings();
    settings.state_file = Some(state_file.clone());
    start(&mut world, &table, settings.clone()).await;
    until(&world, "both prefixes are announced", || {
        table.routes().len() == 2
    })
    .await;
    let drained = world.handle().set_drain(true, "alice").await.unwrap();
    assert!(table.routes().is_empty());
    world.daemon.take().unwrap().shutdown().await;
    let saved = std::fs::read_to_string(&state_file).unwrap();
    assert!(saved.contains("\"drain\": {"), "{saved}");

    // The routes are back (someone added them while maglevd was away): a
    // drained node withdraws them at once, before warm-up releases
    // anything.
    for p in ["192.0.2.60", "192.0.2.61"] {
        table.add(prefix(p)).await.unwrap();
    }
    world.write_config(&format!(
        "{}{}",
        common::HEAD.replace("startup-min-delay: 0s", "startup-min-delay: 30s"),
        body("0s", "1s")
    ));
    start(&mut world, &table, settings.clone()).await;
    until(&world, "withdrawn: the node is drained", || {
        table.routes().is_empty()
    })
    .await;
    assert_eq!(
        world.handle().warmup_phase(),
        maglev_core::warmup::Phase::HandsOff,
        "drain wins over warm-up"
    );
    let node = world.handle().node();
    assert_eq!(node.drained, drained.drained, "who and when survive");
    assert_eq!(view(&world, "192.0.2.60"), Some((false, Reason::Drained)));

    // Undrained, and restarted again: it stays undrained.
    world.handle().set_drain(false, "bob").await.unwrap();
    world.daemon.take().unwrap().shutdown().await;
    world.write_body(&body("0s", "1s"));
    start(&mut world, &table, settings).await;
    assert_eq!(world.handle().node().drained, None);
    until(&world, "announced again", || table.routes().len() == 2).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_cannot_be_opened_fails_the_start_naming_it() {
    // No Parts::routes: the kernel table of the config, in a namespace that
    // does not exist (or, without the privileges, refused before that).
    let world = World::new(28, 1).await;
    world.write_body(
        r#"
  announce:
    table: 200
    netns: maglev-test-no-such-netns
  backends:
    a: { address: 127.0.28.1, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.80
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {} }
"#,
    );
    let settings = world.settings();
    let e = maglev_bin::daemon::Daemon::start(settings, Parts::default())
        .await
        .unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("maglev.announce"), "{text}");
    assert!(text.contains("maglev-test-no-such-netns"), "{text}");
    world.stop().await;
}

/// The kernel side: a network namespace made for the test (deleted on
/// drop), read back with iproute2.
#[path = "netns_common/mod.rs"]
mod netns_common;
use netns_common::Netns;

/// The addresses of maglevd's routes in `ns`'s `table`.
fn kernel_routes(ns: &Netns, table: u32) -> Vec<String> {
    ns.blackholes(table, 201)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_table_follows_the_backends_and_outlives_a_restart() {
    let Some(ns) = Netns::or_skip("mga", "the announce netns test") else {
        return;
    };
    let mut world = World::new(29, 2).await;
    let body = body("0s", "1s")
        .replace(
            "    table: 200\n",
            &format!("    table: 200\n    netns: {}\n", ns.0),
        )
        .replace("127.0.26.", "127.0.29.");
    world.write_body(&body);
    let settings = world.settings();
    // No Parts::routes: the kernel table the config names.
    world.start(settings.clone()).await;
    assert_eq!(
        world.handle().announcements().table,
        format!("kernel table 200 (protocol 201) in netns {}", ns.0)
    );
    assert!(!world.handle().announcements().in_memory);
    until(&world, "both prefixes are in the kernel table", || {
        kernel_routes(&ns, 200) == ["192.0.2.60", "192.0.2.61"]
    })
    .await;

    world.backends[0].set_healthy(false);
    until(&world, "192.0.2.60 leaves the kernel table", || {
        kernel_routes(&ns, 200) == ["192.0.2.61"]
    })
    .await;
    world.backends[0].set_healthy(true);
    until(&world, "192.0.2.60 is back in the kernel table", || {
        kernel_routes(&ns, 200) == ["192.0.2.60", "192.0.2.61"]
    })
    .await;
    world.handle().set_drain(true, "alice").await.unwrap();
    assert_eq!(kernel_routes(&ns, 200), Vec::<String>::new(), "drained");
    world.handle().set_drain(false, "alice").await.unwrap();
    until(&world, "announced again after the undrain", || {
        kernel_routes(&ns, 200).len() == 2
    })
    .await;

    // Shutdown leaves the routes; a restart (warm-up on) adopts them and
    // changes nothing while warm-up holds, nor after.
    world.daemon.take().unwrap().shutdown().await;
    assert_eq!(
        kernel_routes(&ns, 200),
        ["192.0.2.60", "192.0.2.61"],
        "an upgrade does not withdraw"
    );
    world.write_config(&format!(
        "{}{body}",
        common::HEAD
            .replace("startup-min-delay: 0s", "startup-min-delay: 2s")
            .replace("startup-max-delay: 0s", "startup-max-delay: 4s")
    ));
    world.start(settings).await;
    until(&world, "the routes are adopted", || {
        view(&world, "192.0.2.60") == Some((true, Reason::WarmingUp))
    })
    .await;
    assert_eq!(kernel_routes(&ns, 200), ["192.0.2.60", "192.0.2.61"]);
    until(&world, "warm-up is over and both serve", || {
        world.handle().warmup_phase() == maglev_core::warmup::Phase::Finished
            && view(&world, "192.0.2.60") == Some((true, Reason::Serving))
            && view(&world, "192.0.2.61") == Some((true, Reason::Serving))
    })
    .await;
    assert_eq!(kernel_routes(&ns, 200), ["192.0.2.60", "192.0.2.61"]);
    assert_eq!(
        world
            .handle()
            .announcements()
            .prefixes
            .iter()
            .filter(|p| p.since_unix_nanos.is_some())
            .count(),
        0,
        "the restarted daemon changed nothing"
    );

    // A reload naming another table moves the routes there.
    world.write_body(&body.replace("    table: 200\n", "    table: 300\n"));
    let report = world.handle().reload().await;
    assert!(report.semantic_error.is_none(), "{report:?}");
    until(&world, "the routes moved to table 300", || {
        kernel_routes(&ns, 300) == ["192.0.2.60", "192.0.2.61"]
            && kernel_routes(&ns, 200).is_empty()
    })
    .await;
    assert_eq!(
        world.handle().announcements().table,
        format!("kernel table 300 (protocol 201) in netns {}", ns.0)
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_vpp_integration_the_probes_decide() {
    // No VPP (`--vpp-api-addr ""`) and warm-up on: nothing would release
    // the frontends, so the probes' evidence alone decides.
    let mut world = World::new(30, 2).await;
    let table = Arc::new(MemoryTable::new());
    world.write_config(&format!(
        "{}{}",
        // No watchdog: only the reconciler could end warm-up.
        common::HEAD.replace("startup-min-delay: 0s", "startup-min-delay: 30s"),
        body("0s", "1s").replace("127.0.26.", "127.0.30.")
    ));
    let mut settings = world.settings();
    settings.vpp = None;
    start(&mut world, &table, settings).await;
    until(&world, "both prefixes are announced", || {
        table.routes() == set(&["192.0.2.60", "192.0.2.61"])
    })
    .await;
    world.backends[1].set_healthy(false);
    until(&world, "192.0.2.61 is withdrawn", || {
        table.routes() == set(&["192.0.2.60"])
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_removed_behind_its_back_is_added_again() {
    let (mut world, table) = world("0s", "1s").await;
    let mut settings = world.settings();
    settings.announce_relist_interval = Duration::from_millis(200);
    start(&mut world, &table, settings).await;
    until(&world, "both prefixes are announced", || {
        table.routes().len() == 2
    })
    .await;
    // Someone removes one of our routes, and adds one no frontend claims.
    table.remove(prefix("192.0.2.61")).await.unwrap();
    table.add(prefix("192.0.2.98")).await.unwrap();
    until(&world, "the drift is repaired", || {
        table.routes() == set(&["192.0.2.60", "192.0.2.61"])
    })
    .await;
    assert_eq!(view(&world, "192.0.2.61"), Some((true, Reason::Serving)));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpp_restart_within_the_grace_period_changes_nothing() {
    let table = Arc::new(Recording::default());
    let mut world = World::new(31, 2).await;
    world.write_body(&body("0s", "3s").replace("127.0.26.", "127.0.31."));
    let settings = world.settings();
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    until(&world, "both prefixes are announced", || {
        view(&world, "192.0.2.60") == Some((true, Reason::Serving))
            && view(&world, "192.0.2.61") == Some((true, Reason::Serving))
    })
    .await;
    let before = table.ops();
    let pid = world.handle().vpp().unwrap().info.pid;
    // VPP restarts empty; maglevd reconnects and programs it again.
    world.vpp.sim.restart().await.unwrap();
    until(
        &world,
        "VPP is programmed again and both prefixes serve",
        || {
            world.handle().vpp().is_ok_and(|l| l.info.pid != pid)
                && world.weights("192.0.2.61").iter().any(|(_, w)| *w > 0)
                && view(&world, "192.0.2.60") == Some((true, Reason::Serving))
                && view(&world, "192.0.2.61") == Some((true, Reason::Serving))
        },
    )
    .await;
    assert_eq!(table.ops(), before, "nothing withdrawn or added");
    world.stop().await;
}
