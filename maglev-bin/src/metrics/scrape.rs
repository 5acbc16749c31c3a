//! The gauges computed at scrape time from the daemon's snapshots,
//! written by hand ([`super::text`]) since most are one or more series per
//! backend.
//!
//! One scrape reads one checker snapshot, so backend gauges, frontend
//! states and effective weights agree with each other. Labels are borrowed
//! from the snapshots and the config (no string is built per series); the
//! only allocations are the snapshot's map and one member list per
//! frontend.
//!
//! The default set ([`Families::Default`]) has at most one series per
//! backend and family, and the per-backend 0/1 families
//! (`maglev_backend_state`, `_suppressed`, `_probe_blocked`) list only
//! their 1s; the per-(frontend, backend) weights, the rise/fall counter
//! and the enabled flag are detail ([`Families::Detail`]).

use maglev_core::config::Frontend;
use maglev_core::desired::member_weights;
use maglev_core::frontend::frontend_state;
use maglev_core::state::BackendState;
use maglev_core::warmup::Phase;
use maglev_core::weights::Serving;
use maglev_health::checker::Snapshot;
use maglev_health::status::BackendStatus;
use maglev_vpp::stats::LbCounters;

use super::text::{self, Kind};
use super::{Families, Format};
use crate::daemon::Handle;

/// The value of `maglev_warmup_phase`: 0 hands-off, 1 releasing, 2 finished.
pub fn warmup_gauge(phase: Phase) -> i64 {
    match phase {
        Phase::HandsOff => 0,
        Phase::Releasing => 1,
        Phase::Finished => 2,
    }
}

