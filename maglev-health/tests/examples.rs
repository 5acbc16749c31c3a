//! The embedding example `examples/check_url.rs`, run against HTTP servers
//! on loopback that the test starts itself.
//!
//! The example keeps its whole logic in `run(args) -> Result<String>` and
//! its `main` only prints what `run` returns, so the file is compiled here
//! as a module and `run` is called directly: no built example binary and
//! no `cargo` needed.

mod common;

use common::http_fixed;

#[path = "../examples/check_url.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not called here"
)]
mod check_url;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The lines of `out` without each probe's duration, `(… ms)`.
fn without_durations(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| {
            l.rsplit_once(" (")
                .filter(|(_, d)| d.ends_with(" ms)"))
                .map_or(l, |(l, _)| l)
        })
        .collect()
}

#[tokio::test]
async fn a_healthy_url_passes_and_comes_up_at_the_first_probe() {
    let (server, mut heads) =
        http_fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
    let url = format!("http://{}/healthz", server.addr);

    let out = check_url::run(&args(&[&url, "3", "10ms"])).await.unwrap();

    assert_eq!(
        without_durations(&out),
        [
            "probe 1: L7OK HTTP status 200",
            "state unknown -> up",
            "probe 2: L7OK HTTP status 200",
            "probe 3: L7OK HTTP status 200",
        ]
    );
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn a_failing_url_goes_down_and_once_is_the_default() {
    let (server, _heads) = http_fixed(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let url = format!("http://127.0.0.1:{}", server.addr.port());

    let out = check_url::run(&args(&[&url])).await.unwrap();

    assert_eq!(
        without_durations(&out),
        [
            "probe 1: L7STS HTTP status 503, want 200-399",
            "state unknown -> down",
        ]
    );
}

#[tokio::test]
async fn bad_arguments_are_refused_with_the_reason() {
    let usage = "usage: check_url URL [COUNT [INTERVAL]]";
    async fn err(a: &[&str]) -> String {
        check_url::run(&args(a)).await.unwrap_err().to_string()
    }
    assert_eq!(err(&[]).await, usage);
    assert_eq!(err(&["http://127.0.0.1/", "many"]).await, usage);
    assert_eq!(
        err(&["ftp://127.0.0.1/"]).await,
        r#""ftp://127.0.0.1/" is not an http:// or https:// URL"#
    );
    assert_eq!(
        err(&["http://[::1/"]).await,
        r#""http://[::1/" is not an http:// or https:// URL"#
    );
    assert_eq!(
        err(&["http://127.0.0.1:http/"]).await,
        r#""http://127.0.0.1:http/" is not an http:// or https:// URL"#
    );
}
