//! `/metrics` end to end: the real daemon against the simulated VPP with
//! real loopback backends, scraped over real HTTP on loopback. Checks what
//! SPEC §10 says the integration suite checks (every backend up, probe
//! counters, the duration histogram, pool weights, transition counters),
//! the VPP gauges and VIP counters while connected, their absence while
//! disconnected and with VPP off, the HTTP surface (formats, 404, 405),
//! and locks the exported names and label sets.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::{PATIENCE, World};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
      interval: 100ms
      timeout: 100ms
      rise: 2
      fall: 2
  backends:
    a: { address: 127.0.41.1, healthcheck: web }
    b: { address: 127.0.41.2, healthcheck: web }
    c: { address: 127.0.41.3, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.41
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { a: {}, b: { weight: 40 } }
        - name: fallback
          backends: { c: {} }
"#;

// ------------------------------------------------------------------ HTTP

/// One HTTP response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection (closed after the reply).
async fn request(addr: SocketAddr, method: &str, path: &str, accept: Option<&str>) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete HTTP reply");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.1";

/// One path's exposition.
async fn scrape_path(addr: SocketAddr, path: &str) -> Scrape {
    let reply = request(addr, "GET", path, Some(OPENMETRICS)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    Scrape::parse(&reply.body)
}

/// Every family: the default set of `/metrics` and the detail of
/// `/metrics/detail`, as one exposition.
async fn scrape(addr: SocketAddr) -> Scrape {
    let default = request(addr, "GET", "/metrics", Some(OPENMETRICS)).await;
    assert_eq!(default.status, 200, "{}", default.body);
    let detail = request(addr, "GET", "/metrics/detail", Some(OPENMETRICS)).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let head = default.body.strip_suffix("# EOF\n").expect("# EOF");
    Scrape::parse(&format!("{head}{}", detail.body))
}

/// Scrapes until `cond` holds of a scrape; fails after [`PATIENCE`].
async fn scrape_until(addr: SocketAddr, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        let s = scrape(addr).await;
        if cond(&s) {
            return s;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}; last scrape:\n{}", s.text);
        }
        tick.tick().await;
    }
}

// ----------------------------------------------------------- exposition

