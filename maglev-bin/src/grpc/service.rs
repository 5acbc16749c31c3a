//! The `maglev.Maglev` service: every RPC of `maglev.proto` over the
//! daemon's [`Handle`]. Each method validates its request, asks the handle,
//! and converts the answer ([`convert`]) or the refusal ([`status`]).

use tonic::{Request, Response, Status};

use maglev_core::config::Config;
use maglev_core::dataplane::VipKey;

use crate::daemon::Handle;
use crate::daemon::counters::VipCounters;
use crate::daemon::overrides::{Override, OverrideKey};
use crate::grpc::paging::{self, List, PAGE_BYTES, PageRequest};
use crate::grpc::proto::maglev_server::Maglev;
use crate::grpc::status::{required, status};
use crate::grpc::{convert, proto, watch};
use crate::transport::Peer;
use maglev_core::config::ConfigIndex;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct MaglevService {
    handle: Handle,
}

impl MaglevService {
    /// The service over `handle`.
    pub fn new(handle: Handle) -> MaglevService {
        MaglevService { handle }
    }

    /// A backend with the frontends using it and its overrides: lookups
    /// in the config's index and the overrides of its own pool
    /// memberships, never a walk over every frontend or override.
    fn backend_info(
        &self,
        status: &maglev_health::status::BackendStatus,
        config: &Config,
        index: &ConfigIndex,
    ) -> proto::BackendInfo {
        let name = &*status.name;
        let users = index.frontends_using(name);
        let frontends = users.iter().map(|f| f.to_string()).collect();
        let mut info = convert::backend(status, frontends, self.handle.clock());
        info.operator_override = self.handle.backend_override(name).map(|intent| {
            let o = Override::Backend {
                backend: name.to_owned(),
                intent,
            };
            convert::operator_override(&o, None)
        });
        let mut weights: Vec<proto::OperatorOverride> = users
            .iter()
            .filter_map(|f| config.frontend(f).map(|fe| (f, fe)))
            .flat_map(|(f, fe)| {
                fe.pools
                    .iter()
                    .filter(|p| p.backends.contains_key(name))
                    .filter_map(move |p| {
                        let (weight, file) = self.handle.weight_override(f, &p.name, name)?;
                        let key = (f.to_string(), p.name.clone(), name.to_owned());
                        Some(convert::operator_override(
                            &Override::Weight { key, weight },
                            file,
                        ))
                    })
            })
            .collect();
        // As ListOverrides orders them: by frontend, then pool.
        weights.sort_by(|a, b| (&a.frontend, &a.pool).cmp(&(&b.frontend, &b.pool)));
        info.weight_overrides = weights;
        info
    }

    /// [`backend_info`](Self::backend_info) on the running config.
    fn backend_info_now(
        &self,
        status: &maglev_health::status::BackendStatus,
    ) -> proto::BackendInfo {
        let config = self.handle.config();
        self.backend_info(status, &config, config.index())
    }

    /// A frontend with its members' weight overrides.
    fn frontend_info(&self, view: &crate::daemon::views::FrontendView) -> proto::FrontendInfo {
        let mut info = convert::frontend(view);
        for pool in &mut info.pools {
            for b in &mut pool.backends {
                b.weight_override = self
                    .handle
                    .weight_override(&info.name, &pool.name, &b.name)
                    .map(|(weight, file)| {
                        let key = (info.name.clone(), pool.name.clone(), b.name.clone());
                        convert::operator_override(&Override::Weight { key, weight }, file)
                    });
            }
        }
        info
    }
}

/// In-process followers of the paged lists (the dashboard): every page of
/// a list, through the same methods (validation, conversion) as gRPC.
impl MaglevService {
    /// Every frontend.
    pub async fn all_frontends(&self) -> Result<proto::ListFrontendsResponse, Status> {
        paging::follow(proto::ListFrontendsRequest::default(), |r| async move {
            self.list_frontends(Request::new(r))
                .await
                .map(Response::into_inner)
        })
        .await
    }

