//! Prometheus `/metrics` (SPEC §10, §16.5).
//!
//! Two kinds of series:
//!
//! - **counters bumped as things happen** ([`Metrics`]): probes and their
//!   durations, backend transitions, VPP API messages, changes the
//!   reconciler made and ops VPP refused, config reloads, gRPC requests
//!   and write RPCs by caller (the audit trail's counter);
//! - **gauges computed at scrape time** ([`scrape`]) from the daemon's
//!   snapshots through the [`Handle`]: backend and frontend states, pool
//!   weights, the warm-up phase, the VPP link and the VIP counters of the
//!   latest counter scrape. The `maglev_vpp_*` gauges are left out while
//!   VPP is away (SPEC §5.1), except `maglev_vpp_connected`, which says so
//!   with 0; with VPP integration off there is no `maglev_vpp_*` gauge.
//!
//! Every family is in one of two sets ([`Families`]): the **default** set
//! of `/metrics`, at most 2 series per backend and 11 per frontend (what
//! alerts and dashboards read; the per-backend 0/1 families list only
//! their 1s), and the **detail** of `/metrics/detail` (probe counters and
//! histograms, transitions, pool members' weights...). `--metrics-detail`
//! serves both on `/metrics`. `docs/operations.md` lists every family with
//! its set and its count at 10,000 frontends × 16 backends.
//!
//! [`render_families`] encodes a set (OpenMetrics text, what Prometheus
//! asks for, or the Prometheus text format); [`render`] everything;
//! [`serve`] answers `GET /metrics` and `/metrics/detail` over HTTP.
//!
//! The small families live in prometheus-client registries (one per set)
//! and are encoded by them. The large ones, a series or more per backend
//! (probe counters and durations, backend and pool-member gauges), are
//! kept in atomics and written by hand in the same text, with no
//! allocation per series.
//!
//! # Module map
//!
//! - `labels`: the registry families' label sets.
//! - [`listeners`]: connections per server, their limit and drops, and
//!   failed dashboard logins.
//! - `probes`: the probe counters and duration histograms.
//! - [`scrape`]: the scrape-time gauges.
//! - [`shared`]: renderings shared by concurrent scrapes, and the bound on
//!   the bodies alive.
//! - `sync`: the sync-health families (pending frontends, read errors,
//!   failures, the last full success).
//! - `text`: hand-written exposition text.
//! - [`server`]: the HTTP endpoints.

mod labels;
pub mod listeners;
mod probes;
pub mod scrape;
pub mod server;
pub mod shared;
mod sync;
mod text;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use maglev_core::state::BackendState;
use maglev_health::observe::ProbeObserver;
use maglev_vpp::api::observer::{ApiEvent, ApiObserver};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::daemon::Handle;
use labels::{
    ActionLabels, ApiLabels, FrontendLabels, GrpcLabels, ResultLabels, ScopeLabels, SyncLabels,
    TransitionLabels, WriteLabels,
};
use probes::{ProbeCounter, ProbeStats};

pub use labels::grpc_code_name;
pub use server::serve;

/// The `Content-Type` of [`Format::OpenMetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of [`Format::Text`].
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenMetrics 1.0 text, what Prometheus asks for first.
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for anything that does not ask
    /// for OpenMetrics (curl, older scrapers).
    Text,
}

impl Format {
    /// The format a client with this `Accept` header gets.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
        }
    }
}

/// Which families a rendering holds: the bounded default set of
/// `/metrics`, the detail of `/metrics/detail`, or both (`/metrics` with
/// `--metrics-detail`). Every family is in exactly one of the two sets;
/// `docs/operations.md` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Families {
    /// What alerts and dashboards need, at most a few series per backend
    /// and per frontend: the per-backend 0/1 families list only their 1s.
    Default,
    /// The rest: per-backend probe counters and histograms, transitions,
    /// the rise/fall counter and enabled flag, every pool member's
    /// weights, the buckets moved per VIP.
    Detail,
    /// Both, with the 0s of the per-backend 0/1 families: everything, as
    /// `/metrics` served before the sets were split.
    All,
}

impl Families {
    /// Whether the default families are written.
    pub fn default_set(self) -> bool {
        matches!(self, Families::Default | Families::All)
    }

