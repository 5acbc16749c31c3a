//! The LB plugin as VPP 26.10 behaves, as plain data (no I/O, no clock:
//! the server passes `now` in seconds).
//!
//! Modelled: VIP pool indexes (0 is a placeholder; freed slots are reused
//! most-recently-freed first), lazy VIP and AS deletion with garbage
//! collection (an AS is freed 10 s after removal, a VIP once it has no AS
//! left; a VIP is collected at most every 60 s, VPP-WIRE C.1), encap rules
//! and the retvals of VPP-WIRE C.2/C.3, the Maglev new-flow table of
//! [`maglev_core::maglev`], FIB routes with stats indexes for
//! `ip_route_lookup`, and the text of `show lb vips verbose`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maglev_core::dataplane::{
    ANY_PROTOCOL, ObservedState, ObservedVip, PrefixConflict, VipKey, check_new_vip,
};
use maglev_core::maglev::{MaglevTable, ip46};

use crate::api::error::Retval;
use crate::api::messages::{
    LB_AS_FLAGS_USED, LbAddDelAsV2, LbAddDelVipV2, LbAsSetWeight, LbAsV2Details, LbAsV2Dump,
    LbConf, LbVipDetails,
};
use crate::api::types::{FibPath, IpRoute, LbEncapType, LbSrvType, LbVip, Prefix};
use crate::lb::ops::LB_CONF_KEEP;
use crate::lb::vips_text::VipCounters;

/// Seconds a removed AS waits before it can be freed (`LB_CONCURRENCY_TIMEOUT`).
pub const AS_FREE_DELAY: u32 = 10;
/// Seconds between two garbage collections of one VIP (`LB_GARBAGE_RUN`).
pub const GC_INTERVAL: u32 = 60;
/// The first free load-balance index of a fresh VPP: the stats index of the
/// first route created (the statseg fixture's first VIP route got 8). VIP
/// prefix routes and the host routes VPP adds to track each AS address
/// take indexes from the same pool.
pub const FIRST_ROUTE_STATS_INDEX: u32 = 8;

/// Something the stats side may want to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelEvent {
    /// A VIP got a pool index; its prefix route counts in row
    /// `route_stats_index` of `/net/route/to`.
    VipAdded {
        /// The VIP's pool index (the column of its LB counters).
        pool_index: u32,
        /// The stats index of its prefix's route.
        route_stats_index: u32,
    },
    /// A VIP was deleted (its slot stays until garbage collection).
    VipRemoved {
        /// The VIP's pool index.
        pool_index: u32,
    },
    /// A VIP's ASes changed: `serving` says whether any live AS has a
    /// weight above 0 (else its packets count as "no server configured").
    VipServing {
        /// The VIP's pool index.
        pool_index: u32,
        /// Whether new flows find an AS.
        serving: bool,
    },
}

/// One AS of one VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAs {
    /// Its address.
    pub address: IpAddr,
    /// Its weight.
    pub weight: u8,
    /// Not removed.
    pub used: bool,
    /// When it was removed (model seconds).
    pub last_used: u32,
    /// The DPO index shown by the CLI.
    pub dpo: u32,
}

/// One VIP pool slot.
#[derive(Debug, Clone, PartialEq)]
pub struct SimVip {
    /// The key (protocol 255 for all-port VIPs, prefix normalised).
    pub key: VipKey,
    /// The encap as requested.
    pub encap: LbEncapType,
    /// The internal VIP type (`ip4-gre4` ...).
    pub vip_type: &'static str,
    /// `src_ip_sticky`.
    pub src_ip_sticky: bool,
    /// New-flow table length.
    pub new_flows_table_length: u32,
    /// Not deleted.
    pub used: bool,
    /// The AS pool of this VIP (None: freed slot).
    pub ases: Vec<Option<SimAs>>,
    /// The four LB counters (settable by tests and the stats simulator).
    pub counters: VipCounters,
    /// The new-flow table.
    pub table: MaglevTable,
    last_gc: u32,
}

