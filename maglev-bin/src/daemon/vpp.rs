//! The VPP connection supervisor (SPEC §5.1): the API and stats sockets as
//! one unit.
//!
//! Connect the API (registering as `vpp-maglev`), read the version, set
//! `lb_conf` only where it differs from VPP's, connect the readers' API
//! connection (`vpp-maglev-reads`), connect the stats segment and read
//! VPP's boot time; publish the [`VppLink`] and ask for a full resync
//! (which waits for warm-up). Then `control_ping` every `ping_interval`.
//! On any failure (a failed ping, the API socket closing, the counter
//! scrape losing the segment) everything is closed, the link and the
//! counter snapshot are cleared, and the supervisor tries again after
//! `reconnect_interval`.
//!
//! **The writer first:** the reconciler and the keepalive have the first
//! API connection to themselves. Readers (`GetVPPLBState`, `PlanSync`,
//! the dashboard's plan, `lb_conf_get`, the counter scrape's re-mapping)
//! use the second, through [`SharedReads`] (one dump in flight, shared),
//! so no reader request ever waits in the writer's queue. If VPP closes
//! the readers' connection, it is closed (with its goodbye) and opened
//! again; only if that fails is the link given up. Every connection says
//! goodbye (`sockclnt_delete`) on every way out: VPP 26.10 leaks clients
//! that vanish without one after a large reply (docs/operations.md).

use std::sync::Arc;

use maglev_vpp::api::messages::LbConf;
use maglev_vpp::api::messages::{ShowVersion, ShowVersionReply};
use maglev_vpp::lb::dataplane::Dataplane;
use maglev_vpp::lb::ops::{LB_CONF_KEEP, lb_conf_for};
use maglev_vpp::{Client, ClientConfig};
use tokio::sync::Notify;

use crate::daemon::counters::StatsConn;
use crate::daemon::handle::Handle;
use crate::daemon::reads::{Invalidating, SharedReads};
use crate::daemon::settings::VppSockets;

/// A connected VPP.
pub struct VppLink {
    /// What the reconciler programs (wrapped in [`Invalidating`]).
    pub dataplane: Arc<dyn Dataplane>,
    /// The API client, when connected over the socket: the reconciler's
    /// and the keepalive's alone.
    pub client: Option<Client>,
    /// What readers dump (the readers' connection, or the embedded
    /// dataplane); read it through [`VppLink::reads`].
    pub reader: Arc<dyn Dataplane>,
    /// The readers' API client (`vpp-maglev-reads`), when connected over
    /// the socket.
    pub reader_client: Option<Client>,
    /// The readers' dumps, shared (one in flight); [`VppLink::dataplane`]
    /// invalidates them with every change.
    pub reads: Arc<SharedReads>,
    /// The stats segment, when connected.
    pub stats: Option<tokio::sync::Mutex<StatsConn>>,
    /// VPP's identity.
    pub info: VppInfo,
    /// Unix nanoseconds when maglevd connected.
    pub connected_unix_nanos: i64,
    /// How many reads of VPP the predicted tables had taken in when it
    /// connected: until one more, they say nothing of this VPP (which may
    /// have restarted empty).
    pub(crate) reads_at_connect: u64,
    /// Notified by anyone who saw the link fail (the counter scrape).
    pub(crate) failed: Notify,
}

impl std::fmt::Debug for VppLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VppLink")
            .field("info", &self.info)
            .field("stats", &self.stats.is_some())
            .finish_non_exhaustive()
    }
}

/// VPP's identity, from `show_version` and the stats segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VppInfo {
    /// The version string.
    pub version: String,
    /// When it was built.
    pub build_date: String,
    /// Where it was built.
    pub build_directory: String,
    /// VPP's process id.
    pub pid: u32,
    /// Unix nanoseconds when VPP booted (`/sys/boottime`), if known.
    pub boottime_unix_nanos: Option<i64>,
}

