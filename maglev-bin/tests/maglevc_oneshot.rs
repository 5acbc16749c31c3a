//! maglevc one-shot mode against a real daemon on the simulator: every
//! command's output and exit code (0 ok, 1 server error, 2 usage error),
//! `--json` that parses, errors that print only the server's message,
//! and a stopped daemon; the node shown, drained and undrained against a
//! daemon whose routes go to a table the test keeps.

mod common;
mod maglevc_common;

use std::sync::Arc;

use common::{World, until, w};
use maglev_bin::announce::table::{MemoryTable, RouteTable};
use maglev_bin::daemon::Parts;
use maglevc_common::Run;

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
    a: { address: 127.0.41.1, healthcheck: web }
    b: { address: 127.0.41.2, healthcheck: web }
    c: { address: 127.0.41.3, healthcheck: web }
  frontends:
    web:
      description: the web VIP
      address: 192.0.2.10
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: {} }
        - name: fallback
          backends: { c: {} }
"#;

async fn maglevc(server: &str, args: &[&str]) -> Run {
    maglevc_env(server, args, &[]).await
}

async fn maglevc_env(server: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = Vec::new();
    if !server.is_empty() {
        all.extend(["--server", server]);
    }
    all.extend_from_slice(args);
    maglevc_common::maglevc(&all, env).await
}

/// The value of a key/value line `label  value`.
fn kv(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.strip_prefix(label)
                .filter(|rest| rest.starts_with("  "))
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// Runs a command that must succeed and returns its output.
async fn ok(server: &str, line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    let r = maglevc(server, &args).await;
    assert_eq!(r.code, 0, "{line}: stderr {}", r.stderr);
    assert!(r.stderr.is_empty(), "{line}: stderr {}", r.stderr);
    r.stdout
}

/// Runs a `--json` command and parses its output.
async fn json(server: &str, line: &str) -> serde_json::Value {
    let out = ok(server, &format!("{line} --json")).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line} --json: {e}: {out}"))
}

