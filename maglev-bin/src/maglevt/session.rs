//! A run of maglevt: one task per VIP starting a probe every interval
//! (±10 % jitter, VIPs spread over the first interval), at most
//! [`max_in_flight`] of them at once, each recorded into the VIP's stats as
//! it ends; the error log across VIPs; snapshots for the screen and the
//! JSON.
//!
//! The rate per VIP is bounded by the interval whatever the VIP does: a
//! black hole fills the in-flight slots with probes waiting for their
//! timeout, and further ticks wait for a slot rather than pile up.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::probe::{ProbeSettings, Prober};
use super::stats::{AnomalyCounts, AnomalyKind, StatsSummary, VipStats};
use super::targets::{Skipped, Target, Targets, VipProbe};
use crate::clock::WallClock;

/// The error log's length; older entries give way (their counts stay).
pub const MAX_ERRORS: usize = 1000;

/// The most probes of one VIP in flight at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// The probes one VIP may have in flight: enough for one per interval
/// through a whole timeout, and one more, at most [`MAX_IN_FLIGHT`].
pub fn max_in_flight(interval: Duration, timeout: Duration) -> usize {
    let per = timeout.as_nanos().div_ceil(interval.as_nanos().max(1));
    (per as usize).saturating_add(1).clamp(1, MAX_IN_FLIGHT)
}

/// How often, and how many times.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Between two probes of a VIP, before jitter.
    pub interval: Duration,
    /// Stop each VIP after this many probes.
    pub count: Option<u64>,
}

/// One entry of the error log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorEntry {
    /// When the probe ended, Unix nanoseconds.
    pub unix_nanos: i64,
    /// The VIP's name.
    pub vip: String,
    /// What kind.
    pub kind: AnomalyKind,
    /// What happened.
    pub detail: String,
}

#[derive(Debug, Default)]
struct ErrorLog {
    entries: VecDeque<ErrorEntry>,
    counts: AnomalyCounts,
}

struct Vip {
    target: Target,
    prober: Prober,
    stats: Mutex<VipStats>,
}

struct Shared {
    vips: Vec<Vip>,
    skipped: Vec<Skipped>,
    errors: Mutex<ErrorLog>,
    clock: WallClock,
    started: Instant,
}

