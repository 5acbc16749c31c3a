//! The `icmp` probe: one echo request, IPv4 or IPv6, and its reply
//! matched by source address, identifier, sequence number and a random
//! payload cookie, so concurrent probes never take each other's replies.
//!
//! An unprivileged datagram ICMP socket (`ping_group_range`) is tried
//! first, one per probe: the kernel gives it only the replies to its own
//! identifier. Where the system refuses it, a raw socket (`CAP_NET_RAW`)
//! is used, one per prober and address family, shared by all its probes: a
//! raw socket receives every ICMP message of the host, so one socket and
//! one receive task hand each reply to the probe waiting for it, instead
//! of every probe's socket reading every reply. The kind that worked is
//! remembered per address family.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use socket2::{Domain, Protocol, Type};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Fail, LocalCause, ProbeEnv, ProbeResult, Prober, finish, human};
use crate::code::Code;
use crate::netns::{SocketError, Sockets};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const DEST_UNREACH_V4: u8 = 3;
const TIME_EXCEEDED_V4: u8 = 11;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const DEST_UNREACH_V6: u8 = 1;
const TIME_EXCEEDED_V6: u8 = 3;

/// ICMP header: type, code, checksum, identifier, sequence.
const HEADER_LEN: usize = 8;
/// Payload: a tag and the probe's random cookie.
const TAG: &[u8; 8] = b"maglev-h";
const PAYLOAD_LEN: usize = 16;
/// The most bytes one received datagram may hold that we look at.
const RECV_BUF: usize = 1500;

/// How ICMP sockets are opened (remembered per family).
const MODE_UNTRIED: u8 = 0;
const MODE_DGRAM: u8 = 1;
const MODE_RAW: u8 = 2;

/// Probes with one ICMP or ICMPv6 echo request (`L4OK`, `L4TOUT`, `L4CON`
/// on an ICMP error, `SOCKERR` when no ICMP socket can be opened: then the
/// probe could not run, which says nothing about the backend).
#[derive(Debug)]
pub struct IcmpProber {
    timeout: Duration,
    sockets: Sockets,
    mode: [AtomicU8; 2],
    /// The shared raw socket of each family, once needed.
    raw: [tokio::sync::Mutex<Option<Arc<RawSocket>>>; 2],
}

/// The next sequence number, shared by every ICMP prober of the process.
static SEQUENCE: AtomicU16 = AtomicU16::new(0);

/// One outstanding echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Echo {
    ident: u16,
    seq: u16,
    cookie: u64,
}

/// What a received ICMP message means for an outstanding echo.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// The echo reply.
    Echo,
    /// An ICMP error quoting our request.
    Error { kind: u8, code: u8 },
    /// Something else (another probe's, our own request looped back...).
    Other,
}

/// A probe waiting on the shared raw socket.
#[derive(Debug)]
struct Waiter {
    target: IpAddr,
    cookie: u64,
    reply: oneshot::Sender<Result<(Code, String), Fail>>,
}

/// A raw ICMP socket shared by the probes of one prober and family, and
/// the probes waiting for replies on it, by identifier and sequence.
#[derive(Debug)]
struct RawSocket {
    socket: Arc<UdpSocket>,
    waiting: Mutex<HashMap<(u16, u16), Waiter>>,
    alive: AtomicBool,
    /// Stops the receive task when the socket is dropped.
    _stop: DropGuard,
}

impl RawSocket {
    fn waiting(&self) -> MutexGuard<'_, HashMap<(u16, u16), Waiter>> {
        // Poisoning only means a panic elsewhere; the map stays valid.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a waiter from the map when its probe ends, however it ends.
struct Registration<'a> {
    raw: &'a RawSocket,
    key: (u16, u16),
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.raw.waiting().remove(&self.key);
    }
}

fn family(target: IpAddr) -> usize {
    match target {
        IpAddr::V4(_) => 0,
        IpAddr::V6(_) => 1,
    }
}

impl IcmpProber {
    /// A prober for an `icmp` health check.
    pub fn new(timeout: Duration, env: &ProbeEnv) -> IcmpProber {
        IcmpProber {
            timeout,
            sockets: env.sockets.clone(),
            mode: [AtomicU8::new(MODE_UNTRIED), AtomicU8::new(MODE_UNTRIED)],
            raw: [tokio::sync::Mutex::new(None), tokio::sync::Mutex::new(None)],
        }
    }

    fn domain(target: IpAddr) -> (Domain, Protocol) {
        match target {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        }
    }

