//! Result codes (SPEC §16.1): the HAProxy family for probes and the
//! operator codes that label transitions an operator or a reload caused.

use std::fmt;
use std::str::FromStr;

/// Why a probe passed or failed, or what caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Layer 4 passed: TCP connected, or an ICMP echo reply came back.
    L4Ok,
    /// Layer 4 timed out: no TCP connection or no echo reply in time.
    L4Tout,
    /// Layer 4 refused: connection refused or reset, host or network
    /// unreachable (also an ICMP error in reply to an echo).
    L4Con,
    /// Layer 6 passed: the TLS handshake completed.
    L6Ok,
    /// Layer 6 timed out during the TLS handshake.
    L6Tout,
    /// Layer 6 failed: a TLS alert, a bad certificate or a protocol error.
    L6Rsp,
    /// Layer 7 passed: the HTTP status and body were as expected.
    L7Ok,
    /// Layer 7 timed out: the HTTP response (head or body) was not complete
    /// in time.
    L7Tout,
    /// Layer 7 malformed: the response could not be parsed, was too large,
    /// or its body did not match `response-regex`.
    L7Rsp,
    /// Layer 7 status: the HTTP status is not in `response-code`.
    L7Sts,
    /// The probe could not run: a local error (out of descriptors,
    /// buffers or memory, no free local port, entering the network
    /// namespace, creating the socket, permissions). It says nothing about
    /// the backend, so it never moves the rise/fall counter (see
    /// [`crate::probe::local`]); unlike HAProxy's, it is not a failure.
    SockErr,
    /// An operator paused health checking.
    Paused,
    /// An operator resumed health checking.
    Resumed,
    /// An operator disabled the backend.
    Disabled,
    /// An operator enabled the backend.
    Enabled,
    /// A config reload removed the backend.
    Removed,
    /// A config reload changed the backend's address (or the health check
    /// of a paused or disabled backend), so it starts over from `unknown`;
    /// or removed its health check, so it is static (our addition to the
    /// operator codes of §16.1).
    Reloaded,
    /// A static backend (no health check) is up without probing.
    Static,
    /// The state was restored from the state file at start (our addition):
    /// the probes still confirm it.
    Restored,
}

impl Code {
    /// Every code, in the order above.
    pub const ALL: [Code; 19] = [
        Code::L4Ok,
        Code::L4Tout,
        Code::L4Con,
        Code::L6Ok,
        Code::L6Tout,
        Code::L6Rsp,
        Code::L7Ok,
        Code::L7Tout,
        Code::L7Rsp,
        Code::L7Sts,
        Code::SockErr,
        Code::Paused,
        Code::Resumed,
        Code::Disabled,
        Code::Enabled,
        Code::Removed,
        Code::Reloaded,
        Code::Static,
        Code::Restored,
    ];

    /// The code as logged, exported and shown (`L7STS`, `paused`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::L4Ok => "L4OK",
            Code::L4Tout => "L4TOUT",
            Code::L4Con => "L4CON",
            Code::L6Ok => "L6OK",
            Code::L6Tout => "L6TOUT",
            Code::L6Rsp => "L6RSP",
            Code::L7Ok => "L7OK",
            Code::L7Tout => "L7TOUT",
            Code::L7Rsp => "L7RSP",
            Code::L7Sts => "L7STS",
            Code::SockErr => "SOCKERR",
            Code::Paused => "paused",
            Code::Resumed => "resumed",
            Code::Disabled => "disabled",
            Code::Enabled => "enabled",
            Code::Removed => "removed",
            Code::Reloaded => "reloaded",
            Code::Static => "static",
            Code::Restored => "restored",
        }
    }

    /// Whether this probe code is evidence about the backend, as opposed
    /// to `SOCKERR` (the probe could not run) or an operator code.
    pub fn is_evidence(self) -> bool {
        self.is_probe() && self != Code::SockErr
    }

    /// Whether this probe code is a pass (`L4OK`, `L6OK`, `L7OK`).
    pub fn is_pass(self) -> bool {
        matches!(self, Code::L4Ok | Code::L6Ok | Code::L7Ok)
    }

    /// Whether this is a probe code (as opposed to an operator code).
    pub fn is_probe(self) -> bool {
        matches!(
            self,
            Code::L4Ok
                | Code::L4Tout
                | Code::L4Con
                | Code::L6Ok
                | Code::L6Tout
                | Code::L6Rsp
                | Code::L7Ok
                | Code::L7Tout
                | Code::L7Rsp
                | Code::L7Sts
                | Code::SockErr
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the result codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown result code {0:?}")]
pub struct UnknownCode(pub String);

impl FromStr for Code {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Code::ALL {
            assert_eq!(c.as_str().parse::<Code>(), Ok(c));
        }
        assert_eq!("L8OK".parse::<Code>(), Err(UnknownCode("L8OK".into())));
    }

    #[test]
    fn passes_are_the_ok_codes() {
        let passes: Vec<_> = Code::ALL.into_iter().filter(|c| c.is_pass()).collect();
        assert_eq!(passes, [Code::L4Ok, Code::L6Ok, Code::L7Ok]);
        assert_eq!(Code::ALL.into_iter().filter(|c| c.is_probe()).count(), 11);
    }
}
