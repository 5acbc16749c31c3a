//! The netlink connection of the kernel table: a route socket in
//! maglevd's own network namespace or in a named one, driven by a tokio
//! task that ends when the connection is dropped.
//!
//! A namespace is entered by a dedicated OS thread, never a tokio worker:
//! the thread calls `setns`, creates the socket (registered with the
//! caller's tokio runtime) and ends; the socket keeps its namespace for
//! life, so the tokio side uses it like any other. (maglev-health's
//! `netns::Sockets` hands out `socket2` sockets, which cannot become
//! netlink-sys sockets without `unsafe`, so this thread is our own.)
//!
//! **Invariant:** `setns` is called only on a thread this module spawned.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns};
use rtnetlink::Handle;
use rtnetlink::sys::AsyncSocket;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

/// A running netlink route connection: requests go through
/// [`Connection::handle`]; dropping it ends the task that drives the
/// socket.
#[derive(Debug)]
pub(crate) struct Connection {
    handle: Handle,
    _task: AbortOnDropHandle<()>,
}

impl Connection {
    /// A handle for one request (handles are cheap clones).
    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

/// Where a namespace's name points: a name under `/var/run/netns`, or a
/// path if it contains `/` (as maglev-health's probes take it).
pub(crate) fn netns_path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/var/run/netns").join(name)
    }
}

type Parts = (
    rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>,
    Handle,
);

/// Opens a route socket in `netns` (maglevd's own if `None`) and starts
/// the task driving it. Must be called inside a tokio runtime.
pub(crate) async fn open(netns: Option<&str>) -> Result<Connection, String> {
    let (conn, handle) = match netns {
        None => socket().map_err(|e| format!("open a netlink route socket: {e}"))?,
        Some(name) => in_netns(name).await?,
    };
    let task = AbortOnDropHandle::new(tokio::spawn(conn));
    Ok(Connection {
        handle,
        _task: task,
    })
}

/// A route socket in the current thread's namespace, registered with the
/// current tokio runtime, asking for strict dumps (so the kernel sends
/// only our table; a kernel older than 4.20 sends everything and the
/// caller filters).
fn socket() -> io::Result<Parts> {
    let (mut conn, handle, _unsolicited) = rtnetlink::new_connection()?;
    let _ = conn
        .socket_mut()
        .socket_mut()
        .set_netlink_get_strict_chk(true);
    Ok((conn, handle))
}

async fn in_netns(name: &str) -> Result<Parts, String> {
    let path = netns_path(name);
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = oneshot::channel();
    let shown = path.display().to_string();
    let spawned = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            let opened = enter(&path).and_then(|()| {
                let _entered = runtime.enter();
                socket().map_err(|e| format!("open a netlink route socket: {e}"))
            });
            // The opener may have given up (timeout): the socket is closed.
            let _ = tx.send(opened);
        });
    spawned.map_err(|e| format!("netns {name:?}: start its thread: {e}"))?;
    match rx.await {
        Ok(Ok(parts)) => Ok(parts),
        Ok(Err(e)) => Err(format!("netns {name:?} ({shown}): {e}")),
        Err(_) => Err(format!("netns {name:?}: its thread stopped")),
    }
}

/// Enters the namespace at `path` (this thread only).
fn enter(path: &std::path::Path) -> Result<(), String> {
    let f = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "no such network namespace".to_owned(),
        _ => format!("open: {e}"),
    })?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| match e {
        nix::errno::Errno::EPERM => format!(
            "enter: {} (EPERM): entering another network namespace needs CAP_SYS_ADMIN",
            e.desc()
        ),
        _ => format!("enter: {} ({e:?})", e.desc()),
    })
}
