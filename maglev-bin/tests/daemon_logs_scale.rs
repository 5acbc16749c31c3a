//! Logs at scale (issue 25): the cold start of 2,000 frontends × 16
//! static backends writes summary lines with the totals, not a line per
//! backend, frontend or op, while a single change afterwards still logs
//! its own lines. Its own test binary: it installs the process's global
//! subscriber, a layer that keeps every INFO-or-above record of maglev's
//! crates (not the simulator's).

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::World;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// One log record: its level, message and fields.
#[derive(Debug, Clone)]
struct Record {
    level: tracing::Level,
    message: String,
    fields: BTreeMap<String, String>,
}

impl Record {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

struct Fields<'a>(&'a mut Record);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.put(field, text);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.insert(field.name().to_owned(), value);
        }
    }
}

/// Keeps the INFO-or-above records of maglev's crates in [`RECORDS`].
struct Keep;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Keep {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        let ours =
            meta.target().starts_with("maglev_bin") || meta.target().starts_with("maglev_health");
        if *meta.level() > tracing::Level::INFO || !ours {
            return;
        }
        let mut r = Record {
            level: *meta.level(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Fields(&mut r));
        RECORDS.lock().unwrap().push(r);
    }
}

/// The records kept so far, emptied.
fn take() -> Vec<Record> {
    std::mem::take(&mut *RECORDS.lock().unwrap())
}

/// Waits until `done` holds of the records taken since the call (a hang
/// bound, nothing is timed), and returns them.
async fn records_until(what: &str, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut records = Vec::new();
    loop {
        records.extend(take());
        if done(&records) {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}: {} records, the last {:?}",
            records.len(),
            records.iter().rev().take(5).collect::<Vec<_>>()
        );
        tick.tick().await;
    }
}

fn with_message<'a>(records: &'a [Record], prefix: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.message.starts_with(prefix))
        .collect()
}

const FRONTENDS: usize = 2000;
const BACKENDS: usize = 16;

/// `FRONTENDS` frontends of `BACKENDS` static backends each (no health
/// check: up from the start), half in pool `primary`, half in `fallback`.
fn body() -> String {
    let mut y = String::from("  backends:\n");
    for f in 0..FRONTENDS {
        for b in 0..BACKENDS {
            let n = f * BACKENDS + b;
            y += &format!(
                "    f{f}b{b}: {{ address: 10.{}.{}.{} }}\n",
                n >> 16,
                (n >> 8) & 0xff,
                n & 0xff
            );
        }
    }
    y += "  frontends:\n";
    for f in 0..FRONTENDS {
        y += &format!(
            "    f{f}:\n      address: 192.0.{}.{}\n      protocol: tcp\n      port: 80\n      pools:\n",
            f / 250 + 100,
            f % 250 + 1
        );
        for (pool, range) in [
            ("primary", 0..BACKENDS / 2),
            ("fallback", BACKENDS / 2..BACKENDS),
        ] {
            y += &format!("        - name: {pool}\n          backends: {{");
            for b in range {
                y += &format!(" f{f}b{b}: {{}},");
            }
            y += " }\n";
        }
    }
    y
}

