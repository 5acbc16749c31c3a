//! The state file (`--state-file`): the last state of every backend,
//! with when it was reached, its damping penalty, every frontend's
//! active pool and the operators' overrides (pause, disable or enable,
//! runtime weights, the node's drain, with who and when), written atomically and readable
//! only by the daemon's user ([`maglev_health::persist`]) so that a quick
//! restart is invisible and operator intent survives any restart.
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
//! The overrides are restored whatever the file's age (a future or stale
//! file loses only its health states): a paused backend starts paused, a
//! disabled one disabled, and a weight override is in the running config
//! before the first plan, so VPP never sees the file's weight in between.
//! Each is first checked against the config file the daemon starts with
//! ([`overrides::rebase`]): one whose key the file changed since is
//! replaced by the file's value.
//!
//! While running, [`run`] writes it at start, a second after any change
//! (a backend's transition or damping, an override, a frontend's pool
//! choice; changes in that second are coalesced), once more at shutdown,
//! and while nothing changes only every half `state-max-age`
//! ([`refresh_of`]): its cost grows with the backends (at 160,000
//! backends, a file of about 20 MB; figures in docs/performance.md), so it
//! is paid per change, not per minute, but a crash after a quiet hour
//! still finds a file young enough to restart warm. The
//! snapshot, its encoding and the fsync run on a blocking thread, one
//! write at a time, and a write that took `d` is followed by the next no
//! sooner than [`DUTY`]` × d`, so even backends that change all the time
//! keep the writer under a tenth of a core. Pool choices have no event of
//! their own: every [`POOLS_CHECK`] a fingerprint of them (one pass over
//! the frontends) is compared with the last write's. The file's age is
//! thus at most half `state-max-age` while the daemon runs.
//! A write that keeps failing is logged once per cause (the
//! error's kind and the path, not its text, which names a random
//! temporary file), and once more when writing works again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use maglev_core::config::Config;
use maglev_core::state::BackendState;
use maglev_health::checker::Seed;
use maglev_health::persist::{
    self, Loaded, SavedBackend, SavedFrontend, SavedOverrides, SavedState,
};
use tokio::time::Instant;

use crate::clock::WallClock;
use crate::daemon::handle::Handle;
use crate::daemon::overrides;

/// How long after a change the file is written (changes in between are
/// written together).
pub const WRITE_DELAY: Duration = Duration::from_secs(1);

/// What a state file restored.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Seeds for the checker, by backend.
    pub(crate) seeds: BTreeMap<String, Seed>,
    /// Active pools, by frontend.
    pub(crate) pools: BTreeMap<String, String>,
    /// The operators' overrides that hold for the config started with.
    pub(crate) overrides: SavedOverrides,
}

/// Reads `path` for `config` (see the module doc); never fails: what it
/// cannot use it logs and ignores.
pub(crate) fn restore(path: &Path, config: &Config, clock: &WallClock) -> Restored {
    let max_age = config.healthchecker().state_max_age;
    let now = Instant::now();
    let now_ms = clock.unix_nanos(now) / 1_000_000;
    let only_overrides = |mut overrides: SavedOverrides| {
        overrides::rebase(&mut overrides, config, "start");
        if !overrides.is_empty() {
            tracing::info!(
                path = %path.display(),
                overrides = overrides.backends.len() + overrides.weights.len(),
                "restored operator overrides from the state file"
            );
        }
        Restored {
            overrides,
            ..Restored::default()
        }
    };
    let saved = match persist::load(path, now_ms, max_age) {
        Loaded::Missing => {
            tracing::info!(path = %path.display(), "no state file: a cold start");
            return Restored::default();
        }
        Loaded::Ignored { why, overrides } if max_age.is_zero() => {
            tracing::info!(path = %path.display(), "state-max-age is 0: the backend states of the state file are not used");
            tracing::debug!("{why}");
            return only_overrides(overrides);
        }
        Loaded::Ignored { why, overrides } => {
            tracing::warn!("{why}");
            return only_overrides(overrides);
        }
        Loaded::Fresh(saved) if max_age.is_zero() => {
            tracing::info!(path = %path.display(), "state-max-age is 0: the backend states of the state file are not used");
            return only_overrides(saved.overrides);
        }
        Loaded::Fresh(saved) => saved,
    };
    let mut overrides = saved.overrides;
    overrides::rebase(&mut overrides, config, "start");
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
        overrides = overrides.backends.len() + overrides.weights.len(),
        age = %maglev_core::config::format_duration(age),
        "restored backend states from the state file; probes confirm them"
    );
    Restored {
        seeds,
        pools,
        overrides,
    }
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
    let mut overrides = handle
        .shared
        .overrides
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // Never stamped after the file (a clock stepped back since).
    for i in overrides.backends.values_mut() {
        i.at_unix_ms = i.at_unix_ms.min(written_unix_ms);
    }
    for w in overrides.weights.values_mut() {
        w.at_unix_ms = w.at_unix_ms.min(written_unix_ms);
    }
    overrides.drain = handle.shared.announce.drain().map(|d| persist::SavedDrain {
        by: d.by,
        at_unix_ms: d.at_unix_ms.min(written_unix_ms),
    });
    SavedState {
        written_unix_ms,
        backends,
        frontends,
        overrides,
    }
}

