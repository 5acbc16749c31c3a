//! `/metrics` at scale: 10,000 backends in 625 frontends of two pools
//! (the scale SPEC's benchmark names), each backend with probe counters, a
//! duration histogram and a transition, where every family holds every
//! series once and nothing else; the default set's budget per backend and
//! per frontend at 2,000 frontends × 16 against the simulated VPP; and
//! concurrent scrapes sharing one rendering within the bound on the bodies
//! alive (the time a scrape takes is a benchmark's business, not a
//! test's).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use maglev_bin::daemon::{Daemon, Handle, Parts, Settings};
use maglev_bin::metrics::shared::MAX_BODIES;
use maglev_bin::metrics::{Families, Format, render, render_as, render_families};
use maglev_core::config::ProbeKind;
use maglev_health::{Code, ProbeRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Backends per frontend: two pools of eight.
const PER_FRONTEND: usize = 16;
const FRONTENDS: usize = 625;
const BACKENDS: usize = FRONTENDS * PER_FRONTEND;

fn backend_name(i: usize) -> String {
    format!("be-{i:05}")
}

/// Static backends (up without probing, so no probe traffic at all) in
/// `frontends` frontends of a primary and a fallback pool.
fn config(frontends: usize) -> String {
    let mut y = String::from(
        "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.254\n      \
         ipv6-src-address: 2001:db8::fe\n      startup-min-delay: 0s\n      \
         startup-max-delay: 0s\n  backends:\n",
    );
    for i in 0..frontends * PER_FRONTEND {
        let _ = writeln!(
            y,
            "    {}: {{ address: 10.{}.{}.{} }}",
            backend_name(i),
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    y.push_str("  frontends:\n");
    for f in 0..frontends {
        let base = f * PER_FRONTEND;
        let pool = |from: usize| {
            (from..from + PER_FRONTEND / 2)
                .map(|i| format!("{}: {{}}", backend_name(i)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            y,
            "    fe-{f:04}:\n      address: 198.18.{}.{}\n      protocol: tcp\n      port: 80\n      \
             pools:\n        - name: primary\n          backends: {{ {} }}\n        \
             - name: fallback\n          backends: {{ {} }}\n",
            f >> 8,
            f & 0xff,
            pool(base),
            pool(base + PER_FRONTEND / 2),
        );
    }
    y
}

/// Records what a running checker would have by now: three probes and a
/// transition per backend.
fn record_probes(handle: &Handle, backends: usize) {
    let observer = handle.metrics().probe_observer();
    for i in 0..backends {
        let name = backend_name(i);
        for n in 0..3u64 {
            observer.probe_ended(&ProbeRecord {
                backend: &name,
                address: [10, 0, 0, 1].into(),
                kind: ProbeKind::Http,
                code: Code::L7Ok,
                duration: Duration::from_micros(300 + 700 * n + i as u64 % 5000),
            });
        }
        handle.metrics().backend_transition(&name, "unknown", "up");
    }
}

/// A daemon over [`config`] of [`FRONTENDS`], VPP off, with `metrics`
/// served on loopback or not.
async fn daemon_without_vpp(dir: &tempfile::TempDir, metrics: bool) -> Daemon {
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config(FRONTENDS)).unwrap();
    let mut settings = Settings::new(&path);
    settings.grpc_addr = None;
    settings.metrics_addr = metrics.then(|| "127.0.0.1:0".to_owned());
    settings.vpp = None;
    let daemon = Daemon::start(settings, Parts::default()).await.unwrap();
    record_probes(daemon.handle(), BACKENDS);
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_backends_render_every_series_once() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_without_vpp(&dir, false).await;
    let handle = daemon.handle().clone();

    let text = render(&handle);
    let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("maglev_backend_state{"), BACKENDS * 6);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("maglev_backend_state{") && l.ends_with(" 1"))
            .count(),
        BACKENDS
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("maglev_backend_state{")
                && l.contains("state=\"up\"")
                && l.ends_with(" 1"))
            .count(),
        BACKENDS,
        "every static backend is up"
    );
    assert_eq!(count("maglev_backend_health{"), BACKENDS);
    assert_eq!(count("maglev_backend_enabled{"), BACKENDS);
    assert_eq!(count("maglev_frontend_state{"), FRONTENDS);
    assert_eq!(count("maglev_frontend_pool_backend_weight{"), BACKENDS);
    assert_eq!(
        count("maglev_frontend_pool_backend_effective_weight{"),
        BACKENDS
    );
    // The primary pools carry the traffic, the fallbacks stand by.
    assert_eq!(
        text.lines()
            .filter(
                |l| l.starts_with("maglev_frontend_pool_backend_effective_weight{")
                    && l.ends_with(" 100")
            )
            .count(),
        BACKENDS / 2
    );
    assert_eq!(count("maglev_probe_total{"), BACKENDS);
    assert_eq!(count("maglev_probe_duration_seconds_count{"), BACKENDS);
    assert_eq!(count("maglev_backend_transitions_total{"), BACKENDS);
    assert!(!text.contains("maglev_vpp_connected"));
    assert!(text.ends_with("# EOF\n"));

    // The text format has the same series.
    let plain = render_as(&handle, Format::Text);
    let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples(&plain), samples(&text));

    daemon.shutdown().await;
}

