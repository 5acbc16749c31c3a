//! `maglevd --demo` in-process: the embedded config is valid, the daemon
//! programs every demo VIP into the simulator with the primary pools
//! serving, counters reach the daemon, a taken port is named, and the
//! script plays on tokio time; its dataplane keeps a paused backend's
//! flows and cuts a disabled one's; its admin's password file is private;
//! it announces each VIP in memory and withdraws web when its last pool
//! is gone.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use maglev_bin::daemon::{Parts, Settings};
use maglev_bin::demo::{self, Demo, DemoOptions, Flap, HttpBackend, Script};
use maglev_core::config::Config;
use maglev_core::dataplane::VipKey;
use tokio_util::sync::CancellationToken;

/// How long any condition may take before the test fails. Generous: it
/// only bounds a hang, nothing is timed.
const PATIENCE: Duration = Duration::from_secs(30);

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if cond() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tick.tick().await;
    }
}

fn settings() -> Settings {
    let mut s = Settings::new("/nonexistent/replaced-by-the-demo.yaml");
    s.grpc_addr = Some("127.0.0.1:0".to_owned());
    s.metrics_addr = Some("127.0.0.1:0".to_owned());
    s.scrape_interval = Duration::from_millis(100);
    s.reconnect_interval = Duration::from_millis(100);
    s
}

fn quiet_options() -> DemoOptions {
    DemoOptions {
        port: 0,
        script: Script::default(),
        trickle: Duration::from_millis(20),
        ..DemoOptions::default()
    }
}

/// What each frontend of `config` should look like in VPP with every
/// backend up: every backend of every pool an AS, the first pool's at
/// weight 100 and the others at 0.
fn expected(config: &Config) -> BTreeMap<VipKey, Vec<(IpAddr, u8)>> {
    config
        .frontends()
        .values()
        .map(|fe| {
            let mut ases: Vec<(IpAddr, u8)> = fe
                .pools
                .iter()
                .enumerate()
                .flat_map(|(i, pool)| {
                    pool.backends.keys().map(move |name| {
                        let address = config.backend(name).unwrap().address;
                        (address, if i == 0 { 100 } else { 0 })
                    })
                })
                .collect();
            ases.sort();
            (fe.vip_key(), ases)
        })
        .collect()
}

/// Every VIP the simulator holds with its live ASes and their weights.
fn held(demo: &Demo) -> BTreeMap<VipKey, Vec<(IpAddr, u8)>> {
    demo.vpp().sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| {
                let mut ases: Vec<(IpAddr, u8)> = v
                    .ases
                    .iter()
                    .flatten()
                    .filter(|a| a.used)
                    .map(|a| (a.address, a.weight))
                    .collect();
                ases.sort();
                (v.key, ases)
            })
            .collect()
    })
}

#[test]
fn the_embedded_demo_config_is_valid_and_stays_on_loopback() {
    let config = demo::config().unwrap();
    assert_eq!(config.frontends().len(), 4);
    for (name, b) in config.backends() {
        assert!(b.address.is_loopback(), "backend {name} is {}", b.address);
    }
    // The VIPs are loopback too (the demo's forwarder plays VPP there), on
    // addresses no backend has.
    for (name, fe) in config.frontends() {
        assert!(
            fe.address.is_loopback(),
            "frontend {name} is {}",
            fe.address
        );
        assert!(
            config.backends().values().all(|b| b.address != fe.address),
            "frontend {name} shares its address with a backend"
        );
    }
    assert!(
        config.frontends().values().any(|fe| fe.address.is_ipv6()
            && fe
                .backend_names()
                .all(|b| config.backend(b).unwrap().address.is_ipv4())),
        "an IPv6 VIP with IPv4 backends"
    );
    assert!(
        config
            .frontends()
            .values()
            .any(|fe| fe.protocol.is_none() || fe.vip_key().protocol == 17),
        "an all-port or UDP frontend"
    );
    // It announces its VIPs (into memory, see below).
    assert!(config.announce().is_some(), "an announce section");
    // The copy the demo writes, with another port, is valid too.
    Config::from_yaml(&demo::config_yaml(40001), "written").unwrap();
}

