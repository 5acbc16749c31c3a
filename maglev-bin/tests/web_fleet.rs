//! The dashboard's peers (`--peer`) against three daemons on three
//! simulators in this process, the same config: the tabs' list, a peer's
//! summary and a frontend's detail, the fleet matrix agreeing; a peer
//! stopped shows unreachable (the page's own answers unaffected) and comes
//! back by itself when restarted; an admin's action on a peer lands in
//! that peer's simulator and in both audit trails, and a reader's is
//! refused here. Over TLS, a forwarded action carries this daemon's
//! client certificate (`--peer-cert`), and the peer's own
//! `maglev.access.admins` decides: refused there, it is refused here.
//! Peers' events are streamed: a peer's transition arrives on this
//! daemon's SSE stream as a `peer` event naming it, and a peer stopped
//! and restarted streams again.

mod common;
mod grpc_common;
mod tls_common;
mod web_common;

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;

use common::{PATIENCE, until, w};
use web_common::{ADMIN, audited_once, basic, call, restart_daemon, send, state, stop_daemon, web};

/// This daemon's SSE stream (`/api/events`), read for `peer` events.
struct PeerEvents {
    body: Incoming,
    buf: String,
}

impl PeerEvents {
    async fn open(addr: SocketAddr) -> PeerEvents {
        let response = send(addr, web_common::request("GET", "/api/events", &[], "")).await;
        assert_eq!(response.status(), 200);
        PeerEvents {
            body: response.into_body(),
            buf: String::new(),
        }
    }

    /// The next SSE event's kind and data (comments and pings skipped).
    async fn next(&mut self, deadline: tokio::time::Instant) -> (String, String) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data) = (String::from("message"), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(v.trim_start().to_owned());
                    }
                }
                if let Some(data) = data {
                    return (event, data);
                }
                continue;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("a peer event within the patience")
                .expect("the stream is open")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Reads until a `peer` event from `peer` for which `cond` holds (of
    /// its `{peer, event, error}` JSON), within [`PATIENCE`].
    async fn until(
        &mut self,
        peer: &str,
        what: &str,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (kind, data) = tokio::time::timeout_at(deadline, self.next(deadline))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            if kind != "peer" {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&data).unwrap();
            if v["peer"] == peer && cond(&v) {
                return v;
            }
        }
    }
}

async fn get(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = call(addr, "GET", path, &[], "").await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `path` until `cond` holds of its answer (or fails after
/// [`PATIENCE`], showing the last answer).
async fn poll(
    addr: SocketAddr,
    path: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        let v = get(addr, path).await;
        if cond(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}: {v}"
        );
        tick.tick().await;
    }
}

