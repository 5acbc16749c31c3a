//! Typed LB operations over the [`Client`].
//!
//! Each call sends the message VPP-WIRE C.3 prescribes, with the defaults
//! VPP does not apply itself filled in (`new_flows_table_length`
//! [`DEFAULT_TABLE_LEN`], protocol 255 for all-port VIPs), and turns a
//! non-zero retval into [`Error::Retval`] naming the message. What maglev
//! refuses to send at all is an [`LbError`] of its own, never a made-up
//! retval.

use std::collections::BTreeMap;
use std::net::IpAddr;

use maglev_core::config::LbConfig;
use maglev_core::dataplane::{ANY_PROTOCOL, Encap, ObservedState, ObservedVip, VipKey};
use maglev_core::maglev::DEFAULT_TABLE_LEN;
use maglev_core::plan::Op;

use crate::api::client::{Client, PendingReply};
use crate::api::error::Error;
use crate::api::messages::{
    CliInband, IpRouteLookup, LB_AS_FLAGS_USED, LbAddDelAsV2, LbAddDelAsV2Reply, LbAddDelVipV2,
    LbAddDelVipV2Reply, LbAsSetWeight, LbAsSetWeightReply, LbAsV2Details, LbAsV2Dump, LbConf,
    LbConfGet, LbFlushVip, LbVipDetails, LbVipDump, ShowVersion,
};
use crate::api::types::{LbEncapType, LbSrvType, LbVip, Prefix};
use crate::lb::error::LbError;
use crate::lb::vips_text::{self, VipCounters};
use crate::stats::VipStatsIndex;

/// [`DEFAULT_TABLE_LEN`] as the wire's `new_flows_table_length`.
const NEW_FLOWS_TABLE_LENGTH: u32 = {
    assert!(DEFAULT_TABLE_LEN <= u32::MAX as usize);
    DEFAULT_TABLE_LEN as u32
};

/// In `lb_conf`'s `sticky_buckets_per_core` and `flow_timeout`: keep
/// VPP's current value (`~0`, as `vl_api_lb_conf_t_handler` reads it).
pub const LB_CONF_KEEP: u32 = u32::MAX;

/// The CLI command that lists VIPs with their pool indexes.
pub const SHOW_LB_VIPS_VERBOSE: &str = "show lb vips verbose";

/// A live VIP as VPP reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipInfo {
    /// The VIP.
    pub key: VipKey,
    /// Its encapsulation.
    pub encap: Encap,
    /// Its source-IP stickiness (from the CLI text).
    pub src_ip_sticky: bool,
    /// Its pool index: the column of its LB counters (from the CLI text).
    pub pool_index: u32,
    /// Its new-flow table length, from the CLI text's `new_size` (the
    /// dump's `flow_table_length` is truncated to 16 bits: 65,536 reads 0).
    pub table_len: u32,
    /// Its LB counters at the time of the listing.
    pub counters: VipCounters,
}

/// A live AS of a live VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsInfo {
    /// The VIP.
    pub vip: VipKey,
    /// The AS address.
    pub address: IpAddr,
    /// Its weight.
    pub weight: u8,
    /// New-flow buckets pointing at it.
    pub num_buckets: u32,
}

/// VIPs and ASes read in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LbSnapshot {
    /// Live VIPs in key order.
    pub vips: Vec<VipInfo>,
    /// Live ASes of live VIPs, in VIP key then address order.
    pub ases: Vec<AsInfo>,
}

impl LbSnapshot {
    /// The planner's view.
    pub fn observed(&self) -> ObservedState {
        let mut state: ObservedState = self
            .vips
            .iter()
            .map(|v| {
                (
                    v.key,
                    ObservedVip {
                        key: v.key,
                        encap: v.encap,
                        table_len: v.table_len,
                        src_ip_sticky: v.src_ip_sticky,
                        ases: BTreeMap::new(),
                    },
                )
            })
            .collect();
        for a in &self.ases {
            if let Some(v) = state.get_mut(&a.vip) {
                v.ases.insert(a.address, a.weight);
            }
        }
        state
    }

    /// The pool index of a live VIP.
    pub fn pool_index(&self, key: &VipKey) -> Option<u32> {
        self.vips
            .iter()
            .find(|v| v.key == *key)
            .map(|v| v.pool_index)
    }