/// Runs the supervisor until the daemon stops.
pub(crate) async fn run(handle: Handle) {
    let shared = &handle.shared;
    if let Some(dataplane) = shared.fixed_dataplane.clone() {
        // An embedded dataplane is always there.
        let reads = Arc::new(SharedReads::default());
        shared.vpp.store(Some(Arc::new(VppLink {
            reader: dataplane.clone(),
            dataplane: Arc::new(Invalidating {
                inner: dataplane,
                reads: reads.clone(),
            }),
            client: None,
            reader_client: None,
            reads,
            stats: None,
            info: VppInfo {
                version: "embedded".to_owned(),
                ..VppInfo::default()
            },
            connected_unix_nanos: shared.clock.now_unix_nanos(),
            reads_at_connect: shared.tables.reads(),
            failed: Notify::new(),
        })));
        shared.control.reconnected(&handle.config());
        shared.announce.wake();
        return;
    }
    let Some(sockets) = shared.settings.vpp.clone() else {
        return;
    };
    loop {
        match connect(&handle, &sockets).await {
            Ok(link) => {
                let link = Arc::new(link);
                tracing::info!(
                    api = %sockets.api.display(),
                    version = %link.info.version,
                    pid = link.info.pid,
                    "vpp-connect"
                );
                shared.vpp.store(Some(link.clone()));
                shared.control.reconnected(&handle.config());
                shared.announce.wake();
                let why = supervise(&handle, &link).await;
                shared.vpp.store(None);
                shared.counters.store(None);
                // VPP's absence counts towards its grace period from now.
                shared.announce.wake();
                // Goodbye to VPP on every way out (VPP leaks clients that
                // vanish without one; see docs/operations.md).
                if let Some(client) = &link.client {
                    let _ = client.close().await;
                }
                if let Some(client) = &link.reader_client {
                    let _ = client.close().await;
                }
                match why {
                    None => return,
                    Some(why) => tracing::warn!(reason = %why, "vpp-disconnect"),
                }
            }
            Err(e) => {
                tracing::warn!(api = %sockets.api.display(), error = %e, "VPP connect failed")
            }
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep(shared.settings.reconnect_interval) => {}
        }
    }
}

/// Connects both sockets, or neither.
async fn connect(handle: &Handle, sockets: &VppSockets) -> anyhow::Result<VppLink> {
    let shared = &handle.shared;
    let config = ClientConfig {
        observer: Some(shared.metrics.api_observer()),
        ..ClientConfig::default()
    };
    let client = Client::connect_with(&sockets.api, config.clone()).await?;
    let reader = match Client::connect_with(
        &sockets.api,
        ClientConfig {
            name: READER_NAME.to_owned(),
            ..config
        },
    )
    .await
    {
        Ok(reader) => reader,
        Err(e) => {
            let _ = client.close().await;
            return Err(anyhow::Error::new(e).context("the readers' API connection"));
        }
    };
    match finish_connect(handle, sockets, &client, &reader).await {
        Ok(link) => Ok(link),
        Err(e) => {
            let _ = client.close().await;
            let _ = reader.close().await;
            Err(e)
        }
    }
}

/// At connect, keeps VPP's `sticky_buckets_per_core` when it differs from
/// `want`'s and VPP holds VIPs: changing it resets every worker's sticky
/// table, so every established flow of every VIP may move. A reload
/// refuses that change unless forced; a restart (of maglevd, or a
/// reconnect) must not make it silently either. A VPP without VIPs (new,
/// or restarted) takes the file's value, as no flow can move.
async fn keep_sticky_of_serving_vpp(client: &Client, want: &mut LbConf) -> anyhow::Result<()> {
    use anyhow::Context;
    if want.sticky_buckets_per_core == LB_CONF_KEEP {
        return Ok(());
    }
    let current = client.lb_conf_get().await.context("lb_conf_get")?;
    if current.sticky_buckets_per_core == want.sticky_buckets_per_core {
        return Ok(());
    }
    let vips = client.lb_vips().await.context("lb_vip_dump")?;
    if vips.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        vpp = current.sticky_buckets_per_core,
        file = want.sticky_buckets_per_core,
        vips = vips.len(),
        "vpp.lb.sticky-buckets-per-core differs from VPP's, which holds VIPs: VPP's is kept, \
         since changing it resets VPP's sticky table (every established flow of every VIP may \
         move); `maglevc config reload force` applies the file's"
    );
    want.sticky_buckets_per_core = LB_CONF_KEEP;
    Ok(())
}

