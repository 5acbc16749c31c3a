//! The async client: one unix-socket connection to VPP, shared by any
//! number of tasks, with many requests in flight at once.
//!
//! The protocol state is the sans-IO [`Matcher`]: contexts, admission
//! (at most [`ClientConfig::max_in_flight`] requests in flight; later ones
//! wait in start order), deadlines (a reply's from the moment the writer
//! takes its frame, so time queued behind other requests never counts
//! against VPP) and the frames to write. A connection
//! adds two small tasks that only move bytes and time: a writer that takes
//! the matcher's frames (so frames never interleave) and a reader that
//! cuts the byte stream into frames ([`decode_frame`]), feeds them to the
//! matcher and sleeps until the matcher's next deadline. Callers encode and
//! decode on their own task.
//!
//! **Invariant:** every path that leaves a registered connection (the last
//! [`Client`] handle dropped, [`Client::reconnect`], [`Client::close`], a
//! connect that fails after `sockclnt_create`, bad framing from VPP) sends
//! `sockclnt_delete` first, best effort, unless VPP already closed the
//! socket. VPP 26.10 never reaps a socket client that goes away without it
//! after a large reply, and 16 such clients wedge its API (VPP-WIRE A.10,
//! `docs/architecture.md`, "VPP caveats").

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::{DisconnectReason, Error, HandshakeProblem, Retval};
use super::frame::{decode_frame, encode_frame};
use super::matcher::{Completion, Expect, Expiry, MAX_DUMP_BYTES, Matcher, Mismatch, Outcome};
use super::messages::{
    ControlPing, ControlPingReply, Dump, Envelope, Message, MsgId, Reply, Request,
    SOCKCLNT_CREATE_ID, SOCKCLNT_CREATE_REPLY_ID, ShowVersion, SockclntCreate, SockclntCreateReply,
    SockclntDelete, SockclntDeleteReply, decode_expected, decode_message, peek_msg_id,
};
use super::observer::{ApiEvent, ApiObserver, ApiResult, Direction};
use super::table::MessageIds;

/// The name maglev registers under (SPEC §5.1), shown by `show api clients`.
pub const CLIENT_NAME: &str = "vpp-maglev";

/// `sockclnt_delete` and its reply have these ids in every VPP (memclnt's
/// ids are fixed, VPP-WIRE A.3); used if the table lacks them.
const SOCKCLNT_DELETE_ID: u16 = 17;
const SOCKCLNT_DELETE_REPLY_ID: u16 = 18;

/// The most bytes the writer coalesces into one write.
const WRITE_BATCH: usize = 256 * 1024;

