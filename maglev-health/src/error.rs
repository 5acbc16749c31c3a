//! The crate's error type. Probe failures are not errors: they are
//! [`ProbeResult`](crate::probe::ProbeResult)s with a failing code.

use maglev_core::state::BackendState;

use crate::machine::Action;

/// What went wrong in a call to this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No backend of that name is known to the checker.
    #[error("no backend named {0:?}")]
    NoBackend(String),
    /// The backend's state refuses the operator action (SPEC §3.3).
    #[error("cannot {action} backend {backend:?}: it is {state}")]
    Refused {
        /// The backend.
        backend: String,
        /// What was asked.
        action: Action,
        /// The state that refused it.
        state: BackendState,
    },
    /// A backend names a health check the config does not have.
    #[error("backend {backend:?} names health check {healthcheck:?}, which does not exist")]
    NoHealthCheck {
        /// The backend.
        backend: String,
        /// The missing health check.
        healthcheck: String,
    },
    /// `response-regex` does not compile.
    #[error("response-regex {pattern:?} does not compile: {source}")]
    BadRegex {
        /// The pattern.
        pattern: String,
        /// Why.
        source: regex::Error,
    },
    /// The HTTP request of a probe cannot be built from `path` and `host`.
    #[error("cannot build the HTTP request for path {path:?} and host {host:?}: {source}")]
    BadRequest {
        /// The request path.
        path: String,
        /// The Host header.
        host: String,
        /// Why.
        source: hyper::http::Error,
    },
    /// The TLS server name is not a valid DNS name or address.
    #[error("server-name {0:?} is not a valid DNS name or IP address")]
    BadServerName(String),
    /// The TLS client configuration could not be built.
    #[error("TLS configuration: {0}")]
    TlsConfig(rustls::Error),
    /// The checker was started outside a tokio runtime.
    #[error("the checker must be started inside a tokio runtime")]
    NoRuntime,
    /// The checker was shut down.
    #[error("the checker is shut down")]
    Shutdown,
}
