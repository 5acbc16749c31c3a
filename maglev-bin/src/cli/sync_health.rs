//! The sync-health lines of `show vpp info`: whether maglevd's reconciler
//! keeps up (frontends pending and for how long, failed reads and syncs,
//! the last full sync).

use std::time::Duration;

use super::render::{self, Block, Cell, Paint};
use crate::grpc::proto;

/// How many pending frontends are named before the rest is counted.
const NAMED: usize = 8;

fn std_duration(d: &prost_types::Duration) -> Duration {
    let seconds = u64::try_from(d.seconds).unwrap_or(0);
    let nanos = u32::try_from(d.nanos).unwrap_or(0);
    Duration::new(seconds, nanos)
}

/// Adds the sync-health lines of `v` to `b`; `now` is Unix nanoseconds.
pub(super) fn lines(b: &mut Block, v: &proto::VppInfo, now: i64) {
    let pending = if v.sync_pending.is_empty() {
        Cell::plain("none")
    } else {
        let mut parts: Vec<String> = v
            .sync_pending
            .iter()
            .take(NAMED)
            .map(|p| {
                let waited = p.waited.as_ref().map(std_duration).unwrap_or_default();
                match p.retry_in.as_ref().map(std_duration) {
                    Some(r) => format!(
                        "{} ({}, retry in {})",
                        p.frontend,
                        render::duration(waited),
                        render::duration(r)
                    ),
                    None => format!("{} ({})", p.frontend, render::duration(waited)),
                }
            })
            .collect();
        if v.sync_pending.len() > NAMED {
            parts.push(format!("+{} more", v.sync_pending.len() - NAMED));
        }
        Cell {
            text: parts.join(", "),
            paint: Paint::Yellow,
        }
    };
    b.kv("sync-pending", pending);
    if v.sync_full_pending {
        b.kv("full-sync", "pending");
    }
    let last = if v.last_full_sync_ns <= 0 {
        "never".to_owned()
    } else {
        format!(
            "{} ({} ago)",
            render::utc(v.last_full_sync_ns),
            render::age(v.last_full_sync_ns, now)
        )
    };
    b.kv("last-full-sync", last);
    b.kv("read-errors", v.read_errors.to_string());
    b.kv(
        "sync-failures",
        format!(
            "refused {}, read {}, unavailable {}",
            v.sync_failures_refused, v.sync_failures_read, v.sync_failures_unavailable
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::render::Style;

    fn d(seconds: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos: 0 })
    }

    #[test]
    fn pending_frontends_read_with_their_wait_and_retry() {
        let now = 1_796_158_858_000_000_000;
        let v = proto::VppInfo {
            sync_pending: vec![
                proto::PendingSync {
                    frontend: "web".to_owned(),
                    waited: d(12),
                    retry_in: d(8),
                },
                proto::PendingSync {
                    frontend: "dns".to_owned(),
                    waited: d(1),
                    retry_in: None,
                },
            ],
            sync_full_pending: true,
            read_errors: 2,
            sync_failures_refused: 5,
            sync_failures_read: 2,
            last_full_sync_ns: now - 90_000_000_000,
            ..Default::default()
        };
        let mut b = Block::new();
        lines(&mut b, &v, now);
        let out = b.render(Style { color: false });
        assert!(
            out.contains("sync-pending    web (12s, retry in 8s), dns (1s)\n"),
            "{out}"
        );
        assert!(out.contains("full-sync       pending\n"), "{out}");
        assert!(out.contains("(1m30s ago)"), "{out}");
        assert!(out.contains("read-errors     2\n"), "{out}");
        assert!(
            out.contains("sync-failures   refused 5, read 2, unavailable 0\n"),
            "{out}"
        );
        let mut b = Block::new();
        lines(&mut b, &proto::VppInfo::default(), now);
        let out = b.render(Style { color: false });
        assert!(out.contains("sync-pending    none\n"), "{out}");
        assert!(out.contains("last-full-sync  never\n"), "{out}");
    }
}