#[test]
fn maglevd_check_accepts_the_demo_config_file() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/demo.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_maglevd"))
        .arg("--check")
        .arg("--config")
        .arg(&file)
        .env_remove("MAGLEV_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), demo::DEMO_YAML);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_programs_every_vip_and_counters_reach_the_daemon() {
    let demo = demo::start(settings(), Parts::default(), quiet_options())
        .await
        .unwrap();
    let handle = demo.handle().clone();
    let config = handle.config();
    let want = expected(&config);
    assert_eq!(want.len(), 4);

    // The config written names the port the backends got.
    let written = std::fs::read_to_string(demo.config_path()).unwrap();
    assert_eq!(written, demo::config_yaml(demo.port()));
    assert!(
        demo.backends()
            .values()
            .all(|b| b.addr().port() == demo.port())
    );

    until(
        "the simulator holds every demo VIP with its primary pool serving",
        || held(&demo) == want,
    )
    .await;

    until("counters of every demo VIP reach the daemon", || {
        handle.counters().is_some_and(|snap| {
            want.keys().all(|key| {
                snap.vips
                    .iter()
                    .any(|v| v.key == *key && v.stats.lb.first_packet + v.stats.lb.next_packet > 0)
            })
        })
    })
    .await;

    // The written copy is what SIGHUP reloads.
    let report = handle.reload().await;
    assert!(report.ok(), "{}", report.message());

    let welcome = demo.welcome();
    let grpc = demo.daemon().grpc_addrs()[0].port();
    assert!(
        welcome.contains(&format!("grpcurl -plaintext localhost:{grpc} list")),
        "{welcome}"
    );
    assert!(
        welcome.contains(&demo.config_path().display().to_string()),
        "{welcome}"
    );

    // Announcements are kept in memory, and the demo says so.
    assert!(demo.routes().in_memory(), "{}", demo.routes().describe());
    assert!(
        welcome.contains("announcements are kept in memory"),
        "{welcome}"
    );

    let dir = demo.dir().to_path_buf();
    demo.shutdown().await;
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_user_can_read_the_demo_admins_password_file() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = settings();
    s.http_addr = Some("127.0.0.1:0".to_owned());
    let demo = demo::start(s, Parts::default(), quiet_options())
        .await
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let file = demo
        .handle()
        .settings()
        .http_password_file
        .clone()
        .expect("the demo makes an admin");
    assert!(file.starts_with(demo.dir()));
    assert_eq!(mode(demo.dir()), 0o700, "{}", demo.dir().display());
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_backend_port_is_named() {
    // web3's address, on a port of its own.
    let taken = tokio::net::TcpListener::bind("127.0.0.13:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let options = DemoOptions {
        port,
        ..quiet_options()
    };
    let err = demo::start(settings(), Parts::default(), options)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("127.0.0.13:{port}")), "{msg}");
    assert!(msg.contains(&format!("port {port} must be free")), "{msg}");
}

#[tokio::test]
async fn run_stops_when_asked() {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut ready = None;
    demo::run(
        settings(),
        Parts::default(),
        quiet_options(),
        shutdown,
        |demo| {
            ready = Some(demo.config_path().to_path_buf());
            stop.cancel();
        },
    )
    .await
    .unwrap();
    let path = ready.expect("ready was called");
    assert!(!path.exists(), "{} is left behind", path.display());
}