/// How a [`Client`] behaves.
#[derive(Clone)]
pub struct ClientConfig {
    /// The name registered with `sockclnt_create` (shown by `show api
    /// clients`); [`CLIENT_NAME`] by default.
    pub name: String,
    /// How long to wait for any one reply, counted from the moment the
    /// request is written (VPP drops bad requests without answering, so
    /// every request needs one). Time spent waiting for room is not
    /// counted: that is our queue, not VPP.
    pub timeout: Duration,
    /// How long a request may wait to be written (for room under
    /// `max_in_flight`, or behind a write VPP does not read) before it
    /// fails unsent with [`Error::NotSent`].
    pub queue_timeout: Duration,
    /// The most requests sent and not yet answered (at least 1). Requests
    /// started beyond it wait, in start order, until earlier ones finish:
    /// neither the client's buffers nor VPP's queue grow without bound.
    pub max_in_flight: usize,
    /// How long leaving a connection may take: writing `sockclnt_delete`
    /// and waiting for its reply (GoVPP waits 100 ms). With requests in
    /// flight, VPP answers them first, so the wait is [`timeout`](Self::timeout)
    /// longer: closing the socket under a large reply VPP is still writing
    /// is how VPP 26.10 comes to leak the registration.
    pub goodbye_timeout: Duration,
    /// Told about every message sent and every answer (`None`: no cost).
    pub observer: Option<Arc<dyn ApiObserver>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            name: CLIENT_NAME.to_owned(),
            timeout: Duration::from_secs(5),
            queue_timeout: Duration::from_secs(60),
            max_in_flight: 256,
            goodbye_timeout: Duration::from_millis(500),
            observer: None,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("queue_timeout", &self.queue_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("goodbye_timeout", &self.goodbye_timeout)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// Why a request ended without its answer.
#[derive(Debug)]
enum Failure {
    Closed(DisconnectReason),
    Timeout(Expiry),
    Mismatch(Mismatch),
}

type Waiter = oneshot::Sender<Result<Completion, Failure>>;

/// How the goodbye went.
#[derive(Debug, Clone)]
enum Goodbye {
    /// `sockclnt_delete_reply` came with this `response`.
    Reply(i32),
    /// No reply within the goodbye timeout.
    Timeout,
    /// The socket ended first, or the delete could not be sent.
    Lost(DisconnectReason),
}

#[derive(Debug)]
struct State {
    matcher: Matcher<Waiter>,
    closed: Option<DisconnectReason>,
    goodbye: Option<Goodbye>,
}

/// The part of a connection its tasks and pending requests share.
struct Shared {
    state: Mutex<State>,
    /// The matcher has frames to write, or the connection closed.
    writable: Notify,
    /// The matcher's earliest deadline moved earlier.
    rearm: Notify,
    /// Cancelled when the connection closes.
    gone: CancellationToken,
    /// The connection's two tasks.
    tasks: TaskTracker,
    observer: Option<Arc<dyn ApiObserver>>,
    goodbye_timeout: Duration,
    /// How long VPP may take for one reply ([`ClientConfig::timeout`]).
    reply_timeout: Duration,
    /// Whether requests were in flight when the connection closed: VPP
    /// answers them before our goodbye, so leaving waits for them too.
    busy_at_close: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe(&self, message: &'static str, direction: Direction, result: ApiResult) {
        if let Some(o) = &self.observer {
            o.event(ApiEvent {
                message,
                direction,
                result,
            });
        }
    }

    /// Marks the connection closed and fails every pending request. The
    /// tasks then leave: with a goodbye unless VPP closed the socket.
    fn close(&self, reason: DisconnectReason) {
        let waiters = {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason.clone());
            self.busy_at_close.store(
                st.matcher.in_flight() > 0,
                std::sync::atomic::Ordering::Relaxed,
            );
            st.matcher.drain()
        };
        tracing::debug!(%reason, pending = waiters.len(), "VPP API connection closed");
        for w in waiters {
            let _ = w.send(Err(Failure::Closed(reason.clone())));
        }
        self.gone.cancel();
    }

    fn reason(&self) -> DisconnectReason {
        self.lock()
            .closed
            .clone()
            .unwrap_or(DisconnectReason::Closed)
    }
}

/// Whether leaving after `reason` must say goodbye: yes, unless VPP is
/// already gone.
fn says_goodbye(reason: &DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::Closed | DisconnectReason::Frame(_)
    )
}

/// One live connection. Dropping it (the last client handle, a reconnect,
/// a failed connect) closes it with a goodbye.
#[derive(Debug)]
struct Connection {
    shared: Arc<Shared>,
    ids: MessageIds,
    client_index: u32,
    vpe_pid: u32,
    queue_timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(DisconnectReason::Closed);
    }
}

impl Connection {
    fn id(&self, m: MsgId) -> u16 {
        // Every known message resolved at connect, or connect failed.
        self.ids.get(m).unwrap_or(0)
    }

    /// The header of message `id` on this connection.
    fn envelope(&self, id: MsgId, context: u32) -> Envelope {
        Envelope {
            msg_id: self.id(id),
            client_index: self.client_index,
            context,
        }
    }

    /// Registers a request with the matcher, which builds its frame with
    /// `encode` and sends it now or when there is room.
    fn begin(
        &self,
        message: &'static str,
        answer: &'static str,
        expect: Expect,
        timeout: Duration,
        encode: impl FnOnce(u32) -> Bytes,
    ) -> Result<Pending, Error> {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now().into_std();
        let (context, rearm) = {
            let mut st = self.shared.lock();
            if let Some(reason) = st.closed.clone() {
                return Err(Error::Disconnected { message, reason });
            }
            let earliest = st.matcher.poll_timeout();
            let context = st.matcher.start(expect, tx, now, timeout, message, encode);
            (context, st.matcher.poll_timeout() != earliest)
        };
        self.shared.writable.notify_one();
        if rearm {
            self.shared.rearm.notify_one();
        }
        tracing::trace!(msg = message, context, "request");
        Ok(Pending {
            shared: self.shared.clone(),
            rx,
            context,
            message,
            answer,
            timeout,
            queue_timeout: self.queue_timeout,
            done: false,
        })
    }

