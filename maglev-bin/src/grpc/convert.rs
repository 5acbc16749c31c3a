//! From the daemon's types to the proto messages: pure functions, one per
//! message, with times turned into Unix nanoseconds by the daemon's
//! [`WallClock`] and every list sorted as `maglev.proto` promises.

use std::time::Duration;

use maglev_core::config::{Config, HealthCheck, Probe, TlsParams};
use maglev_core::dataplane::VipKey;
use maglev_core::plan::Op;
use maglev_core::prediction::TableChange;
use maglev_core::state::BackendState;
use maglev_health::damping;
use maglev_health::machine::Transition;
use maglev_health::status::{BackendStatus, Change, DampingChange, LastProbe, ProbeBlocked};
use maglev_vpp::api::messages::LbConf;
use maglev_vpp::lb::ops::{LbSnapshot, VipInfo};
use tokio::time::Instant;

use crate::clock::WallClock;
use crate::daemon::SyncReport;
use crate::daemon::counters::VipCounters;
use crate::daemon::reload::ConfigReport;
use crate::daemon::sync_health::{FailureKind, SyncHealth};
use crate::daemon::views::FrontendView;
use crate::daemon::vpp::VppLink;
use crate::events::{Event, EventKind, LogRecord, VppChange};
use crate::grpc::proto;
use maglev_core::config::ConfigIndex;

/// A `google.protobuf.Duration`.
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Below 10^9, so it fits.
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// A frontend with its pools, members sorted by name within each pool.
pub fn frontend(view: &FrontendView) -> proto::FrontendInfo {
    let fe = &view.frontend;
    let pools = fe
        .pools
        .iter()
        .enumerate()
        .map(|(index, pool)| {
            let mut backends: Vec<proto::PoolBackendInfo> = view
                .pool_members(index)
                .map(|m| {
                    let table = view.table.as_ref().map(|t| &t.summary);
                    proto::PoolBackendInfo {
                        name: m.backend.clone(),
                        weight: u32::from(m.weight),
                        effective_weight: u32::from(m.effective_weight),
                        state: m.state.as_str().to_owned(),
                        address: m.address.to_string(),
                        buckets: table.map(|t| t.buckets.get(&m.address).copied().unwrap_or(0)),
                        share: table.map_or(0.0, |t| t.share(m.address)),
                        suppressed: m.suppressed,
                        slow_start_step: m.ramp.map(u32::from),
                        // Filled by the service, which knows the overrides.
                        weight_override: None,
                    }
                })
                .collect();
            backends.sort_by(|a, b| a.name.cmp(&b.name));
            let serving = view
                .pool_members(index)
                .filter(|m| m.weight > 0 && m.state == BackendState::Up && !m.suppressed)
                .count();
            proto::PoolInfo {
                name: pool.name.clone(),
                backends,
                min_up: count(pool.min_up_count()),
                min_up_to_return: count(pool.min_up_to_return_count()),
                serving: count(serving),
            }
        })
        .collect();
    proto::FrontendInfo {
        name: view.name.clone(),
        address: fe.address.to_string(),
        protocol: fe
            .protocol
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        port: u32::from(fe.port),
        pools,
        description: fe.description.clone(),
        src_ip_sticky: fe.src_ip_sticky,
        flush_on_down: fe.flush_on_down,
        state: view.state.as_str().to_owned(),
        active_pool: view
            .active_pool
            .and_then(|i| fe.pools.get(i))
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        encap: view.encap.map(|e| e.to_string()).unwrap_or_default(),
        released: view.released,
        flow_table_length: fe.flow_table_length.to_string(),
        table_length: fe.table_len(),
        table_fingerprint: view.table.as_ref().map_or(0, |t| t.summary.fingerprint),
        buckets_drift: view.table.as_ref().and_then(|t| t.drift),
        announce: view
            .announce
            .map(|a| {
                if a.announced {
                    "announced"
                } else {
                    "withdrawn"
                }
                .to_owned()
            })
            .unwrap_or_default(),
        announce_reason: view
            .announce
            .map(|a| a.reason.as_str().to_owned())
            .unwrap_or_default(),
        config_fingerprint: view.config_fingerprint,
    }
}

