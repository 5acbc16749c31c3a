//! What the daemon's handle refuses, by whose fault: the gRPC layer maps
//! each variant to one status code, and every message names the object.

use maglev_core::config::WeightChangeError;

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// No object of that kind has that name.
    #[error("no {kind} named {name:?}")]
    NotFound {
        /// `frontend`, `pool`, `backend` or `health check`.
        kind: &'static str,
        /// The name asked for (for a pool, `frontend/pool`).
        name: String,
    },
    /// The request itself is malformed (a weight out of range, a bad level).
    #[error("{0}")]
    InvalidArgument(String),
    /// The object's state refuses the action (pausing a disabled backend).
    #[error("{0}")]
    FailedPrecondition(String),
    /// VPP is not connected, or VPP integration is off.
    #[error("{0}")]
    Unavailable(String),
    /// VPP refused an operation or the connection failed during it.
    #[error("VPP: {0}")]
    Vpp(String),
    /// The daemon is shutting down.
    #[error("maglevd is shutting down")]
    ShuttingDown,
}

impl DaemonError {
    /// `kind` `name` does not exist.
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> DaemonError {
        DaemonError::NotFound {
            kind,
            name: name.into(),
        }
    }
}

impl From<WeightChangeError> for DaemonError {
    fn from(e: WeightChangeError) -> Self {
        match e {
            WeightChangeError::OutOfRange { .. } => DaemonError::InvalidArgument(e.to_string()),
            WeightChangeError::NoFrontend(name) => DaemonError::not_found("frontend", name),
            WeightChangeError::NoPool { frontend, pool } => {
                DaemonError::not_found("pool", format!("{frontend}/{pool}"))
            }
            WeightChangeError::NoMember {
                frontend,
                pool,
                backend,
            } => DaemonError::not_found("backend", format!("{frontend}/{pool}/{backend}")),
            other => DaemonError::InvalidArgument(other.to_string()),
        }
    }
}

impl From<maglev_health::Error> for DaemonError {
    fn from(e: maglev_health::Error) -> Self {
        match e {
            maglev_health::Error::NoBackend(name) => DaemonError::not_found("backend", name),
            maglev_health::Error::Refused { .. } => DaemonError::FailedPrecondition(e.to_string()),
            maglev_health::Error::Shutdown => DaemonError::ShuttingDown,
            other => DaemonError::InvalidArgument(other.to_string()),
        }
    }
}
