//! What readers see of a frontend: the config joined with the backends'
//! states and the weights maglev wants in VPP, computed on demand from the
//! snapshots, one frontend at a time (a page of a listing builds the views
//! of its own frontends only); the VIP-to-frontend lookup goes through
//! the config's own index ([`Config::index`]).

use std::sync::Arc;

use maglev_core::config::{Config, Frontend};
use maglev_core::dataplane::{Encap, VipKey};
use maglev_core::desired::member_weights;
use maglev_core::frontend::frontend_state;
use maglev_core::state::{BackendState, FrontendState};
use maglev_core::weights::Serving;

use crate::daemon::tables::VipTable;

/// One frontend as the API shows it.
#[derive(Debug, Clone)]
pub struct FrontendView {
    /// Its name.
    pub name: String,
    /// Its configuration.
    pub frontend: Frontend,
    /// Its VIP key in VPP.
    pub key: VipKey,
    /// The encap its backends need (`None` with no backend).
    pub encap: Option<Encap>,
    /// Its aggregate state.
    pub state: FrontendState,
    /// The index of the active pool, if any pool has a usable backend.
    pub active_pool: Option<usize>,
    /// Every pool member, in pool order and then by name.
    pub members: Vec<MemberView>,
    /// Whether warm-up has released it to VPP sync.
    pub released: bool,
    /// Its new-flow table as VPP holds it (predicted); `None` while VPP
    /// does not hold its VIP or is away.
    pub table: Option<VipTable>,
    /// Its prefix's announcement; `None` without an announce section.
    pub announce: Option<crate::announce::view::FrontendAnnounce>,
    /// Its part of the config's fingerprint
    /// ([`Config::frontend_fingerprint`], computed once per config).
    pub config_fingerprint: u64,
}

/// One pool member as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The pool's index in priority order.
    pub pool: usize,
    /// The backend's name.
    pub backend: String,
    /// Its address.
    pub address: std::net::IpAddr,
    /// Its state.
    pub state: BackendState,
    /// Flap damping holds it at weight 0.
    pub suppressed: bool,
    /// Its slow-start step (`0..slow_start::STEPS`) while it ramps.
    pub ramp: Option<u8>,
    /// Its configured weight.
    pub weight: u8,
    /// The weight maglev wants VPP to use.
    pub effective_weight: u8,
}

impl FrontendView {
    /// The view of frontend `name` of `config`, with backend conditions
    /// from `serving_of` and pool `active` active; `None` if there is no
    /// such frontend.
    pub fn build(
        config: &Config,
        name: &str,
        serving_of: impl Fn(&str) -> Serving,
        active: Option<usize>,
        released: bool,
    ) -> Option<FrontendView> {
        let fe = config.frontend(name)?;
        let members = member_weights(fe, &serving_of, active)
            .into_iter()
            .map(|m| {
                let serving = serving_of(m.backend);
                (m, serving)
            })
            .map(|(m, serving)| MemberView {
                pool: m.pool,
                backend: m.backend.to_owned(),
                address: config.backend(m.backend).map_or(fe.address, |b| b.address),
                state: serving.state,
                suppressed: serving.suppressed,
                ramp: serving.ramp,
                weight: m.configured,
                effective_weight: m.effective.weight,
            })
            .collect::<Vec<_>>();
        let encap = members.first().map(|m| Encap::for_backend(m.address));
        Some(FrontendView {
            name: name.to_owned(),
            key: fe.vip_key(),
            encap,
            state: frontend_state(fe, &serving_of, active),
            active_pool: active,
            members,
            released,
            table: None,
            announce: None,
            config_fingerprint: config.frontend_fingerprint(name).unwrap_or(0),
            frontend: fe.clone(),
        })
    }

    /// The members of pool `index`.
    pub fn pool_members(&self, index: usize) -> impl Iterator<Item = &MemberView> {
        self.members.iter().filter(move |m| m.pool == index)
    }
}

/// The configured frontend whose VIP is `key`, if any: a lookup in the
/// config's [`index`](Config::index) (built once per config).
pub fn frontend_of(config: &Config, key: &VipKey) -> Option<Arc<str>> {
    config.index().frontend_of(key).cloned()
}
