//! The state file: the last health state of every backend and the
//! operators' overrides (pause, disable or enable, runtime weights, each
//! with who and when), written by `maglevd` atomically and read back at
//! start so that a quick restart is invisible and operator intent survives
//! it.
//!
//! The format is JSON, keys sorted, one format name and version. Version 2
//! adds `overrides`; a version 1 file (without it) is still read, as a file
//! with no overrides. Version 3 adds the node's drain (`overrides.drain`:
//! who drained the node and when, or `null`); a version 2 file is still
//! read, as a node not drained.
//!
//! ```json
//! {
//!   "format": "vpp-maglev-state",
//!   "version": 3,
//!   "written-unix-ms": 1764670000123,
//!   "backends": {
//!     "nginx0-ams": {
//!       "address": "10.0.0.2",
//!       "state": "up",
//!       "since-unix-ms": 1764660000000,
//!       "penalty": 0.0
//!     }
//!   },
//!   "frontends": {
//!     "web": {
//!       "active-pool": "primary"
//!     }
//!   },
//!   "overrides": {
//!     "backends": {
//!       "nginx1-ams": {
//!         "state": "disabled",
//!         "by": "bob",
//!         "at-unix-ms": 1764669000000,
//!         "file-enabled": true
//!       }
//!     },
//!     "drain": {
//!       "by": "carol",
//!       "at-unix-ms": 1764669500000
//!     },
//!     "weights": [
//!       {
//!         "frontend": "web",
//!         "pool": "primary",
//!         "backend": "nginx0-ams",
//!         "weight": 10,
//!         "file-weight": 100,
//!         "by": "alice",
//!         "at-unix-ms": 1764668000000
//!       }
//!     ]
//!   }
//! }
//! ```
//!
//! An override remembers what the config file said when it was set
//! (`file-enabled`, `file-weight`): the daemon drops it when the file has
//! changed that same key since (the rule in docs/user-guide.md).
//!
//! [`decode`] is strict: a file of another format says so before anything
//! else, a newer version is refused, unknown and duplicate keys are errors,
//! and every value is checked ([`StateFileError`] names the file and the
//! fault). [`load`] adds the file I/O and the age checks and never fails:
//! it says [`Loaded::Missing`], [`Loaded::Fresh`] or why the file is
//! [`Loaded::Ignored`]. [`write_atomic`] replaces the file so that a reader
//! sees the old content or the new, never a part.
//!
//! ```
//! use std::collections::BTreeMap;
//! use maglev_core::state::BackendState;
//! use maglev_health::persist::{self, SavedBackend, SavedState};
//!
//! let mut state = SavedState { written_unix_ms: 1_764_670_000_123, ..SavedState::default() };
//! state.backends.insert(
//!     "nginx0-ams".into(),
//!     SavedBackend {
//!         address: "10.0.0.2".parse().unwrap(),
//!         state: BackendState::Up,
//!         since_unix_ms: 1_764_660_000_000,
//!         penalty: 0.0,
//!     },
//! );
//! let bytes = persist::encode(&state);
//! assert_eq!(persist::decode(&bytes, "state.json").unwrap(), state);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use maglev_core::config::format_duration;
use maglev_core::state::BackendState;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The `format` field of a state file: any other value is a foreign file.
pub const FORMAT: &str = "vpp-maglev-state";

/// The version this code writes and reads. A higher version was written by
/// a newer `maglevd` and is refused; [`OLDEST_VERSION`] and later are read.
pub const VERSION: u32 = 3;

/// The oldest version this code reads (version 1 has no `overrides`).
pub const OLDEST_VERSION: u32 = 1;

/// The longest identity (`by`) an override may name, in bytes.
pub const MAX_IDENTITY_BYTES: usize = 1024;

/// Files larger than this are refused before they are read.
pub const MAX_STATE_FILE_BYTES: u64 = 64 << 20;

/// The most backends (and, separately, frontends) a state file may hold.
pub const MAX_ENTRIES: usize = 1_000_000;