/// A prefix's announcement.
pub fn announcement(p: &crate::announce::view::PrefixView) -> proto::Announcement {
    proto::Announcement {
        prefix: p.prefix.to_string(),
        frontends: p.frontends.clone(),
        announced: p.announced,
        reason: p.reason.as_str().to_owned(),
        since_unix_nanos: p.since_unix_nanos.unwrap_or(0),
        error: p.error.clone().unwrap_or_default(),
    }
}

/// The node.
pub fn node(n: &crate::announce::view::NodeView) -> proto::NodeInfo {
    proto::NodeInfo {
        drained: n.drained.is_some(),
        drained_by: n.drained.as_ref().map(|d| d.by.clone()).unwrap_or_default(),
        drained_since_unix_nanos: n
            .drained
            .as_ref()
            .map_or(0, |d| d.at_unix_ms.saturating_mul(1_000_000)),
        announce_enabled: n.announce_enabled,
        table: n.table.clone(),
        announced: count(n.announced),
        prefixes: count(n.prefixes),
        name: n.name.clone(),
        config_fingerprint: n.config_fingerprint,
        version: crate::VERSION.to_owned(),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The most ops a sync's reply lists (the rest are counted).
pub const LISTED_OPS: usize = 1_000;
/// The most table changes a sync's reply lists (fewer when they would
/// pass [`PAGE_BYTES`](crate::grpc::paging::PAGE_BYTES) together).
pub const LISTED_TABLES: usize = 1_000;

/// What a sync did, or a dry run would do: the first [`LISTED_OPS`] ops
/// and the first [`LISTED_TABLES`] table changes, with the totals and the
/// ops by kind (a full sync at 10,000 VIPs has 170,000 ops, and a write's
/// reply cannot be paged).
pub fn sync_report(report: &SyncReport, config: &Config) -> proto::SyncVpplbStateResponse {
    // Looked up once per reply, not once per AS: a full sync's report has a
    // change for every VIP.
    let names = Names {
        frontends: config
            .frontends()
            .iter()
            .map(|(n, f)| (f.vip_key(), n.as_str()))
            .collect(),
        backends: config
            .backends()
            .iter()
            .map(|(n, b)| (b.address, n.as_str()))
            .collect(),
    };
    let ops: Vec<String> = report
        .ops
        .iter()
        .take(LISTED_OPS)
        .map(|op| op.to_string())
        .collect();
    let tables = crate::grpc::paging::collect(
        report.tables.iter().map(|t| (String::new(), t)),
        LISTED_TABLES,
        crate::grpc::paging::PAGE_BYTES,
        |t| table_change(t, &names),
    )
    .items;
    let mut counts = proto::OpCounts::default();
    for op in &report.ops {
        let n = match op {
            Op::CreateVip { .. } => &mut counts.vip_adds,
            Op::DeleteVip { .. } => &mut counts.vip_deletes,
            Op::AddAs { .. } => &mut counts.as_adds,
            Op::DeleteAs { .. } => &mut counts.as_deletes,
            Op::SetWeight { .. } => &mut counts.as_weights,
        };
        *n = n.saturating_add(1);
    }
    proto::SyncVpplbStateResponse {
        ops_total: count(report.ops.len()),
        ops_omitted: count(report.ops.len() - ops.len()),
        tables_total: count(report.tables.len()),
        tables_omitted: count(report.tables.len() - tables.len()),
        op_counts: Some(counts),
        ops,
        tables,
    }
}

/// The configured names of VIPs and AS addresses.
struct Names<'a> {
    frontends: std::collections::BTreeMap<VipKey, &'a str>,
    backends: std::collections::BTreeMap<std::net::IpAddr, &'a str>,
}

/// What a plan does to one VIP's table.
fn table_change(t: &TableChange, names: &Names<'_>) -> proto::TableChange {
    let addr = |a: &Option<std::net::IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    let mut transfers: Vec<proto::BucketTransfer> = t
        .movement
        .transfers
        .iter()
        .map(|((from, to), n)| proto::BucketTransfer {
            from: addr(from),
            to: addr(to),
            buckets: *n,
        })
        .collect();
    // Largest first; the map's order breaks ties.
    transfers.sort_by_key(|t| std::cmp::Reverse(t.buckets));
    let backend_at = |a: std::net::IpAddr| {
        names
            .backends
            .get(&a)
            .map(|n| (*n).to_owned())
            .unwrap_or_default()
    };
    let after = t
        .after
        .as_ref()
        .map(|s| {
            s.buckets
                .iter()
                .map(|(a, n)| proto::AsShare {
                    address: a.to_string(),
                    backend: backend_at(*a),
                    buckets: *n,
                    share: s.share(*a),
                })
                .collect()
        })
        .unwrap_or_default();
    proto::TableChange {
        frontend: names
            .frontends
            .get(&t.key)
            .map(|f| (*f).to_owned())
            .unwrap_or_default(),
        vip: t.key.to_string(),
        table_length: u32::try_from(t.movement.len).unwrap_or(u32::MAX),
        buckets_moved: u32::try_from(t.movement.moved).unwrap_or(u32::MAX),
        moved_share: t.movement.share(),
        recreated: t.movement.recreated,
        created: t.before.is_none(),
        removed: t.after.is_none(),
        transfers,
        after,
        fingerprint_before: t.before.as_ref().map_or(0, |s| s.fingerprint),
        fingerprint_after: t.after.as_ref().map_or(0, |s| s.fingerprint),
    }
}

/// A backend transition.
pub fn transition(t: &Transition, clock: &WallClock) -> proto::Transition {
    proto::Transition {
        from: t.from.as_str().to_owned(),
        to: t.to.as_str().to_owned(),
        code: t.code.as_str().to_owned(),
        detail: t.detail.clone(),
        unix_nanos: clock.unix_nanos(t.at),
    }
}

fn probe(p: &LastProbe, clock: &WallClock) -> proto::ProbeResult {
    proto::ProbeResult {
        code: p.code.as_str().to_owned(),
        detail: p.detail.clone(),
        duration: Some(duration(p.duration)),
        unix_nanos: clock.unix_nanos(p.at),
    }
}

/// A backend's status, with the frontends using it (`frontends` sorted by
/// the caller's config order, which is by name).
pub fn backend(
    status: &BackendStatus,
    frontends: Vec<String>,
    clock: &WallClock,
) -> proto::BackendInfo {
    let now = Instant::now();
    let mut frontends = frontends;
    frontends.sort();
    proto::BackendInfo {
        name: status.name.to_string(),
        address: status.address.to_string(),
        state: status.state.as_str().to_owned(),
        enabled: status.enabled,
        healthcheck: status
            .healthcheck
            .as_deref()
            .map(str::to_owned)
            .unwrap_or_default(),
        health: status.counter,
        rise: status.rise,
        fall: status.fall,
        last_probe: status.last_probe.as_deref().map(|p| probe(p, clock)),
        transitions: status
            .history
            .iter()
            .map(|t| transition(t, clock))
            .collect(),
        frontends,
        damping: status.damping.as_ref().map(|d| {
            let c = d.config();
            proto::Damping {
                suppressed: d.is_suppressed(),
                penalty: d.penalty(now),
                release_unix_nanos: d.release_at().map_or(0, |at| clock.unix_nanos(at)),
                half_life: Some(duration(c.half_life)),
                suppress: c.suppress,
                reuse: c.reuse,
                max_suppress: Some(duration(c.max_suppress)),
            }
        }),
        flaps: status.flaps,
        slow_start: status
            .ramp
            .as_deref()
            .filter(|_| status.state == BackendState::Up)
            .and_then(|r| {
                r.step(now).map(|step| proto::SlowStart {
                    since_unix_nanos: clock.unix_nanos(r.since),
                    length: Some(duration(r.length)),
                    step: u32::from(step),
                })
            }),
        probe_blocked: status.probe_blocked.as_ref().map(|b| proto::ProbeBlocked {
            reason: b.reason.as_str().to_owned(),
            detail: b.detail.clone(),
            since_unix_nanos: clock.unix_nanos(b.since),
            count: b.count,
        }),
        // Filled by the service, which knows the overrides.
        operator_override: None,
        weight_overrides: Vec::new(),
    }
}

/// An operator override as gRPC says it; `file_weight` is what the config
/// file says now for a weight (the override's own record otherwise).
pub fn operator_override(
    o: &crate::daemon::overrides::Override,
    file_weight: Option<u8>,
) -> proto::OperatorOverride {
    use crate::daemon::overrides::Override;
    let ns = |ms: i64| ms.saturating_mul(1_000_000);
    match o {
        Override::Backend { backend, intent } => proto::OperatorOverride {
            kind: intent.intent.as_str().to_owned(),
            backend: backend.clone(),
            file_enabled: intent.file_enabled,
            by: intent.by.clone(),
            at_unix_nanos: ns(intent.at_unix_ms),
            ..Default::default()
        },
        Override::Weight {
            key: (frontend, pool, backend),
            weight,
        } => proto::OperatorOverride {
            kind: "weight".to_owned(),
            backend: backend.clone(),
            frontend: frontend.clone(),
            pool: pool.clone(),
            weight: u32::from(weight.weight),
            file_weight: u32::from(file_weight.unwrap_or(weight.file_weight)),
            by: weight.by.clone(),
            at_unix_nanos: ns(weight.at_unix_ms),
            ..Default::default()
        },
    }
}

/// A spell of probes that could not run (a probe-blocked event's).
fn probe_blocked(b: &ProbeBlocked, clock: &WallClock) -> proto::ProbeBlocked {
    proto::ProbeBlocked {
        reason: b.reason.as_str().to_owned(),
        detail: b.detail.clone(),
        since_unix_nanos: clock.unix_nanos(b.since),
        count: b.count,
    }
}

fn damping_event(d: &DampingChange, clock: &WallClock) -> proto::DampingEvent {
    proto::DampingEvent {
        suppressed: d.change == damping::Change::Suppressed,
        penalty: d.penalty,
        release_unix_nanos: d.release_at.map_or(0, |at| clock.unix_nanos(at)),
    }
}

/// A health check as configured, with the backends using it (sorted by
/// name: [`ConfigIndex::backends_checked_by`]).
pub fn healthcheck(name: &str, hc: &HealthCheck, backends: &[String]) -> proto::HealthCheckInfo {
    let t = &hc.timing;
    let mut info = proto::HealthCheckInfo {
        name: name.to_owned(),
        r#type: hc.kind().as_str().to_owned(),
        interval: Some(duration(t.interval)),
        fast_interval: Some(duration(t.fast_interval)),
        down_interval: Some(duration(t.down_interval)),
        timeout: Some(duration(t.timeout)),
        rise: t.rise,
        fall: t.fall,
        backends: backends.to_vec(),
        ..proto::HealthCheckInfo::default()
    };
    let tls = |info: &mut proto::HealthCheckInfo, tls: &TlsParams| {
        info.server_name = tls.server_name.clone().unwrap_or_default();
        info.insecure_skip_verify = tls.insecure_skip_verify;
    };
    match &hc.probe {
        Probe::Http(h) => {
            info.port = u32::from(h.port);
            info.path = h.path.clone();
            info.method = h.method.as_str().to_owned();
            info.host = h.host.clone().unwrap_or_default();
            info.response_codes = h
                .response_codes
                .ranges()
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    }
                })
                .collect();
            info.response_regex = h.response_regex.clone().unwrap_or_default();
            info.max_body = u64::try_from(h.max_body).unwrap_or(u64::MAX);
            if let Some(t) = &h.tls {
                tls(&mut info, t);
            }
        }
        Probe::Tcp(p) => {
            info.port = u32::from(p.port);
            if let Some(t) = &p.tls {
                info.tls = true;
                tls(&mut info, t);
            }
        }
        Probe::Icmp => {}
    }
    info
}

