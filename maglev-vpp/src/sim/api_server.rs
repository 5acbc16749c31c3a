//! The simulator's socket server: VPP's framing and handshake, one task per
//! connection, requests handled in order like VPP's API process.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::faults::FaultAction;
use super::{SimShared, SimTable};
use crate::api::codec::DecodeError;
use crate::api::frame::{decode_frame, encode_frame};
use crate::api::messages::*;

/// Accepts connections until `stop`.
pub(crate) async fn serve(
    listener: UnixListener,
    shared: Arc<SimShared>,
    table: Arc<SimTable>,
    stop: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "sim: accept failed");
                    continue;
                }
            },
        };
        let index = shared.next_client.fetch_add(1, Ordering::Relaxed);
        tracker.spawn(connection(
            stream,
            index,
            shared.clone(),
            table.clone(),
            stop.clone(),
        ));
    }
    tracker.close();
    tracker.wait().await;
}

/// What a request did to the connection's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Registration {
    /// `sockclnt_create` registered it under this name.
    Created(String),
    /// `sockclnt_delete` unregistered it (the connection then closes).
    Deleted,
}

/// Replies to send for one request, and whether to close afterwards.
struct Answer {
    frames: BytesMut,
    close: bool,
    registration: Option<Registration>,
}

impl Answer {
    /// Send `frames` and keep the connection.
    fn keep(frames: BytesMut) -> Answer {
        Answer {
            frames,
            close: false,
            registration: None,
        }
    }

    /// Send `frames`, then close the connection.
    fn close(frames: BytesMut) -> Answer {
        Answer {
            frames,
            close: true,
            registration: None,
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// The simulator stopped, or closed the socket itself (a fault, bad
    /// framing): VPP frees the registration.
    Server,
    /// The client unregistered.
    Deleted,
    /// The client closed the socket (EOF, or a failed read or write).
    Peer,
}

/// One connection's registration, as VPP keeps it.
#[derive(Debug, Default)]
struct Client {
    name: Option<String>,
    /// A write of more than `large_reply` bytes went out: VPP's `send()`
    /// would have hit `EAGAIN` and left it in `errno`.
    large_reply: bool,
}

async fn connection(
    stream: UnixStream,
    pool_index: u32,
    shared: Arc<SimShared>,
    table: Arc<SimTable>,
    stop: CancellationToken,
) {
    let handle = 0x8000_0000 | pool_index;
    let mut client = Client::default();
    let exit = serve_connection(stream, handle, &mut client, &shared, &table, &stop).await;
    let Some(name) = client.name else { return };
    shared.clients.send_modify(|c| {
        if let Some(i) = c.live.iter().position(|n| *n == name) {
            c.live.remove(i);
        }
        match exit {
            Exit::Deleted | Exit::Server => {}
            Exit::Peer if client.large_reply => {
                // VPP 26.10's `vl_socket_read_ready` reads 0 bytes, sees
                // the stale EAGAIN and keeps the registration (and its
                // epoll entry) for good.
                tracing::warn!(
                    client = handle,
                    name = %name,
                    dead = c.dead.len() + 1,
                    "sim: closed without sockclnt_delete after a large reply: never reaped (VPP bug)"
                );
                c.dead.push(name.clone());
            }
            Exit::Peer => c.closed += 1,
        }
    });
}

async fn serve_connection(
    mut stream: UnixStream,
    handle: u32,
    client: &mut Client,
    shared: &SimShared,
    table: &SimTable,
    stop: &CancellationToken,
) -> Exit {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        // Answer every complete request in the buffer, then write all the
        // replies at once (VPP also queues a connection's replies).
        let mut close = None;
        loop {
            let payload = match decode_frame(&mut buf) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(client = handle, error = %e, "sim: bad framing, closing");
                    close = Some(Exit::Server);
                    break;
                }
            };
            if shared.clients.borrow().wedged(table.max_dead) {
                // VPP's epoll loop only ever sees its dead connections.
                tracing::warn!(
                    client = handle,
                    "sim: API wedged by dead connections, not answered"
                );
                continue;
            }
            let answer = tokio::select! {
                _ = stop.cancelled() => return Exit::Server,
                a = handle_request(&payload, handle, shared, table) => a,
            };
            out.extend_from_slice(&answer.frames);
            match answer.registration {
                Some(Registration::Created(name)) => {
                    shared.clients.send_modify(|c| c.live.push(name.clone()));
                    client.name = Some(name);
                }
                Some(Registration::Deleted) => {
                    // Freed before the reply goes out, so a client that
                    // has its reply sees the registration gone.
                    if let Some(name) = client.name.take() {
                        shared.clients.send_modify(|c| {
                            if let Some(i) = c.live.iter().position(|n| *n == name) {
                                c.live.remove(i);
                            }
                            c.deleted += 1;
                        });
                    }
                    close = Some(Exit::Deleted);
                }
                None => {}
            }
            if answer.close {
                close = close.or(Some(Exit::Server));
                break;
            }
        }
        if !out.is_empty() {
            if out.len() > table.large_reply {
                client.large_reply = true;
            }
            if stream.write_all(&out).await.is_err() {
                return close.unwrap_or(Exit::Peer);
            }
            out.clear();
        }
        if let Some(exit) = close {
            let _ = stream.shutdown().await;
            return exit;
        }
        let n = tokio::select! {
            _ = stop.cancelled() => return Exit::Server,
            n = stream.read_buf(&mut buf) => n,
        };
        match n {
            Ok(0) | Err(_) => return Exit::Peer,
            Ok(_) => {}
        }
    }
}

