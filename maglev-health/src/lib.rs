//! Health checking for maglev: probes, the rise/fall state machine and the
//! checker that owns every backend. It never knows about VPP.
//!
//! # Module map
//!
//! - [`code`]: result codes (`L4OK` … `SOCKERR`) and operator codes.
//! - [`machine`]: the pure per-backend state machine (rise/fall counter,
//!   operator transitions, history) and interval jitter.
//! - [`damping`]: the pure flap damping of one backend (penalty, suppress,
//!   release).
//! - [`probe`]: the [`Prober`](probe::Prober) trait and the HTTP(S), TCP and
//!   ICMP probes, built from a health check by [`probe::build`];
//!   [`probe::local`] says which errors are evidence about the backend and
//!   which mean the probe could not run (`SOCKERR`, never a failure).
//! - [`netns`]: creating sockets inside a network namespace from a
//!   dedicated thread.
//! - [`checker`]: the [`Checker`], which runs one probe
//!   task per backend, publishes transitions and keeps a lock-free snapshot.
//! - [`observe`]: the per-probe hook ([`ProbeObserver`]) for metrics.
//! - [`status`]: the published per-backend status and transition events.
//! - [`transition_log`]: the `backend-transition` lines of a start or
//!   reload, one summary with totals above a count.
//! - [`persist`]: the state file (the last state of every backend, read
//!   back at start): its JSON format, atomic write and checked load.
//! - [`error`]: the crate's error type.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo(yaml: &str, new_yaml: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use maglev_core::config::Config;
//! use maglev_health::Checker;
//!
//! let config = Config::from_yaml(yaml, "/etc/vpp-maglev/maglev.yaml")?;
//! // One probe task per backend, in `healthchecker.netns` if set.
//! let checker = Checker::start(&config)?;
//! // Subscribe first, then read the snapshot: nothing is missed.
//! let mut events = checker.subscribe();
//! for (name, status) in checker.snapshot() {
//!     println!("{name} {} {}", status.address, status.state);
//! }
//! // What the reconciler needs, without locks.
//! let state_of = |b: &str| checker.state(b);
//! # let _ = state_of;
//! checker.pause("nginx0-ams")?;
//! checker.resume("nginx0-ams")?;
//! checker.reload(&Config::from_yaml(new_yaml, "/etc/vpp-maglev/maglev.yaml")?)?;
//! while let Ok(event) = events.recv().await {
//!     if let Some(t) = event.transition() {
//!         println!("{} {} -> {} {} {}", event.backend, t.from, t.to, t.code, t.detail);
//!     }
//! #   break;
//! }
//! checker.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod checker;
pub mod code;
pub mod damping;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod machine;
pub mod netns;
pub mod observe;
pub mod persist;
pub mod probe;
pub mod status;
pub mod transition_log;

pub use checker::{Checker, CheckerBuilder};
pub use code::Code;
pub use error::Error;
pub use observe::{ProbeObserver, ProbeRecord};