/// The highest penalty accepted (flap damping caps far below this).
pub const MAX_PENALTY: f64 = 1e6;

/// How far in the future (wall clock) a file may have been written before
/// [`load`] decides the clock was stepped back and ignores it, in ms.
pub const FUTURE_SLACK_MS: i64 = 60_000;

/// What a state file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedState {
    /// When the daemon last wrote it: wall clock, Unix milliseconds.
    pub written_unix_ms: i64,
    /// By backend name.
    pub backends: BTreeMap<String, SavedBackend>,
    /// By frontend name.
    pub frontends: BTreeMap<String, SavedFrontend>,
    /// The operators' overrides.
    pub overrides: SavedOverrides,
}

/// The operators' overrides a state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedOverrides {
    /// A backend's operator state (paused, disabled, enabled), by backend.
    pub backends: BTreeMap<String, SavedIntent>,
    /// Runtime weights, by (frontend, pool, backend).
    pub weights: BTreeMap<WeightKey, SavedWeight>,
    /// The node's drain (its VIP prefixes withdrawn), if an operator
    /// drained it (version 3 on).
    pub drain: Option<SavedDrain>,
}

impl SavedOverrides {
    /// Whether there is no override.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty() && self.weights.is_empty() && self.drain.is_none()
    }
}

/// The node's drain: every announced VIP prefix withdrawn until an
/// operator undrains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedDrain {
    /// Who drained it (the audited identity).
    pub by: String,
    /// When, Unix ms (at or before [`SavedState::written_unix_ms`]).
    pub at_unix_ms: i64,
}

/// A pool member: (frontend, pool, backend).
pub type WeightKey = (String, String, String);

/// What an operator made of a backend, against the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intent {
    /// Paused: no probes, weight 0 without flush.
    Paused,
    /// Disabled while the file has it enabled.
    Disabled,
    /// Enabled while the file has it disabled (`enabled: false`).
    Enabled,
}

impl Intent {
    /// `paused`, `disabled` or `enabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Paused => "paused",
            Intent::Disabled => "disabled",
            Intent::Enabled => "enabled",
        }
    }

    /// The intent named `s`, if any.
    pub fn parse(s: &str) -> Option<Intent> {
        match s {
            "paused" => Some(Intent::Paused),
            "disabled" => Some(Intent::Disabled),
            "enabled" => Some(Intent::Enabled),
            _ => None,
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend's operator override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedIntent {
    /// What the operator made of it.
    pub intent: Intent,
    /// Who (the audited identity).
    pub by: String,
    /// When, Unix ms (at or before [`SavedState::written_unix_ms`]).
    pub at_unix_ms: i64,
    /// The config file's `enabled` for the backend when it was set.
    pub file_enabled: bool,
}

/// A pool member's runtime weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedWeight {
    /// The weight set, `0..=100`.
    pub weight: u8,
    /// The config file's weight for the member when it was set, `0..=100`.
    pub file_weight: u8,
    /// Who (the audited identity).
    pub by: String,
    /// When, Unix ms (at or before [`SavedState::written_unix_ms`]).
    pub at_unix_ms: i64,
}

/// The saved state of one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedBackend {
    /// The backend's address when it was written (a reader compares it with
    /// the config's: a changed address is a new backend).
    pub address: IpAddr,
    /// Only [`BackendState::Up`] or [`BackendState::Down`] are stored and
    /// accepted.
    pub state: BackendState,
    /// When the state was reached, Unix ms (at or before
    /// [`SavedState::written_unix_ms`]).
    pub since_unix_ms: i64,
    /// Flap-damping penalty at written time (finite, `0..=1e6`; 0 when
    /// damping is off).
    pub penalty: f64,
}

/// The saved state of one frontend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedFrontend {
    /// The pool that was active (by name), `None` when no pool was.
    pub active_pool: Option<String>,
}

