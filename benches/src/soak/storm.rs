//! Reader storms: many concurrent readers for a while, each looping on one
//! kind of read as fast as it is answered, each over a connection of its
//! own (as many `maglevc show vpp lb state` in shell loops would):
//! `GetVPPLBState` and `PlanSync` (both dump VPP), `ListBackends`,
//! `/metrics` scrapes, and the dashboard's `GET /api/state` and anonymous
//! `POST /api/plan` (a dry run that dumps VPP too).
//!
//! A failed read is counted, never a violation: what a storm must not do
//! is delay a drain, an operator's change or convergence, which the
//! invariants check.

use std::net::SocketAddr;
use std::time::Duration;

use maglev_bin::grpc::proto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::world;

/// How long one read may take before it counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes read of one HTTP answer (the soak's `/metrics` is small).
const MAX_ANSWER: u64 = 4 << 20;

/// Where the daemon listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// gRPC.
    pub grpc: SocketAddr,
    /// `/metrics`.
    pub metrics: Option<SocketAddr>,
    /// The dashboard.
    pub http: Option<SocketAddr>,
}

/// The kinds of read, in the order readers take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    LbState,
    PlanSync,
    ListBackends,
    Metrics,
    DashboardState,
    DashboardPlan,
}

const READS: [Read; 6] = [
    Read::LbState,
    Read::PlanSync,
    Read::ListBackends,
    Read::Metrics,
    Read::DashboardPlan,
    Read::DashboardState,
];

/// What one storm did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StormOutcome {
    /// Reads answered.
    pub answered: u64,
    /// Reads that failed or timed out.
    pub failed: u64,
    /// The slowest read, answered or not.
    pub slowest: Duration,
}

impl StormOutcome {
    fn add(&mut self, other: StormOutcome) {
        self.answered += other.answered;
        self.failed += other.failed;
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// Runs `readers` readers (reader `i` does the `i`-th kind of read, round
/// robin) for `lasting` or until `stop`.
pub async fn storm(
    targets: Targets,
    readers: u32,
    lasting: Duration,
    stop: CancellationToken,
) -> StormOutcome {
    let end = Instant::now() + lasting;
    let mut set = JoinSet::new();
    for i in 0..readers as usize {
        let read = READS[i % READS.len()];
        set.spawn(reader(targets, read, end, stop.clone()));
    }
    let mut out = StormOutcome::default();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            out.add(r);
        }
    }
    out
}

/// One reader's loop.
async fn reader(
    targets: Targets,
    read: Read,
    end: Instant,
    stop: CancellationToken,
) -> StormOutcome {
    let mut out = StormOutcome::default();
    let mut grpc = None;
    while Instant::now() < end && !stop.is_cancelled() {
        let t0 = Instant::now();
        let ok = tokio::select! {
            () = stop.cancelled() => break,
            r = tokio::time::timeout(READ_TIMEOUT, once(targets, read, &mut grpc)) => {
                matches!(r, Ok(true))
            }
        };
        out.slowest = out.slowest.max(t0.elapsed());
        if ok {
            out.answered += 1;
        } else {
            out.failed += 1;
            // A new connection for the next read; and no busy loop
            // against a listener that refuses.
            grpc = None;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
    out
}

type Client = proto::maglev_client::MaglevClient<tonic::transport::Channel>;

/// One read; whether it was answered (an HTTP read: with a 2xx).
async fn once(targets: Targets, read: Read, grpc: &mut Option<Client>) -> bool {
    let http = |addr: Option<SocketAddr>, request: String| async move {
        match addr {
            Some(addr) => http_ok(addr, &request).await,
            None => false,
        }
    };
    match read {
        Read::Metrics => {
            http(
                targets.metrics,
                "GET /metrics HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n".to_owned(),
            )
            .await
        }
        Read::DashboardState => {
            http(
                targets.http,
                "GET /api/state HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n".to_owned(),
            )
            .await
        }
        Read::DashboardPlan => {
            let body = r#"{"frontend":"web","pool":"pool0","backend":"b0","weight":50}"#;
            http(
                targets.http,
                format!(
                    "POST /api/plan HTTP/1.1\r\nhost: soak\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                ),
            )
            .await
        }
        Read::LbState | Read::PlanSync | Read::ListBackends => {
            if grpc.is_none() {
                *grpc = world::client(targets.grpc).await.ok();
            }
            let Some(c) = grpc.as_mut() else { return false };
            match read {
                Read::LbState => c
                    .get_vpplb_state(proto::GetVpplbStateRequest::default())
                    .await
                    .is_ok(),
                Read::PlanSync => c.plan_sync(proto::PlanSyncRequest::default()).await.is_ok(),
                _ => c
                    .list_backends(proto::ListBackendsRequest::default())
                    .await
                    .is_ok(),
            }
        }
    }
}

/// Sends one HTTP/1.1 request on a new connection and reads the answer to
/// its end: whether the status was 2xx.
async fn http_ok(addr: SocketAddr, request: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect(addr).await else {
        return false;
    };
    if conn.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    if (&mut conn)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .await
        .is_err()
    {
        return false;
    }
    answer.starts_with(b"HTTP/1.1 2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_reads_count_only_2xx_answers() {
        async fn serve_once(answer: &'static [u8]) -> SocketAddr {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut c, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let _ = c.write_all(answer).await;
            });
            addr
        }
        let ok = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        assert!(http_ok(ok, "GET / HTTP/1.1\r\n\r\n").await);
        let busy = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert!(!http_ok(busy, "GET / HTTP/1.1\r\n\r\n").await);
    }
}
