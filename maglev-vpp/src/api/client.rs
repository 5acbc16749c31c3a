//! The async client: one unix-socket connection to VPP, shared by any
//! number of tasks, with many requests in flight at once.
//!
//! A connection is two small tasks around the sans-IO parts: a writer that
//! drains a queue of encoded frames (so frames never interleave) and a
//! reader that cuts the byte stream into frames ([`decode_frame`]) and
//! hands them to the [`Matcher`], which completes the waiting request.
//! Callers encode and decode on their own task; the reader only matches.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::error::{DisconnectReason, Error, HandshakeProblem};
use super::frame::{decode_frame, encode_frame};
use super::matcher::{Completion, Matcher, Outcome};
use super::messages::{
    ControlPing, ControlPingReply, Dump, Envelope, Message, MsgId, Reply, Request,
    SOCKCLNT_CREATE_ID, SOCKCLNT_CREATE_REPLY_ID, ShowVersion, SockclntCreate, SockclntCreateReply,
    SockclntDelete, decode_expected, decode_message, peek_msg_id,
};
use super::table::MessageIds;

/// How a [`Client`] behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name registered with `sockclnt_create` (shown by `show api
    /// clients`).
    pub name: String,
    /// How long to wait for any one reply (VPP drops bad requests without
    /// answering, so every request needs one).
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            name: "maglev".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }
}

type Waiter = oneshot::Sender<Result<Completion, Error>>;

#[derive(Debug)]
struct State {
    matcher: Matcher<Waiter>,
    closed: Option<DisconnectReason>,
}

/// The part of a connection its tasks and pending requests share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection closed and fails every pending request.
    fn close(&self, reason: DisconnectReason) {
        let waiters = {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason.clone());
            st.matcher.drain()
        };
        tracing::debug!(%reason, pending = waiters.len(), "VPP API connection closed");
        for w in waiters {
            let _ = w.send(Err(Error::Disconnected {
                message: "request",
                reason: reason.clone(),
            }));
        }
    }
}

/// One live connection.
#[derive(Debug)]
struct Connection {
    shared: Arc<Shared>,
    ids: MessageIds,
    client_index: u32,
    vpe_pid: u32,
    tx: mpsc::UnboundedSender<Bytes>,
    _stop: DropGuard,
}

impl Connection {
    fn id(&self, m: MsgId) -> u16 {
        // Every known message resolved at connect, or connect failed.
        self.ids.get(m).unwrap_or(0)
    }

    fn closed_error(&self, message: &'static str) -> Option<Error> {
        self.shared
            .lock()
            .closed
            .clone()
            .map(|reason| Error::Disconnected { message, reason })
    }

    /// Registers a pending request with the matcher and returns its
    /// context, unless the connection is already closed.
    fn register(
        &self,
        message: &'static str,
        start: impl FnOnce(&mut Matcher<Waiter>) -> u32,
    ) -> Result<u32, Error> {
        let mut st = self.shared.lock();
        if let Some(reason) = st.closed.clone() {
            return Err(Error::Disconnected { message, reason });
        }
        Ok(start(&mut st.matcher))
    }

    /// The header of message `id` on this connection.
    fn envelope(&self, id: MsgId, context: u32) -> Envelope {
        Envelope {
            msg_id: self.id(id),
            client_index: self.client_index,
            context,
        }
    }

    /// Sends a request now and returns a handle to await its reply later:
    /// start many, then await them, to pipeline.
    fn start<R: Request>(
        &self,
        req: &R,
        timeout: Duration,
    ) -> Result<PendingReply<R::Reply>, Error> {
        let reply_id = self.id(<R::Reply as Message>::ID);
        let (tx, rx) = oneshot::channel();
        let context = self.register(R::NAME, |m| m.start_request(reply_id, tx))?;
        let mut buf = BytesMut::with_capacity(64);
        encode_frame(req, self.envelope(R::ID, context), &mut buf);
        tracing::trace!(msg = R::NAME, context, "request");
        self.send(R::NAME, context, buf.freeze())?;
        Ok(PendingReply {
            shared: self.shared.clone(),
            rx,
            context,
            reply_id,
            message: R::NAME,
            timeout,
            _reply: std::marker::PhantomData,
        })
    }

