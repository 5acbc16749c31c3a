//! Executing the planner's ops against VPP, pipelined where they are
//! independent and in order where they are not, with failures isolated
//! per prefix.
//!
//! Ops on different prefixes never interact, so each prefix is a
//! [`Chain`] of its own. Within a chain, creating or deleting a VIP is a
//! barrier (a VIP exists before its ASes are added; its ASes are deleted
//! before it is, and a VIP on the prefix is deleted before another is
//! created); the AS ops between two barriers touch distinct ASes and form
//! one [`Stage`], sent together. Every round sends the next stage of every
//! chain, then waits for all their replies.
//!
//! A round is sent through a window of at most [`MAX_OUTSTANDING`] ops
//! started and not yet answered: the next op is started as the oldest one
//! is answered. A cold sync of thousands of VIPs is tens of thousands of
//! ops in one round; started at once, they would wait in the client's
//! queue, and the client's own bound (`ClientConfig::max_in_flight`)
//! would leave the keepalive and any other request behind all of them.
//! With the window, an op's reply deadline (counted from its write)
//! measures VPP, and room is left for others.
//!
//! A failed op ends its own chain: that prefix's later stages are skipped
//! (they depend on it), every other prefix goes on, so one VIP that VPP
//! refuses never leaves a VIP elsewhere half-built. The [`ApplyReport`]
//! lists what was done, every failure with its op, and what was skipped.
//!
//! **Invariant:** a skipped op belongs to a prefix with a failed op
//! earlier in the plan.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;

use maglev_core::dataplane::VipKey;
use maglev_core::plan::Op;

use crate::api::client::Client;
use crate::api::types::Prefix;
use crate::lb::error::LbError;

/// The most ops of a plan started and not yet answered: half of the
/// client's default [`ClientConfig::max_in_flight`], so the keepalive and
/// other requests always find room on the connection.
///
/// [`ClientConfig::max_in_flight`]: crate::ClientConfig::max_in_flight
pub const MAX_OUTSTANDING: usize = 128;

/// The op that failed and why.
#[derive(Debug)]
pub struct ApplyError {
    /// Its position in the plan.
    pub index: usize,
    /// The op.
    pub op: Op,
    /// What VPP (or the connection) said, or why maglev did not send it.
    pub error: LbError,
}

/// What [`apply`] did. Every op of the plan is in exactly one of `done`,
/// `failed` and `skipped`.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// The ops that succeeded, in plan order.
    pub done: Vec<Op>,
    /// Every failed op, in plan order.
    pub failed: Vec<ApplyError>,
    /// The ops not sent because an earlier op of their prefix failed, in
    /// plan order.
    pub skipped: Vec<Op>,
}

impl ApplyReport {
    /// Whether every op succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }

