//! The agreement verdict per frontend across nodes, pure: routers behind
//! one ECMP group must hold identical Maglev tables per VIP.
//!
//! Among the nodes that answered, a frontend's verdict is, first match:
//! `differ: config` when its config fingerprints differ or some node lacks
//! it; `differ: health` when the config agrees and the table fingerprints
//! differ (0, VPP does not hold the VIP, is a value like any other);
//! `unreachable` when they agree but some node did not answer; else
//! `agree`. Each differ names the nodes outside the largest group (ties go
//! to the group of the first node listed).

use std::collections::BTreeMap;
use std::fmt;

use super::NodeReport;

/// A frontend's verdict across the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same config and table everywhere it was read.
    Agree,
    /// Its config differs on (or it is missing from) these nodes.
    DifferConfig(Vec<String>),
    /// Same config, but these nodes hold another table.
    DifferHealth(Vec<String>),
    /// The nodes that answered agree; these did not answer.
    Unreachable(Vec<String>),
}

impl Verdict {
    /// The verdict's kind as a word: `agree`, `differ: config`,
    /// `differ: health` or `unreachable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Agree => "agree",
            Verdict::DifferConfig(_) => "differ: config",
            Verdict::DifferHealth(_) => "differ: health",
            Verdict::Unreachable(_) => "unreachable",
        }
    }

    /// The nodes it names (none for `agree`).
    pub fn nodes(&self) -> &[String] {
        match self {
            Verdict::Agree => &[],
            Verdict::DifferConfig(n) | Verdict::DifferHealth(n) | Verdict::Unreachable(n) => n,
        }
    }
}

impl fmt::Display for Verdict {
    /// `agree`, or the kind and the nodes: `differ: config (b, c)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = self.nodes();
        if nodes.is_empty() {
            f.write_str(self.kind())
        } else {
            write!(f, "{} ({})", self.kind(), nodes.join(", "))
        }
    }
}

/// Every frontend any node reported, by name, with its verdict; `nodes`
/// is each node's name and its report (`None` when it did not answer).
pub fn verdicts(nodes: &[(&str, Option<&NodeReport>)]) -> BTreeMap<String, Verdict> {
    let mut names: Vec<&str> = nodes
        .iter()
        .filter_map(|(_, r)| *r)
        .flat_map(|r| r.frontends.iter().map(|f| f.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| (name.to_owned(), verdict(name, nodes)))
        .collect()
}

/// The verdict on frontend `name` across `nodes`.
pub fn verdict(name: &str, nodes: &[(&str, Option<&NodeReport>)]) -> Verdict {
    let unreachable: Vec<String> = nodes
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(n, _)| (*n).to_owned())
        .collect();
    // Each answering node's (config, table) fingerprints; None if missing.
    let seen: Vec<(&str, Option<(u64, u64)>)> = nodes
        .iter()
        .filter_map(|(n, r)| r.map(|r| (*n, r)))
        .map(|(n, r)| {
            let f = r.frontends.iter().find(|f| f.name == name);
            (n, f.map(|f| (f.config_fingerprint, f.table_fingerprint)))
        })
        .collect();
    let config: Vec<(&str, Option<u64>)> = seen.iter().map(|(n, v)| (*n, v.map(|v| v.0))).collect();
    let odd = outside_largest(&config);
    if !odd.is_empty() {
        return Verdict::DifferConfig(odd);
    }
    let table: Vec<(&str, Option<u64>)> = seen.iter().map(|(n, v)| (*n, v.map(|v| v.1))).collect();
    let odd = outside_largest(&table);
    if !odd.is_empty() {
        return Verdict::DifferHealth(odd);
    }
    if unreachable.is_empty() {
        Verdict::Agree
    } else {
        Verdict::Unreachable(unreachable)
    }
}

