//! The counter scrape (SPEC §6): every `scrape_interval`, the four LB
//! counters and `/net/route/to` of every configured VIP VPP holds, summed
//! over threads, published as one immutable [`CounterSnapshot`] that gRPC
//! and `/metrics` read.
//!
//! Counters are keyed by VIP, never by the pool index VPP happens to give
//! it: the VIP → (pool index, route stats index) mapping is re-read from
//! VPP whenever the reconciler created or deleted a VIP, and on every new
//! connection. The scrape never blocks a tokio worker (its retries are
//! bounded in time); a segment that fails is the whole link failing (API
//! and stats are one unit).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use maglev_core::dataplane::VipKey;
use maglev_vpp::lb::ops::wire_key;
use maglev_vpp::stats::{StatSegment, StatsError, VipScrape, VipStats, VipStatsIndex};

use crate::daemon::handle::Handle;
use crate::daemon::vpp::VppLink;

/// How long the stats socket may take to hand over the segment.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one scrape may retry a segment VPP is updating.
const SCRAPE_BUDGET: Duration = Duration::from_millis(200);

/// One scrape's result.
#[derive(Debug, Clone, Default)]
pub struct CounterSnapshot {
    /// Unix nanoseconds of the scrape.
    pub scraped_unix_nanos: i64,
    /// Per configured frontend that VPP holds, by name.
    pub vips: Vec<VipCounters>,
}

/// One VIP's counters.
#[derive(Debug, Clone)]
pub struct VipCounters {
    /// The frontend's name.
    pub frontend: Arc<str>,
    /// Its VIP.
    pub key: VipKey,
    /// The counters.
    pub stats: VipStats,
}

/// A mapped stats segment and its cached resolution.
#[derive(Debug)]
pub struct StatsConn {
    segment: StatSegment,
    scrape: VipScrape,
    /// The reconciler's VIP generation the mapping was built at.
    mapped_at: Option<u64>,
}

impl StatsConn {
    /// Connects to VPP's stats socket and maps the segment.
    pub async fn connect(path: &std::path::Path) -> Result<StatsConn, StatsError> {
        let segment = StatSegment::connect_async(path, CONNECT_TIMEOUT).await?;
        Ok(StatsConn {
            segment,
            scrape: VipScrape::default(),
            mapped_at: None,
        })
    }

    /// VPP's boot time (`/sys/boottime`, whole seconds) in Unix nanoseconds.
    pub fn boottime_unix_nanos(&self) -> Option<i64> {
        let secs = self.segment.scalar("/sys/boottime").ok()?;
        i64::try_from(secs).ok()?.checked_mul(1_000_000_000)
    }
}

/// Runs the scrape loop until the daemon stops.
pub(crate) async fn run(handle: Handle) {
    let shared = &handle.shared;
    let mut tick = tokio::time::interval(shared.settings.scrape_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(link) = shared.vpp.load_full() else {
            continue;
        };
        if link.stats.is_none() {
            continue;
        }
        match scrape(&handle, &link).await {
            Ok(snapshot) => shared.counters.store(Some(Arc::new(snapshot))),
            Err(e) => {
                tracing::warn!(error = %e, "counter scrape failed");
                shared.counters.store(None);
                link.failed.notify_one();
            }
        }
    }
}

/// One scrape, re-resolving the mapping when VIPs changed.
pub(crate) async fn scrape(handle: &Handle, link: &VppLink) -> anyhow::Result<CounterSnapshot> {
    let Some(stats) = &link.stats else {
        return Ok(CounterSnapshot::default());
    };
    let mut conn = stats.lock().await;
    let generation = handle.shared.control.vip_generation.load(Ordering::Relaxed);
    let config = handle.config();
    if conn.mapped_at != Some(generation) {
        // A reader's read, on the readers' connection: never in the
        // reconciler's way (see daemon::reads).
        // It must see the VIPs as they are since the change.
        let snapshot = link.reads.snapshot_started_after(&*link.reader).await?;
        let mut mapping = Vec::new();
        for fe in config.frontends().values() {
            let key = fe.vip_key();
            let Some(pool_index) = snapshot.pool_index(&key) else {
                continue;
            };
            let route_stats_index = match &link.reader_client {
                Some(client) => client.route_stats_index(wire_key(&key).0).await.ok(),
                None => None,
            };
            mapping.push((
                key,
                VipStatsIndex {
                    pool_index,
                    route_stats_index,
                },
            ));
        }
        conn.scrape.set_vips(mapping);
        conn.mapped_at = Some(generation);
    }
    let conn = &mut *conn;
    let snap = conn.scrape.run_async(&conn.segment, SCRAPE_BUDGET).await?;
    let vips = config
        .frontends()
        .iter()
        .filter_map(|(name, fe)| {
            let key = fe.vip_key();
            snap.get(&key).map(|stats| VipCounters {
                frontend: Arc::from(name.as_str()),
                key,
                stats: *stats,
            })
        })
        .collect();
    Ok(CounterSnapshot {
        scraped_unix_nanos: handle.clock().now_unix_nanos(),
        vips,
    })
}
