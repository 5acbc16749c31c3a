//! Probes that could not run: which errors are ours and which are
//! evidence about the backend.
//!
//! A probe that fails because of *our* resources or setup (no descriptor
//! left, no buffer, no memory, no free local port, a socket we may not
//! open, a namespace we cannot enter) says nothing about the backend. Such
//! a result has the code `SOCKERR` and a [`LocalCause`]; the checker never
//! feeds it to the rise/fall machine (the backend keeps its state, and so
//! its weight), retries at the next interval and makes the condition
//! visible. Only what the network or the backend answered (refused, reset,
//! unreachable, timed out, a bad TLS or HTTP reply) is evidence.
//!
//! The split is by errno, so it is explicit: [`evidence`] lists what a
//! connect, send or receive error tells about the target; everything else
//! an operation on our own socket returns is local.

use std::fmt;
use std::io;

use nix::errno::Errno;

use crate::code::Code;
use crate::netns::SocketError;

/// Why a probe could not run: a small closed set, the `reason` label of
/// `maglev_probe_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocalCause {
    /// The process or the system is out of file descriptors (`EMFILE`,
    /// `ENFILE`).
    FdLimit,
    /// The kernel had no buffer space (`ENOBUFS`).
    NoBuffers,
    /// Out of memory (`ENOMEM`).
    NoMemory,
    /// No local address and port was free to connect from
    /// (`EADDRNOTAVAIL`, `EAGAIN` on connect: ephemeral ports exhausted).
    NoPorts,
    /// The system refused us the socket or the packet (`EPERM`, `EACCES`:
    /// a raw ICMP socket without `CAP_NET_RAW`, a local firewall rule).
    Permission,
    /// The health checker's network namespace could not be entered.
    Netns,
    /// Any other local error creating, setting up or using our socket.
    LocalSocket,
}

impl LocalCause {
    /// Every cause, in the order above.
    pub const ALL: [LocalCause; 7] = [
        LocalCause::FdLimit,
        LocalCause::NoBuffers,
        LocalCause::NoMemory,
        LocalCause::NoPorts,
        LocalCause::Permission,
        LocalCause::Netns,
        LocalCause::LocalSocket,
    ];

    /// The cause as exported and shown (`fd_limit`, `netns`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LocalCause::FdLimit => "fd_limit",
            LocalCause::NoBuffers => "no_buffers",
            LocalCause::NoMemory => "no_memory",
            LocalCause::NoPorts => "no_ports",
            LocalCause::Permission => "permission",
            LocalCause::Netns => "netns",
            LocalCause::LocalSocket => "local_socket",
        }
    }

    /// The cause of a local error `e` (creating a socket, setting an
    /// option, or an errno [`evidence`] does not claim).
    pub fn of_io(e: &io::Error) -> LocalCause {
        let Some(errno) = e.raw_os_error().map(Errno::from_raw) else {
            return match e.kind() {
                io::ErrorKind::OutOfMemory => LocalCause::NoMemory,
                io::ErrorKind::PermissionDenied => LocalCause::Permission,
                _ => LocalCause::LocalSocket,
            };
        };
        match errno {
            Errno::EMFILE | Errno::ENFILE => LocalCause::FdLimit,
            Errno::ENOBUFS => LocalCause::NoBuffers,
            Errno::ENOMEM => LocalCause::NoMemory,
            // Probes bind no source address, so EADDRNOTAVAIL from connect
            // means no local (address, port) pair was free: the ephemeral
            // ports are exhausted, which is our load, not the backend's
            // health (Linux says EAGAIN for the same on some paths). Were
            // a configured source address ever to vanish, that too would
            // be a fact about this host, made visible as a blocked probe
            // rather than a backend going down.
            Errno::EADDRNOTAVAIL | Errno::EAGAIN => LocalCause::NoPorts,
            Errno::EPERM | Errno::EACCES => LocalCause::Permission,
            _ => LocalCause::LocalSocket,
        }
    }

    /// The cause of a socket that could not be had.
    pub fn of_socket(e: &SocketError) -> LocalCause {
        match e {
            SocketError::EnterNetns { .. } | SocketError::ThreadGone(_) => LocalCause::Netns,
            SocketError::Create(e) => LocalCause::of_io(e),
        }
    }
}

impl fmt::Display for LocalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connect, send or receive error tells about the target: `L4CON`
/// when the network or the peer refused or could not reach it, `L4TOUT`
/// when the kernel gave up waiting; `None` when the error is ours (see
/// [`LocalCause::of_io`]).
pub fn evidence(e: &io::Error) -> Option<Code> {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown => return Some(Code::L4Con),
        K::TimedOut => return Some(Code::L4Tout),
        _ => {}
    }
    // What std has no kind for: the peer's host is down (an ICMP error
    // the kernel reports as such).
    match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EHOSTDOWN) => Some(Code::L4Con),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno as i32)
    }

    #[test]
    fn our_resources_are_local_and_what_the_peer_did_is_evidence() {
        for (errno, cause) in [
            (Errno::EMFILE, LocalCause::FdLimit),
            (Errno::ENFILE, LocalCause::FdLimit),
            (Errno::ENOBUFS, LocalCause::NoBuffers),
            (Errno::ENOMEM, LocalCause::NoMemory),
            (Errno::EADDRNOTAVAIL, LocalCause::NoPorts),
            (Errno::EPERM, LocalCause::Permission),
            (Errno::EACCES, LocalCause::Permission),
            (Errno::EAFNOSUPPORT, LocalCause::LocalSocket),
        ] {
            assert_eq!(evidence(&os(errno)), None, "{errno}");
            assert_eq!(LocalCause::of_io(&os(errno)), cause, "{errno}");
        }
        for (errno, code) in [
            (Errno::ECONNREFUSED, Code::L4Con),
            (Errno::ECONNRESET, Code::L4Con),
            (Errno::EHOSTUNREACH, Code::L4Con),
            (Errno::ENETUNREACH, Code::L4Con),
            (Errno::EHOSTDOWN, Code::L4Con),
            (Errno::ETIMEDOUT, Code::L4Tout),
        ] {
            assert_eq!(evidence(&os(errno)), Some(code), "{errno}");
        }
    }

    #[test]
    fn a_namespace_that_cannot_be_entered_is_local() {
        let e = SocketError::EnterNetns {
            name: "probe".into(),
            source: os(Errno::EPERM),
        };
        assert_eq!(LocalCause::of_socket(&e), LocalCause::Netns);
        let e = SocketError::Create(os(Errno::EMFILE));
        assert_eq!(LocalCause::of_socket(&e), LocalCause::FdLimit);
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::BTreeSet<_> =
            LocalCause::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), LocalCause::ALL.len());
    }
}
