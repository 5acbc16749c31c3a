//! The announcer task: feeds [`maglev_core::announce::decide`] one
//! [`PrefixInputs`] per VIP prefix and carries each decision out in the
//! route table.
//!
//! At start it adopts the table as it finds it (a route there is
//! announced). A pass runs whenever an input changes (frontend
//! transitions, VPP connecting or going away, applied syncs, the drain,
//! reloads; each rings [`AnnounceShared::wake`]) and at the earliest time
//! the policy or a retry asked to look again; every
//! `announce_relist_interval` ([`Settings`](crate::daemon::Settings), 30 s)
//! it reads the table back and repairs drift (a route of ours someone
//! removed is added again, with a WARN).
//!
//! A failed change keeps the old state, is recorded in the prefix's view,
//! published as an event with its error, logged, and retried: a withdraw
//! after [`WITHDRAW_RETRY`] (it protects traffic), an announce with a
//! backoff from [`ANNOUNCE_RETRY_MIN`] doubling to [`ANNOUNCE_RETRY_MAX`].
//!
//! Shutdown leaves the routes as they are: an upgrade does not withdraw.
//! A reload that removes the announce section withdraws every route of
//! ours; one that names another kernel table (number, protocol or
//! namespace) moves them there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use maglev_core::announce::{Decision, Policy, Prefix, PrefixInputs, Reason, VppView, decide};
use maglev_core::config::{AnnounceConfig, Config};
use maglev_core::warmup::Phase;
use tokio::time::Instant;

use super::inputs::{self, Claim};
use super::kernel::KernelTable;
use super::shared::AnnounceShared;
use super::table::RouteTable;
use super::view::{Announcements, Drain, FrontendAnnounce, NodeView, PrefixView};
use crate::daemon::Handle;
use crate::daemon::oplog::{Aggregate, PER_OP_LINES};
use crate::events::{AnnounceChange, EventKind};

/// How soon a failed withdraw is tried again.
pub const WITHDRAW_RETRY: Duration = Duration::from_millis(200);

/// The first delay before a failed announce is tried again.
pub const ANNOUNCE_RETRY_MIN: Duration = Duration::from_secs(1);

/// The longest delay before a failed announce is tried again.
pub const ANNOUNCE_RETRY_MAX: Duration = Duration::from_secs(30);

/// While warm-up runs, how often the announcer looks again by itself
/// (its phases end by time, with no event).
const WARMUP_POLL: Duration = Duration::from_secs(1);

/// A table open for announcements, with the routes of ours it held.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The table.
    pub(crate) table: Arc<dyn RouteTable>,
    /// Whether the embedder gave it (`Parts::routes`): it is never
    /// reopened for another kernel table.
    pub(crate) given: bool,
    /// The routes of ours found in it.
    pub(crate) routes: BTreeSet<Prefix>,
}

/// Opens the table `config` names (or takes `given`), and lists it. Fails,
/// saying why and what to do, when this process may not change routes, or
/// when the table cannot be opened or read: never half-way.
pub(crate) async fn open(
    config: &AnnounceConfig,
    given: Option<Arc<dyn RouteTable>>,
) -> anyhow::Result<Opened> {
    let (table, given) = match given {
        Some(t) => (t, true),
        None => {
            check_privileges(config)?;
            let t = KernelTable::open(config)
                .await
                .map_err(|e| anyhow::anyhow!("maglev.announce: opening the route table: {e}"))?;
            (Arc::new(t) as Arc<dyn RouteTable>, false)
        }
    };
    let routes = table
        .list()
        .await
        .map_err(|e| anyhow::anyhow!("maglev.announce: reading the route table: {e}"))?;
    Ok(Opened {
        table,
        given,
        routes,
    })
}

/// Fails unless this process may change `config`'s kernel table, naming
/// the capabilities it lacks and how to grant them.
fn check_privileges(config: &AnnounceConfig) -> anyhow::Result<()> {
    super::privilege::check(config).map_err(|missing| {
        anyhow::anyhow!(
            "{missing} (kernel table {}{})",
            config.table,
            config
                .netns
                .as_deref()
                .map_or(String::new(), |ns| format!(" in netns {ns}"))
        )
    })
}