    /// Starts a request: see [`Client::start`].
    fn start<R: Request>(
        &self,
        req: &R,
        timeout: Duration,
    ) -> Result<PendingReply<R::Reply>, Error> {
        let reply_id = self.id(<R::Reply as Message>::ID);
        let inner = self.begin(
            R::NAME,
            <R::Reply as Message>::NAME,
            Expect::Reply(reply_id),
            timeout,
            |context| {
                let mut buf = BytesMut::with_capacity(64);
                encode_frame(req, self.envelope(R::ID, context), &mut buf);
                buf.freeze()
            },
        )?;
        Ok(PendingReply {
            inner,
            reply_id,
            _reply: std::marker::PhantomData,
        })
    }

    /// Starts a dump: see [`Client::start_dump`].
    fn start_dump<D: Dump>(
        &self,
        req: &D,
        timeout: Duration,
    ) -> Result<PendingDump<D::Details>, Error> {
        let details_id = self.id(<D::Details as Message>::ID);
        let inner = self.begin(
            D::NAME,
            <D::Details as Message>::NAME,
            Expect::Dump(details_id),
            timeout,
            |context| {
                let mut buf = BytesMut::with_capacity(96);
                encode_frame(req, self.envelope(D::ID, context), &mut buf);
                // The ping reply, same context, ends the stream of details.
                encode_frame(
                    &ControlPing,
                    self.envelope(MsgId::ControlPing, context),
                    &mut buf,
                );
                buf.freeze()
            },
        )?;
        Ok(PendingDump {
            inner,
            details_id,
            _details: std::marker::PhantomData,
        })
    }

    async fn call<R: Request>(&self, req: &R, timeout: Duration) -> Result<R::Reply, Error> {
        self.start(req, timeout)?.wait().await
    }
}

