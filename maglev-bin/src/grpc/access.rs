//! Who may call what. Every RPC of `maglev.proto` says whether it reads
//! or writes (`option (access)`); [`Guarded`] wraps the service and lets a
//! write through only when the daemon's policy allows it for the caller:
//!
//! - `--grpc-read-only`: no write, whoever asks;
//! - client certificates required (`--grpc-client-ca`): writes for the
//!   certificates that name an admin of `maglev.access` (read at each
//!   call, so a reload applies at once), reads for every other;
//! - otherwise every caller may write (the listener's reach is the
//!   protection: loopback by default).
//!
//! A denied write is answered `PERMISSION_DENIED` naming the RPC and the
//! caller, before the service sees it. Every write, denied or not, goes
//! to the [audit trail](crate::grpc::audit). An RPC without the option is
//! treated as a write, so a new RPC is never open to readers by mistake.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full, Limited};
use maglev_core::config;
use prost_reflect::Value;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use crate::daemon::{Handle, Settings};
use crate::grpc::audit::{self, Outcome};
use crate::grpc::metered::rpc_of;
use crate::grpc::proto::{self, Access};
use crate::transport::Peer;

/// The largest write request read (the audit trail records its
/// arguments); every write RPC's request is a few names and numbers.
pub const MAX_WRITE_REQUEST: usize = 64 * 1024;

/// The access of every RPC of service `full_name` (`package.Service`), as
/// `maglev.proto` marks it; [`Access::Unspecified`] where it does not.
pub fn rpc_access(full_name: &str) -> BTreeMap<String, Access> {
    let Ok(pool) = proto::descriptors() else {
        return BTreeMap::new();
    };
    let (Some(service), Some(option)) = (
        pool.get_service_by_name(full_name),
        pool.get_extension_by_name("maglev.access"),
    ) else {
        return BTreeMap::new();
    };
    service
        .methods()
        .map(|m| {
            let access = match *m.options().get_extension(&option) {
                Value::EnumNumber(n) => Access::try_from(n).unwrap_or(Access::Unspecified),
                _ => Access::Unspecified,
            };
            (m.name().to_owned(), access)
        })
        .collect()
}

/// The write RPCs of `maglev.Maglev` (every one not marked a read).
pub fn write_rpcs() -> Vec<String> {
    rpc_access("maglev.Maglev")
        .into_iter()
        .filter(|(_, a)| *a != Access::Read)
        .map(|(name, _)| name)
        .collect()
}

/// Which writes the daemon allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every caller may write.
    Open,
    /// Nobody may (`--grpc-read-only`).
    ReadOnly,
    /// Only the admins of `maglev.access`, by their client certificate.
    Admins,
}

impl Policy {
    /// The policy of a daemon started read-only or not, requiring client
    /// certificates or not. Read-only wins.
    pub fn new(read_only: bool, client_certificates: bool) -> Policy {
        match (read_only, client_certificates) {
            (true, _) => Policy::ReadOnly,
            (false, true) => Policy::Admins,
            (false, false) => Policy::Open,
        }
    }

    /// Whether `peer` may call `rpc`, a write; `Err` says why not, naming
    /// the RPC and the caller.
    pub fn allows(self, rpc: &str, peer: &Peer, access: &config::Access) -> Result<(), String> {
        match self {
            Policy::Open => Ok(()),
            Policy::ReadOnly => Err(format!(
                "{rpc} is a write RPC and maglevd is read-only (--grpc-read-only); denied to {}",
                peer.identity()
            )),
            Policy::Admins if access.is_admin(peer.names()) => Ok(()),
            Policy::Admins => Err(format!(
                "{rpc} is a write RPC and {} may only read (not in maglev.access.admins)",
                peer.identity()
            )),
        }
    }
}

/// Logs what an operator would want to know about `config`'s access
/// section under `settings`: that it is ignored without client
/// certificates, or that with them and no admin every client only reads.
pub fn warn_about(config: &config::Config, settings: &Settings) {
    let admins = &config.access().admins;
    let client_ca = settings
        .grpc_tls
        .as_ref()
        .is_some_and(|t| t.client_ca.is_some());
    if settings.grpc_read_only {
        return;
    }
    if client_ca && admins.is_empty() {
        tracing::warn!(
            "client certificates are required but maglev.access.admins is empty: every client may only read"
        );
    } else if !client_ca && !admins.is_empty() {
        tracing::warn!(
            "maglev.access.admins applies only with client certificates (--grpc-client-ca); every client that reaches the gRPC listener may write"
        );
    }
}

/// A service whose write RPCs are checked against the daemon's policy and
/// audited.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    handle: Handle,
    policy: Policy,
    access: Arc<BTreeMap<String, Access>>,
}