/// The `kind` labels of `maglev_vpp_lb_vip_packets_total` with their value.
fn lb_kinds(c: &LbCounters) -> [(&'static str, u64); 4] {
    [
        ("next", c.next_packet),
        ("first", c.first_packet),
        ("untracked", c.untracked),
        ("no-server", c.no_server),
    ]
}

fn nanos_to_seconds(nanos: i64) -> f64 {
    // Precision beyond microseconds does not matter here.
    nanos as f64 / 1e9
}

/// The `state` label of each [`BackendState::ALL`], written whole.
const STATE_LABELS: [&str; 6] = [
    r#"state="unknown""#,
    r#"state="up""#,
    r#"state="down""#,
    r#"state="paused""#,
    r#"state="disabled""#,
    r#"state="removed""#,
];

fn gauge_header(out: &mut String, format: Format, name: &str, help: &str) {
    text::header(out, format, name, help, Kind::Gauge);
}

/// Writes the scrape-time gauges of `families` of the daemon behind
/// `handle`.
pub(super) fn encode(out: &mut String, format: Format, handle: &Handle, families: Families) {
    let backends = handle.backends();
    let now = tokio::time::Instant::now();
    if families.default_set() {
        encode_backends(out, format, &backends, families);
        encode_frontends(out, format, handle, &backends, now);
    }
    if families.detail_set() {
        encode_backend_detail(out, format, &backends);
        encode_members(out, format, handle, &backends, now);
    }
    if families.default_set() {
        encode_config_fingerprints(out, format, handle);
    }
    if families.default_set() && handle.vpp_enabled() {
        encode_vpp(out, format, handle);
    }
    if families.default_set() {
        encode_announce(out, format, handle);
    }
}

/// The running config's fingerprints (computed once per config, see
/// [`maglev_core::config::fingerprint`]): the whole config's, labelled
/// with the node's name, and each frontend's, beside its table hash, so
/// that routers whose tables differ are told apart by "different config"
/// versus "same config, different health view".
fn encode_config_fingerprints(out: &mut String, format: Format, handle: &Handle) {
    let config = handle.config();
    gauge_header(
        out,
        format,
        "maglev_config_fingerprint",
        "A stable 48-bit hash of the running config's part that decides Maglev \
         tables (frontends, pools, members' addresses and weights, table lengths, \
         stickiness): equal on two routers that build the same tables from the \
         same health view",
    );
    text::sample(
        out,
        "maglev_config_fingerprint",
        &[("node", handle.settings().node_name.as_str())],
        config.fingerprint(),
    );
    gauge_header(
        out,
        format,
        "maglev_frontend_config_fingerprint",
        "A stable 48-bit hash of the frontend's part of the running config that \
         decides its table: routers equal in it and different in \
         maglev_vpp_lb_table_hash differ in their health view",
    );
    for name in config.frontends().keys() {
        if let Some(f) = config.frontend_fingerprint(name) {
            text::sample(
                out,
                "maglev_frontend_config_fingerprint",
                &[("frontend", name.as_str())],
                f,
            );
        }
    }
}

/// The announcements (with an announce section only): one 0/1 series per
/// VIP prefix, as the announcer last published them, and the node's drain.
fn encode_announce(out: &mut String, format: Format, handle: &Handle) {
    let announcements = handle.announcements();
    if !announcements.enabled {
        return;
    }
    gauge_header(
        out,
        format,
        "maglev_vip_announced",
        "1 while the VIP prefix is announced (its route is in maglevd's table), 0 while withdrawn",
    );
    let mut label = String::new();
    for p in &announcements.prefixes {
        use std::fmt::Write;
        label.clear();
        let _ = write!(label, "{}", p.prefix);
        text::sample(
            out,
            "maglev_vip_announced",
            &[("prefix", label.as_str())],
            u64::from(p.announced),
        );
    }
    gauge_header(
        out,
        format,
        "maglev_node_drained",
        "1 while an operator has drained the node (every VIP prefix withdrawn)",
    );
    let drained = handle.node().drained.is_some();
    text::sample(out, "maglev_node_drained", &[], u64::from(drained));
}

/// What the weight rules see of each member of one frontend's pools, read
/// once from the snapshot: the frontend's rules then look their members
/// up here (a short scan, by address first) instead of in the snapshot of
/// every backend, once per rule.
#[derive(Default)]
struct Members<'c> {
    serving: Vec<(&'c str, Serving)>,
}

impl<'c> Members<'c> {
    /// Reads the members of `fe` (reusing the buffer).
    fn read(&mut self, fe: &'c Frontend, backends: &Snapshot, now: tokio::time::Instant) {
        self.serving.clear();
        for pool in &fe.pools {
            for name in pool.backends.keys() {
                let s = backends
                    .get(name.as_str())
                    .map_or(BackendState::Removed.into(), |s| s.serving(now));
                self.serving.push((name.as_str(), s));
            }
        }
    }

    /// A member's serving state (`removed` if not a member).
    fn of(&self, name: &str) -> Serving {
        self.serving
            .iter()
            .find(|(n, _)| std::ptr::eq(*n, name) || *n == name)
            .map_or(BackendState::Removed.into(), |(_, s)| *s)
    }
}

/// A per-backend 0/1 family: every backend with `zeros`, else only those
/// at 1 (the default set lists the backends in the condition).
fn flag_family(
    out: &mut String,
    name: &str,
    backends: &Snapshot,
    zeros: bool,
    value: impl Fn(&BackendStatus) -> bool,
) {
    for (backend, status) in backends {
        let v = value(status);
        if v || zeros {
            text::sample(out, name, &[("backend", backend.as_ref())], u64::from(v));
        }
    }
}

/// The default per-backend families: at most one series per backend
/// each, the 0/1 ones only at 1 unless `families` asks for the zeros.
fn encode_backends(out: &mut String, format: Format, backends: &Snapshot, families: Families) {
    let zeros = families.zeros();
    gauge_header(
        out,
        format,
        "maglev_backend_state",
        "1 for the backend's current state, 0 for the others",
    );
    let mut prefix = String::new();
    for (name, status) in backends {
        text::prefix(
            &mut prefix,
            "maglev_backend_state",
            &[("backend", name.as_ref())],
        );
        for (state, label) in BackendState::ALL.iter().zip(&STATE_LABELS) {
            let on = status.state == *state;
            if on || zeros {
                text::sample_with(out, &prefix, label, u64::from(on));
            }
        }
    }
    text::header(
        out,
        format,
        "maglev_backend_flaps",
        "Transitions of the backend between up and down since maglevd started",
        Kind::Counter,
    );
    for (name, status) in backends {
        let labels = [("backend", name.as_ref())];
        text::sample(out, "maglev_backend_flaps_total", &labels, status.flaps);
    }
    gauge_header(
        out,
        format,
        "maglev_backend_suppressed",
        "1 while flap damping holds the backend at weight 0",
    );
    flag_family(out, "maglev_backend_suppressed", backends, zeros, |s| {
        s.damping.as_ref().is_some_and(|d| d.is_suppressed())
    });
    gauge_header(
        out,
        format,
        "maglev_backend_probe_blocked",
        "1 while the backend's probes cannot run for a reason of ours (out of \
         descriptors, ...): its state is held, unconfirmed",
    );
    flag_family(out, "maglev_backend_probe_blocked", backends, zeros, |s| {
        s.probe_blocked.is_some()
    });
}

/// The detail per-backend gauges: the rise/fall counter and the enabled
/// flag (the state says `disabled` too).
fn encode_backend_detail(out: &mut String, format: Format, backends: &Snapshot) {
    gauge_header(
        out,
        format,
        "maglev_backend_health",
        "The backend's rise/fall counter (0 down, rise+fall-1 fully up)",
    );
    for (name, status) in backends {
        let labels = [("backend", name.as_ref())];
        text::sample(
            out,
            "maglev_backend_health",
            &labels,
            u64::from(status.counter),
        );
    }
    gauge_header(
        out,
        format,
        "maglev_backend_enabled",
        "1 if the backend is enabled, 0 if an operator disabled it",
    );
    flag_family(out, "maglev_backend_enabled", backends, true, |s| s.enabled);
}

/// The default per-frontend gauges: its state, its active pool and how
/// many of its backends VPP should send new flows to. One pass over the
/// frontends computes all three (a few bytes per frontend kept), then
/// each family is written.
fn encode_frontends(
    out: &mut String,
    format: Format,
    handle: &Handle,
    backends: &Snapshot,
    now: tokio::time::Instant,
) {
    let config = handle.config();
    let mut members = Members::default();
    let summary: Vec<(i64, Option<usize>, usize)> = config
        .frontends()
        .iter()
        .map(|(name, fe)| {
            members.read(fe, backends, now);
            let of = |b: &str| members.of(b);
            let active = handle.active_pool(name, fe, of);
            let state = frontend_state(fe, of, active).gauge();
            let serving = member_weights(fe, of, active)
                .iter()
                .filter(|m| m.effective.weight > 0)
                .count();
            (state, active, serving)
        })
        .collect();
    let names = || config.frontends().keys().zip(&summary);
    gauge_header(
        out,
        format,
        "maglev_frontend_state",
        "The frontend's state: 0 unknown, 1 up, 2 down",
    );
    for (name, (state, _, _)) in names() {
        let labels = [("frontend", name.as_str())];
        text::sample(out, "maglev_frontend_state", &labels, state.unsigned_abs());
    }
    gauge_header(
        out,
        format,
        "maglev_frontend_active_pool",
        "The index of the frontend's active pool in its config (0: the first), \
         -1 while none is",
    );
    for (name, (_, active, _)) in names() {
        let labels = [("frontend", name.as_str())];
        let index = active.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX));
        text::sample_i64(out, "maglev_frontend_active_pool", &labels, index);
    }
    gauge_header(
        out,
        format,
        "maglev_frontend_serving_backends",
        "Members of the frontend's pools that maglev wants VPP to give new \
         flows (effective weight above 0); 0 means the VIP has nothing to send to",
    );
    for (name, (_, _, serving)) in names() {
        let labels = [("frontend", name.as_str())];
        text::sample(
            out,
            "maglev_frontend_serving_backends",
            &labels,
            *serving as u64,
        );
    }
    gauge_header(
        out,
        format,
        "maglev_warmup_phase",
        "The startup warm-up: 0 hands-off, 1 releasing frontends, 2 finished",
    );
    let phase = warmup_gauge(handle.warmup_phase());
    text::sample(out, "maglev_warmup_phase", &[], phase.unsigned_abs());
}

