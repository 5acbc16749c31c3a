//! `maglevt` against the demo (the simulator, its dataplane on loopback
//! VIPs, and backends that name themselves in `x-served-by`): what the
//! JSON tallies is what each backend served; failing the primary pool
//! moves the tally to the fallback; the screen, in a pseudo-terminal, shows
//! every VIP and its tally, follows a resize, and `q` exits 0 with the
//! terminal restored. Plus keepalive, HTTPS and refusals of bad input.

mod common;
mod tls_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::until;
use expectrl::{Eof, Expect, Regex, Session};
use maglev_bin::daemon::{Parts, Settings};
use maglev_bin::demo::{self, Demo, DemoOptions, Script};
use maglev_bin::maglevt::stats::AnomalyKind;
use maglev_bin::maglevt::{self, Options};
use maglev_bin::transport::server::{Alpn, ServerTls};
use nix::sys::termios::LocalFlags;
use serde_json::Value;

/// maglevt's default URI: what the backends count its requests under.
const URI: &str = "/.well-known/ipng/healthz";

fn settings() -> Settings {
    let mut s = Settings::new("/nonexistent/replaced-by-the-demo.yaml");
    s.grpc_addr = None;
    s.metrics_addr = None;
    s
}

/// The demo on a free port, with no scripted failures; returned once every
/// TCP VIP has a backend in the simulator.
async fn demo() -> Demo {
    let options = DemoOptions {
        port: 0,
        script: Script::default(),
        ..DemoOptions::default()
    };
    let demo = demo::start(settings(), Parts::default(), options)
        .await
        .unwrap();
    assert_eq!(demo.vips().len(), 3, "web, web6 and app listen");
    until("the simulator serves every VIP", || serving(&demo) == 4).await;
    demo
}

/// How many VIPs of the simulator have a backend with buckets.
fn serving(demo: &Demo) -> usize {
    common::sim_vips(demo.vpp())
        .iter()
        .filter(|v| v.buckets.iter().any(Option::is_some))
        .count()
}

/// The backends of `vip` (an address) with a weight above 0.
fn weighted(demo: &Demo, vip: &str) -> Vec<String> {
    common::sim_vips(demo.vpp())
        .into_iter()
        .filter(|v| v.key.address.to_string() == vip)
        .flat_map(|v| v.ases)
        .filter(|(_, w)| *w > 0)
        .map(|(a, _)| a)
        .collect()
}

/// The name of the demo backend at `address`.
fn backend_at(demo: &Demo, address: &str) -> String {
    demo.backends()
        .iter()
        .find(|(_, b)| b.addr().ip().to_string() == address)
        .map(|(n, _)| n.clone())
        .unwrap()
}

fn served(demo: &Demo, names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| demo.backends()[*n].requests_to(URI))
        .sum()
}

