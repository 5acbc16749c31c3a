//! What the announcer reads of the daemon for one pass: each VIP prefix
//! with the frontends that claim it (whether each serves and whether
//! warm-up has released it), and which VIP addresses VPP holds with a
//! serving AS.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use maglev_core::announce::{FrontendInput, Prefix};
use maglev_core::config::Config;
use maglev_core::state::FrontendState;

use crate::daemon::Handle;

/// One frontend of a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The frontend's name.
    pub(crate) name: String,
    /// What the policy needs of it.
    pub(crate) input: FrontendInput,
}

/// Every prefix the config's frontends claim, with their claims by name
/// (frontends sharing an address share the prefix).
pub(crate) fn claims(handle: &Handle, config: &Config) -> BTreeMap<Prefix, Vec<Claim>> {
    let states = handle.frontend_states();
    let mut out: BTreeMap<Prefix, Vec<Claim>> = BTreeMap::new();
    for (name, fe) in config.frontends() {
        let serving = states.get(name) == Some(&FrontendState::Up);
        let released = handle.shared.control.is_released(name);
        out.entry(Prefix::host(fe.address))
            .or_default()
            .push(Claim {
                name: name.clone(),
                input: FrontendInput { serving, released },
            });
    }
    out
}

/// The VIP addresses VPP holds with at least one AS of non-zero weight,
/// as the reconciler's prediction of VPP's tables says (updated after
/// every applied sync and every read of VPP).
pub(crate) fn vpp_serving(handle: &Handle) -> BTreeSet<IpAddr> {
    handle.shared.tables.serving_addresses()
}
