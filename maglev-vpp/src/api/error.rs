//! The crate's error type: who was at fault, with the input that failed.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::codec::DecodeError;
use super::frame::FrameError;
use super::table::IdProblem;

/// A VPP `retval` (`VNET_API_ERROR_*`), with names for the ones maglev meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retval(pub i32);

impl Retval {
    /// -1: unspecified (also a failed CLI command).
    pub const UNSPECIFIED: Retval = Retval(-1);
    /// -3: no such FIB table.
    pub const NO_SUCH_FIB: Retval = Retval(-3);
    /// -6: no such entry (unknown VIP or AS).
    pub const NO_SUCH_ENTRY: Retval = Retval(-6);
    /// -7: invalid value.
    pub const INVALID_VALUE: Retval = Retval(-7);
    /// -70: invalid memory size (a length that is not a power of two).
    pub const INVALID_MEMORY_SIZE: Retval = Retval(-70);
    /// -73: invalid argument.
    pub const INVALID_ARGUMENT: Retval = Retval(-73);
    /// -81: the entry already exists.
    pub const VALUE_EXIST: Retval = Retval(-81);
    /// -97: address family does not match.
    pub const INVALID_ADDRESS_FAMILY: Retval = Retval(-97);

    /// VPP's name of the code, if maglev knows it.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Retval::UNSPECIFIED => "unspecified error",
            Retval::NO_SUCH_FIB => "no such FIB",
            Retval::NO_SUCH_ENTRY => "no such entry",
            Retval::INVALID_VALUE => "invalid value",
            Retval::INVALID_MEMORY_SIZE => "invalid memory size",
            Retval::INVALID_ARGUMENT => "invalid argument",
            Retval::VALUE_EXIST => "value already exists",
            Retval::INVALID_ADDRESS_FAMILY => "invalid address family",
            _ => return None,
        })
    }
}

impl fmt::Display for Retval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// VPP closed the socket.
    Eof,
    /// Reading or writing the socket failed.
    Io(io::ErrorKind),
    /// VPP sent bytes that are not frames.
    Frame(FrameError),
    /// The client was closed or replaced by a reconnect.
    Closed,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Eof => f.write_str("VPP closed the socket"),
            DisconnectReason::Io(k) => write!(f, "socket error: {k}"),
            DisconnectReason::Frame(e) => write!(f, "bad framing: {e}"),
            DisconnectReason::Closed => f.write_str("connection closed by the client"),
        }
    }
}

/// Everything that can go wrong talking to VPP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket could not be connected.
    #[error("connecting to the VPP API socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The `sockclnt_create` handshake failed.
    #[error("VPP API handshake on {path}: {problem}")]
    Handshake {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        problem: HandshakeProblem,
    },
    /// VPP lacks messages maglev uses, or has other definitions of them.
    #[error("VPP {vpp_version} is not compatible: {}", join(problems))]
    Incompatible {
        /// VPP's version (from `show_version`), or `unknown`.
        vpp_version: String,
        /// Every message that cannot be used.
        problems: Vec<IdProblem>,
    },
    /// The connection ended before the reply came.
    #[error("{message}: {reason}")]
    Disconnected {
        /// The request that was waiting.
        message: &'static str,
        /// Why the connection ended.
        reason: DisconnectReason,
    },
    /// No reply in time (VPP drops malformed or unknown messages silently).
    #[error("{message}: no reply from VPP within {after:?}")]
    Timeout {
        /// The request.
        message: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The request could not be written in time (our own queue, or a
    /// socket VPP does not read): it was never sent.
    #[error("{message}: not sent to VPP within {after:?} (client queue full)")]
    NotSent {
        /// The request.
        message: &'static str,
        /// The queue timeout.
        after: Duration,
    },
    /// VPP answered with an error code.
    #[error("{message}: VPP returned {retval}")]
    Retval {
        /// The request.
        message: &'static str,
        /// The code.
        retval: Retval,
    },
    /// A reply did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A dump's details passed the client's limit (a VPP that never ends
    /// its dump).
    #[error("{message}: details of {bytes} bytes exceed the {limit}-byte limit of a dump")]
    DumpTooLarge {
        /// The dump.
        message: &'static str,
        /// Bytes received when it was stopped.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A request was answered by a message of another kind.
    #[error("{message}: answered by unexpected message id {msg_id}")]
    UnexpectedReply {
        /// The request.
        message: &'static str,
        /// The id that came.
        msg_id: u16,
    },
    /// `show lb vips verbose` did not parse.
    #[error("parsing `show lb vips verbose`: {0}")]
    VipsText(#[from] crate::lb::vips_text::VipsTextError),
    /// VPP's answers contradict each other (e.g. a VIP in `lb_vip_dump`
    /// missing from `show lb vips verbose`): state changed under us.
    #[error(
        "inconsistent VPP state: VIP {vip} is in lb_vip_dump but not in `show lb vips verbose`"
    )]
    Inconsistent {
        /// The VIP.
        vip: maglev_core::dataplane::VipKey,
    },
}

fn join(problems: &[IdProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What went wrong in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeProblem {
    /// The first frame was not `sockclnt_create_reply` (id 16).
    WrongReply {
        /// The id that came.
        msg_id: u16,
    },
    /// `response` was not 0.
    Refused {
        /// The response.
        response: i32,
    },
    /// The reply did not decode.
    Decode(DecodeError),
    /// The socket closed or failed during the handshake.
    Disconnected(DisconnectReason),
    /// No reply in time.
    Timeout(Duration),
}

impl fmt::Display for HandshakeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeProblem::WrongReply { msg_id } => {
                write!(f, "expected sockclnt_create_reply (id 16), got id {msg_id}")
            }
            HandshakeProblem::Refused { response } => {
                write!(f, "sockclnt_create refused with response {response}")
            }
            HandshakeProblem::Decode(e) => e.fmt(f),
            HandshakeProblem::Disconnected(r) => r.fmt(f),
            HandshakeProblem::Timeout(t) => write!(f, "no sockclnt_create_reply within {t:?}"),
        }
    }
}

impl Error {
    /// The VPP retval, if this is one.
    pub fn retval(&self) -> Option<Retval> {
        match self {
            Error::Retval { retval, .. } => Some(*retval),
            _ => None,
        }
    }

    /// Whether the connection is gone (reconnect before retrying).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected { .. })
    }
}
