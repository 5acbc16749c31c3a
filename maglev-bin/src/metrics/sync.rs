//! The sync-health families: whether the reconciler keeps up with what it
//! is asked to do (issue 24). Written at scrape time from
//! [`Handle::sync_health`], and only with VPP integration on; they stay
//! while VPP is away, which is when they matter.
//!
//! - `maglev_sync_pending_frontends`: frontends marked and not yet synced.
//! - `maglev_sync_oldest_pending_seconds`: how long the longest-waiting of
//!   them has waited (0 with none).
//! - `maglev_sync_full_pending`: 1 while a full sync is marked and has not
//!   run (held by warm-up, or waiting for its retry).
//! - `maglev_vpp_read_errors_total`: reads of VPP's LB state that failed.
//! - `maglev_sync_failures_total{kind}`: failed syncs by kind (`refused`:
//!   per frontend whose ops VPP refused; `read`, `unavailable`: per batch).
//! - `maglev_sync_last_full_success_timestamp_seconds`: when a full sync
//!   last succeeded, Unix seconds (0: none yet).

use super::Format;
use super::text::{self, Kind};
use crate::daemon::Handle;

/// Writes the sync-health families of the daemon behind `handle`.
pub(super) fn encode(out: &mut String, format: Format, handle: &Handle) {
    if !handle.vpp_enabled() {
        return;
    }
    let health = handle.sync_health();
    let gauge = |out: &mut String, name: &str, help: &str| {
        text::header(out, format, name, help, Kind::Gauge);
    };
    gauge(
        out,
        "maglev_sync_pending_frontends",
        "Frontends marked for a sync of VPP and not yet synced",
    );
    text::sample(
        out,
        "maglev_sync_pending_frontends",
        &[],
        health.pending.len() as u64,
    );
    gauge(
        out,
        "maglev_sync_oldest_pending_seconds",
        "How long the longest-waiting pending frontend has waited for its sync",
    );
    let oldest = health.oldest_pending.unwrap_or_default().as_secs_f64();
    text::sample_f64(out, "maglev_sync_oldest_pending_seconds", &[], oldest);
    gauge(
        out,
        "maglev_sync_full_pending",
        "1 while a full sync is marked and has not run (held or waiting for its retry)",
    );
    text::sample(
        out,
        "maglev_sync_full_pending",
        &[],
        u64::from(health.full_pending),
    );
    text::header(
        out,
        format,
        "maglev_vpp_read_errors",
        "Reads of VPP's LB state by the reconciler that failed",
        Kind::Counter,
    );
    text::sample(out, "maglev_vpp_read_errors_total", &[], health.read_errors);
    text::header(
        out,
        format,
        "maglev_sync_failures",
        "Failed syncs of VPP, by kind (refused: per frontend; read, unavailable: per batch)",
        Kind::Counter,
    );
    for (kind, n) in &health.failures {
        text::sample(
            out,
            "maglev_sync_failures_total",
            &[("kind", kind.as_str())],
            *n,
        );
    }
    gauge(
        out,
        "maglev_sync_last_full_success_timestamp_seconds",
        "When a full sync of VPP last succeeded, Unix seconds (0 before the first)",
    );
    let last = health
        .last_full_success_unix_nanos
        .map_or(0.0, |n| n as f64 / 1e9);
    text::sample_f64(
        out,
        "maglev_sync_last_full_success_timestamp_seconds",
        &[],
        last,
    );
}
