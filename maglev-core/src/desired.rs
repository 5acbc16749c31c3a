//! Building the desired dataplane from the config and the backends' states
//! (SPEC §5.3): one VIP per frontend, encap from the backends' family,
//! every backend of every pool as an AS with its effective weight and flush
//! rule.

use crate::config::{Config, Frontend};
use crate::dataplane::{DesiredAs, DesiredState, DesiredVip, Encap};
use crate::state::BackendState;
use crate::weights::{Effective, active_pool, effective};

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

/// Every member of every pool of `frontend` with its effective weight, in
/// pool order and then by backend name.
pub fn member_weights<'a, F>(frontend: &'a Frontend, state_of: F) -> Vec<MemberWeight<'a>>
where
    F: Fn(&str) -> BackendState,
{
    let active = active_pool(frontend, &state_of);
    frontend
        .pools
        .iter()
        .enumerate()
        .flat_map(|(i, pool)| {
            let state_of = &state_of;
            pool.backends.iter().map(move |(name, m)| MemberWeight {
                pool: i,
                backend: name,
                configured: m.weight,
                effective: effective(
                    state_of(name),
                    m.weight,
                    Some(i) == active,
                    frontend.flush_on_down,
                ),
            })
        })
        .collect()
}

/// The desired VIP of one frontend of `config`, or `None` if no such
/// frontend exists.
pub fn desired_frontend<F>(config: &Config, frontend: &str, state_of: F) -> Option<DesiredVip>
where
    F: Fn(&str) -> BackendState,
{
    let fe = config.frontend(frontend)?;
    let mut encap = None;
    let mut ases = std::collections::BTreeMap::new();
    for m in member_weights(fe, &state_of) {
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

/// The desired VIPs of every frontend of `config`, by key.
pub fn desired_all<F>(config: &Config, state_of: F) -> DesiredState
where
    F: Fn(&str) -> BackendState,
{
    config
        .frontends()
        .keys()
        .filter_map(|name| desired_frontend(config, name, &state_of))
        .map(|vip| (vip.key, vip))
        .collect()
}
