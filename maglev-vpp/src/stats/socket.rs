//! The `stats.sock` handshake (VPP-WIRE D.1): a `SOCK_SEQPACKET` unix
//! socket on which the server sends one empty datagram carrying the
//! segment's memfd with `SCM_RIGHTS`, then closes.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, sockopt,
};
use nix::sys::time::TimeVal;

use super::error::{Result, StatsError};
use super::raw::own_fd;

/// How long the client waits for the descriptor (vpp_papi waits 1 s).
const RECV_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to `path` and receives the segment descriptor.
pub(crate) fn receive_segment_fd(path: &Path) -> Result<OwnedFd> {
    let io = |e: nix::Error| StatsError::Connect {
        path: path.to_owned(),
        source: e.into(),
    };
    let sock = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)?;
    let timeout = TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
    socket::setsockopt(&sock, sockopt::ReceiveTimeout, &timeout).map_err(io)?;
    let addr = UnixAddr::new(path).map_err(io)?;
    socket::connect(sock.as_raw_fd(), &addr).map_err(io)?;

    // The payload is empty; give it one byte of room anyway.
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io)?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs().map_err(io)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // Own every descriptor we were given so extras get closed.
            received.extend(fds.into_iter().map(own_fd));
        }
    }
    if received.is_empty() {
        return Err(StatsError::NoDescriptor {
            path: path.to_owned(),
        });
    }
    Ok(received.swap_remove(0))
}

/// Creates a non-blocking listening `SOCK_SEQPACKET` socket at `path`,
/// replacing a stale socket file.
#[cfg(feature = "sim")]
pub(crate) fn listen(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        std::fs::remove_file(path)?;
    }
    let sock = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    socket::bind(sock.as_raw_fd(), &addr)?;
    socket::listen(&sock, socket::Backlog::new(64)?)?;
    Ok(sock)
}

/// Accepts one pending connection (`Ok(None)` when none is pending).
#[cfg(feature = "sim")]
pub(crate) fn accept(listener: &OwnedFd) -> std::io::Result<Option<OwnedFd>> {
    match socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
        Ok(fd) => Ok(Some(own_fd(fd))),
        Err(nix::Error::EAGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sends `fd` as VPP does: one empty datagram with `SCM_RIGHTS`.
#[cfg(feature = "sim")]
pub(crate) fn send_fd(conn: &OwnedFd, fd: &OwnedFd) -> std::io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [socket::ControlMessage::ScmRights(&fds)];
    let iov: [std::io::IoSlice<'_>; 0] = [];
    socket::sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}
