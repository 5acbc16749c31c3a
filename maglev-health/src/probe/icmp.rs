//! The `icmp` probe: one echo request, IPv4 or IPv6, and its reply
//! matched by source address, identifier, sequence number and a random
//! payload cookie, so concurrent probes never take each other's replies.
//!
//! An unprivileged datagram ICMP socket (`ping_group_range`) is tried
//! first; where the system refuses it, a raw socket (`CAP_NET_RAW`). The
//! kind that worked is remembered per address family.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Type};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use super::{Fail, ProbeEnv, ProbeResult, Prober, finish, human};
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
/// on an ICMP error, `SOCKERR` when no ICMP socket can be opened).
#[derive(Debug)]
pub struct IcmpProber {
    timeout: Duration,
    sockets: Sockets,
    mode: [AtomicU8; 2],
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

impl IcmpProber {
    /// A prober for an `icmp` health check.
    pub fn new(timeout: Duration, env: &ProbeEnv) -> IcmpProber {
        IcmpProber {
            timeout,
            sockets: env.sockets.clone(),
            mode: [AtomicU8::new(MODE_UNTRIED), AtomicU8::new(MODE_UNTRIED)],
        }
    }

    /// An ICMP socket for `target`'s family: datagram if allowed, else raw.
    async fn open(&self, target: IpAddr) -> Result<(UdpSocket, bool), Fail> {
        let (domain, proto, slot) = match target {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, &self.mode[0]),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, &self.mode[1]),
        };
        let mode = slot.load(Ordering::Relaxed);
        let mut dgram_err = None;
        if mode != MODE_RAW {
            match self.sockets.socket(domain, Type::DGRAM, Some(proto)).await {
                Ok(s) => {
                    slot.store(MODE_DGRAM, Ordering::Relaxed);
                    return Ok((tokio_socket(s)?, false));
                }
                Err(e) if denied(&e) => dgram_err = Some(e),
                Err(e) => return Err(Fail::socket(&e)),
            }
        }
        match self.sockets.socket(domain, Type::RAW, Some(proto)).await {
            Ok(s) => {
                slot.store(MODE_RAW, Ordering::Relaxed);
                Ok((tokio_socket(s)?, true))
            }
            Err(e) => Err(Fail::new(
                Code::SockErr,
                match dgram_err {
                    Some(d) => format!("ICMP datagram socket: {d}; raw socket: {e}"),
                    None => format!("ICMP raw socket: {e}"),
                },
            )),
        }
    }

    async fn run(&self, target: IpAddr, deadline: Instant) -> Result<(Code, String), Fail> {
        let (socket, raw) = self.open(target).await?;
        let echo = Echo {
            ident: rand::random(),
            seq: SEQUENCE.fetch_add(1, Ordering::Relaxed),
            cookie: rand::random(),
        };
        let packet = encode_echo(target, echo);
        let to = SocketAddr::new(target, 0);
        let sent = timeout_at(deadline, socket.send_to(&packet, to)).await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(Fail::new(
                    super::connect_code(&e),
                    format!("ICMP echo to {target}: {e}"),
                ));
            }
            Err(_) => {
                return Err(Fail::new(
                    Code::L4Tout,
                    format!("ICMP echo to {target}: send timed out"),
                ));
            }
        }
        // A datagram socket's identifier is its local port, set by the
        // kernel, which also only hands it replies with that identifier.
        let ident = if raw {
            echo.ident
        } else {
            match socket.local_addr() {
                Ok(a) => a.port(),
                Err(e) => return Err(Fail::new(Code::SockErr, format!("ICMP socket: {e}"))),
            }
        };
        let want = Echo { ident, ..echo };
        let kind = if raw { "raw" } else { "datagram" };
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let (n, from) = match timeout_at(deadline, socket.recv_from(&mut buf)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    return Err(Fail::new(
                        super::connect_code(&e),
                        format!("ICMP echo to {target}: {e}"),
                    ));
                }
                Err(_) => {
                    return Err(Fail::new(
                        Code::L4Tout,
                        format!("no ICMP echo reply from {target}"),
                    ));
                }
            };
            let icmp = match (target, raw) {
                (IpAddr::V4(_), true) => strip_ipv4_header(&buf[..n]),
                _ => Some(&buf[..n]),
            };
            let Some(icmp) = icmp else { continue };
            match classify(target, icmp, want) {
                Reply::Echo if from.ip() == target => {
                    return Ok((
                        Code::L4Ok,
                        format!("ICMP echo reply from {target} ({kind} socket)"),
                    ));
                }
                Reply::Error { kind: t, code } => {
                    return Err(Fail::new(
                        Code::L4Con,
                        format!(
                            "ICMP error type {t} code {code} from {} for echo to {target}",
                            from.ip()
                        ),
                    ));
                }
                _ => {}
            }
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
    UdpSocket::from_std(s.into()).map_err(|e| Fail::new(Code::SockErr, format!("ICMP socket: {e}")))
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
        let deadline = start + self.timeout;
        let r = self.run(target, deadline).await.map_err(|mut f| {
            if f.code == Code::L4Tout {
                f.detail = format!("{} within {}", f.detail, human(self.timeout));
            }
            f
        });
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
    fn ipv4_header_is_stripped_by_its_length() {
        let mut p = vec![0x46u8; 24]; // IHL 6: 24 bytes
        p.extend_from_slice(&[0, 0]);
        assert_eq!(strip_ipv4_header(&p), Some(&[0u8, 0][..]));
        assert_eq!(strip_ipv4_header(&[0x44]), None);
        assert_eq!(strip_ipv4_header(&[]), None);
    }
}