    /// Per live VIP, how far VPP's `num_buckets` are from the table
    /// maglev predicts from the same dump's weights and length: the sum
    /// over its ASes of |predicted − reported|, 0 when they agree. A VIP
    /// whose length is not a power of two (not one maglev made) is left
    /// out.
    pub fn bucket_drift(&self) -> BTreeMap<VipKey, u32> {
        let observed = self.observed();
        // VPP's buckets per VIP, gathered in one pass: a scan of every AS
        // per VIP was 1.6e9 comparisons per read at 10,000 VIPs × 16
        // (issue 25).
        let mut reported: BTreeMap<VipKey, Vec<&AsInfo>> = BTreeMap::new();
        for a in &self.ases {
            reported.entry(a.vip).or_default().push(a);
        }
        let mut drift = BTreeMap::new();
        for (key, vip) in &observed {
            let Ok(table) = vip.table() else {
                continue;
            };
            let predicted = table.counts();
            let reported = reported.get(key).into_iter().flatten();
            let off = reported
                .map(|a| {
                    let p = predicted.get(&a.address).copied().unwrap_or(0);
                    p.abs_diff(a.num_buckets)
                })
                .sum();
            drift.insert(*key, off);
        }
        drift
    }
}

/// The wire form of a VIP key: prefix, protocol (255 for all-port), port.
pub fn wire_key(key: &VipKey) -> (Prefix, u8, u16) {
    let protocol = if key.port == 0 {
        ANY_PROTOCOL
    } else {
        key.protocol
    };
    (
        Prefix {
            address: key.address,
            len: key.prefix_len,
        },
        protocol,
        key.port,
    )
}

/// The VIP key of a VIP VPP reported.
pub fn key_of(vip: &LbVip) -> VipKey {
    VipKey {
        address: vip.pfx.address,
        prefix_len: vip.pfx.len,
        protocol: vip.protocol,
        port: vip.port,
    }
}

/// The `lb_add_del_vip_v2` that creates (or, with `is_del`, deletes) a VIP
/// with a new-flow table of [`DEFAULT_TABLE_LEN`]; set
/// `new_flows_table_length` for another (a power of two, never 0).
pub fn vip_request(key: &VipKey, encap: Encap, src_ip_sticky: bool, is_del: bool) -> LbAddDelVipV2 {
    let (pfx, protocol, port) = wire_key(key);
    LbAddDelVipV2 {
        pfx,
        protocol,
        port,
        encap: encap.into(),
        dscp: 0,
        srv_type: LbSrvType::CLUSTERIP,
        target_port: 0,
        node_port: 0,
        new_flows_table_length: NEW_FLOWS_TABLE_LENGTH,
        src_ip_sticky,
        is_del,
    }
}

/// The `lb_add_del_as_v2` that adds or deletes an AS.
pub fn as_request(
    vip: &VipKey,
    address: IpAddr,
    weight: u8,
    is_del: bool,
    is_flush: bool,
) -> LbAddDelAsV2 {
    let (pfx, protocol, port) = wire_key(vip);
    LbAddDelAsV2 {
        pfx,
        protocol,
        port,
        as_address: address,
        weight,
        is_del,
        is_flush,
    }
}

/// The `lb_as_set_weight` that sets an AS's weight.
pub fn weight_request(vip: &VipKey, address: IpAddr, weight: u8, is_flush: bool) -> LbAsSetWeight {
    let (pfx, protocol, port) = wire_key(vip);
    LbAsSetWeight {
        pfx,
        protocol,
        port,
        as_address: address,
        weight,
        is_flush,
    }
}

/// The request one planner op sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpRequest {
    /// `lb_add_del_vip_v2` (create or delete).
    Vip(LbAddDelVipV2),
    /// `lb_add_del_as_v2` (add or delete).
    As(LbAddDelAsV2),
    /// `lb_as_set_weight`.
    Weight(LbAsSetWeight),
}

/// The request of one planner op, or the refusal to send it (a VIP with
/// an encap maglev never creates).
pub fn op_request(op: &Op) -> Result<OpRequest, LbError> {
    Ok(match *op {
        Op::CreateVip {
            key,
            encap,
            table_len,
            src_ip_sticky,
        } => {
            check_encap(&key, encap)?;
            OpRequest::Vip(LbAddDelVipV2 {
                new_flows_table_length: table_len,
                ..vip_request(&key, encap, src_ip_sticky, false)
            })
        }
        Op::DeleteVip { key } => OpRequest::Vip(vip_request(&key, Encap::Gre4, false, true)),
        Op::AddAs {
            vip,
            address,
            weight,
        } => OpRequest::As(as_request(&vip, address, weight, false, false)),
        Op::DeleteAs {
            vip,
            address,
            flush,
        } => OpRequest::As(as_request(&vip, address, 0, true, flush)),
        Op::SetWeight {
            vip,
            address,
            weight,
            flush,
        } => OpRequest::Weight(weight_request(&vip, address, weight, flush)),
    })
}

