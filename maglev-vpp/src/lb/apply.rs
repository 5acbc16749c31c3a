//! Executing the planner's ops against VPP, pipelined where they are
//! independent and in order where they are not.
//!
//! Ops on different prefixes never interact, so each prefix is a chain of
//! its own. Within a chain, creating or deleting a VIP is a barrier (a VIP
//! exists before its ASes are added; its ASes are deleted before it is, and
//! a VIP on the prefix is deleted before another is created); the AS ops
//! between two barriers touch distinct ASes and are sent together. Every
//! round sends the next stage of every chain at once, then waits for all
//! their replies. After a round with an error nothing more is sent.

use std::collections::BTreeMap;
use std::net::IpAddr;

use maglev_core::plan::Op;

use crate::api::client::Client;
use crate::api::error::Error;
use crate::lb::ops::PendingOp;

/// The op that failed and why.
#[derive(Debug)]
pub struct ApplyError {
    /// Its position in the plan.
    pub index: usize,
    /// The op.
    pub op: Op,
    /// What VPP (or the connection) said.
    pub error: Error,
}

/// What [`apply`] did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// The ops that succeeded, in plan order.
    pub done: Vec<Op>,
    /// The first failed op (in plan order), if any.
    pub failed: Option<ApplyError>,
}

impl ApplyReport {
    /// The failure as a `Result`.
    pub fn into_result(self) -> Result<Vec<Op>, Box<ApplyError>> {
        match self.failed {
            Some(e) => Err(Box::new(e)),
            None => Ok(self.done),
        }
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "op {} ({}): {}", self.index, self.op, self.error)
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Splits a plan into chains (one per prefix) of stages (op indexes that
/// may be in flight together).
pub fn stages(ops: &[Op]) -> Vec<Vec<Vec<usize>>> {
    let mut chains: BTreeMap<(IpAddr, u8), Vec<Vec<usize>>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let vip = op.vip();
        let chain = chains.entry((vip.address, vip.prefix_len)).or_default();
        let barrier = matches!(op, Op::CreateVip { .. } | Op::DeleteVip { .. });
        let joinable = !barrier
            && chain.last().is_some_and(|stage| {
                stage.iter().all(|&j| {
                    let other = &ops[j];
                    !matches!(other, Op::CreateVip { .. } | Op::DeleteVip { .. })
                        && as_of(other) != as_of(op)
                })
            });
        if joinable {
            chain.last_mut().expect("checked").push(i);
        } else {
            chain.push(vec![i]);
        }
    }
    chains.into_values().collect()
}

fn as_of(op: &Op) -> Option<(maglev_core::dataplane::VipKey, IpAddr)> {
    match *op {
        Op::AddAs { vip, address, .. }
        | Op::DeleteAs { vip, address, .. }
        | Op::SetWeight { vip, address, .. } => Some((vip, address)),
        Op::CreateVip { .. } | Op::DeleteVip { .. } => None,
    }
}

/// Executes `ops` against VPP; see the module doc for the order.
pub async fn apply(client: &Client, ops: &[Op]) -> ApplyReport {
    let chains = stages(ops);
    let mut ok = vec![false; ops.len()];
    let mut failures: Vec<ApplyError> = Vec::new();
    let rounds = chains.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        let mut batch: Vec<usize> = chains
            .iter()
            .filter_map(|c| c.get(round))
            .flatten()
            .copied()
            .collect();
        batch.sort_unstable();
        let mut pending: Vec<(usize, Result<PendingOp, Error>)> = Vec::with_capacity(batch.len());
        for &i in &batch {
            pending.push((i, client.start_op(&ops[i])));
        }
        for (i, p) in pending {
            let result = match p {
                Ok(p) => p.wait().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => ok[i] = true,
                Err(error) => {
                    tracing::warn!(op = %ops[i], %error, "VPP refused an op");
                    failures.push(ApplyError {
                        index: i,
                        op: ops[i],
                        error,
                    });
                }
            }
        }
        if !failures.is_empty() {
            break;
        }
    }
    failures.sort_by_key(|f| f.index);
    ApplyReport {
        done: ops
            .iter()
            .zip(&ok)
            .filter(|(_, ok)| **ok)
            .map(|(op, _)| *op)
            .collect(),
        failed: failures.into_iter().next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maglev_core::dataplane::{Encap, VipKey};

    fn key(a: &str, port: u16) -> VipKey {
        VipKey {
            address: a.parse().unwrap(),
            prefix_len: 32,
            protocol: 6,
            port,
        }
    }

    #[test]
    fn barriers_and_chains() {
        let a = key("192.0.2.1", 80);
        let b = key("192.0.2.1", 443);
        let c = key("192.0.2.2", 80);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let ops = [
            Op::DeleteAs {
                vip: a,
                address: ip("10.0.0.1"),
                flush: true,
            },
            Op::DeleteAs {
                vip: a,
                address: ip("10.0.0.2"),
                flush: true,
            },
            Op::DeleteVip { key: a },
            Op::CreateVip {
                key: b,
                encap: Encap::Gre4,
                src_ip_sticky: false,
            },
            Op::AddAs {
                vip: b,
                address: ip("10.0.0.1"),
                weight: 1,
            },
            Op::AddAs {
                vip: b,
                address: ip("10.0.0.2"),
                weight: 1,
            },
            Op::SetWeight {
                vip: c,
                address: ip("10.0.0.1"),
                weight: 0,
                flush: true,
            },
            Op::SetWeight {
                vip: c,
                address: ip("10.0.0.2"),
                weight: 0,
                flush: true,
            },
        ];
        assert_eq!(
            stages(&ops),
            [
                vec![vec![0, 1], vec![2], vec![3], vec![4, 5]],
                vec![vec![6, 7]]
            ]
        );
    }
}