    /// Sends a dump now; await the returned handle for its details.
    fn start_dump<D: Dump>(
        &self,
        req: &D,
        timeout: Duration,
    ) -> Result<PendingDump<D::Details>, Error> {
        let details_id = self.id(<D::Details as Message>::ID);
        let (tx, rx) = oneshot::channel();
        let context = self.register(D::NAME, |m| m.start_dump(details_id, tx))?;
        let mut buf = BytesMut::with_capacity(96);
        encode_frame(req, self.envelope(D::ID, context), &mut buf);
        // The ping reply, same context, ends the stream of details.
        encode_frame(
            &ControlPing,
            self.envelope(MsgId::ControlPing, context),
            &mut buf,
        );
        tracing::trace!(msg = D::NAME, context, "dump");
        self.send(D::NAME, context, buf.freeze())?;
        Ok(PendingDump {
            shared: self.shared.clone(),
            rx,
            context,
            details_id,
            message: D::NAME,
            timeout,
            _details: std::marker::PhantomData,
        })
    }

    fn send(&self, message: &'static str, context: u32, frame: Bytes) -> Result<(), Error> {
        if self.tx.send(frame).is_err() {
            self.shared.lock().matcher.cancel(context);
            return Err(self.closed_error(message).unwrap_or(Error::Disconnected {
                message,
                reason: DisconnectReason::Closed,
            }));
        }
        Ok(())
    }

    async fn call<R: Request>(&self, req: &R, timeout: Duration) -> Result<R::Reply, Error> {
        self.start(req, timeout)?.wait().await
    }
}

/// A VPP binary-API client. Cheap to clone; clones share the connection,
/// and [`Client::reconnect`] replaces it for all of them.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    config: ClientConfig,
    conn: RwLock<Arc<Connection>>,
}

impl Client {
    /// Connects to VPP's API socket with the default config (name
    /// `maglev`, 5 s timeout).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), maglev_vpp::Error> {
    /// let vpp = maglev_vpp::Client::connect("/run/vpp/api.sock").await?;
    /// let pid = vpp.ping().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> Result<Client, Error> {
        Client::connect_with(path, ClientConfig::default()).await
    }

    /// Connects with `config`: handshake, message-id table, and a check
    /// that every message maglev uses exists with the same CRC.
    pub async fn connect_with(
        path: impl AsRef<Path>,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        let path = path.as_ref().to_owned();
        let conn = open(&path, &config).await?;
        Ok(Client {
            inner: Arc::new(Inner {
                path,
                config,
                conn: RwLock::new(Arc::new(conn)),
            }),
        })
    }

    /// Drops the current connection (failing its pending requests) and
    /// connects again: a fresh handshake and freshly resolved message ids,
    /// which change when VPP restarts.
    pub async fn reconnect(&self) -> Result<(), Error> {
        let conn = open(&self.inner.path, &self.inner.config).await?;
        let old = std::mem::replace(&mut *self.write_conn(), Arc::new(conn));
        old.shared.close(DisconnectReason::Closed);
        Ok(())
    }

    /// Whether the current connection is still up.
    pub fn is_connected(&self) -> bool {
        self.conn().shared.lock().closed.is_none()
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The client handle VPP gave this connection.
    pub fn client_index(&self) -> u32 {
        self.conn().client_index
    }

    /// VPP's process id, from a `control_ping` at connect time.
    pub fn vpe_pid(&self) -> u32 {
        self.conn().vpe_pid
    }

    /// The runtime id of a message on the current connection.
    pub fn message_id(&self, m: MsgId) -> Option<u16> {
        self.conn().ids.get(m)
    }

    /// Liveness: a `control_ping`; returns VPP's pid (a new pid means VPP
    /// restarted).
    pub async fn ping(&self) -> Result<u32, Error> {
        Ok(self.call(&ControlPing).await?.vpe_pid)
    }

    /// Unregisters (`sockclnt_delete`) and closes the connection. Clones
    /// of this client fail with [`Error::Disconnected`] afterwards until
    /// [`Client::reconnect`].
    pub async fn close(&self) -> Result<(), Error> {
        let conn = self.conn();
        let index = conn.client_index;
        let result = self.call(&SockclntDelete { index }).await;
        conn.shared.close(DisconnectReason::Closed);
        result.map(|_| ())
    }

    fn conn(&self) -> Arc<Connection> {
        self.inner
            .conn
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn write_conn(&self) -> std::sync::RwLockWriteGuard<'_, Arc<Connection>> {
        self.inner.conn.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request and waits for its reply; a non-zero retval is
    /// [`Error::Retval`].
    pub async fn call<R: Request>(&self, req: &R) -> Result<R::Reply, Error> {
        self.start(req)?.wait().await
    }

    /// Sends a request and returns its reply whatever the retval.
    pub async fn call_raw<R: Request>(&self, req: &R) -> Result<R::Reply, Error> {
        self.start(req)?.wait_raw().await
    }

    /// Sends a request now and returns a handle to await its reply later:
    /// start many, then await them, to pipeline.
    pub fn start<R: Request>(&self, req: &R) -> Result<PendingReply<R::Reply>, Error> {
        self.conn().start(req, self.inner.config.timeout)
    }

    /// Runs a dump: the request, then a `control_ping` with the same
    /// context; collects the details until the ping's reply.
    pub async fn dump<D: Dump>(&self, req: &D) -> Result<Vec<D::Details>, Error> {
        self.start_dump(req)?.wait().await
    }

    /// Sends a dump now; await the returned handle for its details.
    pub fn start_dump<D: Dump>(&self, req: &D) -> Result<PendingDump<D::Details>, Error> {
        self.conn().start_dump(req, self.inner.config.timeout)
    }
}

/// A request in flight; [`PendingReply::wait`] for its reply.
#[derive(Debug)]
#[must_use = "a request's reply must be awaited to see its result"]
pub struct PendingReply<T> {
    shared: Arc<Shared>,
    rx: oneshot::Receiver<Result<Completion, Error>>,
    context: u32,
    reply_id: u16,
    message: &'static str,
    timeout: Duration,
    _reply: std::marker::PhantomData<fn() -> T>,
}

async fn receive(
    shared: &Shared,
    rx: oneshot::Receiver<Result<Completion, Error>>,
    context: u32,
    message: &'static str,
    timeout: Duration,
) -> Result<Completion, Error> {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Ok(c))) => Ok(c),
        Ok(Ok(Err(e))) => Err(match e {
            Error::Disconnected { reason, .. } => Error::Disconnected { message, reason },
            Error::UnexpectedReply { msg_id, .. } => Error::UnexpectedReply { message, msg_id },
            other => other,
        }),
        Ok(Err(_)) => Err(Error::Disconnected {
            message,
            reason: DisconnectReason::Closed,
        }),
        Err(_) => {
            shared.lock().matcher.cancel(context);
            Err(Error::Timeout {
                message,
                after: timeout,
            })
        }
    }
}

