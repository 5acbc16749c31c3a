//! The descriptor budget: what the listeners may hold, so that probes and
//! VPP always have descriptors.
//!
//! At start maglevd raises its soft `RLIMIT_NOFILE` to the hard limit (as
//! Go's runtime does) with [`raise_nofile`]. Of that limit a reserve is
//! kept that no listener can take:
//!
//! ```text
//! reserve   = RESERVE_BASE + RESERVE_PER_BACKEND × probed backends of the config
//! listeners = RLIMIT_NOFILE − reserve (at least MIN_PER_LISTENER each)
//! ```
//!
//! [`RESERVE_BASE`] covers what the process holds whatever its config (the
//! VPP API and stats sockets and the stats segment, the state file and
//! its temporary, the config file on reload, the runtimes' pollers, the
//! listeners themselves, stdio); [`RESERVE_PER_BACKEND`] covers a
//! backend's probes in flight (a probe holds one socket; a slow one and
//! its successor may overlap, a DNS lookup may hold another). The
//! listeners' part is shared by weight: gRPC and the dashboard
//! [`GRPC_SHARE`] and [`HTTP_SHARE`], `/metrics` [`METRICS_SHARE`] (its
//! clients are a few scrapers), each capped at [`MAX_PER_LISTENER`]. The
//! caps are fixed at start: a reload that adds backends does not move
//! them (restart to recompute).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept whatever the config.
pub const RESERVE_BASE: u64 = 128;
/// Descriptors kept per backend of the config.
pub const RESERVE_PER_BACKEND: u64 = 4;
/// The most connections one listener holds.
pub const MAX_PER_LISTENER: u64 = 4096;
/// The fewest a listener is given, even when the limit leaves less.
pub const MIN_PER_LISTENER: u64 = 8;
/// gRPC's weight in the listeners' part.
pub const GRPC_SHARE: u64 = 2;
/// The dashboard's weight.
pub const HTTP_SHARE: u64 = 2;
/// `/metrics`'s weight.
pub const METRICS_SHARE: u64 = 1;

/// What raising the soft limit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The soft limit before.
    pub before: u64,
    /// The soft limit now (the hard limit, when raising worked).
    pub now: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; logs both.
pub fn raise_nofile() -> std::io::Result<Raised> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let mut now = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => now = hard,
            Err(e) => tracing::warn!(
                soft,
                hard,
                error = %e,
                "cannot raise the descriptor limit (RLIMIT_NOFILE) to its hard limit; set LimitNOFILE="
            ),
        }
    }
    tracing::info!(
        before = soft,
        soft = now,
        hard,
        "descriptor limit (RLIMIT_NOFILE)"
    );
    Ok(Raised {
        before: soft,
        now,
        hard,
    })
}

/// The soft `RLIMIT_NOFILE` now (1024, the usual default, if unreadable).
pub fn nofile() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Which listeners run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Listeners {
    /// gRPC.
    pub grpc: bool,
    /// `/metrics`.
    pub metrics: bool,
    /// The dashboard.
    pub http: bool,
}

/// Each listener's connection cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// gRPC's.
    pub grpc: usize,
    /// `/metrics`'s.
    pub metrics: usize,
    /// The dashboard's.
    pub http: usize,
    /// The reserve kept for probes and VPP.
    pub reserve: u64,
}

impl Caps {
    /// The caps under a limit of `nofile` descriptors with `backends`
    /// configured and `on` listeners running.
    pub fn new(nofile: u64, backends: usize, on: Listeners) -> Caps {
        let reserve = RESERVE_BASE + RESERVE_PER_BACKEND * backends as u64;
        let part = nofile.saturating_sub(reserve);
        let weight = |run: bool, w: u64| if run { w } else { 0 };
        let total = weight(on.grpc, GRPC_SHARE)
            + weight(on.metrics, METRICS_SHARE)
            + weight(on.http, HTTP_SHARE);
        let cap = |run: bool, w: u64| -> usize {
            if !run || total == 0 {
                return 0;
            }
            let share = (part * w / total).clamp(MIN_PER_LISTENER, MAX_PER_LISTENER);
            usize::try_from(share).unwrap_or(usize::MAX)
        };
        Caps {
            grpc: cap(on.grpc, GRPC_SHARE),
            metrics: cap(on.metrics, METRICS_SHARE),
            http: cap(on.http, HTTP_SHARE),
            reserve,
        }
    }

    /// The cap of the server named `server` (`gRPC`, `metrics`, `web`).
    pub fn of(&self, server: &str) -> usize {
        match server {
            "gRPC" => self.grpc,
            "metrics" => self.metrics,
            _ => self.http,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Listeners = Listeners {
        grpc: true,
        metrics: true,
        http: true,
    };

    #[test]
    fn the_listeners_share_what_the_reserve_leaves() {
        // 65536 with 100 backends: a reserve of 528, the rest shared 2:1:2
        // and capped.
        let c = Caps::new(65536, 100, ALL);
        assert_eq!(c.reserve, 528);
        assert_eq!((c.grpc, c.metrics, c.http), (4096, 4096, 4096));
        // 1024 with 10 backends: 856 shared 2:1:2.
        let c = Caps::new(1024, 10, ALL);
        assert_eq!(c.reserve, 168);
        assert_eq!((c.grpc, c.metrics, c.http), (342, 171, 342));
        assert!(c.grpc + c.metrics + c.http + c.reserve as usize <= 1024);
        // Only gRPC and /metrics: 2:1.
        let on = Listeners { http: false, ..ALL };
        let c = Caps::new(1024, 10, on);
        assert_eq!((c.grpc, c.metrics, c.http), (570, 285, 0));
        assert_eq!(c.of("gRPC"), 570);
        assert_eq!(c.of("metrics"), 285);
    }

    #[test]
    fn a_limit_below_the_reserve_leaves_each_listener_its_minimum() {
        let c = Caps::new(100, 10, ALL);
        assert_eq!((c.grpc, c.metrics, c.http), (8, 8, 8));
    }

    #[test]
    fn the_soft_limit_can_be_read_and_raised() {
        let r = raise_nofile().unwrap();
        assert!(r.before <= r.now && r.now <= r.hard);
        assert_eq!(nofile(), r.now);
    }
}
