//! What a reconciler needs from VPP, as a trait: read the LB state, apply a
//! plan, set the global conf. [`Client`] implements it over the socket;
//! [`ModelDataplane`] (feature `sim`) implements it in memory over the
//! simulator's [`LbModel`], so a reconciler is tested without sockets where
//! sockets add nothing.
//!
//! The trait is `#[async_trait]`: its futures are boxed and `Send`, so it
//! is dyn-compatible and a daemon holds an `Arc<dyn Dataplane>` and calls
//! it from any task of a multi-threaded runtime. (Native `async fn` in
//! traits is not dyn-compatible, and its futures cannot be required to be
//! `Send` on stable Rust.) The box costs one allocation per call, nothing
//! beside a round-trip to VPP.
//!
//! **Invariant:** [`ModelDataplane`] is not a mock. It builds the same
//! requests as the client ([`op_request`], [`lb_conf_update`]), hands them
//! to the same [`LbModel`] methods the socket simulator calls, turns
//! retvals into the same [`Error::Retval`], reads the state through the
//! same [`snapshot_from`], and schedules ops with the same per-prefix
//! stages as [`apply`](crate::lb::apply::apply): for any plan it answers
//! what the socket simulator answers.

use maglev_core::dataplane::ObservedState;
use maglev_core::plan::Op;

use crate::api::client::Client;
use crate::api::messages::LbConf;
use crate::lb::apply::{self, ApplyReport};
use crate::lb::error::LbError;
use crate::lb::ops::LbSnapshot;
#[cfg(feature = "sim")]
use crate::lb::ops::{OpRequest, lb_conf_update, op_request, snapshot_from};
#[cfg(feature = "sim")]
use crate::sim::LbModel;
#[cfg(feature = "sim")]
use crate::{Error, Retval};

/// A stand-in for VPP's LB plugin: what the reconciler reads and changes.
#[async_trait::async_trait]
pub trait Dataplane: Send + Sync {
    /// VIPs (with pool indexes and counters) and ASes, read in one go.
    async fn snapshot(&self) -> Result<LbSnapshot, LbError>;

    /// The planner's view of the LB state.
    async fn observe(&self) -> Result<ObservedState, LbError> {
        Ok(self.snapshot().await?.observed())
    }

    /// Executes a plan: ordered within a prefix, pipelined across
    /// prefixes, a failure ending only its own prefix's chain (see
    /// [`apply`](crate::lb::apply)).
    async fn apply(&self, ops: &[Op]) -> ApplyReport;

    /// Sends `lb_conf` only if `want` differs from the current conf, its
    /// [`LB_CONF_KEEP`](crate::lb::ops::LB_CONF_KEEP) fields matching
    /// anything; returns whether it was sent.
    async fn ensure_lb_conf(&self, want: &LbConf) -> Result<bool, LbError>;
}

#[async_trait::async_trait]
impl Dataplane for Client {
    async fn snapshot(&self) -> Result<LbSnapshot, LbError> {
        Ok(self.lb_snapshot().await?)
    }

    async fn apply(&self, ops: &[Op]) -> ApplyReport {
        apply::apply(self, ops).await
    }

    async fn ensure_lb_conf(&self, want: &LbConf) -> Result<bool, LbError> {
        Ok(Client::ensure_lb_conf(self, want).await?)
    }
}

/// The LB plugin in memory (feature `sim`): the simulator's [`LbModel`]
/// behind the [`Dataplane`] trait, with failures injectable per op.
///
/// ```
/// # async fn f() {
/// use maglev_vpp::lb::dataplane::{Dataplane, ModelDataplane};
/// let vpp = ModelDataplane::new();
/// assert!(vpp.observe().await.unwrap().is_empty());
/// # }
/// ```
#[cfg(feature = "sim")]
#[derive(Debug)]
pub struct ModelDataplane {
    state: std::sync::Mutex<ModelState>,
    epoch: tokio::time::Instant,
}

#[cfg(feature = "sim")]
#[derive(Debug)]
struct ModelState {
    model: LbModel,
    /// Ops to refuse once each, with the retval to answer.
    failures: Vec<(Op, Retval)>,
}

#[cfg(feature = "sim")]
impl Default for ModelDataplane {
    fn default() -> Self {
        ModelDataplane::new()
    }
}

#[cfg(feature = "sim")]
impl ModelDataplane {
    /// A fresh plugin (as a freshly started VPP or simulator).
    pub fn new() -> ModelDataplane {
        ModelDataplane::from_model(LbModel::new())
    }

    /// Starts from a given LB state.
    pub fn from_model(model: LbModel) -> ModelDataplane {
        ModelDataplane {
            state: std::sync::Mutex::new(ModelState {
                model,
                failures: Vec::new(),
            }),
            epoch: tokio::time::Instant::now(),
        }
    }

    /// Reads or changes the LB state directly (its events are dropped).
    pub fn with_model<R>(&self, f: impl FnOnce(&mut LbModel) -> R) -> R {
        let mut state = self.lock();
        let r = f(&mut state.model);
        state.model.take_events();
        r
    }

    /// Makes the next execution of `op` fail with `retval` without
    /// touching the state, as the simulator's
    /// [`FaultAction::Retval`](crate::sim::FaultAction::Retval) does.
    pub fn fail_once(&self, op: Op, retval: Retval) {
        self.lock().failures.push((op, retval));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ModelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Model seconds since creation, as the simulator counts them.
    fn now(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// One op, as the socket simulator handles its request.
    fn execute(&self, op: &Op) -> Result<(), LbError> {
        use crate::api::messages::{LbAddDelAsV2, LbAddDelVipV2, LbAsSetWeight, Message};
        let request = op_request(op)?;
        let now = self.now();
        let mut state = self.lock();
        let message = match request {
            OpRequest::Vip(_) => LbAddDelVipV2::NAME,
            OpRequest::As(_) => LbAddDelAsV2::NAME,
            OpRequest::Weight(_) => LbAsSetWeight::NAME,
        };
        let retval = match state.failures.iter().position(|(o, _)| o == op) {
            Some(i) => state.failures.remove(i).1.0,
            None => match request {
                OpRequest::Vip(r) => state.model.add_del_vip(&r, now),
                OpRequest::As(r) => state.model.add_del_as(&r, now),
                OpRequest::Weight(r) => state.model.set_weight(&r),
            },
        };
        state.model.take_events();
        retval_result(message, retval)
    }
}

#[cfg(feature = "sim")]
fn retval_result(message: &'static str, retval: i32) -> Result<(), LbError> {
    match retval {
        0 => Ok(()),
        rv => Err(Error::Retval {
            message,
            retval: Retval(rv),
        }
        .into()),
    }
}

#[cfg(feature = "sim")]
#[async_trait::async_trait]
impl Dataplane for ModelDataplane {
    async fn snapshot(&self) -> Result<LbSnapshot, LbError> {
        let state = self.lock();
        let m = &state.model;
        Ok(snapshot_from(
            &m.vip_details(),
            &m.show_vips_verbose(),
            &m.as_details(&Default::default()),
        )?)
    }

    async fn apply(&self, ops: &[Op]) -> ApplyReport {
        apply::run(ops, |op| self.execute(op), std::future::ready).await
    }

    async fn ensure_lb_conf(&self, want: &LbConf) -> Result<bool, LbError> {
        use crate::api::messages::Message;
        let mut state = self.lock();
        let Some(update) = lb_conf_update(&state.model.conf, want) else {
            return Ok(false);
        };
        let retval = state.model.set_conf(update);
        retval_result(LbConf::NAME, retval)?;
        Ok(true)
    }
}