async fn maglevt_json(args: Vec<String>) -> (Option<i32>, Vec<Value>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_maglevt"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_tally_is_what_each_backend_served() {
    let demo = demo().await;
    let config = demo.config_path().display().to_string();
    let (code, lines, stderr) = maglevt_json(args(&[
        "--config",
        &config,
        "--header",
        "x-served-by",
        "--json",
        "--interval",
        "20ms",
        "--count",
        "40",
        "--report-interval",
        "0",
    ]))
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        lines.len(),
        1,
        "only the final summary with --report-interval 0"
    );
    let summary = &lines[0];
    assert_eq!(summary["final"], true);
    let vips = summary["vips"].as_array().unwrap();
    let names: Vec<&str> = vips.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "web", "web6"]);
    assert_eq!(summary["skipped"][0]["name"], "dns");

    let mut tallied: BTreeMap<String, u64> = BTreeMap::new();
    for v in vips {
        assert_eq!(v["n"], 40, "{v}");
        assert_eq!(v["fail"], 0, "{v}");
        let mut answers = 0;
        for t in v["tally"].as_array().unwrap() {
            *tallied
                .entry(t["value"].as_str().unwrap().to_owned())
                .or_default() += t["count"].as_u64().unwrap();
            answers += t["count"].as_u64().unwrap();
        }
        assert_eq!(answers, 40, "every probe was answered and tallied: {v}");
    }
    // What maglevt counted per backend is what each backend counted, and
    // only the backends the simulator weighted answered.
    let served: BTreeMap<String, u64> = demo
        .backends()
        .iter()
        .map(|(n, b)| (n.clone(), b.requests_to(URI)))
        .filter(|(_, c)| *c > 0)
        .collect();
    assert_eq!(tallied, served);
    let primaries = ["web1", "web2", "app1", "app2"];
    assert!(
        served.keys().all(|b| primaries.contains(&b.as_str())),
        "{served:?}"
    );
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_the_primary_pool_moves_the_tally_to_the_fallback() {
    let demo = demo().await;
    let options = Options {
        configs: vec![demo.config_path().to_owned()],
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        host: None,
        uri: URI.to_owned(),
        header: Some("x-served-by".to_owned()),
        insecure: false,
        keepalive: false,
        filter: Some("^web$".to_owned()),
        json: true,
        report_interval: Duration::ZERO,
        count: None,
        duration: None,
    };
    let p = maglevt::prepare(&options).unwrap();
    assert_eq!(p.targets.probed.len(), 1);
    let session = maglevt::Session::start(p.targets, &p.settings, p.schedule).unwrap();
    let recent = |session: &maglevt::Session| -> Vec<String> {
        session.snapshot(0).vips[0]
            .stats
            .tally
            .iter()
            .filter(|t| t.recent)
            .map(|t| t.value.clone())
            .collect()
    };
    until("the primaries answer", || {
        let r = recent(&session);
        !r.is_empty() && r.iter().all(|b| b == "web1" || b == "web2")
    })
    .await;

    for b in ["web1", "web2"] {
        demo.backends()[b].set_healthy(false);
    }
    until("the simulator fails web over to web3", || {
        weighted(&demo, "127.0.1.10") == ["127.0.0.13"]
    })
    .await;
    assert_eq!(backend_at(&demo, "127.0.0.13"), "web3");
    until("maglevt sees only web3 answer (web1 and web2 dim)", || {
        recent(&session) == ["web3"]
    })
    .await;
    // And the backends agree: from now on only web3 is reached.
    let failed = served(&demo, &["web1", "web2"]);
    let fallback = served(&demo, &["web3"]);
    until("web3 serves ten more probes", || {
        served(&demo, &["web3"]) >= fallback + 10
    })
    .await;
    assert_eq!(served(&demo, &["web1", "web2"]), failed);

    let snap = session.snapshot(100);
    let tally: BTreeMap<&str, (u64, bool)> = snap.vips[0]
        .stats
        .tally
        .iter()
        .map(|t| (t.value.as_str(), (t.count, t.recent)))
        .collect();
    assert!(
        !tally["web1"].1 && !tally["web2"].1 && tally["web3"].1,
        "{tally:?}"
    );
    // HTTP errors on the way (the primaries' 503s) name who gave them.
    for e in snap
        .errors
        .iter()
        .filter(|e| e.kind == AnomalyKind::HttpErr)
    {
        assert!(
            e.detail.contains("from web1") || e.detail.contains("from web2"),
            "{e:?}"
        );
    }
    session.stop().await;
    demo.shutdown().await;
}

type Pty = expectrl::session::OsSession;

/// Feeds what the pty printed into `screen` until `done` holds of it; the
/// bytes read. Fails on EOF or after the patience.
fn read_until(
    pty: &mut Pty,
    screen: &mut vt100::Parser,
    what: &str,
    done: impl Fn(&vt100::Screen) -> bool,
) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    let mut seen = Vec::new();
    while !done(screen.screen()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}; the screen:\n{}",
            screen.screen().contents()
        );
        let got = pty
            .expect(Regex("(?s-u).+"))
            .unwrap_or_else(|e| panic!("{what}: {e}; the screen:\n{}", screen.screen().contents()));
        screen.process(got.as_bytes());
        seen.extend_from_slice(got.as_bytes());
    }
    seen
}

fn row(screen: &vt100::Screen, needle: &str) -> Option<(u16, String)> {
    let (_, cols) = screen.size();
    screen
        .rows(0, cols)
        .enumerate()
        .find(|(_, r)| r.contains(needle))
        .map(|(i, r)| (i as u16, r))
}