/// Why a state file was refused. Every message starts with
/// `state file <origin>:` and says what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StateFileError {
    /// The file is empty (or only whitespace).
    #[error("state file {origin}: empty")]
    Empty {
        /// Where the bytes came from.
        origin: String,
    },
    /// The bytes are not JSON, or not JSON of this layout (an unknown or
    /// duplicate key, a missing field, a wrong type, trailing bytes).
    #[error("state file {origin}: line {line} column {column}: {reason}")]
    Json {
        /// Where the bytes came from.
        origin: String,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault (0 at the end of a line).
        column: usize,
        /// What serde_json found.
        reason: String,
    },
    /// The JSON is not a maglev state file: not an object, or no or another
    /// `format`.
    #[error("state file {origin}: not a maglev state file ({found})")]
    Foreign {
        /// Where the bytes came from.
        origin: String,
        /// What was there instead (`format "foo"`, `no "format" field`, …).
        found: String,
    },
    /// Written by a newer `maglevd`, in a version this one does not read.
    #[error(
        "state file {origin}: written by a newer maglevd (version {version}, this one reads {} to {})",
        OLDEST_VERSION,
        VERSION
    )]
    Newer {
        /// Where the bytes came from.
        origin: String,
        /// The file's version.
        version: u64,
    },
    /// The file has no `version` field.
    #[error("state file {origin}: no \"version\" field")]
    NoVersion {
        /// Where the bytes came from.
        origin: String,
    },
    /// The `version` field is not a whole number, or is 0.
    #[error(
        "state file {origin}: version {version} is not one this maglevd reads (it reads {} to {})",
        OLDEST_VERSION,
        VERSION
    )]
    BadVersion {
        /// Where the bytes came from.
        origin: String,
        /// The value as written (JSON text, shortened).
        version: String,
    },
    /// A backend or frontend, or an active pool, has an empty name.
    #[error("state file {origin}: {what} with an empty name")]
    EmptyName {
        /// Where the bytes came from.
        origin: String,
        /// `backend`, `frontend`, or `frontend "web": active-pool`.
        what: String,
    },
    /// A backend's `address` is not an IP address.
    #[error("state file {origin}: backend {backend:?}: address {address:?} is not an IP address")]
    BadAddress {
        /// Where the bytes came from.
        origin: String,
        /// The backend.
        backend: String,
        /// The value.
        address: String,
    },
    /// A backend's `state` is not `up` or `down`.
    #[error("state file {origin}: backend {backend:?}: state {state:?} is not up or down")]
    BadState {
        /// Where the bytes came from.
        origin: String,
        /// The backend.
        backend: String,
        /// The value.
        state: String,
    },
    /// A backend's `penalty` is negative, above [`MAX_PENALTY`] or not
    /// finite.
    #[error(
        "state file {origin}: backend {backend:?}: penalty {penalty} is not between 0 and {}",
        MAX_PENALTY
    )]
    BadPenalty {
        /// Where the bytes came from.
        origin: String,
        /// The backend.
        backend: String,
        /// The value.
        penalty: f64,
    },
    /// A backend's `since-unix-ms` is after the file's `written-unix-ms`.
    #[error(
        "state file {origin}: backend {backend:?}: since-unix-ms {since_unix_ms} is after written-unix-ms {written_unix_ms}"
    )]
    SinceAfterWritten {
        /// Where the bytes came from.
        origin: String,
        /// The backend.
        backend: String,
        /// The backend's `since-unix-ms`.
        since_unix_ms: i64,
        /// The file's `written-unix-ms`.
        written_unix_ms: i64,
    },
    /// An override is malformed: an identity empty or too long, a weight
    /// above 100, a time after the file's writing, a member given twice,
    /// or `overrides` in a version 1 file or missing from a newer one.
    #[error("state file {origin}: {what}")]
    BadOverride {
        /// Where the bytes came from.
        origin: String,
        /// What is wrong, naming the override.
        what: String,
    },
}

/// What [`load`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// No file: a first start. (Not worth a warning.)
    Missing,
    /// Usable.
    Fresh(SavedState),
    /// Ignored, with why (the daemon logs `why` as a warning and
    /// cold-starts). `why` names the file and ends with `: cold start`.
    Ignored {
        /// Why, for the log.
        why: String,
        /// The operators' overrides of a valid file ignored only for its
        /// age (too old, or from the future): operator intent outlives the
        /// health states. Empty otherwise.
        overrides: SavedOverrides,
    },
}