    /// Whether the detail families are written.
    pub fn detail_set(self) -> bool {
        matches!(self, Families::Detail | Families::All)
    }

    /// Whether the per-backend 0/1 families write their 0s too.
    pub fn zeros(self) -> bool {
        self == Families::All
    }
}

/// How many caller identities `maglev_grpc_writes_total` has series for.
pub const MAX_WRITE_IDENTITIES: usize = 256;
/// The identity the writes of every further caller count under.
pub const OTHER_IDENTITY: &str = "(other)";

/// How a write RPC ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// Done.
    Success,
    /// Refused: the caller may only read.
    Denied,
    /// Refused or failed by the daemon (not found, invalid, VPP away...).
    Failure,
}

impl WriteResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Success => "success",
            WriteResult::Denied => "denied",
            WriteResult::Failure => "failure",
        }
    }
}

/// The daemon's counters. Every method is cheap and never blocks for long
/// (a read lock, an atomic add; a write lock and an allocation the first
/// time a label set is seen).
#[derive(Debug)]
pub struct Metrics {
    lbsync: Family<SyncLabels, Counter>,
    api: Family<ApiLabels, Counter>,
    transitions: Family<TransitionLabels, Counter>,
    reconcile_errors: Family<ScopeLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    grpc: Family<GrpcLabels, Counter>,
    writes: Family<WriteLabels, Counter>,
    /// The identities `writes` has a series for (at most
    /// [`MAX_WRITE_IDENTITIES`]).
    write_identities: Mutex<BTreeSet<String>>,
    buckets_moved: Family<FrontendLabels, Counter>,
    announce_changes: Family<ActionLabels, Counter>,
    announce_errors: Counter,
    /// Held for reading while a frontend's series is checked against the
    /// running config and counted, for writing while a reload forgets
    /// one: a count that read the config before a reload removed the
    /// frontend lands before the forget, never after it.
    frontends_gate: std::sync::RwLock<()>,
    listeners: listeners::ListenerMetrics,
    probes: Arc<ProbeStats>,
    /// The registry of the default families above (the families are
    /// shared with it, so it sees every increment).
    registry: Registry,
    /// The registry of the detail families above.
    detail_registry: Registry,
    /// Renderings shared by concurrent scrapes, and the bound on the
    /// bodies held.
    renderings: shared::Renderings,
    /// The size of the last rendering of each [`Families`], to allocate
    /// the next one at once.
    last_size: [AtomicUsize; 3],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every counter at zero.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            lbsync: Family::default(),
            api: Family::default(),
            transitions: Family::default(),
            reconcile_errors: Family::default(),
            reloads: Family::default(),
            grpc: Family::default(),
            writes: Family::default(),
            write_identities: Mutex::default(),
            buckets_moved: Family::default(),
            announce_changes: Family::default(),
            announce_errors: Counter::default(),
            frontends_gate: std::sync::RwLock::new(()),
            listeners: listeners::ListenerMetrics::default(),
            probes: Arc::default(),
            registry: Registry::default(),
            detail_registry: Registry::default(),
            renderings: shared::Renderings::default(),
            last_size: Default::default(),
        };
        m.registry = m.build_registry();
        m.detail_registry = m.build_detail_registry();
        m
    }

    /// One op applied by a sync of `scope` (`all` or `vip`); `kind` is the
    /// op's kind (`vip_added`, `as_weight_updated`, ...).
    pub fn lbsync(&self, scope: &'static str, kind: &'static str) {
        self.lbsync.get_or_create(&SyncLabels { scope, kind }).inc();
    }

    /// One op VPP refused (or that failed) in a sync of `scope`.
    pub fn reconcile_error(&self, scope: &'static str) {
        self.reconcile_errors
            .get_or_create(&ScopeLabels { scope })
            .inc();
    }

    /// Forgets every series labelled with `backend` (transitions, probes).
    pub fn forget_backend(&self, backend: &str) {
        for from in BackendState::ALL {
            for to in BackendState::ALL {
                self.transitions.remove(&TransitionLabels {
                    backend: backend.to_owned(),
                    from: from.as_str(),
                    to: to.as_str(),
                });
            }
        }
        self.probes.forget(backend);
    }

    /// Forgets every series labelled with `frontend`: called when a reload
    /// removes it.
    pub fn forget_frontend(&self, frontend: &str) {
        let _gate = self
            .frontends_gate
            .write()
            .unwrap_or_else(|e| e.into_inner());
        self.buckets_moved.remove(&FrontendLabels {
            frontend: frontend.to_owned(),
        });
    }

    /// `buckets` new-flow buckets of `frontend`'s VIP moved to another AS
    /// by applied ops; counted only if `configured` (asked under the gate
    /// [`forget_frontend`](Self::forget_frontend) takes) says the running
    /// config still has the frontend, so a late count never brings back
    /// the series of a frontend a reload removed.
    pub fn buckets_moved(&self, frontend: &str, buckets: u64, configured: impl FnOnce() -> bool) {
        let _gate = self
            .frontends_gate
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if !configured() {
            return;
        }
        self.buckets_moved
            .get_or_create(&FrontendLabels {
                frontend: frontend.to_owned(),
            })
            .inc_by(buckets);
    }

    /// One VIP prefix announced (`announce`) or withdrawn, in the route
    /// table.
    pub fn announce_change(&self, announced: bool) {
        let action = if announced { "announce" } else { "withdraw" };
        self.announce_changes
            .get_or_create(&ActionLabels { action })
            .inc();
    }

    /// One failure to change (or read) the route table.
    pub fn announce_error(&self) {
        self.announce_errors.inc();
    }

    /// The listeners' and logins' series.
    pub fn listeners(&self) -> &listeners::ListenerMetrics {
        &self.listeners
    }

    /// One reload, accepted (`success`) or refused (`failure`).
    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// One gRPC request to `method` (the RPC's name, e.g. `ListFrontends`)
    /// answered with `code`.
    pub fn grpc_request(&self, method: &str, code: tonic::Code) {
        let code = grpc_code_name(code);
        // One short allocation per request for the lookup key.
        self.grpc
            .get_or_create(&GrpcLabels {
                method: method.to_owned(),
                code,
            })
            .inc();
    }

    /// One write RPC `rpc` from `identity`, by its result: `success`,
    /// `denied` (the caller may only read) or `failure` (the daemon
    /// refused or failed it). Identities past the first
    /// [`MAX_WRITE_IDENTITIES`] count as [`OTHER_IDENTITY`], so clients
    /// cannot grow the series without bound.
    pub fn grpc_write(&self, rpc: &str, identity: &str, result: WriteResult) {
        let identity = {
            let mut seen = self
                .write_identities
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if seen.contains(identity) {
                identity
            } else if seen.len() < MAX_WRITE_IDENTITIES {
                seen.insert(identity.to_owned());
                identity
            } else {
                OTHER_IDENTITY
            }
        };
        self.writes
            .get_or_create(&WriteLabels {
                rpc: rpc.to_owned(),
                identity: identity.to_owned(),
                result: result.as_str(),
            })
            .inc();
    }

    /// One backend transition. A removal (a reload took the backend out of
    /// the config) forgets every series of the backend instead, so
    /// `/metrics` does not export it until the next restart.
    pub fn backend_transition(&self, backend: &str, from: &'static str, to: &'static str) {
        if to == BackendState::Removed.as_str() {
            self.forget_backend(backend);
            return;
        }
        self.transitions
            .get_or_create(&TransitionLabels {
                backend: backend.to_owned(),
                from,
                to,
            })
            .inc();
    }

    /// The checker's observer feeding `maglev_probe_total` and
    /// `maglev_probe_duration_seconds`.
    pub fn probe_observer(&self) -> Arc<dyn ProbeObserver> {
        Arc::new(ProbeCounter(self.probes.clone()))
    }

    /// The VPP client's observer feeding `maglev_vpp_api_total`.
    pub fn api_observer(&self) -> Arc<dyn ApiObserver> {
        Arc::new(ApiCounter(self.api.clone()))
    }

    /// The renderings shared by concurrent scrapes.
    pub fn renderings(&self) -> &shared::Renderings {
        &self.renderings
    }

    /// The registry families of the detail set: per backend or per
    /// frontend, and not needed by an alert.
    fn build_detail_registry(&self) -> Registry {
        let mut registry = Registry::default();
        registry.register(
            "maglev_backend_transitions",
            "Backend state transitions",
            self.transitions.clone(),
        );
        registry.register(
            "maglev_vpp_lb_buckets_moved",
            "New-flow table buckets of a frontend's VIP moved to another AS by applied changes",
            self.buckets_moved.clone(),
        );
        registry
    }

    /// The registry families of the default set (none per backend or per
    /// frontend).
    fn build_registry(&self) -> Registry {
        let mut registry = Registry::default();
        registry.register(
            "maglev_vpp_api",
            "VPP API messages sent and received",
            self.api.clone(),
        );
        registry.register(
            "maglev_vpp_lbsync",
            "Changes made to VPP's load balancer by syncs, by scope and kind",
            self.lbsync.clone(),
        );
        registry.register(
            "maglev_reconcile_errors",
            "Ops a sync sent that VPP refused or that failed, by scope",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "maglev_config_reloads",
            "Config reloads, by result",
            self.reloads.clone(),
        );
        registry.register(
            "maglev_grpc_requests",
            "gRPC requests answered, by method and status code",
            self.grpc.clone(),
        );
        registry.register(
            "maglev_grpc_writes",
            "Write RPCs (the audit trail), by RPC, caller identity and result",
            self.writes.clone(),
        );
        registry.register(
            "maglev_announce_changes",
            "VIP prefixes announced or withdrawn in the route table, by action",
            self.announce_changes.clone(),
        );
        registry.register(
            "maglev_announce_errors",
            "Failures to change or read the route table of announcements",
            self.announce_errors.clone(),
        );
        self.listeners.register(&mut registry);
        registry
    }
}