    async fn run(&self, target: IpAddr) -> Result<(Code, String), Fail> {
        let (domain, proto) = IcmpProber::domain(target);
        let slot = &self.mode[family(target)];
        let mut dgram_err = None;
        if slot.load(Ordering::Relaxed) != MODE_RAW {
            match self.sockets.socket(domain, Type::DGRAM, Some(proto)).await {
                Ok(s) => {
                    slot.store(MODE_DGRAM, Ordering::Relaxed);
                    return probe_dgram(tokio_socket(s)?, target).await;
                }
                Err(e) if denied(&e) => dgram_err = Some(e),
                Err(e) => return Err(Fail::socket(&e)),
            }
        }
        let raw = match self.raw_socket(target).await {
            Ok(raw) => raw,
            Err(e) => {
                // Neither kind of ICMP socket could be opened (EPERM or
                // EACCES for the raw one without CAP_NET_RAW, or out of
                // descriptors): ours, not the backend's.
                return Err(Fail::local(
                    LocalCause::of_socket(&e),
                    match dgram_err {
                        Some(d) => format!("ICMP datagram socket: {d}; raw socket: {e}"),
                        None => format!("ICMP raw socket: {e}"),
                    },
                ));
            }
        };
        slot.store(MODE_RAW, Ordering::Relaxed);
        probe_raw(&raw, target).await
    }

    /// The shared raw socket for `target`'s family, opened (with its
    /// receive task) if there is none or the last one failed.
    async fn raw_socket(&self, target: IpAddr) -> Result<Arc<RawSocket>, SocketError> {
        let mut slot = self.raw[family(target)].lock().await;
        if let Some(raw) = slot.as_ref().filter(|r| r.alive.load(Ordering::Relaxed)) {
            return Ok(raw.clone());
        }
        let (domain, proto) = IcmpProber::domain(target);
        let s = self.sockets.socket(domain, Type::RAW, Some(proto)).await?;
        let socket = Arc::new(UdpSocket::from_std(s.into()).map_err(SocketError::Create)?);
        let stop = CancellationToken::new();
        let raw = Arc::new(RawSocket {
            socket: socket.clone(),
            waiting: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            _stop: stop.clone().drop_guard(),
        });
        tokio::spawn(receive(
            Arc::downgrade(&raw),
            socket,
            target.is_ipv4(),
            stop,
        ));
        *slot = Some(raw.clone());
        Ok(raw)
    }
}

/// One echo on its own datagram socket.
async fn probe_dgram(socket: UdpSocket, target: IpAddr) -> Result<(Code, String), Fail> {
    let echo = Echo {
        ident: 0, // the kernel sets it: the socket's local port
        seq: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        cookie: rand::random(),
    };
    send(&socket, target, echo).await?;
    // The kernel hands this socket only replies to its identifier, which
    // is its local port; checked again below all the same.
    let ident = socket
        .local_addr()
        .map_err(|e| Fail::local(LocalCause::of_io(&e), format!("ICMP socket: {e}")))?
        .port();
    let want = Echo { ident, ..echo };
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (n, from) = socket
            .recv_from(&mut buf)
            .await
            .map_err(|e| Fail::io(&e, format!("ICMP echo to {target}: {e}")))?;
        if let Some(r) = verdict(target, &buf[..n], from.ip(), want, "datagram") {
            return r;
        }
    }
}

/// One echo on the shared raw socket: register, send, wait for the
/// receive task to hand over the reply.
async fn probe_raw(raw: &RawSocket, target: IpAddr) -> Result<(Code, String), Fail> {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let cookie = rand::random();
    let (tx, rx) = oneshot::channel();
    let (ident, registration) = {
        let mut waiting = raw.waiting();
        // A random identifier not in use with this sequence number.
        let ident = loop {
            let ident: u16 = rand::random();
            if !waiting.contains_key(&(ident, seq)) {
                break ident;
            }
        };
        waiting.insert(
            (ident, seq),
            Waiter {
                target,
                cookie,
                reply: tx,
            },
        );
        (
            ident,
            Registration {
                raw,
                key: (ident, seq),
            },
        )
    };
    send(&raw.socket, target, Echo { ident, seq, cookie }).await?;
    let r = rx.await.unwrap_or_else(|_| {
        Err(Fail::local(
            LocalCause::LocalSocket,
            "ICMP raw socket: receive task stopped",
        ))
    });
    drop(registration);
    r
}

