//! The dashboard in a real browser: headless Chromium, driven over
//! WebDriver (Debian's `chromedriver`, through fantoccini), against a
//! daemon on the simulator. A reader sees the config's frontends and
//! backends, no action controls, a backend that fails going down live, its
//! detail and the event log; an admin (basic auth) pauses a backend and
//! sets a weight through the confirmation dialog, and both reach the
//! simulator; after the daemon restarts on the same port the page comes
//! back by itself; a probe in flight shows its heartbeat; a page of
//! 10,000 frontends shows a window of them, filters (kept in the URL)
//! and follows a transition in place; with announcements, a card's badge
//! turns withdrawn when its frontend's last backends fail and back, and
//! an admin drains the node (the header's banner says by whom) and
//! undrains it. Screenshots:
//! `target/web-main.png`, `target/web-detail.png`,
//! `target/web-admin.png` (the weight dialog with its dry run) and
//! `target/web-big.png` (10,000 frontends, filtered),
//! `target/web-announce.png` and `target/web-drained.png`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian
//! `chromium` and `chromium-driver`); without them each test says why and
//! passes, unless `MAGLEV_REQUIRE_BROWSER=1`.

mod common;
mod grpc_common;
mod web_common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use common::{PATIENCE, World, until, w};
use web_common::{ADMIN, web};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/");

fn require() -> bool {
    std::env::var("MAGLEV_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// A headless Chromium behind its own chromedriver, with a fresh profile.
struct Browser {
    client: Client,
    base: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// chromedriver in a process group of its own, which the Chromium it
/// starts joins: dropped (a test that failed did not close its session),
/// the whole group is killed, so no browser outlives its test.
struct Driver(tokio::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A browser on the dashboard at `addr`, or `None` (said why) when there
/// is none and none is required.
async fn browser(addr: SocketAddr) -> Option<Browser> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "no {} (Debian: apt-get install chromium chromium-driver)",
            missing.join(" or ")
        );
        assert!(!require(), "MAGLEV_REQUIRE_BROWSER=1 but {why}");
        eprintln!("skipping the browser test: {why}");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map(Driver)
        .unwrap_or_else(|e| panic!("{CHROMEDRIVER}: {e}"));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{CHROMEDRIVER} does not answer on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.path().display()),
        ],
    });
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("a Chromium session from {CHROMEDRIVER}: {e}"));
    Some(Browser {
        client,
        base: format!("http://{addr}"),
        _driver: driver,
        _profile: profile,
    })
}

impl Browser {
    /// Opens `path` of the dashboard and waits until its first state is
    /// shown and its event stream is open.
    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
        self.until(
            "the page is ready and live",
            "return document.body.dataset.ready === 'true' && document.body.dataset.live === 'true'",
        )
        .await;
    }

    /// Runs `script` (a function body) in the page; its value.
    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns true, checking every 50 ms.
    async fn until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let html = self.js("return document.body.outerHTML").await;
                panic!("timed out waiting until {what}; the page:\n{html}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of every element matching `css`.
    async fn texts(&self, css: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(e => e.textContent)",
            json!(css)
        );
        serde_json::from_value(self.js(&script).await).unwrap()
    }

    /// An attribute of every element matching `css`.
    async fn attrs(&self, css: &str, name: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(e => e.getAttribute({}))",
            json!(css),
            json!(name)
        );
        serde_json::from_value(self.js(&script).await).unwrap()
    }

    /// Waits until one element matches `css`, then clicks the first.
    async fn click(&self, css: &str) {
        self.until(
            &format!("{css} is there"),
            &format!("return document.querySelector({}) !== null", json!(css)),
        )
        .await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until the first element matching `css` has `attr` = `value`.
    async fn until_attr(&self, css: &str, attr: &str, value: &str) {
        self.until(
            &format!("{css} has {attr}={value}"),
            &format!(
                "const e = document.querySelector({}); return e !== null && e.getAttribute({}) === {}",
                json!(css),
                json!(attr),
                json!(value)
            ),
        )
        .await;
    }

    /// Waits until the first element matching `css` reads `text`.
    async fn until_text(&self, css: &str, text: &str) {
        self.until(
            &format!("{css} reads {text:?}"),
            &format!(
                "const e = document.querySelector({}); return e !== null && e.textContent.trim() === {}",
                json!(css),
                json!(text)
            ),
        )
        .await;
    }

    /// Presses Escape in the focused element.
    async fn escape(&self) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(&Key::Escape.to_string())
            .await
            .unwrap();
    }

    /// Saves a screenshot as `target/<name>`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(SCREENSHOTS).unwrap();
        std::fs::write(Path::new(SCREENSHOTS).join(name), png).unwrap();
    }

    /// Asserts that the page hit no script error, and closes the browser.
    async fn close(self) {
        let error = self.js("return document.body.dataset.error || null").await;
        assert_eq!(error, Value::Null, "the page failed");
        self.client.close().await.unwrap();
    }
}

