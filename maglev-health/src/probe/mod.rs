//! Probes: one async trait, [`Prober`], and its HTTP(S), TCP and ICMP
//! implementations, each returning a [`ProbeResult`] with a code of
//! SPEC §16.1, a detail and the probe's duration.
//!
//! A prober is built once per health check ([`build`]) and probes any
//! address, so backends sharing a check share its compiled regex and TLS
//! configuration. Every probe ends within the check's `timeout`, whatever
//! the peer does, and reads a bounded number of bytes.

mod http;
mod icmp;
mod tcp;
mod tls;

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use maglev_core::config::{HealthCheck, Probe};
use rustls::RootCertStore;
use tokio::time::Instant;

pub use http::{HttpProber, MAX_HEAD, USER_AGENT_VALUE};
pub use icmp::IcmpProber;
pub use tcp::TcpProber;
pub use tls::TlsClient;

use crate::code::Code;
use crate::error::Error;
use crate::netns::{SocketError, Sockets};

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Why it passed or failed.
    pub code: Code,
    /// What happened, for people (`HTTP status 503, want 200-399`).
    pub detail: String,
    /// How long the probe took.
    pub duration: Duration,
}

impl ProbeResult {
    /// Whether the probe passed.
    pub fn passed(&self) -> bool {
        self.code.is_pass()
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({:?})", self.code, self.detail, self.duration)
    }
}

/// Something that probes a backend address once.
#[async_trait::async_trait]
pub trait Prober: Send + Sync + fmt::Debug {
    /// Probes `target` once. Never fails: a failure is a result with a
    /// failing code. Returns within the health check's timeout.
    async fn probe(&self, target: IpAddr) -> ProbeResult;
}

/// What probes need from their surroundings: where sockets are made and
/// which certificate authorities TLS trusts.
#[derive(Debug, Clone, Default)]
pub struct ProbeEnv {
    sockets: Sockets,
    roots: Option<Arc<RootCertStore>>,
}

impl ProbeEnv {
    /// Probes from the daemon's namespace, trusting the system's
    /// certificate authorities.
    pub fn new() -> ProbeEnv {
        ProbeEnv::default()
    }

    /// Probes whose sockets come from `sockets`.
    pub fn with_sockets(mut self, sockets: Sockets) -> ProbeEnv {
        self.sockets = sockets;
        self
    }

    /// Trust these certificate authorities instead of the system's.
    pub fn with_roots(mut self, roots: Arc<RootCertStore>) -> ProbeEnv {
        self.roots = Some(roots);
        self
    }

    /// The socket factory.
    pub fn sockets(&self) -> &Sockets {
        &self.sockets
    }
}

/// Builds the prober of a health check.
pub fn build(check: &HealthCheck, env: &ProbeEnv) -> Result<Arc<dyn Prober>, Error> {
    let timeout = check.timing.timeout;
    Ok(match &check.probe {
        Probe::Http(p) => Arc::new(HttpProber::new(p, timeout, env)?),
        Probe::Tcp(p) => Arc::new(TcpProber::new(p, timeout, env)?),
        Probe::Icmp => Arc::new(IcmpProber::new(timeout, env)),
    })
}

/// A failed probe phase: its code and detail.
#[derive(Debug)]
struct Fail {
    code: Code,
    detail: String,
}

impl Fail {
    fn new(code: Code, detail: impl Into<String>) -> Fail {
        Fail {
            code,
            detail: detail.into(),
        }
    }

    fn socket(e: &SocketError) -> Fail {
        Fail::new(Code::SockErr, e.to_string())
    }
}

/// The phase a TCP-based probe is in, so that one timer covers the whole
/// probe and a timeout still gets the code of the phase it cut short.
#[derive(Debug, Default)]
struct Phase(AtomicU8);

impl Phase {
    const CONNECT: u8 = 0;
    const TLS: u8 = 1;
    const HTTP: u8 = 2;

    fn enter(&self, phase: u8) {
        self.0.store(phase, Ordering::Relaxed);
    }

    /// The failure of a probe to `addr` whose `timeout` ran out now.
    fn timed_out(&self, addr: SocketAddr, timeout: Duration) -> Fail {
        let after = human(timeout);
        match self.0.load(Ordering::Relaxed) {
            Phase::CONNECT => Fail::new(
                Code::L4Tout,
                format!("connect to {addr}: timed out after {after}"),
            ),
            Phase::TLS => Fail::new(
                Code::L6Tout,
                format!("TLS handshake: timed out after {after}"),
            ),
            _ => Fail::new(
                Code::L7Tout,
                format!("HTTP response: timed out after {after}"),
            ),
        }
    }
}

/// Runs one probe `attempt` on `addr` under `limit`; on timeout the code
/// and detail say which phase (connect, TLS, HTTP) it was stuck in.
async fn timed(
    addr: SocketAddr,
    limit: Duration,
    phase: &Phase,
    attempt: impl Future<Output = Result<(Code, String), Fail>>,
) -> ProbeResult {
    let start = Instant::now();
    let r = match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(phase.timed_out(addr, limit)),
    };
    finish(start, r)
}

fn finish(start: Instant, r: Result<(Code, String), Fail>) -> ProbeResult {
    let (code, detail) = match r {
        Ok(ok) => ok,
        Err(f) => (f.code, f.detail),
    };
    ProbeResult {
        code,
        detail,
        duration: start.elapsed(),
    }
}

/// Code of a failed TCP connect: refused or unreachable is `L4CON`, a
/// kernel timeout `L4TOUT`, anything local `SOCKERR`.
fn connect_code(e: &io::Error) -> Code {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown => Code::L4Con,
        K::TimedOut => Code::L4Tout,
        _ => Code::SockErr,
    }
}

/// A duration as people write it in the config.
fn human(d: Duration) -> String {
    maglev_core::config::format_duration(d)
}
