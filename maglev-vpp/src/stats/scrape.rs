//! [`Scrape`]: the per-poll read of the LB and route counters by VPP's
//! indexes, and [`VipScrape`], the daemon's read of the same keyed by VIP.
//!
//! The first scrape of an epoch finds the five entries by name and
//! translates their per-thread row pointers (VPP-WIRE D.9); every scrape
//! then reads only the watched cells: `4 × threads` words per VIP and
//! `2 × threads` per route. The cost follows the number of watched VIPs
//! and routes, never the length of the vectors (a full BGP table makes
//! `/net/route/to` millions of rows long).

use std::collections::BTreeMap;
use std::time::Duration;

use maglev_core::dataplane::VipKey;

use super::error::{Result, StatsError};
use super::segment::{StatSegment, Vector, Window};
use super::types::{Counter, EntryKind, LbCounter, ROUTE_TO};

/// The four LB counters of one VIP, summed over threads: the one type for
/// them, whether read from the stats segment or (proposed for
/// `lb::vips_text`) from `show lb vips verbose`. Field names follow VPP's
/// `lb_vip_counter_t` ([`LbCounter`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LbCounters {
    /// `packet from existing sessions`.
    pub next_packet: u64,
    /// `first session packet`.
    pub first_packet: u64,
    /// `untracked packet`.
    pub untracked: u64,
    /// `no server configured`.
    pub no_server: u64,
}

impl LbCounters {
    /// One of the four by kind.
    pub fn get(&self, which: LbCounter) -> u64 {
        match which {
            LbCounter::NextPacket => self.next_packet,
            LbCounter::FirstPacket => self.first_packet,
            LbCounter::Untracked => self.untracked,
            LbCounter::NoServer => self.no_server,
        }
    }

    fn slot(&mut self, which: usize) -> &mut u64 {
        match which {
            0 => &mut self.next_packet,
            1 => &mut self.first_packet,
            2 => &mut self.untracked,
            _ => &mut self.no_server,
        }
    }
}

/// What one scrape read: per watched VIP its LB counters, per watched route
/// its `/net/route/to` counter, all summed over threads. Counters that do
/// not exist yet (no VIP was ever added) or indexes beyond a vector read as
/// zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The epoch the values were read under.
    pub epoch: u64,
    /// Number of threads the counters had.
    pub threads: usize,
    vips: Vec<(u32, LbCounters)>,
    routes: Vec<(u32, Counter)>,
}

impl Snapshot {
    /// `(VIP pool index, counters)`, by pool index.
    pub fn vips(&self) -> &[(u32, LbCounters)] {
        &self.vips
    }

    /// `(route stats index, counter)`, by stats index.
    pub fn routes(&self) -> &[(u32, Counter)] {
        &self.routes
    }

    /// Counters of one watched VIP.
    pub fn vip(&self, pool_index: u32) -> Option<LbCounters> {
        let i = self.vips.binary_search_by_key(&pool_index, |v| v.0).ok()?;
        Some(self.vips[i].1)
    }

    /// Counter of one watched route.
    pub fn route(&self, stats_index: u32) -> Option<Counter> {
        let i = self
            .routes
            .binary_search_by_key(&stats_index, |v| v.0)
            .ok()?;
        Some(self.routes[i].1)
    }
}

/// A resolved counter entry: directory index and per-thread rows.
#[derive(Debug, Clone)]
struct Resolved {
    index: usize,
    rows: Vec<Vector>,
}

/// What a scrape learnt about the segment in one epoch.
#[derive(Debug, Clone)]
struct Plan {
    epoch: u64,
    directory: Vector,
    /// The four LB counters in [`LbCounter`] order (`None`: not registered).
    lb: [Option<Resolved>; 4],
    route: Option<Resolved>,
}