/// The `lb_conf` a config asks for: its source addresses, and
/// [`LB_CONF_KEEP`] for each absent value ("leave VPP's value").
pub fn lb_conf_for(config: &LbConfig) -> LbConf {
    LbConf {
        ip4_src_address: config.ipv4_src_address,
        ip6_src_address: config.ipv6_src_address,
        sticky_buckets_per_core: config.sticky_buckets_per_core.unwrap_or(LB_CONF_KEEP),
        // Validation keeps it below u32::MAX seconds; saturating is only a guard.
        flow_timeout: config.flow_timeout.map_or(LB_CONF_KEEP, |d| {
            u32::try_from(d.as_secs()).unwrap_or(LB_CONF_KEEP - 1)
        }),
    }
}

/// The `lb_conf` to send to turn `current` (from `lb_conf_get`) into
/// `want`, or `None` when they already agree once `want`'s
/// [`LB_CONF_KEEP`] values are read as `current`'s. The request sent keeps
/// `want`'s `~0`s, so VPP keeps its values even if they moved meanwhile.
pub fn lb_conf_update(current: &LbConf, want: &LbConf) -> Option<LbConf> {
    let keep = |want: u32, current: u32| if want == LB_CONF_KEEP { current } else { want };
    let effective = LbConf {
        sticky_buckets_per_core: keep(
            want.sticky_buckets_per_core,
            current.sticky_buckets_per_core,
        ),
        flow_timeout: keep(want.flow_timeout, current.flow_timeout),
        ..*want
    };
    (effective != *current).then_some(*want)
}

/// A planner op in flight.
#[derive(Debug)]
#[must_use = "an op's reply must be awaited to see its result"]
pub enum PendingOp {
    /// `lb_add_del_vip_v2`.
    Vip(PendingReply<LbAddDelVipV2Reply>),
    /// `lb_add_del_as_v2`.
    As(PendingReply<LbAddDelAsV2Reply>),
    /// `lb_as_set_weight`.
    Weight(PendingReply<LbAsSetWeightReply>),
}

impl PendingOp {
    /// Waits for VPP's answer.
    pub async fn wait(self) -> Result<(), Error> {
        match self {
            PendingOp::Vip(p) => p.wait().await.map(drop),
            PendingOp::As(p) => p.wait().await.map(drop),
            PendingOp::Weight(p) => p.wait().await.map(drop),
        }
    }
}

impl Client {
    /// VPP's version string (`show_version`).
    pub async fn vpp_version(&self) -> Result<String, Error> {
        Ok(self.call(&ShowVersion).await?.version)
    }

    /// Runs one CLI command and returns its output.
    pub async fn cli(&self, cmd: &str) -> Result<String, Error> {
        let r = self
            .call(&CliInband {
                cmd: cmd.to_owned(),
            })
            .await?;
        Ok(r.reply)
    }

    /// The LB plugin's global parameters.
    pub async fn lb_conf_get(&self) -> Result<LbConf, Error> {
        Ok(self.call(&LbConfGet).await?.conf)
    }

    /// Sets the global parameters only if they differ from `want`
    /// (changing `sticky_buckets_per_core` drops every sticky flow); a
    /// [`LB_CONF_KEEP`] field of `want` matches whatever VPP holds (see
    /// [`lb_conf_update`]). Returns whether it sent `lb_conf`.
    pub async fn ensure_lb_conf(&self, want: &LbConf) -> Result<bool, Error> {
        let current = self.lb_conf_get().await?;
        let Some(update) = lb_conf_update(&current, want) else {
            return Ok(false);
        };
        self.call(&update).await?;
        Ok(true)
    }

    /// Live VIPs with their encap, stickiness and pool index: `lb_vip_dump`
    /// and `show lb vips verbose`, pipelined.
    pub async fn lb_vips(&self) -> Result<Vec<VipInfo>, Error> {
        let dump = self.start_dump(&LbVipDump::default())?;
        let text = self.start(&CliInband {
            cmd: SHOW_LB_VIPS_VERBOSE.to_owned(),
        })?;
        let details = dump.wait().await?;
        let text = text.wait().await?.reply;
        join_vips(&details, &text)
    }

