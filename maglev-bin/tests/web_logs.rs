//! The dashboard's event stream and log records: a logged-in admin gets
//! the daemon's log records (the audit trail among them), an anonymous
//! viewer gets the same states and transitions and no log record, live or
//! replayed. Its own test binary, because it installs the process's
//! global subscriber (the [`LogLayer`] feeding this daemon's hub).

mod common;
mod grpc_common;
mod web_common;

use http_body_util::BodyExt;
use maglev_bin::daemon::Parts;
use maglev_bin::events::LogLayer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::PATIENCE;
use web_common::{ADMIN, basic, call, send, state, web};

/// The stream at `path` with `headers`, read until its text holds every
/// piece of `marker`; the events' blocks.
async fn read_until(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    marker: &[&str],
) -> Vec<String> {
    let response = send(addr, web_common::request("GET", path, headers, "")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = String::new();
    while !marker.iter().all(|m| text.contains(m)) {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("an event within the patience")
            .expect("the stream is open")
            .unwrap();
        if let Ok(bytes) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text.split("\n\n").map(str::to_owned).collect()
}

fn is_log(block: &str) -> bool {
    block
        .lines()
        .any(|l| l.trim() == "event: log" || l.trim() == "event:log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_viewers_get_states_but_no_log_or_audit_records() {
    let parts = Parts::default();
    tracing_subscriber::registry()
        .with(LogLayer::new(parts.hub.clone(), parts.clock))
        .try_init()
        .unwrap();
    let world = web_common::start_with(160, 4, parts).await;
    let addr = web(&world);
    let auth = basic(ADMIN.0, ADMIN.1);
    let s = state(addr, &[]).await;
    let since = s["event_id"].as_str().unwrap().to_owned();
    let csrf = s["session"]["csrf"].as_str().unwrap().to_owned();
    let headers = [
        ("authorization", auth.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    // An audited pause, then a resume whose transition comes after the
    // pause's audit record.
    for action in ["pause", "resume"] {
        let (status, body) = call(
            addr,
            "POST",
            &format!("/api/backends/a/{action}"),
            &headers,
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let resumed = [r#""backend":"a""#, r#""from":"paused""#];
    let path = format!("/api/events?since={since}");

    let admin = read_until(addr, &path, &[("authorization", &auth)], &resumed).await;
    assert!(
        admin
            .iter()
            .any(|b| is_log(b) && b.contains("PauseBackend") && b.contains("alice")),
        "the admin sees the audit record: {admin:?}"
    );

    let anonymous = read_until(addr, &path, &[], &resumed).await;
    assert!(
        anonymous
            .iter()
            .any(|b| b.contains("event: backend") && b.contains(r#""to":"paused""#)),
        "{anonymous:?}"
    );
    assert!(
        !anonymous.iter().any(|b| is_log(b)),
        "an anonymous viewer got a log record: {anonymous:?}"
    );
    world.stop().await;
}
