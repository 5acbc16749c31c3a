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
pub(crate) struct Claim<'c> {
    /// The frontend's name (borrowed from the config: a pass copies no
    /// name).
    pub(crate) name: &'c str,
    /// What the policy needs of it.
    pub(crate) input: FrontendInput,
}

/// Every prefix the config's frontends claim, with their claims by name
/// (frontends sharing an address share the prefix).
pub(crate) fn claims<'c>(handle: &Handle, config: &'c Config) -> BTreeMap<Prefix, Vec<Claim<'c>>> {
    // Read under the lock, not copied: one lookup per frontend.
    let states = handle
        .shared
        .frontend_states
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut out: BTreeMap<Prefix, Vec<Claim<'c>>> = BTreeMap::new();
    for (name, fe) in config.frontends() {
        // `unknown` until published.
        let state = states.get(name);
        let serving = state == FrontendState::Up;
        // A frontend whose state is still `unknown` (not published yet, or
        // every backend unknown: no evidence either way) is held as
        // warm-up holds it: nothing about it may withdraw its prefix. One
        // without backends can never serve.
        let evidence = state != FrontendState::Unknown || fe.backend_names().next().is_none();
        // Without VPP integration there is no warm-up to wait for (no
        // reconciler releases anything): the probes' evidence is enough.
        let released =
            evidence && (!handle.vpp_enabled() || handle.shared.control.is_released(name));
        out.entry(Prefix::host(fe.address))
            .or_default()
            .push(Claim {
                name: name.as_str(),
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