/// A cached scrape of the LB counters of some VIPs and the route counters
/// of some routes, by index.
///
/// Build it with the VIP pool indexes (from `show lb vips verbose`) and
/// route stats indexes (from `ip_route_lookup`) to watch, then call
/// [`run`](Self::run) every poll. VPP reuses a deleted VIP's pool index for
/// the next VIP, so a long-running caller wants [`VipScrape`], which keys
/// the same counters by VIP.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    plan: Option<Plan>,
    resolutions: u64,
    snapshot: Snapshot,
    /// Watched VIP pool indexes, sorted (the snapshot's order).
    vip_cols: Vec<u32>,
    /// Per LB counter, per watched VIP: the running sum (`4 × vips`).
    acc: Vec<u64>,
}

impl Scrape {
    /// A scrape of these VIP pool indexes and route stats indexes
    /// (duplicates are dropped, order does not matter).
    pub fn new(vips: impl IntoIterator<Item = u32>, routes: impl IntoIterator<Item = u32>) -> Self {
        let mut s = Scrape::default();
        s.set_vips(vips);
        s.set_routes(routes);
        s
    }

    /// Replaces the watched VIP pool indexes.
    pub fn set_vips(&mut self, vips: impl IntoIterator<Item = u32>) {
        let mut v: Vec<u32> = vips.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.snapshot.vips = v.iter().map(|&i| (i, LbCounters::default())).collect();
        self.acc = vec![0; 4 * v.len()];
        self.vip_cols = v;
    }

    /// Replaces the watched route stats indexes.
    pub fn set_routes(&mut self, routes: impl IntoIterator<Item = u32>) {
        let mut v: Vec<u32> = routes.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.snapshot.routes = v.into_iter().map(|i| (i, Counter::default())).collect();
    }

    /// How many times the plan was (re)built: once per epoch seen.
    pub fn resolutions(&self) -> u64 {
        self.resolutions
    }

    /// Reads the watched counters in one consistent access window.
    ///
    /// Rebuilds the plan first if the epoch moved since the last scrape.
    /// Fails with [`StatsError::Busy`] if the writer never let a window
    /// finish (within the segment's attempts and busy timeout), with
    /// [`StatsError::Truncated`] if the segment shrank, and with a
    /// corruption error if the segment is inconsistent even in a quiet
    /// window. Synchronous: a mapped segment takes microseconds, but a busy
    /// one may spin up to the segment's busy timeout; async code should use
    /// [`run_async`](Self::run_async).
    pub fn run(&mut self, seg: &StatSegment) -> Result<&Snapshot> {
        self.run_limited(seg, None)?;
        Ok(&self.snapshot)
    }

    /// [`run`](Self::run) for async code: it never holds the thread for
    /// long. It tries a few windows at a time and, while the segment stays
    /// busy, sleeps on `tokio::time` between tries, until `budget` has
    /// passed; then [`StatsError::Busy`] (with every attempt counted).
    pub async fn run_async(&mut self, seg: &StatSegment, budget: Duration) -> Result<&Snapshot> {
        let deadline = tokio::time::Instant::now() + budget;
        let mut tried = 0u32;
        loop {
            match self.run_limited(seg, Some(ASYNC_ATTEMPTS)) {
                Err(StatsError::Busy { attempts }) => {
                    tried = tried.saturating_add(attempts);
                    if tokio::time::Instant::now() >= deadline {
                        return Err(StatsError::Busy { attempts: tried });
                    }
                    tokio::time::sleep(ASYNC_PAUSE).await;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(&self.snapshot),
            }
        }
    }

    /// One scrape: the segment's own limits, or `attempts` windows with no
    /// clock.
    fn run_limited(&mut self, seg: &StatSegment, attempts: Option<u32>) -> Result<()> {
        let Scrape {
            plan,
            resolutions,
            snapshot,
            vip_cols,
            acc,
        } = self;
        let body = |w: &Window<'_>| {
            let stale = plan
                .as_ref()
                .is_none_or(|p| p.epoch != w.epoch || p.directory != w.dir);
            if stale {
                *plan = Some(resolve(w, plan.as_ref())?);
                *resolutions += 1;
            }
            let Some(p) = plan.as_ref() else {
                return Ok(());
            };
            read(w.seg, p, vip_cols, acc, snapshot)
        };
        let result = match attempts {
            None => seg.with_window(body),
            Some(n) => seg.with_window_limited(n, None, body),
        };
        if result.is_err() {
            // The plan may have been built in a torn window.
            self.plan = None;
        }
        result
    }
}