async fn send(socket: &UdpSocket, target: IpAddr, echo: Echo) -> Result<(), Fail> {
    let packet = encode_echo(target, echo);
    socket
        .send_to(&packet, SocketAddr::new(target, 0))
        .await
        .map(|_| ())
        .map_err(|e| Fail::io(&e, format!("ICMP echo to {target}: {e}")))
}

/// What a received message means for the echo `want` to `target`, if it
/// is about it. `msg` is the ICMP message, without any IP header.
fn verdict(
    target: IpAddr,
    msg: &[u8],
    from: IpAddr,
    want: Echo,
    kind: &str,
) -> Option<Result<(Code, String), Fail>> {
    match classify(target, msg, want) {
        Reply::Echo if from == target => Some(Ok((
            Code::L4Ok,
            format!("ICMP echo reply from {target} ({kind} socket)"),
        ))),
        Reply::Error { kind: t, code } => Some(Err(Fail::new(
            Code::L4Con,
            format!("ICMP error type {t} code {code} from {from} for echo to {target}"),
        ))),
        _ => None,
    }
}

/// The (identifier, sequence) an ICMP message is about: an echo reply's
/// own, or the quoted request's of an error.
fn key(v4: bool, msg: &[u8]) -> Option<(u16, u16)> {
    let header = |m: &[u8]| -> Option<(u16, u16)> {
        let h = m.get(..HEADER_LEN)?;
        Some((
            u16::from_be_bytes([h[4], h[5]]),
            u16::from_be_bytes([h[6], h[7]]),
        ))
    };
    match (v4, *msg.first()?) {
        (true, ECHO_REPLY_V4) | (false, ECHO_REPLY_V6) => header(msg),
        (true, DEST_UNREACH_V4 | TIME_EXCEEDED_V4) => {
            header(strip_ipv4_header(msg.get(HEADER_LEN..)?)?)
        }
        (false, DEST_UNREACH_V6 | TIME_EXCEEDED_V6) => header(msg.get(HEADER_LEN + 40..)?),
        _ => None,
    }
}

/// The receive task of a shared raw socket: hands each message to the
/// probe it is about, until the socket is dropped or fails.
async fn receive(raw: Weak<RawSocket>, socket: Arc<UdpSocket>, v4: bool, stop: CancellationToken) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let Some(raw) = raw.upgrade() else { return };
        let (n, from) = match received {
            Ok(r) => r,
            Err(e) => {
                // Fail every waiting probe; the next probe opens a new
                // socket.
                raw.alive.store(false, Ordering::Relaxed);
                for (_, w) in raw.waiting().drain() {
                    let _ = w.reply.send(Err(Fail::local(
                        LocalCause::of_io(&e),
                        format!("ICMP raw socket: {e}"),
                    )));
                }
                return;
            }
        };
        let msg = if v4 {
            strip_ipv4_header(&buf[..n])
        } else {
            Some(&buf[..n])
        };
        let Some(msg) = msg else { continue };
        let Some(k) = key(v4, msg) else { continue };
        let mut waiting = raw.waiting();
        let Some(w) = waiting.get(&k) else { continue };
        let want = Echo {
            ident: k.0,
            seq: k.1,
            cookie: w.cookie,
        };
        if let Some(r) = verdict(w.target, msg, from.ip(), want, "raw")
            && let Some(w) = waiting.remove(&k)
        {
            let _ = w.reply.send(r);
        }
    }
}

fn denied(e: &SocketError) -> bool {
    e.io_error().is_some_and(|e| {
        matches!(e.kind(), std::io::ErrorKind::PermissionDenied)
            || e.raw_os_error() == Some(nix::errno::Errno::EPERM as i32)
            || e.raw_os_error() == Some(nix::errno::Errno::EACCES as i32)
            || e.raw_os_error() == Some(nix::errno::Errno::EPROTONOSUPPORT as i32)
    })
}

/// A datagram-style tokio socket over an ICMP socket (`sendto`/`recvfrom`
/// work on any datagram socket).
fn tokio_socket(s: socket2::Socket) -> Result<UdpSocket, Fail> {
    UdpSocket::from_std(s.into())
        .map_err(|e| Fail::local(LocalCause::of_io(&e), format!("ICMP socket: {e}")))
}