/// The detail per-(frontend, backend) gauges: each pool member's
/// configured and effective weight.
fn encode_members(
    out: &mut String,
    format: Format,
    handle: &Handle,
    backends: &Snapshot,
    now: tokio::time::Instant,
) {
    let config = handle.config();
    let mut members = Members::default();
    for (family, help, effective) in [
        (
            "maglev_frontend_pool_backend_weight",
            "The configured weight of a pool member (0-100)",
            false,
        ),
        (
            "maglev_frontend_pool_backend_effective_weight",
            "The weight maglev wants VPP to give a pool member: the configured \
             weight if the backend is up and its pool active, else 0",
            true,
        ),
    ] {
        gauge_header(out, format, family, help);
        for (name, fe) in config.frontends() {
            members.read(fe, backends, now);
            let of = |b: &str| members.of(b);
            let active = handle.active_pool(name, fe, of);
            for m in member_weights(fe, of, active) {
                let pool = fe.pools.get(m.pool).map_or("", |p| p.name.as_str());
                let labels = [
                    ("frontend", name.as_str()),
                    ("pool", pool),
                    ("backend", m.backend),
                ];
                let w = if effective {
                    m.effective.weight
                } else {
                    m.configured
                };
                text::sample(out, family, &labels, u64::from(w));
            }
        }
    }
}