/// What the announcer knows of one prefix.
#[derive(Debug, Clone)]
struct Entry {
    /// Whether its route is in the table (as far as we know).
    announced: bool,
    /// When this process last changed it.
    last_change: Option<Instant>,
    /// The same, wall clock.
    since_unix_nanos: Option<i64>,
    /// Since when VPP, reachable, has lacked it.
    lacks_since: Option<Instant>,
    /// The last failure, while it lasts.
    error: Option<String>,
    /// Failures in a row.
    failures: u32,
    /// No new attempt before this.
    retry_at: Option<Instant>,
    /// The last decision's reason and next look.
    reason: Reason,
    next_look: Option<Instant>,
    /// The frontends claiming it, by name.
    frontends: Vec<String>,
}

impl Entry {
    fn new(announced: bool) -> Entry {
        Entry {
            announced,
            last_change: None,
            since_unix_nanos: None,
            lacks_since: None,
            error: None,
            failures: 0,
            retry_at: None,
            reason: Reason::WarmingUp,
            next_look: None,
            frontends: Vec::new(),
        }
    }
}

/// One change carried out (or tried) in a pass, for the log.
struct Change {
    prefix: Prefix,
    frontends: String,
    announced: bool,
    reason: Reason,
}

/// The announcer's state.
struct Announcer {
    handle: Handle,
    /// Where the routes are; `None` after a reload removed the section.
    table: Option<Arc<dyn RouteTable>>,
    /// The embedder's table, reused whatever the config says.
    given: Option<Arc<dyn RouteTable>>,
    /// The section the table was opened for.
    opened_for: Option<AnnounceConfig>,
    entries: BTreeMap<Prefix, Entry>,
    /// Since when VPP has been unreachable.
    vpp_down_since: Option<Instant>,
    next_relist: Instant,
    /// When to try opening a table again after a failure.
    reopen_at: Option<Instant>,
}