/// Windows [`Scrape::run_async`] tries before it sleeps.
const ASYNC_ATTEMPTS: u32 = 64;

/// Pause of [`Scrape::run_async`] between tries of a busy segment.
const ASYNC_PAUSE: Duration = Duration::from_millis(1);

/// Where one VIP's counters live in the stats segment, as VPP reports them
/// today: its pool index (the column of the four LB counters, `[N]` of
/// `show lb vips verbose`) and the stats index of its prefix's FIB entry
/// (the row of `/net/route/to`, from `ip_route_lookup`). VPP reuses both
/// once a VIP or route is gone, so they are only valid with the LB snapshot
/// they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VipStatsIndex {
    /// The VIP's pool index.
    pub pool_index: u32,
    /// The stats index of the VIP prefix's route, if known.
    pub route_stats_index: Option<u32>,
}

/// Every counter of one VIP, summed over threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VipStats {
    /// The four LB plugin counters of the VIP.
    pub lb: LbCounters,
    /// `/net/route/to` of the VIP's prefix: every packet and byte routed to
    /// it (shared by the per-port VIPs of one prefix). `None` when the
    /// route's stats index was not given.
    pub route: Option<Counter>,
}

/// What one [`VipScrape`] read: each VIP's counters, by [`VipKey`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipSnapshot {
    /// The epoch the values were read under.
    pub epoch: u64,
    /// Number of threads the counters had.
    pub threads: usize,
    vips: Vec<(VipKey, VipStats)>,
}

impl VipSnapshot {
    /// Every watched VIP with its counters, in [`VipKey`] order.
    pub fn vips(&self) -> &[(VipKey, VipStats)] {
        &self.vips
    }

    /// The counters of one watched VIP.
    pub fn get(&self, key: &VipKey) -> Option<&VipStats> {
        let i = self.vips.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(&self.vips[i].1)
    }
}

/// The daemon's scrape: counters keyed by VIP, not by the pool index VPP
/// happens to give it now.
///
/// The caller gives the mapping `VipKey → VipStatsIndex` from its latest
/// LB snapshot (`lb_snapshot().pool_index(key)`, `route_stats_index(prefix)`)
/// and gives it again whenever it takes a new snapshot;
/// [`set_vips`](Self::set_vips) rebuilds the cached resolution only when
/// the mapping changed. When VPP reuses a deleted VIP's pool index for
/// another VIP, the new mapping moves the column to the new key and the
/// old key is gone: counters are never reported under the wrong VIP.
#[derive(Debug, Clone, Default)]
pub struct VipScrape {
    inner: Scrape,
    map: BTreeMap<VipKey, VipStatsIndex>,
    /// Per VIP (in key order): its position in the inner snapshot's VIPs
    /// and routes.
    slots: Vec<(usize, Option<usize>)>,
    snapshot: VipSnapshot,
    rebuilds: u64,
}

impl VipScrape {
    /// A scrape of these VIPs.
    pub fn new(vips: impl IntoIterator<Item = (VipKey, VipStatsIndex)>) -> Self {
        let mut s = VipScrape::default();
        s.set_vips(vips);
        s
    }

