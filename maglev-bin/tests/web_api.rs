//! The dashboard's HTTP side against a daemon on the simulator: the page
//! and its files; the summary the page loads first, a frontend's detail,
//! the counters of chosen frontends (and bad queries refused); who may act (every mutating endpoint 403 for a reader
//! and without the CSRF token, changing nothing; an admin's actions reach
//! the simulator and the audit counter); the login challenge; and the
//! event stream (a reconnect with `Last-Event-ID` gets exactly the events
//! it missed; an id of another epoch gets `resync`); failed logins are
//! limited per peer, and password checks do not hold up gRPC; with an
//! announce section, the summary and a frontend's detail carry its
//! announcement, and an admin drains and undrains the node.

mod common;
mod grpc_common;
mod web_common;

use http_body_util::BodyExt;
use hyper::body::Incoming;

use common::{PATIENCE, until, w};
use web_common::{ADMIN, basic, call, send, state, web};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let world = web_common::start(91).await;
    let addr = web(&world);
    let page = send(addr, web_common::request("GET", "/", &[], "")).await;
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = String::from_utf8(
        page.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    // Every file the page names is served; nothing comes from elsewhere.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for name in maglev_bin::web::assets::FILES.iter().map(|(n, _)| *n) {
        let (status, _) = call(addr, "GET", &format!("/assets/{name}"), &[], "").await;
        assert_eq!(status, 200, "{name}");
    }
    assert_eq!(call(addr, "GET", "/assets/nope.js", &[], "").await.0, 404);
    assert_eq!(
        call(addr, "GET", "/healthz", &[], "").await,
        (200, "ok\n".to_owned())
    );
    let (status, body) = call(addr, "GET", "/api/nope", &[], "").await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"error":"no such path"}"#)
    );

    let s = state(addr, &[]).await;
    let names: Vec<&str> = s["frontends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(s["backends"].as_array().unwrap().len(), 4);
    assert_eq!(s["session"]["admin"], false);
    assert_eq!(s["session"]["login"], true);
    assert!(s["vpp"]["version"].is_string(), "{}", s["vpp"]);
    // The dashboard's sync-health line reads these.
    for field in [
        "sync_pending",
        "read_errors",
        "sync_failures_refused",
        "last_full_sync_ns",
    ] {
        assert!(!s["vpp"][field].is_null(), "{field} in {}", s["vpp"]);
    }
    let (status, body) = call(addr, "GET", "/api/backends/a", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""name":"a""#), "{body}");
    assert_eq!(
        call(addr, "GET", "/api/backends/nope", &[], "").await.0,
        404
    );
    summary_and_detail(addr).await;
    world.stop().await;
}

/// What the page loads first: every frontend in brief (a fixed set of
/// fields, no members), one frontend's pools and backends on demand, and
/// the counters of the frontends it names; bad input is said.
async fn summary_and_detail(addr: std::net::SocketAddr) {
    // The world waits for the VIPs' weights, where the fallback's c has 0
    // up or not: wait for its first probe too (c up).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let s = loop {
        let (status, body) = call(addr, "GET", "/api/summary", &[], "").await;
        assert_eq!(status, 200, "{body}");
        let s: serde_json::Value = serde_json::from_str(&body).unwrap();
        if s["frontends"][1]["up"] == 3 {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until web's three backends are up: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(s["total"], 2);
    assert_eq!(s["session"]["admin"], false);
    assert!(s["event_id"].is_string());
    assert_eq!(s["vpp"]["sync_pending_count"], 0, "{}", s["vpp"]);
    // No announce section: the node says so, the frontends carry no
    // announcement (the keys below).
    assert_eq!(s["node"]["announce_enabled"], false, "{}", s["node"]);
    assert_eq!(s["node"]["drained"], false, "{}", s["node"]);
    let web = &s["frontends"][1];
    let keys: Vec<&str> = web
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "active_pool",
            "address",
            "backends",
            "name",
            "pools",
            "port",
            "protocol",
            "serving",
            "state",
            "up"
        ]
    );
    assert_eq!(
        (
            &web["name"],
            &web["address"],
            &web["protocol"],
            &web["port"]
        ),
        (
            &serde_json::json!("web"),
            &serde_json::json!("192.0.2.91"),
            &serde_json::json!("tcp"),
            &serde_json::json!(80)
        )
    );
    assert_eq!(
        (
            &web["active_pool"],
            &web["serving"],
            &web["up"],
            &web["backends"],
            &web["pools"]
        ),
        (
            &serde_json::json!("primary"),
            &serde_json::json!(2),
            &serde_json::json!(3),
            &serde_json::json!(3),
            &serde_json::json!(2)
        ),
        "{web}"
    );

    let (status, body) = call(addr, "GET", "/api/frontends/web", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["frontend"]["name"], "web");
    assert_eq!(d["frontend"]["pools"].as_array().unwrap().len(), 2);
    let names: Vec<&str> = d["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let (status, body) = call(addr, "GET", "/api/frontends/nope", &[], "").await;
    assert_eq!(status, 404);
    assert!(body.contains("nope"), "{body}");

    // Counters: only the frontends named (none known: none).
    until_counters(addr).await;
    let (status, body) = call(addr, "GET", "/api/counters?frontend=web", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let c: serde_json::Value = serde_json::from_str(&body).unwrap();
    let vips: Vec<&str> = c["vips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["frontend"].as_str().unwrap())
        .collect();
    assert_eq!(vips, ["web"]);
    let (status, body) = call(addr, "GET", "/api/counters?frontend=nope", &[], "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["vips"],
        serde_json::json!([])
    );
    // Bad input: a parameter it does not know, too many frontends.
    let (status, body) = call(addr, "GET", "/api/counters?frontends=web", &[], "").await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"the query of /api/counters: no parameter \"frontends\" (only frontend=NAME)"}"#
        )
    );
    let many = (0..=maglev_bin::web::api::COUNTERS_FRONTENDS_MAX)
        .map(|i| format!("frontend=f{i}"))
        .collect::<Vec<_>>()
        .join("&");
    let (status, body) = call(addr, "GET", &format!("/api/counters?{many}"), &[], "").await;
    assert_eq!(status, 400);
    assert!(body.contains("more than 1000 frontends"), "{body}");
}