/// The echo request: header, then the tag and the cookie.
fn encode_echo(target: IpAddr, echo: Echo) -> Vec<u8> {
    let kind = match target {
        IpAddr::V4(_) => ECHO_REQUEST_V4,
        IpAddr::V6(_) => ECHO_REQUEST_V6,
    };
    let mut p = Vec::with_capacity(HEADER_LEN + PAYLOAD_LEN);
    p.push(kind); // type
    p.push(0); // code
    p.extend_from_slice(&[0, 0]); // checksum, filled below
    p.extend_from_slice(&echo.ident.to_be_bytes()); // identifier
    p.extend_from_slice(&echo.seq.to_be_bytes()); // sequence
    p.extend_from_slice(TAG); // payload: tag
    p.extend_from_slice(&echo.cookie.to_be_bytes()); // payload: cookie
    // ICMPv6 checksums cover a pseudo-header; the kernel fills them in.
    if target.is_ipv4() {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The ICMP message inside an IPv4 packet from a raw socket.
fn strip_ipv4_header(packet: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    packet.get(ihl..)
}

/// Whether an echo header (type, code, checksum, id, seq) and payload are
/// ours.
fn is_our_echo(msg: &[u8], want_type: u8, echo: Echo) -> bool {
    msg.len() >= HEADER_LEN + PAYLOAD_LEN
        && msg[0] == want_type
        && msg[1] == 0
        && u16::from_be_bytes([msg[4], msg[5]]) == echo.ident
        && u16::from_be_bytes([msg[6], msg[7]]) == echo.seq
        && msg[8..16] == TAG[..]
        && msg[16..24] == echo.cookie.to_be_bytes()
}

/// Whether the first 8 bytes of a quoted request are ours (ICMP errors
/// quote only 8 bytes of the original ICMP message).
fn quotes_our_request(quoted: &[u8], request_type: u8, echo: Echo) -> bool {
    quoted.len() >= HEADER_LEN
        && quoted[0] == request_type
        && u16::from_be_bytes([quoted[4], quoted[5]]) == echo.ident
        && u16::from_be_bytes([quoted[6], quoted[7]]) == echo.seq
}

/// What an ICMP message means for `echo` sent to `target`.
fn classify(target: IpAddr, msg: &[u8], echo: Echo) -> Reply {
    let Some(&kind) = msg.first() else {
        return Reply::Other;
    };
    let code = msg.get(1).copied().unwrap_or(0);
    match target {
        IpAddr::V4(_) => match kind {
            ECHO_REPLY_V4 if is_our_echo(msg, ECHO_REPLY_V4, echo) => Reply::Echo,
            DEST_UNREACH_V4 | TIME_EXCEEDED_V4 => {
                // 8 bytes of ICMP header, then the original IPv4 header and
                // the first 8 bytes of our request.
                let quoted = msg.get(HEADER_LEN..).and_then(strip_ipv4_header);
                match quoted {
                    Some(q) if quotes_our_request(q, ECHO_REQUEST_V4, echo) => {
                        Reply::Error { kind, code }
                    }
                    _ => Reply::Other,
                }
            }
            _ => Reply::Other,
        },
        IpAddr::V6(_) => match kind {
            ECHO_REPLY_V6 if is_our_echo(msg, ECHO_REPLY_V6, echo) => Reply::Echo,
            DEST_UNREACH_V6 | TIME_EXCEEDED_V6 => {
                // 8 bytes of ICMPv6 header, the 40-byte IPv6 header, then
                // our request.
                match msg.get(HEADER_LEN + 40..) {
                    Some(q) if quotes_our_request(q, ECHO_REQUEST_V6, echo) => {
                        Reply::Error { kind, code }
                    }
                    _ => Reply::Other,
                }
            }
            _ => Reply::Other,
        },
    }
}

#[async_trait::async_trait]
impl Prober for IcmpProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        let start = Instant::now();
        let r = match timeout(self.timeout, self.run(target)).await {
            Ok(r) => r,
            Err(_) => Err(Fail::new(
                Code::L4Tout,
                format!(
                    "no ICMP echo reply from {target} within {}",
                    human(self.timeout)
                ),
            )),
        };
        finish(start, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    const ECHO: Echo = Echo {
        ident: 0x1234,
        seq: 0x0007,
        cookie: 0x0102_0304_0506_0708,
    };

    #[test]
    fn echo_request_bytes() {
        let p = encode_echo(V4, ECHO);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            8, 0,                   // type echo request, code 0
            p[2], p[3],             // checksum (checked below)
            0x12, 0x34,             // identifier
            0x00, 0x07,             // sequence
            b'm', b'a', b'g', b'l', b'e', b'v', b'-', b'h', // tag
            1, 2, 3, 4, 5, 6, 7, 8, // cookie
        ];
        assert_eq!(p, want);
        // A packet with its checksum sums to zero.
        assert_eq!(checksum(&p), 0);
        let p6 = encode_echo(V6, ECHO);
        assert_eq!((p6[0], p6[2], p6[3]), (128, 0, 0));
    }

    #[test]
    fn replies_match_only_our_identifier_sequence_and_cookie() {
        let mut reply = encode_echo(V4, ECHO);
        reply[0] = ECHO_REPLY_V4;
        assert_eq!(classify(V4, &reply, ECHO), Reply::Echo);
        for other in [
            Echo { ident: 1, ..ECHO },
            Echo { seq: 8, ..ECHO },
            Echo { cookie: 9, ..ECHO },
        ] {
            assert_eq!(classify(V4, &reply, other), Reply::Other);
        }
        // Our own request looped back is not a reply.
        assert_eq!(classify(V4, &encode_echo(V4, ECHO), ECHO), Reply::Other);
        // Truncated.
        assert_eq!(classify(V4, &reply[..12], ECHO), Reply::Other);
        assert_eq!(classify(V4, &[], ECHO), Reply::Other);

        let mut reply6 = encode_echo(V6, ECHO);
        reply6[0] = ECHO_REPLY_V6;
        assert_eq!(classify(V6, &reply6, ECHO), Reply::Echo);
        assert_eq!(classify(V6, &reply6, Echo { seq: 0, ..ECHO }), Reply::Other);
    }

    #[test]
    fn errors_quoting_our_request_are_recognised() {
        let request = encode_echo(V4, ECHO);
        #[rustfmt::skip]
        let mut msg = vec![
            3, 1, 0, 0, 0, 0, 0, 0, // destination unreachable, host unreachable
            0x45, 0, 0, 44, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2, // quoted IPv4 header
        ];
        msg.extend_from_slice(&request[..8]); // quoted ICMP header
        assert_eq!(classify(V4, &msg, ECHO), Reply::Error { kind: 3, code: 1 });
        assert_eq!(classify(V4, &msg, Echo { ident: 9, ..ECHO }), Reply::Other);

        let request6 = encode_echo(V6, ECHO);
        let mut msg6 = vec![1, 3, 0, 0, 0, 0, 0, 0]; // unreachable, address unreachable
        msg6.extend_from_slice(&[0; 40]); // quoted IPv6 header
        msg6.extend_from_slice(&request6[..8]);
        assert_eq!(classify(V6, &msg6, ECHO), Reply::Error { kind: 1, code: 3 });
    }

    #[test]
    fn replies_and_errors_are_keyed_by_identifier_and_sequence() {
        let mut reply = encode_echo(V4, ECHO);
        reply[0] = ECHO_REPLY_V4;
        assert_eq!(key(true, &reply), Some((0x1234, 7)));
        assert_eq!(key(true, &encode_echo(V4, ECHO)), None); // a request
        assert_eq!(key(true, &reply[..6]), None);
        #[rustfmt::skip]
        let mut err = vec![
            11, 0, 0, 0, 0, 0, 0, 0, // time exceeded
            0x45, 0, 0, 44, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2, // quoted IPv4 header
        ];
        err.extend_from_slice(&encode_echo(V4, ECHO)[..8]);
        assert_eq!(key(true, &err), Some((0x1234, 7)));

        let mut reply6 = encode_echo(V6, ECHO);
        reply6[0] = ECHO_REPLY_V6;
        assert_eq!(key(false, &reply6), Some((0x1234, 7)));
        let mut err6 = vec![1, 0, 0, 0, 0, 0, 0, 0];
        err6.extend_from_slice(&[0; 40]);
        err6.extend_from_slice(&encode_echo(V6, ECHO)[..8]);
        assert_eq!(key(false, &err6), Some((0x1234, 7)));
        assert_eq!(key(false, &[135, 0, 0, 0]), None); // neighbour solicitation
    }

    #[test]
    fn ipv4_header_is_stripped_by_its_length() {
        let mut p = vec![0x46u8; 24]; // IHL 6: 24 bytes
        p.extend_from_slice(&[0, 0]);
        assert_eq!(strip_ipv4_header(&p), Some(&[0u8, 0][..]));
        assert_eq!(strip_ipv4_header(&[0x44]), None);
        assert_eq!(strip_ipv4_header(&[]), None);
    }
}
