//! The listeners' series: `maglev_listener_connections{server}` (open
//! now), `maglev_listener_connection_limit{server}` (the cap from the
//! descriptor budget), `maglev_listener_dropped_total{server,reason}`
//! (connections maglevd closed to stay within it: `shed`, an old pending
//! one, or a serving one quiet for 45 s, closed to make room; `refused`, a new one closed at once because
//! every place was serving), and the dashboard's
//! `maglev_http_login_failures_total{reason}` (`wrong` credentials, or
//! `limited`: not checked, the address failed too often).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DroppedLabels {
    server: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The listeners' families (clones share the series).
#[derive(Debug, Clone, Default)]
pub struct ListenerMetrics {
    open: Family<ServerLabels, Gauge>,
    limit: Family<ServerLabels, Gauge>,
    dropped: Family<DroppedLabels, Counter>,
    logins: Family<ReasonLabels, Counter>,
}

impl ListenerMetrics {
    /// `server` holds `open` connections of at most `limit`.
    pub fn connections(&self, server: &'static str, open: usize, limit: usize) {
        let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.open
            .get_or_create(&ServerLabels { server })
            .set(g(open));
        self.limit
            .get_or_create(&ServerLabels { server })
            .set(g(limit));
    }

    /// `server` closed `n` connections for `reason` (`shed`, `refused`).
    pub fn dropped(&self, server: &'static str, reason: &'static str, n: u64) {
        if n > 0 {
            self.dropped
                .get_or_create(&DroppedLabels { server, reason })
                .inc_by(n);
        }
    }

    /// A dashboard login failed: `wrong` or `limited`.
    pub fn login_failure(&self, reason: &'static str) {
        self.logins.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "maglev_listener_connections",
            "Open connections, by server (gRPC, metrics, web)",
            self.open.clone(),
        );
        registry.register(
            "maglev_listener_connection_limit",
            "The most connections a server holds: its share of RLIMIT_NOFILE after the reserve for probes and VPP",
            self.limit.clone(),
        );
        registry.register(
            "maglev_listener_dropped",
            "Connections closed to stay within the limit: shed (an old pending one, or a long-quiet one, to make room) or refused (a new one, every place busy)",
            self.dropped.clone(),
        );
        registry.register(
            "maglev_http_login_failures",
            "Failed dashboard logins: wrong credentials, or limited (not checked: the address failed too often)",
            self.logins.clone(),
        );
    }
}
