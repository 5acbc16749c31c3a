//! Building the desired dataplane from the config, the backends'
//! conditions and each frontend's active pool (SPEC §5.3): one VIP per
//! frontend, encap from the backends' family, every backend of every pool
//! as an AS with its effective weight and flush rule.
//!
//! The active pool is an input, chosen by the caller with
//! [`choose_pool`](crate::weights::choose_pool) from the previous choice:
//! this module keeps no history.

use crate::config::{Config, Frontend};
use crate::dataplane::{DesiredAs, DesiredState, DesiredVip, Encap};
use crate::weights::{Effective, Serving, choose_pool, effective};

/// One pool member's configured and effective weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberWeight<'a> {
    /// Index of the pool in the frontend's priority order.
    pub pool: usize,
    /// The backend's name.
    pub backend: &'a str,
    /// The configured weight.
    pub configured: u8,
    /// The weight and flush rule sent to VPP.
    pub effective: Effective,
}

/// Every member of every pool of `frontend` with its effective weight when
/// pool `active` is the active one, in pool order and then by backend name.
pub fn member_weights<'a, F>(
    frontend: &'a Frontend,
    serving_of: F,
    active: Option<usize>,
) -> Vec<MemberWeight<'a>>
where
    F: Fn(&str) -> Serving,
{
    frontend
        .pools
        .iter()
        .enumerate()
        .flat_map(|(i, pool)| {
            let serving_of = &serving_of;
            pool.backends.iter().map(move |(name, m)| MemberWeight {
                pool: i,
                backend: name,
                configured: m.weight,
                effective: effective(
                    serving_of(name),
                    m.weight,
                    Some(i) == active,
                    frontend.flush_on_down,
                ),
            })
        })
        .collect()
}

/// The desired VIP of one frontend of `config` with pool `active` active,
/// or `None` if no such frontend exists.
pub fn desired_frontend<F>(
    config: &Config,
    frontend: &str,
    serving_of: F,
    active: Option<usize>,
) -> Option<DesiredVip>
where
    F: Fn(&str) -> Serving,
{
    let fe = config.frontend(frontend)?;
    let mut encap = None;
    let mut ases = std::collections::BTreeMap::new();
    for m in member_weights(fe, &serving_of, active) {
        // Validation guarantees every member names a backend.
        let Some(backend) = config.backend(m.backend) else {
            continue;
        };
        encap.get_or_insert(Encap::for_backend(backend.address));
        ases.insert(
            backend.address,
            DesiredAs {
                weight: m.effective.weight,
                flush: m.effective.flush,
            },
        );
    }
    Some(DesiredVip {
        key: fe.vip_key(),
        encap: encap.unwrap_or(Encap::for_backend(fe.address)),
        table_len: fe.table_len(),
        src_ip_sticky: fe.src_ip_sticky,
        ases,
    })
}

/// The desired VIPs of every frontend of `config`, by key, each frontend's
/// pool chosen from its `previous` choice.
pub fn desired_all<F, P>(config: &Config, serving_of: F, previous: P) -> DesiredState
where
    F: Fn(&str) -> Serving,
    P: Fn(&str) -> Option<usize>,
{
    config
        .frontends()
        .iter()
        .filter_map(|(name, fe)| {
            let active = choose_pool(fe, &serving_of, previous(name));
            desired_frontend(config, name, &serving_of, active)
        })
        .map(|vip| (vip.key, vip))
        .collect()
}