/// A write failure's cause, for logging it once: its kind and the path,
/// never its text (which names the random temporary file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    kind: std::io::ErrorKind,
    raw: Option<i32>,
}

impl Cause {
    fn of(e: &std::io::Error) -> Cause {
        Cause {
            kind: e.kind(),
            raw: e.raw_os_error(),
        }
    }
}

/// What the writer needs of the daemon: a trait so that a test drives the
/// loop under paused time with a source of its own.
pub(crate) trait Source: Send + Sync + 'static {
    /// What would be written now (called on a blocking thread).
    fn state(&self) -> SavedState;
    /// A fingerprint of every frontend's active pool: cheap (one pass over
    /// the frontends, never the backends), compared every [`POOLS_CHECK`]
    /// because a pool choice has no event of its own.
    fn pools_fingerprint(&self) -> u64;
}

impl Source for Handle {
    fn state(&self) -> SavedState {
        snapshot(self)
    }

    fn pools_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.shared.pools.snapshot().hash(&mut h);
        h.finish()
    }
}

/// How often the writer compares the active pools with the last write's
/// (a frontend's pool choice changes without an event of its own).
pub const POOLS_CHECK: Duration = Duration::from_secs(30);

/// The writer spends at most one part in `DUTY` of its time writing:
/// after a write that took `d` (snapshot, encoding, fsync), the next one
/// waits at least `DUTY × d`, however often backends change.
pub const DUTY: u32 = 10;

/// What one write cost, for the bound of [`DUTY`] and the debug log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WriteCost {
    /// The file's size.
    pub(crate) bytes: usize,
    /// Snapshot and encoding.
    pub(crate) encode: Duration,
    /// The atomic write (temporary file, fsync, rename, fsync of the
    /// directory).
    pub(crate) write: Duration,
}

/// Writes the file once, on a blocking thread (the snapshot and its
/// encoding grow with the backends, so they never run on an async worker);
/// a failure is logged when its cause differs from the last one's
/// ([`Cause`]).
async fn write<S: Source>(
    source: &Arc<S>,
    path: &Path,
    last_error: &mut Option<Cause>,
) -> WriteCost {
    let source = source.clone();
    let target = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let bytes = persist::encode(&source.state());
        let t1 = Instant::now();
        let r = persist::write_atomic(&target, &bytes);
        let cost = WriteCost {
            bytes: bytes.len(),
            encode: t1 - t0,
            write: t1.elapsed(),
        };
        (r, cost)
    })
    .await;
    let (result, cost) = match result {
        Ok(r) => r,
        Err(e) => (
            Err(std::io::Error::other(e.to_string())),
            WriteCost::default(),
        ),
    };
    tracing::debug!(
        path = %path.display(),
        bytes = cost.bytes,
        encode = ?cost.encode,
        write = ?cost.write,
        "state file written"
    );
    note_result(path, &result, last_error);
    cost
}

/// Logs a write's `result` unless its cause is the last one's.
pub(crate) fn note_result(
    path: &Path,
    result: &std::io::Result<()>,
    last_error: &mut Option<Cause>,
) {
    let cause = result.as_ref().err().map(Cause::of);
    match (result, &*last_error) {
        (Err(e), last) if last.as_ref() != cause.as_ref() => {
            tracing::warn!(path = %path.display(), error = %e, "writing the state file failed; a restart will be a cold start (logged again only for another cause)");
        }
        (Ok(()), Some(_)) => {
            tracing::info!(path = %path.display(), "the state file is written again")
        }
        _ => {}
    }
    *last_error = cause;
}

/// Writes the state file at `path` until the daemon stops, then once more.
pub(crate) async fn run(handle: Handle, path: PathBuf) {
    let events = handle.checker().subscribe();
    let stop = handle.clone();
    let refresh = refresh_of(handle.config().healthchecker().state_max_age);
    let source = Arc::new(handle);
    writer(
        source.clone(),
        &path,
        events,
        &source.shared.overrides_changed,
        refresh,
        stop.stopping(),
    )
    .await;
}

