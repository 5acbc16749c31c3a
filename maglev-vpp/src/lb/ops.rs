//! Typed LB operations over the [`Client`].
//!
//! Each call sends the message VPP-WIRE C.3 prescribes, with the defaults
//! VPP does not apply itself filled in (`new_flows_table_length` 1024,
//! protocol 255 for all-port VIPs), and turns a non-zero retval into
//! [`Error::Retval`] naming the message.

use std::collections::BTreeMap;
use std::net::IpAddr;

use maglev_core::dataplane::{ANY_PROTOCOL, Encap, ObservedState, ObservedVip, VipKey};
use maglev_core::plan::Op;

use crate::api::client::{Client, PendingReply};
use crate::api::error::{Error, Retval};
use crate::api::messages::{
    CliInband, IpRouteLookup, LB_AS_FLAGS_USED, LbAddDelAsV2, LbAddDelAsV2Reply, LbAddDelVipV2,
    LbAddDelVipV2Reply, LbAsSetWeight, LbAsSetWeightReply, LbAsV2Details, LbAsV2Dump, LbConf,
    LbConfGet, LbFlushVip, LbVipDetails, LbVipDump, ShowVersion,
};
use crate::api::types::{LbEncapType, LbSrvType, LbVip, Prefix};
use crate::lb::vips_text::{self, VipCounters};

/// The new-flow table length of every VIP maglev creates.
pub const NEW_FLOWS_TABLE_LENGTH: u32 = 1024;

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
    /// Its new-flow table length (truncated to 16 bits by VPP).
    pub flow_table_length: u16,
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

/// The `lb_add_del_vip_v2` that creates (or, with `is_del`, deletes) a VIP.
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
    /// (changing `sticky_buckets_per_core` drops every sticky flow).
    /// Returns whether it changed anything.
    pub async fn ensure_lb_conf(&self, want: &LbConf) -> Result<bool, Error> {
        let current = self.lb_conf_get().await?;
        if current == *want {
            return Ok(false);
        }
        self.call(want).await?;
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

    /// Sends the request of one planner op.
    pub fn start_op(&self, op: &Op) -> Result<PendingOp, Error> {
        Ok(match *op {
            Op::CreateVip {
                key,
                encap,
                src_ip_sticky,
            } => PendingOp::Vip(self.start(&vip_request(&key, encap, src_ip_sticky, false))?),
            Op::DeleteVip { key } => {
                PendingOp::Vip(self.start(&vip_request(&key, Encap::Gre4, false, true))?)
            }
            Op::AddAs {
                vip,
                address,
                weight,
            } => PendingOp::As(self.start(&as_request(&vip, address, weight, false, false))?),
            Op::DeleteAs {
                vip,
                address,
                flush,
            } => PendingOp::As(self.start(&as_request(&vip, address, 0, true, flush))?),
            Op::SetWeight {
                vip,
                address,
                weight,
                flush,
            } => PendingOp::Weight(self.start(&weight_request(&vip, address, weight, flush))?),
        })
    }

    /// Creates a VIP (new-flow table of 1024).
    pub async fn add_vip(
        &self,
        key: &VipKey,
        encap: Encap,
        src_ip_sticky: bool,
    ) -> Result<(), Error> {
        check_encap(key, encap)?;
        self.call(&vip_request(key, encap, src_ip_sticky, false))
            .await
            .map(drop)
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
}

/// VPP silently turns an IPv6 VIP with a non-GRE encap into GRE6 and
/// rejects family mismatches: refuse anything but GRE here (VPP-WIRE C.3).
fn check_encap(key: &VipKey, encap: Encap) -> Result<(), Error> {
    match encap {
        Encap::Gre4 | Encap::Gre6 => Ok(()),
        Encap::Other(_) => {
            let _ = key;
            Err(Error::Retval {
                message: "lb_add_del_vip_v2",
                retval: Retval::INVALID_ARGUMENT,
            })
        }
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
                flow_table_length: d.flow_table_length,
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
