//! The gauges computed at scrape time from the daemon's snapshots: one
//! [`Collector`] holding a [`Handle`], asked to encode at every scrape.
//!
//! One scrape reads one checker snapshot, so backend gauges, frontend
//! states and effective weights agree with each other. Labels are borrowed
//! from the snapshots and the config (no string is built per series); the
//! only allocations are the snapshot's map and one list of pool members.

use std::fmt;

use maglev_core::desired::member_weights;
use maglev_core::frontend::frontend_state;
use maglev_core::state::BackendState;
use maglev_core::warmup::Phase;
use maglev_vpp::stats::LbCounters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use crate::daemon::Handle;

/// The scrape-time gauges of one daemon.
#[derive(Debug)]
pub struct Gauges {
    handle: Handle,
}

impl Gauges {
    /// The gauges of the daemon behind `handle`.
    pub fn new(handle: Handle) -> Gauges {
        Gauges { handle }
    }
}

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

/// Encodes one gauge family from its series.
fn gauges<L, V>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    V: EncodeGaugeValue,
{
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// Encodes one gauge without labels.
fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// Encodes one counter family (registered without `_total`, which the
/// encoders append) from its series.
fn counters<L>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
{
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, u64, u64>(&value, None)?;
    }
    Ok(())
}

fn nanos_to_seconds(nanos: i64) -> f64 {
    // Precision beyond microseconds does not matter here.
    nanos as f64 / 1e9
}

impl Collector for Gauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let handle = &self.handle;
        let e = &mut encoder;
        let backends = handle.backends();
        let config = handle.config();
        let state_of = |name: &str| {
            backends
                .get(name)
                .map_or(BackendState::Removed, |s| s.state)
        };

        // ------------------------------------------------------ backends
        {
            let mut family = e.encode_descriptor(
                "maglev_backend_state",
                "1 for the backend's current state, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for (name, status) in &backends {
                for state in BackendState::ALL {
                    let labels = [("backend", name.as_ref()), ("state", state.as_str())];
                    family
                        .encode_family(&labels)?
                        .encode_gauge(&i64::from(status.state == state))?;
                }
            }
        }
        gauges(
            e,
            "maglev_backend_health",
            "The backend's rise/fall counter (0 down, rise+fall-1 fully up)",
            backends
                .iter()
                .map(|(name, s)| ([("backend", name.as_ref())], s.counter)),
        )?;
        gauges(
            e,
            "maglev_backend_enabled",
            "1 if the backend is enabled, 0 if an operator disabled it",
            backends
                .iter()
                .map(|(name, s)| ([("backend", name.as_ref())], i64::from(s.enabled))),
        )?;

        // ----------------------------------------------------- frontends
        gauges(
            e,
            "maglev_frontend_state",
            "The frontend's state: 0 unknown, 1 up, 2 down",
            config.frontends().iter().map(|(name, fe)| {
                (
                    [("frontend", name.as_str())],
                    frontend_state(fe, state_of).gauge(),
                )
            }),
        )?;
        let members: Vec<_> = config
            .frontends()
            .iter()
            .flat_map(|(name, fe)| {
                member_weights(fe, state_of).into_iter().map(move |m| {
                    let pool = fe.pools.get(m.pool).map_or("", |p| p.name.as_str());
                    (
                        [
                            ("frontend", name.as_str()),
                            ("pool", pool),
                            ("backend", m.backend),
                        ],
                        m.configured,
                        m.effective.weight,
                    )
                })
            })
            .collect();
        gauges(
            e,
            "maglev_frontend_pool_backend_weight",
            "The configured weight of a pool member (0-100)",
            members
                .iter()
                .map(|(l, w, _)| (l.as_slice(), u32::from(*w))),
        )?;
        gauges(
            e,
            "maglev_frontend_pool_backend_effective_weight",
            "The weight maglev wants VPP to give a pool member: the configured \
             weight if the backend is up and its pool active, else 0",
            members
                .iter()
                .map(|(l, _, w)| (l.as_slice(), u32::from(*w))),
        )?;
        gauge(
            e,
            "maglev_warmup_phase",
            "The startup warm-up: 0 hands-off, 1 releasing frontends, 2 finished",
            warmup_gauge(handle.warmup_phase()),
        )?;

        // ----------------------------------------------------------- VPP
        if !handle.vpp_enabled() {
            return Ok(());
        }
        let link = handle.vpp().ok();
        gauge(
            e,
            "maglev_vpp_connected",
            "1 while maglevd is connected to VPP, 0 while it is not",
            i64::from(link.is_some()),
        )?;
        let Some(link) = link else {
            return Ok(());
        };
        let now = handle.clock().now_unix_nanos();
        if let Some(boot) = link.info.boottime_unix_nanos {
            gauge(
                e,
                "maglev_vpp_uptime_seconds",
                "Seconds since VPP booted (from the stats segment's /sys/boottime)",
                nanos_to_seconds(now.saturating_sub(boot)),
            )?;
        }
        gauge(
            e,
            "maglev_vpp_connected_seconds",
            "Seconds since maglevd connected to VPP",
            nanos_to_seconds(now.saturating_sub(link.connected_unix_nanos)),
        )?;
        gauges(
            e,
            "maglev_vpp_info",
            "VPP's version, build date and process id (always 1)",
            [(
                (
                    [
                        ("version", link.info.version.as_str()),
                        ("build_date", link.info.build_date.as_str()),
                    ],
                    [("pid", link.info.pid)],
                ),
                1i64,
            )],
        )?;
        let Some(snapshot) = handle.counters() else {
            return Ok(());
        };
        counters(
            e,
            "maglev_vpp_lb_vip_packets",
            "Packets VPP's load balancer handled for a frontend's VIP, by kind \
             (next: existing sessions, first: new sessions, untracked, no-server)",
            snapshot.vips.iter().flat_map(|v| {
                lb_kinds(&v.stats.lb)
                    .map(|(kind, n)| ([("frontend", v.frontend.as_ref()), ("kind", kind)], n))
            }),
        )?;
        counters(
            e,
            "maglev_vpp_lb_vip_route_packets",
            "Packets routed to a frontend's VIP prefix (/net/route/to)",
            snapshot.vips.iter().filter_map(|v| {
                v.stats
                    .route
                    .map(|r| ([("frontend", v.frontend.as_ref())], r.packets))
            }),
        )?;
        counters(
            e,
            "maglev_vpp_lb_vip_route_bytes",
            "Bytes routed to a frontend's VIP prefix (/net/route/to)",
            snapshot.vips.iter().filter_map(|v| {
                v.stats
                    .route
                    .map(|r| ([("frontend", v.frontend.as_ref())], r.bytes))
            }),
        )?;
        Ok(())
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