/// A VPP binary-API client. Cheap to clone; clones share the connection,
/// and [`Client::reconnect`] replaces it for all of them. Dropping the
/// last clone leaves the connection with a goodbye (`sockclnt_delete`) on
/// its own task; [`Client::close`] does the same and waits for it.
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
    /// `vpp-maglev`, 5 s timeout, 256 requests in flight).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), maglev_vpp::Error> {
    /// let vpp = maglev_vpp::Client::connect("/run/vpp/api.sock").await?;
    /// let pid = vpp.ping().await?;
    /// vpp.close().await?;
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

    /// Connects again (a fresh handshake and freshly resolved message ids,
    /// which change when VPP restarts), then leaves the old connection:
    /// its pending requests fail and, if it is still up, it says goodbye.
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

    /// Resolves when the current connection is gone, with the reason
    /// (after a [`Client::reconnect`], ask again for the new one).
    pub fn closed(&self) -> impl Future<Output = DisconnectReason> + Send + 'static {
        let shared = self.conn().shared.clone();
        async move {
            shared.gone.cancelled().await;
            shared.reason()
        }
    }

    /// Requests sent (or being sent) and not yet answered on the current
    /// connection; never above [`ClientConfig::max_in_flight`].
    pub fn in_flight(&self) -> usize {
        self.conn().shared.lock().matcher.in_flight()
    }

    /// Requests started and waiting for room on the current connection.
    pub fn queued(&self) -> usize {
        self.conn().shared.lock().matcher.queued()
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

    /// Leaves the connection: fails its pending requests, unregisters
    /// (`sockclnt_delete`) and waits, at most
    /// [`ClientConfig::goodbye_timeout`], for VPP's reply. Clones of this
    /// client fail with [`Error::Disconnected`] afterwards until
    /// [`Client::reconnect`]. An error says the goodbye was not confirmed
    /// (VPP gone, no reply, or a refusal).
    pub async fn close(&self) -> Result<(), Error> {
        const MESSAGE: &str = "sockclnt_delete";
        let conn = self.conn();
        let shared = &conn.shared;
        shared.close(DisconnectReason::Closed);
        shared.tasks.wait().await;
        let goodbye = shared.lock().goodbye.clone();
        match goodbye {
            Some(Goodbye::Reply(1)) => Ok(()),
            Some(Goodbye::Reply(response)) => Err(Error::Retval {
                message: MESSAGE,
                retval: Retval(response),
            }),
            Some(Goodbye::Timeout) => Err(Error::Timeout {
                message: MESSAGE,
                after: self.inner.config.goodbye_timeout,
            }),
            Some(Goodbye::Lost(reason)) => Err(Error::Disconnected {
                message: MESSAGE,
                reason,
            }),
            None => Err(Error::Disconnected {
                message: MESSAGE,
                reason: shared.reason(),
            }),
        }
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

    /// Starts a request and returns a handle to await its reply later:
    /// start many, then await them, to pipeline. It is written at once if
    /// fewer than [`ClientConfig::max_in_flight`] requests are in flight,
    /// otherwise as soon as earlier ones finish (requests are written in
    /// start order). Dropping the handle cancels the request; if it was
    /// not written yet, it never is.
    pub fn start<R: Request>(&self, req: &R) -> Result<PendingReply<R::Reply>, Error> {
        self.conn().start(req, self.inner.config.timeout)
    }

    /// Runs a dump: the request, then a `control_ping` with the same
    /// context; collects the details until the ping's reply.
    pub async fn dump<D: Dump>(&self, req: &D) -> Result<Vec<D::Details>, Error> {
        self.start_dump(req)?.wait().await
    }

    /// Starts a dump; await the returned handle for its details. Admitted
    /// and cancelled like [`Client::start`].
    pub fn start_dump<D: Dump>(&self, req: &D) -> Result<PendingDump<D::Details>, Error> {
        self.conn().start_dump(req, self.inner.config.timeout)
    }
}

/// The shared part of [`PendingReply`] and [`PendingDump`]; dropping it
/// unanswered cancels the request.
#[derive(Debug)]
struct Pending {
    shared: Arc<Shared>,
    rx: oneshot::Receiver<Result<Completion, Failure>>,
    context: u32,
    message: &'static str,
    answer: &'static str,
    timeout: Duration,
    queue_timeout: Duration,
    done: bool,
}

impl Pending {
    async fn recv(&mut self) -> Result<Completion, Error> {
        let result = (&mut self.rx).await;
        self.done = true;
        let message = self.message;
        match result {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(Failure::Closed(reason))) => Err(Error::Disconnected { message, reason }),
            Ok(Err(Failure::Timeout(Expiry::Reply))) => Err(Error::Timeout {
                message,
                after: self.timeout,
            }),
            Ok(Err(Failure::Timeout(Expiry::Unsent))) => Err(Error::NotSent {
                message,
                after: self.queue_timeout,
            }),
            Ok(Err(Failure::Mismatch(Mismatch::UnexpectedId { msg_id }))) => {
                Err(Error::UnexpectedReply { message, msg_id })
            }
            Ok(Err(Failure::Mismatch(Mismatch::DumpTooLarge { bytes }))) => {
                Err(Error::DumpTooLarge {
                    message,
                    bytes,
                    limit: MAX_DUMP_BYTES,
                })
            }
            Err(_) => Err(Error::Disconnected {
                message,
                reason: DisconnectReason::Closed,
            }),
        }
    }

    /// Reports the answer to the observer.
    fn observe<T>(&self, result: &Result<T, Error>, retval: impl FnOnce(&T) -> i32) {
        if self.shared.observer.is_none() {
            return;
        }
        let r = match result {
            Ok(v) => match retval(v) {
                0 => ApiResult::Ok,
                rv => ApiResult::Retval(Retval(rv)),
            },
            Err(Error::Timeout { .. } | Error::NotSent { .. }) => ApiResult::Timeout,
            Err(Error::Disconnected { .. }) => ApiResult::Closed,
            Err(_) => ApiResult::Invalid,
        };
        self.shared.observe(self.answer, Direction::Received, r);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Answered but not read: nothing to cancel. Waiters are completed
        // under the lock, so an empty channel here means still pending.
        let mut st = self.shared.lock();
        if matches!(self.rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))
            && st.matcher.cancel(self.context).is_some()
        {
            tracing::trace!(msg = self.message, context = self.context, "cancelled");
            drop(st);
            // The room it freed may admit a waiting request.
            self.shared.writable.notify_one();
        }
    }
}