/// The row of `backend` in the card of `frontend`.
fn row(frontend: &str, backend: &str) -> String {
    format!("section[data-frontend={frontend}] tr[data-backend={backend}]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_the_config_and_a_failure_live() {
    let world = web_common::start(95).await;
    let Some(b) = browser(web(&world)).await else {
        return world.stop().await;
    };
    b.open("/").await;
    // The figures docs/performance.md quotes (printed, not asserted).
    let timing = b
        .js("const nav = performance.getEntriesByType('navigation')[0];
             const fcp = performance.getEntriesByName('first-contentful-paint')[0];
             const ready = performance.getEntriesByName('maglev-ready')[0];
             return { dom: nav.domContentLoadedEventEnd, fcp: fcp && fcp.startTime,
                      ready: ready && ready.startTime,
                      bytes: performance.getEntriesByType('resource')
                        .filter(r => r.name.includes('/assets/'))
                        .reduce((n, r) => n + r.encodedBodySize, nav.encodedBodySize) }")
        .await;
    eprintln!("page timing (ms from navigation start; bytes of HTML, CSS and JS): {timing}");
    assert_eq!(
        b.js("return [...document.querySelectorAll('.changed')].map(e => e.outerHTML)")
            .await,
        json!([]),
        "something flashed on first load"
    );

    // Every frontend in the API's order, every pool member, from the config.
    assert_eq!(
        b.attrs("section[data-frontend]", "data-frontend").await,
        ["api", "web"]
    );
    assert_eq!(
        b.attrs(
            "section[data-frontend=web] tr[data-backend]",
            "data-backend"
        )
        .await,
        ["a", "b", "c"]
    );
    assert_eq!(
        b.attrs(
            "section[data-frontend=api] tr[data-backend]",
            "data-backend"
        )
        .await,
        ["b", "s"]
    );
    b.until_attr("section[data-frontend=web]", "data-state", "up")
        .await;
    b.until_attr(&row("web", "a"), "data-state", "up").await;
    b.until_attr(&row("web", "c"), "data-state", "up").await;
    let api_b = row("api", "b");
    assert_eq!(b.texts(&format!("{api_b} [data-col=weight]")).await, ["50"]);
    b.until_text(&format!("{api_b} [data-col=effective]"), "50")
        .await;
    b.until_text(&format!("{} [data-col=effective]", row("web", "c")), "0")
        .await;
    // The buckets come with VPP's state, which may follow the backends'.
    b.until(
        "web's backend a shows buckets",
        &format!(
            "const e = document.querySelector({}); return e !== null && /^[1-9][0-9]*$/.test(e.textContent.trim())",
            json!(format!("{} [data-col=buckets]", row("web", "a")))
        ),
    )
    .await;
    assert_eq!(b.attrs("#vpp", "data-connected").await, ["true"]);
    assert!(b.texts("#vpp-version").await[0].contains("26."));
    // A reader: no action anywhere, and the way to log in.
    assert!(b.texts("[data-action]").await.is_empty());
    b.until(
        "the login link shows",
        "return !document.querySelector('#login').hidden",
    )
    .await;
    // Each VIP's packet rate, from the counters.
    b.until(
        "web's packet rate shows",
        r"return /^[1-9][0-9.]*k? pkt\/s$/.test(document.querySelector('section[data-frontend=web] .rate').textContent)
           && document.querySelector('section[data-frontend=web] .spark polyline').getAttribute('points') !== ''",
    )
    .await;
    b.screenshot("web-main.png").await;

    // `a` fails: its rows go down and `web` serves from `b` alone, live.
    world.backends[0].set_healthy(false);
    b.until_attr(&row("web", "a"), "data-state", "down").await;
    b.until_text(&format!("{} [data-col=effective]", row("web", "a")), "0")
        .await;
    b.until(
        "the event log shows the transition",
        "return document.querySelector('#events').textContent.includes('a: up → down')",
    )
    .await;
    b.until(
        "the VPP panel shows the change sent",
        "return document.querySelector('#vpp-last').textContent.includes('127.0.95.1')",
    )
    .await;
    // The age counts on by itself, from `now`.
    b.until(
        "a's age counts",
        &format!(
            "return /^[1-9][0-9]*s$/.test(document.querySelector({}).textContent)",
            json!(format!("{} [data-col=age]", row("web", "a")))
        ),
    )
    .await;

    // Its detail: its history, newest first, from the first `unknown → up`
    // to the failure (a loaded machine may have timed out a probe of the
    // 100 ms check in between: more transitions, same ends); Escape
    // closes it.
    b.click(&format!("{} .backend-link", row("web", "a"))).await;
    b.until(
        "the detail is open with a's history",
        "const d = document.querySelector('#detail'); \
         return d.open && d.checkVisibility() && document.querySelector('#detail-title').textContent === 'a' \
           && document.querySelectorAll('#detail-history li').length >= 2",
    )
    .await;
    let history = b.texts("#detail-history li").await;
    assert!(
        history[0].contains("up → down") && history[0].contains("503"),
        "{history:?}"
    );
    // The oldest kept is the first `unknown → up`, unless such timeouts
    // filled the five transitions a backend keeps (the default
    // `transition-history`): then every one kept is a flap of a.
    assert!(
        history[history.len() - 1].contains("unknown → up")
            || (history.len() == 5 && history.iter().all(|t| t.contains("→"))),
        "{history:?}"
    );
    b.screenshot("web-detail.png").await;
    b.escape().await;
    b.until(
        "the detail is closed",
        "const d = document.querySelector('#detail'); return !d.open && !d.checkVisibility()",
    )
    .await;

    // The log's filter hides what does not match; paused, it holds new
    // lines until resumed.
    let filter = b.client.find(Locator::Css("#events-filter")).await.unwrap();
    filter.send_keys("a: up").await.unwrap();
    b.until(
        "the filter leaves only a's transition",
        "const shown = [...document.querySelectorAll('#events li')].filter(l => !l.hidden); \
         return shown.length >= 1 && shown.every(l => l.textContent.includes('a: up → down'))",
    )
    .await;
    filter.clear().await.unwrap();
    let recoveries =
        "return document.querySelector('#events').textContent.split('a: down → up').length - 1";
    let before = b.js(recoveries).await;
    b.click("#events-pause").await;
    world.backends[0].set_healthy(true);
    b.until_attr(&row("web", "a"), "data-state", "up").await;
    assert_eq!(
        b.js(recoveries).await,
        before,
        "a line came through the pause"
    );
    b.click("#events-pause").await;
    b.until(
        "the held line shows after resume",
        &format!(
            "return document.querySelector('#events').textContent.split('a: down → up').length - 1 > {before}"
        ),
    )
    .await;

    b.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_pauses_and_sets_a_weight_through_the_dialog() {
    let world = web_common::start(96).await;
    let addr = web(&world);
    let Some(b) = browser(addr).await else {
        return world.stop().await;
    };
    // Basic auth once; the browser then sends it with every request.
    b.client
        .goto(&format!("http://{}:{}@{addr}/login", ADMIN.0, ADMIN.1))
        .await
        .unwrap();
    b.open("/").await;
    b.until_text("#who", "alice (admin)").await;
    assert_eq!(
        b.js("return document.querySelector('#login').hidden").await,
        true
    );
    let vip = "192.0.2.96";
    let be = |i: u8| format!("127.0.96.{i}");

    // Pause a: confirmed, it reaches the simulator and the row.
    let a = row("web", "a");
    b.click(&format!("{a} [data-action=pause][data-backend=a]"))
        .await;
    b.until(
        "the dialog is open",
        "return document.querySelector('#confirm').open",
    )
    .await;
    // It shows what draining a would move, before anything is sent.
    b.until(
        "the pause's dry run shows a's buckets moving",
        "const t = document.querySelector('#plan').textContent;
         return t.includes('web') && t.includes('buckets move') && t.includes('a → ')",
    )
    .await;
    assert_eq!(
        world.weights(vip),
        w(&[(&be(1), 100), (&be(2), 100), (&be(3), 0)]),
        "a dry run changed VPP"
    );
    b.click("#confirm-ok").await;
    until("a is drained in VPP", || {
        world.weights(vip) == w(&[(&be(1), 0), (&be(2), 100), (&be(3), 0)])
    })
    .await;
    b.until_attr(&a, "data-state", "paused").await;
    b.until_text(&format!("{a} [data-col=effective]"), "0")
        .await;
    b.until(
        "the dialog closed",
        "return !document.querySelector('#confirm').open",
    )
    .await;
    // The row offers resume now.
    b.click(&format!("{a} [data-action=resume][data-backend=a]"))
        .await;
    b.until(
        "the dialog is open",
        "return document.querySelector('#confirm').open",
    )
    .await;
    b.click("#confirm-cancel").await;
    b.until(
        "the dialog closed",
        "return !document.querySelector('#confirm').open",
    )
    .await;
    assert_eq!(
        world.handle().backend("a").unwrap().state.as_str(),
        "paused"
    );

    // Set b's weight to 30: the dialog shows the dry run first.
    let row_b = row("web", "b");
    b.click(&format!("{row_b} [data-action=weight][data-backend=b]"))
        .await;
    b.until(
        "the weight dialog is open",
        "return document.querySelector('#confirm').open",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('#weight-input').value")
            .await,
        "100"
    );
    let input = b.client.find(Locator::Css("#weight-input")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys("101").await.unwrap();
    b.until(
        "an out-of-range weight cannot be sent",
        "return document.querySelector('#confirm-ok').disabled \
           && document.querySelector('#plan').textContent.includes('0 to 100')",
    )
    .await;
    input.clear().await.unwrap();
    input.send_keys("30").await.unwrap();
    b.until(
        "the dry run shows the op",
        "const p = document.querySelector('#plan').textContent; \
         return p.includes('Dry run') && p.includes('weight 30') && !document.querySelector('#confirm-ok').disabled",
    )
    .await;
    assert_eq!(world.weights(vip)[1], (be(2), 100), "a dry run changed VPP");
    b.screenshot("web-admin.png").await;
    b.click("#confirm-ok").await;
    until("b weighs 30 in VPP", || {
        world.weights(vip) == w(&[(&be(1), 0), (&be(2), 30), (&be(3), 0)])
    })
    .await;
    b.until_text(&format!("{row_b} [data-col=weight]"), "30")
        .await;
    b.until_text(&format!("{row_b} [data-col=effective]"), "30")
        .await;

    b.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_comes_back_after_the_daemon_restarts() {
    let mut world = web_common::start(97).await;
    let addr = web(&world);
    let Some(b) = browser(addr).await else {
        return world.stop().await;
    };
    b.open("/").await;
    b.until_attr(&row("web", "a"), "data-state", "up").await;

    world.daemon.take().unwrap().shutdown().await;
    b.until_attr("body", "data-live", "false").await;
    b.until_attr("#vpp", "data-connected", "true").await; // the last state stays

    // A new daemon on the same port: a new epoch, so the page resyncs.
    restart(&mut world, addr).await;
    b.until(
        "the page resynced with the new daemon",
        "return document.body.dataset.live === 'true' && \
         document.querySelector('#events').textContent.includes('resync')",
    )
    .await;
    b.until_attr(&row("web", "a"), "data-state", "up").await;
    // And it is live: a failure shows without a reload.
    world.backends[0].set_healthy(false);
    b.until_attr(&row("web", "a"), "data-state", "down").await;
    assert_eq!(b.attrs("body", "data-ready").await, ["true"]);

    b.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_in_flight_shows_a_heartbeat() {
    // Probe starts and ends come straight from the checker's probe
    // tasks; a backend of its own name keeps the check to this world.
    let mut world = World::new(98, 1).await;
    world.write_body(
        r"
  backends:
    pulse: { address: 127.0.98.1, healthcheck: web }
  frontends:
    beat:
      address: 192.0.2.98
      protocol: tcp
      port: 80
      pools:
        - name: main
          backends: { pulse: {} }
",
    );
    let mut settings = world.settings();
    settings.http_addr = Some("127.0.0.1:0".into());
    world.start(settings).await;
    let Some(b) = browser(web(&world)).await else {
        return world.stop().await;
    };
    b.open("/").await;
    let beat = "tr[data-backend=pulse] [data-col=beat]";
    b.until_attr("tr[data-backend=pulse]", "data-state", "up")
        .await;
    b.until_text(beat, "❤️").await;
    b.until_text(beat, "·").await;

    b.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_shows_its_announcement_and_an_admin_drains_the_node() {
    let (world, table) = web_common::start_announcing(116).await;
    let addr = web(&world);
    let Some(b) = browser(addr).await else {
        return world.stop().await;
    };
    b.client
        .goto(&format!("http://{}:{}@{addr}/login", ADMIN.0, ADMIN.1))
        .await
        .unwrap();
    b.open("/").await;
    b.until_text("#who", "alice (admin)").await;
    let web_badge = "section[data-frontend=web] .announce";
    let api_badge = "section[data-frontend=api] .announce";
    b.until_text(web_badge, "announced").await;
    b.until_text(api_badge, "announced").await;
    b.until_text("#node", "announcing 2 of 2 prefixes").await;
    assert_eq!(b.attrs("#node", "data-drained").await, ["false"]);
    b.until_text("#node-action", "Drain").await;

    // web's last backends fail: its badge turns withdrawn, live; api
    // (its static backend serves) stays announced.
    for i in 0..3 {
        world.backends[i].set_healthy(false);
    }
    until("web's prefix is withdrawn", || table.routes().len() == 1).await;
    b.until_attr(web_badge, "data-announce", "withdrawn").await;
    b.until_text(web_badge, "withdrawn (nothing-serves)").await;
    assert_eq!(b.texts(api_badge).await, ["announced"]);
    b.until(
        "the event log shows the withdraw",
        "return document.querySelector('#events').textContent.includes('192.0.2.116/32 (web): withdrawn (nothing-serves)')",
    )
    .await;
    b.screenshot("web-announce.png").await;
    // And back.
    for i in 0..3 {
        world.backends[i].set_healthy(true);
    }
    until("web's prefix is back", || table.routes().len() == 2).await;
    b.until_text(web_badge, "announced").await;

    // The admin drains the node through the dialog: every prefix goes,
    // the header says since when and by whom.
    b.click("#node-action[data-action=drain]").await;
    b.until(
        "the dialog is open",
        "return document.querySelector('#confirm').open \
           && document.querySelector('#confirm-title').textContent === 'Drain: this node'",
    )
    .await;
    assert_eq!(table.routes().len(), 2, "the dialog drained before OK");
    b.click("#confirm-ok").await;
    until("every prefix is withdrawn", || table.routes().is_empty()).await;
    b.until_attr("#node", "data-drained", "true").await;
    b.until(
        "the drain banner says since when and by whom",
        "const t = document.querySelector('#node').textContent; \
         return /^drained since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d by alice: every VIP withdrawn$/.test(t)",
    )
    .await;
    assert_eq!(world.handle().node().drained.unwrap().by, "alice");
    b.until_text(web_badge, "withdrawn (drained)").await;
    b.until_text(api_badge, "withdrawn (drained)").await;
    b.until_text("#node-action", "Undrain").await;
    b.screenshot("web-drained.png").await;

    // Undrained: the banner goes, the prefixes come back.
    b.click("#node-action[data-action=undrain]").await;
    b.until(
        "the dialog is open",
        "return document.querySelector('#confirm').open",
    )
    .await;
    b.click("#confirm-ok").await;
    until("both prefixes are back", || table.routes().len() == 2).await;
    b.until_attr("#node", "data-drained", "false").await;
    b.until_text("#node", "announcing 2 of 2 prefixes").await;
    b.until_text(web_badge, "announced").await;

    b.close().await;
    world.stop().await;
}

/// Frontends of the big page.
const BIG: usize = 10_000;

/// `BIG` frontends `fe-00000`…, each with one static backend `be-00000`…
/// of its own (up without probing: the daemon starts fast).
fn big_body() -> String {
    use std::fmt::Write as _;
    let mut y = String::from("  backends:\n");
    for i in 0..BIG {
        let _ = writeln!(
            y,
            "    be-{i:05}: {{ address: 10.0.{}.{} }}",
            i >> 8,
            i & 0xff
        );
    }
    y.push_str("  frontends:\n");
    for i in 0..BIG {
        let _ = write!(
            y,
            "    fe-{i:05}:\n      address: 198.18.{}.{}\n      protocol: tcp\n      port: 80\n      \
             pools:\n        - name: main\n          backends: {{ be-{i:05}: {{}} }}\n",
            i >> 8,
            i & 0xff
        );
    }
    y
}

/// The names of the frontend cards on the page, in order.
const CARDS: &str =
    "return [...document.querySelectorAll('section[data-frontend]')].map(e => e.dataset.frontend)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_frontends_render_filter_and_follow_a_transition() {
    let mut world = World::new(163, 1).await;
    // The warm-up's hands-off window holds VPP untouched for the test:
    // the page is what is under test, and a debug build's sync of 10,000
    // VIPs would only load the machine (and the shutdown).
    world.write_config(&format!(
        "{}{}",
        common::HEAD.replace("startup-min-delay: 0s", "startup-min-delay: 1h"),
        big_body()
    ));
    let mut settings = world.settings();
    settings.http_addr = Some("127.0.0.1:0".into());
    world.start(settings).await;
    let Some(b) = browser(web(&world)).await else {
        return world.stop().await;
    };
    b.open("/").await;
    // Every frontend counted, a window of them on the page, closed.
    b.until_text("#fe-count", "10000 frontends (10000 up)")
        .await;
    let cards: Vec<String> = serde_json::from_value(b.js(CARDS).await).unwrap();
    assert_eq!(cards.len(), 100, "{cards:?}");
    assert_eq!(
        (cards[0].as_str(), cards[99].as_str()),
        ("fe-00000", "fe-00099")
    );
    assert_eq!(
        b.js("return document.querySelectorAll('tr').length").await,
        0
    );
    b.until_text(
        "section[data-frontend=fe-00042] .counts",
        "1 serving, 1 of 1 up",
    )
    .await;
    // What the page fetched first: the summary, not every backend (and
    // the tab bar's short list of maglevds).
    let fetched = b
        .js("return performance.getEntriesByType('resource').map(r => r.name.replace(location.origin, ''))
               .filter(n => n.startsWith('/api/') && n !== '/api/events' && n !== '/api/peers'
                 && !n.startsWith('/api/counters'))")
        .await;
    assert!(
        fetched
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n == "/api/summary"),
        "{fetched}"
    );
    // Marks that only survive if the page is never reloaded or re-rendered.
    b.js("window.kept = 'yes'; \
          for (const n of ['fe-00001', 'fe-00042']) \
            document.querySelector(`section[data-frontend=${n}]`).dataset.kept = 'yes'")
        .await;

    // The filter narrows to a frontend far out of the window, and the URL
    // says so; cleared, the window comes back.
    let filter = b.client.find(Locator::Css("#fe-filter")).await.unwrap();
    filter.send_keys("fe-07777").await.unwrap();
    b.until(
        "the filter leaves fe-07777 alone",
        &format!(
            "const c = (() => {{ {CARDS} }})(); \
                  return c.length === 1 && c[0] === 'fe-07777' \
                    && document.querySelector('#fe-count').dataset.matches === '1' \
                    && location.search === '?q=fe-07777'"
        ),
    )
    .await;
    b.until_text("#fe-count", "1 of 10000 frontends (10000 up)")
        .await;
    // By address too (fe-00300 is 198.18.1.44).
    filter.clear().await.unwrap();
    filter.send_keys("198.18.1.44 ").await.unwrap();
    b.until(
        "the filter by address leaves fe-00300",
        &format!("const c = (() => {{ {CARDS} }})(); return c.length === 1 && c[0] === 'fe-00300'"),
    )
    .await;
    filter.clear().await.unwrap();
    // Clearing does not fire `input` in every driver: say it.
    b.js("document.querySelector('#fe-filter').dispatchEvent(new Event('input'))")
        .await;
    b.until(
        "the whole window is back",
        &format!(
            "const c = (() => {{ {CARDS} }})(); return c.length === 100 && location.search === ''"
        ),
    )
    .await;
    // New elements for the cards that left: mark them again.
    b.js("for (const n of ['fe-00001', 'fe-00042']) \
            document.querySelector(`section[data-frontend=${n}]`).dataset.kept = 'yes'")
        .await;

    // An operator disables fe-00042's backend (on the page) and
    // fe-09999's (not): the first card changes in place, the count
    // follows both, nothing else is rebuilt.
    world.handle().disable("be-00042").unwrap();
    world.handle().disable("be-09999").unwrap();
    let fe42 = "section[data-frontend=fe-00042]";
    b.until_attr(fe42, "data-state", "down").await;
    b.until_text(&format!("{fe42} .badge"), "down").await;
    b.until_text(&format!("{fe42} .counts"), "0 serving, 0 of 1 up")
        .await;
    b.until_text("#fe-count", "10000 frontends (9998 up, 2 down)")
        .await;
    assert_eq!(
        b.js("return [window.kept, \
                 document.querySelector('section[data-frontend=fe-00001]').dataset.kept, \
                 document.querySelector('section[data-frontend=fe-00042]').dataset.kept]")
            .await,
        json!(["yes", "yes", "yes"]),
        "the page was reloaded or its cards rebuilt"
    );
    assert_eq!(
        b.attrs("section[data-frontend=fe-00001]", "data-state")
            .await,
        ["up"]
    );

    // Only what is down: both, the one off the page too.
    b.js(
        "const s = document.querySelector('#fe-state'); s.value = 'down'; \
          s.dispatchEvent(new Event('change'))",
    )
    .await;
    b.until(
        "the state filter leaves the two that are down",
        &format!(
            "const c = (() => {{ {CARDS} }})(); \
                  return c.join() === 'fe-00042,fe-09999' && location.search === '?state=down'"
        ),
    )
    .await;
    // A shared link opens filtered.
    b.open("/?state=down&q=09999").await;
    b.until(
        "the link's filter is applied",
        &format!("const c = (() => {{ {CARDS} }})(); \
                  return c.join() === 'fe-09999' && document.querySelector('#fe-filter').value === '09999' \
                    && document.querySelector('#fe-state').value === 'down'"),
    )
    .await;
    b.until_text("#fe-count", "1 of 10000 frontends (9998 up, 2 down)")
        .await;
    b.screenshot("web-big.png").await;

    b.close().await;
    world.stop().await;
}

/// Starts the world's daemon again as `web_common::start` did, with the
/// dashboard on `addr`.
async fn restart(world: &mut World, addr: SocketAddr) {
    let mut settings = world.settings();
    settings.http_addr = Some(addr.to_string());
    settings.grpc_addr = Some("127.0.0.1:0".into());
    settings.http_password_file = Some(world.dir.path().join("htpasswd"));
    world.start(settings).await;
    assert_eq!(web(world), addr);
}

/// The first-render figures of docs/performance.md, against a dashboard
/// already running at `MAGLEV_MEASURE_URL` (e.g. a release maglevd with
/// 10,000 frontends on the release simulator); without it, nothing to
/// measure. Run with `MAGLEV_MEASURE_URL=http://127.0.0.1:8080 cargo test
/// -p maglev-bin --test web_browser -- --nocapture first_render_figures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_render_figures() {
    let Ok(url) = std::env::var("MAGLEV_MEASURE_URL") else {
        return eprintln!("MAGLEV_MEASURE_URL is not set");
    };
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    for run in 0..3 {
        let Some(b) = browser(addr).await else { return };
        b.client.goto(&format!("{}/", b.base)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while b.js("return document.body.dataset.ready === 'true'").await != Value::Bool(true) {
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let timing = b
            .js("const ready = performance.getEntriesByName('maglev-ready')[0];
                 const api = performance.getEntriesByType('resource').filter(r => r.name.includes('/api/'));
                 return { ready_ms: ready && Math.round(ready.startTime),
                          api: api.map(r => [r.name.replace(location.origin, ''), r.encodedBodySize,
                                             Math.round(r.responseEnd - r.startTime)]),
                          frontend_elements: document.querySelectorAll('[data-frontend]').length,
                          rows: document.querySelectorAll('tr').length }")
            .await;
        eprintln!("run {run}: {timing}");
        b.close().await;
    }
}

/// The tabs' names, in order.
async fn tabs(b: &Browser) -> Vec<String> {
    b.attrs("#tabs a[data-node]", "data-node").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_a_tab_per_maglevd_a_peer_away_and_back_and_an_action_on_a_peer() {
    let [a, b, mut c] = web_common::start_fleet(175).await;
    let addr = web(&a);
    let Some(br) = browser(addr).await else {
        for world in [a, b, c] {
            world.stop().await;
        }
        return;
    };
    br.client
        .goto(&format!("http://{}:{}@{addr}/login", ADMIN.0, ADMIN.1))
        .await
        .unwrap();
    br.open("/").await;
    br.until_text("#who", "alice (admin)").await;

    // A tab per maglevd (this one first), and the fleet's.
    br.until(
        "three maglevds' tabs",
        "return document.querySelectorAll('#tabs a[data-node]').length === 4",
    )
    .await;
    let names = tabs(&br).await;
    assert_eq!(names[1..], ["b", "c", ""], "{names:?}");
    assert_eq!(
        br.attrs("#tabs a[aria-current]", "data-node").await,
        [names[0].clone()]
    );

    // B's tab: its cards, rendered as this node's, from B.
    br.click("#tabs a[data-node=b]").await;
    br.until(
        "b's tab shows its cards",
        "return document.body.dataset.tab === 'peer' && document.body.dataset.ready === 'true' \
           && document.querySelector('section[data-frontend=web]') !== null",
    )
    .await;
    assert_eq!(
        br.attrs("section[data-frontend]", "data-frontend").await,
        ["api", "web"]
    );
    br.until_attr(&row("web", "a"), "data-state", "up").await;
    assert_eq!(br.attrs("#tabs a[aria-current]", "data-node").await, ["b"]);

    // An admin pauses a on B's tab: B's simulator alone, both audits.
    let vip = "192.0.2.175";
    let programmed = w(&[
        ("127.0.175.1", 100),
        ("127.0.175.2", 100),
        ("127.0.175.3", 0),
    ]);
    br.click(&format!(
        "{} [data-action=pause][data-backend=a]",
        row("web", "a")
    ))
    .await;
    br.until(
        "the dialog is open",
        "return document.querySelector('#confirm').open",
    )
    .await;
    br.click("#confirm-ok").await;
    until("a is drained in B's simulator", || {
        b.weights(vip) == w(&[("127.0.175.1", 0), ("127.0.175.2", 100), ("127.0.175.3", 0)])
    })
    .await;
    br.until_attr(&row("web", "a"), "data-state", "paused")
        .await;
    // B's events reach its tab through this daemon's stream.
    br.until(
        "a peer event of b on b's tab",
        "return Number(document.body.dataset.peerEvents || 0) > 0",
    )
    .await;
    assert_eq!(a.weights(vip), programmed);
    assert_eq!(c.weights(vip), programmed);
    assert!(web_common::audited_once(&a, "PauseBackend", "alice"));
    assert!(web_common::audited_once(&b, "PauseBackend", "127.0.0.1"));

    // The fleet tab: frontends × nodes; web differs in health on b.
    br.click("#tab-fleet").await;
    br.until(
        "the matrix is shown",
        "return document.body.dataset.tab === 'fleet' \
           && document.querySelectorAll('#fleet-rows tr[data-frontend]').length === 2",
    )
    .await;
    assert_eq!(
        br.attrs("#fleet-head th[data-node]", "data-node").await[1..],
        ["b", "c"]
    );
    br.until_attr(
        "#fleet-rows tr[data-frontend=web]",
        "data-verdict",
        "differ: health",
    )
    .await;
    assert_eq!(
        br.attrs("#fleet-rows tr[data-frontend=web] td.cell", "data-verdict")
            .await,
        ["agree", "differ: health", "agree"]
    );
    assert_eq!(
        br.attrs("#fleet-rows tr[data-frontend=api]", "data-verdict")
            .await,
        ["agree"]
    );
    br.screenshot("web-fleet.png").await;

    // C goes away: unreachable in the matrix and on its tab; back by
    // itself when it restarts.
    let c_grpc = web_common::stop_daemon(&mut c).await;
    br.until_attr("#fleet-head th[data-node=c]", "data-reachable", "false")
        .await;
    br.until_attr("#tabs a[data-node=c]", "data-reachable", "false")
        .await;
    assert_eq!(
        br.attrs("#fleet-rows tr[data-frontend=api] td.cell", "data-verdict")
            .await,
        ["agree", "agree", "unreachable"]
    );
    br.screenshot("web-fleet-unreachable.png").await;
    web_common::restart_daemon(&mut c, c_grpc).await;
    br.until_attr("#fleet-head th[data-node=c]", "data-reachable", "true")
        .await;
    // C's stream ending and coming back reached the fleet tab as events.
    br.until(
        "peer events on the fleet tab",
        "return Number(document.body.dataset.peerEvents || 0) > 0",
    )
    .await;
    br.until_attr("#tabs a[data-node=c]", "data-reachable", "true")
        .await;
    br.until_attr("#fleet-rows tr[data-frontend=api]", "data-verdict", "agree")
        .await;

    // C's own tab while it is away says so, and recovers.
    br.click("#tabs a[data-node=c]").await;
    br.until(
        "c's tab shows its cards",
        "return document.body.dataset.tab === 'peer' \
           && document.querySelector('section[data-frontend=web]') !== null",
    )
    .await;
    let c_grpc = web_common::stop_daemon(&mut c).await;
    br.until_attr("#peer-status", "data-reachable", "false")
        .await;
    assert!(
        br.texts("#live").await[0].contains("unreachable"),
        "the header does not say c is unreachable"
    );
    web_common::restart_daemon(&mut c, c_grpc).await;
    br.until_attr("#peer-status", "data-reachable", "true")
        .await;

    br.close().await;
    for world in [a, b, c] {
        world.stop().await;
    }
}