/// How long the file may go unwritten while nothing changes: half
/// `state-max-age`, so that the file a crash leaves behind is always young
/// enough for a warm restart; `None` when the age is not checked (0).
pub(crate) fn refresh_of(state_max_age: Duration) -> Option<Duration> {
    (!state_max_age.is_zero()).then(|| (state_max_age / 2).max(WRITE_DELAY))
}

/// The writer's loop (see the module doc): a write at start, one
/// [`WRITE_DELAY`] after a change (a backend event, lost events, an
/// override, a pool choice seen by the [`POOLS_CHECK`]), never sooner than
/// [`DUTY`] times the last write's cost after it, while nothing changes
/// one every `refresh` (none if `None`), and one when `stopping` ends.
/// Returns how many writes it made.
pub(crate) async fn writer<S: Source>(
    source: Arc<S>,
    path: &Path,
    mut events: tokio::sync::broadcast::Receiver<maglev_health::status::BackendEvent>,
    overrides: &tokio::sync::Notify,
    refresh: Option<Duration>,
    stopping: impl Future<Output = ()>,
) -> u64 {
    let mut last_error = None;
    let mut writes = 0;
    let mut pools = source.pools_fingerprint();
    let cost = write(&source, path, &mut last_error).await;
    writes += 1;
    let mut earliest = Instant::now() + (cost.encode + cost.write) * DUTY;
    let mut due: Option<Instant> = None;
    let mut check = Instant::now() + POOLS_CHECK;
    let mut written = Instant::now();
    tokio::pin!(stopping);
    loop {
        let stale = refresh.map(|r| written + r);
        let wake = [due, stale].into_iter().flatten().fold(check, Instant::min);
        let changed = tokio::select! {
            () = &mut stopping => break,
            () = overrides.notified() => true,
            e = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e {
                    break;
                }
                // A change, or events were lost: either way, write soon.
                true
            }
            () = tokio::time::sleep_until(wake) => false,
        };
        let now = Instant::now();
        if changed {
            due.get_or_insert_with(|| (now + WRITE_DELAY).max(earliest));
            continue;
        }
        if stale.is_some_and(|at| now >= at) {
            due.get_or_insert_with(|| now.max(earliest));
        }
        if now >= check {
            check = now + POOLS_CHECK;
            let p = source.pools_fingerprint();
            if p != pools {
                due.get_or_insert_with(|| now.max(earliest));
            }
        }
        if due.is_some_and(|d| d <= now) {
            // Read before the write: a choice made while it runs is seen
            // by the next check.
            pools = source.pools_fingerprint();
            let cost = write(&source, path, &mut last_error).await;
            writes += 1;
            written = Instant::now();
            earliest = written + (cost.encode + cost.write) * DUTY;
            due = None;
        }
    }
    write(&source, path, &mut last_error).await;
    writes + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The levels of the events logged while `f` runs.
    fn levels_logged(f: impl FnOnce()) -> Vec<tracing::Level> {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt;
        struct Levels(Arc<Mutex<Vec<tracing::Level>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Levels {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.lock().unwrap().push(*e.metadata().level());
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Levels(seen.clone()));
        tracing::subscriber::with_default(subscriber, f);
        seen.lock().unwrap().clone()
    }

    #[test]
    fn a_failing_write_is_logged_once_per_cause_not_per_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        // A directory that does not exist: every write fails, and each
        // error's text names another random temporary file.
        let path = dir.path().join("gone").join("state.json");
        let errors: Vec<_> = (0..3)
            .map(|_| persist::write_atomic(&path, b"{}"))
            .collect();
        let texts: Vec<String> = errors
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert_ne!(texts[0], texts[1], "the texts differ: {texts:?}");
        let mut last = None;
        let levels = levels_logged(|| {
            for r in &errors {
                note_result(&path, r, &mut last);
            }
        });
        assert_eq!(levels, [tracing::Level::WARN]);
        // Back to working: one INFO; failing again: one WARN.
        let levels = levels_logged(|| {
            note_result(&path, &Ok(()), &mut last);
            note_result(&path, &Ok(()), &mut last);
            note_result(&path, &errors[0], &mut last);
            note_result(&path, &errors[1], &mut last);
        });
        assert_eq!(levels, [tracing::Level::INFO, tracing::Level::WARN]);
    }

    /// A source whose every state is numbered (its `written_unix_ms` is how
    /// many were taken), with pool choices a test sets.
    #[derive(Default)]
    struct Counted {
        taken: std::sync::atomic::AtomicI64,
        pools: std::sync::atomic::AtomicU64,
    }

    impl Source for Counted {
        fn state(&self) -> SavedState {
            use std::sync::atomic::Ordering;
            SavedState {
                written_unix_ms: self.taken.fetch_add(1, Ordering::SeqCst) + 1,
                ..SavedState::default()
            }
        }
        fn pools_fingerprint(&self) -> u64 {
            self.pools.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// The number of the state the file at `path` holds (0: none).
    fn on_disk(path: &Path) -> i64 {
        std::fs::read(path)
            .ok()
            .and_then(|b| persist::decode(&b, "state").ok())
            .map_or(0, |s| s.written_unix_ms)
    }

    /// Waits (paused time, with a deadline) until the file holds state `n`.
    async fn until_on_disk(path: &Path, n: i64) {
        for _ in 0..10_000 {
            if on_disk(path) == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the state file holds {} after 100 s, not {n}",
            on_disk(path)
        );
    }

    fn event() -> maglev_health::status::BackendEvent {
        use maglev_health::machine::Transition;
        maglev_health::status::BackendEvent {
            backend: "a".into(),
            address: "10.0.0.1".parse().unwrap(),
            change: maglev_health::status::Change::Transition(Transition {
                from: BackendState::Up,
                to: BackendState::Down,
                code: maglev_health::Code::L4Con,
                detail: String::new(),
                at: Instant::now(),
            }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_file_is_written_after_a_change_and_at_shutdown_never_while_nothing_changes() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let source = Arc::new(Counted::default());
        let (tx, rx) = tokio::sync::broadcast::channel(16);
        let overrides = Arc::new(tokio::sync::Notify::new());
        let stop = tokio_util::sync::CancellationToken::new();
        let task = {
            let (source, path, overrides, stop) = (
                source.clone(),
                path.clone(),
                overrides.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                writer(source, &path, rx, &overrides, None, stop.cancelled_owned()).await
            })
        };
        // Written at start.
        until_on_disk(&path, 1).await;
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

        // An hour without a change: not one write, nor one snapshot.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(source.taken.load(Ordering::SeqCst), 1);
        assert_eq!(on_disk(&path), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);

        // A transition: written a second later, once for a burst.
        let at = Instant::now();
        for _ in 0..10 {
            tx.send(event()).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        until_on_disk(&path, 2).await;
        assert!(Instant::now() >= at + WRITE_DELAY);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(
            source.taken.load(Ordering::SeqCst),
            2,
            "one write for the burst"
        );

        // An operator's override.
        overrides.notify_one();
        until_on_disk(&path, 3).await;

        // A pool choice: seen by the next check; an unchanged one is not
        // a change.
        source.pools.store(7, Ordering::SeqCst);
        until_on_disk(&path, 4).await;
        tokio::time::sleep(POOLS_CHECK * 10).await;
        assert_eq!(source.taken.load(Ordering::SeqCst), 4);

        // Events lost (the receiver lagged): a change as well.
        for _ in 0..20 {
            tx.send(event()).unwrap();
        }
        until_on_disk(&path, 5).await;

        // At shutdown, once more.
        stop.cancel();
        assert_eq!(task.await.unwrap(), 6);
        assert_eq!(on_disk(&path), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn while_nothing_changes_the_file_is_refreshed_every_half_max_age() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let source = Arc::new(Counted::default());
        let (_tx, rx) = tokio::sync::broadcast::channel(16);
        let overrides = Arc::new(tokio::sync::Notify::new());
        let stop = tokio_util::sync::CancellationToken::new();
        let refresh = refresh_of(Duration::from_secs(300));
        assert_eq!(refresh, Some(Duration::from_secs(150)));
        assert_eq!(refresh_of(Duration::ZERO), None);
        let task = {
            let (source, path, overrides, stop) = (
                source.clone(),
                path.clone(),
                overrides.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                writer(
                    source,
                    &path,
                    rx,
                    &overrides,
                    refresh,
                    stop.cancelled_owned(),
                )
                .await
            })
        };
        until_on_disk(&path, 1).await;
        // A quiet hour: a write every 150 s, so a crash at any moment
        // leaves a file at most 150 s old (state-max-age is 300 s).
        tokio::time::sleep(Duration::from_secs(3600) + Duration::from_millis(1)).await;
        assert_eq!(source.taken.load(Ordering::SeqCst), 1 + 3600 / 150);
        stop.cancel();
        assert_eq!(task.await.unwrap(), 2 + 3600 / 150);
    }

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
            overrides: SavedOverrides::default(),
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
