//! A hook told about every API message a [`Client`](super::client::Client)
//! sends and every answer it gets, for counters such as
//! `maglev_vpp_api_total{msg,direction,result}` (SPEC §5.1).
//!
//! Set it with [`ClientConfig::observer`](super::client::ClientConfig::observer);
//! without one the client does no work for it. It is called outside the
//! client's locks, on the task that saw the event (the connection's writer
//! for sends, the caller's task for answers), so it must be quick: count,
//! do not block.
//!
//! What is reported:
//!
//! - [`Direction::Sent`] once per request when its frame has been written
//!   ([`ApiResult::Ok`]) or the write failed ([`ApiResult::Closed`]). A
//!   dump counts once (the `control_ping` that ends it is not reported on
//!   its own). The handshake's `sockclnt_create` and the goodbye
//!   `sockclnt_delete` are reported too.
//! - [`Direction::Received`] once per awaited request, named by the reply
//!   (or, for a dump, the details) message: `Ok`, a non-zero `Retval`,
//!   `Timeout`, `Closed`, or `Invalid` (undecodable or unexpected answer).
//!   A request whose handle was dropped unawaited reports no answer.

use super::error::Retval;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From maglev to VPP.
    Sent,
    /// From VPP to maglev (or the lack of it: timeout, closed).
    Received,
}

impl Direction {
    /// `send` or `recv`, the label values of `maglev_vpp_api_total`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Sent => "send",
            Direction::Received => "recv",
        }
    }
}

/// How a message fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiResult {
    /// Written; or answered with retval 0 (a dump: ended normally).
    Ok,
    /// Answered with a non-zero retval.
    Retval(Retval),
    /// No answer before the request's deadline.
    Timeout,
    /// The connection ended first (or the write failed).
    Closed,
    /// The answer did not decode, or was of another kind.
    Invalid,
}

impl ApiResult {
    /// Whether this counts as a success (`result="success"`).
    pub fn is_ok(self) -> bool {
        self == ApiResult::Ok
    }
}

/// One message event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiEvent {
    /// VPP's message name (`lb_add_del_as_v2`, `lb_vip_details`, ...).
    pub message: &'static str,
    /// Which way.
    pub direction: Direction,
    /// How it fared.
    pub result: ApiResult,
}

/// Told about every [`ApiEvent`] of a client's connections.
pub trait ApiObserver: Send + Sync + 'static {
    /// One event; called outside the client's locks, must not block.
    fn event(&self, event: ApiEvent);
}