/// The connected VPP's identity and the reconciler's sync health.
pub fn vpp_info(link: &VppLink, health: &SyncHealth) -> proto::VppInfo {
    let i = &link.info;
    let failures = |kind: FailureKind| {
        health
            .failures
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    };
    proto::VppInfo {
        version: i.version.clone(),
        build_date: i.build_date.clone(),
        build_directory: i.build_directory.clone(),
        pid: i.pid,
        boottime_ns: i.boottime_unix_nanos.unwrap_or(0),
        connecttime_ns: link.connected_unix_nanos,
        sync_pending: health
            .pending
            .iter()
            .map(|p| proto::PendingSync {
                frontend: p.frontend.clone(),
                waited: Some(duration(p.waited)),
                retry_in: p.retry_in.map(duration),
            })
            .collect(),
        sync_oldest_pending: health.oldest_pending.map(duration),
        sync_full_pending: health.full_pending,
        read_errors: health.read_errors,
        sync_failures_refused: failures(FailureKind::Refused),
        sync_failures_read: failures(FailureKind::Read),
        sync_failures_unavailable: failures(FailureKind::Unavailable),
        last_full_sync_ns: health.last_full_success_unix_nanos.unwrap_or(0),
    }
}

/// `prefix/len`, as VPP prints a VIP prefix.
pub fn prefix(key: &VipKey) -> String {
    format!("{}/{}", key.address, key.prefix_len)
}