/// The JSON of `state`, keys sorted, pretty-printed, with a trailing
/// newline.
///
/// A value [`decode`] refuses (a state other than up or down, a NaN
/// penalty, a `since` after `written`) is written as given and refused when
/// read back; the writer is expected to store only what it observed.
pub fn encode(state: &SavedState) -> Vec<u8> {
    let wire = WireOut {
        format: FORMAT,
        version: VERSION,
        written_unix_ms: state.written_unix_ms,
        backends: BackendsOut(&state.backends),
        frontends: FrontendsOut(&state.frontends),
        overrides: OverridesOut {
            backends: IntentsOut(&state.overrides.backends),
            drain: state.overrides.drain.as_ref().map(|d| DrainOut {
                by: &d.by,
                at_unix_ms: d.at_unix_ms,
            }),
            weights: state
                .overrides
                .weights
                .iter()
                .map(|((frontend, pool, backend), w)| WeightOut {
                    frontend,
                    pool,
                    backend,
                    weight: w.weight,
                    file_weight: w.file_weight,
                    by: &w.by,
                    at_unix_ms: w.at_unix_ms,
                })
                .collect(),
        },
    };
    // Serializing into a Vec cannot fail with an I/O error, and these types
    // (string keys, numbers, strings) cannot fail to serialize.
    let mut out = serde_json::to_vec_pretty(&wire).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Reads a state file's bytes; `origin` (usually the path) names it in
/// errors.
///
/// The `format` is checked first, then the `version`, then the whole
/// layout (strictly) and every value.
pub fn decode(bytes: &[u8], origin: &str) -> Result<SavedState, StateFileError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(StateFileError::Empty {
            origin: origin.to_owned(),
        });
    }
    let json_err = |e: serde_json::Error| json_error(origin, &e);

    let header: Header = serde_json::from_slice(bytes).map_err(json_err)?;
    let (format, version) = match header {
        Header::NotObject(what) => {
            return Err(StateFileError::Foreign {
                origin: origin.to_owned(),
                found: format!("{what}, not an object"),
            });
        }
        Header::Object { format, version } => (format, version),
    };
    match &format {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        Some(other) => {
            return Err(StateFileError::Foreign {
                origin: origin.to_owned(),
                found: format!("format {}", shortened(other)),
            });
        }
        None => {
            return Err(StateFileError::Foreign {
                origin: origin.to_owned(),
                found: "no \"format\" field".to_owned(),
            });
        }
    }
    let Some(version) = version else {
        return Err(StateFileError::NoVersion {
            origin: origin.to_owned(),
        });
    };
    let version = match version.as_u64() {
        Some(v) if (u64::from(OLDEST_VERSION)..=u64::from(VERSION)).contains(&v) => v,
        Some(v) if v > u64::from(VERSION) => {
            return Err(StateFileError::Newer {
                origin: origin.to_owned(),
                version: v,
            });
        }
        _ => {
            return Err(StateFileError::BadVersion {
                origin: origin.to_owned(),
                version: shortened(&version),
            });
        }
    };

    let Obj(wire): Obj<WireIn> = serde_json::from_slice(bytes).map_err(json_err)?;
    validate(wire, version, origin)
}