impl<S: NamedService> Guarded<S> {
    /// Guards `inner`, the service named `S::NAME` in `maglev.proto`, with
    /// `policy`.
    pub fn new(inner: S, handle: Handle, policy: Policy) -> Guarded<S> {
        Guarded {
            inner,
            handle,
            policy,
            access: Arc::new(rpc_access(S::NAME)),
        }
    }
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // Reads, and paths naming no RPC (answered UNIMPLEMENTED), go on.
        let rpc = match rpc_of(request.uri().path(), S::NAME)
            .and_then(|rpc| self.access.get_key_value(rpc))
        {
            Some((rpc, access)) if *access != Access::Read => rpc.clone(),
            _ => return Box::pin(self.inner.call(request)),
        };
        let peer = request
            .extensions()
            .get::<Peer>()
            .cloned()
            .unwrap_or_default();
        let verdict = self
            .policy
            .allows(&rpc, &peer, self.handle.config().access());
        // The ready service answers this call; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let handle = self.handle.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, MAX_WRITE_REQUEST).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let status = tonic::Status::resource_exhausted(format!(
                        "{rpc}: the request could not be read (at most {MAX_WRITE_REQUEST} bytes): {e}"
                    ));
                    audit::record(
                        &handle,
                        &rpc,
                        &peer.identity(),
                        peer.addr,
                        "(unread)",
                        &Outcome::of(&status),
                    );
                    return Ok(status.into_http());
                }
            };
            let args = audit::arguments(S::NAME, &rpc, &bytes);
            if let Err(why) = verdict {
                audit::record(
                    &handle,
                    &rpc,
                    &peer.identity(),
                    peer.addr,
                    &args,
                    &Outcome::Denied(why.clone()),
                );
                return Ok(tonic::Status::permission_denied(why).into_http());
            }
            let request = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
            let response = inner.call(request).await?;
            let outcome = tonic::Status::from_header_map(response.headers())
                .map_or(Outcome::Success, |s| Outcome::of(&s));
            audit::record(&handle, &rpc, &peer.identity(), peer.addr, &args, &outcome);
            Ok(response)
        })
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::CertNames;

    #[test]
    fn every_rpc_says_whether_it_reads_or_writes() {
        let access = rpc_access("maglev.Maglev");
        assert_eq!(access.len(), 24);
        let unmarked: Vec<_> = access
            .iter()
            .filter(|(_, a)| **a == Access::Unspecified)
            .collect();
        assert!(unmarked.is_empty(), "{unmarked:?}");
        assert_eq!(
            write_rpcs(),
            [
                "ClearOverride",
                "DisableBackend",
                "EnableBackend",
                "PauseBackend",
                "ReloadConfig",
                "ResumeBackend",
                "SetFrontendPoolBackendWeight",
                "SetNodeDrain",
                "SyncVPPLBState",
            ]
        );
        // Dry runs and checks read.
        assert_eq!(access["PlanSync"], Access::Read);
        assert_eq!(access["CheckConfig"], Access::Read);
        assert_eq!(access["WatchEvents"], Access::Read);
        assert_eq!(access["ListOverrides"], Access::Read);
        assert_eq!(access["ListAnnouncements"], Access::Read);
        assert_eq!(access["GetNode"], Access::Read);
    }

    fn peer(cn: Option<&str>) -> Peer {
        Peer {
            addr: Some("127.0.0.1:4000".parse().unwrap()),
            certificate: cn.map(|cn| {
                Arc::new(CertNames {
                    common_name: Some(cn.to_owned()),
                    alt_names: vec![format!("{cn}.ops.example")],
                })
            }),
        }
    }

    #[test]
    fn the_policy_names_the_rpc_and_the_caller() {
        let admins = config::Access {
            admins: ["alice".to_owned(), "carol.ops.example".to_owned()].into(),
        };
        assert_eq!(Policy::new(true, true), Policy::ReadOnly);
        let p = Policy::new(false, true);
        assert!(
            p.allows("PauseBackend", &peer(Some("alice")), &admins)
                .is_ok()
        );
        // A SAN is as good as the CN.
        assert!(
            p.allows("PauseBackend", &peer(Some("carol")), &admins)
                .is_ok()
        );
        assert_eq!(
            p.allows("PauseBackend", &peer(Some("bob")), &admins),
            Err(
                "PauseBackend is a write RPC and bob may only read (not in maglev.access.admins)"
                    .into()
            )
        );
        assert_eq!(
            Policy::ReadOnly.allows("ReloadConfig", &peer(None), &admins),
            Err("ReloadConfig is a write RPC and maglevd is read-only (--grpc-read-only); denied to 127.0.0.1".into())
        );
        assert!(
            Policy::new(false, false)
                .allows("ReloadConfig", &peer(None), &admins)
                .is_ok()
        );
    }
}
