//! The dashboard's peers (`--peer NAME=ADDR`): a gRPC client per peer,
//! with this daemon's TLS client identity (`--peer-ca`, `--peer-cert`,
//! `--peer-key`), and a cache of each peer's last read so that any number
//! of browsers cost each peer one read per [`FRESH`]: one read at a time
//! per peer (the others wait for it and share it), bounded by
//! [`READ_TIMEOUT`]. A peer that cannot be reached is a read with an
//! error, cached as any other, so it costs no more than one that answers.
//! An event of the peer ([`super::peer_stream`]) makes the cached read
//! stale, so the page's reload on it sees the change (still at most one
//! read per [`FRESH_MIN`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Channel;

use crate::cli::Target;
use crate::daemon::settings::PeerAddr;
use crate::fleet::{self, Node, NodeReport, Reading};
use crate::grpc::proto::maglev_client::MaglevClient;
use crate::transport::client::ClientTls;

/// How long a peer's read is reused.
pub const FRESH: Duration = Duration::from_secs(2);

/// How long a read is reused at least, even after an event of the peer
/// made it stale: a flood of a peer's events costs it at most one read
/// per this, whatever the number of browsers.
pub const FRESH_MIN: Duration = Duration::from_millis(250);

/// The longest a peer's read (its node and every frontend) may take;
/// then it is unreachable until the next read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// What one read of a peer found: its node and frontends, or why not.
pub type PeerRead = Reading;

struct Cached {
    at: Instant,
    read: Arc<PeerRead>,
}

/// One peer: its name, address, client ([`fleet::Node`]) and cached read.
pub struct Peer {
    /// Its tab's name (`--peer NAME=…`).
    pub name: String,
    /// Its gRPC address.
    pub addr: String,
    node: Node,
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// An event of the peer came after the cached read.
    stale: std::sync::atomic::AtomicBool,
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
        let target = Target {
            server: peer.addr.clone(),
            tls: tls.cloned(),
        };
        let node = Node::new(&peer.name, &target)
            .map_err(|e| anyhow::anyhow!("--peer {}={}: {e}", peer.name, peer.addr))?;
        Ok(Peer {
            name: peer.name.clone(),
            addr: peer.addr.clone(),
            node,
            cache: tokio::sync::Mutex::new(None),
            stale: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A client of this peer (for writes and a frontend's detail).
    pub fn client(&self) -> MaglevClient<Channel> {
        self.node.client.clone()
    }

    /// Its last read if younger than [`FRESH`] and no event of the peer
    /// came since (or younger than [`FRESH_MIN`]), else a new one (one at
    /// a time: a caller arriving during a read waits for it and shares it).
    pub async fn read(&self) -> Arc<PeerRead> {
        use std::sync::atomic::Ordering;
        let mut slot = self.cache.lock().await;
        if let Some(c) = &*slot {
            let age = c.at.elapsed();
            if age < FRESH_MIN || (age < FRESH && !self.stale.load(Ordering::Relaxed)) {
                return c.read.clone();
            }
        }
        self.stale.store(false, Ordering::Relaxed);
        let read = Arc::new(match fleet::read(&self.node, READ_TIMEOUT).await {
            Ok(r) => Reading::Read(r),
            Err(e) => Reading::Unreachable(e),
        });
        *slot = Some(Cached {
            at: Instant::now(),
            read: read.clone(),
        });
        read
    }
}

impl Peer {
    /// Marks it unreachable for `why` (its event stream ended) until the
    /// next read after [`FRESH`].
    pub async fn mark_unreachable(&self, why: &str) {
        *self.cache.lock().await = Some(Cached {
            at: Instant::now(),
            read: Arc::new(Reading::Unreachable(why.to_owned())),
        });
    }

    /// An event of the peer came: the next read after [`FRESH_MIN`] asks
    /// the peer.
    pub fn mark_stale(&self) {
        self.stale.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets its cached read: the next one asks the peer (its event
    /// stream is open again).
    pub async fn forget_read(&self) {
        *self.cache.lock().await = None;
    }
}

/// The report of a read, `None` when unreachable.
pub fn report(read: &PeerRead) -> Option<&NodeReport> {
    read.report()
}

/// Why a read failed, `None` when it did not.
pub fn error(read: &PeerRead) -> Option<&str> {
    match read {
        Reading::Read(_) => None,
        Reading::Unreachable(e) => Some(e),
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
                    Arc::new(Reading::Unreachable("the read failed".to_owned()))
                });
                (p.clone(), r)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::settings::{PeerAddr, check_peers};

    #[test]
    fn peer_flags_are_checked_with_their_name() {
        let p: PeerAddr = "b=10.0.0.2:9090".parse().unwrap();
        assert_eq!((p.name.as_str(), p.addr.as_str()), ("b", "10.0.0.2:9090"));
        let p: PeerAddr = "r-2.x=[2001:db8::2]:9090".parse().unwrap();
        assert_eq!(p.addr, "[2001:db8::2]:9090");
        for (bad, says) in [
            ("b", "is not NAME=ADDR"),
            ("=h:1", "the name \"\""),
            ("a b=h:1", "the name \"a b\""),
            ("b=h", "is not host:port"),
            ("b=h:0", "is not host:port"),
            ("b=:9090", "is not host:port"),
        ] {
            let e = bad.parse::<PeerAddr>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let peers: Vec<PeerAddr> = ["b=h:1", "c=h:2", "b=h:3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let e = check_peers(&peers, None).unwrap_err();
        assert!(
            e.starts_with("--peer: ") && e.contains("\"b\" is given twice"),
            "{e}"
        );
        let e = check_peers(&peers[..2], Some("c")).unwrap_err();
        assert!(e.contains("--node-name"), "{e}");
        assert!(check_peers(&peers[..2], Some("a")).is_ok());
        let many: Vec<PeerAddr> = (0..=crate::daemon::settings::PEERS_MAX)
            .map(|i| format!("p{i}=h:1").parse().unwrap())
            .collect();
        assert!(check_peers(&many, None).unwrap_err().contains("more than"));
    }
}
