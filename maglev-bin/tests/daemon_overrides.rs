//! End to end: operator intent is state. Pause, disable and runtime
//! weights survive a restart (the state file) and reloads, by the one rule
//! of docs/user-guide.md; a reload applies the file's changed `enabled`
//! and weights; overrides are listed and cleared. Asserts what the
//! simulated VPP holds and the ops the daemon sent it.

mod common;

use common::{World, parts_with_hub, until, w};
use maglev_bin::daemon::overrides::{Override, OverrideKey};
use maglev_bin::events::{EventKind, Received, Subscription};
use maglev_core::state::BackendState;
use maglev_health::persist::{self, Intent};

/// Backends a, b, c in the one pool of frontend `web` at 192.0.2.`net`;
/// `extra` is added to c's pool member (e.g. a weight).
fn body(net: u8, a_extra: &str, c_member: &str) -> String {
    format!(
        r#"  backends:
    a: {{ address: 127.0.{net}.1, healthcheck: web{a_extra} }}
    b: {{ address: 127.0.{net}.2, healthcheck: web }}
    c: {{ address: 127.0.{net}.3, healthcheck: web }}
  frontends:
    web:
      address: 192.0.2.{net}
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: {{ a: {{}}, b: {{}}, c: {{{c_member}}} }}
"#
    )
}

/// The VPP ops published so far, as logged.
fn vpp_ops(events: &mut Subscription) -> Vec<String> {
    let mut ops = Vec::new();
    while let Some(r) = events.try_recv() {
        if let Received::Event(e) = r
            && let EventKind::Vpp(c) = &e.kind
        {
            ops.push(c.op.clone());
        }
    }
    ops
}

