//! maglevd's kernel routing table (`maglev.announce.table`), through
//! netlink: one blackhole route per announced VIP prefix, marked with
//! maglevd's route protocol number, optionally in another network
//! namespace (where the routing daemon runs).
//!
//! - [`KernelTable`]: the [`RouteTable`] over netlink;
//! - `connection`: the route socket (in a namespace, from a dedicated
//!   thread) and the task driving it;
//! - `messages`: the route messages, built and read as pure code.
//!
//! Only routes of our table **and** our protocol are listed, changed or
//! removed: a route another protocol put in the same table is left alone,
//! and a prefix it holds is an error to add rather than taken over. Every
//! request is bounded by [`REQUEST_TIMEOUT`].

mod connection;
mod messages;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use maglev_core::announce::Prefix;
use maglev_core::config::AnnounceConfig;
use netlink_packet_route::AddressFamily;
use rtnetlink::Error as NlError;
use tokio_stream::StreamExt;

use self::connection::Connection;
use self::messages::{Owner, errno_words};
use super::table::{RouteError, RouteTable};

/// How long one netlink request (or opening the socket) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The netlink errno codes the table expects.
const EEXIST: i32 = nix::libc::EEXIST;
const ESRCH: i32 = nix::libc::ESRCH;
const ENOENT: i32 = nix::libc::ENOENT;

/// A kernel routing table holding maglevd's routes. Dropping it closes its
/// netlink socket and ends the task driving it; the routes stay (they are
/// kernel state).
#[derive(Debug)]
pub struct KernelTable {
    owner: Owner,
    netns: Option<String>,
    conn: Connection,
}

impl KernelTable {
    /// Opens a netlink connection to the table `config` names (in its
    /// network namespace, if any). Must be called inside a tokio runtime.
    pub async fn open(config: &AnnounceConfig) -> Result<KernelTable, RouteError> {
        let owner = Owner {
            table: config.table,
            protocol: config.protocol,
        };
        let describe = describe(owner, config.netns.as_deref());
        let fail = |message: String| RouteError {
            table: describe.clone(),
            action: "open".to_owned(),
            message,
        };
        let conn = tokio::time::timeout(REQUEST_TIMEOUT, connection::open(config.netns.as_deref()))
            .await
            .map_err(|_| fail(no_answer()))?
            .map_err(fail)?;
        Ok(KernelTable {
            owner,
            netns: config.netns.clone(),
            conn,
        })
    }

    fn error(&self, action: impl Into<String>, message: String) -> RouteError {
        RouteError {
            table: self.describe(),
            action: action.into(),
            message,
        }
    }

