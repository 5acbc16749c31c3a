//! The list tables of `show frontends` and `show backends`, for one
//! server or several (then with a NODE column first).

use std::collections::BTreeMap;

use super::backend::{backend_state, health};
use super::exec::{dur, port_name, proto_name};
use super::render::{self, Cell, Paint, Style, Table};
use crate::grpc::proto;

/// A table with a NODE column first when any list is a node's.
fn table(nodes: bool, header: &[&str]) -> Table {
    let mut h: Vec<&str> = Vec::with_capacity(header.len() + 1);
    if nodes {
        h.push("NODE");
    }
    h.extend_from_slice(header);
    Table::new(&h)
}

/// The row with its node's name first, when there is one.
fn with_node(node: Option<&str>, mut cells: Vec<Cell>) -> Vec<Cell> {
    if let Some(n) = node {
        cells.insert(0, n.to_owned().into());
    }
    cells
}

/// `show frontends`: each list's frontends, by node when named.
pub fn frontends_table(lists: &[(Option<&str>, &[proto::FrontendInfo])], st: Style) -> String {
    let mut t = table(
        lists.iter().any(|(n, _)| n.is_some()),
        &[
            "NAME",
            "ADDRESS",
            "PROTO",
            "PORT",
            "STATE",
            "ACTIVE-POOL",
            "UP",
        ],
    );
    for (node, frontends) in lists {
        for f in *frontends {
            let mut members: BTreeMap<&str, &str> = BTreeMap::new();
            for p in &f.pools {
                for b in &p.backends {
                    members.insert(&b.name, &b.state);
                }
            }
            let up = members.values().filter(|s| **s == "up").count();
            t.row(with_node(
                *node,
                vec![
                    f.name.clone().into(),
                    f.address.clone().into(),
                    proto_name(&f.protocol).into(),
                    port_name(f.port).into(),
                    Cell::state(&f.state),
                    if f.active_pool.is_empty() {
                        "-".into()
                    } else {
                        f.active_pool.clone().into()
                    },
                    format!("{up}/{}", members.len()).into(),
                ],
            ));
        }
    }
    t.render(st)
}

/// `show backends`: each list's backends, by node when named; ages
/// relative to `now` (Unix nanoseconds).
pub fn backends_table(
    lists: &[(Option<&str>, &[proto::BackendInfo])],
    now: i64,
    st: Style,
) -> String {
    let mut t = table(
        lists.iter().any(|(n, _)| n.is_some()),
        &[
            "NAME",
            "ADDRESS",
            "STATE",
            "HEALTH",
            "HEALTHCHECK",
            "LAST-PROBE",
            "FOR",
        ],
    );
    for (node, backends) in lists {
        for b in *backends {
            let probe = b
                .last_probe
                .as_ref()
                .map(|p| format!("{} {}", p.code, dur(&p.duration)))
                .unwrap_or_else(|| "-".to_owned());
            // Probes that cannot run (ours): the state is held.
            let probe = match &b.probe_blocked {
                Some(pb) => Cell {
                    text: format!("blocked ({})", pb.reason),
                    paint: Paint::Yellow,
                },
                None => probe.into(),
            };
            let since = b.transitions.last().map(|x| render::age(x.unix_nanos, now));
            t.row(with_node(
                *node,
                vec![
                    b.name.clone().into(),
                    b.address.clone().into(),
                    backend_state(b),
                    health(b).into(),
                    if b.healthcheck.is_empty() {
                        "static".into()
                    } else {
                        b.healthcheck.clone().into()
                    },
                    probe,
                    since.unwrap_or_else(|| "-".to_owned()).into(),
                ],
            ));
        }
    }
    t.render(st)
}