/// VPP's global LB conf.
pub fn lb_conf(conf: &LbConf) -> proto::VpplbConf {
    proto::VpplbConf {
        ip4_src_address: conf.ip4_src_address.to_string(),
        ip6_src_address: conf.ip6_src_address.to_string(),
        sticky_buckets_per_core: conf.sticky_buckets_per_core,
        flow_timeout_seconds: conf.flow_timeout,
    }
}

/// One VIP of VPP's LB state (`snapshot`'s ASes in key then address
/// order, as [`reads`](crate::daemon::reads) keeps them), with its
/// configured frontend from `index`: a binary search, not a walk.
pub fn lb_vip(snapshot: &LbSnapshot, v: &VipInfo, index: &ConfigIndex) -> proto::Vpplbvip {
    let from = snapshot.ases.partition_point(|a| a.vip < v.key);
    let to = from + snapshot.ases[from..].partition_point(|a| a.vip == v.key);
    proto::Vpplbvip {
        prefix: prefix(&v.key),
        protocol: u32::from(v.key.protocol),
        port: u32::from(v.key.port),
        encap: v.encap.to_string(),
        src_ip_sticky: v.src_ip_sticky,
        pool_index: v.pool_index,
        flow_table_length: v.table_len,
        ases: snapshot.ases[from..to]
            .iter()
            .map(|a| proto::Vpplbas {
                address: a.address.to_string(),
                weight: u32::from(a.weight),
                // The AS dump maglev reads carries no flags.
                flags: 0,
                num_buckets: a.num_buckets,
            })
            .collect(),
        frontend: index
            .frontend_of(&v.key)
            .map(|f| f.to_string())
            .unwrap_or_default(),
    }
}