    /// Every backend.
    pub async fn all_backends(&self) -> Result<proto::ListBackendsResponse, Status> {
        paging::follow(proto::ListBackendsRequest::default(), |r| async move {
            self.list_backends(Request::new(r))
                .await
                .map(Response::into_inner)
        })
        .await
    }

    /// Every VIP's counters.
    pub async fn all_counters(&self) -> Result<proto::VpplbCounters, Status> {
        paging::follow(proto::GetVpplbCountersRequest::default(), |r| async move {
            self.get_vpplb_counters(Request::new(r))
                .await
                .map(Response::into_inner)
        })
        .await
    }
}

/// Who an operator action is by, as a caller inside the daemon names it
/// (the dashboard puts its session's user here); without it, the gRPC
/// peer's audited identity.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

/// The audited identity of `req`'s caller ([`Operator`], else the peer).
fn caller<T>(req: &Request<T>) -> String {
    if let Some(Operator(name)) = req.extensions().get::<Operator>() {
        return name.clone();
    }
    req.extensions()
        .get::<Peer>()
        .map_or_else(|| "unknown".to_owned(), Peer::identity)
}

type Reply<T> = Result<Response<T>, Status>;

/// An override's key in list order: backends' states (`b`) before
/// weights (`w`), each by its names.
fn override_key(o: &Override) -> String {
    match o {
        Override::Backend { backend, .. } => format!("b\0{backend}"),
        Override::Weight {
            key: (frontend, pool, backend),
            ..
        } => format!("w\0{frontend}\0{pool}\0{backend}"),
    }
}

/// A `GetVPPLBState` page key: the dump the listing is cut from and the
/// last VIP returned.
fn lb_key(dump: u64, key: &VipKey) -> String {
    format!(
        "{dump} {} {} {} {}",
        key.address, key.prefix_len, key.protocol, key.port
    )
}

/// [`lb_key`] read back, or `INVALID_ARGUMENT` naming the token.
fn lb_key_parse(text: &str) -> Result<(u64, VipKey), Status> {
    let bad = || Status::invalid_argument(format!("page_token: {text:?} is not a VIP key"));
    let mut f = text.split(' ');
    let mut next = || f.next().ok_or_else(bad);
    let dump = next()?.parse().map_err(|_| bad())?;
    let address = next()?.parse().map_err(|_| bad())?;
    let prefix_len = next()?.parse().map_err(|_| bad())?;
    let protocol = next()?.parse().map_err(|_| bad())?;
    let port = next()?.parse().map_err(|_| bad())?;
    Ok((
        dump,
        VipKey {
            address,
            prefix_len,
            protocol,
            port,
        },
    ))
}

#[tonic::async_trait]
impl Maglev for MaglevService {
    async fn list_frontends(
        &self,
        req: Request<proto::ListFrontendsRequest>,
    ) -> Reply<proto::ListFrontendsResponse> {
        let r = req.get_ref();
        let page = PageRequest::parse(List::Frontends, r.page_size, &r.page_token)?;
        // The config's frontends are a BTreeMap: by name. Only this page's
        // views are built.
        let config = self.handle.config();
        let views = self
            .handle
            .frontends_after(&config, page.after.as_deref())
            .map(|v| (v.name.clone(), v));
        let page = paging::collect(views, page.size, PAGE_BYTES, |v| self.frontend_info(&v));
        Ok(Response::new(proto::ListFrontendsResponse {
            next_page_token: page.next_token(List::Frontends),
            frontends: page.items,
        }))
    }