    /// Runs one request within [`REQUEST_TIMEOUT`].
    async fn bounded<T>(
        &self,
        action: &str,
        request: impl Future<Output = Result<T, NlError>>,
    ) -> Result<Result<T, NlError>, RouteError> {
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| self.error(action, no_answer()))
    }

    /// Our routes of one family.
    async fn dump(
        &self,
        family: AddressFamily,
        into: &mut BTreeSet<Prefix>,
    ) -> Result<(), NlError> {
        let mut routes = self
            .conn
            .handle()
            .route()
            .get(self.owner.dump(family))
            .execute();
        while let Some(route) = routes.next().await {
            match route {
                Ok(m) => into.extend(self.owner.ours(&m)),
                // A strict dump of a table that does not exist yet (never
                // held a route): nothing of ours.
                Err(e) if errno(&e) == Some(ENOENT) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether our route of `prefix` is in the table.
    async fn holds(&self, prefix: Prefix) -> Result<bool, RouteError> {
        Ok(self.list().await?.contains(&prefix))
    }
}

#[async_trait]
impl RouteTable for KernelTable {
    fn describe(&self) -> String {
        describe(self.owner, self.netns.as_deref())
    }

    fn in_memory(&self) -> bool {
        false
    }

    async fn list(&self) -> Result<BTreeSet<Prefix>, RouteError> {
        let action = "list";
        let mut routes = BTreeSet::new();
        let both = async {
            self.dump(AddressFamily::Inet, &mut routes).await?;
            self.dump(AddressFamily::Inet6, &mut routes).await
        };
        self.bounded(action, both)
            .await?
            .map_err(|e| self.error(action, words(&e)))?;
        Ok(routes)
    }

    async fn add(&self, prefix: Prefix) -> Result<(), RouteError> {
        let action = format!("add {prefix}");
        // Create, never replace: a replace would take over a route another
        // protocol holds at the same prefix.
        let create = self
            .conn
            .handle()
            .route()
            .add(self.owner.route(prefix))
            .execute();
        match self.bounded(&action, create).await? {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => {
                // Ours already (idempotent), or another protocol's.
                if self.holds(prefix).await? {
                    Ok(())
                } else {
                    Err(self.error(
                        action,
                        format!(
                            "a route of another protocol holds {prefix} in table {}; \
                             left alone (remove it or choose another table)",
                            self.owner.table
                        ),
                    ))
                }
            }
            Err(e) => Err(self.error(action, words(&e))),
        }
    }

    async fn remove(&self, prefix: Prefix) -> Result<(), RouteError> {
        let action = format!("remove {prefix}");
        let delete = self
            .conn
            .handle()
            .route()
            .del(self.owner.delete(prefix))
            .execute();
        match self.bounded(&action, delete).await? {
            Ok(()) => Ok(()),
            // No route of ours there (none at all, or another protocol's).
            Err(e) if matches!(errno(&e), Some(ESRCH | ENOENT)) => Ok(()),
            Err(e) => Err(self.error(action, words(&e))),
        }
    }
}

fn describe(owner: Owner, netns: Option<&str>) -> String {
    let Owner { table, protocol } = owner;
    match netns {
        Some(ns) => format!("kernel table {table} (protocol {protocol}) in netns {ns}"),
        None => format!("kernel table {table} (protocol {protocol})"),
    }
}

fn no_answer() -> String {
    format!(
        "no answer from the kernel within {}s",
        REQUEST_TIMEOUT.as_secs()
    )
}

/// The errno of a netlink error reply, positive.
fn errno(e: &NlError) -> Option<i32> {
    match e {
        NlError::NetlinkError(m) => m.code.map(|c| c.get().saturating_abs()),
        _ => None,
    }
}

fn words(e: &NlError) -> String {
    match e {
        NlError::NetlinkError(m) => match m.code {
            Some(c) => errno_words(c.get()),
            None => "unexpected acknowledgement".to_owned(),
        },
        NlError::RequestFailed => "the netlink connection is closed".to_owned(),
        other => other.to_string(),
    }
}

/// Reads `data` as a route message of a dump, as [`KernelTable::list`]
/// does, and returns its prefix if it is a route of table 200 and protocol
/// 201: for the fuzz target (a prefix, or nothing; never a panic).
pub(crate) fn dumped_prefix(data: &[u8]) -> Option<Prefix> {
    use rtnetlink::packet_core::Parseable;
    let m = netlink_packet_route::route::RouteMessage::parse(data).ok()?;
    Owner {
        table: 200,
        protocol: 201,
    }
    .ours(&m)
}

/// The bytes of the route `prefix` (`192.0.2.1/32`) of table 200 and
/// protocol 201, as the kernel dumps it: the fuzz entry's seed.
#[cfg(test)]
pub(crate) fn emitted_route(prefix: &str) -> Vec<u8> {
    use rtnetlink::packet_core::Emitable;
    let (addr, len) = prefix.split_once('/').expect("a prefix");
    let m = Owner {
        table: 200,
        protocol: 201,
    }
    .route(Prefix {
        addr: addr.parse().expect("an address"),
        len: len.parse().expect("a length"),
    });
    let mut buf = vec![0; m.buffer_len()];
    m.emit(&mut buf);
    buf
}
