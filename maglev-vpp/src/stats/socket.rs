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
pub(crate) const RECV_TIMEOUT: Duration = Duration::from_secs(1);

fn connect_error(path: &Path) -> impl Fn(nix::Error) -> StatsError + '_ {
    move |e| StatsError::Connect {
        path: path.to_owned(),
        source: e.into(),
    }
}

/// A `SOCK_SEQPACKET` socket connected to `path` (non-blocking if asked:
/// a unix socket connects at once or fails, `EAGAIN` when the server's
/// backlog is full).
fn connect(path: &Path, nonblocking: bool) -> Result<OwnedFd> {
    let io = connect_error(path);
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if nonblocking {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    let sock =
        socket::socket(AddressFamily::Unix, SockType::SeqPacket, flags, None).map_err(&io)?;
    let addr = UnixAddr::new(path).map_err(&io)?;
    socket::connect(sock.as_raw_fd(), &addr).map_err(&io)?;
    Ok(sock)
}

/// One `recvmsg`: the descriptors of the datagram, all owned (so extras
/// get closed). Empty when the server closed without sending one.
fn recv_fds(sock: &OwnedFd, flags: MsgFlags) -> nix::Result<Vec<OwnedFd>> {
    // The payload is empty; give it one byte of room anyway.
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            received.extend(fds.into_iter().map(own_fd));
        }
    }
    Ok(received)
}

fn first(path: &Path, mut fds: Vec<OwnedFd>) -> Result<OwnedFd> {
    if fds.is_empty() {
        return Err(StatsError::NoDescriptor {
            path: path.to_owned(),
        });
    }
    Ok(fds.swap_remove(0))
}

/// Connects to `path` and receives the segment descriptor, blocking the
/// thread for up to [`RECV_TIMEOUT`].
pub(crate) fn receive_segment_fd(path: &Path) -> Result<OwnedFd> {
    let io = connect_error(path);
    let sock = connect(path, false)?;
    let timeout = TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
    socket::setsockopt(&sock, sockopt::ReceiveTimeout, &timeout).map_err(&io)?;
    first(path, recv_fds(&sock, MsgFlags::empty()).map_err(&io)?)
}

/// Connects to `path` and receives the segment descriptor without blocking
/// the thread: the socket is non-blocking and registered with tokio, and
/// the wait is bounded by `timeout` on `tokio::time`.
pub(crate) async fn receive_segment_fd_async(path: &Path, timeout: Duration) -> Result<OwnedFd> {
    let io = connect_error(path);
    let sock =
        super::raw::register_async(connect(path, true)?).map_err(|source| StatsError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let recv = async {
        loop {
            let mut guard = sock.readable().await?;
            match guard
                .try_io(|s| recv_fds(s.get_ref(), MsgFlags::MSG_DONTWAIT).map_err(Into::into))
            {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    };
    match tokio::time::timeout(timeout, recv).await {
        Ok(Ok(fds)) => first(path, fds),
        Ok(Err(source)) => Err(StatsError::Connect {
            path: path.to_owned(),
            source,
        }),
        Err(_elapsed) => Err(io(nix::Error::ETIMEDOUT)),
    }
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
