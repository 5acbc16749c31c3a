//! The fleet: gRPC clients of other routers' maglevds, shared by
//! maglevc's multi-server commands and the dashboard's peer tabs.
//!
//! A [`Node`] is a name and a [`Target`] (address and TLS, with the
//! client identity to present). [`read`] asks one node what it says about
//! itself and its frontends; [`read_all`] asks several at once, and a node
//! that does not answer in time is [`Reading::Unreachable`] without
//! holding up the others. [`verdict`] compares the readings frontend by
//! frontend (agree, differ: config, differ: health, unreachable), purely.
//!
//! # Module map
//!
//! - [`channel`]: the gRPC channel to a target (plain or TLS), lazy.
//! - [`servers`]: `--server a:9090,b=b.example:9090`, the list parsed.
//! - [`verdict`]: the agreement verdict per frontend across nodes.
//! - [`join`]: polling several futures at once, in order.

pub mod channel;
pub mod join;
pub mod servers;
pub mod verdict;

use std::time::Duration;

use tonic::transport::Channel;

use crate::cli::Target;
use crate::grpc::paging;
use crate::grpc::proto;
use crate::grpc::proto::maglev_client::MaglevClient;

pub use self::verdict::{Verdict, verdicts};

/// How long reading one node (its node info and every page of its
/// frontends) may take before it counts as unreachable.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One maglevd of the fleet: a name, where it is, and a client to it
/// (connected lazily; a lost connection is retried by the next call).
#[derive(Clone, Debug)]
pub struct Node {
    /// The name fleet views show (given as `name=addr`, else the address).
    pub name: String,
    /// Where it is and how to talk to it.
    pub target: Target,
    /// The gRPC client.
    pub client: MaglevClient<Channel>,
}

impl Node {
    /// A node named `name` at `target`; TLS files are read now, so a wrong
    /// one is an error naming it.
    pub fn new(name: &str, target: &Target) -> Result<Node, String> {
        Ok(Node {
            name: name.to_owned(),
            target: target.clone(),
            client: MaglevClient::new(channel::channel(target)?),
        })
    }
}

/// What one node said about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeReport {
    /// GetNode: its name, config fingerprint, version, drain state.
    pub node: proto::NodeInfo,
    /// Every frontend (all pages of ListFrontends), in its order.
    pub frontends: Vec<proto::FrontendInfo>,
}

/// One node's answer, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// It answered.
    Read(NodeReport),
    /// It did not answer (in time): the reason.
    Unreachable(String),
}

impl Reading {
    /// The report, if it answered.
    pub fn report(&self) -> Option<&NodeReport> {
        match self {
            Reading::Read(r) => Some(r),
            Reading::Unreachable(_) => None,
        }
    }
}

/// Reads `node`: GetNode and every page of ListFrontends, within
/// `timeout` in all. The error is the message to show for it.
pub async fn read(node: &Node, timeout: Duration) -> Result<NodeReport, String> {
    let client = node.client.clone();
    let fut = async move {
        let mut c = client.clone();
        let info = c.get_node(proto::GetNodeRequest {}).await?.into_inner();
        let list = paging::all_frontends(&client, Default::default()).await?;
        Ok::<_, tonic::Status>(NodeReport {
            node: info,
            frontends: list.frontends,
        })
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(s)) => Err(crate::cli::exec::server_message(&node.target, &s)),
        Err(_) => Err(format!(
            "maglevd at {} did not answer within {}s",
            node.target.server,
            timeout.as_secs()
        )),
    }
}

/// Reads every node at once, each within `timeout`; the readings are in
/// the nodes' order, and one that fails never blocks the others.
pub async fn read_all(nodes: &[Node], timeout: Duration) -> Vec<Reading> {
    join::join_all(nodes.iter().map(|n| async move {
        match read(n, timeout).await {
            Ok(r) => Reading::Read(r),
            Err(e) => Reading::Unreachable(e),
        }
    }))
    .await
}
