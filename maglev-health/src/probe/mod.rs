//! Probes: one async trait, [`Prober`], and its HTTP(S), TCP and ICMP
//! implementations, each returning a [`ProbeResult`] with a code of
//! SPEC §16.1, a detail and the probe's duration.
//!
//! A prober is built once per health check ([`build`]) and probes any
//! address, so backends sharing a check share its compiled regex and TLS
//! configuration. Every probe ends within the check's `timeout`, whatever
//! the peer does, and reads a bounded number of bytes.
//!
//! A probe that could not run for a reason of ours ([`local`]) has the
//! code `SOCKERR` and a [`LocalCause`]: it is no evidence about the
//! backend.

mod http;
mod icmp;
pub mod local;
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
pub use local::LocalCause;
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
    /// Why the probe could not run, when `code` is `SOCKERR` (a fake
    /// prober may leave it `None`: [`LocalCause::LocalSocket`] is assumed).
    pub local: Option<LocalCause>,
}

impl ProbeResult {
    /// Whether the probe passed.
    pub fn passed(&self) -> bool {
        self.code.is_pass()
    }

    /// Why the probe could not run, if it could not: then it says nothing
    /// about the backend and must not move its state. Every `SOCKERR` is
    /// such a result.
    pub fn could_not_run(&self) -> Option<LocalCause> {
        (self.code == Code::SockErr).then(|| self.local.unwrap_or(LocalCause::LocalSocket))
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

/// A failed probe phase: its code and detail, and for `SOCKERR` why the
/// probe could not run.
#[derive(Debug)]
struct Fail {
    code: Code,
    detail: String,
    local: Option<LocalCause>,
}

impl Fail {
    /// A failure that is evidence about the backend (never `SOCKERR`).
    fn new(code: Code, detail: impl Into<String>) -> Fail {
        debug_assert!(code != Code::SockErr, "a SOCKERR needs its cause");
        Fail {
            code,
            detail: detail.into(),
            local: None,
        }
    }

    /// The probe could not run, because of `cause`.
    fn local(cause: LocalCause, detail: impl Into<String>) -> Fail {
        Fail {
            code: Code::SockErr,
            detail: detail.into(),
            local: Some(cause),
        }
    }

    fn socket(e: &SocketError) -> Fail {
        Fail::local(LocalCause::of_socket(e), e.to_string())
    }

    /// A connect, send or receive error: evidence if it says something
    /// about the target ([`local::evidence`]), else the probe could not
    /// run.
    fn io(e: &io::Error, detail: String) -> Fail {
        match local::evidence(e) {
            Some(code) => Fail::new(code, detail),
            None => Fail::local(LocalCause::of_io(e), detail),
        }
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
    let (code, detail, local) = match r {
        Ok((code, detail)) => (code, detail, None),
        Err(f) => (f.code, f.detail, f.local),
    };
    ProbeResult {
        code,
        detail,
        duration: start.elapsed(),
        local,
    }
}

/// A duration as people write it in the config.
fn human(d: Duration) -> String {
    maglev_core::config::format_duration(d)
}
