//! Prometheus `/metrics` (SPEC §10, §16.5).
//!
//! Two kinds of series:
//!
//! - **counters bumped as things happen** ([`Metrics`]): probes and their
//!   durations, backend transitions, VPP API messages, changes the
//!   reconciler made and ops VPP refused, config reloads, gRPC requests;
//! - **gauges computed at scrape time** ([`scrape`]) from the daemon's
//!   snapshots through the [`Handle`]: backend and frontend states, pool
//!   weights, the warm-up phase, the VPP link and the VIP counters of the
//!   latest counter scrape. The `maglev_vpp_*` gauges are left out while
//!   VPP is away (SPEC §5.1), except `maglev_vpp_connected`, which says so
//!   with 0; with VPP integration off there is no `maglev_vpp_*` gauge.
//!
//! [`render`] encodes everything (OpenMetrics text, what Prometheus asks
//! for); [`serve`] answers `GET /metrics` over HTTP.
//!
//! # Module map
//!
//! - `labels`: the counters' label sets.
//! - [`scrape`]: the scrape-time gauges.
//! - [`server`]: the HTTP endpoint.

mod labels;
pub mod scrape;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use maglev_health::observe::{ProbeObserver, ProbeRecord};
use maglev_vpp::api::observer::{ApiEvent, ApiObserver};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::daemon::Handle;
use labels::{
    ApiLabels, GrpcLabels, ProbeKindLabels, ProbeLabels, ResultLabels, ScopeLabels, SyncLabels,
    TransitionLabels,
};

pub use server::serve;

/// The `Content-Type` of [`Format::OpenMetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of [`Format::Text`].
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The buckets of `maglev_probe_duration_seconds`: 0.5 ms to about 4 s,
/// doubling (probe timeouts are in that range).
fn probe_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
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
    probes: Family<ProbeLabels, Counter>,
    probe_duration: Family<ProbeKindLabels, Histogram, fn() -> Histogram>,
    /// The size of the last rendering, to allocate the next one at once.
    last_size: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every counter at zero.
    pub fn new() -> Metrics {
        Metrics {
            lbsync: Family::default(),
            api: Family::default(),
            transitions: Family::default(),
            reconcile_errors: Family::default(),
            reloads: Family::default(),
            grpc: Family::default(),
            probes: Family::default(),
            probe_duration: Family::new_with_constructor(probe_histogram),
            last_size: AtomicUsize::new(0),
        }
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

    /// One reload, accepted (`success`) or refused (`failure`).
    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// One gRPC request to `method` (the RPC's name, e.g. `ListFrontends`)
    /// answered with `code`.
    pub fn grpc_request(&self, method: &str, code: tonic::Code) {
        let code = labels::grpc_code_name(code);
        // The common case (a series already there) looks up with a label
        // set built once per call; the method name is short.
        self.grpc
            .get_or_create(&GrpcLabels {
                method: method.to_owned(),
                code,
            })
            .inc();
    }

    /// One backend transition.
    pub fn backend_transition(&self, backend: &str, from: &'static str, to: &'static str) {
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
        Arc::new(ProbeCounter {
            total: self.probes.clone(),
            duration: self.probe_duration.clone(),
        })
    }

    /// The VPP client's observer feeding `maglev_vpp_api_total`.
    pub fn api_observer(&self) -> Arc<dyn ApiObserver> {
        Arc::new(ApiCounter(self.api.clone()))
    }

    /// Registers every counter family in `registry` (the families are
    /// shared, not copied: the registry sees later increments).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "maglev_probe",
            "Health-check probes by backend, type, result and code",
            self.probes.clone(),
        );
        registry.register(
            "maglev_probe_duration_seconds",
            "How long health-check probes took",
            self.probe_duration.clone(),
        );
        registry.register(
            "maglev_backend_transitions",
            "Backend state transitions",
            self.transitions.clone(),
        );
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
    }
}

#[derive(Debug)]
struct ProbeCounter {
    total: Family<ProbeLabels, Counter>,
    duration: Family<ProbeKindLabels, Histogram, fn() -> Histogram>,
}

impl ProbeObserver for ProbeCounter {
    fn probe_ended(&self, r: &ProbeRecord<'_>) {
        self.total
            .get_or_create(&ProbeLabels {
                backend: r.backend.to_owned(),
                r#type: r.kind.as_str(),
                result: r.result(),
                code: r.code.as_str(),
            })
            .inc();
        self.duration
            .get_or_create(&ProbeKindLabels {
                backend: r.backend.to_owned(),
                r#type: r.kind.as_str(),
            })
            .observe(r.duration.as_secs_f64());
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

/// Everything `/metrics` shows now, as OpenMetrics text.
pub fn render(handle: &Handle) -> String {
    render_as(handle, Format::OpenMetrics)
}

/// Everything `/metrics` shows now, in `format`.
pub fn render_as(handle: &Handle, format: Format) -> String {
    let metrics = handle.metrics();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    registry.register_collector(Box::new(scrape::Gauges::new(handle.clone())));
    let mut out = String::with_capacity(metrics.last_size.load(Ordering::Relaxed) + 4096);
    let encoded = match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
    };
    // Writing into a String cannot fail, and no encoder of ours returns an
    // error; should one ever do, what was written so far is still served.
    if let Err(e) = encoded {
        tracing::warn!(error = %e, "encoding /metrics failed part way");
    }
    metrics.last_size.store(out.len(), Ordering::Relaxed);
    out
}
