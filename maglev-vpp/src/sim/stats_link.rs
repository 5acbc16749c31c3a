//! Lines the API simulator up with the stats-segment simulator.
//!
//! [`SimStats`] observes the API simulator's model: a VIP created over the
//! API gets its LB counter columns (its pool index) and its
//! `/net/route/to` row (the stats index `ip_route_lookup` answers) in the
//! simulated segment, and only VIPs with a serving AS get the trickle of
//! simulated packets. So a test, or `maglev-vppsim`, can "send traffic" to a
//! VIP and read it back through the stats socket.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use maglev_vpp::sim::{Sim, SimConfig};
//! use maglev_vpp::stats::sim::SimStats;
//!
//! let stats = SimStats::new(1)?;
//! let sim = Sim::start(SimConfig::new("/tmp/api.sock")).await?;
//! sim.set_observer(Arc::new(stats.clone()));
//! # Ok(()) }
//! ```

use super::SimObserver;
use crate::stats::sim::SimStats;

impl SimObserver for SimStats {
    fn vip_added(&self, pool_index: u32, route_stats_index: u32) {
        if let Err(error) = self.add_vip(pool_index, route_stats_index) {
            tracing::warn!(pool_index, route_stats_index, %error, "stats simulator cannot add the VIP");
        }
    }

    fn vip_removed(&self, pool_index: u32) {
        self.remove_vip(pool_index);
    }

    fn vip_serving(&self, pool_index: u32, serving: bool) {
        self.set_active(pool_index, serving);
    }
}
