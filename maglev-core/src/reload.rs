//! What a config reload does to the VIPs VPP holds: which it deletes,
//! which it recreates (VPP cannot change a table length or stickiness in
//! place), and whether the deletions exceed the share an operator allows
//! without asking.
//!
//! A file that lost its `frontends:` (a bad merge, a truncated template)
//! is valid YAML and a valid config; reloaded, it deletes every VIP and
//! black-holes every flow. `maglevd --check` names each deletion, and the
//! daemon refuses a reload that deletes more than its limit unless forced.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::Config;
use crate::dataplane::VipKey;

/// One frontend's VIP as far as a reload is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSpec {
    /// The frontend's name.
    pub frontend: String,
    /// Its VIP.
    pub key: VipKey,
    /// Its new-flow table length.
    pub table_len: u32,
    /// Whether its VIP is source-IP sticky.
    pub src_ip_sticky: bool,
}

impl VipSpec {
    /// The VIPs of every frontend of `config`, by frontend name.
    pub fn of_config(config: &Config) -> Vec<VipSpec> {
        config
            .frontends()
            .iter()
            .map(|(name, fe)| VipSpec {
                frontend: name.clone(),
                key: fe.vip_key(),
                table_len: fe.table_len(),
                src_ip_sticky: fe.src_ip_sticky,
            })
            .collect()
    }
}

/// A VIP a reload recreates, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recreation {
    /// The frontend.
    pub frontend: String,
    /// Its VIP.
    pub key: VipKey,
    /// What changed, e.g. "its new-flow table goes from 1024 to 2048
    /// buckets".
    pub why: Vec<String>,
}

/// What a reload from `running` to a new config does to VPP's VIPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipChanges {
    /// How many VIPs run now.
    pub running: usize,
    /// The VIPs the reload deletes (no frontend of the new config has
    /// their key), with the frontend that had each.
    pub deleted: Vec<(String, VipKey)>,
    /// The VIPs the reload deletes and creates again.
    pub recreated: Vec<Recreation>,
}

/// Compares the VIPs running now with those a new config asks for.
pub fn vip_changes(running: &[VipSpec], new: &[VipSpec]) -> VipChanges {
    let new_keys: BTreeSet<VipKey> = new.iter().map(|v| v.key).collect();
    let deleted = running
        .iter()
        .filter(|r| !new_keys.contains(&r.key))
        .map(|r| (r.frontend.clone(), r.key))
        .collect();
    let recreated = running
        .iter()
        .filter_map(|r| {
            let n = new.iter().find(|n| n.key == r.key)?;
            let mut why = Vec::new();
            if n.table_len != r.table_len {
                why.push(format!(
                    "its new-flow table goes from {} to {} buckets",
                    r.table_len, n.table_len
                ));
            }
            if n.src_ip_sticky != r.src_ip_sticky {
                why.push(format!(
                    "src-ip-sticky goes from {} to {}",
                    r.src_ip_sticky, n.src_ip_sticky
                ));
            }
            (!why.is_empty()).then(|| Recreation {
                frontend: n.frontend.clone(),
                key: r.key,
                why,
            })
        })
        .collect();
    VipChanges {
        running: running.len(),
        deleted,
        recreated,
    }
}

/// The share of running VIPs a reload may delete without being forced, in
/// percent: more than this is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteLimit(pub u8);

impl DeleteLimit {
    /// The default: a reload may delete up to half of the VIPs.
    pub const DEFAULT: DeleteLimit = DeleteLimit(50);
}

impl Default for DeleteLimit {
    fn default() -> Self {
        DeleteLimit::DEFAULT
    }
}

impl VipChanges {
    /// Whether the deletions exceed `limit` (more than `limit` percent of
    /// the running VIPs). Deleting nothing never does.
    pub fn exceeds(&self, limit: DeleteLimit) -> bool {
        !self.deleted.is_empty() && self.deleted.len() * 100 > usize::from(limit.0) * self.running
    }

    /// One line per deleted VIP, e.g. `frontend web: VIP 192.0.2.1/32
    /// tcp/80 is deleted`.
    pub fn deletion_lines(&self) -> Vec<String> {
        self.deleted
            .iter()
            .map(|(frontend, key)| {
                format!("frontend {frontend}: VIP {key} is deleted: its flows are dropped")
            })
            .collect()
    }

