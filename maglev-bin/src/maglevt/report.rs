//! `maglevt --json`: no screen, one summary object per line, every report
//! interval and once more at exit (`"final": true`), for scripts and tests.
//!
//! Each object: `unix_ms`, `elapsed_s`, `host`, `final`, `vips` (per VIP:
//! `name`, `names`, `address`, `port`, `protocol`, `probe`, lifetime `n`,
//! `ok`, `fail`, `anomalies` by kind, `last`, the rolling `window` with
//! `ok_pct` and `p50_ms`/`p95_ms`/`p99_ms`/`max_ms`, and the `tally` of who
//! answered), `skipped` (VIPs not probed, with the reason) and `errors`
//! (anomalies by kind, all VIPs).

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::session::{Session, Snapshot};

#[derive(Serialize)]
struct Report<'a> {
    unix_ms: i64,
    elapsed_s: f64,
    host: &'a str,
    r#final: bool,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// One summary line of `snapshot`.
pub fn line(host: &str, snapshot: &Snapshot, last: bool) -> String {
    let report = Report {
        unix_ms: snapshot.unix_nanos / 1_000_000,
        elapsed_s: (snapshot.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        host,
        r#final: last,
        snapshot,
    };
    serde_json::to_string(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Writes a line every `every` (never when zero) until the session is
/// finished, `until` elapses or `stop` is cancelled; then stops the session
/// and writes the final line. A write error (the reader went away) ends
/// the run.
pub async fn run(
    session: &Session,
    host: &str,
    every: Duration,
    until: Option<Duration>,
    stop: &CancellationToken,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let deadline = until.map(|d| tokio::time::Instant::now() + d);
    let mut tick = (!every.is_zero()).then(|| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let ticked = async {
            match &mut tick {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let expired = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = session.finished() => break,
            _ = stop.cancelled() => break,
            _ = expired => break,
            _ = ticked => {
                writeln!(out, "{}", line(host, &session.snapshot(0), false))?;
                out.flush()?;
            }
        }
    }
    session.stop().await;
    writeln!(out, "{}", line(host, &session.snapshot(0), true))?;
    out.flush()
}