/// A running set of probe loops.
pub struct Session {
    shared: Arc<Shared>,
    stop: CancellationToken,
    loops: TaskTracker,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("vips", &self.shared.vips.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts probing every target. Fails, naming the VIP, on settings a
    /// prober cannot use.
    pub fn start(
        targets: Targets,
        settings: &ProbeSettings,
        schedule: Schedule,
    ) -> Result<Session, String> {
        let vips = targets
            .probed
            .into_iter()
            .map(|target| {
                Ok(Vip {
                    prober: Prober::new(&target, settings)?,
                    target,
                    stats: Mutex::new(VipStats::new()),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let shared = Arc::new(Shared {
            vips,
            skipped: targets.skipped,
            errors: Mutex::new(ErrorLog::default()),
            clock: WallClock::new(),
            started: Instant::now(),
        });
        let stop = CancellationToken::new();
        let loops = TaskTracker::new();
        let in_flight = max_in_flight(schedule.interval, settings.timeout);
        let n = shared.vips.len().max(1) as u32;
        for i in 0..shared.vips.len() {
            let first = schedule.interval * i as u32 / n;
            loops.spawn(probe_loop(
                shared.clone(),
                i,
                schedule,
                first,
                in_flight,
                stop.clone(),
            ));
        }
        loops.close();
        Ok(Session {
            shared,
            stop,
            loops,
        })
    }

    /// How long it has run.
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Everything at this moment; the error log newest first, at most
    /// `errors` entries.
    pub fn snapshot(&self, errors: usize) -> Snapshot {
        let now = self.elapsed();
        let vips = self
            .shared
            .vips
            .iter()
            .map(|v| VipSnapshot {
                name: v.target.name.clone(),
                names: v.target.names.clone(),
                address: v.target.id.address,
                port: v.target.addr.port(),
                protocol: v.target.id.protocol_name(),
                probe: v.target.kind,
                stats: lock(&v.stats).summary(now),
            })
            .collect();
        let log = lock(&self.shared.errors);
        Snapshot {
            elapsed: now,
            unix_nanos: self.shared.clock.now_unix_nanos(),
            vips,
            skipped: self.shared.skipped.clone(),
            errors: log.entries.iter().rev().take(errors).cloned().collect(),
            error_counts: log.counts,
        }
    }

    /// Resolves when every VIP has done its `count` probes (never without
    /// a count).
    pub async fn finished(&self) {
        self.loops.wait().await;
    }

    /// Stops starting probes and waits for those in flight (each ends by
    /// its timeout).
    pub async fn stop(&self) {
        self.stop.cancel();
        self.loops.wait().await;
    }
}

impl Drop for Session {
    /// A dropped session starts no more probes.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A VIP at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VipSnapshot {
    /// Its name.
    pub name: String,
    /// All its names across the config files.
    pub names: Vec<String>,
    /// The VIP address.
    pub address: IpAddr,
    /// The port probed.
    pub port: u16,
    /// The VIP's protocol (`tcp`, `any`).
    pub protocol: &'static str,
    /// How it is probed.
    pub probe: VipProbe,
    /// Its numbers.
    #[serde(flatten)]
    pub stats: StatsSummary,
}

/// Everything at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Since the session started.
    #[serde(skip)]
    pub elapsed: Duration,
    /// The wall time, Unix nanoseconds.
    #[serde(skip)]
    pub unix_nanos: i64,
    /// Every probed VIP, by name.
    pub vips: Vec<VipSnapshot>,
    /// The VIPs not probed.
    pub skipped: Vec<Skipped>,
    /// The latest anomalies, newest first.
    #[serde(skip)]
    pub errors: Vec<ErrorEntry>,
    /// Anomalies by kind, all VIPs, lifetime.
    #[serde(rename = "errors")]
    pub error_counts: AnomalyCounts,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The interval with ±10 % jitter.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::random_range(0.9..1.1))
}

async fn probe_loop(
    shared: Arc<Shared>,
    index: usize,
    schedule: Schedule,
    first: Duration,
    in_flight: usize,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let probes = TaskTracker::new();
    let mut next = Instant::now() + first;
    let mut started = 0u64;
    while schedule.count.is_none_or(|c| started < c) {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        started += 1;
        let shared = shared.clone();
        probes.spawn(async move {
            let vip = &shared.vips[index];
            let outcome = vip.prober.probe().await;
            let now = shared.started.elapsed();
            let anomaly = lock(&vip.stats).record(now, &outcome);
            if let Some(a) = anomaly {
                let mut log = lock(&shared.errors);
                log.counts.add(a.kind);
                if log.entries.len() == MAX_ERRORS {
                    log.entries.pop_front();
                }
                log.entries.push_back(ErrorEntry {
                    unix_nanos: shared.clock.unix_nanos(shared.started + now),
                    vip: vip.target.name.clone(),
                    kind: a.kind,
                    detail: a.detail,
                });
            }
            drop(permit);
        });
        // No burst to catch up after waiting for a slot.
        next = (next + jittered(schedule.interval)).max(Instant::now());
    }
    probes.close();
    probes.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_probes_cover_one_timeout() {
        let ms = Duration::from_millis;
        assert_eq!(max_in_flight(ms(100), ms(1000)), 11);
        assert_eq!(max_in_flight(ms(1000), ms(1000)), 2);
        assert_eq!(max_in_flight(ms(1000), ms(100)), 2);
        assert_eq!(max_in_flight(ms(1), ms(5000)), MAX_IN_FLIGHT);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let i = Duration::from_millis(100);
        for _ in 0..1000 {
            let j = jittered(i);
            assert!(j >= Duration::from_millis(90) && j <= Duration::from_millis(110));
        }
    }
}