    async fn get_frontend(
        &self,
        req: Request<proto::GetFrontendRequest>,
    ) -> Reply<proto::FrontendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let view = self.handle.frontend(name).map_err(status)?;
        Ok(Response::new(self.frontend_info(&view)))
    }

    async fn list_backends(
        &self,
        req: Request<proto::ListBackendsRequest>,
    ) -> Reply<proto::ListBackendsResponse> {
        let r = req.get_ref();
        let page = PageRequest::parse(List::Backends, r.page_size, &r.page_token)?;
        // The config's backends are a BTreeMap: by name.
        let config = self.handle.config();
        let index = config.index();
        let statuses = self
            .handle
            .backends_after(&config, page.after.as_deref())
            .map(|s| (s.name.to_string(), s));
        let page = paging::collect(statuses, page.size, PAGE_BYTES, |s| {
            self.backend_info(&s, &config, index)
        });
        Ok(Response::new(proto::ListBackendsResponse {
            next_page_token: page.next_token(List::Backends),
            backends: page.items,
        }))
    }

    async fn get_backend(
        &self,
        req: Request<proto::GetBackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.backend(name).map_err(status)?;
        Ok(Response::new(self.backend_info_now(&s)))
    }

    async fn pause_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.pause_by(name, &caller(&req)).map_err(status)?;
        Ok(Response::new(self.backend_info_now(&s)))
    }

    async fn resume_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.resume_by(name, &caller(&req)).map_err(status)?;
        Ok(Response::new(self.backend_info_now(&s)))
    }

    async fn enable_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.enable_by(name, &caller(&req)).map_err(status)?;
        Ok(Response::new(self.backend_info_now(&s)))
    }

    async fn disable_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self
            .handle
            .disable_by(name, &caller(&req))
            .map_err(status)?;
        Ok(Response::new(self.backend_info_now(&s)))
    }

    async fn list_health_checks(
        &self,
        req: Request<proto::ListHealthChecksRequest>,
    ) -> Reply<proto::ListHealthChecksResponse> {
        use std::ops::Bound;
        let r = req.get_ref();
        let page = PageRequest::parse(List::HealthChecks, r.page_size, &r.page_token)?;
        let config = self.handle.config();
        let index = config.index();
        let from = page.after.map_or(Bound::Unbounded, Bound::Excluded);
        let checks = config
            .healthchecks()
            .range::<String, _>((from, Bound::Unbounded))
            .map(|(name, hc)| (name.clone(), (name, hc)));
        let page = paging::collect(checks, page.size, PAGE_BYTES, |(name, hc)| {
            convert::healthcheck(name, hc, index.backends_checked_by(name))
        });
        Ok(Response::new(proto::ListHealthChecksResponse {
            next_page_token: page.next_token(List::HealthChecks),
            healthchecks: page.items,
        }))
    }

    async fn get_health_check(
        &self,
        req: Request<proto::GetHealthCheckRequest>,
    ) -> Reply<proto::HealthCheckInfo> {
        let name = required("name", &req.get_ref().name)?;
        let config = self.handle.config();
        let hc = config
            .healthcheck(name)
            .ok_or_else(|| status(crate::daemon::DaemonError::not_found("health check", name)))?;
        let index = config.index();
        Ok(Response::new(convert::healthcheck(
            name,
            hc,
            index.backends_checked_by(name),
        )))
    }

    async fn set_frontend_pool_backend_weight(
        &self,
        req: Request<proto::SetWeightRequest>,
    ) -> Reply<proto::FrontendInfo> {
        let r = req.get_ref();
        let frontend = required("frontend", &r.frontend)?;
        let pool = required("pool", &r.pool)?;
        let backend = required("backend", &r.backend)?;
        let view = self
            .handle
            .set_weight_by(frontend, pool, backend, r.weight, r.flush, &caller(&req))
            .await
            .map_err(status)?;
        Ok(Response::new(self.frontend_info(&view)))
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        req: Request<proto::WatchRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let filter = watch::Filter::from_request(req.get_ref())?;
        Ok(Response::new(watch::start(self.handle.clone(), filter)))
    }

    async fn check_config(
        &self,
        _: Request<proto::CheckConfigRequest>,
    ) -> Reply<proto::CheckConfigResponse> {
        let handle = self.handle.clone();
        // Reading and parsing a file: off the async workers.
        let report = tokio::task::spawn_blocking(move || handle.check_config())
            .await
            .map_err(|e| Status::internal(format!("config check failed: {e}")))?;
        Ok(Response::new(convert::check_report(&report)))
    }

    async fn reload_config(
        &self,
        request: Request<proto::ReloadConfigRequest>,
    ) -> Reply<proto::ReloadConfigResponse> {
        let report = self.handle.reload_with(request.get_ref().force).await;
        Ok(Response::new(convert::reload_report(&report)))
    }

    async fn get_vpp_info(&self, _: Request<proto::GetVppInfoRequest>) -> Reply<proto::VppInfo> {
        let link = self.handle.vpp().map_err(status)?;
        let health = self.handle.sync_health();
        Ok(Response::new(convert::vpp_info(&link, &health)))
    }

    async fn get_vpplb_state(
        &self,
        req: Request<proto::GetVpplbStateRequest>,
    ) -> Reply<proto::VpplbState> {
        let r = req.get_ref();
        let page = PageRequest::parse(List::LbState, r.page_size, &r.page_token)?;
        let (continuing, after) = match &page.after {
            Some(key) => {
                let (id, key) = lb_key_parse(key)?;
                (Some(id), Some(key))
            }
            None => (None, None),
        };
        let config = self.handle.config();
        let only =
            match r.frontend.as_str() {
                "" => None,
                name => Some(config.frontend(name).map(|f| f.vip_key()).ok_or_else(|| {
                    status(crate::daemon::DaemonError::not_found("frontend", name))
                })?),
            };
        let dump = self.handle.lb_dump(continuing).await.map_err(status)?;
        // The global conf once per listing: on its first page.
        let conf = match after {
            None => self.handle.lb_conf().await.map_err(status)?,
            Some(_) => None,
        };
        let index = config.index();
        let vips = &dump.snapshot.vips;
        // VIPs in key order: the page starts after the token's key; one
        // frontend's VIP is found by binary search.
        let start = after.map_or(0, |k| vips.partition_point(|v| v.key <= k));
        let vips = match only {
            Some(k) => match vips[start..].binary_search_by_key(&k, |v| v.key) {
                Ok(i) => &vips[start + i..=start + i],
                Err(_) => &[],
            },
            None => &vips[start..],
        };
        let vips = vips.iter().map(|v| (lb_key(dump.id, &v.key), v));
        let page = paging::collect(vips, page.size, PAGE_BYTES, |v| {
            convert::lb_vip(&dump.snapshot, v, index)
        });
        Ok(Response::new(proto::VpplbState {
            conf: conf.as_ref().map(convert::lb_conf),
            next_page_token: page.next_token(List::LbState),
            vips: page.items,
        }))
    }

    async fn sync_vpplb_state(
        &self,
        req: Request<proto::SyncVpplbStateRequest>,
    ) -> Reply<proto::SyncVpplbStateResponse> {
        let frontend = Some(req.get_ref().frontend.as_str()).filter(|f| !f.is_empty());
        let report = self.handle.sync(frontend).await.map_err(status)?;
        Ok(Response::new(convert::sync_report(
            &report,
            &self.handle.config(),
        )))
    }

    async fn plan_sync(
        &self,
        req: Request<proto::PlanSyncRequest>,
    ) -> Reply<proto::SyncVpplbStateResponse> {
        let req = req.into_inner();
        let frontend = Some(req.frontend.as_str()).filter(|f| !f.is_empty());
        let weight = req.weight.map(|w| crate::daemon::WeightChange {
            frontend: w.frontend,
            pool: w.pool,
            backend: w.backend,
            weight: w.weight,
            flush: w.flush,
        });
        let report = self
            .handle
            .plan_sync(frontend, weight.as_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(convert::sync_report(
            &report,
            &self.handle.config(),
        )))
    }

    async fn get_vpplb_counters(
        &self,
        req: Request<proto::GetVpplbCountersRequest>,
    ) -> Reply<proto::VpplbCounters> {
        let r = req.get_ref();
        let page = PageRequest::parse(List::Counters, r.page_size, &r.page_token)?;
        if !self.handle.vpp_enabled() {
            // The same refusal as every other VPP read.
            self.handle.vpp().map_err(status)?;
        }
        // None (no scrape yet, or VPP away): an empty snapshot at time 0.
        let Some(snapshot) = self.handle.counters() else {
            return Ok(Response::new(proto::VpplbCounters::default()));
        };
        // By frontend name, as the scrape keeps them.
        let mut vips: Vec<&VipCounters> = snapshot.vips.iter().collect();
        if !vips.is_sorted_by(|a, b| a.frontend <= b.frontend) {
            vips.sort_by(|a, b| a.frontend.cmp(&b.frontend));
        }
        let start = page
            .after
            .as_deref()
            .map_or(0, |k| vips.partition_point(|v| &*v.frontend <= k));
        let items = vips[start..].iter().map(|v| (v.frontend.to_string(), *v));
        let page = paging::collect(items, page.size, PAGE_BYTES, convert::vip_counters);
        Ok(Response::new(proto::VpplbCounters {
            scrape_unix_nanos: snapshot.scraped_unix_nanos,
            next_page_token: page.next_token(List::Counters),
            vips: page.items,
        }))
    }

    async fn list_announcements(
        &self,
        req: Request<proto::ListAnnouncementsRequest>,
    ) -> Reply<proto::ListAnnouncementsResponse> {
        let r = req.get_ref();
        let page = PageRequest::parse(List::Announcements, r.page_size, &r.page_token)?;
        let all = self.handle.announcements();
        // Keyed by the prefix's sort key (IPv4 first, by address), which
        // a token must reproduce: its position in that order, zero-padded.
        let keyed = all
            .prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{i:08}"), p));
        let after = page.after.unwrap_or_default();
        let items = keyed.skip_while(|(k, _)| !after.is_empty() && *k <= after);
        let page = paging::collect(items, page.size, PAGE_BYTES, convert::announcement);
        Ok(Response::new(proto::ListAnnouncementsResponse {
            enabled: all.enabled,
            table: all.table.clone(),
            in_memory: all.in_memory,
            next_page_token: page.next_token(List::Announcements),
            announcements: page.items,
        }))
    }

    async fn get_node(&self, _req: Request<proto::GetNodeRequest>) -> Reply<proto::NodeInfo> {
        Ok(Response::new(convert::node(&self.handle.node())))
    }

    async fn set_node_drain(
        &self,
        req: Request<proto::SetNodeDrainRequest>,
    ) -> Reply<proto::NodeInfo> {
        let drained = req.get_ref().drained;
        let node = self
            .handle
            .set_drain(drained, &caller(&req))
            .await
            .map_err(status)?;
        Ok(Response::new(convert::node(&node)))
    }

    async fn list_overrides(
        &self,
        req: Request<proto::ListOverridesRequest>,
    ) -> Reply<proto::ListOverridesResponse> {
        let r = req.get_ref();
        let page = PageRequest::parse(List::Overrides, r.page_size, &r.page_token)?;
        // Backends' states, then weights, each by name: the order of
        // their keys.
        let all = self.handle.overrides();
        let keyed = all.iter().map(|o| (override_key(o), o));
        let after = page.after.unwrap_or_default();
        let items = keyed.skip_while(|(k, _)| !after.is_empty() && *k <= after);
        let page = paging::collect(items, page.size, PAGE_BYTES, |o| {
            let file = match o {
                Override::Weight {
                    key: (frontend, pool, backend),
                    ..
                } => self
                    .handle
                    .weight_override(frontend, pool, backend)
                    .and_then(|(_, file)| file),
                Override::Backend { .. } => None,
            };
            convert::operator_override(o, file)
        });
        Ok(Response::new(proto::ListOverridesResponse {
            next_page_token: page.next_token(List::Overrides),
            overrides: page.items,
        }))
    }

    async fn clear_override(
        &self,
        req: Request<proto::ClearOverrideRequest>,
    ) -> Reply<proto::OperatorOverride> {
        let r = req.get_ref();
        let backend = required("backend", &r.backend)?;
        let key = match (r.frontend.as_str(), r.pool.as_str()) {
            ("", "") => OverrideKey::Backend(backend.to_owned()),
            ("", _) => return Err(Status::invalid_argument("pool given without frontend")),
            (_, "") => return Err(Status::invalid_argument("frontend given without pool")),
            (frontend, pool) => {
                OverrideKey::Weight(frontend.to_owned(), pool.to_owned(), backend.to_owned())
            }
        };
        let cleared = self
            .handle
            .clear_override(&key, &caller(&req))
            .await
            .map_err(status)?;
        Ok(Response::new(convert::operator_override(&cleared, None)))
    }
}