impl SimVip {
    fn rebuild(&mut self) {
        let live = self
            .ases
            .iter()
            .flatten()
            .filter(|a| a.used)
            .map(|a| (a.address, a.weight));
        self.table = MaglevTable::build(live, self.new_flows_table_length as usize)
            .unwrap_or_else(|_| MaglevTable::build([], 1).expect("1 is a power of two"));
    }

    /// Whether any live AS has a weight above 0.
    fn serving(&self) -> bool {
        self.ases.iter().flatten().any(|a| a.used && a.weight > 0)
    }

    fn find_as(&self, address: IpAddr) -> Option<usize> {
        self.ases
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.address == address))
    }

    /// Buckets of the new-flow table pointing at `address`.
    pub fn buckets_of(&self, address: IpAddr) -> u32 {
        self.table
            .buckets()
            .iter()
            .filter(|b| **b == Some(address))
            .count() as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    stats_index: u32,
    refs: u32,
}

/// The LB plugin's state.
#[derive(Debug, Clone)]
pub struct LbModel {
    /// Global parameters.
    pub conf: LbConf,
    vips: Vec<Option<SimVip>>,
    free_vips: Vec<u32>,
    routes: BTreeMap<Prefix, Route>,
    free_routes: Vec<u32>,
    next_route: u32,
    next_dpo: u32,
    events: Vec<ModelEvent>,
    flushes: Vec<(VipKey, IpAddr)>,
    sticky_resets: u64,
}

impl Default for LbModel {
    fn default() -> Self {
        LbModel::new()
    }
}

impl LbModel {
    /// A fresh plugin: VPP's initial conf, only the placeholder VIP 0.
    pub fn new() -> LbModel {
        LbModel {
            conf: LbConf {
                ip4_src_address: Ipv4Addr::BROADCAST,
                ip6_src_address: Ipv6Addr::from([0xff; 16]),
                sticky_buckets_per_core: 1024,
                flow_timeout: 40,
            },
            vips: vec![None],
            flushes: Vec::new(),
            free_vips: Vec::new(),
            routes: BTreeMap::new(),
            free_routes: Vec::new(),
            next_route: FIRST_ROUTE_STATS_INDEX,
            next_dpo: 9,
            events: Vec::new(),
            sticky_resets: 0,
        }
    }

    /// How often `lb_conf` changed `sticky_buckets_per_core`: each time
    /// every worker of VPP drops its sticky table at its next packet
    /// (node.c `lb_get_sticky_table`), so every established flow may move.
    pub fn sticky_resets(&self) -> u64 {
        self.sticky_resets
    }