impl<T: Reply> PendingReply<T> {
    /// Waits for the reply; a non-zero retval is [`Error::Retval`].
    pub async fn wait(self) -> Result<T, Error> {
        let message = self.message;
        let reply = self.wait_raw().await?;
        match reply.retval() {
            0 => Ok(reply),
            rv => Err(Error::Retval {
                message,
                retval: super::error::Retval(rv),
            }),
        }
    }

    /// Waits for the reply, whatever its retval.
    pub async fn wait_raw(self) -> Result<T, Error> {
        let c = receive(
            &self.shared,
            self.rx,
            self.context,
            self.message,
            self.timeout,
        )
        .await?;
        match c {
            Completion::Reply(payload) => Ok(decode_expected::<T>(&payload, self.reply_id)?),
            Completion::Dump(_) => Err(Error::UnexpectedReply {
                message: self.message,
                msg_id: 0,
            }),
        }
    }
}

/// A dump in flight; [`PendingDump::wait`] for its details.
#[derive(Debug)]
#[must_use = "a dump's details must be awaited"]
pub struct PendingDump<T> {
    shared: Arc<Shared>,
    rx: oneshot::Receiver<Result<Completion, Error>>,
    context: u32,
    details_id: u16,
    message: &'static str,
    timeout: Duration,
    _details: std::marker::PhantomData<fn() -> T>,
}

impl<T: Message> PendingDump<T> {
    /// Waits for the end of the dump and decodes every details message.
    pub async fn wait(self) -> Result<Vec<T>, Error> {
        let c = receive(
            &self.shared,
            self.rx,
            self.context,
            self.message,
            self.timeout,
        )
        .await?;
        match c {
            Completion::Dump(items) => items
                .iter()
                .map(|p| decode_expected::<T>(p, self.details_id).map_err(Error::from))
                .collect(),
            Completion::Reply(_) => Err(Error::UnexpectedReply {
                message: self.message,
                msg_id: 0,
            }),
        }
    }
}