// ------------------------------------------------------------ over HTTP

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

/// The body of `GET path` over a fresh connection (closed after it).
async fn get(addr: SocketAddr, path: &'static str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {OPENMETRICS}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete HTTP reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// How long a condition at this scale may take: longer than
/// `common::PATIENCE`, as a full sync and a counter read of hundreds of
/// VIPs in a debug build on a loaded machine take their time. It only
/// bounds a hang; nothing is timed.
const SCALE_PATIENCE: Duration = Duration::from_secs(120);

/// Scrapes `path` until `cond` holds; fails after [`SCALE_PATIENCE`].
async fn get_until(
    addr: SocketAddr,
    path: &'static str,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + SCALE_PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let text = get(addr, path).await;
        if cond(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}; last scrape:\n{}",
            text.lines()
                .filter(|l| !l.contains("backend=") && !l.contains("frontend="))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tick.tick().await;
    }
}

/// Samples whose line starts with `prefix`.
fn count(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

/// Samples by whom they are about: a backend (a `backend` label), else a
/// frontend (a `frontend` label), else the daemon; and by sample name.
#[derive(Default, Debug)]
struct Census {
    per_backend: BTreeMap<String, usize>,
    per_frontend: BTreeMap<String, usize>,
    global: BTreeMap<String, usize>,
}

impl Census {
    fn of(text: &str) -> Census {
        let mut c = Census::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let end = line.find(['{', ' ']).expect("a sample");
            let (name, rest) = line.split_at(end);
            let labels = rest.split_once('}').map_or("", |(l, _)| l);
            let class = if labels.contains("backend=\"") {
                &mut c.per_backend
            } else if labels.contains("frontend=\"") {
                &mut c.per_frontend
            } else {
                &mut c.global
            };
            *class.entry(name.to_owned()).or_default() += 1;
        }
        c
    }

    fn names(&self) -> BTreeSet<&str> {
        [&self.per_backend, &self.per_frontend, &self.global]
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }
}

/// The default set's budget, as `docs/operations.md` writes it down: per
/// backend its state and its flaps (the 0/1 alarms `suppressed` and
/// `probe_blocked` add one each only for a backend they hold: none here);
/// per frontend its state, active pool, serving backends, four VIP packet
/// counters, two route counters, its table hash and drift, and its config
/// fingerprint.
const SERIES_PER_BACKEND: usize = 2;
const SERIES_PER_FRONTEND: usize = 12;
/// Series about the daemon itself (VPP link, syncs, API messages by kind,
/// listeners...): a constant, whatever the config.
const SERIES_GLOBAL: usize = 120;