    /// Live ASes of live VIPs: the all-VIP `lb_as_v2_dump` (the only one
    /// that works for IPv4 VIPs), without removed ASes.
    pub async fn lb_ases(&self) -> Result<Vec<AsInfo>, Error> {
        Ok(self.lb_snapshot().await?.ases)
    }

    /// VIPs and ASes, with the three requests pipelined.
    pub async fn lb_snapshot(&self) -> Result<LbSnapshot, Error> {
        let vip_dump = self.start_dump(&LbVipDump::default())?;
        let text = self.start(&CliInband {
            cmd: SHOW_LB_VIPS_VERBOSE.to_owned(),
        })?;
        let as_dump = self.start_dump(&LbAsV2Dump::default())?;
        let vip_details = vip_dump.wait().await?;
        let text = text.wait().await?.reply;
        let as_details = as_dump.wait().await?;
        snapshot_from(&vip_details, &text, &as_details)
    }

    /// The planner's view of VPP.
    pub async fn observe(&self) -> Result<ObservedState, Error> {
        Ok(self.lb_snapshot().await?.observed())
    }

    /// Sends the request of one planner op (a VIP with an encap maglev
    /// never creates is refused without sending anything).
    pub fn start_op(&self, op: &Op) -> Result<PendingOp, LbError> {
        Ok(match op_request(op)? {
            OpRequest::Vip(r) => PendingOp::Vip(self.start(&r)?),
            OpRequest::As(r) => PendingOp::As(self.start(&r)?),
            OpRequest::Weight(r) => PendingOp::Weight(self.start(&r)?),
        })
    }

    /// Creates a VIP (new-flow table of [`DEFAULT_TABLE_LEN`]); an encap
    /// other than GRE4/GRE6 is refused without sending anything.
    pub async fn add_vip(
        &self,
        key: &VipKey,
        encap: Encap,
        src_ip_sticky: bool,
    ) -> Result<(), LbError> {
        check_encap(key, encap)?;
        self.call(&vip_request(key, encap, src_ip_sticky, false))
            .await?;
        Ok(())
    }
    /// Deletes a VIP (VPP removes its ASes without flushing).
    pub async fn del_vip(&self, key: &VipKey) -> Result<(), Error> {
        self.call(&vip_request(key, Encap::Gre4, false, true))
            .await
            .map(drop)
    }

    /// Adds an AS with a weight.
    pub async fn add_as(&self, vip: &VipKey, address: IpAddr, weight: u8) -> Result<(), Error> {
        self.call(&as_request(vip, address, weight, false, false))
            .await
            .map(drop)
    }

    /// Deletes an AS, flushing its flows if asked.
    pub async fn del_as(&self, vip: &VipKey, address: IpAddr, flush: bool) -> Result<(), Error> {
        self.call(&as_request(vip, address, 0, true, flush))
            .await
            .map(drop)
    }

    /// Sets an AS's weight, flushing its flows if asked.
    pub async fn set_weight(
        &self,
        vip: &VipKey,
        address: IpAddr,
        weight: u8,
        flush: bool,
    ) -> Result<(), Error> {
        self.call(&weight_request(vip, address, weight, flush))
            .await
            .map(drop)
    }

    /// Flushes a VIP's sticky flows. VPP answers 0 even for an unknown VIP
    /// (and then flushes a random one), so callers check it exists first.
    pub async fn flush_vip(&self, key: &VipKey) -> Result<(), Error> {
        let (pfx, protocol, port) = wire_key(key);
        self.call(&LbFlushVip {
            pfx,
            protocol,
            port,
        })
        .await
        .map(drop)
    }

    /// The stats index of the route to `prefix` in table 0 (exact match):
    /// the row of `/net/route/to` counting packets to a VIP.
    pub async fn route_stats_index(&self, prefix: Prefix) -> Result<u32, Error> {
        let r = self
            .call(&IpRouteLookup {
                table_id: 0,
                exact: 1,
                prefix,
            })
            .await?;
        Ok(r.route.stats_index)
    }