#[tokio::test(start_paused = true)]
async fn the_script_plays_on_tokio_time() {
    let ip: IpAddr = "127.0.9.1".parse().unwrap();
    let backend = HttpBackend::start(SocketAddr::new(ip, 0)).await.unwrap();
    let flap = Flap {
        backends: vec!["x".to_owned()],
        first: Duration::from_secs(20),
        down: Duration::from_secs(8),
        period: Duration::from_secs(45),
    };
    let stop = CancellationToken::new();
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(demo::script::play(
        flap,
        vec![backend.clone()],
        stop.clone(),
    ));
    // Look half-way between whole seconds, so no look ties with an edge.
    let mut seen = Vec::new();
    let mut healthy = true;
    for s in 0..100u64 {
        tokio::time::sleep_until(start + Duration::from_millis(s * 1000 + 500)).await;
        if backend.is_healthy() != healthy {
            healthy = !healthy;
            seen.push((s, healthy));
        }
    }
    assert_eq!(seen, vec![(20, false), (28, true), (65, false), (73, true)]);
    tokio::time::sleep_until(start + Duration::from_millis(110_500)).await;
    assert!(!backend.is_healthy(), "down again from 110 s on");
    stop.cancel();
    task.await.unwrap();
    assert!(
        backend.is_healthy(),
        "the script leaves its backends healthy"
    );
    backend.stop();
}

