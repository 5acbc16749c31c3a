//! The fleet tab's agreement matrix: every frontend (rows) on every
//! maglevd (this one first, then the peers), each cell with the node's
//! state, active pool, announcement and fingerprints, and a verdict.
//!
//! A cell is compared with the row's reference, the (config, table)
//! fingerprint pair most nodes hold (ties: the first node's): the same
//! pair `agree`s, another config fingerprint (or the frontend missing) is
//! `differ: config`, the same config with another table is `differ:
//! health`; a node that could not be read is `unreachable`. The row's
//! verdict is its worst cell: `differ: config`, then `differ: health`,
//! then `unreachable`, else `agree`.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::grpc::proto;

/// `agree`.
pub const AGREE: &str = "agree";
/// `differ: config`.
pub const DIFFER_CONFIG: &str = "differ: config";
/// `differ: health`.
pub const DIFFER_HEALTH: &str = "differ: health";
/// `unreachable`.
pub const UNREACHABLE: &str = "unreachable";

/// One node's read, as the matrix takes it.
#[derive(Debug)]
pub struct NodeRead<'a> {
    /// The tab's name.
    pub name: &'a str,
    /// Its frontends; `None`: it could not be read.
    pub frontends: Option<&'a [proto::FrontendInfo]>,
}

/// One cell: a frontend on a node.
#[derive(Debug, Serialize, PartialEq, Eq)]
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
    /// A cell per node, in the nodes' order.
    pub cells: Vec<Cell>,
}

/// A fingerprint as the matrix shows it.
pub fn hex(fp: u64) -> String {
    format!("{fp:012x}")
}

fn rank(verdict: &str) -> u8 {
    match verdict {
        DIFFER_CONFIG => 3,
        DIFFER_HEALTH => 2,
        UNREACHABLE => 1,
        _ => 0,
    }
}

/// The matrix of `nodes`: a row per frontend any node holds, by name.
pub fn matrix(nodes: &[NodeRead<'_>]) -> Vec<Row> {
    let by_node: Vec<Option<HashMap<&str, &proto::FrontendInfo>>> = nodes
        .iter()
        .map(|n| {
            n.frontends
                .map(|fs| fs.iter().map(|f| (f.name.as_str(), f)).collect())
        })
        .collect();
    let names: BTreeSet<&str> = by_node
        .iter()
        .flatten()
        .flat_map(|m| m.keys().copied())
        .collect();
    names
        .into_iter()
        .map(|name| row(name, &by_node))
        .collect()
}

fn row(name: &str, by_node: &[Option<HashMap<&str, &proto::FrontendInfo>>]) -> Row {
    // Each read node's pair (None: the frontend is missing there).
    let pairs: Vec<Option<Option<(u64, u64)>>> = by_node
        .iter()
        .map(|m| {
            m.as_ref().map(|m| {
                m.get(name)
                    .map(|f| (f.config_fingerprint, f.table_fingerprint))
            })
        })
        .collect();
    let mut counts: Vec<(Option<(u64, u64)>, usize)> = Vec::new();
    for p in pairs.iter().flatten() {
        match counts.iter_mut().find(|(q, _)| q == p) {
            Some((_, n)) => *n += 1,
            None => counts.push((*p, 1)),
        }
    }
    // The most common pair; the first seen wins a tie (max_by_key keeps
    // the last maximum, so compare on the reversed index too).
    let reference = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, n))| (*n, usize::MAX - i))
        .and_then(|(_, (p, _))| *p);
    let cells: Vec<Cell> = by_node
        .iter()
        .zip(&pairs)
        .map(|(m, pair)| {
            let Some(m) = m else {
                return Cell {
                    verdict: UNREACHABLE,
                    state: String::new(),
                    active_pool: String::new(),
                    announce: String::new(),
                    table_fingerprint: String::new(),
                    config_fingerprint: String::new(),
                    present: false,
                };
            };
            let verdict = match (pair.flatten(), reference) {
                (Some(p), Some(r)) if p == r => AGREE,
                (Some(p), Some(r)) if p.0 == r.0 => DIFFER_HEALTH,
                (None, None) => AGREE,
                _ => DIFFER_CONFIG,
            };
            match m.get(name) {
                Some(f) => Cell {
                    verdict,
                    state: f.state.clone(),
                    active_pool: f.active_pool.clone(),
                    announce: f.announce.clone(),
                    table_fingerprint: hex(f.table_fingerprint),
                    config_fingerprint: hex(f.config_fingerprint),
                    present: true,
                },
                None => Cell {
                    verdict,
                    state: String::new(),
                    active_pool: String::new(),
                    announce: String::new(),
                    table_fingerprint: String::new(),
                    config_fingerprint: String::new(),
                    present: false,
                },
            }
        })
        .collect();
    let verdict = cells
        .iter()
        .map(|c| c.verdict)
        .max_by_key(|v| rank(v))
        .unwrap_or(AGREE);
    Row {
        name: name.to_owned(),
        verdict,
        cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fe(name: &str, config: u64, table: u64) -> proto::FrontendInfo {
        proto::FrontendInfo {
            name: name.to_owned(),
            config_fingerprint: config,
            table_fingerprint: table,
            state: "up".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn verdicts_name_the_odd_node() {
        let a = [fe("web", 1, 10), fe("dns", 2, 20), fe("mail", 3, 30)];
        let b = [fe("web", 1, 10), fe("dns", 2, 21), fe("mail", 3, 30)];
        let c = [fe("web", 9, 10), fe("dns", 2, 20)];
        let nodes = [
            NodeRead {
                name: "a",
                frontends: Some(&a),
            },
            NodeRead {
                name: "b",
                frontends: Some(&b),
            },
            NodeRead {
                name: "c",
                frontends: Some(&c),
            },
            NodeRead {
                name: "d",
                frontends: None,
            },
        ];
        let m = matrix(&nodes);
        let by: HashMap<&str, &Row> = m.iter().map(|r| (r.name.as_str(), r)).collect();
        let verdicts =
            |r: &Row| -> Vec<&str> { r.cells.iter().map(|c| c.verdict).collect::<Vec<_>>() };
        assert_eq!(by["web"].verdict, DIFFER_CONFIG);
        assert_eq!(verdicts(by["web"]), [AGREE, AGREE, DIFFER_CONFIG, UNREACHABLE]);
        assert_eq!(by["dns"].verdict, DIFFER_HEALTH);
        assert_eq!(verdicts(by["dns"]), [AGREE, DIFFER_HEALTH, AGREE, UNREACHABLE]);
        assert_eq!(by["mail"].verdict, DIFFER_CONFIG);
        assert!(!by["mail"].cells[2].present);
        let all_agree = matrix(&nodes[..2].iter().map(|n| NodeRead { name: n.name, frontends: Some(&a) }).collect::<Vec<_>>());
        assert!(all_agree.iter().all(|r| r.verdict == AGREE));
        let with_away = matrix(&[
            NodeRead { name: "a", frontends: Some(&a) },
            NodeRead { name: "d", frontends: None },
        ]);
        assert!(with_away.iter().all(|r| r.verdict == UNREACHABLE));
    }
}
