//! The fleet tab's agreement matrix: every frontend (rows) on every
//! maglevd (this one first, then the peers), each cell with the node's
//! state, active pool, announcement and fingerprints, and a verdict.
//!
//! The row's verdict is [`crate::fleet::verdict`]'s (the one `maglevc
//! show fleet` prints): `differ: config`, `differ: health`, `unreachable`
//! or `agree`. A cell is `unreachable` when its node could not be read,
//! the row's kind when the row's verdict names its node (it is outside the
//! largest group), else `agree`.

use std::collections::HashMap;

use serde::Serialize;

use crate::fleet::{NodeReport, Verdict, verdicts};

/// `agree`.
pub const AGREE: &str = "agree";
/// `unreachable`.
pub const UNREACHABLE: &str = "unreachable";

/// One cell: a frontend on a node.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Cell {
    /// The cell's verdict.
    pub verdict: &'static str,
    /// Its state (`up`, `down`, `unknown`); empty when not read.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// The active pool; empty when none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub active_pool: String,
    /// `announced`, `withdrawn`, or empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub announce: String,
    /// The table fingerprint, 12 hex digits; empty when not read.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub table_fingerprint: String,
    /// The config fingerprint, 12 hex digits; empty when not read.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_fingerprint: String,
    /// Whether the node holds this frontend.
    pub present: bool,
}

/// One row: a frontend across the nodes.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The frontend.
    pub name: String,
    /// The row's verdict (its worst cell).
    pub verdict: &'static str,
    /// The nodes the verdict names (outside the largest group, or not
    /// answering); none for `agree`.
    pub nodes: Vec<String>,
    /// A cell per node, in the nodes' order.
    pub cells: Vec<Cell>,
}

/// A fingerprint as the matrix shows it.
pub fn hex(fp: u64) -> String {
    format!("{fp:012x}")
}

/// The matrix of `nodes` (each node's name and report, `None` when it
/// could not be read): a row per frontend any node holds, by name.
pub fn matrix(nodes: &[(&str, Option<&NodeReport>)]) -> Vec<Row> {
    let by_node: Vec<Option<HashMap<&str, &crate::grpc::proto::FrontendInfo>>> = nodes
        .iter()
        .map(|(_, r)| r.map(|r| r.frontends.iter().map(|f| (f.name.as_str(), f)).collect()))
        .collect();
    verdicts(nodes)
        .into_iter()
        .map(|(name, verdict)| {
            let cells = nodes
                .iter()
                .zip(&by_node)
                .map(|((node, _), m)| cell(&name, node, m.as_ref(), &verdict))
                .collect();
            Row {
                name,
                verdict: verdict.kind(),
                nodes: verdict.nodes().to_vec(),
                cells,
            }
        })
        .collect()
}

fn cell(
    name: &str,
    node: &str,
    m: Option<&HashMap<&str, &crate::grpc::proto::FrontendInfo>>,
    verdict: &Verdict,
) -> Cell {
    let Some(m) = m else {
        return Cell {
            verdict: UNREACHABLE,
            ..Cell::default()
        };
    };
    let kind = match verdict {
        Verdict::DifferConfig(n) | Verdict::DifferHealth(n) if n.iter().any(|n| n == node) => {
            verdict.kind()
        }
        _ => AGREE,
    };
    match m.get(name) {
        Some(f) => Cell {
            verdict: kind,
            state: f.state.clone(),
            active_pool: f.active_pool.clone(),
            announce: f.announce.clone(),
            table_fingerprint: hex(f.table_fingerprint),
            config_fingerprint: hex(f.config_fingerprint),
            present: true,
        },
        None => Cell {
            verdict: kind,
            ..Cell::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::proto;

    fn report(fes: &[(&str, u64, u64)]) -> NodeReport {
        NodeReport {
            node: proto::NodeInfo::default(),
            frontends: fes
                .iter()
                .map(|(name, config, table)| proto::FrontendInfo {
                    name: (*name).to_owned(),
                    config_fingerprint: *config,
                    table_fingerprint: *table,
                    state: "up".to_owned(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn kinds(r: &Row) -> Vec<&str> {
        r.cells.iter().map(|c| c.verdict).collect()
    }

    #[test]
    fn cells_name_the_odd_node() {
        let a = report(&[("web", 1, 10), ("dns", 2, 20), ("mail", 3, 30)]);
        let b = report(&[("web", 1, 10), ("dns", 2, 21), ("mail", 3, 30)]);
        let c = report(&[("web", 9, 10), ("dns", 2, 20)]);
        let m = matrix(&[
            ("a", Some(&a)),
            ("b", Some(&b)),
            ("c", Some(&c)),
            ("d", None),
        ]);
        let by: HashMap<&str, &Row> = m.iter().map(|r| (r.name.as_str(), r)).collect();
        assert_eq!(by["web"].verdict, "differ: config");
        assert_eq!(
            kinds(by["web"]),
            [AGREE, AGREE, "differ: config", UNREACHABLE]
        );
        assert_eq!(by["dns"].verdict, "differ: health");
        assert_eq!(
            kinds(by["dns"]),
            [AGREE, "differ: health", AGREE, UNREACHABLE]
        );
        assert_eq!(by["mail"].verdict, "differ: config");
        assert!(!by["mail"].cells[2].present);
        assert_eq!(by["web"].cells[0].table_fingerprint, "00000000000a");
        let m = matrix(&[("a", Some(&a)), ("b", Some(&a))]);
        assert!(
            m.iter()
                .all(|r| r.verdict == AGREE && kinds(r) == [AGREE, AGREE])
        );
        let m = matrix(&[("a", Some(&a)), ("d", None)]);
        assert!(
            m.iter()
                .all(|r| r.verdict == UNREACHABLE && kinds(r) == [AGREE, UNREACHABLE])
        );
    }
}