/// Replaces the file at `path` with `bytes`, atomically: a temporary file in
/// the same directory is written (mode 0600 from its creation: the file
/// names who overrode what), flushed to disk, given mode 0600 and
/// renamed over `path`, then the directory is flushed. A reader (or a crash)
/// sees the old content or the new, never a part; on error the temporary
/// file is removed and `path` is untouched (unless only the final directory
/// flush failed, after the rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    tmp.as_file().sync_all()?;
    // On failure the PersistError holds the temporary file, and dropping it
    // removes it.
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Reads the state file at `path` for a start at `now_unix_ms` (wall clock):
/// [`Loaded::Missing`] when there is none, [`Loaded::Fresh`] when it is
/// valid and at most `max_age` old, otherwise [`Loaded::Ignored`] with why
/// (unreadable, not a regular file, larger than [`MAX_STATE_FILE_BYTES`],
/// invalid, written more than a minute in the future, or too old; for the
/// last two, with the file's overrides, which still hold).
pub fn load(path: &Path, now_unix_ms: i64, max_age: Duration) -> Loaded {
    let shown = path.display();
    let ignored = |why: String| Loaded::Ignored {
        why: format!("{why}: cold start"),
        overrides: SavedOverrides::default(),
    };
    // Non-blocking so that a FIFO put in the file's place cannot hang the
    // start; it has no effect on regular files.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => return ignored(format!("state file {shown}: cannot open it: {e}")),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return ignored(format!("state file {shown}: cannot stat it: {e}")),
    };
    if meta.is_dir() {
        return ignored(format!("state file {shown} is a directory"));
    }
    if !meta.is_file() {
        return ignored(format!("state file {shown} is not a regular file"));
    }
    if meta.len() > MAX_STATE_FILE_BYTES {
        return ignored(format!(
            "state file {shown} is {} bytes, more than the {MAX_STATE_FILE_BYTES} allowed",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    if let Err(e) = file.take(MAX_STATE_FILE_BYTES + 1).read_to_end(&mut bytes) {
        return ignored(format!("state file {shown}: cannot read it: {e}"));
    }
    if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
        return ignored(format!(
            "state file {shown} grew past the {MAX_STATE_FILE_BYTES} bytes allowed while being read"
        ));
    }
    let state = match decode(&bytes, &shown.to_string()) {
        Ok(s) => s,
        Err(e) => return ignored(e.to_string()),
    };
    let written = state.written_unix_ms;
    let aged = |why: String, state: SavedState| Loaded::Ignored {
        why: format!("{why}: cold start"),
        overrides: state.overrides,
    };
    if written > now_unix_ms.saturating_add(FUTURE_SLACK_MS) {
        let ahead = ms_to_duration(i128::from(written) - i128::from(now_unix_ms));
        return aged(
            format!(
                "state file {shown} was written {} in the future (was the clock stepped back?)",
                format_duration(ahead)
            ),
            state,
        );
    }
    let age_ms = i128::from(now_unix_ms) - i128::from(written);
    if ms_dur(age_ms) > max_age {
        return aged(
            format!(
                "state file {shown} was written {} ago, more than state-max-age {}",
                format_duration(ms_to_duration(age_ms)),
                format_duration(max_age)
            ),
            state,
        );
    }
    Loaded::Fresh(state)
}

/// `ms` as a duration (0 when negative, saturating).
fn ms_dur(ms: i128) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
}

/// `ms` for a message: rounded up to whole seconds from one second on, so
/// that an age just over a limit does not read as equal to it.
fn ms_to_duration(ms: i128) -> Duration {
    let d = ms_dur(ms);
    if d >= Duration::from_secs(1) && d.subsec_nanos() > 0 {
        Duration::from_secs(d.as_secs().saturating_add(1))
    } else {
        d
    }
}

/// A serde_json error as [`StateFileError::Json`], its position apart.
fn json_error(origin: &str, e: &serde_json::Error) -> StateFileError {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let reason = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    StateFileError::Json {
        origin: origin.to_owned(),
        line: e.line(),
        column: e.column(),
        reason,
    }
}

