//! The maglevc shell driven in a pseudo-terminal (expectrl), against a
//! daemon on the simulator: `?` on the keypress at several depths, Tab
//! completion of keywords and live backend names, an error naming the
//! word, `set backend X pause` reaching the simulator, history kept, quit;
//! `show node`, `set node drain` / `undrain` and `show announcements`
//! against a daemon whose routes go to a table the test keeps.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{World, until, w};
use expectrl::{Eof, Expect, Session};
use maglev_bin::announce::table::{MemoryTable, RouteTable};
use maglev_bin::daemon::Parts;
use maglev_core::announce::Prefix;

const CONFIG: &str = r#"
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
      interval: 200ms
      timeout: 200ms
      rise: 1
      fall: 1
  backends:
    nginx0-ams: { address: 127.0.42.1, healthcheck: web }
    nginx1-ams: { address: 127.0.42.2, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.20
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { nginx0-ams: {}, nginx1-ams: {} }
"#;

type Pty = expectrl::session::OsSession;

fn spawn(server: &str, state: &std::path::Path) -> Pty {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maglevc"));
    cmd.args(["--server", server, "--color=false"])
        .env("XDG_STATE_HOME", state)
        .env("TERM", "xterm")
        .env_remove("MAGLEV_SERVER")
        .env_remove("NO_COLOR");
    let mut p = Session::spawn(cmd).expect("maglevc starts in a pty");
    p.get_process_mut().set_window_size(160, 40).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p
}

/// Runs `f` on the pty off the async runtime (expectrl blocks).
async fn on_pty<T: Send + 'static>(
    pty: Pty,
    f: impl FnOnce(&mut Pty) -> T + Send + 'static,
) -> (Pty, T) {
    tokio::task::spawn_blocking(move || {
        let mut pty = pty;
        let t = f(&mut pty);
        (pty, t)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_completes_helps_pauses_and_quits() {
    let mut world = World::new(42, 2).await;
    world.write_config(CONFIG);
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    world.start(settings).await;
    let server = world.daemon().grpc_addrs()[0].to_string();
    until("both backends carry traffic", || {
        world.weights("192.0.2.20") == w(&[("127.0.42.1", 100), ("127.0.42.2", 100)])
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let pty = spawn(&server, state.path());

    let (pty, ()) = on_pty(pty, |p| {
        p.expect("`?` lists what may come next").unwrap();
        p.expect("maglev> ").unwrap();
        // `?` without Enter: the line with the `?`, then the choices.
        p.send("sh fr?").unwrap();
        p.expect("maglev> sh fr?").unwrap();
        p.expect("every frontend with its state and active pool")
            .unwrap();
        p.expect("one frontend: its pools").unwrap();
        // The prompt comes back with the line as it was; finish it.
        p.expect("maglev> sh fr").unwrap();
        p.send("\r").unwrap();
        p.expect("ACTIVE-POOL").unwrap();
        p.expect("web").unwrap();
        p.expect("maglev> ").unwrap();
        // `?` one level down.
        p.send("set backend nginx0-ams ?").unwrap();
        p.expect("stop probing and drain it").unwrap();
        p.expect("re-enable a disabled backend").unwrap();
        // Ctrl-U clears the line.
        p.send("\x15").unwrap();
        // Tab completes a keyword, then a live backend name.
        p.send("se ba\t").unwrap();
        p.expect("se backend ").unwrap();
        p.send("ngi\t").unwrap();
        p.expect("se backend nginx").unwrap();
        p.send("0\t").unwrap();
        p.expect("nginx0-ams ").unwrap();
        p.send("pa\t").unwrap();
        p.expect("pause ").unwrap();
        p.send("\r").unwrap();
        p.expect("backend nginx0-ams is now paused").unwrap();
        p.expect("maglev> ").unwrap();
    })
    .await;
    until("the simulator drained nginx0-ams", || {
        world.weights("192.0.2.20") == w(&[("127.0.42.1", 0), ("127.0.42.2", 100)])
    })
    .await;

    let (pty, ()) = on_pty(pty, |p| {
        // An unknown word is named, with the choices.
        p.send("shwo\r").unwrap();
        p.expect("unknown word \"shwo\": expected show, sync, set")
            .unwrap();
        p.expect("maglev> ").unwrap();
        // An unknown name: only the server's message.
        p.send("show backend nope\r").unwrap();
        p.expect("nope").unwrap();
        p.expect("maglev> ").unwrap();
        p.send("set backend nginx0-ams resume\r").unwrap();
        p.expect("backend nginx0-ams is now").unwrap();
        p.expect("maglev> ").unwrap();
        p.send("quit\r").unwrap();
        p.expect(Eof).unwrap();
    })
    .await;
    let status = pty.get_process().wait().unwrap();
    assert!(
        format!("{status:?}").starts_with("Exited(") && format!("{status:?}").ends_with(", 0)"),
        "maglevc exits 0 on quit: {status:?}"
    );
    until("nginx0-ams is back", || {
        world.weights("192.0.2.20") == w(&[("127.0.42.1", 100), ("127.0.42.2", 100)])
    })
    .await;
    let history = std::fs::read_to_string(state.path().join("maglev/maglevc_history")).unwrap();
    assert!(history.contains("se backend nginx0-ams pause"), "{history}");
    assert!(history.contains("quit"), "{history}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_daemon_is_reported_and_retried() {
    let state = tempfile::tempdir().unwrap();
    // Nothing listens here yet.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let pty = spawn(&addr.to_string(), state.path());
    let (pty, ()) = on_pty(pty, move |p| {
        p.expect("maglev> ").unwrap();
        p.send("show frontends\r").unwrap();
        p.expect(format!("cannot reach maglevd at {addr}").as_str())
            .unwrap();
        p.expect("maglev> ").unwrap();
    })
    .await;
    // The daemon comes up on that address: the next command reaches it.
    let mut world = World::new(44, 1).await;
    world.write_config(
        &CONFIG
            .replace("127.0.42", "127.0.44")
            .replace(
                "    nginx1-ams: { address: 127.0.44.2, healthcheck: web }\n",
                "",
            )
            .replace(", nginx1-ams: {}", ""),
    );
    let mut settings = world.settings();
    settings.grpc_addr = Some(addr.to_string());
    world.start(settings).await;
    let (_pty, ()) = on_pty(pty, |p| {
        p.send("show frontends\r").unwrap();
        p.expect("ACTIVE-POOL").unwrap();
        p.expect("maglev> ").unwrap();
        // Ctrl-D leaves too.
        p.send("\x04").unwrap();
        p.expect(Eof).unwrap();
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_shows_and_drains_the_node() {
    let mut world = World::new(115, 2).await;
    world.write_config(&format!(
        "{}  announce:\n    table: 200\n    min-interval: 0s\n",
        CONFIG.replace("127.0.42", "127.0.115")
    ));
    let table = Arc::new(MemoryTable::new());
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    let vip = Prefix::host("192.0.2.20".parse().unwrap());
    until("the VIP is announced", || table.routes().contains(&vip)).await;
    let server = world.daemon().grpc_addrs()[0].to_string();
    let state = tempfile::tempdir().unwrap();
    let pty = spawn(&server, state.path());

    let (pty, ()) = on_pty(pty, |p| {
        p.expect("maglev> ").unwrap();
        p.send("show node\r").unwrap();
        p.expect("not drained").unwrap();
        p.expect("table     memory").unwrap();
        p.expect("prefixes  1 of 1 announced").unwrap();
        p.expect("maglev> ").unwrap();
        // `?` after `set node`: the two actions.
        p.send("set node ?").unwrap();
        p.expect("withdraw every VIP prefix").unwrap();
        p.expect("announce again every prefix that serves").unwrap();
        p.send("\x15").unwrap();
        // Tab completes the new keywords.
        p.send("se no dr\t").unwrap();
        p.expect("se no drain ").unwrap();
        p.send("\r").unwrap();
        p.expect("drained since ").unwrap();
        p.expect("by 127.0.0.1: every prefix withdrawn").unwrap();
        p.expect("prefixes  0 of 1 announced").unwrap();
        p.expect("maglev> ").unwrap();
    })
    .await;
    // The answer came once the table held the drain.
    assert!(table.routes().is_empty(), "{:?}", table.routes());

    let (pty, ()) = on_pty(pty, |p| {
        p.send("sh a\r").unwrap();
        p.expect("routes go to memory (kept in memory").unwrap();
        p.expect("192.0.2.20/32  web        withdrawn  drained")
            .unwrap();
        p.expect("maglev> ").unwrap();
        p.send("show frontend web\r").unwrap();
        p.expect("announce       withdrawn (drained)").unwrap();
        p.expect("maglev> ").unwrap();
        p.send("set node undrain\r").unwrap();
        p.expect("not drained").unwrap();
        p.expect("maglev> ").unwrap();
        p.send("quit\r").unwrap();
        p.expect(Eof).unwrap();
    })
    .await;
    drop(pty);
    until("the VIP is announced again", || {
        table.routes().contains(&vip)
    })
    .await;
    world.stop().await;
}
