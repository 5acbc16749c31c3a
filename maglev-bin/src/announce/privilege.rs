//! Whether this process may carry out `maglev.announce`: `CAP_NET_ADMIN`
//! in its effective set to change routes, and `CAP_SYS_ADMIN` as well to
//! enter another network namespace (`netns`).
//!
//! The effective set is read from `/proc/self/status` (`CapEff`, a hex
//! mask); [`cap_eff`] parses it as pure code.

use std::fmt;

use maglev_core::config::AnnounceConfig;

/// A Linux capability maglevd may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// `CAP_NET_ADMIN` (bit 12): changing routes.
    NetAdmin,
    /// `CAP_SYS_ADMIN` (bit 21): entering another network namespace.
    SysAdmin,
}

impl Capability {
    /// The capability's bit in a capability mask.
    pub fn bit(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
            Capability::SysAdmin => 21,
        }
    }

    /// The capability's name, as systemd and capabilities(7) spell it.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
        }
    }

    /// Whether `mask` holds it.
    pub fn in_mask(self, mask: u64) -> bool {
        mask & (1 << self.bit()) != 0
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The effective capability mask in the text of `/proc/<pid>/status`
/// (its `CapEff:` line), or `None` if there is no such line or it is not
/// a hex mask.
pub fn cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// This process's effective capability mask; `None` if it cannot be read
/// (no `/proc`).
pub fn effective() -> Option<u64> {
    cap_eff(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Whether the process holds `CAP_NET_ADMIN` in its effective set.
pub fn has_net_admin() -> bool {
    effective().is_some_and(|m| Capability::NetAdmin.in_mask(m))
}

/// The capabilities `config` needs: `CAP_NET_ADMIN`, and `CAP_SYS_ADMIN`
/// when the table is in another network namespace.
pub fn needed(config: &AnnounceConfig) -> Vec<Capability> {
    let mut caps = vec![Capability::NetAdmin];
    if config.netns.is_some() {
        caps.push(Capability::SysAdmin);
    }
    caps
}

/// What `config` needs and the effective mask `effective` lacks (all of
/// it when the mask is unknown).
pub fn missing(config: &AnnounceConfig, effective: Option<u64>) -> Vec<Capability> {
    needed(config)
        .into_iter()
        .filter(|c| !effective.is_some_and(|m| c.in_mask(m)))
        .collect()
}

/// The capabilities `maglev.announce` needs and this process lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Missing {
    /// What is lacking (never empty).
    pub missing: Vec<Capability>,
    /// The network namespace of the table, if any.
    pub netns: Option<String>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.missing.iter().map(|c| c.name()).collect();
        write!(f, "maglev.announce needs {}", names.join(" and "))?;
        let why: Vec<String> = self
            .missing
            .iter()
            .map(|c| match (c, &self.netns) {
                (Capability::NetAdmin, _) => "to change routes".to_owned(),
                (Capability::SysAdmin, Some(ns)) => format!("to enter netns {ns}"),
                (Capability::SysAdmin, None) => "to enter a network namespace".to_owned(),
            })
            .collect();
        write!(
            f,
            " ({}), which this process lacks: run maglevd as root, or enable the \
             package's drop-in (cp /usr/share/doc/vpp-maglevd/examples/announce.conf \
             /etc/systemd/system/vpp-maglevd.service.d/, then systemctl daemon-reload \
             and restart; see the user guide's \"Privileges\"), or remove the announce \
             section",
            why.join(", ")
        )
    }
}

/// Whether this process may carry out `config`: `Err` names what it lacks
/// and how to grant it.
pub fn check(config: &AnnounceConfig) -> Result<(), Missing> {
    check_mask(config, effective())
}

/// [`check`] against a given effective mask (`None`: unknown).
pub fn check_mask(config: &AnnounceConfig, effective: Option<u64>) -> Result<(), Missing> {
    let missing = missing(config, effective);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Missing {
            missing,
            netns: config.netns.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(netns: Option<&str>) -> AnnounceConfig {
        AnnounceConfig {
            table: 200,
            protocol: 201,
            netns: netns.map(str::to_owned),
            min_interval: Duration::from_secs(10),
            vpp_grace: Duration::from_secs(5),
        }
    }

    const NET_ADMIN: u64 = 1 << 12;
    const SYS_ADMIN: u64 = 1 << 21;

    #[test]
    fn cap_eff_is_read_from_the_status_text() {
        // As root: every capability (41 bits on Linux 6.x).
        let root = "Name:\tmaglevd\nCapInh:\t0000000000000000\n\
                    CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n\
                    CapBnd:\t000001ffffffffff\n";
        assert_eq!(cap_eff(root), Some(0x1ff_ffff_ffff));
        // The unit's drop-in: CAP_NET_ADMIN alone.
        let net_admin = "CapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n";
        assert_eq!(cap_eff(net_admin), Some(NET_ADMIN));
        assert!(Capability::NetAdmin.in_mask(cap_eff(net_admin).unwrap()));
        assert!(!Capability::SysAdmin.in_mask(cap_eff(net_admin).unwrap()));
        // An unprivileged user: nothing.
        assert_eq!(cap_eff("CapEff:\t0000000000000000\n"), Some(0));
    }

    #[test]
    fn a_missing_or_garbled_cap_eff_is_none() {
        assert_eq!(cap_eff("Name:\tx\nCapPrm:\t0000000000001000\n"), None);
        assert_eq!(cap_eff("CapEff:\tzzzz\n"), None);
        assert_eq!(cap_eff("CapEff:\t\n"), None);
        assert_eq!(cap_eff("CapEff:\t1ffffffffffffffff\n"), None);
        assert_eq!(cap_eff(""), None);
    }

    #[test]
    fn a_table_of_our_own_namespace_needs_net_admin_only() {
        assert_eq!(needed(&config(None)), [Capability::NetAdmin]);
        assert_eq!(check_mask(&config(None), Some(NET_ADMIN)), Ok(()));
        let e = check_mask(&config(None), Some(0)).unwrap_err();
        assert_eq!(e.missing, [Capability::NetAdmin]);
        let text = e.to_string();
        assert!(
            text.starts_with("maglev.announce needs CAP_NET_ADMIN (to change routes)"),
            "{text}"
        );
        assert!(text.contains("announce.conf"), "{text}");
    }

    #[test]
    fn a_table_in_another_namespace_needs_sys_admin_too() {
        let c = config(Some("dataplane"));
        assert_eq!(needed(&c), [Capability::NetAdmin, Capability::SysAdmin]);
        assert_eq!(check_mask(&c, Some(NET_ADMIN | SYS_ADMIN)), Ok(()));
        let e = check_mask(&c, Some(NET_ADMIN)).unwrap_err();
        assert_eq!(e.missing, [Capability::SysAdmin]);
        assert!(
            e.to_string()
                .starts_with("maglev.announce needs CAP_SYS_ADMIN (to enter netns dataplane)"),
            "{e}"
        );
        let e = check_mask(&c, Some(0)).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "maglev.announce needs CAP_NET_ADMIN and CAP_SYS_ADMIN \
                 (to change routes, to enter netns dataplane)"
            ),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_mask_lacks_everything() {
        assert_eq!(
            missing(&config(Some("x")), None),
            [Capability::NetAdmin, Capability::SysAdmin]
        );
    }

    #[test]
    fn this_process_is_read() {
        // /proc is there on every machine this runs on; whatever the
        // capabilities, has_net_admin agrees with the mask.
        let mask = effective().expect("CapEff in /proc/self/status");
        assert_eq!(has_net_admin(), Capability::NetAdmin.in_mask(mask));
    }
}