/// The nodes whose value is not the most common one (ties: the first
/// node's value wins), in the order given.
fn outside_largest<T: PartialEq + Copy>(values: &[(&str, T)]) -> Vec<String> {
    let mut best: Option<(T, usize)> = None;
    for (_, v) in values {
        let count = values.iter().filter(|(_, w)| w == v).count();
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((*v, count));
        }
    }
    match best {
        Some((b, _)) => values
            .iter()
            .filter(|(_, v)| *v != b)
            .map(|(n, _)| (*n).to_owned())
            .collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::proto;

    fn report(frontends: &[(&str, u64, u64)]) -> NodeReport {
        NodeReport {
            node: proto::NodeInfo::default(),
            frontends: frontends
                .iter()
                .map(|(name, config, table)| proto::FrontendInfo {
                    name: (*name).to_owned(),
                    config_fingerprint: *config,
                    table_fingerprint: *table,
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn of(nodes: &[(&'static str, Option<NodeReport>)]) -> BTreeMap<String, String> {
        let refs: Vec<(&str, Option<&NodeReport>)> =
            nodes.iter().map(|(n, r)| (*n, r.as_ref())).collect();
        verdicts(&refs)
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }

    fn one(nodes: &[(&'static str, Option<NodeReport>)], name: &str) -> String {
        of(nodes)[name].clone()
    }

    #[test]
    fn the_same_everywhere_agrees() {
        let r = report(&[("web", 1, 10), ("dns", 2, 0)]);
        let n = [
            ("a", Some(r.clone())),
            ("b", Some(r.clone())),
            ("c", Some(r)),
        ];
        let v = of(&n);
        assert_eq!(v["web"], "agree");
        // Not held by VPP anywhere is still the same table.
        assert_eq!(v["dns"], "agree");
    }

    #[test]
    fn another_config_fingerprint_is_differ_config_naming_the_node() {
        let n = [
            ("a", Some(report(&[("web", 1, 10)]))),
            ("b", Some(report(&[("web", 9, 10)]))),
            ("c", Some(report(&[("web", 1, 10)]))),
        ];
        assert_eq!(one(&n, "web"), "differ: config (b)");
    }

    #[test]
    fn config_outranks_health() {
        let n = [
            ("a", Some(report(&[("web", 1, 10)]))),
            ("b", Some(report(&[("web", 9, 11)]))),
        ];
        // A tie: the first node's value is the reference.
        assert_eq!(one(&n, "web"), "differ: config (b)");
    }

    #[test]
    fn a_frontend_missing_on_a_node_is_differ_config() {
        let n = [
            ("a", Some(report(&[("web", 1, 10), ("dns", 2, 20)]))),
            ("b", Some(report(&[("web", 1, 10)]))),
            ("c", Some(report(&[("web", 1, 10), ("dns", 2, 20)]))),
        ];
        let v = of(&n);
        assert_eq!(v["dns"], "differ: config (b)");
        assert_eq!(v["web"], "agree");
    }

    #[test]
    fn same_config_other_table_is_differ_health() {
        let n = [
            ("a", Some(report(&[("web", 1, 10)]))),
            ("b", Some(report(&[("web", 1, 10)]))),
            ("c", Some(report(&[("web", 1, 0)]))),
        ];
        assert_eq!(one(&n, "web"), "differ: health (c)");
    }

    #[test]
    fn an_unreachable_node_is_named_and_the_others_still_compared() {
        let n = [
            ("a", Some(report(&[("web", 1, 10), ("dns", 2, 20)]))),
            ("b", None),
            ("c", Some(report(&[("web", 1, 10), ("dns", 2, 21)]))),
        ];
        let v = of(&n);
        assert_eq!(v["web"], "unreachable (b)");
        assert_eq!(v["dns"], "differ: health (c)");
    }

    #[test]
    fn nothing_answered_is_no_frontend() {
        assert!(of(&[("a", None), ("b", None)]).is_empty());
    }

    #[test]
    fn kinds_and_nodes() {
        let v = Verdict::DifferHealth(vec!["b".into(), "c".into()]);
        assert_eq!(v.kind(), "differ: health");
        assert_eq!(v.to_string(), "differ: health (b, c)");
        assert_eq!(Verdict::Agree.nodes(), &[] as &[String]);
    }
}