    /// The done ops, or the whole report if anything failed.
    pub fn into_result(self) -> Result<Vec<Op>, Box<ApplyReport>> {
        if self.is_complete() {
            Ok(self.done)
        } else {
            Err(Box::new(self))
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

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ops done, {} failed, {} skipped",
            self.done.len(),
            self.failed.len(),
            self.skipped.len()
        )?;
        for e in &self.failed {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplyReport {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failed
            .first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Op indexes (positions in the plan) that may be in flight together: AS
/// ops on distinct ASes, or one VIP create/delete alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stage(Vec<usize>);

impl Stage {
    /// The op indexes, in plan order.
    pub fn indexes(&self) -> &[usize] {
        &self.0
    }
}

/// The ops of one prefix, as stages that run one after the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The prefix all its ops are on.
    pub prefix: Prefix,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
}

/// Splits a plan into chains, one per prefix (in prefix order), of stages.
pub fn chains(ops: &[Op]) -> Vec<Chain> {
    let mut chains: BTreeMap<Prefix, Vec<Stage>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let vip = op.vip();
        let prefix = Prefix {
            address: vip.address,
            len: vip.prefix_len,
        };
        let chain = chains.entry(prefix).or_default();
        let joinable = !is_barrier(op)
            && chain.last().is_some_and(|stage| {
                stage
                    .0
                    .iter()
                    .all(|&j| !is_barrier(&ops[j]) && as_of(&ops[j]) != as_of(op))
            });
        match chain.last_mut() {
            Some(stage) if joinable => stage.0.push(i),
            _ => chain.push(Stage(vec![i])),
        }
    }
    chains
        .into_iter()
        .map(|(prefix, stages)| Chain { prefix, stages })
        .collect()
}

fn is_barrier(op: &Op) -> bool {
    matches!(op, Op::CreateVip { .. } | Op::DeleteVip { .. })
}

fn as_of(op: &Op) -> Option<(VipKey, IpAddr)> {
    match *op {
        Op::AddAs { vip, address, .. }
        | Op::DeleteAs { vip, address, .. }
        | Op::SetWeight { vip, address, .. } => Some((vip, address)),
        Op::CreateVip { .. } | Op::DeleteVip { .. } => None,
    }
}

/// Executes `ops` against VPP; see the module doc for the order.
pub async fn apply(client: &Client, ops: &[Op]) -> ApplyReport {
    run(
        ops,
        |op| client.start_op(op),
        |pending| async move { Ok(pending?.wait().await?) },
    )
    .await
}

/// The one scheduler behind every dataplane: `start` sends an op (the ops
/// of a round are started in plan order, at most [`MAX_OUTSTANDING`]
/// ahead of the oldest one not yet answered), `wait` turns what `start`
/// returned into the op's result.
pub(crate) async fn run<P, F>(
    ops: &[Op],
    mut start: impl FnMut(&Op) -> P,
    wait: impl Fn(P) -> F,
) -> ApplyReport
where
    F: Future<Output = Result<(), LbError>>,
{
    let chains = chains(ops);
    let mut done = vec![false; ops.len()];
    let mut broken = vec![false; chains.len()];
    let mut failed: Vec<ApplyError> = Vec::new();
    let rounds = chains.iter().map(|c| c.stages.len()).max().unwrap_or(0);
    for round in 0..rounds {
        let mut batch: Vec<(usize, usize)> = chains
            .iter()
            .enumerate()
            .filter(|(c, _)| !broken[*c])
            .filter_map(|(c, chain)| chain.stages.get(round).map(|s| (c, s)))
            .flat_map(|(c, stage)| stage.0.iter().map(move |&i| (c, i)))
            .collect();
        batch.sort_unstable_by_key(|&(_, i)| i);
        let mut next = batch.into_iter();
        let mut pending: VecDeque<(usize, usize, P)> = VecDeque::new();
        loop {
            while pending.len() < MAX_OUTSTANDING {
                let Some((c, i)) = next.next() else { break };
                pending.push_back((c, i, start(&ops[i])));
            }
            let Some((c, i, p)) = pending.pop_front() else {
                break;
            };
            match wait(p).await {
                Ok(()) => done[i] = true,
                Err(error) => {
                    // The caller reports failures (aggregated when many).
                    tracing::debug!(op = %ops[i], %error, "op failed; later ops on its prefix skipped");
                    broken[c] = true;
                    failed.push(ApplyError {
                        index: i,
                        op: ops[i],
                        error,
                    });
                }
            }
        }
    }
    failed.sort_by_key(|f| f.index);
    let mut report = ApplyReport {
        failed,
        ..ApplyReport::default()
    };
    let mut failures = report.failed.iter().map(|f| f.index).peekable();
    for (i, op) in ops.iter().enumerate() {
        if done[i] {
            report.done.push(*op);
        } else if failures.peek() == Some(&i) {
            failures.next();
        } else {
            report.skipped.push(*op);
        }
    }
    report
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
                table_len: 1024,
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
        let got: Vec<(String, Vec<Vec<usize>>)> = chains(&ops)
            .into_iter()
            .map(|c| {
                (
                    format!("{}/{}", c.prefix.address, c.prefix.len),
                    c.stages.iter().map(|s| s.indexes().to_vec()).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "192.0.2.1/32".to_owned(),
                    vec![vec![0, 1], vec![2], vec![3], vec![4, 5]]
                ),
                ("192.0.2.2/32".to_owned(), vec![vec![6, 7]])
            ]
        );
    }
}