/// A request in flight; [`PendingReply::wait`] for its reply. Dropping it
/// cancels the request.
#[derive(Debug)]
#[must_use = "a request's reply must be awaited to see its result"]
pub struct PendingReply<T> {
    inner: Pending,
    reply_id: u16,
    _reply: std::marker::PhantomData<fn() -> T>,
}

impl<T: Reply> PendingReply<T> {
    /// Waits for the reply; a non-zero retval is [`Error::Retval`].
    pub async fn wait(self) -> Result<T, Error> {
        let message = self.inner.message;
        let reply = self.wait_raw().await?;
        match reply.retval() {
            0 => Ok(reply),
            rv => Err(Error::Retval {
                message,
                retval: Retval(rv),
            }),
        }
    }

    /// Waits for the reply, whatever its retval.
    pub async fn wait_raw(mut self) -> Result<T, Error> {
        let result = match self.inner.recv().await {
            Ok(Completion::Reply(payload)) => {
                decode_expected::<T>(&payload, self.reply_id).map_err(Error::from)
            }
            Ok(Completion::Dump(_)) => Err(Error::UnexpectedReply {
                message: self.inner.message,
                msg_id: 0,
            }),
            Err(e) => Err(e),
        };
        self.inner.observe(&result, T::retval);
        result
    }
}

/// A dump in flight; [`PendingDump::wait`] for its details. Dropping it
/// cancels the dump.
#[derive(Debug)]
#[must_use = "a dump's details must be awaited"]
pub struct PendingDump<T> {
    inner: Pending,
    details_id: u16,
    _details: std::marker::PhantomData<fn() -> T>,
}