/// Connects, shakes hands, resolves ids and starts the connection's tasks.
async fn open(path: &Path, config: &ClientConfig) -> Result<Connection, Error> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| Error::Connect {
            path: path.to_owned(),
            source,
        })?;
    let handshake_error = |problem| Error::Handshake {
        path: path.to_owned(),
        problem,
    };
    let reply = tokio::time::timeout(config.timeout, handshake(&mut stream, &config.name))
        .await
        .map_err(|_| handshake_error(HandshakeProblem::Timeout(config.timeout)))?
        .map_err(handshake_error)?;
    let (ids, problems) = MessageIds::resolve(&reply.message_table);
    let client_index = reply.index;
    let ping_reply_id = ids.get(MsgId::ControlPingReply).unwrap_or(0);
    let (read, write) = stream.into_split();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            matcher: Matcher::new(ping_reply_id),
            closed: None,
        }),
    });
    let stop = CancellationToken::new();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(read_loop(read, shared.clone(), stop.clone()));
    tokio::spawn(write_loop(write, rx, shared.clone(), stop.clone()));
    let mut conn = Connection {
        shared,
        ids,
        client_index,
        vpe_pid: 0,
        tx,
        _stop: stop.drop_guard(),
    };
    if !problems.is_empty() {
        let usable = [MsgId::ShowVersion, MsgId::ShowVersionReply]
            .iter()
            .all(|&m| conn.ids.get(m).is_some());
        let mut vpp_version = "unknown".to_owned();
        if usable && let Ok(v) = conn.call(&ShowVersion, config.timeout).await {
            vpp_version = v.version;
        }
        return Err(Error::Incompatible {
            vpp_version,
            problems,
        });
    }
    let pong: ControlPingReply = conn.call(&ControlPing, config.timeout).await?;
    conn.vpe_pid = pong.vpe_pid;
    tracing::debug!(path = %path.display(), client_index, vpe_pid = pong.vpe_pid, "connected to VPP");
    Ok(conn)
}

/// `sockclnt_create` with the fixed id 15; the reply must be id 16.
async fn handshake(
    stream: &mut UnixStream,
    name: &str,
) -> Result<SockclntCreateReply, HandshakeProblem> {
    let mut buf = BytesMut::new();
    let env = Envelope {
        msg_id: SOCKCLNT_CREATE_ID,
        client_index: 0,
        context: 1,
    };
    encode_frame(
        &SockclntCreate {
            name: name.to_owned(),
        },
        env,
        &mut buf,
    );
    let io = |e: std::io::Error| HandshakeProblem::Disconnected(DisconnectReason::Io(e.kind()));
    stream.write_all(&buf).await.map_err(io)?;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let payload = loop {
        match decode_frame(&mut rbuf) {
            Ok(Some(p)) => break p,
            Ok(None) => {}
            Err(e) => return Err(HandshakeProblem::Disconnected(DisconnectReason::Frame(e))),
        }
        if stream.read_buf(&mut rbuf).await.map_err(io)? == 0 {
            return Err(HandshakeProblem::Disconnected(DisconnectReason::Eof));
        }
    };
    let msg_id = peek_msg_id(&payload).unwrap_or(0);
    if msg_id != SOCKCLNT_CREATE_REPLY_ID {
        return Err(HandshakeProblem::WrongReply { msg_id });
    }
    let (_, reply) =
        decode_message::<SockclntCreateReply>(&payload).map_err(HandshakeProblem::Decode)?;
    if reply.response != 0 {
        return Err(HandshakeProblem::Refused {
            response: reply.response,
        });
    }
    Ok(reply)
}

async fn read_loop(mut read: OwnedReadHalf, shared: Arc<Shared>, stop: CancellationToken) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason = loop {
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(payload)) => dispatch(&shared, payload),
                Ok(None) => break,
                Err(e) => {
                    shared.close(DisconnectReason::Frame(e));
                    stop.cancel();
                    return;
                }
            }
        }
        let n = tokio::select! {
            _ = stop.cancelled() => break DisconnectReason::Closed,
            n = read.read_buf(&mut buf) => n,
        };
        match n {
            Ok(0) => break DisconnectReason::Eof,
            Ok(_) => {}
            Err(e) => break DisconnectReason::Io(e.kind()),
        }
    };
    shared.close(reason);
    stop.cancel();
}

fn dispatch(shared: &Shared, payload: Bytes) {
    let outcome = shared.lock().matcher.on_frame(payload);
    match outcome {
        Outcome::Done(waiter, result) => {
            let _ = waiter.send(result.map_err(|u| Error::UnexpectedReply {
                message: "request",
                msg_id: u.msg_id,
            }));
        }
        Outcome::Progress => {}
        Outcome::Unsolicited { msg_id, context } => {
            tracing::debug!(msg_id, context, "ignoring a message nobody waits for");
        }
        Outcome::Malformed => tracing::warn!("ignoring a frame too short to carry a context"),
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut batch = BytesMut::with_capacity(64 * 1024);
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => break,
            f = rx.recv() => f,
        };
        let Some(first) = first else { break };
        batch.extend_from_slice(&first);
        // Coalesce whatever else is queued into one write.
        while batch.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(f) => batch.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        let res = tokio::select! {
            _ = stop.cancelled() => break,
            r = write.write_all(&batch) => r,
        };
        batch.clear();
        if let Err(e) = res {
            shared.close(DisconnectReason::Io(e.kind()));
            stop.cancel();
            break;
        }
    }
    let _ = write.shutdown().await;
}
