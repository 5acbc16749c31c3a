//! The `tcp` probe (connect, optionally a TLS handshake) and the connect
//! step every TCP-based probe shares.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use maglev_core::config::TcpProbe;
use socket2::{Domain, Protocol, Type};
use tokio::net::{TcpSocket, TcpStream};

use super::tls::TlsClient;
use super::{Fail, LocalCause, Phase, ProbeEnv, ProbeResult, Prober, timed};
use crate::code::Code;
use crate::error::Error;
use crate::netns::Sockets;

/// How a probe uses its connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Use {
    /// Close with a reset, as HAProxy does for checks: the probe is over
    /// when we close, and neither side keeps the connection in TIME_WAIT.
    /// TLS probes close normally, so the server sees the handshake end.
    pub(super) reset_on_close: bool,
    /// The probe sends first (a request or a ClientHello): the last ACK of
    /// the handshake then rides on that data instead of its own packet
    /// (`TCP_QUICKACK` off, as HAProxy does).
    pub(super) sends_first: bool,
}

/// Connects to `addr`: `L4CON` on failure, or `SOCKERR` when the probe
/// could not run (no socket, a local connect error); the caller's timer
/// makes `L4TOUT`.
pub(super) async fn connect(
    sockets: &Sockets,
    addr: SocketAddr,
    how: Use,
) -> Result<TcpStream, Fail> {
    let socket = sockets
        .socket(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .await
        .map_err(|e| Fail::socket(&e))?;
    let option = |what: &str, r: std::io::Result<()>| {
        r.map_err(|e| Fail::local(LocalCause::of_io(&e), format!("set {what}: {e}")))
    };
    if how.reset_on_close {
        option("SO_LINGER", socket.set_linger(Some(Duration::ZERO)))?;
    }
    if how.sends_first {
        option("TCP_QUICKACK", socket.set_tcp_quickack(false))?;
    }
    let socket = TcpSocket::from_std_stream(socket.into());
    socket
        .connect(addr)
        .await
        .map_err(|e| Fail::io(&e, format!("connect to {addr}: {e}")))
}

/// Probes by connecting over TCP and, with `tls`, completing a TLS
/// handshake (`L4OK` or `L6OK`).
#[derive(Debug)]
pub struct TcpProber {
    port: u16,
    timeout: Duration,
    tls: Option<TlsClient>,
    sockets: Sockets,
}

impl TcpProber {
    /// A prober for a `tcp` health check.
    pub fn new(p: &TcpProbe, timeout: Duration, env: &ProbeEnv) -> Result<TcpProber, Error> {
        let tls = p
            .tls
            .as_ref()
            .map(|t| TlsClient::new(t, &[], env.roots.clone()))
            .transpose()?;
        Ok(TcpProber {
            port: p.port,
            timeout,
            tls,
            sockets: env.sockets.clone(),
        })
    }

    async fn run(&self, addr: SocketAddr, phase: &Phase) -> Result<(Code, String), Fail> {
        let target = addr.ip();
        let how = Use {
            reset_on_close: self.tls.is_none(),
            sends_first: self.tls.is_some(),
        };
        let stream = connect(&self.sockets, addr, how).await?;
        match &self.tls {
            None => Ok((Code::L4Ok, format!("connected to {addr}"))),
            Some(tls) => {
                phase.enter(Phase::TLS);
                let s = tls.handshake(stream, target).await?;
                Ok((
                    Code::L6Ok,
                    format!("TLS handshake with {addr}: {}", super::tls::describe(&s)),
                ))
            }
        }
    }
}

#[async_trait::async_trait]
impl Prober for TcpProber {
    async fn probe(&self, target: IpAddr) -> ProbeResult {
        let addr = SocketAddr::new(target, self.port);
        let phase = Phase::default();
        timed(addr, self.timeout, &phase, self.run(addr, &phase)).await
    }
}