impl<T: Message> PendingDump<T> {
    /// Waits for the end of the dump and decodes every details message.
    pub async fn wait(mut self) -> Result<Vec<T>, Error> {
        let result = match self.inner.recv().await {
            Ok(Completion::Dump(items)) => items
                .iter()
                .map(|p| decode_expected::<T>(p, self.details_id).map_err(Error::from))
                .collect(),
            Ok(Completion::Reply(_)) => Err(Error::UnexpectedReply {
                message: self.inner.message,
                msg_id: 0,
            }),
            Err(e) => Err(e),
        };
        self.inner.observe(&result, |_| 0);
        result
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
    let observe = |direction, result| {
        if let Some(o) = &config.observer {
            let message = match direction {
                Direction::Sent => SockclntCreate::NAME,
                Direction::Received => SockclntCreateReply::NAME,
            };
            o.event(ApiEvent {
                message,
                direction,
                result,
            });
        }
    };
    let handshake = tokio::time::timeout(
        config.timeout,
        handshake(&mut stream, &config.name, &observe),
    )
    .await;
    let (reply, leftover) = match handshake {
        Ok(Ok(r)) => {
            observe(Direction::Received, ApiResult::Ok);
            r
        }
        Ok(Err(problem)) => {
            observe(
                Direction::Received,
                match &problem {
                    HandshakeProblem::Disconnected(_) => ApiResult::Closed,
                    HandshakeProblem::Refused { response } => ApiResult::Retval(Retval(*response)),
                    _ => ApiResult::Invalid,
                },
            );
            return Err(handshake_error(problem));
        }
        Err(_) => {
            // VPP may have registered us, but without its reply the handle
            // for a goodbye is unknown.
            observe(Direction::Received, ApiResult::Timeout);
            return Err(handshake_error(HandshakeProblem::Timeout(config.timeout)));
        }
    };
    let (ids, problems) = MessageIds::resolve(&reply.message_table);
    let client_index = reply.index;
    let ping_reply_id = ids.get(MsgId::ControlPingReply).unwrap_or(0);
    let mut goodbye = BytesMut::with_capacity(32);
    encode_frame(
        &SockclntDelete {
            index: client_index,
        },
        Envelope {
            msg_id: ids.get(MsgId::SockclntDelete).unwrap_or(SOCKCLNT_DELETE_ID),
            client_index,
            context: 0,
        },
        &mut goodbye,
    );
    let delete_reply_id = ids
        .get(MsgId::SockclntDeleteReply)
        .unwrap_or(SOCKCLNT_DELETE_REPLY_ID);
    let (read, write) = stream.into_split();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            matcher: Matcher::new(ping_reply_id, config.max_in_flight, config.queue_timeout),
            closed: None,
            goodbye: None,
        }),
        writable: Notify::new(),
        rearm: Notify::new(),
        gone: CancellationToken::new(),
        tasks: TaskTracker::new(),
        observer: config.observer.clone(),
        goodbye_timeout: config.goodbye_timeout,
        reply_timeout: config.timeout,
        busy_at_close: std::sync::atomic::AtomicBool::new(false),
    });
    shared
        .tasks
        .spawn(read_loop(read, shared.clone(), leftover, delete_reply_id));
    shared
        .tasks
        .spawn(write_loop(write, shared.clone(), goodbye.freeze()));
    shared.tasks.close();
    // From here on, dropping `conn` (any error below) says goodbye.
    let mut conn = Connection {
        shared,
        ids,
        client_index,
        vpe_pid: 0,
        queue_timeout: config.queue_timeout,
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
/// Returns the reply and whatever was read after it.
async fn handshake(
    stream: &mut UnixStream,
    name: &str,
    observe: &impl Fn(Direction, ApiResult),
) -> Result<(SockclntCreateReply, BytesMut), HandshakeProblem> {
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
    let written = stream.write_all(&buf).await;
    observe(
        Direction::Sent,
        if written.is_ok() {
            ApiResult::Ok
        } else {
            ApiResult::Closed
        },
    );
    written.map_err(io)?;
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
    Ok((reply, rbuf))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Fails the requests whose deadline passed.
fn expire(shared: &Shared) {
    let now = Instant::now().into_std();
    let mut st = shared.lock();
    let expired = st.matcher.handle_timeout(now);
    if expired.is_empty() {
        return;
    }
    for (context, w, why) in expired {
        tracing::debug!(context, ?why, "request timed out");
        let _ = w.send(Err(Failure::Timeout(why)));
    }
    drop(st);
    shared.writable.notify_one();
}

/// The reader: frames to the matcher, deadlines to timeouts; when the
/// connection closes, waits for the goodbye's reply.
async fn read_loop(
    mut read: OwnedReadHalf,
    shared: Arc<Shared>,
    mut buf: BytesMut,
    delete_reply_id: u16,
) {
    let failed = 'conn: loop {
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(payload)) => dispatch(&shared, payload),
                Ok(None) => break,
                Err(e) => break 'conn Some(DisconnectReason::Frame(e)),
            }
        }
        let deadline = shared.lock().matcher.poll_timeout();
        // A deadline already past is handled now: while replies keep
        // coming, the read below is always ready first and would starve
        // the timer.
        if deadline.is_some_and(|d| d <= Instant::now().into_std()) {
            expire(&shared);
            continue;
        }
        tokio::select! {
            biased;
            _ = shared.gone.cancelled() => break None,
            n = read.read_buf(&mut buf) => match n {
                Ok(0) => break Some(DisconnectReason::Eof),
                Ok(_) => {}
                Err(e) => break Some(DisconnectReason::Io(e.kind())),
            },
            _ = sleep_until(deadline) => expire(&shared),
            _ = shared.rearm.notified() => {}
        }
    };
    if let Some(reason) = failed {
        shared.close(reason);
    }
    let reason = shared.reason();
    if !says_goodbye(&reason) {
        shared.lock().goodbye = Some(Goodbye::Lost(reason));
        return;
    }
    // Wait for the reply to our `sockclnt_delete` (VPP then closes); after
    // bad framing, only drain until VPP closes.
    let parse = matches!(reason, DisconnectReason::Closed);
    let wait = async {
        loop {
            if parse {
                loop {
                    match decode_frame(&mut buf) {
                        Ok(Some(p)) if peek_msg_id(&p) == Some(delete_reply_id) => {
                            return match decode_message::<SockclntDeleteReply>(&p) {
                                Ok((_, r)) => Goodbye::Reply(r.response),
                                Err(_) => Goodbye::Reply(-1),
                            };
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => return Goodbye::Lost(DisconnectReason::Frame(e)),
                    }
                }
            } else {
                buf.clear();
            }
            match read.read_buf(&mut buf).await {
                Ok(0) => return Goodbye::Lost(DisconnectReason::Eof),
                Ok(_) => {}
                Err(e) => return Goodbye::Lost(DisconnectReason::Io(e.kind())),
            }
        }
    };
    // VPP answers what was in flight before our delete: leaving earlier
    // (closing the socket under a large reply VPP is still writing) is
    // how VPP 26.10 comes to leak the registration.
    let patience = if shared
        .busy_at_close
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        shared.reply_timeout + shared.goodbye_timeout
    } else {
        shared.goodbye_timeout
    };
    let outcome = tokio::time::timeout(patience, wait)
        .await
        .unwrap_or(Goodbye::Timeout);
    shared.observe(
        SockclntDeleteReply::NAME,
        Direction::Received,
        match outcome {
            Goodbye::Reply(1) => ApiResult::Ok,
            Goodbye::Reply(r) => ApiResult::Retval(Retval(r)),
            Goodbye::Timeout => ApiResult::Timeout,
            Goodbye::Lost(_) => ApiResult::Closed,
        },
    );
    tracing::debug!(?outcome, "left the VPP API connection");
    let mut st = shared.lock();
    // A failed write of the delete already said how it went.
    if st.goodbye.is_none() {
        st.goodbye = Some(outcome);
    }
}