/// One keepalive HTTP/1.1 connection to `vip`.
async fn connection(
    vip: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let tcp = tokio::net::TcpStream::connect(vip).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A GET on `sender`: who answered, or the error.
async fn served_by(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
) -> Result<String, hyper::Error> {
    use http_body_util::BodyExt;
    // The connection takes the next request once its task has finished
    // with the last one (sending before that fails with "not ready").
    sender.ready().await?;
    let req = hyper::Request::get("/")
        .header("host", "web")
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await?;
    let name = resp.headers()[demo::backends::SERVED_BY]
        .to_str()
        .unwrap()
        .to_owned();
    resp.into_body().collect().await?;
    Ok(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_a_vip_keeps_its_backend_when_paused_and_is_cut_when_disabled() {
    let demo = demo::start(settings(), Parts::default(), quiet_options())
        .await
        .unwrap();
    let want = expected(&demo.handle().config());
    until("the simulator serves every demo VIP", || {
        held(&demo) == want
    })
    .await;
    let web = demo
        .vips()
        .iter()
        .find(|(name, _)| name == "web")
        .map(|(_, addr)| *addr)
        .unwrap();

    let mut conn = connection(web).await;
    let first = served_by(&mut conn).await.unwrap();
    assert!(first == "web1" || first == "web2", "{first}");
    let address = demo.backends()[&first].addr().ip();
    let weight = |demo: &Demo| {
        demo.vpp().sim.with_model(|m| {
            m.vips()
                .filter(|(_, v)| v.used && v.key.address == web.ip())
                .flat_map(|(_, v)| v.ases.iter().flatten())
                .find(|a| a.address == address)
                .map(|a| a.weight)
        })
    };
    let flushed = |demo: &Demo| {
        demo.vpp().sim.with_model(|m| {
            m.flushes()
                .iter()
                .any(|(k, a)| k.address == web.ip() && *a == address)
        })
    };

    // Paused: drained to weight 0 without a flush, so the open flow stays.
    demo.handle().pause(&first).unwrap();
    until("the simulator drains the backend", || {
        weight(&demo) == Some(0)
    })
    .await;
    assert!(!flushed(&demo));
    assert_eq!(served_by(&mut conn).await.unwrap(), first);
    // A new connection goes to the other primary.
    let mut other = connection(web).await;
    let second = served_by(&mut other).await.unwrap();
    assert_ne!(second, first);

    // Disabled: flushed, and the open flow is cut.
    demo.handle().disable(&first).unwrap();
    until("the simulator flushes the backend", || flushed(&demo)).await;
    // The forwarder notices a flush within its poll; until then the
    // connection still answers, from the same backend.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while let Ok(b) = served_by(&mut conn).await {
        assert_eq!(b, first);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flushed flow's connection is never cut"
        );
        tick.tick().await;
    }
    assert_eq!(served_by(&mut other).await.unwrap(), second);
    demo.shutdown().await;
}

/// Each VIP's announcement as a gRPC client sees it: prefix to (frontends,
/// announced, reason).
async fn announcements(
    demo: &Demo,
) -> (
    maglev_bin::grpc::proto::ListAnnouncementsResponse,
    BTreeMap<String, (Vec<String>, bool, String)>,
) {
    use maglev_bin::grpc::proto::{ListAnnouncementsRequest, maglev_client::MaglevClient};
    let addr = demo.daemon().grpc_addrs()[0];
    let mut client = MaglevClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let reply = client
        .list_announcements(ListAnnouncementsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let by_prefix = reply
        .announcements
        .iter()
        .map(|a| {
            (
                a.prefix.clone(),
                (a.frontends.clone(), a.announced, a.reason.clone()),
            )
        })
        .collect();
    (reply, by_prefix)
}

/// Polls [`announcements`] until `cond` holds of them.
async fn until_announcements(
    demo: &Demo,
    what: &str,
    mut cond: impl FnMut(&BTreeMap<String, (Vec<String>, bool, String)>) -> bool,
) -> BTreeMap<String, (Vec<String>, bool, String)> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let (_, seen) = announcements(demo).await;
        if cond(&seen) {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}; last seen {seen:#?}"
        );
        tick.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_announces_each_vip_in_memory_and_withdraws_web_when_its_last_pool_is_gone() {
    use maglev_bin::announce::table::MemoryTable;
    use maglev_core::announce::Prefix;
    let table = std::sync::Arc::new(MemoryTable::new());
    let parts = Parts {
        routes: Some(table.clone()),
        ..Parts::default()
    };
    let demo = demo::start(settings(), parts, quiet_options())
        .await
        .unwrap();
    let config = demo.handle().config();
    // One prefix per VIP, named by its frontend.
    let prefixes: BTreeMap<String, String> = config
        .frontends()
        .iter()
        .map(|(name, fe)| (Prefix::host(fe.address).to_string(), name.clone()))
        .collect();
    assert_eq!(prefixes.len(), 4);
    let routes = |table: &MemoryTable| -> Vec<String> {
        table.routes().iter().map(ToString::to_string).collect()
    };

    // Every VIP serves: every prefix is announced, and its route is in the
    // demo's memory table.
    until_announcements(&demo, "every demo VIP is announced", |seen| {
        seen.len() == prefixes.len()
            && seen.iter().all(|(p, (fes, announced, reason))| {
                *announced && reason == "serving" && prefixes.get(p) == fes.first()
            })
    })
    .await;
    until("every VIP's route is in the memory table", || {
        routes(&table) == prefixes.keys().cloned().collect::<Vec<_>>()
    })
    .await;
    let (reply, _) = announcements(&demo).await;
    assert!(reply.enabled && reply.in_memory, "{reply:?}");
    assert_eq!(reply.table, "memory");

    // web's primary pool, then its fallback, fail: web and web6 (the same
    // pools) have nothing left, and only their prefixes are withdrawn.
    for b in ["web1", "web2", "web3"] {
        demo.backends()[b].set_healthy(false);
    }
    let web: Vec<&String> = prefixes
        .iter()
        .filter(|(_, fe)| fe.starts_with("web"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(web.len(), 2);
    let seen = until_announcements(&demo, "web and web6 are withdrawn", |seen| {
        web.iter().all(|p| {
            seen.get(*p)
                .is_some_and(|(_, a, r)| !a && r == "nothing-serves")
        })
    })
    .await;
    for (p, (_, announced, reason)) in &seen {
        if !web.contains(&p) {
            assert!(*announced, "{p} is {reason}");
        }
    }
    until("web's routes leave the memory table", || {
        let r = routes(&table);
        web.iter().all(|p| !r.contains(p)) && r.len() == prefixes.len() - web.len()
    })
    .await;

    // web3 comes back: announced again (after the minimum interval).
    demo.backends()["web3"].set_healthy(true);
    until_announcements(&demo, "web and web6 are announced again", |seen| {
        web.iter()
            .all(|p| seen.get(*p).is_some_and(|(_, a, r)| *a && r == "serving"))
    })
    .await;
    until("web's routes are back in the memory table", || {
        routes(&table).len() == prefixes.len()
    })
    .await;
    demo.shutdown().await;
}