/// Sample names of the detail families.
const DETAIL: [&str; 10] = [
    "maglev_probe_total",
    "maglev_probe_duration_seconds_bucket",
    "maglev_probe_duration_seconds_sum",
    "maglev_probe_duration_seconds_count",
    "maglev_backend_transitions_total",
    "maglev_backend_health",
    "maglev_backend_enabled",
    "maglev_frontend_pool_backend_weight",
    "maglev_frontend_pool_backend_effective_weight",
    "maglev_vpp_lb_buckets_moved_total",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_scrape_keeps_its_budget_and_the_detail_has_the_rest() {
    const FES: usize = 500;
    const BES: usize = FES * PER_FRONTEND;
    let mut world = common::World::new(137, 1).await;
    world.write_config(&config(FES));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    world.start(settings).await;
    let addr = world.daemon().metrics_addrs()[0];
    record_probes(world.handle(), BES);

    // Every VIP made in VPP and its counters read.
    let text = get_until(addr, "/metrics", "every VIP's counters are read", |t| {
        count(t, "maglev_vpp_lb_vip_packets_total{") == 4 * FES
            && count(t, "maglev_vpp_lb_vip_route_bytes_total{") == FES
    })
    .await;
    let census = Census::of(&text);
    let sum = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
    assert!(
        sum(&census.per_backend) <= SERIES_PER_BACKEND * BES,
        "{:?}",
        census.per_backend
    );
    for (name, n) in &census.per_backend {
        assert!(*n <= BES, "{name}: {n} series for {BES} backends");
    }
    assert!(
        sum(&census.per_frontend) <= SERIES_PER_FRONTEND * FES,
        "{:?}",
        census.per_frontend
    );
    assert!(sum(&census.global) <= SERIES_GLOBAL, "{:?}", census.global);
    for name in DETAIL {
        assert!(!census.names().contains(name), "{name} in the default set");
    }
    // What alerts and dashboards read is there: every backend's state
    // (only its current one), every frontend's state, pool and members.
    assert_eq!(count(&text, "maglev_backend_state{"), BES);
    let up = text
        .lines()
        .filter(|l| l.starts_with("maglev_backend_state{") && l.ends_with(r#"state="up"} 1"#))
        .count();
    assert_eq!(up, BES, "every static backend is up");
    assert_eq!(
        census.per_backend.get("maglev_backend_flaps_total"),
        Some(&BES)
    );
    let frontends_at = |name: &str, value: &str| {
        text.lines()
            .filter(|l| l.starts_with(name) && l.ends_with(&format!("}} {value}")))
            .count()
    };
    assert_eq!(frontends_at("maglev_frontend_state{", "1"), FES);
    assert_eq!(frontends_at("maglev_frontend_active_pool{", "0"), FES);
    assert_eq!(
        frontends_at("maglev_frontend_serving_backends{", "8"),
        FES,
        "the primary pool of eight serves"
    );

    // The detail endpoint has the rest, and nothing of the default set.
    let detail = get(addr, "/metrics/detail").await;
    let detail_census = Census::of(&detail);
    for name in [
        "maglev_probe_total",
        "maglev_probe_duration_seconds_count",
        "maglev_backend_transitions_total",
        "maglev_backend_health",
        "maglev_backend_enabled",
        "maglev_frontend_pool_backend_weight",
        "maglev_frontend_pool_backend_effective_weight",
    ] {
        assert_eq!(detail_census.per_backend.get(name), Some(&BES), "{name}");
    }
    for name in census.names() {
        assert!(!detail_census.names().contains(name), "{name} in both sets");
    }
    assert!(detail.ends_with("# EOF\n"));
    world.stop().await;
}

/// A scraper that sends its request and never reads: with a tiny receive
/// buffer, the reply stops in the socket buffers and its body stays alive.
async fn stalled_reader(addr: SocketAddr, path: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {OPENMETRICS}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_share_one_rendering_within_the_bound_on_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_without_vpp(&dir, true).await;
    let addr = daemon.metrics_addrs()[0];
    let renderings = daemon.handle().metrics().renderings();

    // Readers that stopped reading hold the bound: the detail (every
    // probe histogram, far more than the socket buffers take) of each is
    // alive until its connection goes.
    let mut stalled = Vec::new();
    for i in 1..=MAX_BODIES {
        stalled.push(stalled_reader(addr, "/metrics/detail").await);
        common::until("the stalled reader's body is rendered", || {
            renderings.rendered() == i as u64 && renderings.bodies_alive() == i
        })
        .await;
    }

    // Scrapers beyond the bound: one rendering waits for a body, and every
    // scrape joins it. As many as the listener's cap leaves room for, and
    // one address may open at once: more are turned away by the
    // listener's gate (`fd_budget` tests that).
    let text = render_families(daemon.handle(), Format::OpenMetrics, Families::Default);
    let cap: usize = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"maglev_listener_connection_limit{server="metrics"} "#))
        .and_then(|v| v.parse().ok())
        .expect("the metrics listener's cap");
    let scrapers_n = (cap - MAX_BODIES).min(12);
    assert!(scrapers_n >= 4, "a cap of {cap} leaves too little room");
    let scrapers: Vec<_> = (0..scrapers_n)
        .map(|_| tokio::spawn(get(addr, "/metrics")))
        .collect();
    common::until("every scrape waits on one rendering", || {
        renderings.scrapes_waiting() == scrapers_n && renderings.waiting() == 1
    })
    .await;
    assert_eq!(renderings.rendered(), MAX_BODIES as u64);
    assert_eq!(renderings.bodies_alive(), MAX_BODIES);

    // A stalled reader goes: its body is released, the rendering runs
    // once, and every scraper gets the whole of it.
    drop(stalled.pop());
    let mut bodies = Vec::new();
    for s in scrapers {
        bodies.push(s.await.unwrap());
    }
    assert_eq!(renderings.rendered(), MAX_BODIES as u64 + 1);
    assert!(bodies.iter().all(|b| b == &bodies[0]));
    assert!(bodies[0].ends_with("# EOF\n"));
    assert_eq!(count(&bodies[0], "maglev_backend_state{"), BACKENDS);
    assert_eq!(count(&bodies[0], "maglev_probe_total{"), 0);

    // The last one goes: nothing is held.
    drop(stalled);
    common::until("every body is released", || renderings.bodies_alive() == 0).await;
    // What the endpoint renders is what the library renders.
    let fresh = get(addr, "/metrics/detail").await;
    let direct = render_families(daemon.handle(), Format::OpenMetrics, Families::Detail);
    assert_eq!(Census::of(&fresh).names(), Census::of(&direct).names());
    daemon.shutdown().await;
}