#[derive(Debug)]
struct ApiCounter(Family<ApiLabels, Counter>);

impl ApiObserver for ApiCounter {
    fn event(&self, e: ApiEvent) {
        self.0
            .get_or_create(&ApiLabels {
                msg: e.message,
                direction: e.direction.label(),
                result: if e.result.is_ok() {
                    "success"
                } else {
                    "failure"
                },
            })
            .inc();
    }
}

/// Every family (default and detail), as OpenMetrics text.
pub fn render(handle: &Handle) -> String {
    render_as(handle, Format::OpenMetrics)
}

/// Every family (default and detail), in `format`.
pub fn render_as(handle: &Handle, format: Format) -> String {
    render_families(handle, format, Families::All)
}

/// The families of `families` now, in `format`. Linear in the series
/// written, with no allocation per series: labels are borrowed, numbers
/// formatted on the stack, and the text goes into one buffer sized from
/// the previous rendering of the same set.
pub fn render_families(handle: &Handle, format: Format, families: Families) -> String {
    let metrics = handle.metrics();
    let size = &metrics.last_size[families as usize];
    let mut out = String::with_capacity(size.load(Ordering::Relaxed) + 4096);
    let mut encode = |registry: &Registry| {
        let encoded = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode_registry(&mut out, registry)
            }
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
            }
        };
        // Writing into a String cannot fail and no metric of ours returns
        // an error; should one ever do, the rest is still written.
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "encoding /metrics failed part way");
        }
    };
    if families.default_set() {
        encode(&metrics.registry);
    }
    if families.detail_set() {
        encode(&metrics.detail_registry);
    }
    metrics.probes.encode(&mut out, format, families);
    scrape::encode(&mut out, format, handle, families);
    if families.default_set() {
        sync::encode(&mut out, format, handle);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    size.store(out.len(), Ordering::Relaxed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_identities_are_capped_so_clients_cannot_grow_the_series() {
        let m = Metrics::new();
        for i in 0..MAX_WRITE_IDENTITIES + 10 {
            m.grpc_write(
                "PauseBackend",
                &format!("10.0.{}.{}", i / 256, i % 256),
                WriteResult::Denied,
            );
        }
        // A known identity keeps its own series after the cap.
        m.grpc_write("PauseBackend", "10.0.0.0", WriteResult::Denied);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("maglev_grpc_writes_total{"))
            .collect();
        assert_eq!(series.len(), MAX_WRITE_IDENTITIES + 1);
        assert!(series.contains(
            &r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="(other)",result="denied"} 10"#
        ));
        assert!(series.contains(
            &r#"maglev_grpc_writes_total{rpc="PauseBackend",identity="10.0.0.0",result="denied"} 2"#
        ));
    }
}