/// Waits until the daemon's counter snapshot has `web`'s VIP.
async fn until_counters(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, body) = call(addr, "GET", "/api/counters", &[], "").await;
        if body.contains(r#""frontend":"web""#) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no counters");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every mutating endpoint, as (path, body).
fn mutations() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ["pause", "resume", "enable", "disable"]
        .iter()
        .map(|a| (format!("/api/backends/a/{a}"), String::new()))
        .collect();
    v.push(("/api/node/drain".to_owned(), String::new()));
    v.push((
        "/api/weight".to_owned(),
        r#"{"frontend":"web","pool":"primary","backend":"a","weight":10,"flush":true}"#.to_owned(),
    ));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_with_the_csrf_token_acts() {
    let world = web_common::start(92).await;
    let addr = web(&world);
    let before = (world.vips(), world.handle().backend("a").unwrap().state);
    let auth = basic(ADMIN.0, ADMIN.1);
    let wrong = basic(ADMIN.0, "nope");
    let csrf = state(addr, &[]).await["session"]["csrf"]
        .as_str()
        .unwrap()
        .to_owned();

    for (path, body) in mutations() {
        // A reader (no credentials, wrong ones) with the token; an admin
        // without it, or with a wrong one.
        for headers in [
            vec![("x-csrf-token", csrf.as_str())],
            vec![
                ("authorization", wrong.as_str()),
                ("x-csrf-token", csrf.as_str()),
            ],
            vec![("authorization", auth.as_str())],
            vec![("authorization", auth.as_str()), ("x-csrf-token", "0123")],
        ] {
            let (status, text) = call(addr, "POST", &path, &headers, &body).await;
            assert_eq!(status, 403, "{path} {headers:?}: {text}");
            assert!(text.contains("\"error\""), "{text}");
        }
    }
    assert!(
        (world.vips(), world.handle().backend("a").unwrap().state) == before,
        "a refused action changed something"
    );

    // The admin, with the token.
    let admin = [
        ("authorization", auth.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    assert_eq!(state(addr, &admin[..1]).await["session"]["admin"], true);
    let (status, body) = call(addr, "POST", "/api/backends/a/pause", &admin, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""state":"paused""#), "{body}");
    let (status, body) = call(
        addr,
        "POST",
        "/api/weight",
        &admin,
        r#"{"frontend":"web","pool":"primary","backend":"b","weight":30}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    until("a is drained and b weighs 30", || {
        world.weights("192.0.2.92")
            == w(&[("127.0.92.1", 0), ("127.0.92.2", 30), ("127.0.92.3", 0)])
    })
    .await;
    // Both are overrides by the dashboard's user, and the dashboard's
    // state carries them for its markers.
    assert_eq!(world.handle().backend_override("a").unwrap().by, "alice");
    let (weight, _) = world
        .handle()
        .weight_override("web", "primary", "b")
        .unwrap();
    assert_eq!((weight.weight, weight.by.as_str()), (30, "alice"));
    let (_, body) = call(addr, "GET", "/api/backends/a", &[], "").await;
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(a["operator_override"]["kind"], "paused");
    assert_eq!(a["operator_override"]["by"], "alice");
    // Refusals say why, with the daemon's status as HTTP.
    let (status, body) = call(addr, "POST", "/api/backends/nope/pause", &admin, "").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        addr,
        "POST",
        "/api/weight",
        &admin,
        r#"{"frontend":"web","pool":"primary","backend":"b","weight":300}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A body that is not the change says what is wrong, as JSON.
    let (status, body) = call(
        addr,
        "POST",
        "/api/weight",
        &admin,
        r#"{"frontend":"web","weight":"x"}"#,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.starts_with(r#"{"error":"the request body: "#),
        "{body}"
    );
    // A dry run is a read: no admin needed, nothing changes.
    let (status, body) = call(
        addr,
        "POST",
        "/api/plan",
        &[],
        r#"{"frontend":"web","pool":"primary","backend":"b","weight":100}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("as_weight_updated") || body.contains("ops"),
        "{body}"
    );

    let text = maglev_bin::metrics::render(world.handle());
    for line in [
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="alice",result="success"} 1"#,
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="alice",result="denied"} 2"#,
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="127.0.0.1",result="denied"} 2"#,
        r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="alice",result="failure"} 1"#,
        r#"maglev_grpc_writes_total{rpc="SetNodeDrain",identity="alice",result="denied"} 2"#,
        r#"maglev_grpc_writes_total{rpc="SetNodeDrain",identity="127.0.0.1",result="denied"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in the metrics");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_challenges_until_the_credentials_are_right() {
    let world = web_common::start(93).await;
    let addr = web(&world);
    let response = send(addr, web_common::request("GET", "/login", &[], "")).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"maglev\"")
    );
    let wrong = basic("alice", "nope");
    assert_eq!(
        call(addr, "GET", "/login", &[("authorization", &wrong)], "")
            .await
            .0,
        401
    );
    let right = basic(ADMIN.0, ADMIN.1);
    let response = send(
        addr,
        web_common::request("GET", "/login", &[("authorization", &right)], ""),
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    world.stop().await;
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sse {
    id: Option<String>,
    event: String,
    data: String,
}

/// Reads events from a stream's body.
struct SseReader {
    body: Incoming,
    buf: String,
}

impl SseReader {
    async fn open(addr: std::net::SocketAddr, path: &str, last_id: Option<&str>) -> SseReader {
        let headers: Vec<(&str, &str)> = last_id
            .map(|id| ("last-event-id", id))
            .into_iter()
            .collect();
        let response = send(addr, web_common::request("GET", path, &headers, "")).await;
        assert_eq!(response.status(), 200);
        let h = response.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["x-accel-buffering"], "no");
        assert_eq!(h["cache-control"], "no-cache");
        assert!(!h.contains_key("content-encoding"));
        SseReader {
            body: response.into_body(),
            buf: String::new(),
        }
    }

    /// The next event with data (comments, pings and the retry hint are
    /// skipped).
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(v.trim_start().to_owned());
                    }
                }
                if let Some(data) = data {
                    return Sse { id, event, data };
                }
                continue;
            }
            let frame = tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .expect("an event within the patience")
                .expect("the stream is open")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// The next event with an id (probe heartbeats have none).
    async fn next_numbered(&mut self) -> Sse {
        loop {
            let e = self.next().await;
            if e.id.is_some() {
                return e;
            }
        }
    }

    /// Events until one whose data contains every piece of `marker`.
    async fn until(&mut self, marker: &[&str]) -> Vec<Sse> {
        let mut out = Vec::new();
        loop {
            let e = self.next_numbered().await;
            let done = marker.iter().all(|m| e.data.contains(m));
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

fn seq(id: &str) -> u64 {
    id.split_once('-').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_gets_exactly_the_events_it_missed() {
    let world = web_common::start(94).await;
    let addr = web(&world);
    let handle = world.handle().clone();
    let since = state(addr, &[]).await["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/events?since={since}");
    // One stream that stays, one that drops out and comes back.
    let mut stays = SseReader::open(addr, &path, None).await;
    let mut leaves = SseReader::open(addr, &path, None).await;

    handle.pause("a").unwrap();
    let marker_a = [r#""backend":"a""#, r#""to":"paused""#];
    let seen = leaves.until(&marker_a).await;
    let last = seen.last().unwrap().id.clone().unwrap();
    drop(leaves);

    // Missed: a resume, a pause and a disable, and whatever VPP changes
    // they bring; then a marker.
    handle.resume("a").unwrap();
    handle.pause("c").unwrap();
    handle.disable("c").unwrap();
    handle.pause("b").unwrap();
    let marker_b = [r#""backend":"b""#, r#""to":"paused""#];

    let mut all = stays.until(&marker_a).await;
    all.extend(stays.until(&marker_b).await);
    // The stream that stayed saw every event once, numbered without gaps.
    for pair in all.windows(2) {
        assert_eq!(
            seq(pair[1].id.as_ref().unwrap()),
            seq(pair[0].id.as_ref().unwrap()) + 1,
            "{pair:?}"
        );
    }
    let missed: Vec<Sse> = all
        .iter()
        .filter(|e| seq(e.id.as_ref().unwrap()) > seq(&last))
        .cloned()
        .collect();
    assert!(missed.len() >= 4, "{missed:?}");

    let mut back = SseReader::open(addr, "/api/events", Some(&last)).await;
    let got = back.until(&marker_b).await;
    assert_eq!(got, missed);

    // An id from another daemon's epoch (a restart) gets a resync.
    let mut other = SseReader::open(addr, "/api/events", Some("1-1")).await;
    let e = other.next().await;
    assert_eq!(e.event, "resync");
    // It carries the id to go on from: this epoch's, at or after the last
    // event seen.
    let id = e.id.expect("a resync has an id");
    assert!(
        seq(&id) >= seq(all.last().unwrap().id.as_ref().unwrap()),
        "{id}"
    );
    assert_eq!(
        id.split_once('-').unwrap().0,
        last.split_once('-').unwrap().0
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_peer() {
    use std::net::Ipv4Addr;
    let world = web_common::start(161).await;
    let addr = web(&world);
    let login = |from: Ipv4Addr, auth: String| async move {
        let r = web_common::send_from(
            from,
            addr,
            web_common::request("GET", "/login", &[("authorization", &auth)], ""),
        )
        .await;
        (r.status().as_u16(), r.headers().get("retry-after").cloned())
    };
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    for _ in 0..maglev_bin::web::throttle::BURST {
        assert_eq!(login(attacker, basic(ADMIN.0, "guess")).await.0, 401);
    }
    let (status, retry) = login(attacker, basic(ADMIN.0, "guess")).await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
    // Not checked at all now, even when right.
    assert_eq!(login(attacker, basic(ADMIN.0, ADMIN.1)).await.0, 429);
    // Another peer logs in.
    assert_eq!(
        login(Ipv4Addr::new(127, 0, 0, 3), basic(ADMIN.0, ADMIN.1))
            .await
            .0,
        303
    );
    let text = maglev_bin::metrics::render(world.handle());
    for line in [
        r#"maglev_http_login_failures_total{reason="wrong"} 5"#,
        r#"maglev_http_login_failures_total{reason="limited"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in the metrics");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_do_not_hold_up_grpc() {
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The servers on a thread of their own, as in maglevd, and a hash
    // slow enough that 20 checks, two at a time, take a while.
    let serve = maglev_bin::daemon::runtime::RuntimeThread::start("test-serve").unwrap();
    let parts = maglev_bin::daemon::Parts {
        serve_runtime: Some(serve.handle()),
        ..maglev_bin::daemon::Parts::default()
    };
    let world = web_common::start_with(162, 10, parts).await;
    let addr = web(&world);
    let mut grpc = grpc_common::client(&world).await;
    let done = Arc::new(AtomicUsize::new(0));
    let mut logins = Vec::new();
    for i in 0..20u8 {
        let done = done.clone();
        // Four peers, five each: within every peer's burst, so each runs
        // bcrypt.
        let from = Ipv4Addr::new(127, 0, 0, 2 + i % 4);
        logins.push(tokio::spawn(async move {
            let r = web_common::send_from(
                from,
                addr,
                web_common::request(
                    "GET",
                    "/login",
                    &[("authorization", &basic(ADMIN.0, &format!("guess{i}")))],
                    "",
                ),
            )
            .await;
            done.fetch_add(1, Ordering::SeqCst);
            r.status().as_u16()
        }));
    }
    let backends = grpc
        .list_backends(maglev_bin::grpc::proto::ListBackendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let finished = done.load(Ordering::SeqCst);
    assert!(!backends.backends.is_empty());
    assert!(
        finished < 20,
        "gRPC answered only after every password check ({finished} of 20)"
    );
    for l in logins {
        assert_eq!(l.await.unwrap(), 401);
    }
    world.stop().await;
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_are_in_the_summary_and_an_admin_drains_the_node() {
    let (world, table) = web_common::start_announcing(118).await;
    let addr = web(&world);
    let (status, body) = call(addr, "GET", "/api/summary", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let web_fe = &s["frontends"][1];
    assert_eq!(
        (
            &web_fe["name"],
            &web_fe["announce"],
            &web_fe["announce_reason"]
        ),
        (
            &serde_json::json!("web"),
            &serde_json::json!("announced"),
            &serde_json::json!("serving")
        ),
        "{web_fe}"
    );
    // The node's announcement fields (its identity, name, fingerprint
    // and version, are grpc_api's business).
    let mut node = s["node"].clone();
    for identity in ["name", "config_fingerprint", "version"] {
        node.as_object_mut().unwrap().remove(identity);
    }
    assert_eq!(
        node,
        serde_json::json!({
            "drained": false, "drained_by": "", "drained_since_unix_nanos": 0,
            "announce_enabled": true, "table": "memory", "announced": 2, "prefixes": 2,
        })
    );
    let (status, body) = call(addr, "GET", "/api/frontends/web", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            &d["frontend"]["announce"],
            &d["frontend"]["announce_reason"]
        ),
        (
            &serde_json::json!("announced"),
            &serde_json::json!("serving")
        )
    );

    // The admin drains: every route is gone when the answer comes, the
    // drain is by the dashboard's user, and audited.
    let auth = basic(ADMIN.0, ADMIN.1);
    let csrf = state(addr, &[]).await["session"]["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = [
        ("authorization", auth.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let (status, body) = call(addr, "POST", "/api/node/drain", &admin, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(table.routes().is_empty(), "{:?}", table.routes());
    let node: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&node["drained"], &node["drained_by"], &node["announced"]),
        (
            &serde_json::json!(true),
            &serde_json::json!("alice"),
            &serde_json::json!(0)
        ),
        "{node}"
    );
    let (_, body) = call(addr, "GET", "/api/summary", &[], "").await;
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["frontends"][1]["announce"], "withdrawn");
    assert_eq!(s["frontends"][1]["announce_reason"], "drained");
    assert_eq!(s["node"]["drained_by"], "alice");
    let (status, body) = call(addr, "POST", "/api/node/nap", &admin, "").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(addr, "POST", "/api/node/undrain", &admin, "").await;
    assert_eq!(status, 200, "{body}");
    until("both prefixes are back", || table.routes().len() == 2).await;
    let text = maglev_bin::metrics::render(world.handle());
    assert!(
        text.lines().any(|l| l
            == r#"maglev_grpc_writes_total{rpc="SetNodeDrain",identity="alice",result="success"} 2"#),
        "the drains are not in the audit counter"
    );
    world.stop().await;
}