    /// Replaces the mapping (a key given twice keeps its last indexes).
    /// Returns whether it changed; only then is the resolution rebuilt.
    pub fn set_vips(&mut self, vips: impl IntoIterator<Item = (VipKey, VipStatsIndex)>) -> bool {
        let map: BTreeMap<VipKey, VipStatsIndex> = vips.into_iter().collect();
        if map == self.map && self.rebuilds > 0 {
            return false;
        }
        self.inner.set_vips(map.values().map(|v| v.pool_index));
        self.inner
            .set_routes(map.values().filter_map(|v| v.route_stats_index));
        let (pools, routes) = (&self.inner.vip_cols, self.inner.snapshot.routes());
        self.slots = map
            .values()
            .map(|v| {
                let pool = pools.binary_search(&v.pool_index).unwrap_or(0);
                let route = v
                    .route_stats_index
                    .and_then(|r| routes.binary_search_by_key(&r, |x| x.0).ok());
                (pool, route)
            })
            .collect();
        self.snapshot = VipSnapshot {
            epoch: 0,
            threads: 0,
            vips: map.keys().map(|&k| (k, VipStats::default())).collect(),
        };
        self.map = map;
        self.rebuilds += 1;
        true
    }

    /// The current mapping.
    pub fn mapping(&self) -> &BTreeMap<VipKey, VipStatsIndex> {
        &self.map
    }

    /// How many times the mapping was (re)resolved: once at creation, then
    /// once per [`set_vips`](Self::set_vips) that changed it.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// How many times the segment's entries were (re)resolved: once per
    /// epoch seen ([`Scrape::resolutions`]).
    pub fn resolutions(&self) -> u64 {
        self.inner.resolutions()
    }

    /// Reads every watched VIP's counters in one consistent access window
    /// (see [`Scrape::run`]).
    pub fn run(&mut self, seg: &StatSegment) -> Result<&VipSnapshot> {
        self.inner.run_limited(seg, None)?;
        self.fill();
        Ok(&self.snapshot)
    }

    /// [`run`](Self::run) for async code (see [`Scrape::run_async`]).
    pub async fn run_async(&mut self, seg: &StatSegment, budget: Duration) -> Result<&VipSnapshot> {
        self.inner.run_async(seg, budget).await?;
        self.fill();
        Ok(&self.snapshot)
    }

    fn fill(&mut self) {
        let inner = &self.inner.snapshot;
        self.snapshot.epoch = inner.epoch;
        self.snapshot.threads = inner.threads;
        for ((_, stats), &(pool, route)) in self.snapshot.vips.iter_mut().zip(&self.slots) {
            stats.lb = inner
                .vips
                .get(pool)
                .map_or_else(LbCounters::default, |v| v.1);
            stats.route = route.and_then(|r| inner.routes.get(r)).map(|r| r.1);
        }
    }
}

/// Finds the five entries (reusing the old directory indexes when the
/// names still match) and translates their rows.
fn resolve(w: &Window<'_>, old: Option<&Plan>) -> Result<Plan> {
    let mut names: [&str; 5] = [ROUTE_TO; 5];
    for (slot, c) in names.iter_mut().zip(LbCounter::ALL) {
        *slot = c.name();
    }
    let mut found: [Option<usize>; 5] = [None; 5];
    if let Some(old) = old {
        let olds = old.lb.iter().chain(std::iter::once(&old.route));
        for ((slot, name), prev) in found.iter_mut().zip(names).zip(olds) {
            if let Some(prev) = prev
                && prev.index < w.dir.len
                && w.name_is(prev.index, name.as_bytes())?
            {
                *slot = Some(prev.index);
            }
        }
    }
    if found.iter().any(Option::is_none) {
        // One pass over the directory for whatever is still missing.
        for i in 0..w.dir.len {
            for (slot, name) in found.iter_mut().zip(names) {
                if slot.is_none() && w.name_is(i, name.as_bytes())? {
                    *slot = Some(i);
                }
            }
        }
    }
    let mut lb: [Option<Resolved>; 4] = Default::default();
    for (k, slot) in lb.iter_mut().enumerate() {
        *slot = found[k]
            .map(|i| rows(w, i, names[k], EntryKind::Simple, 8))
            .transpose()?
            .flatten();
    }
    let route = found[4]
        .map(|i| rows(w, i, ROUTE_TO, EntryKind::Combined, 16))
        .transpose()?
        .flatten();
    Ok(Plan {
        epoch: w.epoch,
        directory: w.dir,
        lb,
        route,
    })
}