/// The name the readers' connection registers under (`show api clients`).
pub const READER_NAME: &str = "vpp-maglev-reads";

async fn finish_connect(
    handle: &Handle,
    sockets: &VppSockets,
    client: &Client,
    reader: &Client,
) -> anyhow::Result<VppLink> {
    use anyhow::Context;
    let shared = &handle.shared;
    let version: ShowVersionReply = client.call(&ShowVersion {}).await.context("show_version")?;
    if let Some(vpp) = handle.config().vpp() {
        let mut want = lb_conf_for(&vpp.lb);
        keep_sticky_of_serving_vpp(client, &mut want).await?;
        let sent = client.ensure_lb_conf(&want).await.context("lb_conf")?;
        if sent {
            tracing::info!("lb_conf set from the config");
        }
    }
    let (stats, boottime) = match &sockets.stats {
        Some(path) => {
            let conn = StatsConn::connect(path)
                .await
                .with_context(|| format!("stats segment {}", path.display()))?;
            let boottime = conn.boottime_unix_nanos();
            (Some(tokio::sync::Mutex::new(conn)), boottime)
        }
        None => (None, None),
    };
    let reads = Arc::new(SharedReads::default());
    Ok(VppLink {
        dataplane: Arc::new(Invalidating {
            inner: Arc::new(client.clone()),
            reads: reads.clone(),
        }),
        client: Some(client.clone()),
        reader: Arc::new(reader.clone()),
        reader_client: Some(reader.clone()),
        reads,
        stats,
        info: VppInfo {
            version: version.version,
            build_date: version.build_date,
            build_directory: version.build_directory,
            pid: client.vpe_pid(),
            boottime_unix_nanos: boottime,
        },
        connected_unix_nanos: shared.clock.now_unix_nanos(),
        reads_at_connect: shared.tables.reads(),
        failed: Notify::new(),
    })
}

/// Watches a link until it fails (the reason) or the daemon stops (`None`).
async fn supervise(handle: &Handle, link: &VppLink) -> Option<String> {
    let shared = &handle.shared;
    let client = link.client.as_ref()?;
    let closed = client.closed();
    tokio::pin!(closed);
    let mut reader_closed = link.reader_client.as_ref().map(|r| Box::pin(r.closed()));
    let mut ping = tokio::time::interval(shared.settings.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return None,
            reason = &mut closed => return Some(format!("API socket closed: {reason}")),
            reason = async { reader_closed.as_mut().expect("guarded").await },
                if reader_closed.is_some() =>
            {
                let reader = link.reader_client.as_ref().expect("with its closed()");
                tracing::warn!(%reason, "the readers' API connection closed; opening it again");
                // Goodbye first (if VPP still listens), then a fresh one:
                // never two readers' registrations at once.
                let _ = reader.close().await;
                if let Err(e) = reader.reconnect().await {
                    return Some(format!("readers' API connection lost: {e}"));
                }
                reader_closed = Some(Box::pin(reader.closed()));
            }
            _ = link.failed.notified() => return Some("stats segment lost".to_owned()),
            _ = ping.tick() => {
                if let Err(e) = client.ping().await {
                    return Some(format!("control_ping failed: {e}"));
                }
            }
        }
    }
}