    /// Takes the events produced since the last call.
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        std::mem::take(&mut self.events)
    }

    /// Every VIP slot with its pool index (placeholder 0 excluded; removed
    /// VIPs awaiting collection included).
    pub fn vips(&self) -> impl Iterator<Item = (u32, &SimVip)> {
        self.vips
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }

    /// What the model holds as the planner reads VPP: every live VIP with
    /// its live ASes and their weights (what a dump would return).
    pub fn observed(&self) -> ObservedState {
        self.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| {
                let vip = ObservedVip {
                    key: v.key,
                    encap: v.encap.into(),
                    table_len: v.new_flows_table_length,
                    src_ip_sticky: v.src_ip_sticky,
                    ases: v
                        .ases
                        .iter()
                        .flatten()
                        .filter(|a| a.used)
                        .map(|a| (a.address, a.weight))
                        .collect(),
                };
                (v.key, vip)
            })
            .collect()
    }

    /// The live VIP with `key`, mutably (e.g. to set its counters).
    pub fn vip_mut(&mut self, key: &VipKey) -> Option<&mut SimVip> {
        let i = self.find_vip(key)?;
        self.vips[i].as_mut()
    }

    /// The pool index of the live VIP with `key`.
    pub fn pool_index(&self, key: &VipKey) -> Option<u32> {
        self.find_vip(key).map(|i| i as u32)
    }

    /// The stats index of the route of a live prefix.
    pub fn route_stats_index(&self, prefix: Prefix) -> Option<u32> {
        self.routes.get(&normalise(prefix)).map(|r| r.stats_index)
    }

    /// Takes a reference on the route of `prefix`, creating it (with a new
    /// load-balance index) if needed; returns its stats index.
    fn route_ref(&mut self, prefix: Prefix) -> u32 {
        if let Some(r) = self.routes.get_mut(&prefix) {
            r.refs += 1;
            return r.stats_index;
        }
        let stats_index = self.free_routes.pop().unwrap_or_else(|| {
            self.next_route += 1;
            self.next_route - 1
        });
        self.routes.insert(
            prefix,
            Route {
                stats_index,
                refs: 1,
            },
        );
        stats_index
    }

    fn route_unref(&mut self, prefix: Prefix) {
        if let Some(r) = self.routes.get_mut(&prefix) {
            r.refs -= 1;
            if r.refs == 0 {
                self.free_routes.push(r.stats_index);
                self.routes.remove(&prefix);
            }
        }
    }

    fn find_vip(&self, key: &VipKey) -> Option<usize> {
        self.vips
            .iter()
            .position(|v| v.as_ref().is_some_and(|v| v.used && v.key == *key))
    }

    /// `lb_conf`, as `vl_api_lb_conf_t_handler` and `lb_conf` do: `~0`
    /// ([`LB_CONF_KEEP`]) in `sticky_buckets_per_core` or `flow_timeout`
    /// keeps the current value; a bucket count that is not a power of two
    /// (0 counts as one, as VPP's `is_pow2`) is -70; both addresses are
    /// always set.
    pub fn set_conf(&mut self, conf: LbConf) -> i32 {
        let keep = |want: u32, current: u32| if want == LB_CONF_KEEP { current } else { want };
        let sticky = keep(
            conf.sticky_buckets_per_core,
            self.conf.sticky_buckets_per_core,
        );
        if sticky & sticky.wrapping_sub(1) != 0 {
            return Retval::INVALID_MEMORY_SIZE.0;
        }
        // VPP takes the new size with VIPs present; its workers then
        // regenerate their sticky tables, empty.
        if sticky != self.conf.sticky_buckets_per_core {
            self.sticky_resets += 1;
        }
        self.conf = LbConf {
            sticky_buckets_per_core: sticky,
            flow_timeout: keep(conf.flow_timeout, self.conf.flow_timeout),
            ..conf
        };
        0
    }

    /// `lb_add_del_vip_v2`.
    pub fn add_del_vip(&mut self, m: &LbAddDelVipV2, now: u32) -> i32 {
        let Some(key) = wire_key(m.pfx, m.protocol, m.port) else {
            return Retval::INVALID_ARGUMENT.0;
        };
        if m.is_del {
            return self.del_vip(&key);
        }
        let vip_type = vip_type(key.address, m.encap);
        // VPP checks the prefix rules first, with the type it derived: type 0
        // (ip6-gre6) for a family and encap that have none.
        let live = self
            .vips
            .iter()
            .flatten()
            .filter(|v| v.used)
            .map(|v| (v.key, v.vip_type));
        match check_new_vip(key, vip_type.unwrap_or("ip6-gre6"), live) {
            Ok(()) => {}
            Err(PrefixConflict::MixedEncap { .. }) => return Retval::INVALID_ARGUMENT.0,
            Err(_) => return Retval::VALUE_EXIST.0,
        }
        let len = m.new_flows_table_length;
        // VPP accepts 0 (and then allocates 2^32 buckets); the simulator refuses it.
        if len == 0 || !len.is_power_of_two() || len > 1 << 20 {
            return Retval::INVALID_MEMORY_SIZE.0;
        }
        let Some(vip_type) = vip_type else {
            return Retval::INVALID_ADDRESS_FAMILY.0;
        };
        let mut vip = SimVip {
            key,
            encap: m.encap,
            vip_type,
            src_ip_sticky: m.src_ip_sticky,
            new_flows_table_length: len,
            used: true,
            ases: Vec::new(),
            counters: VipCounters::default(),
            table: MaglevTable::build([], 1).expect("1 is a power of two"),
            last_gc: now,
        };
        vip.rebuild();
        let index = match self.free_vips.pop() {
            Some(i) => {
                self.vips[i as usize] = Some(vip);
                i
            }
            None => {
                self.vips.push(Some(vip));
                (self.vips.len() - 1) as u32
            }
        };
        let prefix = Prefix {
            address: key.address,
            len: key.prefix_len,
        };
        let route_stats_index = self.route_ref(prefix);
        self.events.push(ModelEvent::VipAdded {
            pool_index: index,
            route_stats_index,
        });
        0
    }

    fn del_vip(&mut self, key: &VipKey) -> i32 {
        let Some(i) = self.find_vip(key) else {
            return Retval::NO_SUCH_ENTRY.0;
        };
        let vip = self.vips[i].as_mut().expect("found");
        vip.used = false;
        for a in vip.ases.iter_mut().flatten() {
            a.used = false;
        }
        vip.rebuild();
        self.route_unref(Prefix {
            address: key.address,
            len: key.prefix_len,
        });
        self.events.push(ModelEvent::VipRemoved {
            pool_index: i as u32,
        });
        0
    }

    /// `lb_add_del_as_v2` (`weight` used on add).
    pub fn add_del_as(&mut self, m: &LbAddDelAsV2, now: u32) -> i32 {
        let Some(key) = wire_key(m.pfx, m.protocol, m.port) else {
            return Retval::NO_SUCH_ENTRY.0;
        };
        let Some(i) = self.find_vip(&key) else {
            return Retval::NO_SUCH_ENTRY.0;
        };
        self.gc_vip(i, now, false);
        let dpo = self.next_dpo;
        let vip = self.vips[i].as_mut().expect("found");
        let existing = vip.find_as(m.as_address);
        let mut new_host_route = false;
        match (m.is_del, existing) {
            (true, None) => return Retval::NO_SUCH_ENTRY.0,
            (true, Some(j)) => {
                let a = vip.ases[j].as_mut().expect("found");
                if a.used {
                    a.used = false;
                    a.last_used = now;
                }
                if m.is_flush {
                    self.flushes.push((key, m.as_address));
                }
            }
            (false, Some(j)) => {
                let a = vip.ases[j].as_mut().expect("found");
                if a.used {
                    return Retval::VALUE_EXIST.0;
                }
                a.used = true;
                a.weight = m.weight;
            }
            (false, None) => {
                let v4_encap = matches!(
                    vip.encap,
                    LbEncapType::GRE4 | LbEncapType::L3DSR | LbEncapType::NAT4
                );
                if m.as_address.is_ipv4() != v4_encap {
                    return Retval::INVALID_ADDRESS_FAMILY.0;
                }
                let a = SimAs {
                    address: m.as_address,
                    weight: m.weight,
                    used: true,
                    last_used: now,
                    dpo,
                };
                match vip.ases.iter().position(Option::is_none) {
                    Some(free) => vip.ases[free] = Some(a),
                    None => vip.ases.push(Some(a)),
                }
                new_host_route = true;
            }
        }
        vip.rebuild();
        let serving = vip.serving();
        self.events.push(ModelEvent::VipServing {
            pool_index: i as u32,
            serving,
        });
        if new_host_route {
            self.next_dpo += 1;
            let len = if m.as_address.is_ipv4() { 32 } else { 128 };
            self.route_ref(Prefix {
                address: m.as_address,
                len,
            });
        }
        0
    }

    /// Every flush VPP carried out (`is_flush` on a weight change or an AS
    /// delete that succeeded), oldest first: what tests check flushes by.
    pub fn flushes(&self) -> &[(VipKey, IpAddr)] {
        &self.flushes
    }

    /// `lb_as_set_weight`.
    pub fn set_weight(&mut self, m: &LbAsSetWeight) -> i32 {
        let Some(key) = wire_key(m.pfx, m.protocol, m.port) else {
            return Retval::NO_SUCH_ENTRY.0;
        };
        let Some(i) = self.find_vip(&key) else {
            return Retval::NO_SUCH_ENTRY.0;
        };
        let vip = self.vips[i].as_mut().expect("found");
        let Some(j) = vip.find_as(m.as_address) else {
            return Retval::NO_SUCH_ENTRY.0;
        };
        let a = vip.ases[j].as_mut().expect("found");
        if !a.used {
            return Retval::NO_SUCH_ENTRY.0;
        }
        a.weight = m.weight;
        vip.rebuild();
        let serving = vip.serving();
        self.events.push(ModelEvent::VipServing {
            pool_index: i as u32,
            serving,
        });
        if m.is_flush {
            self.flushes.push((key, m.as_address));
        }
        0
    }

    /// `lb_vip_dump`: every live VIP, in pool order (the filter is ignored).
    pub fn vip_details(&self) -> Vec<LbVipDetails> {
        self.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| LbVipDetails {
                vip: lb_vip(&v.key),
                encap: match v.vip_type {
                    "ip4-gre4" | "ip6-gre4" => LbEncapType::GRE4,
                    "ip4-l3dsr" => LbEncapType::L3DSR,
                    "ip4-nat4" => LbEncapType::NAT4,
                    "ip6-nat6" => LbEncapType::NAT6,
                    _ => LbEncapType::GRE6,
                },
                dscp: 0,
                srv_type: LbSrvType::CLUSTERIP,
                target_port: 0,
                flow_table_length: v.new_flows_table_length as u16,
            })
            .collect()
    }

    /// `lb_as_v2_dump`: every AS of every VIP slot, removed ones included;
    /// a non-zero prefix filters as VPP does (never matching IPv4 VIPs).
    pub fn as_details(&self, filter: &LbAsV2Dump) -> Vec<LbAsV2Details> {
        let raw = match filter.pfx.address {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                b
            }
            IpAddr::V6(a) => a.octets(),
        };
        let all = raw == [0; 16];
        self.vips()
            .filter(|(_, v)| {
                all || (ip46(v.key.address) == raw
                    && filter.protocol == v.key.protocol
                    && filter.port == v.key.port)
            })
            .flat_map(|(_, v)| {
                v.ases.iter().flatten().map(move |a| LbAsV2Details {
                    vip: lb_vip(&v.key),
                    app_srv: a.address,
                    flags: if a.used { LB_AS_FLAGS_USED } else { 0 },
                    in_use_since: a.last_used,
                    weight: a.weight,
                    num_buckets: v.buckets_of(a.address),
                })
            })
            .collect()
    }

    /// `ip_route_lookup`: the route's stats index, or the retval.
    pub fn route_lookup(&self, table_id: u32, exact: bool, prefix: Prefix) -> Result<IpRoute, i32> {
        if table_id != 0 {
            return Err(Retval::NO_SUCH_FIB.0);
        }
        let p = normalise(prefix);
        let hit = if exact {
            self.routes.get_key_value(&p)
        } else {
            self.routes
                .iter()
                .filter(|(r, _)| {
                    r.address.is_ipv4() == p.address.is_ipv4()
                        && r.len <= p.len
                        && normalise(Prefix { len: r.len, ..p }) == **r
                })
                .max_by_key(|(r, _)| r.len)
        };
        let (prefix, route) = hit.ok_or(Retval::NO_SUCH_ENTRY.0)?;
        Ok(IpRoute {
            table_id,
            stats_index: route.stats_index,
            prefix: *prefix,
            paths: vec![FibPath {
                sw_if_index: u32::MAX,
                weight: 1,
                ..FibPath::default()
            }],
        })
    }

    /// Frees removed ASes (10 s after removal) and then VIPs without ASes,
    /// each VIP at most every 60 s; `force` ignores both delays.
    pub fn gc(&mut self, now: u32, force: bool) {
        for i in 1..self.vips.len() {
            self.gc_vip(i, now, force);
        }
    }

    fn gc_vip(&mut self, i: usize, now: u32, force: bool) {
        let Some(vip) = self.vips[i].as_mut() else {
            return;
        };
        if !force && now < vip.last_gc.saturating_add(GC_INTERVAL) {
            return;
        }
        vip.last_gc = now;
        for slot in &mut vip.ases {
            if slot.as_ref().is_some_and(|a| {
                !a.used && (force || now >= a.last_used.saturating_add(AS_FREE_DELAY))
            }) {
                *slot = None;
            }
        }
        if !vip.used && vip.ases.iter().all(Option::is_none) {
            self.vips[i] = None;
            self.free_vips.push(i as u32);
        }
    }

    /// The text of `show lb vips verbose`, as VPP prints it.
    pub fn show_vips_verbose(&self) -> String {
        let mut s = String::new();
        for (i, v) in self.vips() {
            let _ = write!(
                s,
                " {} [{i}] {}/{}{}{}\n  new_size:{}\n",
                v.vip_type,
                v.key.address,
                v.key.prefix_len,
                if v.src_ip_sticky {
                    " src_ip_sticky"
                } else {
                    ""
                },
                if v.used { "" } else { " removed" },
                v.new_flows_table_length
            );
            if v.key.port != 0 {
                let _ = writeln!(s, "  protocol:{} port:{}", v.key.protocol, v.key.port);
            }
            if v.vip_type == "ip4-l3dsr" {
                s.push_str("  dscp:0\n");
            } else if v.vip_type == "ip4-nat4" || v.vip_type == "ip6-nat6" {
                let _ = write!(
                    s,
                    "  type:clusterip port:{} target_port:0",
                    v.key.port.swap_bytes()
                );
            }
            let c = v.counters;
            let _ = write!(
                s,
                "  counters:\n    packet from existing sessions: {}\n    first session packet: {}\n    untracked packet: {}\n    no server configured: {}\n",
                c.existing_sessions, c.first_session, c.untracked, c.no_server
            );
            let _ = writeln!(s, "  #as:{}", v.ases.iter().flatten().count());
            for a in v.ases.iter().flatten() {
                let _ = writeln!(
                    s,
                    "    {} weight:{} buckets:{} flows:0 dpo:{} {}",
                    a.address,
                    a.weight,
                    v.buckets_of(a.address),
                    a.dpo,
                    if a.used { "used" } else { " removed" }
                );
            }
            s.push('\n');
        }
        s
    }
}

