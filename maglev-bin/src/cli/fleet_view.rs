//! `show fleet`: every frontend on every listed maglevd, with its state,
//! active pool, announcement and table fingerprint per node, and the
//! verdict on whether the nodes' Maglev tables agree (see
//! [`crate::fleet::verdict`]).

use super::render::{Cell, Paint, Style, Table};
use crate::fleet::{self, Reading, Verdict};
use crate::grpc::json;

/// A 48-bit fingerprint as 12 hex digits; `-` for 0 (unset, or for a
/// table: VPP does not hold the VIP).
pub fn fingerprint(f: u64) -> String {
    if f == 0 {
        "-".to_owned()
    } else {
        format!("{f:012x}")
    }
}

fn verdict_cell(v: &Verdict) -> Cell {
    Cell {
        text: v.to_string(),
        paint: match v {
            Verdict::Agree => Paint::Green,
            Verdict::DifferConfig(_) | Verdict::DifferHealth(_) => Paint::Red,
            Verdict::Unreachable(_) => Paint::Yellow,
        },
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// The text: a table of the nodes (name, address, config fingerprint, or
/// why unreachable), then one row per frontend and node.
pub fn text(nodes: &[(&str, &str)], readings: &[Reading], st: Style) -> String {
    let mut t = Table::new(&["NODE", "SERVER", "NAME", "VERSION", "CONFIG", "DRAINED"]);
    for ((name, server), r) in nodes.iter().zip(readings) {
        let mut row: Vec<Cell> = vec![(*name).to_owned().into(), (*server).to_owned().into()];
        match r {
            Reading::Read(rep) => {
                let n = &rep.node;
                row.extend([
                    or_dash(&n.name).into(),
                    or_dash(&n.version).into(),
                    fingerprint(n.config_fingerprint).into(),
                    if n.drained { "yes" } else { "no" }.into(),
                ]);
            }
            Reading::Unreachable(why) => {
                // The first line of the reason (a TLS hint follows it).
                let why = why.lines().next().unwrap_or_default();
                row.push(Cell {
                    text: format!("unreachable: {why}"),
                    paint: Paint::Yellow,
                });
            }
        }
        t.row(row);
    }
    let mut out = t.render(st);
    out.push('\n');
    let refs = pairs(nodes, readings);
    let verdicts = fleet::verdicts(&refs);
    let mut t = Table::new(&[
        "FRONTEND",
        "NODE",
        "STATE",
        "ACTIVE-POOL",
        "ANNOUNCED",
        "TABLE",
        "VERDICT",
    ]);
    for (frontend, verdict) in &verdicts {
        for (node, rep) in &refs {
            let mut row: Vec<Cell> = vec![frontend.clone().into(), (*node).to_owned().into()];
            match rep.map(|r| r.frontends.iter().find(|f| &f.name == frontend)) {
                Some(Some(f)) => row.extend([
                    Cell::state(&f.state),
                    or_dash(&f.active_pool).into(),
                    or_dash(&f.announce).into(),
                    fingerprint(f.table_fingerprint).into(),
                ]),
                Some(None) => row.extend([
                    Cell {
                        text: "missing".to_owned(),
                        paint: Paint::Red,
                    },
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]),
                None => row.extend([
                    Cell {
                        text: "unreachable".to_owned(),
                        paint: Paint::Yellow,
                    },
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]),
            }
            row.push(verdict_cell(verdict));
            t.row(row);
        }
    }
    out.push_str(&t.render(st));
    out
}

fn pairs<'a>(
    nodes: &[(&'a str, &str)],
    readings: &'a [Reading],
) -> Vec<(&'a str, Option<&'a fleet::NodeReport>)> {
    nodes
        .iter()
        .zip(readings)
        .map(|((n, _), r)| (*n, r.report()))
        .collect()
}

/// The JSON: `{"nodes": [{"node", "server", "info" | "error"}],
/// "frontends": [{"name", "verdict", "verdict_nodes", "nodes": [{"node",
/// "frontend" | "error" | null}]}]}`, every message as the API's JSON.
pub fn json(nodes: &[(&str, &str)], readings: &[Reading]) -> Result<String, String> {
    let mut out_nodes = Vec::new();
    for ((name, server), r) in nodes.iter().zip(readings) {
        let mut v = serde_json::json!({ "node": name, "server": server });
        match r {
            Reading::Read(rep) => v["info"] = json::value(&rep.node)?,
            Reading::Unreachable(why) => v["error"] = why.as_str().into(),
        }
        out_nodes.push(v);
    }
    let refs = pairs(nodes, readings);
    let mut frontends = Vec::new();
    for (frontend, verdict) in fleet::verdicts(&refs) {
        let mut per = Vec::new();
        for (node, rep) in &refs {
            let f = match rep.map(|r| r.frontends.iter().find(|f| f.name == frontend)) {
                Some(Some(f)) => json::value(f)?,
                Some(None) => serde_json::Value::Null,
                None => serde_json::json!({ "error": "unreachable" }),
            };
            per.push(serde_json::json!({ "node": node, "frontend": f }));
        }
        frontends.push(serde_json::json!({
            "name": frontend,
            "verdict": verdict.kind(),
            "verdict_nodes": verdict.nodes(),
            "nodes": per,
        }));
    }
    let v = serde_json::json!({ "nodes": out_nodes, "frontends": frontends });
    Ok(format!("{v:#}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::NodeReport;
    use crate::grpc::proto;

    fn read(table: u64) -> Reading {
        Reading::Read(NodeReport {
            node: proto::NodeInfo {
                name: "r".into(),
                config_fingerprint: 0xabc,
                ..Default::default()
            },
            frontends: vec![proto::FrontendInfo {
                name: "web".into(),
                state: "up".into(),
                active_pool: "primary".into(),
                config_fingerprint: 7,
                table_fingerprint: table,
                ..Default::default()
            }],
        })
    }

    #[test]
    fn rows_per_node_with_the_verdict() {
        let nodes = [("a", "h:1"), ("b", "h:2"), ("c", "h:3")];
        let readings = [read(5), read(6), Reading::Unreachable("gone".into())];
        let t = text(&nodes, &readings, Style { color: false });
        assert!(t.contains("unreachable: gone"), "{t}");
        assert!(t.contains("000000000abc"), "{t}");
        let web: Vec<&str> = t.lines().filter(|l| l.starts_with("web")).collect();
        assert_eq!(web.len(), 3, "{t}");
        assert!(web.iter().all(|l| l.ends_with("differ: health (b)")), "{t}");
        assert!(web[2].contains("unreachable"), "{t}");
    }

    #[test]
    fn json_has_the_verdict_and_every_node() {
        let nodes = [("a", "h:1"), ("b", "h:2")];
        let readings = [read(5), read(5)];
        let v: serde_json::Value = serde_json::from_str(&json(&nodes, &readings).unwrap()).unwrap();
        assert_eq!(v["frontends"][0]["verdict"], "agree");
        assert_eq!(v["frontends"][0]["nodes"][1]["node"], "b");
        assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    }
}