/// One VIP's counters.
pub fn vip_counters(v: &VipCounters) -> proto::VpplbvipCounters {
    proto::VpplbvipCounters {
        frontend: v.frontend.to_string(),
        prefix: prefix(&v.key),
        protocol: u32::from(v.key.protocol),
        port: u32::from(v.key.port),
        next: v.stats.lb.next_packet,
        first: v.stats.lb.first_packet,
        untracked: v.stats.lb.untracked,
        no_server: v.stats.lb.no_server,
        route_packets: v.stats.route.map_or(0, |r| r.packets),
        route_bytes: v.stats.route.map_or(0, |r| r.bytes),
    }
}

/// A config check's result.
pub fn check_report(r: &ConfigReport) -> proto::CheckConfigResponse {
    proto::CheckConfigResponse {
        ok: r.ok(),
        parse_error: r.parse_error.clone().unwrap_or_default(),
        semantic_error: r.semantic_error.clone().unwrap_or_default(),
        path: r.path.clone(),
    }
}

/// A reload's result.
pub fn reload_report(r: &ConfigReport) -> proto::ReloadConfigResponse {
    proto::ReloadConfigResponse {
        ok: r.ok(),
        parse_error: r.parse_error.clone().unwrap_or_default(),
        semantic_error: r.semantic_error.clone().unwrap_or_default(),
        path: r.path.clone(),
        deleted: r.deleted.clone(),
    }
}

