//! The dashboard's peers (`--peer NAME=ADDR`): a gRPC client per peer,
//! with this daemon's TLS client identity (`--peer-ca`, `--peer-cert`,
//! `--peer-key`), and a cache of each peer's last read so that any number
//! of browsers cost each peer one read per [`FRESH`]: one read at a time
//! per peer (the others wait for it and share it), bounded by
//! [`READ_TIMEOUT`]. A peer that cannot be reached is a read with an
//! error, cached as any other, so it costs no more than one that answers.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::daemon::settings::PeerAddr;
use crate::grpc::paging;
use crate::grpc::proto::{self, maglev_client::MaglevClient};
use crate::transport::client::{ClientTls, Connector};

/// How long a peer's read is reused.
pub const FRESH: Duration = Duration::from_secs(2);

/// The longest a peer's read (its node and every frontend) may take;
/// then it is unreachable until the next read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest a connection to a peer may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What one read of a peer found.
#[derive(Debug, Clone, Default)]
pub struct PeerRead {
    /// Its node (`GetNode`); `None` when it could not be reached.
    pub node: Option<proto::NodeInfo>,
    /// Every frontend (`ListFrontends`, every page).
    pub frontends: Vec<proto::FrontendInfo>,
    /// Why it could not be read; `None` when it was.
    pub error: Option<String>,
}

struct Cached {
    at: Instant,
    read: Arc<PeerRead>,
}

/// One peer: its name, address, client and cached read.
pub struct Peer {
    /// Its tab's name (`--peer NAME=…`).
    pub name: String,
    /// Its gRPC address.
    pub addr: String,
    client: MaglevClient<Channel>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A peer at `peer.addr`, over TLS with `tls`; nothing is connected
    /// until the first read, and a lost connection is retried by the next
    /// one. TLS files are read now: a bad one fails, naming it.
    pub fn new(peer: &PeerAddr, tls: Option<&ClientTls>) -> anyhow::Result<Peer> {
        let uri = if tls.is_some() {
            format!("https://{}", peer.addr)
        } else {
            format!("http://{}", peer.addr)
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| anyhow::anyhow!("--peer {}={}: {e}", peer.name, peer.addr))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .tcp_nodelay(true);
        let channel = match tls {
            Some(tls) => {
                let connector = Connector::new(tls, &peer.addr)
                    .map_err(|e| anyhow::anyhow!("--peer {}: {e}", peer.name))?;
                endpoint.connect_with_connector_lazy(connector)
            }
            None => endpoint.connect_lazy(),
        };
        Ok(Peer {
            name: peer.name.clone(),
            addr: peer.addr.clone(),
            client: MaglevClient::new(channel),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// A client of this peer (for writes and a frontend's detail).
    pub fn client(&self) -> MaglevClient<Channel> {
        self.client.clone()
    }

    /// Its last read if younger than [`FRESH`], else a new one (one at a
    /// time: a caller arriving during a read waits for it and shares it).
    pub async fn read(&self) -> Arc<PeerRead> {
        let mut slot = self.cache.lock().await;
        if let Some(c) = &*slot
            && c.at.elapsed() < FRESH
        {
            return c.read.clone();
        }
        let read = Arc::new(self.fetch().await);
        *slot = Some(Cached {
            at: Instant::now(),
            read: read.clone(),
        });
        read
    }

    async fn fetch(&self) -> PeerRead {
        let mut client = self.client.clone();
        let work = async {
            let node = client
                .get_node(proto::GetNodeRequest::default())
                .await?
                .into_inner();
            let frontends = paging::all_frontends(&client, Default::default()).await?;
            Ok::<_, tonic::Status>((node, frontends.frontends))
        };
        match tokio::time::timeout(READ_TIMEOUT, work).await {
            Ok(Ok((node, frontends))) => PeerRead {
                node: Some(node),
                frontends,
                error: None,
            },
            Ok(Err(status)) => PeerRead {
                error: Some(unreachable_why(&status)),
                ..PeerRead::default()
            },
            Err(_) => PeerRead {
                error: Some(format!(
                    "no answer within {} s",
                    READ_TIMEOUT.as_secs()
                )),
                ..PeerRead::default()
            },
        }
    }
}

/// A failed read's reason, short.
fn unreachable_why(status: &tonic::Status) -> String {
    let msg = status.message();
    if msg.is_empty() {
        format!("{:?}", status.code())
    } else {
        msg.to_owned()
    }
}

/// Every peer, in `--peer` order.
#[derive(Debug, Default)]
pub struct Peers {
    list: Vec<Arc<Peer>>,
}

impl Peers {
    /// The peers of `--peer`, with the identity of `tls`.
    pub fn new(peers: &[PeerAddr], tls: Option<&ClientTls>) -> anyhow::Result<Peers> {
        let list = peers
            .iter()
            .map(|p| Peer::new(p, tls).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        Ok(Peers { list })
    }

    /// Every peer.
    pub fn all(&self) -> &[Arc<Peer>] {
        &self.list
    }

    /// The peer named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Peer>> {
        self.list.iter().find(|p| p.name == name)
    }

    /// Every peer's read, in order, read at once (each bounded by
    /// [`READ_TIMEOUT`]).
    pub async fn read_all(&self) -> Vec<(Arc<Peer>, Arc<PeerRead>)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in self.list.iter().enumerate() {
            let p = p.clone();
            set.spawn(async move { (i, p.read().await) });
        }
        let mut reads: Vec<Option<Arc<PeerRead>>> = vec![None; self.list.len()];
        while let Some(r) = set.join_next().await {
            if let Ok((i, read)) = r {
                reads[i] = Some(read);
            }
        }
        self.list
            .iter()
            .zip(reads)
            .map(|(p, r)| {
                let r = r.unwrap_or_else(|| {
                    Arc::new(PeerRead {
                        error: Some("the read failed".to_owned()),
                        ..PeerRead::default()
                    })
                });
                (p.clone(), r)
            })
            .collect()
    }
}