fn local_flags(pty: &Pty) -> LocalFlags {
    let fd = pty.get_process().get_raw_handle().unwrap();
    nix::sys::termios::tcgetattr(&fd).unwrap().local_flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_shows_every_vip_follows_a_resize_and_q_restores_the_terminal() {
    let demo = demo().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maglevt"));
    cmd.args(["--config"])
        .arg(demo.config_path())
        .args(["--header", "x-served-by", "--interval", "50ms"])
        .env("TERM", "xterm-256color");
    let mut pty: Pty = Session::spawn(cmd).expect("maglevt starts in a pty");
    pty.get_process_mut().set_window_size(140, 30).unwrap();
    pty.set_expect_timeout(Some(common::PATIENCE));

    let pty = tokio::task::spawn_blocking(move || {
        let mut pty = pty;
        let mut screen = vt100::Parser::new(30, 140, 0);
        read_until(&mut pty, &mut screen, "every VIP and its tally show", |s| {
            let tally = |vip: &str, backends: &[&str]| {
                row(s, vip).is_some_and(|(y, _)| {
                    let below = s.rows(0, 140).nth(y as usize + 1).unwrap_or_default();
                    backends.iter().any(|b| below.contains(&format!("{b} ")))
                })
            };
            s.alternate_screen()
                && row(s, "maglevt").is_some()
                && tally("127.0.1.10:", &["web1", "web2"])
                && tally("[::1]:", &["web1", "web2"])
                && tally("127.0.1.20:", &["app1", "app2"])
                && row(s, "not probed: dns").is_some()
                && row(s, "errors: timeout 0").is_some()
        });
        let screen_text = screen.screen().contents();
        assert!(screen_text.contains("VIP"), "{screen_text}");
        assert!(screen.screen().hide_cursor());
        let raw = local_flags(&pty);
        assert!(
            !raw.intersects(LocalFlags::ICANON | LocalFlags::ISIG),
            "raw mode while running: {raw:?}"
        );

        // A smaller terminal: the frame is redrawn to its width.
        pty.get_process_mut().set_window_size(100, 24).unwrap();
        screen.screen_mut().set_size(24, 100);
        read_until(&mut pty, &mut screen, "the box is redrawn 100 wide", |s| {
            s.cell(1, 99).is_some_and(|c| c.contents() == "┐") && row(s, "127.0.1.10:").is_some()
        });

        pty.send("q").unwrap();
        let mut rest = Vec::new();
        let _ = pty
            .expect(Eof)
            .map(|c| rest.extend_from_slice(c.as_bytes()));
        screen.process(&rest);
        assert!(
            !screen.screen().alternate_screen(),
            "back on the main screen"
        );
        assert!(!screen.screen().hide_cursor(), "the cursor is shown");
        (pty, screen.screen().contents())
    })
    .await
    .unwrap();
    let (pty, _) = pty;
    let status = pty.get_process().wait().unwrap();
    assert_eq!(
        format!("{status:?}"),
        format!("Exited(Pid({}), 0)", pty.get_process().pid()),
        "q exits 0"
    );
    let flags = local_flags(&pty);
    // What raw mode clears is back (ECHO the pty had off from the start).
    let cooked = LocalFlags::ICANON | LocalFlags::ISIG | LocalFlags::IEXTEN;
    assert!(
        flags.contains(cooked),
        "the terminal is cooked again: {flags:?}"
    );
    demo.shutdown().await;
}

/// A loopback HTTP/1.1 server that keeps connections open, names itself
/// `one` and counts the connections it accepted.
async fn keepalive_server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(answer(tcp, "one"));
        }
    });
    (addr, accepted)
}