fn reply<M: Message>(out: &mut BytesMut, table: &SimTable, context: u32, msg: &M) {
    let env = Envelope {
        msg_id: table.id(M::ID),
        client_index: 0,
        context,
    };
    encode_frame(msg, env, out);
}

async fn handle_request(
    payload: &Bytes,
    handle: u32,
    shared: &SimShared,
    table: &SimTable,
) -> Answer {
    let mut out = BytesMut::new();
    let Some(msg_id) = peek_msg_id(payload) else {
        return Answer::keep(out);
    };
    if msg_id == SOCKCLNT_CREATE_ID {
        return match decode_message::<SockclntCreate>(payload) {
            Ok((env, m)) => {
                tracing::info!(client = handle, name = %m.name, "sim: sockclnt_create");
                let r = SockclntCreateReply {
                    response: 0,
                    index: handle,
                    message_table: table.entries(),
                };
                let env = Envelope {
                    msg_id: SOCKCLNT_CREATE_REPLY_ID,
                    client_index: 0,
                    context: env.context,
                };
                encode_frame(&r, env, &mut out);
                Answer {
                    frames: out,
                    close: false,
                    registration: Some(Registration::Created(m.name)),
                }
            }
            Err(e) => dropped(handle, e),
        };
    }
    let Some(m) = table.message(msg_id) else {
        tracing::warn!(
            client = handle,
            msg_id,
            "sim: no handler for message id, dropped"
        );
        return Answer::keep(out);
    };
    let Some((client_index, context)) = peek_request_header(payload) else {
        return Answer::keep(out);
    };
    if m.shape() != Shape::WithClientIndex {
        tracing::warn!(
            client = handle,
            msg = m.name(),
            "sim: not a request, dropped"
        );
        return Answer::keep(out);
    }
    if client_index != handle {
        tracing::warn!(
            client = handle,
            client_index,
            msg = m.name(),
            "sim: wrong client_index, dropped"
        );
        return Answer::keep(out);
    }
    tracing::info!(client = handle, msg = m.name(), context, "sim: request");
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let fault = shared.lock_faults().take(m.name());
    let mut drop_reply = false;
    match fault {
        Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultAction::CloseSocket) => {
            tracing::info!(
                client = handle,
                msg = m.name(),
                "sim: fault: closing the socket"
            );
            return Answer::close(out);
        }
        Some(FaultAction::DropReply) => drop_reply = true,
        _ => {}
    }
    let forced_retval = match fault {
        Some(FaultAction::Retval(rv)) => Some(rv),
        _ => None,
    };
    let now = shared.now();
    let result = dispatch(
        m,
        payload,
        context,
        handle,
        shared,
        table,
        forced_retval,
        now,
        &mut out,
    );
    if let Err(e) = result {
        return dropped(handle, e);
    }
    let events = shared.lock_model().take_events();
    shared.notify(&events);
    if drop_reply {
        tracing::info!(client = handle, msg = m.name(), "sim: fault: reply dropped");
        out.clear();
    }
    let deleted = m == MsgId::SockclntDelete && out_says_deleted(&out, table);
    let close = m == MsgId::SockclntDelete && !drop_reply;
    if fault == Some(FaultAction::CloseMidDump) {
        // Keep the first half of the frames (details), drop the rest.
        let cut = half_of_frames(&out);
        out.truncate(cut);
        return Answer::close(out);
    }
    Answer {
        frames: out,
        close,
        registration: deleted.then_some(Registration::Deleted),
    }
}

/// Whether the reply in `out` is a successful `sockclnt_delete_reply`.
fn out_says_deleted(out: &BytesMut, table: &SimTable) -> bool {
    let Ok(Some(payload)) = decode_frame(&mut out.clone()) else {
        return false;
    };
    peek_msg_id(&payload) == Some(table.id(MsgId::SockclntDeleteReply))
        && matches!(
            decode_message::<SockclntDeleteReply>(&payload),
            Ok((_, SockclntDeleteReply { response: 1 }))
        )
}

fn dropped(handle: u32, e: DecodeError) -> Answer {
    tracing::warn!(client = handle, error = %e, "sim: malformed request, dropped");
    Answer::keep(BytesMut::new())
}