    /// One line per recreated VIP.
    pub fn recreation_lines(&self) -> Vec<String> {
        self.recreated
            .iter()
            .map(|r| {
                format!(
                    "frontend {}: {}: a reload recreates its VIP, so every flow re-hashes and established flows lose their sticky entries",
                    r.frontend,
                    r.why.join(" and ")
                )
            })
            .collect()
    }
}

/// A reload refused because it deletes too many VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyDeletions {
    /// What the reload would do.
    pub changes: VipChanges,
    /// The limit it exceeds.
    pub limit: DeleteLimit,
}

impl fmt::Display for TooManyDeletions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .changes
            .deleted
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        write!(
            f,
            "reload refused: it deletes {} of {} VIPs (more than {}%): frontends {}; reload with force to apply",
            self.changes.deleted.len(),
            self.changes.running,
            self.limit.0,
            names.join(", ")
        )
    }
}

/// Checks a reload from `running` to `new` against `limit`: the changes it
/// makes, or the refusal. `force` lets any number of deletions through.
pub fn check_deletions(
    running: &[VipSpec],
    new: &[VipSpec],
    limit: DeleteLimit,
    force: bool,
) -> Result<VipChanges, TooManyDeletions> {
    let changes = vip_changes(running, new);
    if changes.exceeds(limit) && !force {
        return Err(TooManyDeletions { changes, limit });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, last: u8, table_len: u32) -> VipSpec {
        VipSpec {
            frontend: name.to_owned(),
            key: VipKey::host(
                [192, 0, 2, last].into(),
                Some(crate::dataplane::Protocol::Tcp),
                80,
            ),
            table_len,
            src_ip_sticky: false,
        }
    }

    #[test]
    fn an_empty_file_deletes_every_vip_and_is_refused() {
        let running = [spec("a", 1, 1024), spec("b", 2, 1024)];
        let err = check_deletions(&running, &[], DeleteLimit::DEFAULT, false).unwrap_err();
        assert_eq!(err.changes.deleted.len(), 2);
        assert_eq!(
            err.to_string(),
            "reload refused: it deletes 2 of 2 VIPs (more than 50%): frontends a, b; reload with force to apply"
        );
        let forced = check_deletions(&running, &[], DeleteLimit::DEFAULT, true).unwrap();
        assert_eq!(forced.deleted.len(), 2);
    }

    #[test]
    fn the_limit_is_a_share_of_the_running_vips() {
        let running = [spec("a", 1, 1024), spec("b", 2, 1024), spec("c", 3, 1024)];
        // One of three deleted: 33% is within 50%.
        let one = check_deletions(&running, &running[1..], DeleteLimit(50), false).unwrap();
        assert_eq!(
            one.deletion_lines(),
            ["frontend a: VIP 192.0.2.1/32 tcp/80 is deleted: its flows are dropped"]
        );
        // Two of three: refused.
        assert!(check_deletions(&running, &running[2..], DeleteLimit(50), false).is_err());
        // A limit of 100 allows anything; 0 allows no deletion at all.
        assert!(check_deletions(&running, &[], DeleteLimit(100), false).is_ok());
        assert!(check_deletions(&running, &running[1..], DeleteLimit(0), false).is_err());
        // Nothing running: nothing to delete.
        assert!(check_deletions(&[], &[], DeleteLimit(0), false).is_ok());
    }

    #[test]
    fn a_renamed_frontend_keeps_its_vip_and_a_new_table_length_recreates_it() {
        let running = [spec("a", 1, 1024)];
        let renamed = [spec("z", 1, 1024)];
        assert_eq!(
            vip_changes(&running, &renamed),
            VipChanges {
                running: 1,
                ..VipChanges::default()
            }
        );
        let resized = [spec("a", 1, 2048)];
        let changes = vip_changes(&running, &resized);
        assert!(changes.deleted.is_empty());
        assert_eq!(
            changes.recreation_lines(),
            [
                "frontend a: its new-flow table goes from 1024 to 2048 buckets: a reload recreates its VIP, so every flow re-hashes and established flows lose their sticky entries"
            ]
        );
    }
}
