//! The state file (`--state-file`): the last state of every backend,
//! with when it was reached, its damping penalty and every frontend's
//! active pool, written atomically ([`maglev_health::persist`]) so that a
//! quick restart is invisible.
//!
//! At start, [`restore`] reads it: if it is younger than
//! `healthchecker.state-max-age`, its states seed the checker (a restored
//! `up` goes down after `fall` failed probes, as before the restart: the
//! probes confirm it) and its
//! pool choices seed [`PoolChoices`](crate::daemon::pools::PoolChoices), so
//! warm-up releases every frontend without waiting for probes and the first
//! sync finds VPP already as it should be. A missing file is a first
//! start; a corrupt, foreign, future or stale one is ignored with a
//! warning that says why. Nothing in it can reach VPP: it only seeds the
//! checker, and warm-up still decides when the reconciler runs.
//!
//! While running, [`run`] writes it a second after any change (changes in
//! that second are coalesced), every [`HEARTBEAT`] (so that its age says
//! how long ago the daemon last stood behind it), and once more at
//! shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maglev_core::config::Config;
use maglev_core::state::BackendState;
use maglev_health::checker::Seed;
use maglev_health::persist::{self, Loaded, SavedBackend, SavedFrontend, SavedState};
use tokio::time::Instant;

use crate::clock::WallClock;
use crate::daemon::handle::Handle;

/// How long after a change the file is written (changes in between are
/// written together).
pub const WRITE_DELAY: Duration = Duration::from_secs(1);

/// The longest the file goes unwritten while the daemon runs.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// What a state file restored.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Seeds for the checker, by backend.
    pub(crate) seeds: BTreeMap<String, Seed>,
    /// Active pools, by frontend.
    pub(crate) pools: BTreeMap<String, String>,
}

/// Reads `path` for `config` (see the module doc); never fails: what it
/// cannot use it logs and ignores.
pub(crate) fn restore(path: &Path, config: &Config, clock: &WallClock) -> Restored {
    let max_age = config.healthchecker().state_max_age;
    if max_age.is_zero() {
        tracing::info!(path = %path.display(), "state-max-age is 0: the state file is not read");
        return Restored::default();
    }
    let now = Instant::now();
    let now_ms = clock.unix_nanos(now) / 1_000_000;
    let saved = match persist::load(path, now_ms, max_age) {
        Loaded::Missing => {
            tracing::info!(path = %path.display(), "no state file: a cold start");
            return Restored::default();
        }
        Loaded::Ignored { why } => {
            tracing::warn!("{why}");
            return Restored::default();
        }
        Loaded::Fresh(saved) => saved,
    };
    let ago =
        |ms: i64| Duration::from_millis(u64::try_from(now_ms.saturating_sub(ms)).unwrap_or(0));
    let age = ago(saved.written_unix_ms);
    let seeds: BTreeMap<String, Seed> = saved
        .backends
        .into_iter()
        .filter(|(name, _)| config.backend(name).is_some())
        .map(|(name, b)| {
            let at = |ms: i64| now.checked_sub(ago(ms)).unwrap_or(now);
            let seed = Seed {
                address: b.address,
                state: b.state,
                since: at(b.since_unix_ms),
                // The checker's damper decays it from then.
                penalty: b.penalty,
                penalty_at: at(saved.written_unix_ms),
            };
            (name, seed)
        })
        .collect();
    let pools = saved
        .frontends
        .into_iter()
        .filter_map(|(name, f)| Some((name, f.active_pool?)))
        .collect();
    tracing::info!(
        path = %path.display(),
        backends = seeds.len(),
        age = %maglev_core::config::format_duration(age),
        "restored backend states from the state file; probes confirm them"
    );
    Restored { seeds, pools }
}

/// What the daemon would write now.
fn snapshot(handle: &Handle) -> SavedState {
    let clock = handle.clock();
    let now = Instant::now();
    let ms = |at: Instant| clock.unix_nanos(at) / 1_000_000;
    let written_unix_ms = ms(now);
    let backends = handle
        .backends()
        .into_iter()
        .filter(|(_, s)| matches!(s.state, BackendState::Up | BackendState::Down))
        .map(|(name, s)| {
            let since = s.history.last().map_or(now, |t| t.at);
            let saved = SavedBackend {
                address: s.address,
                state: s.state,
                since_unix_ms: ms(since).min(written_unix_ms),
                penalty: s.damping.as_ref().map_or(0.0, |d| d.penalty(now)),
            };
            (name.to_string(), saved)
        })
        .collect();
    let frontends = handle
        .shared
        .pools
        .snapshot()
        .into_iter()
        .map(|(name, pool)| {
            (
                name,
                SavedFrontend {
                    active_pool: Some(pool),
                },
            )
        })
        .collect();
    SavedState {
        written_unix_ms,
        backends,
        frontends,
    }
}