    /// Where each VIP of `snapshot` keeps its counters in the stats
    /// segment: its pool index, and its prefix's route stats index
    /// ([`route_stats_index`](Self::route_stats_index), one lookup per
    /// prefix). This is the mapping a
    /// [`VipScrape`](crate::stats::VipScrape) reads by:
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use maglev_vpp::Client;
    /// use maglev_vpp::stats::{StatSegment, VipScrape};
    ///
    /// let vpp = Client::connect("/run/vpp/api.sock").await?;
    /// let snapshot = vpp.lb_snapshot().await?;
    /// let mut scrape = VipScrape::new(vpp.vip_stats_indexes(&snapshot).await?);
    /// let segment = StatSegment::connect("/run/vpp/stats.sock")?;
    /// for (vip, stats) in scrape.run(&segment)?.vips() {
    ///     println!("{vip}: {} first packets", stats.lb.first_packet);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// The indexes are only valid with the snapshot they came from (VPP
    /// reuses them): take them again with every new snapshot. A prefix
    /// VPP has no route for (a non-zero retval) gets `route_stats_index:
    /// None`; any other failure is an error.
    pub async fn vip_stats_indexes(
        &self,
        snapshot: &LbSnapshot,
    ) -> Result<Vec<(VipKey, VipStatsIndex)>, Error> {
        let mut routes: BTreeMap<Prefix, Option<u32>> = BTreeMap::new();
        let mut out = Vec::with_capacity(snapshot.vips.len());
        for vip in &snapshot.vips {
            let prefix = wire_key(&vip.key).0;
            let route_stats_index = match routes.get(&prefix) {
                Some(&known) => known,
                None => {
                    let found = match self.route_stats_index(prefix).await {
                        Ok(index) => Some(index),
                        Err(Error::Retval { .. }) => None,
                        Err(e) => return Err(e),
                    };
                    routes.insert(prefix, found);
                    found
                }
            };
            out.push((
                vip.key,
                VipStatsIndex {
                    pool_index: vip.pool_index,
                    route_stats_index,
                },
            ));
        }
        Ok(out)
    }
}

/// VPP silently turns an IPv6 VIP with a non-GRE encap into GRE6 and
/// rejects family mismatches: refuse anything but GRE here (VPP-WIRE C.3).
fn check_encap(key: &VipKey, encap: Encap) -> Result<(), LbError> {
    match encap {
        Encap::Gre4 | Encap::Gre6 => Ok(()),
        Encap::Other(_) => Err(LbError::UnsupportedEncap { key: *key, encap }),
    }
}

/// Builds a snapshot from the replies of `lb_vip_dump`, `show lb vips
/// verbose` and the all-VIP `lb_as_v2_dump`.
pub fn snapshot_from(
    vip_details: &[LbVipDetails],
    text: &str,
    as_details: &[LbAsV2Details],
) -> Result<LbSnapshot, Error> {
    let mut vips = join_vips(vip_details, text)?;
    vips.sort_by_key(|v| v.key);
    let ases = live_ases(&vips, as_details);
    Ok(LbSnapshot { vips, ases })
}

/// Joins `lb_vip_dump` (keys, encap) with the CLI text (index, stickiness).
fn join_vips(details: &[LbVipDetails], text: &str) -> Result<Vec<VipInfo>, Error> {
    let blocks = vips_text::parse(text)?;
    let live: BTreeMap<VipKey, &vips_text::VipText> = blocks
        .iter()
        .filter(|b| !b.removed)
        .map(|b| (b.key(), b))
        .collect();
    details
        .iter()
        .map(|d| {
            let key = key_of(&d.vip);
            let block = live.get(&key).ok_or(Error::Inconsistent { vip: key })?;
            Ok(VipInfo {
                key,
                encap: Encap::from(LbEncapType(d.encap.0)),
                src_ip_sticky: block.src_ip_sticky,
                pool_index: block.index,
                table_len: block.new_size,
                counters: block.counters,
            })
        })
        .collect()
}

/// Keeps the used ASes of live VIPs, in VIP then address order.
fn live_ases(vips: &[VipInfo], details: &[LbAsV2Details]) -> Vec<AsInfo> {
    let live: std::collections::BTreeSet<VipKey> = vips.iter().map(|v| v.key).collect();
    let mut ases: Vec<AsInfo> = details
        .iter()
        .filter(|d| d.flags & LB_AS_FLAGS_USED != 0)
        .map(|d| AsInfo {
            vip: key_of(&d.vip),
            address: d.app_srv,
            weight: d.weight,
            num_buckets: d.num_buckets,
        })
        .filter(|a| live.contains(&a.vip))
        .collect();
    ases.sort_by_key(|a| (a.vip, a.address));
    ases
}