/// The rows of entry `i`, which must be of `kind` (`None` if it was
/// deleted).
fn rows(
    w: &Window<'_>,
    i: usize,
    name: &str,
    kind: EntryKind,
    elem: usize,
) -> Result<Option<Resolved>> {
    match w.kind(i)? {
        EntryKind::Empty => Ok(None),
        k if k == kind => Ok(Some(Resolved {
            index: i,
            rows: w.rows(name, w.raw_value(i)?, elem)?,
        })),
        found => Err(StatsError::WrongType {
            name: name.to_owned(),
            expected: if kind == EntryKind::Simple {
                "a simple counter vector"
            } else {
                "a combined counter vector"
            },
            found,
        }),
    }
}

/// Reads the watched cells into `out`.
fn read(
    seg: &StatSegment,
    plan: &Plan,
    cols: &[u32],
    acc: &mut [u64],
    out: &mut Snapshot,
) -> Result<()> {
    let region = seg.region();
    out.epoch = plan.epoch;
    out.threads = plan
        .lb
        .iter()
        .chain(std::iter::once(&plan.route))
        .flatten()
        .map(|r| r.rows.len())
        .max()
        .unwrap_or(0);
    acc.fill(0);
    let n = cols.len();
    for ((resolved, which), sums) in plan
        .lb
        .iter()
        .zip(LbCounter::ALL)
        .zip(acc.chunks_exact_mut(n.max(1)))
    {
        let Some(resolved) = resolved else { continue };
        for (t, row) in resolved.rows.iter().enumerate() {
            // Columns are sorted: those inside this row come first.
            let inside = cols.partition_point(|&c| (c as usize) < row.len);
            for (sum, &col) in sums.iter_mut().zip(&cols[..inside]) {
                let at = row.offset + 8 * col as usize;
                let v = region
                    .u64(at)
                    .map_err(|f| seg.fault(f, which.name(), format!("thread {t} row"), at))?;
                *sum = sum.wrapping_add(v);
            }
        }
    }
    for (j, (_, c)) in out.vips.iter_mut().enumerate() {
        for k in 0..4 {
            *c.slot(k) = acc[k * n + j];
        }
    }
    for (_, c) in &mut out.routes {
        *c = Counter::default();
    }
    if let Some(resolved) = &plan.route {
        for (t, row) in resolved.rows.iter().enumerate() {
            for (route, c) in &mut out.routes {
                let col = *route as usize;
                if col < row.len {
                    let at = row.offset + 16 * col;
                    let mut pair = [0u64; 2];
                    region
                        .u64s(at, &mut pair)
                        .map_err(|f| seg.fault(f, ROUTE_TO, format!("thread {t} row"), at))?;
                    *c = *c
                        + Counter {
                            packets: pair[0],
                            bytes: pair[1],
                        };
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_indexes_are_sorted_and_deduplicated() {
        let s = Scrape::new([3, 1, 3, 2], [9, 8, 9]);
        let vips: Vec<u32> = s.snapshot.vips().iter().map(|v| v.0).collect();
        let routes: Vec<u32> = s.snapshot.routes().iter().map(|r| r.0).collect();
        assert_eq!(vips, [1, 2, 3]);
        assert_eq!(routes, [8, 9]);
        assert_eq!(s.acc.len(), 12);
        assert_eq!(s.snapshot.vip(2), Some(LbCounters::default()));
        assert_eq!(s.snapshot.vip(4), None);
        assert_eq!(s.snapshot.route(7), None);
    }

    #[test]
    fn lb_counters_by_kind() {
        let c = LbCounters {
            next_packet: 1,
            first_packet: 2,
            untracked: 3,
            no_server: 4,
        };
        let got: Vec<u64> = LbCounter::ALL.iter().map(|&k| c.get(k)).collect();
        assert_eq!(got, [1, 2, 3, 4]);
    }
}
