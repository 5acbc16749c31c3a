//! The probe observer: a hook called once per probe result, so the daemon
//! can export `maglev_probe_total{backend,type,result,code}` and the
//! `maglev_probe_duration_seconds{backend,type}` histogram (SPEC §3.1)
//! without the checker knowing about metrics.
//!
//! The checker holds an `Option<Arc<dyn ProbeObserver>>`: without one,
//! a probe costs one branch more than before.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use maglev_core::config::ProbeKind;

use crate::code::Code;
use crate::probe::LocalCause;

/// One probe that ended, as an observer sees it. Borrowed: copy out what
/// you keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRecord<'a> {
    /// The backend's name.
    pub backend: &'a str,
    /// The address probed.
    pub address: IpAddr,
    /// The health check's type (`http`, `https`, `tcp`, `icmp`).
    pub kind: ProbeKind,
    /// The result code (`L7OK`, `L4TOUT`, ...).
    pub code: Code,
    /// How long the probe took.
    pub duration: Duration,
}

impl ProbeRecord<'_> {
    /// Whether the probe passed.
    pub fn passed(&self) -> bool {
        self.code.is_pass()
    }

    /// The `result` label: `pass`, `fail`, or `error` for a probe that
    /// could not run (`SOCKERR`: no evidence either way).
    pub fn result(&self) -> &'static str {
        if self.passed() {
            "pass"
        } else if self.code == Code::SockErr {
            "error"
        } else {
            "fail"
        }
    }
}

/// Called by the checker around every probe, from the probe's task.
///
/// It runs on the checker's runtime, outside the checker's locks, twice per
/// probe of every backend: keep it short and never block (bump an atomic
/// counter, not a database).
pub trait ProbeObserver: Send + Sync + fmt::Debug {
    /// A probe of `backend` at `address` starts (nothing by default).
    fn probe_started(&self, backend: &str, address: IpAddr) {
        let _ = (backend, address);
    }

    /// One probe ended with `record`.
    fn probe_ended(&self, record: &ProbeRecord<'_>);

    /// The probe of `backend` that just ended (`probe_ended` was called
    /// for it, with `SOCKERR`) could not run, because of `cause`: ours,
    /// not the backend's (nothing by default).
    fn probe_could_not_run(&self, backend: &str, cause: LocalCause) {
        let _ = (backend, cause);
    }
}
