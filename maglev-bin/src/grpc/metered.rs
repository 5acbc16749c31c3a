//! Counting every request: a service wrapped around the generated
//! `MaglevServer` that reports each request's method and status code to
//! [`Metrics::grpc_request`](crate::metrics::Metrics::grpc_request).
//!
//! The method is the RPC name (`ListFrontends`); a path naming no RPC of
//! `maglev.Maglev` counts as `unknown`, so a client cannot grow the label
//! set. The code is the one of the response head: the status of a failed
//! call (tonic sends those as trailers-only responses), `OK` otherwise. A
//! stream that later ends in an error is counted by how it opened.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use crate::daemon::Handle;
use crate::grpc::proto;

/// The label of a path that names no RPC.
pub const UNKNOWN_METHOD: &str = "unknown";

/// A service whose requests are counted.
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    handle: Handle,
    methods: Arc<BTreeSet<String>>,
}

impl<S: NamedService> Metered<S> {
    /// Wraps `inner`, the service named `S::NAME` in `maglev.proto`.
    pub fn new(inner: S, handle: Handle) -> Metered<S> {
        Metered {
            inner,
            handle,
            methods: Arc::new(rpc_names(S::NAME)),
        }
    }
}

/// The RPC names of service `full_name` (`package.Service`) in
/// `maglev.proto`.
pub fn rpc_names(full_name: &str) -> BTreeSet<String> {
    proto::descriptors()
        .ok()
        .and_then(|pool| pool.get_service_by_name(full_name))
        .map(|s| s.methods().map(|m| m.name().to_owned()).collect())
        .unwrap_or_default()
}

/// The RPC a request path names in service `service` (`/maglev.Maglev/ListFrontends`
/// → `ListFrontends`), whether the service has it or not.
pub(crate) fn rpc_of<'a>(path: &'a str, service: &str) -> Option<&'a str> {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(service))
        .and_then(|p| p.strip_prefix('/'))
}

/// The status code of a response head.
fn code_of(response: &http::Response<Body>) -> tonic::Code {
    response
        .headers()
        .get("grpc-status")
        .map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes()))
}

impl<S> Service<http::Request<Body>> for Metered<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
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
        let method = rpc_of(request.uri().path(), S::NAME)
            .filter(|m| self.methods.contains(*m))
            .unwrap_or(UNKNOWN_METHOD)
            .to_owned();
        let handle = self.handle.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            handle.metrics().grpc_request(&method, code_of(&response));
            Ok(response)
        })
    }
}

impl<S: NamedService> NamedService for Metered<S> {
    const NAME: &'static str = S::NAME;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_proto_is_known() {
        let names = rpc_names("maglev.Maglev");
        assert_eq!(names.len(), 24, "{names:?}");
        assert!(names.contains("SetNodeDrain"));
        assert!(names.contains("ListFrontends"));
        assert!(names.contains("GetVPPLBCounters"));
        assert!(rpc_names("maglev.Other").is_empty());
    }
}