/// How many `GetNode` calls `world`'s daemon has answered.
fn get_nodes(world: &common::World) -> u64 {
    maglev_bin::metrics::render(world.handle())
        .lines()
        .filter(|l| l.starts_with("maglev_grpc_requests_total{") && l.contains("GetNode"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn verdicts(fleet: &serde_json::Value) -> Vec<String> {
    fleet["frontends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap().to_owned())
        .collect()
}

fn reachable(nodes: &serde_json::Value) -> Vec<bool> {
    nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["reachable"].as_bool().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_its_peers_and_forwards_writes() {
    let [a, b, mut c] = web_common::start_fleet(81).await;
    let programmed = w(&[("127.0.81.1", 100), ("127.0.81.2", 100), ("127.0.81.3", 0)]);
    let addr = web(&a);
    let mut events = PeerEvents::open(addr).await;

    // The tabs: this daemon first, then the peers, all reachable.
    let peers = get(addr, "/api/peers").await;
    let names: Vec<&str> = peers["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[1..], ["b", "c"], "{peers}");
    assert_eq!(peers["nodes"][0]["self"], true);
    assert_eq!(reachable(&peers), [true, true, true], "{peers}");

    // A peer's summary in the shape of /api/summary, and a card's detail.
    let s = poll(
        addr,
        "/api/peers/b/summary",
        "b's web frontend is up",
        |s| {
            s["frontends"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["name"] == "web" && f["state"] == "up"))
        },
    )
    .await;
    assert_eq!(
        (&s["reachable"], &s["total"]),
        (&true.into(), &2.into()),
        "{s}"
    );
    let web_fe = s["frontends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "web")
        .unwrap();
    assert_eq!(
        (
            &web_fe["active_pool"],
            &web_fe["serving"],
            &web_fe["backends"]
        ),
        (&"primary".into(), &2.into(), &3.into()),
        "{web_fe}"
    );
    let d = get(addr, "/api/peers/b/frontends/web").await;
    assert_eq!(d["frontend"]["name"], "web");
    assert_eq!(d["backends"].as_array().unwrap().len(), 3, "{d}");
    let (status, body) = call(addr, "GET", "/api/peers/zz/summary", &[], "").await;
    assert_eq!(status, 404, "{body}");

    // The matrix: two frontends × three nodes, all agreeing.
    let fleet = poll(addr, "/api/fleet", "every frontend agrees", |f| {
        verdicts(f) == ["agree", "agree"]
    })
    .await;
    let row = &fleet["frontends"][1];
    assert_eq!(row["name"], "web");
    assert_eq!(row["cells"].as_array().unwrap().len(), 3, "{fleet}");
    assert_eq!(row["cells"][2]["active_pool"], "primary", "{fleet}");

    // Browsers at once cost B one read per freshness window, not one
    // each: sixteen concurrent summaries share the reads (at most one per
    // 2 s; sixteen would mean no sharing at all).
    let before = get_nodes(&b);
    assert!(before > 0, "b's GetNode calls are not counted");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        set.spawn(async move { get(addr, "/api/peers/b/summary").await });
    }
    while let Some(s) = set.join_next().await {
        assert_eq!(s.unwrap()["reachable"], true);
    }
    let reads = get_nodes(&b) - before;
    assert!(reads < 16, "{reads} reads of b for 16 browsers");

    // C stops: unreachable on its tab and in the matrix; the page's own
    // answers and B's are unaffected.
    let c_grpc = stop_daemon(&mut c).await;
    // Its event stream ends: a `peer` event says so.
    let v = events
        .until("c", "c's stream ending", |v| v["event"].is_null())
        .await;
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    let fleet = poll(addr, "/api/fleet", "c is unreachable", |f| {
        reachable(f) == [true, true, false]
    })
    .await;
    assert_eq!(verdicts(&fleet), ["unreachable", "unreachable"], "{fleet}");
    assert_eq!(fleet["frontends"][1]["cells"][2]["verdict"], "unreachable");
    assert_eq!(fleet["frontends"][1]["cells"][1]["verdict"], "agree");
    assert_eq!(fleet["frontends"][1]["nodes"], serde_json::json!(["c"]));
    let s = get(addr, "/api/peers/c/summary").await;
    assert_eq!(s["reachable"], false, "{s}");
    assert!(s["error"].as_str().is_some_and(|e| !e.is_empty()), "{s}");
    let (status, _) = call(addr, "GET", "/api/summary", &[], "").await;
    assert_eq!(status, 200);
    let s = get(addr, "/api/peers/b/summary").await;
    assert_eq!(s["reachable"], true, "{s}");

    // C comes back on its address: reachable again by itself.
    restart_daemon(&mut c, c_grpc).await;
    // Its events flow again (the stream opens with each frontend's state).
    events
        .until("c", "c's events again", |v| {
            v["event"]["frontend"]["frontend"].is_string()
        })
        .await;
    poll(addr, "/api/fleet", "c is back and agrees", |f| {
        reachable(f) == [true, true, true] && verdicts(f) == ["agree", "agree"]
    })
    .await;

    // A reader may not act on a peer; B is unchanged.
    let (status, body) = call(addr, "POST", "/api/peers/b/backends/a/pause", &[], "").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(b.weights("192.0.2.81"), programmed);

    // An admin pauses backend a on B: B's simulator alone changes, and
    // both audit trails have it (here alice's; there this daemon's).
    let auth = basic(ADMIN.0, ADMIN.1);
    let csrf = state(addr, &[]).await["session"]["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = [
        ("authorization", auth.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let (status, body) = call(addr, "POST", "/api/peers/b/backends/a/pause", &admin, "").await;
    assert_eq!(status, 200, "{body}");
    until("B's simulator has a paused", || {
        b.weights("192.0.2.81") == w(&[("127.0.81.1", 0), ("127.0.81.2", 100), ("127.0.81.3", 0)])
    })
    .await;
    assert_eq!(a.weights("192.0.2.81"), programmed);
    assert_eq!(c.weights("192.0.2.81"), programmed);
    // B's transition arrives on this daemon's stream, tagged with B.
    events
        .until("b", "b's backend a paused", |v| {
            let b = &v["event"]["backend"];
            b["backend"] == "a" && b["transition"]["to"] == "paused"
        })
        .await;
    assert!(
        audited_once(&a, "PauseBackend", "alice"),
        "not in A's audit counter"
    );
    assert!(
        audited_once(&b, "PauseBackend", "127.0.0.1"),
        "not in B's audit counter"
    );
    // The matrix sees B differ in health (same config, another table).
    poll(addr, "/api/fleet", "web differs in health on b", |f| {
        f["frontends"][1]["verdict"] == "differ: health"
            && f["frontends"][1]["cells"][1]["verdict"] == "differ: health"
    })
    .await;
    // A refusal of the peer comes back as the peer's.
    let (status, body) = call(addr, "POST", "/api/peers/b/backends/nope/pause", &admin, "").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("peer \\\"b\\\""), "{body}");

    for world in [a, b, c] {
        world.stop().await;
    }
}

/// A dashboard daemon on network `net` whose only peer `b` is at `peer`
/// (`localhost:PORT`), reached over TLS as client `identity` of `pki`.
async fn dashboard_to(net: u8, peer: &str, pki: &tls_common::Pki, identity: &str) -> common::World {
    let mut world = common::World::new(net, 1).await;
    world.write_config(&grpc_common::config(net));
    let password_file = world.dir.path().join("htpasswd");
    let hash = bcrypt::hash(ADMIN.1, 4).unwrap();
    std::fs::write(&password_file, format!("{}:{hash}\n", ADMIN.0)).unwrap();
    let mut settings = world.settings();
    settings.http_addr = Some("127.0.0.1:0".into());
    settings.http_password_file = Some(password_file);
    settings.peers = vec![format!("b={peer}").parse().unwrap()];
    settings.peer_tls = Some(pki.client_tls(Some(identity)));
    world.start(settings).await;
    world
}

async fn admin_post(addr: SocketAddr, path: &str) -> (u16, String) {
    let auth = basic(ADMIN.0, ADMIN.1);
    let csrf = state(addr, &[]).await["session"]["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = [
        ("authorization", auth.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    call(addr, "POST", path, &admin, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_a_peer_goes_through_the_peers_access_rules_as_this_daemons_certificate() {
    // B requires client certificates; only the certificate `alice` may
    // write (the dashboards' user is alice too, by password).
    let pki = tls_common::Pki::new();
    let mut b = common::World::new(84, 3).await;
    b.write_config(&format!(
        "{}  access:\n    admins: [alice]\n",
        grpc_common::config(84)
    ));
    let mut settings = b.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    settings.grpc_tls = Some(pki.server_files(true));
    b.start(settings).await;
    let programmed = w(&[("127.0.84.1", 100), ("127.0.84.2", 100), ("127.0.84.3", 0)]);
    until("B's web VIP is programmed", || {
        b.weights("192.0.2.84") == programmed
    })
    .await;
    let peer = format!("localhost:{}", b.daemon().grpc_addrs()[0].port());

    // A dashboard whose certificate is `bob`'s: B reads it but refuses
    // its write, and so does the dashboard, for alice too; B unchanged.
    let bob = dashboard_to(85, &peer, &pki, "bob").await;
    let s = poll(
        web(&bob),
        "/api/peers/b/summary",
        "b is read over TLS",
        |s| s["reachable"] == true,
    )
    .await;
    assert_eq!(s["total"], 2, "{s}");
    let (status, body) = admin_post(web(&bob), "/api/peers/b/backends/a/pause").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("bob may only read"), "{body}");
    assert_eq!(b.weights("192.0.2.84"), programmed);

    // As certificate `alice`: done on B, audited there as the
    // certificate and here as the dashboard's user.
    let dash = dashboard_to(86, &peer, &pki, "alice").await;
    let (status, body) = admin_post(web(&dash), "/api/peers/b/backends/a/pause").await;
    assert_eq!(status, 200, "{body}");
    until("B's simulator has a paused", || {
        b.weights("192.0.2.84") == w(&[("127.0.84.1", 0), ("127.0.84.2", 100), ("127.0.84.3", 0)])
    })
    .await;
    assert!(
        audited_once(&b, "PauseBackend", "alice"),
        "not in B's audit counter"
    );
    assert!(
        audited_once(&dash, "PauseBackend", "alice"),
        "not in the dashboard's"
    );

    for world in [b, bob, dash] {
        world.stop().await;
    }
}