/// Runs a command that must fail with `code`; returns stderr.
async fn fails(server: &str, line: &str, code: i32) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    let r = maglevc(server, &args).await;
    assert_eq!(
        r.code, code,
        "{line}: stdout {} stderr {}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.is_empty(), "{line}: {}", r.stdout);
    assert!(
        !r.stderr.contains("rpc error") && !r.stderr.contains("Status {"),
        "{}",
        r.stderr
    );
    r.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_against_a_daemon() {
    let mut world = World::new(41, 3).await;
    world.write_config(CONFIG);
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    world.start(settings).await;
    let server = world.daemon().grpc_addrs()[0].to_string();
    let s = server.as_str();
    until("the primary pool carries the traffic", || {
        world.weights("192.0.2.10")
            == w(&[("127.0.41.1", 100), ("127.0.41.2", 100), ("127.0.41.3", 0)])
    })
    .await;
    until("every backend is up", || {
        ["a", "b", "c"]
            .iter()
            .all(|b| world.handle().backend_state(b) == maglev_core::state::BackendState::Up)
    })
    .await;
    until("a counter scrape", || world.handle().counters().is_some()).await;

    // show frontends, by any unambiguous prefix.
    let out = ok(s, "show frontends").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "ADDRESS",
            "PROTO",
            "PORT",
            "STATE",
            "ACTIVE-POOL",
            "UP"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["web", "192.0.2.10", "tcp", "80", "up", "primary", "3/3"]
    );
    assert!(
        !out.contains('\x1b'),
        "one-shot output is not colored by default"
    );
    assert_eq!(ok(s, "sh fr").await, out);
    let colored = maglevc(s, &["--color", "show", "frontends"]).await;
    assert!(
        colored.stdout.contains("\x1b[32mup\x1b[0m"),
        "{}",
        colored.stdout
    );
    let v = json(s, "show frontends").await;
    assert_eq!(v["frontends"][0]["name"], "web");
    assert_eq!(v["frontends"][0]["state"], "up");

    // show frontend: every member with weights and VPP buckets.
    let out = ok(s, "show frontend web").await;
    assert_eq!(kv(&out, "description"), "the web VIP", "{out}");
    assert_eq!(kv(&out, "src-ip-sticky"), "no", "{out}");
    assert!(out.contains("pool primary (active)"), "{out}");
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name}: {out}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let a = row("a");
    assert_eq!(a[..5], ["a", "127.0.41.1", "up", "100", "100"]);
    let buckets: u32 = row("a")[5].parse::<u32>().unwrap() + row("b")[5].parse::<u32>().unwrap();
    let sim = &world.vips()[0];
    assert_eq!(
        buckets as usize,
        sim.buckets.len(),
        "a and b own every bucket"
    );
    assert_eq!(row("c")[..6], ["c", "127.0.41.3", "up", "100", "0", "0"]);
    let v = json(s, "sh fronte web").await;
    assert_eq!(v["pools"][1]["backends"][0]["effective_weight"], 0);
    let e = fails(s, "show frontend nope", 1).await;
    assert_eq!(e, "no frontend named \"nope\"\n");

    // Backends and health checks.
    let out = ok(s, "show backends").await;
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("a "), "{out}");
    let out = ok(s, "sh b a").await;
    assert_eq!(kv(&out, "state"), "up", "{out}");
    assert_eq!(kv(&out, "healthcheck"), "web", "{out}");
    assert_eq!(kv(&out, "frontends"), "web", "{out}");
    assert!(out.contains("L7OK"), "{out}");
    assert_eq!(json(s, "show backends").await["backends"][2]["name"], "c");
    assert_eq!(json(s, "show backend b").await["address"], "127.0.41.2");
    let e = fails(s, "show backend nope", 1).await;
    assert!(e.contains("nope"), "{e}");
    let out = ok(s, "show healthchecks").await;
    assert!(out.lines().nth(1).unwrap().starts_with("web "), "{out}");
    let out = ok(s, "show healthcheck web").await;
    assert!(out.contains("type"), "{out}");
    assert_eq!(kv(&out, "backends"), "a, b, c", "{out}");
    assert_eq!(kv(&out, "interval"), "200ms", "{out}");
    assert_eq!(json(s, "show healthcheck web").await["rise"], 1);
    assert_eq!(
        json(s, "show healthchecks").await["healthchecks"][0]["type"],
        "http"
    );
    fails(s, "show healthcheck nope", 1).await;

    // VPP's view.
    let out = ok(s, "show vpp info").await;
    assert!(
        out.contains("version") && out.contains("connected"),
        "{out}"
    );
    assert!(json(s, "show vpp info").await["version"].is_string());
    let out = ok(s, "show vpp lb state").await;
    assert!(
        out.contains("vip 192.0.2.10/32 tcp/80 (frontend web)"),
        "{out}"
    );
    assert!(out.contains("127.0.41.1"), "{out}");
    let v = json(s, "show vpp lb state web").await;
    assert_eq!(v["vips"][0]["frontend"], "web");
    assert_eq!(v["vips"][0]["ases"].as_array().unwrap().len(), 3);
    let out = ok(s, "show vpp lb counters").await;
    assert!(out.contains("rates over"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("web ")), "{out}");
    assert!(
        json(s, "show vpp lb counters").await["scrape_unix_nanos"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(
        ok(s, "sync vpp lb state").await,
        "VPP already holds the desired state\n"
    );
    assert!(json(s, "sync vpp lb state web").await["ops"].is_array());
    fails(s, "sync vpp lb state nope", 1).await;
    assert_eq!(
        ok(s, "sync vpp lb state web dry-run").await,
        "VPP already holds the desired state: nothing to send\n"
    );

    // A weight change's dry run shows the buckets moving and sends nothing.
    let out = ok(
        s,
        "set frontend web pool primary backend b weight 0 dry-run",
    )
    .await;
    assert!(
        out.starts_with("dry run: 1 operations would be sent to VPP:\n")
            && out.contains("set as 127.0.41.2 weight 0 on 192.0.2.10/32 tcp/80")
            && out.contains("buckets move (")
            && out.contains("127.0.41.2 (b)"),
        "{out}"
    );
    let plan = json(
        s,
        "set frontend web pool primary backend b weight 0 dry-run",
    )
    .await;
    assert_eq!(plan["tables"][0]["frontend"], "web");
    assert!(plan["tables"][0]["buckets_moved"].as_u64().unwrap() > 0);
    assert_eq!(world.weights("192.0.2.10")[1], ("127.0.41.2".into(), 100));
    // show frontend: the table, its hash and a share bar per member.
    let out = ok(s, "show frontend web").await;
    assert!(
        out.contains("flow-table") && out.contains("1024 buckets (1024)"),
        "{out}"
    );
    assert!(out.contains("table-hash") && out.contains("#####"), "{out}");

    // Operator actions reach the simulator.
    assert_eq!(
        ok(s, "set backend a pause").await,
        "backend a is now paused\n"
    );
    until("a is drained", || {
        world.weights("192.0.2.10")[0] == ("127.0.41.1".into(), 0)
    })
    .await;
    let e = fails(s, "set backend a bogus", 2).await;
    assert!(e.contains("\"bogus\"") && e.contains("pause"), "{e}");
    assert_eq!(json(s, "set backend a resume").await["name"], "a");
    until("a is back", || {
        world.weights("192.0.2.10")[0] == ("127.0.41.1".into(), 100)
    })
    .await;
    let out = ok(s, "set frontend web pool primary backend b weight 50").await;
    assert_eq!(
        out,
        "frontend web pool primary backend b: weight 50, effective 50\n"
    );
    until("b weighs 50", || {
        world.weights("192.0.2.10")[1] == ("127.0.41.2".into(), 50)
    })
    .await;
    let out = ok(s, "se f web po primary b b w 40 fl").await;
    assert!(
        out.ends_with("weight 40, effective 40, flows flushed\n"),
        "{out}"
    );
    until("b is flushed", || {
        world
            .flushes()
            .contains(&("192.0.2.10".to_owned(), "127.0.41.2".to_owned()))
    })
    .await;
    let e = fails(s, "set frontend web pool primary backend b weight 101", 2).await;
    assert!(e.contains("\"101\"") && e.contains("0 to 100"), "{e}");
    let e = fails(s, "set frontend web pool nope backend b weight 1", 1).await;
    assert!(e.contains("nope"), "{e}");
    fails(s, "set backend nope disable", 1).await;

    // Config.
    let out = ok(s, "config check").await;
    assert!(out.ends_with("is valid\n"), "{out}");
    assert_eq!(json(s, "config check").await["ok"], true);
    assert!(ok(s, "config reload").await.ends_with("loaded\n"));
    std::fs::write(world.config_path(), "maglev: [").unwrap();
    let e = fails(s, "config check", 1).await;
    assert!(e.contains("has errors"), "{e}");
    let r = maglevc(s, &["config", "check", "--json"]).await;
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    world.write_config(CONFIG);

    // watch events: stops after `num`.
    let out = ok(s, "watch events num 1 frontend").await;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(" frontend web up -> up"), "{out}");
    let out = ok(s, "watch events num 1 frontend --json").await;
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["frontend"]["frontend"], "web");
    fails(s, "watch events num 0", 2).await;

    // Usage errors: exit 2, naming the word.
    let e = fails(s, "shwo frontends", 2).await;
    assert!(e.starts_with("unknown word \"shwo\": expected show"), "{e}");
    let e = fails(s, "s", 2).await;
    assert!(e.contains("it could be set, show or sync"), "{e}");
    fails(s, "show frontend", 2).await;
    fails("", "--bogus-flag", 2).await;

    // Local commands, the environment, help.
    assert!(ok(s, "show version").await.contains(maglev_bin::VERSION));
    assert!(json(s, "show version").await["maglevc"].is_string());
    assert!(
        ok(s, "help")
            .await
            .contains("show vpp lb counters [--json]")
    );
    let r = maglevc_env("", &["show", "frontends"], &[("MAGLEV_SERVER", s)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = maglevc_env(
        "",
        &["--color", "show", "frontend", "nope"],
        &[("NO_COLOR", "1")],
    )
    .await;
    assert_eq!(
        r.code, 1,
        "--server defaults to localhost:9090, nothing there"
    );
    assert!(
        r.stderr.contains("\x1b[31m"),
        "explicit --color wins over NO_COLOR"
    );

    // A stopped daemon: exit 1 and a message that says so.
    world.stop().await;
    let e = fails(s, "show frontends", 1).await;
    assert!(
        e.starts_with(&format!("cannot reach maglevd at {s}")),
        "{e}"
    );
}

#[test]
fn generated_completions_and_man_page_come_from_the_binary() {
    for (args, want) in [
        (vec!["--completions", "bash"], "maglevc"),
        (vec!["--completions", "zsh"], "#compdef maglevc"),
        (vec!["--completions", "fish"], "complete -c maglevc"),
        (vec!["--man"], ".SH COMMANDS"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_maglevc"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(want),
            "{args:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_are_shown_listed_and_cleared() {
    let mut world = World::new(136, 3).await;
    world.write_config(
        &CONFIG
            .replace("127.0.41.", "127.0.136.")
            .replace("192.0.2.10", "192.0.2.136"),
    );
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    world.start(settings).await;
    let server = world.daemon().grpc_addrs()[0].to_string();
    let s = server.as_str();
    let all_up = w(&[
        ("127.0.136.1", 100),
        ("127.0.136.2", 100),
        ("127.0.136.3", 0),
    ]);
    until("the primary pool carries the traffic", || {
        world.weights("192.0.2.136") == all_up
    })
    .await;
    assert_eq!(
        ok(s, "show overrides").await,
        "no overrides: everything is as the config file says\n"
    );

    ok(s, "set backend a disable").await;
    ok(s, "set frontend web pool primary backend b weight 10").await;
    until("a drained, b at 10", || {
        world.weights("192.0.2.136")
            == w(&[("127.0.136.1", 0), ("127.0.136.2", 10), ("127.0.136.3", 0)])
    })
    .await;

    // Who: the caller's audited identity (its address on plain gRPC).
    let a = ok(s, "show backend a").await;
    let o = kv(&a, "override");
    assert!(o.starts_with("disabled (by 127.0.0.1 "), "{o}");
    let b = ok(s, "show backend b").await;
    let o = kv(&b, "override");
    assert!(
        o.starts_with("web/primary: weight 10 (set by 127.0.0.1 ")
            && o.ends_with("; file says 100)"),
        "{o}"
    );
    let fe = ok(s, "show frontend web").await;
    let b_row: Vec<&str> = fe
        .lines()
        .find(|l| l.trim_start().starts_with("b "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(b_row[3], "10*", "{fe}");
    assert!(
        fe.contains("  * b: weight 10 set by 127.0.0.1 (file says 100; see show overrides)"),
        "{fe}"
    );
    let list = ok(s, "show overrides").await;
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["WHAT", "OVERRIDE", "BY", "AGO", "FILE", "SAYS"]);
    assert_eq!(rows[1][..3], ["a", "disabled", "127.0.0.1"]);
    assert_eq!(rows[1][4..], ["enabled"]);
    assert_eq!(rows[2][..4], ["web/primary/b", "weight", "10", "127.0.0.1"]);
    assert_eq!(rows[2][5..], ["weight", "100"]);
    let j = json(s, "show overrides").await;
    let kinds: Vec<&str> = j["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["disabled", "weight"]);

    let out = ok(s, "clear override frontend web pool primary backend b").await;
    assert!(
        out.starts_with("cleared: frontend web pool primary backend b weight 10"),
        "{out}"
    );
    ok(s, "clear override backend a").await;
    until("back to the file", || {
        world.weights("192.0.2.136") == all_up
    })
    .await;
    assert_eq!(
        ok(s, "show overrides").await,
        "no overrides: everything is as the config file says\n"
    );
    let err = fails(s, "clear override backend a", 1).await;
    assert!(err.contains(r#"no override of backend named "a""#), "{err}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_is_shown_drained_and_undrained() {
    let mut world = World::new(117, 3).await;
    world.write_config(&format!(
        "{}  announce:\n    table: 200\n    min-interval: 0s\n",
        CONFIG.replace("127.0.41", "127.0.117")
    ));
    let table = Arc::new(MemoryTable::new());
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    let parts = Parts {
        routes: Some(table.clone() as Arc<dyn RouteTable>),
        ..Parts::default()
    };
    world.start_with(settings, parts).await;
    until("the VIP is announced", || table.routes().len() == 1).await;
    let server = world.daemon().grpc_addrs()[0].to_string();
    let s = server.as_str();

    let out = ok(s, "show node").await;
    assert_eq!(kv(&out, "drain"), "not drained");
    assert_eq!(kv(&out, "table"), "memory");
    assert_eq!(kv(&out, "prefixes"), "1 of 1 announced");
    let node = json(s, "show node").await;
    assert_eq!(
        (&node["drained"], &node["announced"], &node["prefixes"]),
        (
            &serde_json::json!(false),
            &serde_json::json!(1),
            &serde_json::json!(1)
        )
    );

    // Drained: the table is empty when maglevc prints the node.
    let node = json(s, "set node drain").await;
    assert!(table.routes().is_empty(), "{:?}", table.routes());
    assert_eq!(node["drained"], true, "{node}");
    assert_eq!(node["drained_by"], "127.0.0.1", "{node}");
    assert_eq!(node["announced"], 0, "{node}");
    let out = ok(s, "show node").await;
    let drain = kv(&out, "drain");
    assert!(
        drain.starts_with("drained since ")
            && drain.ends_with(" by 127.0.0.1: every prefix withdrawn"),
        "{out}"
    );
    let list = json(s, "show announcements").await;
    assert_eq!(list["announcements"][0]["reason"], "drained", "{list}");
    assert_eq!(
        kv(&ok(s, "show frontend web").await, "announce"),
        "withdrawn (drained)"
    );
    // Undrained, in words this time.
    let out = ok(s, "set node undrain").await;
    assert_eq!(kv(&out, "drain"), "not drained");
    until("the VIP is announced again", || table.routes().len() == 1).await;

    // `watch events announce`: the drain and the withdraw. `frontend` too,
    // whose first line (web's state) says the watch is subscribed.
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglevc"))
        .args([
            "--server", s, "watch", "events", "frontend", "announce", "num", "3",
        ])
        .env_remove("MAGLEV_SERVER")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(watch.stdout.take().unwrap()));
    let next = async |lines: &mut tokio::io::Lines<_>| {
        tokio::time::timeout(common::PATIENCE, lines.next_line())
            .await
            .expect("a line from maglevc watch")
            .unwrap()
            .expect("maglevc watch printed fewer lines than asked")
    };
    let first = next(&mut lines).await;
    assert!(first.ends_with("frontend web up -> up"), "{first}");
    world.handle().set_drain(true, "carol").await.unwrap();
    let mut rest = vec![next(&mut lines).await, next(&mut lines).await];
    rest.sort_by_key(|l| l.contains(" node "));
    assert!(
        rest[0].ends_with("announce 192.0.2.10/32 (web) withdrawn (drained)"),
        "{rest:?}"
    );
    assert!(rest[1].ends_with("node drained by carol"), "{rest:?}");
    let status = tokio::time::timeout(common::PATIENCE, watch.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    world.stop().await;
}