/// The `maglev_vpp_*` gauges and VIP counters: only `maglev_vpp_connected`
/// while VPP is away.
fn encode_vpp(out: &mut String, format: Format, handle: &Handle) {
    let link = handle.vpp().ok();
    gauge_header(
        out,
        format,
        "maglev_vpp_connected",
        "1 while maglevd is connected to VPP, 0 while it is not",
    );
    text::sample(out, "maglev_vpp_connected", &[], u64::from(link.is_some()));
    let Some(link) = link else {
        return;
    };
    let now = handle.clock().now_unix_nanos();
    if let Some(boot) = link.info.boottime_unix_nanos {
        gauge_header(
            out,
            format,
            "maglev_vpp_uptime_seconds",
            "Seconds since VPP booted (from the stats segment's /sys/boottime)",
        );
        let up = nanos_to_seconds(now.saturating_sub(boot));
        text::sample_f64(out, "maglev_vpp_uptime_seconds", &[], up);
    }
    gauge_header(
        out,
        format,
        "maglev_vpp_connected_seconds",
        "Seconds since maglevd connected to VPP",
    );
    let connected = nanos_to_seconds(now.saturating_sub(link.connected_unix_nanos));
    text::sample_f64(out, "maglev_vpp_connected_seconds", &[], connected);
    gauge_header(
        out,
        format,
        "maglev_vpp_info",
        "VPP's version, build date and process id (always 1)",
    );
    let mut pid = String::new();
    text::u64_value(&mut pid, u64::from(link.info.pid));
    let labels = [
        ("version", link.info.version.as_str()),
        ("build_date", link.info.build_date.as_str()),
        ("pid", pid.as_str()),
    ];
    text::sample(out, "maglev_vpp_info", &labels, 1);
    encode_tables(out, format, handle);

    let Some(snapshot) = handle.counters() else {
        return;
    };
    text::header(
        out,
        format,
        "maglev_vpp_lb_vip_packets",
        "Packets VPP's load balancer handled for a frontend's VIP, by kind \
         (next: existing sessions, first: new sessions, untracked, no-server)",
        Kind::Counter,
    );
    for v in &snapshot.vips {
        for (kind, n) in lb_kinds(&v.stats.lb) {
            let labels = [("frontend", v.frontend.as_ref()), ("kind", kind)];
            text::sample(out, "maglev_vpp_lb_vip_packets_total", &labels, n);
        }
    }
    for (family, help, bytes) in [
        (
            "maglev_vpp_lb_vip_route_packets",
            "Packets routed to a frontend's VIP prefix (/net/route/to)",
            false,
        ),
        (
            "maglev_vpp_lb_vip_route_bytes",
            "Bytes routed to a frontend's VIP prefix (/net/route/to)",
            true,
        ),
    ] {
        text::header(out, format, family, help, Kind::Counter);
        let sample_name = format!("{family}_total");
        for v in &snapshot.vips {
            if let Some(r) = v.stats.route {
                let labels = [("frontend", v.frontend.as_ref())];
                let n = if bytes { r.bytes } else { r.packets };
                text::sample(out, &sample_name, &labels, n);
            }
        }
    }
}

/// The table gauges of the configured frontends' VIPs that VPP holds.
fn encode_tables(out: &mut String, format: Format, handle: &Handle) {
    let config = handle.config();
    let names: std::collections::BTreeMap<_, &str> = config
        .frontends()
        .iter()
        .map(|(name, fe)| (fe.vip_key(), name.as_str()))
        .collect();
    let tables: Vec<_> = handle
        .table_fingerprints()
        .into_iter()
        .filter_map(|(key, hash, drift)| Some((*names.get(&key)?, hash, drift)))
        .collect();
    gauge_header(
        out,
        format,
        "maglev_vpp_lb_table_hash",
        "A stable 48-bit hash of the frontend's predicted new-flow table: equal \
         on two routers exactly when their tables send every bucket to the same AS",
    );
    for (name, hash, _) in &tables {
        text::sample(
            out,
            "maglev_vpp_lb_table_hash",
            &[("frontend", name)],
            *hash,
        );
    }
    gauge_header(
        out,
        format,
        "maglev_vpp_lb_buckets_drift",
        "At the last read of VPP: the sum over the VIP's ASes of |predicted - \
         reported new-flow buckets| (0 when VPP's table is the predicted one)",
    );
    for (name, _, drift) in &tables {
        if let Some(d) = drift {
            let labels = [("frontend", *name)];
            text::sample(out, "maglev_vpp_lb_buckets_drift", &labels, u64::from(*d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_phases_are_numbered_in_order() {
        assert_eq!(warmup_gauge(Phase::HandsOff), 0);
        assert_eq!(warmup_gauge(Phase::Releasing), 1);
        assert_eq!(warmup_gauge(Phase::Finished), 2);
    }
}
