//! Errors to gRPC statuses, and the request checks every RPC shares.
//!
//! | [`DaemonError`] | code | why |
//! | --- | --- | --- |
//! | `NotFound` | `NOT_FOUND` | unknown frontend, pool, backend or health check |
//! | `InvalidArgument` | `INVALID_ARGUMENT` | a weight out of 0..=100, a bad level, an empty name |
//! | `FailedPrecondition` | `FAILED_PRECONDITION` | pausing a disabled backend; a sync held by warm-up |
//! | `Unavailable` | `UNAVAILABLE` | VPP disconnected, or VPP integration off |
//! | `Vpp` | `UNAVAILABLE` | VPP refused an op or the connection failed during it |
//! | `ShuttingDown` | `UNAVAILABLE` | maglevd is stopping |
//!
//! A VPP refusal is `UNAVAILABLE`, not `INTERNAL` or `ABORTED`: the
//! frontend stays dirty and the reconciler retries it with backoff, so the
//! condition is transient and a client retrying later is doing the right
//! thing. The message carries VPP's error (message name and retval).

use tonic::Status;

use crate::daemon::DaemonError;

/// The status for a refusal of the daemon; the message names the object.
pub fn status(e: DaemonError) -> Status {
    let message = e.to_string();
    match e {
        DaemonError::NotFound { .. } => Status::not_found(message),
        DaemonError::InvalidArgument(_) => Status::invalid_argument(message),
        DaemonError::FailedPrecondition(_) => Status::failed_precondition(message),
        DaemonError::Unavailable(_) | DaemonError::Vpp(_) | DaemonError::ShuttingDown => {
            Status::unavailable(message)
        }
    }
}

/// `name` itself, or `INVALID_ARGUMENT` naming the field when it is empty.
pub fn required<'a>(field: &str, name: &'a str) -> Result<&'a str, Status> {
    if name.is_empty() {
        Err(Status::invalid_argument(format!("{field} is empty")))
    } else {
        Ok(name)
    }
}

/// The level `log_level` names (`info` when empty), or `INVALID_ARGUMENT`.
pub fn log_level(text: &str) -> Result<tracing::Level, Status> {
    match text.to_ascii_lowercase().as_str() {
        "" | "info" => Ok(tracing::Level::INFO),
        "trace" => Ok(tracing::Level::TRACE),
        "debug" => Ok(tracing::Level::DEBUG),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" => Ok(tracing::Level::ERROR),
        _ => Err(Status::invalid_argument(format!(
            "log_level {text:?} is not one of trace, debug, info, warn, error"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn every_refusal_has_its_code_and_names_the_object() {
        let s = status(DaemonError::not_found("backend", "b9"));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "no backend named \"b9\"");
        let cases = [
            (
                DaemonError::InvalidArgument("w".into()),
                Code::InvalidArgument,
            ),
            (
                DaemonError::FailedPrecondition("p".into()),
                Code::FailedPrecondition,
            ),
            (DaemonError::Unavailable("u".into()), Code::Unavailable),
            (
                DaemonError::Vpp("lb_add_del_as retval -1".into()),
                Code::Unavailable,
            ),
            (DaemonError::ShuttingDown, Code::Unavailable),
        ];
        for (e, code) in cases {
            assert_eq!(status(e).code(), code);
        }
    }

    #[test]
    fn levels_and_empty_names() {
        assert_eq!(log_level("").unwrap(), tracing::Level::INFO);
        assert_eq!(log_level("DEBUG").unwrap(), tracing::Level::DEBUG);
        let e = log_level("loud").unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("\"loud\""), "{}", e.message());
        assert_eq!(required("name", "").unwrap_err().message(), "name is empty");
        assert_eq!(required("name", "a").unwrap(), "a");
    }
}
