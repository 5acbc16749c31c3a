//! The `maglev.Maglev` service: every RPC of `maglev.proto` over the
//! daemon's [`Handle`]. Each method validates its request, asks the handle,
//! and converts the answer ([`convert`]) or the refusal ([`status`]).

use tonic::{Request, Response, Status};

use crate::daemon::Handle;
use crate::daemon::overrides::{Override, OverrideKey};
use crate::grpc::proto::maglev_server::Maglev;
use crate::grpc::status::{required, status};
use crate::grpc::{convert, proto, watch};
use crate::transport::Peer;

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

    fn backend_info(&self, status: &maglev_health::status::BackendStatus) -> proto::BackendInfo {
        let frontends = self.handle.frontends_using(&status.name);
        let mut info = convert::backend(status, frontends, self.handle.clock());
        info.operator_override = self.handle.backend_override(&status.name).map(|intent| {
            let o = Override::Backend {
                backend: status.name.to_string(),
                intent,
            };
            convert::operator_override(&o, None)
        });
        info.weight_overrides = self
            .handle
            .overrides()
            .iter()
            .filter_map(|o| match o {
                Override::Weight {
                    key: (frontend, pool, backend),
                    ..
                } if *backend == *status.name => {
                    let file = self
                        .handle
                        .weight_override(frontend, pool, backend)
                        .and_then(|(_, file)| file);
                    Some(convert::operator_override(o, file))
                }
                _ => None,
            })
            .collect();
        info
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

#[tonic::async_trait]
impl Maglev for MaglevService {
    async fn list_frontends(
        &self,
        _: Request<proto::ListFrontendsRequest>,
    ) -> Reply<proto::ListFrontendsResponse> {
        // The handle lists frontends in config order: by name.
        let frontends = self
            .handle
            .frontends()
            .iter()
            .map(|v| self.frontend_info(v))
            .collect();
        Ok(Response::new(proto::ListFrontendsResponse { frontends }))
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
        _: Request<proto::ListBackendsRequest>,
    ) -> Reply<proto::ListBackendsResponse> {
        // The checker's snapshot is a BTreeMap: by name.
        let backends = self
            .handle
            .backends()
            .values()
            .map(|s| self.backend_info(s))
            .collect();
        Ok(Response::new(proto::ListBackendsResponse { backends }))
    }

    async fn get_backend(
        &self,
        req: Request<proto::GetBackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.backend(name).map_err(status)?;
        Ok(Response::new(self.backend_info(&s)))
    }

    async fn pause_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.pause_by(name, &caller(&req)).map_err(status)?;
        Ok(Response::new(self.backend_info(&s)))
    }

    async fn resume_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.resume_by(name, &caller(&req)).map_err(status)?;
        Ok(Response::new(self.backend_info(&s)))
    }

    async fn enable_backend(
        &self,
        req: Request<proto::BackendRequest>,
    ) -> Reply<proto::BackendInfo> {
        let name = required("name", &req.get_ref().name)?;
        let s = self.handle.enable_by(name, &caller(&req)).map_err(status)?;
        Ok(Response::new(self.backend_info(&s)))
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
        Ok(Response::new(self.backend_info(&s)))
    }

    async fn list_health_checks(
        &self,
        _: Request<proto::ListHealthChecksRequest>,
    ) -> Reply<proto::ListHealthChecksResponse> {
        let config = self.handle.config();
        let healthchecks = config
            .healthchecks()
            .iter()
            .map(|(name, hc)| convert::healthcheck(name, hc, &config))
            .collect();
        Ok(Response::new(proto::ListHealthChecksResponse {
            healthchecks,
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
        Ok(Response::new(convert::healthcheck(name, hc, &config)))
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
        let config = self.handle.config();
        let only =
            match req.get_ref().frontend.as_str() {
                "" => None,
                name => Some(config.frontend(name).map(|f| f.vip_key()).ok_or_else(|| {
                    status(crate::daemon::DaemonError::not_found("frontend", name))
                })?),
            };
        let snapshot = self.handle.lb_state().await.map_err(status)?;
        let conf = self.handle.lb_conf().await.map_err(status)?;
        Ok(Response::new(convert::lb_state(
            &snapshot,
            conf.as_ref(),
            &config,
            only.as_ref(),
        )))
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
        _: Request<proto::GetVpplbCountersRequest>,
    ) -> Reply<proto::VpplbCounters> {
        if !self.handle.vpp_enabled() {
            // The same refusal as every other VPP read.
            self.handle.vpp().map_err(status)?;
        }
        Ok(Response::new(convert::counters(
            self.handle.counters().as_deref(),
        )))
    }

    async fn list_overrides(
        &self,
        _: Request<proto::ListOverridesRequest>,
    ) -> Reply<proto::ListOverridesResponse> {
        let overrides = self
            .handle
            .overrides()
            .iter()
            .map(|o| {
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
            })
            .collect();
        Ok(Response::new(proto::ListOverridesResponse { overrides }))
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