/// A tracing level as the API writes it.
pub fn level(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

fn log(r: &LogRecord) -> proto::LogEvent {
    proto::LogEvent {
        level: level(r.level).to_owned(),
        message: r.message.clone(),
        target: r.target.clone(),
        fields: r
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn vpp_change(c: &VppChange) -> proto::VppChangeEvent {
    proto::VppChangeEvent {
        frontend: c.frontend.as_deref().map(str::to_owned).unwrap_or_default(),
        kind: c.kind.to_owned(),
        op: c.op.clone(),
        scope: c.scope.to_owned(),
        error: c.error.clone().unwrap_or_default(),
        summary: c.summary.map(|t| proto::VppChangeSummary {
            ops: t.ops,
            vip_added: t.vip_added,
            vip_removed: t.vip_removed,
            as_added: t.as_added,
            as_removed: t.as_removed,
            as_weight_updated: t.as_weight_updated,
            skipped: t.skipped,
        }),
    }
}

/// An event of the hub.
pub fn event(e: &Event, clock: &WallClock) -> proto::Event {
    use proto::event::Kind;
    let kind = match &e.kind {
        EventKind::Log(r) => Kind::Log(log(r)),
        EventKind::Backend {
            backend,
            address,
            change,
        } => Kind::Backend(proto::BackendEvent {
            backend: backend.to_string(),
            address: address.to_string(),
            transition: match change {
                Change::Transition(t) => Some(transition(t, clock)),
                _ => None,
            },
            damping: match change {
                Change::Damping(d) => Some(damping_event(d, clock)),
                _ => None,
            },
            probe_blocked: match change {
                Change::ProbeBlocked(b) => Some(proto::ProbeBlockedEvent {
                    blocked: b.blocked,
                    spell: Some(probe_blocked(&b.spell, clock)),
                }),
                _ => None,
            },
        }),
        EventKind::Frontend { frontend, from, to } => Kind::Frontend(proto::FrontendEvent {
            frontend: frontend.to_string(),
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
        }),
        EventKind::Vpp(c) => Kind::Vpp(vpp_change(c)),
        EventKind::Announce(a) => Kind::Announce(proto::AnnounceEvent {
            prefix: a.prefix.to_string(),
            frontends: a.frontends.iter().map(|f| f.to_string()).collect(),
            announced: a.announced,
            reason: a.reason.as_str().to_owned(),
            error: a.error.clone().unwrap_or_default(),
        }),
        EventKind::Node(n) => Kind::Node(proto::NodeEvent {
            drained: n.drained,
            by: n.by.clone(),
        }),
    };
    proto::Event {
        unix_nanos: e.unix_nanos,
        kind: Some(kind),
    }
}

/// The notice that a subscriber lost `lost` events, stamped `unix_nanos`.
pub fn lag(lost: u64, unix_nanos: i64) -> proto::Event {
    proto::Event {
        unix_nanos,
        kind: Some(proto::event::Kind::Lag(proto::LagEvent { lost })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_their_nanoseconds() {
        let d = duration(Duration::from_millis(1500));
        assert_eq!((d.seconds, d.nanos), (1, 500_000_000));
    }

    #[test]
    fn a_backend_whose_probes_cannot_run_says_why_since_when_and_how_often() {
        use maglev_health::probe::LocalCause;
        use maglev_health::status::ProbeBlocked;
        // A paired clock: each conversion of `since` gives the same time
        // (the system clock, read at each stamp, moves between two).
        let since = Instant::now();
        let clock = WallClock::at(since, Duration::from_secs(1_800_000_000));
        let status = BackendStatus {
            name: "a".into(),
            address: "10.0.0.1".parse().unwrap(),
            state: BackendState::Up,
            enabled: true,
            healthcheck: Some("web".into()),
            counter: 4,
            rise: 2,
            fall: 3,
            last_probe: None,
            history: std::sync::Arc::from([]),
            damping: None,
            flaps: 0,
            ramp: None,
            probe_blocked: Some(Box::new(ProbeBlocked {
                reason: LocalCause::FdLimit,
                detail: "create socket: Too many open files".into(),
                since,
                count: 3,
            })),
        };
        let info = backend(&status, vec![], &clock);
        assert_eq!(info.state, "up");
        assert_eq!(
            info.probe_blocked,
            Some(proto::ProbeBlocked {
                reason: "fd_limit".into(),
                detail: "create socket: Too many open files".into(),
                since_unix_nanos: clock.unix_nanos(since),
                count: 3,
            })
        );
        let unblocked = BackendStatus {
            probe_blocked: None,
            ..status
        };
        assert_eq!(backend(&unblocked, vec![], &clock).probe_blocked, None);
    }

    #[test]
    fn the_node_says_who_it_is_and_what_config_it_runs() {
        let view = crate::announce::view::NodeView {
            name: "router-1".into(),
            config_fingerprint: 0x1234_5678_9abc,
            ..Default::default()
        };
        let info = node(&view);
        assert_eq!(info.name, "router-1");
        assert_eq!(info.config_fingerprint, 0x1234_5678_9abc);
        assert_eq!(info.version, crate::VERSION);
    }

    #[test]
    fn a_frontend_carries_its_config_fingerprint() {
        let config = Config::from_yaml(
            r#"
maglev:
  backends:
    a: { address: 10.0.0.1 }
  frontends:
    web:
      address: 192.0.2.1
      protocol: tcp
      port: 80
      pools:
        - { name: p, backends: { a: {} } }
"#,
            "test.yaml",
        )
        .unwrap();
        let up = |_: &str| maglev_core::weights::Serving {
            state: BackendState::Up,
            suppressed: false,
            ramp: None,
        };
        let view = FrontendView::build(&config, "web", up, Some(0), true).unwrap();
        let info = frontend(&view);
        assert_eq!(
            Some(info.config_fingerprint),
            config.frontend_fingerprint("web")
        );
        assert_ne!(info.config_fingerprint, 0);
    }

    #[test]
    fn prefixes_read_as_vpp_prints_them() {
        let key = VipKey::host("192.0.2.1".parse().unwrap(), None, 0);
        assert_eq!(prefix(&key), "192.0.2.1/32");
        let key = VipKey::host("2001:db8::1".parse().unwrap(), None, 0);
        assert_eq!(prefix(&key), "2001:db8::1/128");
    }
}