/// A JSON value from a foreign file, for a message: at most 64 characters.
fn shortened(v: &serde_json::Value) -> String {
    const MAX: usize = 64;
    let text = v.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Checks every value of a strictly parsed file.
fn validate(wire: WireIn, version: u64, origin: &str) -> Result<SavedState, StateFileError> {
    let overrides = match (version, wire.overrides) {
        (1, None) => SavedOverrides::default(),
        (1, Some(_)) => {
            return Err(StateFileError::BadOverride {
                origin: origin.to_owned(),
                what: "\"overrides\" in a version 1 file".to_owned(),
            });
        }
        (_, None) => {
            return Err(StateFileError::BadOverride {
                origin: origin.to_owned(),
                what: "no \"overrides\" field".to_owned(),
            });
        }
        (_, Some(Obj(o))) => validate_overrides(o, version, wire.written_unix_ms, origin)?,
    };
    let origin = || origin.to_owned();
    let written_unix_ms = wire.written_unix_ms;
    let mut backends = BTreeMap::new();
    for (name, Obj(b)) in wire.backends.0 {
        if name.is_empty() {
            return Err(StateFileError::EmptyName {
                origin: origin(),
                what: "backend".into(),
            });
        }
        let state = match b.state.as_str() {
            "up" => BackendState::Up,
            "down" => BackendState::Down,
            _ => {
                return Err(StateFileError::BadState {
                    origin: origin(),
                    backend: name,
                    state: b.state,
                });
            }
        };
        let Ok(address) = b.address.parse::<IpAddr>() else {
            return Err(StateFileError::BadAddress {
                origin: origin(),
                backend: name,
                address: b.address,
            });
        };
        if !(b.penalty.is_finite() && (0.0..=MAX_PENALTY).contains(&b.penalty)) {
            return Err(StateFileError::BadPenalty {
                origin: origin(),
                backend: name,
                penalty: b.penalty,
            });
        }
        if b.since_unix_ms > written_unix_ms {
            return Err(StateFileError::SinceAfterWritten {
                origin: origin(),
                backend: name,
                since_unix_ms: b.since_unix_ms,
                written_unix_ms,
            });
        }
        backends.insert(
            name,
            SavedBackend {
                address,
                state,
                since_unix_ms: b.since_unix_ms,
                penalty: b.penalty,
            },
        );
    }
    let mut frontends = BTreeMap::new();
    for (name, Obj(f)) in wire.frontends.0 {
        if name.is_empty() {
            return Err(StateFileError::EmptyName {
                origin: origin(),
                what: "frontend".into(),
            });
        }
        if f.active_pool.as_deref() == Some("") {
            return Err(StateFileError::EmptyName {
                origin: origin(),
                what: format!("frontend {name:?}: active-pool"),
            });
        }
        frontends.insert(
            name,
            SavedFrontend {
                active_pool: f.active_pool,
            },
        );
    }
    Ok(SavedState {
        written_unix_ms,
        backends,
        frontends,
        overrides,
    })
}

/// Checks the overrides of a strictly parsed file.
fn validate_overrides(
    o: OverridesIn,
    version: u64,
    written_unix_ms: i64,
    origin: &str,
) -> Result<SavedOverrides, StateFileError> {
    let bad = |what: String| StateFileError::BadOverride {
        origin: origin.to_owned(),
        what,
    };
    let check_common = |what: &str, by: &str, at: i64| -> Result<(), StateFileError> {
        if by.is_empty() {
            return Err(bad(format!("{what}: \"by\" is empty")));
        }
        if by.len() > MAX_IDENTITY_BYTES {
            return Err(bad(format!(
                "{what}: \"by\" is {} bytes, more than {MAX_IDENTITY_BYTES}",
                by.len()
            )));
        }
        if at > written_unix_ms {
            return Err(bad(format!(
                "{what}: at-unix-ms {at} is after written-unix-ms {written_unix_ms}"
            )));
        }
        Ok(())
    };
    let mut out = SavedOverrides::default();
    match (version, o.drain) {
        (_, None) => {}
        (2, Some(_)) => {
            return Err(bad("\"drain\" in a version 2 file".to_owned()));
        }
        (_, Some(Obj(d))) => {
            check_common("drain", &d.by, d.at_unix_ms)?;
            out.drain = Some(SavedDrain {
                by: d.by,
                at_unix_ms: d.at_unix_ms,
            });
        }
    }
    for (name, Obj(b)) in o.backends.0 {
        let what = format!("override of backend {name:?}");
        if name.is_empty() {
            return Err(bad("override of a backend with an empty name".to_owned()));
        }
        let Some(intent) = Intent::parse(&b.state) else {
            return Err(bad(format!(
                "{what}: state {:?} is not paused, disabled or enabled",
                b.state
            )));
        };
        check_common(&what, &b.by, b.at_unix_ms)?;
        out.backends.insert(
            name,
            SavedIntent {
                intent,
                by: b.by,
                at_unix_ms: b.at_unix_ms,
                file_enabled: b.file_enabled,
            },
        );
    }
    for Obj(w) in o.weights {
        let what = format!(
            "weight override of frontend {:?} pool {:?} backend {:?}",
            w.frontend, w.pool, w.backend
        );
        if w.frontend.is_empty() || w.pool.is_empty() || w.backend.is_empty() {
            return Err(bad(format!("{what}: an empty name")));
        }
        for (field, v) in [("weight", w.weight), ("file-weight", w.file_weight)] {
            if v > 100 {
                return Err(bad(format!("{what}: {field} {v} is above 100")));
            }
        }
        check_common(&what, &w.by, w.at_unix_ms)?;
        if out.weights.len() == MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} weight overrides")));
        }
        let key = (w.frontend, w.pool, w.backend);
        if out.weights.contains_key(&key) {
            return Err(bad(format!("{what}: given twice")));
        }
        out.weights.insert(
            key,
            SavedWeight {
                weight: u8::try_from(w.weight).unwrap_or(100),
                file_weight: u8::try_from(w.file_weight).unwrap_or(100),
                by: w.by,
                at_unix_ms: w.at_unix_ms,
            },
        );
    }
    Ok(out)
}