fn config_for(dir: &std::path::Path, addr: SocketAddr, check: &str) -> String {
    let path = dir.join("maglev.yaml");
    let yaml = format!(
        r#"
maglev:
  healthchecks:
    check: {{ type: {check}, port: {port} }}
  backends:
    b1: {{ address: 127.0.0.2, healthcheck: check }}
  frontends:
    vip:
      address: {ip}
      protocol: tcp
      port: {port}
      pools: [{{ name: p, backends: {{ b1: {{}} }} }}]
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_reuses_connections_and_without_it_each_probe_is_new() {
    let dir = tempfile::tempdir().unwrap();
    for (keepalive, want) in [(true, None), (false, Some(10))] {
        let (addr, accepted) = keepalive_server().await;
        let config = config_for(dir.path(), addr, "http");
        let mut a = args(&[
            "--config",
            &config,
            "--json",
            "--count",
            "10",
            "--interval",
            "100ms",
            "--timeout",
            "100ms",
            "--header",
            "x-served-by",
        ]);
        if keepalive {
            a.push("--keepalive".into());
        }
        let (code, lines, stderr) = maglevt_json(a).await;
        assert_eq!(code, Some(0), "{stderr}");
        let last = lines.last().unwrap();
        assert_eq!(last["vips"][0]["n"], 10);
        assert_eq!(last["vips"][0]["tally"][0]["value"], "one");
        assert_eq!(last["vips"][0]["tally"][0]["count"], 10, "{last}");
        let n = accepted.load(Ordering::Relaxed);
        match want {
            Some(w) => assert_eq!(n, w, "a new connection per probe"),
            // At most two probes are in flight at once (100 ms timeout
            // over a 100 ms interval), so at most two connections.
            None => assert!(n <= 2, "{n} connections for 10 keepalive probes"),
        }
    }
}

/// Answers HTTP/1.1 requests on `io`, as `name` in `x-served-by`, until
/// the client closes.
async fn answer<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: T, name: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            let answer =
                format!("HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-served-by: {name}\r\n\r\nok\n");
            if io.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_vips_are_verified_unless_insecure() {
    let pki = tls_common::Pki::new();
    let tls = ServerTls::load(pki.server_files(false)).unwrap();
    let acceptor = tls.acceptor(Alpn::Http1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    answer(stream, "tls").await;
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), addr, "https");
    let run = |extra: &[&str]| {
        let mut a = args(&[
            "--config",
            &config,
            "--json",
            "--count",
            "3",
            "--interval",
            "20ms",
            "--header",
            "x-served-by",
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        maglevt_json(a)
    };
    // The test CA is not the system's: every probe fails verification.
    let (code, lines, stderr) = run(&[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let vip = &lines.last().unwrap()["vips"][0];
    assert_eq!(vip["probe"], "https");
    assert_eq!(vip["fail"], 3, "{vip}");
    assert_eq!(vip["last"], "tls-err", "{vip}");
    assert_eq!(vip["anomalies"]["net_err"], 3, "{vip}");
    // --insecure takes the certificate, and --host is the SNI and Host.
    let (code, lines, stderr) = run(&["--insecure", "--host", "localhost"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let vip = &lines.last().unwrap()["vips"][0];
    assert_eq!(vip["ok"], 3, "{vip}");
    assert_eq!(vip["tally"][0]["value"], "tls", "{vip}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_vips_get_a_connect_and_a_closed_port_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, accepted) = keepalive_server().await;
    let config = config_for(dir.path(), addr, "tcp");
    let a = args(&[
        "--config",
        &config,
        "--json",
        "--count",
        "4",
        "--interval",
        "20ms",
    ]);
    let (code, lines, stderr) = maglevt_json(a).await;
    assert_eq!(code, Some(0), "{stderr}");
    let vip = &lines.last().unwrap()["vips"][0];
    assert_eq!(
        (vip["probe"].as_str(), vip["ok"].as_u64()),
        (Some("tcp"), Some(4)),
        "{vip}"
    );
    assert_eq!(vip["last"], "open");
    assert_eq!(accepted.load(Ordering::Relaxed), 4);
    // A port nobody listens on (taken, then given back).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = config_for(dir.path(), closed, "tcp");
    let a = args(&[
        "--config",
        &config,
        "--json",
        "--count",
        "2",
        "--interval",
        "20ms",
    ]);
    let (code, lines, stderr) = maglevt_json(a).await;
    assert_eq!(code, Some(0), "{stderr}");
    let vip = &lines.last().unwrap()["vips"][0];
    assert_eq!(vip["fail"], 2, "{vip}");
    assert_eq!(vip["last"], "refused", "{vip}");
    assert_eq!(lines.last().unwrap()["errors"]["net_err"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_config_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "maglev:\n  frontends: [\n").unwrap();
    let bad = bad.display().to_string();
    let missing = dir.path().join("missing.yaml").display().to_string();
    let (addr, _) = keepalive_server().await;
    let good = config_for(dir.path(), addr, "http");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (args(&["--config", &bad, "--json"]), "bad.yaml"),
        (args(&["--config", &missing, "--json"]), "missing.yaml"),
        (
            args(&["--config", &good, "--json", "--filter", "("]),
            "--filter",
        ),
        (
            args(&["--config", &good, "--json", "--filter", "^nothing$"]),
            "matches no",
        ),
        (
            args(&["--config", &good, "--json", "--uri", "http://x/"]),
            "--uri",
        ),
        (
            args(&["--config", &good, "--json", "--header", "bad header"]),
            "--header",
        ),
        (
            args(&["--config", &good, "--json", "--interval", "0s"]),
            "--interval",
        ),
        (args(&["--config", &good, "--interval", "soon"]), "soon"),
        // Not a terminal and no --json.
        (args(&["--config", &good]), "--json"),
    ];
    for (a, needle) in cases {
        let (code, _, stderr) = maglevt_json(a.clone()).await;
        assert_eq!(code, Some(2), "{a:?}: {stderr}");
        assert!(stderr.contains(needle), "{a:?} names {needle}: {stderr}");
    }
}