/// The cold start writes a summary per kind of line (backend transitions,
/// frontend transitions, active pools, the sync's ops) carrying the
/// totals, and no warning; then an operator disabling a frontend's whole
/// primary pool gets each backend's transition, the frontend's new active
/// pool and each op on its own line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_at_scale_logs_summaries_and_a_single_change_its_lines() {
    tracing_subscriber::registry()
        .with(Keep)
        .try_init()
        .unwrap();
    let mut world = World::new(26, 1).await;
    world.write_body(&body());
    world.start(world.settings()).await;
    let vips = FRONTENDS.to_string();
    let ases = (FRONTENDS * BACKENDS).to_string();
    let synced = |r: &Record| {
        r.message.starts_with("vpp-lbsync")
            && r.field("scope") == Some("all")
            && r.field("vip_added") == Some(vips.as_str())
            && r.field("as_added") == Some(ases.as_str())
    };
    let start = records_until("the full sync's summary is logged", |rs| {
        rs.iter().any(synced)
    })
    .await;
    assert_eq!(
        world.vips().len(),
        FRONTENDS,
        "the simulator holds every VIP"
    );

    let warnings: Vec<_> = start
        .iter()
        .filter(|r| r.level <= tracing::Level::WARN)
        .collect();
    assert!(warnings.is_empty(), "no warning at start: {warnings:?}");
    assert!(
        start.len() <= 100,
        "{} INFO lines for a cold start of {FRONTENDS} × {BACKENDS}: {:?}",
        start.len(),
        start.iter().take(30).collect::<Vec<_>>()
    );
    for line in ["backend-transition", "frontend-transition", "active-pool"] {
        assert!(
            start.iter().all(|r| r.message != line),
            "no single {line} line at start: {start:?}"
        );
    }
    // The checker's summary: every backend's transitions, with totals.
    let backends: usize = with_message(&start, "backend-transitions")
        .iter()
        .map(|r| r.field("backends").unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(backends, FRONTENDS * BACKENDS, "{start:?}");
    let ups: usize = with_message(&start, "backend-transitions")
        .iter()
        .map(|r| {
            let by = r.field("by_change").unwrap();
            by.split(", ")
                .filter(|c| c.contains("->up: "))
                .map(|c| c.rsplit(": ").next().unwrap().parse::<usize>().unwrap())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(
        ups,
        FRONTENDS * BACKENDS,
        "every backend came up: {start:?}"
    );
    // Every frontend's first state and active pool, as summaries.
    let frontends: usize = with_message(&start, "frontend-transition")
        .iter()
        .map(|r| r.field("frontends").unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(frontends, FRONTENDS, "{start:?}");
    let pools = with_message(&start, "active-pool");
    assert!(pools.iter().all(|r| r.message.starts_with("active-pools")));
    let primary: usize = pools
        .iter()
        .map(|r| r.field("frontends").unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(primary, FRONTENDS, "{pools:?}");
    assert!(
        pools
            .iter()
            .all(|r| r.field("by_pool") == Some(format!("primary: {FRONTENDS}").as_str())),
        "{pools:?}"
    );
    assert_eq!(with_message(&start, "vpp-lbsync").len(), 1, "{start:?}");

    // A single change: each line of its own.
    take();
    let handle = world.handle().clone();
    for b in 0..BACKENDS / 2 {
        handle.disable(&format!("f5b{b}")).unwrap();
    }
    let after = records_until("the fallback pool is programmed", |rs| {
        with_message(rs, "vpp-lbsync")
            .iter()
            .filter(|r| r.field("op").is_some_and(|op| op.contains("10.0.0.88")))
            .count()
            > 0
            && !with_message(rs, "active-pool").is_empty()
    })
    .await;
    let transitions = with_message(&after, "backend-transition");
    assert_eq!(transitions.len(), BACKENDS / 2, "{after:?}");
    assert!(
        transitions
            .iter()
            .all(|r| r.message == "backend-transition" && r.field("to") == Some("disabled")),
        "{transitions:?}"
    );
    let pools = with_message(&after, "active-pool");
    assert_eq!(pools.len(), 1, "{after:?}");
    assert_eq!(pools[0].message, "active-pool");
    assert_eq!(pools[0].field("frontend"), Some("f5"));
    assert_eq!(pools[0].field("pool"), Some("fallback"));
    assert!(
        with_message(&after, "vpp-lbsync")
            .iter()
            .all(|r| r.field("frontend") == Some("f5") && r.field("op").is_some()),
        "{after:?}"
    );
    assert!(
        after.iter().all(|r| !r.message.contains("summary")),
        "{after:?}"
    );
    world.stop().await;
}