/// Writes the file once, off the async workers; a failure is logged when
/// it differs from the last one.
async fn write(handle: &Handle, path: &Path, last_error: &mut Option<String>) {
    let bytes = persist::encode(&snapshot(handle));
    let target = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || persist::write_atomic(&target, &bytes)).await;
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    match (&error, &*last_error) {
        (Some(e), last) if last.as_deref() != Some(e.as_str()) => {
            tracing::warn!(path = %path.display(), error = %e, "writing the state file failed; a restart will be a cold start");
        }
        (None, Some(_)) => {
            tracing::info!(path = %path.display(), "the state file is written again")
        }
        _ => {}
    }
    *last_error = error;
}

/// Writes the state file at `path` until the daemon stops, then once more.
pub(crate) async fn run(handle: Handle, path: PathBuf) {
    let mut events = handle.checker().subscribe();
    let mut last_error = None;
    write(&handle, &path, &mut last_error).await;
    let mut due: Option<Instant> = None;
    let mut heartbeat = Instant::now() + HEARTBEAT;
    loop {
        let wake = due.map_or(heartbeat, |d| d.min(heartbeat));
        tokio::select! {
            _ = handle.stopping() => break,
            e = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e {
                    break;
                }
                // A change, or events were lost: either way, write soon.
                due.get_or_insert_with(|| Instant::now() + WRITE_DELAY);
            }
            _ = tokio::time::sleep_until(wake) => {
                write(&handle, &path, &mut last_error).await;
                due = None;
                heartbeat = Instant::now() + HEARTBEAT;
            }
        }
    }
    write(&handle, &path, &mut last_error).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "
maglev:
  healthchecks:
    h:
      type: tcp
      port: 80
      damping: { half-life: 1m }
  backends:
    a: { address: 10.0.0.1, healthcheck: h }
    b: { address: 10.0.0.2 }
  frontends:
    f:
      address: 192.0.2.1
      pools:
        - name: p
          backends: { a: {}, b: {} }
";

    #[tokio::test(start_paused = true)]
    async fn restore_decays_penalties_dates_states_and_drops_unknown_names() {
        let config = Config::from_yaml(CONFIG, "t.yaml").unwrap();
        let now = Instant::now();
        let clock = WallClock::at(now, Duration::from_secs(1_800_000_000));
        let now_ms = clock.unix_nanos(now) / 1_000_000;
        let saved = SavedState {
            // One half-life ago.
            written_unix_ms: now_ms - 60_000,
            backends: [
                ("a", 4.0, now_ms - 600_000),
                ("b", 4.0, now_ms - 60_000),
                ("gone", 0.0, now_ms - 60_000),
            ]
            .into_iter()
            .map(|(n, penalty, since)| {
                let b = SavedBackend {
                    address: "10.0.0.1".parse().unwrap(),
                    state: BackendState::Up,
                    since_unix_ms: since,
                    penalty,
                };
                (n.to_owned(), b)
            })
            .collect(),
            frontends: [(
                "f".to_owned(),
                SavedFrontend {
                    active_pool: Some("p".to_owned()),
                },
            )]
            .into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        persist::write_atomic(&path, &persist::encode(&saved)).unwrap();
        let r = restore(&path, &config, &clock);
        assert_eq!(r.seeds.keys().collect::<Vec<_>>(), ["a", "b"]);
        let a = &r.seeds["a"];
        let damping = config.healthcheck("h").unwrap().damping.unwrap();
        let decayed =
            maglev_health::damping::Damper::with_penalty(damping, a.penalty, a.penalty_at)
                .penalty(now);
        assert!((decayed - 2.0).abs() < 1e-6, "halved: {decayed}");
        assert_eq!(a.since, now - Duration::from_secs(600));
        assert_eq!(r.seeds["b"].penalty_at, now - Duration::from_secs(60));
        assert_eq!(r.pools["f"], "p");

        // Past state-max-age (5m): nothing.
        let old = SavedState {
            written_unix_ms: now_ms - 301_000,
            ..saved
        };
        persist::write_atomic(&path, &persist::encode(&old)).unwrap();
        let r = restore(&path, &config, &clock);
        assert!(r.seeds.is_empty() && r.pools.is_empty());
    }
}