/// Byte length of the first half of the frames in `out`.
fn half_of_frames(out: &BytesMut) -> usize {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos + 16 <= out.len() {
        let len = u32::from_be_bytes(out[pos + 8..pos + 12].try_into().expect("4 bytes")) as usize;
        pos += 16 + len;
        ends.push(pos);
    }
    match ends.len() / 2 {
        0 => 0,
        n => ends[n - 1],
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one dispatch over the whole request context"
)]
fn dispatch(
    m: MsgId,
    payload: &[u8],
    context: u32,
    handle: u32,
    shared: &SimShared,
    table: &SimTable,
    forced_retval: Option<i32>,
    now: u32,
    out: &mut BytesMut,
) -> Result<(), DecodeError> {
    // An injected retval replaces handling for plain requests.
    macro_rules! retval_or {
        ($reply:ident, $handle:expr) => {{
            let retval = match forced_retval {
                Some(rv) => rv,
                None => $handle,
            };
            reply(out, table, context, &$reply { retval });
        }};
    }
    match m {
        MsgId::ControlPing => {
            decode_message::<ControlPing>(payload)?;
            reply(
                out,
                table,
                context,
                &ControlPingReply {
                    retval: forced_retval.unwrap_or(0),
                    client_index: handle,
                    vpe_pid: table.vpe_pid,
                },
            );
        }
        MsgId::MemclntKeepalive => {
            decode_message::<MemclntKeepalive>(payload)?;
            retval_or!(MemclntKeepaliveReply, 0);
        }
        MsgId::SockclntDelete => {
            let (_, d) = decode_message::<SockclntDelete>(payload)?;
            let response = if d.index == handle { 1 } else { -1 };
            reply(out, table, context, &SockclntDeleteReply { response });
        }
        MsgId::ShowVersion => {
            decode_message::<ShowVersion>(payload)?;
            reply(
                out,
                table,
                context,
                &ShowVersionReply {
                    retval: forced_retval.unwrap_or(0),
                    program: "vpe".into(),
                    version: table.version.clone(),
                    build_date: "simulated".into(),
                    build_directory: "maglev-vpp/sim".into(),
                },
            );
        }
        MsgId::CliInband => {
            let (_, c) = decode_message::<CliInband>(payload)?;
            let (retval, text) = cli(&c.cmd, shared, table);
            reply(
                out,
                table,
                context,
                &CliInbandReply {
                    retval: forced_retval.unwrap_or(retval),
                    reply: text,
                },
            );
        }
        MsgId::LbConf => {
            let (_, c) = decode_message::<LbConf>(payload)?;
            retval_or!(LbConfReply, shared.lock_model().set_conf(c));
        }
        MsgId::LbConfGet => {
            decode_message::<LbConfGet>(payload)?;
            let conf = shared.lock_model().conf;
            reply(
                out,
                table,
                context,
                &LbConfGetReply {
                    retval: forced_retval.unwrap_or(0),
                    conf,
                },
            );
        }
        MsgId::LbAddDelVipV2 => {
            let (_, v) = decode_message::<LbAddDelVipV2>(payload)?;
            retval_or!(LbAddDelVipV2Reply, shared.lock_model().add_del_vip(&v, now));
        }
        MsgId::LbAddDelAsV2 => {
            let (_, a) = decode_message::<LbAddDelAsV2>(payload)?;
            retval_or!(LbAddDelAsV2Reply, shared.lock_model().add_del_as(&a, now));
        }
        MsgId::LbAsSetWeight => {
            let (_, w) = decode_message::<LbAsSetWeight>(payload)?;
            retval_or!(LbAsSetWeightReply, shared.lock_model().set_weight(&w));
        }
        MsgId::LbFlushVip => {
            decode_message::<LbFlushVip>(payload)?;
            retval_or!(LbFlushVipReply, 0);
        }
        MsgId::LbVipDump => {
            decode_message::<LbVipDump>(payload)?;
            for d in shared.lock_model().vip_details() {
                reply(out, table, context, &d);
            }
        }
        MsgId::LbAsV2Dump => {
            let (_, f) = decode_message::<LbAsV2Dump>(payload)?;
            for d in shared.lock_model().as_details(&f) {
                reply(out, table, context, &d);
            }
        }
        MsgId::IpRouteLookup => {
            let (_, q) = decode_message::<IpRouteLookup>(payload)?;
            let found = shared
                .lock_model()
                .route_lookup(q.table_id, q.exact != 0, q.prefix);
            let r = match (forced_retval, found) {
                (Some(rv), _) | (None, Err(rv)) => IpRouteLookupReply {
                    retval: rv,
                    route: crate::api::types::IpRoute {
                        table_id: 0,
                        stats_index: 0,
                        prefix: crate::api::types::Prefix::ZERO,
                        paths: Vec::new(),
                    },
                },
                (None, Ok(route)) => IpRouteLookupReply { retval: 0, route },
            };
            reply(out, table, context, &r);
        }
        other => {
            tracing::warn!(
                client = handle,
                msg = other.name(),
                "sim: no handler, dropped"
            );
        }
    }
    Ok(())
}

fn cli(cmd: &str, shared: &SimShared, table: &SimTable) -> (i32, String) {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words.as_slice() {
        ["show", "lb", "vips", "verbose"] | ["sh", "lb", "vips", "verbose"] => {
            (0, shared.lock_model().show_vips_verbose())
        }
        ["show", "version"] => (
            0,
            format!("vpp v{} built by maglev-vpp sim\n", table.version),
        ),
        _ => (-1, format!("unknown input `{cmd}'\n")),
    }
}