// ---- Writing ----------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct WireOut<'a> {
    format: &'static str,
    version: u32,
    written_unix_ms: i64,
    backends: BackendsOut<'a>,
    frontends: FrontendsOut<'a>,
    overrides: OverridesOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OverridesOut<'a> {
    backends: IntentsOut<'a>,
    drain: Option<DrainOut<'a>>,
    weights: Vec<WeightOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct DrainOut<'a> {
    by: &'a str,
    at_unix_ms: i64,
}

struct IntentsOut<'a>(&'a BTreeMap<String, SavedIntent>);

impl Serialize for IntentsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, i) in self.0 {
            map.serialize_entry(
                name,
                &IntentOut {
                    state: i.intent.as_str(),
                    by: &i.by,
                    at_unix_ms: i.at_unix_ms,
                    file_enabled: i.file_enabled,
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct IntentOut<'a> {
    state: &'static str,
    by: &'a str,
    at_unix_ms: i64,
    file_enabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct WeightOut<'a> {
    frontend: &'a str,
    pool: &'a str,
    backend: &'a str,
    weight: u8,
    file_weight: u8,
    by: &'a str,
    at_unix_ms: i64,
}

struct BackendsOut<'a>(&'a BTreeMap<String, SavedBackend>);

impl Serialize for BackendsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, b) in self.0 {
            map.serialize_entry(
                name,
                &BackendOut {
                    address: b.address,
                    state: b.state.as_str(),
                    since_unix_ms: b.since_unix_ms,
                    penalty: b.penalty,
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct BackendOut {
    address: IpAddr,
    state: &'static str,
    since_unix_ms: i64,
    penalty: f64,
}

struct FrontendsOut<'a>(&'a BTreeMap<String, SavedFrontend>);

impl Serialize for FrontendsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, f) in self.0 {
            map.serialize_entry(
                name,
                &FrontendOut {
                    active_pool: f.active_pool.as_deref(),
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct FrontendOut<'a> {
    active_pool: Option<&'a str>,
}

// ---- Reading ----------------------------------------------------------

/// The first pass: only `format` and `version`, everything else skipped.
enum Header {
    /// The document is not an object: what it is.
    NotObject(&'static str),
    /// The document is an object.
    Object {
        format: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
    },
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                let (mut format, mut version) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "format" => &mut format,
                        "version" => &mut version,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    *slot = Some(map.next_value::<serde_json::Value>()?);
                }
                Ok(Header::Object { format, version })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Header, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Header::NotObject("an array"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Header, E> {
                Ok(Header::NotObject("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Header, E> {
                Ok(Header::NotObject("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Header, E> {
                Ok(Header::NotObject("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Header, E> {
                Ok(Header::NotObject("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Header, E> {
                Ok(Header::NotObject("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Header, E> {
                Ok(Header::NotObject("null"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The second pass: the whole layout, strictly.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WireIn {
    /// Checked by the first pass.
    #[serde(rename = "format")]
    _format: IgnoredAny,
    /// Checked by the first pass.
    #[serde(rename = "version")]
    _version: IgnoredAny,
    written_unix_ms: i64,
    backends: UniqueMap<BackendNoun, Obj<BackendIn>>,
    frontends: UniqueMap<FrontendNoun, Obj<FrontendIn>>,
    /// Version 2 on (checked by [`validate`]).
    #[serde(default)]
    overrides: Option<Obj<OverridesIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct OverridesIn {
    backends: UniqueMap<OverrideNoun, Obj<IntentIn>>,
    /// Version 3 on (checked by [`validate_overrides`]); `null` or absent:
    /// not drained.
    #[serde(default)]
    drain: Option<Obj<DrainIn>>,
    weights: Vec<Obj<WeightIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DrainIn {
    by: String,
    at_unix_ms: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct IntentIn {
    state: String,
    by: String,
    at_unix_ms: i64,
    file_enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WeightIn {
    frontend: String,
    pool: String,
    backend: String,
    weight: u32,
    file_weight: u32,
    by: String,
    at_unix_ms: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BackendIn {
    address: String,
    state: String,
    since_unix_ms: i64,
    penalty: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FrontendIn {
    active_pool: Option<String>,
}

/// A struct that must be written as a JSON object (serde's derive would
/// also take an array of its fields in order).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// What the entries of a [`UniqueMap`] are called in its errors.
trait Noun {
    const NOUN: &'static str;
}

struct BackendNoun;
impl Noun for BackendNoun {
    const NOUN: &'static str = "backend";
}

struct FrontendNoun;
impl Noun for FrontendNoun {
    const NOUN: &'static str = "frontend";
}

struct OverrideNoun;
impl Noun for OverrideNoun {
    const NOUN: &'static str = "backend override";
}

/// A map by name that refuses a name given twice and more than
/// [`MAX_ENTRIES`] entries.
struct UniqueMap<N, V>(BTreeMap<String, V>, PhantomData<N>);

impl<'de, N: Noun, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<N, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<N, V>(PhantomData<(N, V)>);
        impl<'de, N: Noun, V: Deserialize<'de>> Visitor<'de> for MapVisitor<N, V> {
            type Value = UniqueMap<N, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of {}s by name", N::NOUN)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.contains_key(&key) {
                        return Err(de::Error::custom(format!(
                            "{} {key:?} is given twice",
                            N::NOUN
                        )));
                    }
                    if out.len() == MAX_ENTRIES {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_ENTRIES} {}s",
                            N::NOUN
                        )));
                    }
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
                Ok(UniqueMap(out, PhantomData))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_in_messages_round_up_to_seconds() {
        assert_eq!(ms_to_duration(750_123), Duration::from_secs(751));
        assert_eq!(ms_to_duration(750_000), Duration::from_secs(750));
        assert_eq!(ms_to_duration(500), Duration::from_millis(500));
        assert_eq!(ms_to_duration(-5), Duration::ZERO);
        assert_eq!(
            ms_to_duration(i128::MAX),
            Duration::from_secs(u64::MAX / 1000 + 1)
        );
    }

    #[test]
    fn foreign_values_are_shortened() {
        let long = serde_json::Value::String("x".repeat(200));
        let shown = shortened(&long);
        assert_eq!(shown.chars().count(), 65);
        assert!(shown.ends_with('…'));
        assert_eq!(shortened(&serde_json::json!(12)), "12");
    }
}