/// One sample line.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: `# TYPE` lines and samples.
struct Scrape {
    text: String,
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), ty.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                samples.push(parse_sample(line));
            }
        }
        Scrape {
            text: text.to_owned(),
            types,
            samples,
        }
    }

    /// The samples named `name` whose labels include every pair of `with`.
    fn find<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The one sample named `name` with exactly the labels `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels)
            .find(|s| s.labels.len() == labels.len())
            .map(|s| s.value)
    }

    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.find(name, with).map(|s| s.value).sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// `name{label,...}` of every sample and `# TYPE` of every family,
    /// one line each, sorted: what the names lock compares.
    fn shape(&self) -> String {
        let mut lines = BTreeSet::new();
        for (name, ty) in &self.types {
            lines.insert(format!("# TYPE {name} {ty}"));
        }
        for s in &self.samples {
            let keys: Vec<&str> = s
                .labels
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "le")
                .collect();
            lines.insert(format!("{}{{{}}}", s.name, keys.join(",")));
        }
        lines.into_iter().collect::<Vec<_>>().join("\n")
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => panic!("no value in {line:?}"),
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest;
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"").expect("label=\"value\"");
            let end = after.find('"').expect("a closing quote");
            labels.insert(
                key.trim_start_matches(',').to_owned(),
                after[..end].to_owned(),
            );
            inner = after[end + 1..].trim_start_matches(',');
        }
    }
    let value = rest.split_whitespace().next().expect("a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

// ----------------------------------------------------------------- tests

const BACKENDS: [&str; 3] = ["a", "b", "c"];
const STATES: [&str; 6] = ["unknown", "up", "down", "paused", "disabled", "removed"];

fn all_up(s: &Scrape) -> bool {
    BACKENDS
        .iter()
        .all(|b| s.value("maglev_backend_state", &[("backend", b), ("state", "up")]) == Some(1.0))
}

fn vip_packets(s: &Scrape) -> f64 {
    s.sum("maglev_vpp_lb_vip_packets_total", &[("frontend", "web")])
}

/// The exported families and label sets, default and detail together
/// (OpenMetrics names: counters' families without `_total`, their samples
/// with it). A change here is a change operators' dashboards see: update
/// it on purpose only. (`maglev_backend_suppressed{backend}` and
/// `maglev_backend_probe_blocked{backend}` have no sample here: the
/// default set lists only the backends they hold; the
/// `--metrics-detail` test sees their labels.)
const SHAPE: &str = "\
# TYPE maglev_announce_changes counter
# TYPE maglev_announce_errors counter
# TYPE maglev_backend_enabled gauge
# TYPE maglev_backend_flaps counter
# TYPE maglev_backend_health gauge
# TYPE maglev_backend_probe_blocked gauge
# TYPE maglev_backend_state gauge
# TYPE maglev_backend_suppressed gauge
# TYPE maglev_backend_transitions counter
# TYPE maglev_config_fingerprint gauge
# TYPE maglev_config_reloads counter
# TYPE maglev_frontend_active_pool gauge
# TYPE maglev_frontend_config_fingerprint gauge
# TYPE maglev_frontend_pool_backend_effective_weight gauge
# TYPE maglev_frontend_pool_backend_weight gauge
# TYPE maglev_frontend_serving_backends gauge
# TYPE maglev_frontend_state gauge
# TYPE maglev_grpc_requests counter
# TYPE maglev_grpc_writes counter
# TYPE maglev_listener_connection_limit gauge
# TYPE maglev_listener_connections gauge
# TYPE maglev_node_drained gauge
# TYPE maglev_probe counter
# TYPE maglev_probe_duration_seconds histogram
# TYPE maglev_probe_errors counter
# TYPE maglev_reconcile_errors counter
# TYPE maglev_sync_failures counter
# TYPE maglev_sync_full_pending gauge
# TYPE maglev_sync_last_full_success_timestamp_seconds gauge
# TYPE maglev_sync_oldest_pending_seconds gauge
# TYPE maglev_sync_pending_frontends gauge
# TYPE maglev_vip_announced gauge
# TYPE maglev_vpp_api counter
# TYPE maglev_vpp_connected gauge
# TYPE maglev_vpp_connected_seconds gauge
# TYPE maglev_vpp_info gauge
# TYPE maglev_vpp_lb_buckets_drift gauge
# TYPE maglev_vpp_lb_buckets_moved counter
# TYPE maglev_vpp_lb_table_hash gauge
# TYPE maglev_vpp_lb_vip_packets counter
# TYPE maglev_vpp_lb_vip_route_bytes counter
# TYPE maglev_vpp_lb_vip_route_packets counter
# TYPE maglev_vpp_lbsync counter
# TYPE maglev_vpp_read_errors counter
# TYPE maglev_vpp_uptime_seconds gauge
# TYPE maglev_warmup_phase gauge
maglev_announce_changes_total{action}
maglev_announce_errors_total{}
maglev_backend_enabled{backend}
maglev_backend_flaps_total{backend}
maglev_backend_health{backend}
maglev_backend_state{backend,state}
maglev_backend_transitions_total{backend,from,to}
maglev_config_fingerprint{node}
maglev_config_reloads_total{result}
maglev_frontend_active_pool{frontend}
maglev_frontend_config_fingerprint{frontend}
maglev_frontend_pool_backend_effective_weight{backend,frontend,pool}
maglev_frontend_pool_backend_weight{backend,frontend,pool}
maglev_frontend_serving_backends{frontend}
maglev_frontend_state{frontend}
maglev_grpc_requests_total{code,method}
maglev_grpc_writes_total{identity,result,rpc}
maglev_listener_connection_limit{server}
maglev_listener_connections{server}
maglev_node_drained{}
maglev_probe_duration_seconds_bucket{backend,type}
maglev_probe_duration_seconds_count{backend,type}
maglev_probe_duration_seconds_sum{backend,type}
maglev_probe_errors_total{reason}
maglev_probe_total{backend,code,result,type}
maglev_reconcile_errors_total{scope}
maglev_sync_failures_total{kind}
maglev_sync_full_pending{}
maglev_sync_last_full_success_timestamp_seconds{}
maglev_sync_oldest_pending_seconds{}
maglev_sync_pending_frontends{}
maglev_vip_announced{prefix}
maglev_vpp_api_total{direction,msg,result}
maglev_vpp_connected_seconds{}
maglev_vpp_connected{}
maglev_vpp_info{build_date,pid,version}
maglev_vpp_lb_buckets_drift{frontend}
maglev_vpp_lb_buckets_moved_total{frontend}
maglev_vpp_lb_table_hash{frontend}
maglev_vpp_lb_vip_packets_total{frontend,kind}
maglev_vpp_lb_vip_route_bytes_total{frontend}
maglev_vpp_lb_vip_route_packets_total{frontend}
maglev_vpp_lbsync_total{kind,scope}
maglev_vpp_read_errors_total{}
maglev_vpp_uptime_seconds{}
maglev_warmup_phase{}";

/// The families of `/metrics/detail`; every other family is in the
/// default set of `/metrics`. Moving a family between the two is a change
/// operators' scrape jobs see: update it on purpose only (and the table in
/// `docs/operations.md`).
const DETAIL_FAMILIES: [&str; 8] = [
    "maglev_backend_enabled",
    "maglev_backend_health",
    "maglev_backend_transitions",
    "maglev_frontend_pool_backend_effective_weight",
    "maglev_frontend_pool_backend_weight",
    "maglev_probe",
    "maglev_probe_duration_seconds",
    "maglev_vpp_lb_buckets_moved",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_backends_frontends_and_vpp() {
    let mut world = World::new(41, 3).await;
    // With announcements, into a table in memory.
    world.write_config(&CONFIG.replacen(
        "\n  backends:",
        "\n  announce:\n    table: 200\n  backends:",
        1,
    ));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    let routes = std::sync::Arc::new(maglev_bin::announce::table::MemoryTable::new());
    let parts = maglev_bin::daemon::Parts {
        routes: Some(routes.clone()),
        ..Default::default()
    };
    world.start_with(settings, parts).await;
    let addr = world.daemon().metrics_addrs()[0];
    assert!(addr.ip().is_loopback());

    let s = scrape_until(addr, "every backend is up and VIP counters moved", |s| {
        all_up(s)
            && vip_packets(s) > 0.0
            && s.value("maglev_vip_announced", &[("prefix", "192.0.2.41/32")]) == Some(1.0)
    })
    .await;
    assert_eq!(s.value("maglev_node_drained", &[]), Some(0.0));
    assert_eq!(
        s.value("maglev_announce_changes_total", &[("action", "announce")]),
        Some(1.0)
    );
    assert_eq!(s.value("maglev_announce_errors_total", &[]), Some(0.0));
    world.handle().set_drain(true, "alice").await.unwrap();
    let s = scrape(addr).await;
    assert_eq!(s.value("maglev_node_drained", &[]), Some(1.0));
    assert_eq!(
        s.value("maglev_vip_announced", &[("prefix", "192.0.2.41/32")]),
        Some(0.0)
    );
    assert_eq!(
        s.value("maglev_announce_changes_total", &[("action", "withdraw")]),
        Some(1.0)
    );
    world.handle().set_drain(false, "alice").await.unwrap();

    // The config fingerprints, exact in the float: the node's, labelled
    // with its name, and the frontend's, as gRPC's NodeInfo and
    // FrontendInfo carry them.
    let config = world.handle().config();
    let node = world.handle().settings().node_name.clone();
    assert!(!node.is_empty());
    assert_eq!(
        s.value("maglev_config_fingerprint", &[("node", node.as_str())]),
        Some(config.fingerprint() as f64)
    );
    assert_eq!(
        world.handle().node().config_fingerprint,
        config.fingerprint()
    );
    let web = config.frontend_fingerprint("web").expect("frontend web");
    assert_ne!(web, 0);
    assert_eq!(
        s.value("maglev_frontend_config_fingerprint", &[("frontend", "web")]),
        Some(web as f64)
    );

    // Every backend: up; the default set lists only the current state.
    for b in BACKENDS {
        for state in STATES {
            let want = (state == "up").then_some(1.0);
            assert_eq!(
                s.value("maglev_backend_state", &[("backend", b), ("state", state)]),
                want,
                "backend {b} state {state}"
            );
        }
        // rise 2 + fall 2 - 1: fully up.
        assert_eq!(
            s.value("maglev_backend_health", &[("backend", b)]),
            Some(3.0)
        );
        assert_eq!(
            s.value("maglev_backend_enabled", &[("backend", b)]),
            Some(1.0)
        );
        // Probe counters and the duration histogram have samples.
        let passes = s.value(
            "maglev_probe_total",
            &[
                ("backend", b),
                ("type", "http"),
                ("result", "pass"),
                ("code", "L7OK"),
            ],
        );
        assert!(
            passes.is_some_and(|n| n >= 1.0),
            "probes of {b}: {passes:?}"
        );
        let count = s.value(
            "maglev_probe_duration_seconds_count",
            &[("backend", b), ("type", "http")],
        );
        assert!(
            count.is_some_and(|n| n >= 1.0),
            "durations of {b}: {count:?}"
        );
        let inf = s
            .find(
                "maglev_probe_duration_seconds_bucket",
                &[("backend", b), ("le", "+Inf")],
            )
            .next()
            .map(|x| x.value);
        assert_eq!(inf, count, "the +Inf bucket of {b} holds every probe");
        // The transition that brought it up was counted.
        assert!(
            s.value(
                "maglev_backend_transitions_total",
                &[("backend", b), ("from", "unknown"), ("to", "up")]
            )
            .is_some_and(|n| n >= 1.0),
            "transition of {b}"
        );
    }

    // Pool weights: configured, and what maglev wants in VPP.
    let weight = |name: &str, pool: &str, b: &str| {
        s.value(name, &[("frontend", "web"), ("pool", pool), ("backend", b)])
    };
    let configured = "maglev_frontend_pool_backend_weight";
    let effective = "maglev_frontend_pool_backend_effective_weight";
    assert_eq!(weight(configured, "primary", "a"), Some(100.0));
    assert_eq!(weight(configured, "primary", "b"), Some(40.0));
    assert_eq!(weight(configured, "fallback", "c"), Some(100.0));
    assert_eq!(weight(effective, "primary", "a"), Some(100.0));
    assert_eq!(weight(effective, "primary", "b"), Some(40.0));
    assert_eq!(weight(effective, "fallback", "c"), Some(0.0));
    // The simulator agrees.
    assert_eq!(
        world.weights("192.0.2.41"),
        vec![
            ("127.0.41.1".to_owned(), 100),
            ("127.0.41.2".to_owned(), 40),
            ("127.0.41.3".to_owned(), 0)
        ]
    );
    assert_eq!(
        s.value("maglev_frontend_state", &[("frontend", "web")]),
        Some(1.0)
    );
    // The primary pool is active; a and b serve.
    assert_eq!(
        s.value("maglev_frontend_active_pool", &[("frontend", "web")]),
        Some(0.0)
    );
    assert_eq!(
        s.value("maglev_frontend_serving_backends", &[("frontend", "web")]),
        Some(2.0)
    );
    // Both delays 0: warm-up is off, so finished.
    assert_eq!(s.value("maglev_warmup_phase", &[]), Some(2.0));

    // VPP: connected, its identity, the changes made, the API traffic.
    assert_eq!(s.value("maglev_vpp_connected", &[]), Some(1.0));
    assert!(
        s.value("maglev_vpp_uptime_seconds", &[])
            .is_some_and(|v| v >= 0.0)
    );
    assert!(
        s.value("maglev_vpp_connected_seconds", &[])
            .is_some_and(|v| v >= 0.0)
    );
    let info: Vec<_> = s.find("maglev_vpp_info", &[]).collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].value, 1.0);
    assert!(!info[0].labels["version"].is_empty(), "{info:?}");
    assert!(info[0].labels["pid"].parse::<u32>().is_ok(), "{info:?}");
    assert!(
        s.sum("maglev_vpp_lbsync_total", &[("kind", "vip_added")]) >= 1.0,
        "{}",
        s.text
    );
    assert!(s.sum("maglev_vpp_lbsync_total", &[("kind", "as_added")]) >= 3.0);
    assert!(
        s.sum(
            "maglev_vpp_api_total",
            &[("direction", "send"), ("result", "success")]
        ) > 0.0
    );
    // VIP counters: the trickled packets, and the route counters beside.
    for kind in ["next", "first", "untracked", "no-server"] {
        assert!(
            s.value(
                "maglev_vpp_lb_vip_packets_total",
                &[("frontend", "web"), ("kind", kind)]
            )
            .is_some(),
            "kind {kind}"
        );
    }
    assert!(
        s.value(
            "maglev_vpp_lb_vip_route_packets_total",
            &[("frontend", "web")]
        )
        .is_some()
    );
    assert!(
        s.value(
            "maglev_vpp_lb_vip_route_bytes_total",
            &[("frontend", "web")]
        )
        .is_some()
    );

    // Counters bumped by the other layers: a reload (the real one) and a
    // gRPC request and a refused op as those layers report them.
    let handle = world.daemon().handle().clone();
    // A sync re-reads VPP, now holding the VIP: the drift series exists
    // from then on (the first read, before the VIP was made, had none).
    handle.sync(None).await.expect("a full sync");
    let report = handle.reload().await;
    assert!(report.semantic_error.is_none() && report.parse_error.is_none());
    handle
        .metrics()
        .grpc_request("ListFrontends", tonic::Code::NotFound);
    handle.metrics().grpc_write(
        "PauseBackend",
        "alice",
        maglev_bin::metrics::WriteResult::Denied,
    );
    handle.metrics().reconcile_error("vip");
    let s = scrape(addr).await;
    assert_eq!(
        s.value("maglev_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "maglev_grpc_requests_total",
            &[("method", "ListFrontends"), ("code", "NotFound")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value("maglev_reconcile_errors_total", &[("scope", "vip")]),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "maglev_grpc_writes_total",
            &[
                ("rpc", "PauseBackend"),
                ("identity", "alice"),
                ("result", "denied")
            ]
        ),
        Some(1.0)
    );

    // The names and label sets, locked.
    let shape = s.shape();
    assert_eq!(
        shape, SHAPE,
        "the exported metrics changed; if on purpose, update SHAPE to:\n{shape}"
    );
    // And which set each family is in: the two are disjoint.
    let families = |s: &Scrape| s.types.keys().cloned().collect::<BTreeSet<String>>();
    let default = families(&scrape_path(addr, "/metrics").await);
    let detail = families(&scrape_path(addr, "/metrics/detail").await);
    let want: BTreeSet<String> = DETAIL_FAMILIES.iter().map(|f| f.to_string()).collect();
    assert_eq!(detail, want);
    assert!(default.is_disjoint(&detail), "{default:?}");
    assert!(s.text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");

    // VPP goes away: `maglev_vpp_connected` says 0, the rest is left out.
    world.vpp.sim.stop().await;
    let s = scrape_until(addr, "VPP is seen disconnected", |s| {
        s.value("maglev_vpp_connected", &[]) == Some(0.0)
    })
    .await;
    for gone in [
        "maglev_vpp_uptime_seconds",
        "maglev_vpp_connected_seconds",
        "maglev_vpp_info",
        "maglev_vpp_lb_vip_packets_total",
        "maglev_vpp_lb_vip_route_packets_total",
        "maglev_vpp_lb_vip_route_bytes_total",
    ] {
        assert!(!s.has(gone), "{gone} while disconnected:\n{}", s.text);
        let family = gone.trim_end_matches("_total");
        assert!(!s.types.contains_key(family), "{family} while disconnected");
    }
    // Health is still reported.
    assert!(all_up(&s));

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_vpp_there_is_no_vpp_gauge() {
    let mut world = World::new(42, 3).await;
    world.write_config(&CONFIG.replace("127.0.41.", "127.0.42."));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    settings.vpp = None;
    world.start(settings).await;
    let addr = world.daemon().metrics_addrs()[0];
    let s = scrape_until(addr, "every backend is up", all_up).await;
    assert!(
        !s.samples.iter().any(|x| x.name.starts_with("maglev_vpp_")),
        "a maglev_vpp_ series with VPP off:\n{}",
        s.text
    );
    for gauge in [
        "maglev_vpp_connected",
        "maglev_vpp_uptime_seconds",
        "maglev_vpp_connected_seconds",
        "maglev_vpp_info",
        "maglev_vpp_lb_vip_packets",
    ] {
        assert!(!s.types.contains_key(gauge), "{gauge} with VPP off");
    }
    // The health side is all there.
    assert_eq!(
        s.value("maglev_frontend_state", &[("frontend", "web")]),
        Some(1.0)
    );
    assert!(s.has("maglev_probe_total"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_speaks_http_as_scrapers_expect() {
    let mut world = World::new(43, 3).await;
    world.write_config(&CONFIG.replace("127.0.41.", "127.0.43."));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    settings.vpp = None;
    world.start(settings).await;
    let addr = world.daemon().metrics_addrs()[0];
    scrape_until(addr, "every backend is up", all_up).await;

    // Prometheus asks for OpenMetrics and gets it.
    let om = request(addr, "GET", "/metrics", Some(OPENMETRICS)).await;
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"));

    // Anything else gets the Prometheus text format, with the same series.
    let text = request(addr, "GET", "/metrics", None).await;
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!text.body.contains("# EOF"));
    let names = |body: &str| -> BTreeSet<String> {
        Scrape::parse(body)
            .samples
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(names(&om.body), names(&text.body));
    let text = Scrape::parse(&text.body);
    assert_eq!(
        text.types
            .get("maglev_backend_flaps_total")
            .map(String::as_str),
        Some("counter")
    );
    assert!(all_up(&text));

    // The detail endpoint speaks the same formats.
    let detail = request(addr, "GET", "/metrics/detail", Some(OPENMETRICS)).await;
    assert_eq!(detail.status, 200);
    assert_eq!(
        detail.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(detail.body.ends_with("# EOF\n"));
    assert!(Scrape::parse(&detail.body).has("maglev_probe_total"));
    let detail = request(addr, "GET", "/metrics/detail", None).await;
    assert_eq!(detail.status, 200);
    assert!(Scrape::parse(&detail.body).has("maglev_probe_total"));

    // HEAD is GET without a body.
    let head = request(addr, "HEAD", "/metrics", None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    // Other paths are not found; other methods not allowed.
    let other = request(addr, "GET", "/", None).await;
    assert_eq!(other.status, 404);
    let other = request(addr, "GET", "/metrics/x", None).await;
    assert_eq!(other.status, 404);
    let other = request(addr, "GET", "/metrics/detail/x", None).await;
    assert_eq!(other.status, 404);
    let post = request(addr, "POST", "/metrics", None).await;
    assert_eq!(post.status, 405);
    assert!(post.header("allow").is_some_and(|a| a.contains("GET")));

    // Stopping the daemon closes the endpoint.
    let daemon = world.daemon.take().unwrap();
    daemon.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_detail_serves_every_family_on_metrics() {
    let mut world = World::new(45, 3).await;
    world.write_config(&CONFIG.replace("127.0.41.", "127.0.45."));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    settings.metrics_detail = true;
    settings.vpp = None;
    world.start(settings).await;
    let addr = world.daemon().metrics_addrs()[0];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let s = loop {
        let s = scrape_path(addr, "/metrics").await;
        if all_up(&s) && s.has("maglev_probe_total") {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until every backend is up; last scrape:\n{}",
            s.text
        );
        tick.tick().await;
    };
    // One path has it all, with the 0s of every state (with VPP off,
    // no bucket moves).
    for family in DETAIL_FAMILIES {
        if family != "maglev_vpp_lb_buckets_moved" {
            assert!(s.types.contains_key(family), "{family} not on /metrics");
        }
    }
    assert_eq!(
        s.value(
            "maglev_backend_state",
            &[("backend", "a"), ("state", "down")]
        ),
        Some(0.0)
    );
    assert_eq!(
        s.value("maglev_backend_suppressed", &[("backend", "a")]),
        Some(0.0)
    );
    // The detail endpoint still serves the detail alone.
    let detail = scrape_path(addr, "/metrics/detail").await;
    assert!(detail.has("maglev_probe_total"));
    assert!(!detail.has("maglev_backend_state"));
    world.stop().await;
}

/// Every sample with a label `key` of value `value`, by name.
fn labelled(s: &Scrape, key: &str, value: &str) -> BTreeSet<String> {
    s.samples
        .iter()
        .filter(|x| x.labels.get(key).map(String::as_str) == Some(value))
        .map(|x| x.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_forgets_the_series_of_what_it_removed() {
    let mut world = World::new(44, 3).await;
    let config = CONFIG.replace("127.0.41.", "127.0.44.");
    let api = r#"    api:
      address: 192.0.2.45
      protocol: tcp
      port: 80
      pools:
        - name: primary
          backends: { c: {} }
"#;
    world.write_config(&format!("{config}{api}"));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    world.start(settings).await;
    let addr = world.daemon().metrics_addrs()[0];
    let s = scrape_until(addr, "every backend is up, c's transition counted", |s| {
        all_up(s) && labelled(s, "backend", "c").contains("maglev_backend_transitions_total")
    })
    .await;
    assert!(labelled(&s, "backend", "c").contains("maglev_probe_total"));
    assert!(!labelled(&s, "frontend", "api").is_empty());

    // c and api go; nothing of theirs is exported any more.
    let without_c = config
        .replace("    c: { address: 127.0.44.3, healthcheck: web }\n", "")
        .replace(
            "        - name: fallback\n          backends: { c: {} }\n",
            "",
        );
    world.write_config(&without_c);
    let report = world.daemon().handle().reload().await;
    assert!(report.ok(), "{report:?}");
    let s = scrape_until(addr, "c's and api's series are gone", |s| {
        labelled(s, "backend", "c").is_empty() && labelled(s, "frontend", "api").is_empty()
    })
    .await;
    assert!(!labelled(&s, "backend", "a").is_empty(), "a stays");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_health_shows_pending_frontends_and_the_last_full_sync() {
    use maglev_vpp::sim::{Fault, FaultAction};
    let mut world = World::new(63, 3).await;
    world.write_config(&CONFIG.replace("127.0.41.", "127.0.63."));
    let mut settings = world.settings();
    settings.metrics_addr = Some("127.0.0.1:0".to_owned());
    world.start(settings).await;
    let addr = world.daemon().metrics_addrs()[0];
    let last_full = |s: &Scrape| {
        s.value("maglev_sync_last_full_success_timestamp_seconds", &[])
            .unwrap_or_default()
    };
    let s = scrape_until(addr, "a full sync succeeded", |s| {
        all_up(s) && last_full(s) > 0.0
    })
    .await;
    // A wall time (after 2020), not an uptime.
    assert!(last_full(&s) > 1.6e9, "{}", last_full(&s));
    assert_eq!(s.value("maglev_vpp_read_errors_total", &[]), Some(0.0));

    // VPP refuses every weight change; a goes down: web stays pending.
    world.vpp.sim.inject(Fault {
        message: Some("lb_as_set_weight"),
        action: FaultAction::Retval(-1),
        times: usize::MAX,
    });
    world.backends[0].set_healthy(false);
    let refused = |s: &Scrape| {
        s.value("maglev_sync_failures_total", &[("kind", "refused")])
            .unwrap_or_default()
    };
    let s = scrape_until(addr, "web is pending after a refusal", |s| {
        s.value("maglev_sync_pending_frontends", &[]) == Some(1.0) && refused(s) >= 1.0
    })
    .await;
    assert!(
        s.value("maglev_sync_oldest_pending_seconds", &[])
            .is_some_and(|v| v >= 0.0)
    );
    let pending = world.handle().sync_health().pending;
    assert!(pending.iter().all(|p| p.frontend == "web"), "{pending:?}");

    // VPP accepts again: web is synced and nothing is pending.
    world.vpp.sim.clear_faults();
    common::until("a is drained in VPP", || {
        world.weights("192.0.2.41")
            == vec![
                ("127.0.63.1".to_owned(), 0),
                ("127.0.63.2".to_owned(), 40),
                ("127.0.63.3".to_owned(), 0),
            ]
    })
    .await;
    scrape_until(addr, "web is synced", |s| {
        s.value("maglev_sync_pending_frontends", &[]) == Some(0.0)
            && s.value("maglev_sync_oldest_pending_seconds", &[]) == Some(0.0)
    })
    .await;
    world.stop().await;
}