/// The key VPP stores: normalised prefix, protocol 255 for all-port VIPs.
fn wire_key(pfx: Prefix, protocol: u8, port: u16) -> Option<VipKey> {
    let max = if pfx.address.is_ipv4() { 32 } else { 128 };
    if pfx.len > max {
        return None;
    }
    let p = normalise(pfx);
    Some(VipKey {
        address: p.address,
        prefix_len: p.len,
        protocol: if port == 0 { ANY_PROTOCOL } else { protocol },
        port,
    })
}

fn normalise(p: Prefix) -> Prefix {
    let address = match p.address {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if p.len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(p.len.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if p.len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(p.len.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    };
    Prefix {
        address,
        len: p.len,
    }
}

fn lb_vip(key: &VipKey) -> LbVip {
    LbVip {
        pfx: Prefix {
            address: key.address,
            len: key.prefix_len,
        },
        protocol: key.protocol,
        port: key.port,
    }
}

/// VPP's internal VIP type for a prefix family and encap; None is -97.
fn vip_type(address: IpAddr, encap: LbEncapType) -> Option<&'static str> {
    Some(match (address.is_ipv4(), encap) {
        (true, LbEncapType::GRE4) => "ip4-gre4",
        (true, LbEncapType::GRE6) => "ip4-gre6",
        (true, LbEncapType::L3DSR) => "ip4-l3dsr",
        (true, LbEncapType::NAT4) => "ip4-nat4",
        (true, _) => return None,
        (false, LbEncapType::GRE4) => "ip6-gre4",
        (false, LbEncapType::NAT6) => "ip6-nat6",
        // Anything else silently becomes ip6-gre6, as in VPP.
        (false, _) => "ip6-gre6",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::ops::{as_request, vip_request, weight_request};
    use maglev_core::dataplane::Encap;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(a: &str, port: u16) -> VipKey {
        VipKey {
            address: ip(a),
            prefix_len: if ip(a).is_ipv4() { 32 } else { 128 },
            protocol: if port == 0 { 255 } else { 6 },
            port,
        }
    }

    #[test]
    fn pool_indexes_are_reused_lifo_after_gc() {
        let mut m = LbModel::new();
        for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
            assert_eq!(
                m.add_del_vip(&vip_request(&key(a, 80), Encap::Gre4, false, false), 0),
                0
            );
        }
        assert_eq!(m.pool_index(&key("192.0.2.3", 80)), Some(3));
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.1", 80), Encap::Gre4, false, true),
                0
            ),
            0
        );
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.2", 80), Encap::Gre4, false, true),
                0
            ),
            0
        );
        // Before GC a re-added VIP gets a new index.
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.1", 80), Encap::Gre4, false, false),
                0
            ),
            0
        );
        assert_eq!(m.pool_index(&key("192.0.2.1", 80)), Some(4));
        assert!(
            m.show_vips_verbose()
                .contains(" ip4-gre4 [1] 192.0.2.1/32 removed\n")
        );
        m.gc(100, false);
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.9", 80), Encap::Gre4, false, false),
                100
            ),
            0
        );
        assert_eq!(
            m.pool_index(&key("192.0.2.9", 80)),
            Some(2),
            "most recently freed first"
        );
    }

    #[test]
    fn retvals_like_vpp() {
        let mut m = LbModel::new();
        let k = key("192.0.2.1", 80);
        let add = vip_request(&k, Encap::Gre4, false, false);
        assert_eq!(m.add_del_vip(&add, 0), 0);
        assert_eq!(m.add_del_vip(&add, 0), -81);
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.1", 0), Encap::Gre4, false, false),
                0
            ),
            -81
        );
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.1", 443), Encap::Gre6, false, false),
                0
            ),
            -73
        );
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.5", 80), Encap::Other(4), false, false),
                0
            ),
            -97
        );
        // An IPv4 prefix with NAT6 takes VPP's type 0 (ip6-gre6): beside an
        // ip4-gre4 VIP that is -73 before the family is looked at.
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("192.0.2.1", 53), Encap::Other(4), false, false),
                0
            ),
            -73
        );
        let all6 = key("2001:db8::1", 0);
        assert_eq!(
            m.add_del_vip(&vip_request(&all6, Encap::Gre6, false, false), 0),
            0
        );
        assert_eq!(
            m.add_del_vip(
                &vip_request(&key("2001:db8::1", 80), Encap::Gre6, false, false),
                0
            ),
            -81,
            "per-port beside all-port"
        );
        assert_eq!(m.add_as_ok(&k, "2001:db8::1", 1), -97);
        assert_eq!(m.add_as_ok(&k, "10.0.0.1", 1), 0);
        assert_eq!(m.add_as_ok(&k, "10.0.0.1", 1), -81);
        assert_eq!(
            m.set_weight(&weight_request(
                &key("192.0.2.2", 80),
                ip("10.0.0.1"),
                1,
                false
            )),
            -6
        );
        assert_eq!(
            m.set_weight(&weight_request(&k, ip("10.0.0.2"), 1, false)),
            -6
        );
        assert_eq!(
            m.add_del_as(&as_request(&k, ip("10.0.0.1"), 0, true, true), 0),
            0
        );
        assert_eq!(
            m.add_del_as(&as_request(&k, ip("10.0.0.1"), 0, true, true), 0),
            0,
            "removed counts as present"
        );
        assert_eq!(
            m.set_weight(&weight_request(&k, ip("10.0.0.1"), 1, false)),
            -6,
            "removed AS"
        );
        assert_eq!(m.add_as_ok(&k, "10.0.0.1", 7), 0, "revived");
        assert_eq!(
            m.add_del_vip(&vip_request(&k, Encap::Gre4, false, true), 0),
            0
        );
        assert_eq!(
            m.add_del_vip(&vip_request(&k, Encap::Gre4, false, true), 0),
            -6
        );
    }

    #[test]
    fn buckets_and_routes() {
        let mut m = LbModel::new();
        let k = key("192.0.2.1", 80);
        m.add_del_vip(&vip_request(&k, Encap::Gre4, false, false), 0);
        m.add_del_vip(
            &vip_request(&key("192.0.2.1", 443), Encap::Gre4, false, false),
            0,
        );
        m.add_as_ok(&k, "10.1.0.2", 100);
        m.add_as_ok(&k, "10.1.0.1", 99);
        let d = m.as_details(&LbAsV2Dump::default());
        assert_eq!(
            d.iter().map(|a| a.num_buckets).collect::<Vec<_>>(),
            [514, 510]
        );
        let pfx = Prefix {
            address: ip("192.0.2.1"),
            len: 32,
        };
        let r = m.route_lookup(0, true, pfx).unwrap();
        assert_eq!(
            r.stats_index, FIRST_ROUTE_STATS_INDEX,
            "per-port VIPs share the route"
        );
        assert_eq!(m.route_lookup(0, true, Prefix { len: 31, ..pfx }), Err(-6));
        assert_eq!(
            m.route_lookup(
                0,
                false,
                Prefix {
                    address: ip("192.0.2.1"),
                    len: 32
                }
            )
            .unwrap()
            .stats_index,
            8
        );
        let host = |a: &str| Prefix {
            address: ip(a),
            len: 32,
        };
        assert_eq!(
            m.route_stats_index(host("10.1.0.2")),
            Some(9),
            "AS host routes take indexes too"
        );
        assert_eq!(m.route_stats_index(host("10.1.0.1")), Some(10));
        assert_eq!(m.route_lookup(5, true, pfx), Err(-3));
        let added: Vec<_> = m
            .take_events()
            .into_iter()
            .filter(|e| matches!(e, ModelEvent::VipAdded { .. }))
            .collect();
        assert_eq!(
            added,
            [
                ModelEvent::VipAdded {
                    pool_index: 1,
                    route_stats_index: 8
                },
                ModelEvent::VipAdded {
                    pool_index: 2,
                    route_stats_index: 8
                },
            ]
        );
    }

    #[test]
    fn serving_follows_weights() {
        let mut m = LbModel::new();
        let k = key("192.0.2.1", 80);
        assert_eq!(
            m.add_del_vip(&vip_request(&k, Encap::Gre4, false, false), 0),
            0
        );
        m.take_events();
        let serving = |m: &mut LbModel| {
            m.take_events().into_iter().find_map(|e| match e {
                ModelEvent::VipServing {
                    pool_index: 1,
                    serving,
                } => Some(serving),
                _ => None,
            })
        };
        m.add_as_ok(&k, "10.0.0.1", 0);
        assert_eq!(serving(&mut m), Some(false), "weight 0 serves nothing");
        assert_eq!(
            m.set_weight(&weight_request(&k, ip("10.0.0.1"), 5, false)),
            0
        );
        assert_eq!(serving(&mut m), Some(true));
        assert_eq!(
            m.add_del_as(&as_request(&k, ip("10.0.0.1"), 0, true, true), 0),
            0
        );
        assert_eq!(serving(&mut m), Some(false), "a deleted AS serves nothing");
    }

    impl LbModel {
        fn add_as_ok(&mut self, k: &VipKey, a: &str, w: u8) -> i32 {
            self.add_del_as(&as_request(k, ip(a), w, false, false), 0)
        }
    }
}
