//! `vpp.lb` on reload: VPP's global LB settings (`lb_conf`) are sent at
//! once, never left for the next reconnect.
//!
//! What VPP does with `lb_conf` (src/plugins/lb/lb.c `lb_conf`, node.c
//! `lb_get_sticky_table`): it refuses only a sticky bucket count that is
//! not a power of two, and takes every field at once, VIPs or not. The
//! source addresses apply to the next encapsulated packet and the flow
//! timeout to the existing sticky tables; a new `sticky-buckets-per-core`
//! makes every worker free its sticky table at its next packet and start
//! an empty one: every established flow of every VIP may move to another
//! AS. So that change is refused unless the operator forces the reload,
//! and the refusal names the consequence ([`vpp_lb_change`]).

use maglev_core::config::{Config, LbConfig};
use maglev_vpp::lb::ops::lb_conf_for;

use crate::daemon::error::DaemonError;
use crate::daemon::handle::Handle;

/// What a reload does to VPP's global LB settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbConfChange {
    /// Nothing VPP holds changes.
    None,
    /// Send `lb_conf` now; no established flow is touched.
    Apply,
    /// Applying it resets state VPP keeps for established flows; the
    /// reason says what, for the operator. Only a forced reload applies it.
    NeedsForce(String),
}

/// What going from `old` to `new` does to VPP's LB settings. `vpp_sticky`
/// is VPP's current `sticky_buckets_per_core` when known (else the old
/// config's value stands for it).
pub fn vpp_lb_change(old: &Config, new: &Config, vpp_sticky: Option<u32>) -> LbConfChange {
    let (Some(old), Some(new)) = (old.vpp().map(|v| &v.lb), new.vpp().map(|v| &v.lb)) else {
        // VPP integration turned on or off by the file: nothing to send now
        // (the connect sends `lb_conf`).
        return LbConfChange::None;
    };
    if let Some(want) = new.sticky_buckets_per_core {
        let current = vpp_sticky.or(old.sticky_buckets_per_core);
        if current != Some(want) {
            let from = current.map_or("VPP's value".to_owned(), |c| c.to_string());
            return LbConfChange::NeedsForce(format!(
                "vpp.lb.sticky-buckets-per-core {from} -> {want} resets VPP's sticky table: \
                 every established flow of every VIP may move; reload with force to apply"
            ));
        }
    }
    if conf_fields(old) == conf_fields(new) {
        LbConfChange::None
    } else {
        LbConfChange::Apply
    }
}

/// The fields of `vpp.lb` that go to VPP in `lb_conf`.
fn conf_fields(lb: &LbConfig) -> impl PartialEq + use<> {
    (
        lb.ipv4_src_address,
        lb.ipv6_src_address,
        lb.sticky_buckets_per_core,
        lb.flow_timeout,
    )
}

/// The reload path's step for `vpp.lb`, before anything of `new` is put
/// in place: refuses a change that resets VPP's sticky state unless
/// `force`, and sends `lb_conf` at once where it differs from VPP's
/// (while VPP is away, the connect sends it). `Err` is the reason to
/// refuse the reload with.
pub async fn apply_on_reload(
    handle: &Handle,
    old: &Config,
    new: &Config,
    force: bool,
) -> Result<LbConfChange, String> {
    let vpp_sticky = match handle.lb_conf().await {
        Ok(Some(conf)) => Some(conf.sticky_buckets_per_core),
        Ok(None) | Err(_) => None,
    };
    let change = vpp_lb_change(old, new, vpp_sticky);
    match &change {
        LbConfChange::None => return Ok(change),
        LbConfChange::NeedsForce(reason) if !force => return Err(reason.clone()),
        LbConfChange::NeedsForce(reason) => {
            tracing::warn!(reason = %reason, "vpp.lb change forced");
        }
        LbConfChange::Apply => {}
    }
    let Some(vpp) = new.vpp() else {
        return Ok(change);
    };
    let link = match handle.vpp() {
        Ok(link) => link,
        // Away: the connect sends the new config's `lb_conf` first thing.
        Err(DaemonError::Unavailable(_)) => return Ok(change),
        Err(e) => return Err(format!("vpp.lb: {e}")),
    };
    match link.dataplane.ensure_lb_conf(&lb_conf_for(&vpp.lb)).await {
        Ok(sent) => {
            if sent {
                tracing::info!("lb_conf set from the reloaded config");
            }
            Ok(change)
        }
        Err(e) => Err(format!(
            "vpp.lb: VPP refused lb_conf ({e}); the running config stays"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_at(src: &str, lb: &str) -> Config {
        let yaml = format!(
            "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: {src}\n      \
             ipv6-src-address: 2001:db8::fe\n{lb}"
        );
        Config::from_yaml(&yaml, "test.yaml").unwrap()
    }

    fn config(lb: &str) -> Config {
        config_at("192.0.2.254", lb)
    }

    #[test]
    fn a_flow_timeout_or_address_change_is_applied() {
        let old = config("      flow-timeout: 40s\n");
        let new = config("      flow-timeout: 60s\n");
        assert_eq!(vpp_lb_change(&old, &new, None), LbConfChange::Apply);
        assert_eq!(vpp_lb_change(&old, &old, None), LbConfChange::None);
        let moved = config_at("192.0.2.253", "      flow-timeout: 40s\n");
        assert_eq!(vpp_lb_change(&old, &moved, None), LbConfChange::Apply);
    }

    #[test]
    fn a_sticky_table_resize_needs_force_and_says_why() {
        let old = config("      sticky-buckets-per-core: 1024\n");
        let new = config("      sticky-buckets-per-core: 2048\n");
        assert_eq!(
            vpp_lb_change(&old, &new, Some(1024)),
            LbConfChange::NeedsForce(
                "vpp.lb.sticky-buckets-per-core 1024 -> 2048 resets VPP's sticky table: \
                 every established flow of every VIP may move; reload with force to apply"
                    .to_owned()
            )
        );
        // VPP already holds the new size: nothing is reset.
        assert_eq!(vpp_lb_change(&old, &new, Some(2048)), LbConfChange::Apply);
        // Dropping the key leaves VPP's value alone.
        let none = config("");
        assert_eq!(vpp_lb_change(&old, &none, Some(1024)), LbConfChange::Apply);
    }
}