fn dispatch(shared: &Shared, payload: Bytes) {
    let mut st = shared.lock();
    match st.matcher.on_frame(payload) {
        Outcome::Done(waiter, result) => {
            // Completed under the lock: see `Pending`'s drop.
            let _ = waiter.send(result.map_err(Failure::Mismatch));
            drop(st);
            shared.writable.notify_one();
        }
        Outcome::Progress => {}
        Outcome::Unsolicited { msg_id, context } => {
            drop(st);
            tracing::debug!(msg_id, context, "ignoring a message nobody waits for");
        }
        Outcome::Malformed => {
            drop(st);
            tracing::warn!("ignoring a frame too short to carry a context");
        }
    }
}

/// The writer: the matcher's frames, coalesced; when the connection
/// closes, the goodbye.
async fn write_loop(mut write: OwnedWriteHalf, shared: Arc<Shared>, goodbye: Bytes) {
    let mut batch = BytesMut::with_capacity(64 * 1024);
    let mut names = Vec::new();
    let giving_up = async {
        shared.gone.cancelled().await;
        tokio::time::sleep(shared.goodbye_timeout).await;
    };
    tokio::pin!(giving_up);
    loop {
        {
            let mut st = shared.lock();
            if st.closed.is_some() {
                break;
            }
            // Reply deadlines start now, as the frames go out.
            let now = Instant::now().into_std();
            let earliest = st.matcher.poll_timeout();
            while batch.len() < WRITE_BATCH {
                let Some(t) = st.matcher.poll_transmit(now) else {
                    break;
                };
                batch.extend_from_slice(&t.frame);
                if shared.observer.is_some() {
                    names.push(t.message);
                }
            }
            if st.matcher.poll_timeout() != earliest {
                shared.rearm.notify_one();
            }
        }
        if batch.is_empty() {
            tokio::select! {
                _ = shared.gone.cancelled() => break,
                _ = shared.writable.notified() => continue,
            }
        }
        // Never cut a write short while the connection is up: a partial
        // frame would garble everything after it. Leaving, give it the
        // goodbye's time at most.
        let res = tokio::select! {
            r = write.write_all(&batch) => r,
            _ = &mut giving_up => {
                shared.lock().goodbye = Some(Goodbye::Lost(DisconnectReason::Closed));
                return;
            }
        };
        batch.clear();
        let result = if res.is_ok() {
            ApiResult::Ok
        } else {
            ApiResult::Closed
        };
        for name in names.drain(..) {
            shared.observe(name, Direction::Sent, result);
        }
        if let Err(e) = res {
            let reason = DisconnectReason::Io(e.kind());
            shared.close(reason.clone());
            shared.lock().goodbye = Some(Goodbye::Lost(reason));
            return;
        }
    }
    if !says_goodbye(&shared.reason()) {
        return;
    }
    let sent = tokio::time::timeout(shared.goodbye_timeout, write.write_all(&goodbye)).await;
    let result = match sent {
        Ok(Ok(())) => ApiResult::Ok,
        Ok(Err(e)) => {
            shared.lock().goodbye = Some(Goodbye::Lost(DisconnectReason::Io(e.kind())));
            ApiResult::Closed
        }
        Err(_) => {
            shared.lock().goodbye = Some(Goodbye::Timeout);
            ApiResult::Timeout
        }
    };
    shared.observe(SockclntDelete::NAME, Direction::Sent, result);
    // Dropping `write` shuts our side down: VPP reads the delete, then EOF.
}