/// Runs the announcer until the daemon stops; the routes stay as they
/// are then.
pub(crate) async fn run(handle: Handle) {
    let shared = &handle.shared.announce;
    let Some(opened) = shared.take_table() else {
        return;
    };
    let now = Instant::now();
    tracing::info!(
        table = %opened.table.describe(),
        routes = opened.routes.len(),
        "announce: adopting the routes found in the table"
    );
    let mut a = Announcer {
        handle: handle.clone(),
        given: opened.given.then(|| opened.table.clone()),
        table: Some(opened.table),
        opened_for: handle.config().announce().cloned(),
        entries: opened
            .routes
            .into_iter()
            .map(|p| (p, Entry::new(true)))
            .collect(),
        vpp_down_since: None,
        next_relist: now + handle.settings().announce_relist_interval,
        reopen_at: None,
    };
    loop {
        let (_, requested) = shared.drain_for_pass();
        let deadline = a.pass().await;
        shared.carried_out(requested);
        tokio::select! {
            _ = handle.stopping() => return,
            _ = shared.woken() => {}
            _ = sleep_until(deadline) => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Announcer {
    fn shared(&self) -> &AnnounceShared {
        &self.handle.shared.announce
    }

    /// One pass: follow the config's section, repair drift when due,
    /// decide every prefix and carry the decisions out, publish. Returns
    /// when to look again by itself.
    async fn pass(&mut self) -> Option<Instant> {
        let config = self.handle.config();
        self.follow_config(&config).await;
        let now = Instant::now();
        if now >= self.next_relist {
            self.next_relist = now + self.handle.settings().announce_relist_interval;
            self.relist().await;
        }
        let mut deadline = Some(self.next_relist);
        if let Some(at) = self.reopen_at {
            deadline = earliest(deadline, Some(at));
        }
        let Some(section) = config.announce().cloned() else {
            self.publish(&config);
            return deadline;
        };
        if self.table.is_none() {
            self.publish(&config);
            return deadline;
        }
        let policy = section.policy();
        let (drain, _) = self.shared().drain_for_pass();
        let decisions = self.decide_all(&config, &policy, drain.is_some(), now);
        // Withdraws first: they protect traffic.
        let mut changes = Vec::new();
        for pass_announce in [false, true] {
            for (prefix, decision) in &decisions {
                if decision.announce != pass_announce {
                    continue;
                }
                if let Some(c) = self.carry_out(*prefix, decision).await {
                    changes.push(c);
                }
            }
        }
        log_changes(changes);
        for (prefix, d) in &decisions {
            let e = &self.entries[prefix];
            deadline = earliest(deadline, d.next_look);
            if d.changes(e.announced) {
                deadline = earliest(deadline, e.retry_at);
            }
        }
        if self.handle.vpp_enabled()
            && self.handle.shared.control.phase(Instant::now()) != Phase::Finished
        {
            deadline = earliest(deadline, Some(Instant::now() + WARMUP_POLL));
        }
        self.publish(&config);
        deadline
    }

    /// The decision for every prefix at `now`.
    fn decide_all(
        &mut self,
        config: &Config,
        policy: &Policy,
        drained: bool,
        now: Instant,
    ) -> Vec<(Prefix, Decision<Instant>)> {
        let handle = &self.handle;
        let claims = inputs::claims(handle, config);
        let link = handle.vpp().ok();
        let reachable = !handle.vpp_enabled() || link.is_some();
        // Until a read of VPP since it connected reaches the predicted
        // tables, they say nothing of it (a restarted VPP is empty).
        let unread = link.is_some_and(|l| handle.shared.tables.reads() <= l.reads_at_connect);
        if reachable {
            self.vpp_down_since = None;
        } else {
            self.vpp_down_since.get_or_insert(now);
        }
        let serving: BTreeSet<IpAddr> = if handle.vpp_enabled() {
            inputs::vpp_serving(handle)
        } else {
            BTreeSet::new()
        };
        let warmup_done =
            !handle.vpp_enabled() || handle.shared.control.phase(now) == Phase::Finished;
        // Forget what no frontend claims and no route holds (unless a
        // change of it failed and waits).
        self.entries
            .retain(|p, e| claims.contains_key(p) || e.announced);
        for p in claims.keys() {
            self.entries.entry(*p).or_insert_with(|| Entry::new(false));
        }
        let empty = Vec::new();
        let mut out = Vec::with_capacity(self.entries.len());
        for (prefix, e) in &mut self.entries {
            let claim: &Vec<Claim> = claims.get(prefix).unwrap_or(&empty);
            // Copied only when the claims change (a reload).
            if !e
                .frontends
                .iter()
                .map(String::as_str)
                .eq(claim.iter().map(|c| c.name))
            {
                e.frontends = claim.iter().map(|c| c.name.to_owned()).collect();
            }
            let any_released = claim.iter().any(|c| c.input.released);
            let vpp = if !handle.vpp_enabled() {
                VppView::Holds
            } else if let Some(since) = self.vpp_down_since {
                e.lacks_since = None;
                VppView::Unreachable { since }
            } else if !any_released {
                e.lacks_since = None;
                VppView::Holds
            } else if unread || !serving.contains(&prefix.addr) {
                // Lacking, or not read since it connected (nothing is
                // known of what it holds): held within the grace period,
                // counted from when that was first seen of a released
                // frontend's prefix.
                VppView::Lacks {
                    since: *e.lacks_since.get_or_insert(now),
                }
            } else {
                e.lacks_since = None;
                VppView::Holds
            };
            let inputs = PrefixInputs {
                frontends: claim.iter().map(|c| c.input).collect(),
                vpp,
                drained,
                warmup_done,
                announced: e.announced,
                last_change: e.last_change,
            };
            let d = decide(policy, &inputs, now);
            e.reason = d.reason;
            e.next_look = d.next_look;
            if !d.changes(e.announced) {
                // Nothing to do: a failure of a change no longer wanted is
                // forgotten.
                e.error = None;
                e.failures = 0;
                e.retry_at = None;
            }
            out.push((*prefix, d));
        }
        out
    }

    /// Carries `decision` out for `prefix` if it changes the table and no
    /// retry delay holds it; returns the change made.
    async fn carry_out(&mut self, prefix: Prefix, decision: &Decision<Instant>) -> Option<Change> {
        let table = self.table.clone()?;
        let e = self.entries.get_mut(&prefix)?;
        if !decision.changes(e.announced) {
            return None;
        }
        let now = Instant::now();
        if e.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        let result = if decision.announce {
            table.add(prefix).await
        } else {
            table.remove(prefix).await
        };
        let frontends = e.frontends.join(",");
        let metrics = self.handle.metrics();
        match result {
            Ok(()) => {
                e.announced = decision.announce;
                e.last_change = Some(now);
                e.since_unix_nanos = Some(self.handle.clock().unix_nanos(now));
                e.error = None;
                e.failures = 0;
                e.retry_at = None;
                metrics.announce_change(decision.announce);
                self.handle.publish(EventKind::Announce(AnnounceChange {
                    prefix,
                    frontends: e.frontends.iter().map(|f| Arc::from(f.as_str())).collect(),
                    announced: decision.announce,
                    reason: decision.reason,
                    error: None,
                }));
                Some(Change {
                    prefix,
                    frontends,
                    announced: decision.announce,
                    reason: decision.reason,
                })
            }
            Err(err) => {
                e.failures = e.failures.saturating_add(1);
                let delay = retry_delay(decision.announce, e.failures);
                e.retry_at = Some(now + delay);
                e.error = Some(err.to_string());
                metrics.announce_error();
                tracing::warn!(
                    prefix = %prefix,
                    frontends = %frontends,
                    action = action(decision.announce),
                    reason = decision.reason.as_str(),
                    error = %err,
                    retry_in_ms = delay.as_millis() as u64,
                    "announce {prefix} ({frontends}): {} failed; retrying",
                    action(decision.announce),
                );
                self.handle.publish(EventKind::Announce(AnnounceChange {
                    prefix,
                    frontends: e.frontends.iter().map(|f| Arc::from(f.as_str())).collect(),
                    announced: e.announced,
                    reason: decision.reason,
                    error: Some(err.to_string()),
                }));
                None
            }
        }
    }

    /// Follows a reload: the section removed withdraws our routes; a
    /// kernel table named differently gets them moved; the section back
    /// opens a table again.
    async fn follow_config(&mut self, config: &Config) {
        let want = config.announce();
        if want == self.opened_for.as_ref() && (want.is_none() || self.table.is_some()) {
            return;
        }
        match (want, self.table.clone()) {
            (None, Some(table)) => {
                let ours: Vec<Prefix> = self.announced().collect();
                tracing::info!(
                    table = %table.describe(),
                    routes = ours.len(),
                    "announce: maglev.announce removed by a reload: withdrawing every route of ours"
                );
                let mut left = false;
                for p in ours {
                    self.withdraw_for_good(&*table, p, &mut left).await;
                }
                if !left {
                    self.table = None;
                    self.opened_for = None;
                    self.entries.clear();
                }
            }
            (None, None) => self.opened_for = None,
            (Some(section), current) => {
                let same_table = self.opened_for.as_ref().is_some_and(|o| {
                    o.table == section.table
                        && o.protocol == section.protocol
                        && o.netns == section.netns
                });
                if same_table && current.is_some() {
                    // Only the timing changed.
                    self.opened_for = Some(section.clone());
                    return;
                }
                if self.reopen_at.is_some_and(|at| Instant::now() < at) {
                    return;
                }
                let given = self.given.clone();
                match open(section, given).await {
                    Ok(opened) => {
                        self.reopen_at = None;
                        if let Some(old) = current
                            && !Arc::ptr_eq(&old, &opened.table)
                        {
                            self.move_routes(&*old, &*opened.table).await;
                        }
                        for p in &opened.routes {
                            self.entries.entry(*p).or_insert_with(|| Entry::new(true));
                        }
                        tracing::info!(table = %opened.table.describe(), "announce: using the route table");
                        self.table = Some(opened.table);
                        self.opened_for = Some(section.clone());
                    }
                    Err(e) => {
                        self.reopen_at = Some(Instant::now() + ANNOUNCE_RETRY_MAX);
                        self.handle.metrics().announce_error();
                        tracing::warn!(
                            error = %format!("{e:#}"),
                            "announce: the new route table of a reload could not be opened; \
                             the routes stay where they are"
                        );
                    }
                }
            }
        }
    }

    /// Moves every announced route from `old` to `new`.
    async fn move_routes(&mut self, old: &dyn RouteTable, new: &dyn RouteTable) {
        let ours: Vec<Prefix> = self.announced().collect();
        tracing::info!(
            from = %old.describe(),
            to = %new.describe(),
            routes = ours.len(),
            "announce: the route table changed by a reload: moving every route of ours"
        );
        for p in ours {
            if let Err(e) = new.add(p).await {
                self.handle.metrics().announce_error();
                tracing::warn!(prefix = %p, error = %e, "announce: moving a route: the add failed; it is retried");
                if let Some(e) = self.entries.get_mut(&p) {
                    e.announced = false;
                }
            }
            if let Err(e) = old.remove(p).await {
                self.handle.metrics().announce_error();
                tracing::warn!(prefix = %p, error = %e, "announce: moving a route: removing it from the old table failed");
            }
        }
    }

    /// Removes `p` from `table` (the section is gone); sets `left` if it
    /// failed.
    async fn withdraw_for_good(&mut self, table: &dyn RouteTable, p: Prefix, left: &mut bool) {
        let frontends = self
            .entries
            .get(&p)
            .map(|e| e.frontends.join(","))
            .unwrap_or_default();
        match table.remove(p).await {
            Ok(()) => {
                self.handle.metrics().announce_change(false);
                tracing::info!(prefix = %p, "announce {p} ({frontends}): withdrawn: announce-removed");
                if let Some(e) = self.entries.get_mut(&p) {
                    e.announced = false;
                }
                self.handle.publish(EventKind::Announce(AnnounceChange {
                    prefix: p,
                    frontends: frontends
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(Arc::from)
                        .collect(),
                    announced: false,
                    reason: Reason::Unclaimed,
                    error: None,
                }));
            }
            Err(e) => {
                *left = true;
                self.handle.metrics().announce_error();
                tracing::warn!(prefix = %p, error = %e, "announce {p}: withdrawing after maglev.announce was removed failed; retrying");
                self.reopen_at = Some(Instant::now() + WITHDRAW_RETRY);
            }
        }
    }

    /// Reads the table back: a route of ours someone removed is announced
    /// no longer (the policy adds it again), one someone added is adopted.
    async fn relist(&mut self) {
        let Some(table) = self.table.clone() else {
            return;
        };
        let listed = match table.list().await {
            Ok(l) => l,
            Err(e) => {
                self.handle.metrics().announce_error();
                tracing::warn!(error = %e, "announce: reading the route table back failed");
                return;
            }
        };
        for (p, e) in &mut self.entries {
            if e.announced && !listed.contains(p) {
                tracing::warn!(
                    prefix = %p,
                    table = %table.describe(),
                    "announce {p}: our route was removed from the table by someone else; adding it again"
                );
                e.announced = false;
            } else if !e.announced && listed.contains(p) {
                tracing::warn!(
                    prefix = %p,
                    table = %table.describe(),
                    "announce {p}: a route of ours appeared in the table; adopting it"
                );
                e.announced = true;
            }
        }
        for p in listed {
            self.entries.entry(p).or_insert_with(|| Entry::new(true));
        }
    }

    fn announced(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.entries
            .iter()
            .filter(|(_, e)| e.announced)
            .map(|(p, _)| *p)
    }

    /// Publishes the snapshot readers see.
    fn publish(&self, config: &Config) {
        let now = Instant::now();
        let enabled = config.announce().is_some() && self.table.is_some();
        let (table, in_memory) = self
            .table
            .as_ref()
            .map_or((String::new(), false), |t| (t.describe(), t.in_memory()));
        let prefixes: Vec<PrefixView> = if enabled {
            self.entries
                .iter()
                // An unclaimed route once removed is gone.
                .filter(|(_, e)| !e.frontends.is_empty() || e.announced || e.error.is_some())
                .map(|(p, e)| PrefixView {
                    prefix: *p,
                    frontends: e.frontends.clone(),
                    announced: e.announced,
                    reason: e.reason,
                    since_unix_nanos: e.since_unix_nanos,
                    next_look: e.next_look.map(|at| at.saturating_duration_since(now)),
                    error: e.error.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let drained: Option<Drain> = self.shared().drain();
        let node = NodeView {
            drained,
            announce_enabled: enabled,
            table: table.clone(),
            announced: prefixes.iter().filter(|p| p.announced).count(),
            prefixes: prefixes.len(),
            ..NodeView::default()
        };
        self.shared().publish(
            Announcements {
                enabled,
                table,
                in_memory,
                prefixes,
            },
            node,
        );
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The delay before the next attempt after `failures` failures in a row.
fn retry_delay(announce: bool, failures: u32) -> Duration {
    if !announce {
        return WITHDRAW_RETRY;
    }
    let doubled = ANNOUNCE_RETRY_MIN.saturating_mul(1u32 << failures.saturating_sub(1).min(6));
    doubled.min(ANNOUNCE_RETRY_MAX)
}

fn action(announce: bool) -> &'static str {
    if announce { "announce" } else { "withdraw" }
}

fn state(announced: bool) -> &'static str {
    if announced { "announced" } else { "withdrawn" }
}

/// Logs a pass's changes: a line each up to [`PER_OP_LINES`], else one
/// summary with totals.
fn log_changes(changes: Vec<Change>) {
    let mut lines = Aggregate::default();
    for c in changes {
        lines.note(c, |c| {
            format!("{}: {}", state(c.announced), c.reason.as_str())
        });
    }
    lines.finish(
        |c| {
            tracing::info!(
                prefix = %c.prefix,
                frontends = %c.frontends,
                announced = c.announced,
                reason = c.reason.as_str(),
                "announce {} ({}): {}: {}",
                c.prefix,
                c.frontends,
                state(c.announced),
                c.reason.as_str()
            )
        },
        |prefixes, totals| {
            tracing::info!(
                prefixes,
                totals,
                "announce: {prefixes} prefixes changed ({totals}) (summary: more than {PER_OP_LINES})"
            )
        },
    );
}

/// The announcement of the prefix of a frontend at `address`, from the
/// published snapshot (its prefixes are in order: a binary search).
pub(crate) fn frontend_announce(
    announcements: &Announcements,
    address: IpAddr,
) -> Option<FrontendAnnounce> {
    if !announcements.enabled {
        return None;
    }
    let prefix = Prefix::host(address);
    let i = announcements
        .prefixes
        .binary_search_by_key(&prefix, |p| p.prefix)
        .ok()?;
    let p = &announcements.prefixes[i];
    Some(FrontendAnnounce {
        announced: p.announced,
        reason: p.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::table::RouteError;

    #[test]
    fn a_failed_announce_backs_off_and_a_withdraw_does_not() {
        assert_eq!(retry_delay(false, 1), WITHDRAW_RETRY);
        assert_eq!(retry_delay(false, 50), WITHDRAW_RETRY);
        assert_eq!(retry_delay(true, 1), ANNOUNCE_RETRY_MIN);
        assert_eq!(retry_delay(true, 2), ANNOUNCE_RETRY_MIN * 2);
        assert_eq!(retry_delay(true, 40), ANNOUNCE_RETRY_MAX);
    }

    /// The messages of the records it sees.
    struct Lines(Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        *self.0 = format!("{v:?}");
                    }
                }
            }
            let mut m = String::new();
            e.record(&mut Message(&mut m));
            self.0.lock().unwrap().push(m);
        }
    }

    fn logged(n: u8) -> Vec<String> {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Lines(lines.clone()));
        let changes = (0..n)
            .map(|i| Change {
                prefix: Prefix::host([192, 0, 2, i].into()),
                frontends: format!("fe{i}"),
                announced: i % 2 == 0,
                reason: if i % 2 == 0 {
                    Reason::Serving
                } else {
                    Reason::NothingServes
                },
            })
            .collect();
        tracing::subscriber::with_default(subscriber, || log_changes(changes));
        lines.lock().unwrap().clone()
    }

    #[test]
    fn a_line_per_change_up_to_twenty_then_one_summary() {
        let few = logged(2);
        assert_eq!(
            few,
            [
                "announce 192.0.2.0/32 (fe0): announced: serving",
                "announce 192.0.2.1/32 (fe1): withdrawn: nothing-serves",
            ]
        );
        assert_eq!(logged(20).len(), 20);
        assert_eq!(
            logged(21),
            [
                "announce: 21 prefixes changed (announced: serving: 11, withdrawn: nothing-serves: 10) \
              (summary: more than 20)"
            ]
        );
    }

    #[test]
    fn route_error_names_the_table() {
        let e = RouteError {
            table: "memory".into(),
            action: "add 192.0.2.1/32".into(),
            message: "no".into(),
        };
        assert_eq!(e.to_string(), "memory: add 192.0.2.1/32: no");
    }
}