async fn started(net: u8, state: Option<std::path::PathBuf>) -> World {
    let mut world = World::new(net, 3).await;
    world.write_body(&body(net, "", ""));
    let mut settings = world.settings();
    settings.state_file = state.or_else(|| Some(world.dir.path().join("state.json")));
    world.start(settings).await;
    let ip = |i: u8| format!("127.0.{net}.{i}");
    until("every backend carries traffic", || {
        world.weights(&format!("192.0.2.{net}"))
            == w(&[(&ip(1), 100), (&ip(2), 100), (&ip(3), 100)])
    })
    .await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_disable_and_weight_survive_a_restart_and_vpp_never_sees_the_file_weight() {
    let mut world = started(131, None).await;
    let state = world.dir.path().join("state.json");
    let h = world.handle();
    h.disable_by("a", "bob").unwrap();
    h.pause_by("b", "carol").unwrap();
    h.set_weight_by("web", "primary", "c", 10, false, "alice")
        .await
        .unwrap();
    until("a and b drained, c at 10", || {
        world.weights("192.0.2.131")
            == w(&[("127.0.131.1", 0), ("127.0.131.2", 0), ("127.0.131.3", 10)])
    })
    .await;
    world.daemon.take().unwrap().shutdown().await;

    // The state file says who did what.
    let saved = persist::decode(&std::fs::read(&state).unwrap(), "state").unwrap();
    assert_eq!(saved.overrides.backends["a"].intent, Intent::Disabled);
    assert_eq!(saved.overrides.backends["a"].by, "bob");
    assert_eq!(saved.overrides.backends["b"].intent, Intent::Paused);
    assert_eq!(saved.overrides.backends["b"].by, "carol");
    let key = ("web".to_owned(), "primary".to_owned(), "c".to_owned());
    let c = &saved.overrides.weights[&key];
    assert_eq!((c.weight, c.file_weight, c.by.as_str()), (10, 100, "alice"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // The same file, the same config: a restart.
    let probes_b = world.backends[1].requests();
    let (parts, mut events) = parts_with_hub();
    let mut settings = world.settings();
    settings.state_file = Some(state.clone());
    world.start_with(settings, parts).await;
    let h = world.handle();
    assert_eq!(h.backend_state("a"), BackendState::Disabled);
    assert_eq!(h.backend_state("b"), BackendState::Paused);
    assert_eq!(
        h.overrides(),
        [
            Override::Backend {
                backend: "a".into(),
                intent: saved.overrides.backends["a"].clone()
            },
            Override::Backend {
                backend: "b".into(),
                intent: saved.overrides.backends["b"].clone()
            },
            Override::Weight {
                key: key.clone(),
                weight: c.clone()
            },
        ]
    );
    until("VPP is connected and c is up", || {
        h.vpp().is_ok() && h.backend_state("c") == BackendState::Up
    })
    .await;
    // A full sync finds nothing to do: VPP holds the overrides.
    assert_eq!(h.sync(None).await.unwrap().ops, []);
    assert_eq!(
        world.weights("192.0.2.131"),
        w(&[("127.0.131.1", 0), ("127.0.131.2", 0), ("127.0.131.3", 10)])
    );
    // No op ever raised a, b or c back to the file's weight.
    let ops = vpp_ops(&mut events);
    assert!(
        ops.iter().all(|op| !op.contains("weight 100")),
        "an op restored a file weight: {ops:?}"
    );
    // Paused: not a single probe to b.
    assert_eq!(world.backends[1].requests(), probes_b);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_plan_into_an_empty_vpp_has_the_restored_weight() {
    let mut world = started(132, None).await;
    let state = world.dir.path().join("state.json");
    world
        .handle()
        .set_weight_by("web", "primary", "c", 10, false, "alice")
        .await
        .unwrap();
    world.daemon.take().unwrap().shutdown().await;
    // VPP restarted meanwhile: it holds nothing.
    world.fresh_vpp().await;
    assert!(world.vips().is_empty());
    let (parts, mut events) = parts_with_hub();
    let mut settings = world.settings();
    settings.state_file = Some(state);
    world.start_with(settings, parts).await;
    until("c is in VPP", || {
        world
            .weights("192.0.2.132")
            .iter()
            .any(|(a, _)| a == "127.0.132.3")
    })
    .await;
    until("every backend is in VPP", || {
        world.weights("192.0.2.132").len() == 3
    })
    .await;
    let ops = vpp_ops(&mut events);
    let c_ops: Vec<_> = ops.iter().filter(|op| op.contains("127.0.132.3")).collect();
    assert_eq!(c_ops.len(), 1, "{ops:?}");
    assert!(
        c_ops[0].starts_with("add as 127.0.132.3 weight 10 to "),
        "{ops:?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_enabled_false_disables_and_drains_the_backend() {
    let world = started(133, None).await;
    world.write_body(&body(133, ", enabled: false", ""));
    let report = world.handle().reload().await;
    assert!(report.semantic_error.is_none(), "{report:?}");
    assert_eq!(world.handle().backend_state("a"), BackendState::Disabled);
    until("a is drained with a flush", || {
        world.weights("192.0.2.133")
            == w(&[
                ("127.0.133.1", 0),
                ("127.0.133.2", 100),
                ("127.0.133.3", 100),
            ])
            && world
                .flushes()
                .contains(&("192.0.2.133".into(), "127.0.133.1".into()))
    })
    .await;
    // Back to enabled in the file: a comes back.
    world.write_body(&body(133, "", ""));
    world.handle().reload().await;
    until("a is back", || {
        world.weights("192.0.2.133")
            == w(&[
                ("127.0.133.1", 100),
                ("127.0.133.2", 100),
                ("127.0.133.3", 100),
            ])
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_holds_until_the_file_changes_the_same_key_or_it_is_cleared() {
    let world = started(134, None).await;
    let h = world.handle();
    h.set_weight_by("web", "primary", "c", 10, false, "alice")
        .await
        .unwrap();
    h.disable_by("a", "bob").unwrap();
    until("c at 10, a drained", || {
        world.weights("192.0.2.134")
            == w(&[
                ("127.0.134.1", 0),
                ("127.0.134.2", 100),
                ("127.0.134.3", 10),
            ])
    })
    .await;

    // A reload that changes other things (b's weight) keeps both
    // overrides: the file still says what it said when they were set.
    let other = body(134, "", "").replace("b: {}", "b: { weight: 60 }");
    world.write_body(&other);
    h.reload().await;
    until("b follows the file, the overrides hold", || {
        world.weights("192.0.2.134")
            == w(&[("127.0.134.1", 0), ("127.0.134.2", 60), ("127.0.134.3", 10)])
    })
    .await;
    assert_eq!(h.backend_state("a"), BackendState::Disabled);
    let (weight, file) = h.weight_override("web", "primary", "c").unwrap();
    assert_eq!(
        (weight.weight, weight.by.as_str(), file),
        (10, "alice", Some(100))
    );

    // The file changes c's weight (100 → 50): the file's value replaces
    // the override.
    world.write_body(&other.replace("c: {}", "c: { weight: 50 }"));
    h.reload().await;
    until("c follows the file", || {
        world.weights("192.0.2.134")
            == w(&[("127.0.134.1", 0), ("127.0.134.2", 60), ("127.0.134.3", 50)])
    })
    .await;
    assert!(h.weight_override("web", "primary", "c").is_none());
    assert_eq!(h.overrides().len(), 1, "a's disable holds");

    // Clearing a's override: back to what the file says (enabled).
    let cleared = h
        .clear_override(&OverrideKey::Backend("a".into()), "dave")
        .await
        .unwrap();
    assert!(matches!(cleared, Override::Backend { ref backend, .. } if backend == "a"));
    until("a is back", || {
        world.weights("192.0.2.134")
            == w(&[
                ("127.0.134.1", 100),
                ("127.0.134.2", 60),
                ("127.0.134.3", 50),
            ])
    })
    .await;
    assert!(h.overrides().is_empty());
    let again = h
        .clear_override(&OverrideKey::Backend("a".into()), "dave")
        .await;
    assert!(again.unwrap_err().to_string().contains("\"a\""));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_weight_override_returns_to_the_files_weight() {
    let world = started(135, None).await;
    let h = world.handle();
    h.set_weight_by("web", "primary", "b", 20, false, "alice")
        .await
        .unwrap();
    until("b at 20", || {
        world.weights("192.0.2.135")
            == w(&[
                ("127.0.135.1", 100),
                ("127.0.135.2", 20),
                ("127.0.135.3", 100),
            ])
    })
    .await;
    let key = OverrideKey::Weight("web".into(), "primary".into(), "b".into());
    h.clear_override(&key, "bob").await.unwrap();
    until("b back at the file's 100", || {
        world.weights("192.0.2.135")
            == w(&[
                ("127.0.135.1", 100),
                ("127.0.135.2", 100),
                ("127.0.135.3", 100),
            ])
    })
    .await;
    assert!(h.overrides().is_empty());
    // Setting the file's weight is no override.
    h.set_weight_by("web", "primary", "b", 100, false, "alice")
        .await
        .unwrap();
    assert!(h.overrides().is_empty());
    world.stop().await;
}
