//! The configuration: the typed model of `maglev.yaml` and how it is loaded.
//!
//! Loading has two stages, as in the original. [`Config::from_yaml`] first
//! decodes the text strictly (an unknown key or a wrong type is a
//! [`ParseError`] with line, column and key path), then checks every rule
//! that spans fields and objects and reports **all** violations at once
//! ([`SemanticError`]s, each with its key path). Defaults are filled in one
//! place, the validation module, so the model below never holds an
//! "unset" value.
//!
//! A [`Config`] is immutable and cheap to clone (one `Arc`). Runtime changes,
//! such as an operator setting a pool weight, produce a new `Config`.
//!
//! The config file is read by the caller: this crate does no I/O.

mod duration;
mod error;
pub mod fingerprint;
mod index;
mod validate;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, ParseError, SemanticError};
pub use index::ConfigIndex;

use crate::dataplane::{Protocol, VipKey};

/// The default location of the config file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vpp-maglev/maglev.yaml";

/// The largest configured weight of a pool member.
pub const MAX_WEIGHT: u8 = 100;

/// The largest compiled `response-regex` (bytes of compiled program), so a
/// hostile pattern cannot eat memory. The one limit: validation and the
/// HTTP probe both compile through [`compile_response_regex`].
pub const RESPONSE_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a `response-regex` as the HTTP probe matches it: over bytes
/// (the body need not be UTF-8), within [`RESPONSE_REGEX_SIZE_LIMIT`].
/// Validation refuses exactly the patterns this refuses.
pub fn compile_response_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(RESPONSE_REGEX_SIZE_LIMIT)
        .build()
}

/// A validated configuration. Cloning is cheap: the data is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    inner: Arc<ConfigData>,
}

#[derive(Debug, Clone, PartialEq)]
struct ConfigData {
    healthchecker: HealthCheckerConfig,
    access: Access,
    vpp: Option<VppConfig>,
    announce: Option<AnnounceConfig>,
    healthchecks: BTreeMap<String, HealthCheck>,
    backends: BTreeMap<String, Backend>,
    frontends: BTreeMap<String, Frontend>,
    /// The reverse lookups, derived on first use.
    index: index::IndexCell,
}

impl Config {
    /// Parses and validates a config from YAML text. `origin` names the input
    /// (usually the file path) in error messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw = yaml::parse(text, origin)?;
        validate::validate(raw).map_err(ConfigError::Semantic)
    }

    /// Global probe-engine settings.
    pub fn healthchecker(&self) -> &HealthCheckerConfig {
        &self.inner.healthchecker
    }

    /// Who may change what over gRPC (`maglev.access`).
    pub fn access(&self) -> &Access {
        &self.inner.access
    }

    /// The VPP section, if the file has one.
    pub fn vpp(&self) -> Option<&VppConfig> {
        self.inner.vpp.as_ref()
    }

    /// The announce section (`maglev.announce`), if the file has one.
    pub fn announce(&self) -> Option<&AnnounceConfig> {
        self.inner.announce.as_ref()
    }

    /// Every health check, by name.
    pub fn healthchecks(&self) -> &BTreeMap<String, HealthCheck> {
        &self.inner.healthchecks
    }

    /// Every backend, by name.
    pub fn backends(&self) -> &BTreeMap<String, Backend> {
        &self.inner.backends
    }

    /// Every frontend, by name.
    pub fn frontends(&self) -> &BTreeMap<String, Frontend> {
        &self.inner.frontends
    }

    /// One health check by name.
    pub fn healthcheck(&self, name: &str) -> Option<&HealthCheck> {
        self.inner.healthchecks.get(name)
    }

    /// One backend by name.
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.inner.backends.get(name)
    }

    /// One frontend by name.
    pub fn frontend(&self, name: &str) -> Option<&Frontend> {
        self.inner.frontends.get(name)
    }

    /// The names of the frontends that use `backend` in any pool, sorted
    /// (from the [`index`](Config::index)).
    pub fn frontends_using<'a>(&'a self, backend: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.index().frontends_using(backend).iter().map(|f| &**f)
    }

    /// The config's reverse lookups, built at the first call and shared by
    /// every clone of this config.
    pub fn index(&self) -> &ConfigIndex {
        self.inner.index.get(self)
    }

    /// The fingerprint of the part of this config that decides Maglev
    /// tables ([`fingerprint`] says what it covers), computed once per
    /// config with its [`index`](Config::index).
    pub fn fingerprint(&self) -> u64 {
        self.index().fingerprint()
    }

    /// The fingerprint of frontend `name`'s part of this config
    /// ([`fingerprint::frontend_fingerprint`]), computed once per config;
    /// `None` if there is no such frontend.
    pub fn frontend_fingerprint(&self, name: &str) -> Option<u64> {
        self.index().frontend_fingerprint(name)
    }

    /// A copy of this config with one pool member's configured weight
    /// changed, as an operator does at run time.
    pub fn with_pool_weight(
        &self,
        frontend: &str,
        pool: &str,
        backend: &str,
        weight: u8,
    ) -> Result<Config, WeightChangeError> {
        if weight > MAX_WEIGHT {
            return Err(WeightChangeError::OutOfRange { weight });
        }
        let mut data = (*self.inner).clone();
        let fe = data
            .frontends
            .get_mut(frontend)
            .ok_or_else(|| WeightChangeError::NoFrontend(frontend.to_owned()))?;
        let p = fe
            .pools
            .iter_mut()
            .find(|p| p.name == pool)
            .ok_or_else(|| WeightChangeError::NoPool {
                frontend: frontend.to_owned(),
                pool: pool.to_owned(),
            })?;
        let member = p
            .backends
            .get_mut(backend)
            .ok_or_else(|| WeightChangeError::NoMember {
                frontend: frontend.to_owned(),
                pool: pool.to_owned(),
                backend: backend.to_owned(),
            })?;
        member.weight = weight;
        Ok(Config {
            inner: Arc::new(data),
        })
    }
}

/// Why [`Config::with_pool_weight`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WeightChangeError {
    /// The weight is above [`MAX_WEIGHT`].
    #[error("weight {weight} is out of range 0..=100")]
    OutOfRange {
        /// The refused weight.
        weight: u8,
    },
    /// No frontend has that name.
    #[error("no frontend named {0:?}")]
    NoFrontend(String),
    /// The frontend has no pool of that name.
    #[error("frontend {frontend:?} has no pool named {pool:?}")]
    NoPool {
        /// The frontend.
        frontend: String,
        /// The missing pool.
        pool: String,
    },
    /// The pool has no such backend.
    #[error("pool {pool:?} of frontend {frontend:?} has no backend named {backend:?}")]
    NoMember {
        /// The frontend.
        frontend: String,
        /// The pool.
        pool: String,
        /// The missing backend.
        backend: String,
    },
}

/// `maglev.healthchecker`: global probe-engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckerConfig {
    /// How many transitions are kept per backend (≥ 1, default 5).
    pub transition_history: usize,
    /// The network namespace (as under `/var/run/netns`) in which every probe
    /// runs; `None` for the daemon's own.
    pub netns: Option<String>,
    /// How old a state file may be for its states to seed the checker at
    /// start (default 5m); zero never seeds.
    pub state_max_age: Duration,
}

/// `maglev.access`: who may change what over gRPC. It applies when
/// maglevd requires client certificates (`--grpc-client-ca`): a client
/// whose certificate names an admin may call every RPC, any other client
/// with a valid certificate only the read ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The certificate names of the clients allowed to write: each is
    /// compared with a certificate's subject common name and with each of
    /// its subject alternative names (DNS, email, URI, IP address).
    pub admins: BTreeSet<String>,
}

impl Access {
    /// Whether a client whose certificate carries `names` is an admin.
    pub fn is_admin<'a>(&self, mut names: impl Iterator<Item = &'a str>) -> bool {
        names.any(|n| self.admins.contains(n))
    }
}

/// `maglev.vpp`: VPP integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VppConfig {
    /// `maglev.vpp.lb`: the load-balancer plugin settings.
    pub lb: LbConfig,
}

/// `maglev.announce`: the kernel routing table maglevd keeps one route in
/// per VIP prefix it announces, for the routing daemon (BIRD, FRR) to
/// learn and export to BGP, and the timing of the policy
/// ([`crate::announce`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// The table's number (`table`): not 0, 253, 254 or 255, the kernel's
    /// own.
    pub table: u32,
    /// The route protocol number marking maglevd's routes (`protocol`,
    /// default [`AnnounceConfig::DEFAULT_PROTOCOL`]): 5..=255.
    pub protocol: u8,
    /// The network namespace whose table it is (`netns`), by name under
    /// `/var/run/netns`; `None` for maglevd's own.
    pub netns: Option<String>,
    /// The least time between two changes of one prefix unless the second
    /// is a withdraw (`min-interval`, default 10s).
    pub min_interval: Duration,
    /// How long VPP may be away, or lack a VIP, before its prefix is
    /// withdrawn (`vpp-grace`, default 5s; never zero: a start needs a
    /// moment to reach VPP).
    pub vpp_grace: Duration,
}

impl AnnounceConfig {
    /// The default route protocol number of maglevd's routes.
    pub const DEFAULT_PROTOCOL: u8 = 201;

    /// The policy's timing.
    pub fn policy(&self) -> crate::announce::Policy {
        crate::announce::Policy {
            min_interval: self.min_interval,
            vpp_grace: self.vpp_grace,
        }
    }
}

/// `maglev.vpp.lb`: global LB settings and the sync and warm-up timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbConfig {
    /// Outer source address of IPv4 GRE encapsulation.
    pub ipv4_src_address: Ipv4Addr,
    /// Outer source address of IPv6 GRE encapsulation.
    pub ipv6_src_address: Ipv6Addr,
    /// Sticky-table buckets per worker (a power of two); `None` leaves VPP's
    /// value alone.
    pub sticky_buckets_per_core: Option<u32>,
    /// Idle timeout of a sticky flow, whole seconds; `None` leaves VPP's
    /// value alone.
    pub flow_timeout: Option<Duration>,
    /// Period of the full reconcile against VPP (default 30s).
    pub sync_interval: Duration,
    /// Hands-off window after start (default 5s, zero disables).
    pub startup_min_delay: Duration,
    /// Warm-up watchdog (default 30s). Zero means no watchdog: a frontend
    /// is released only when all its backends are known. Both delays zero
    /// turn the warm-up off.
    pub startup_max_delay: Duration,
}

/// `maglev.healthchecks.<name>`: how to probe a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// What to send and what counts as a pass.
    pub probe: Probe,
    /// Intervals, timeout and the rise/fall counter.
    pub timing: Timing,
    /// Flap damping of the backends it checks; `None` (the default) for
    /// none.
    pub damping: Option<Damping>,
    /// How long a backend that comes back takes to reach its configured
    /// weight ([`slow_start`](crate::slow_start)); zero (the default) for
    /// at once.
    pub slow_start: Duration,
}

/// `damping` of a health check: route-flap damping as BGP does it, with a
/// flap (a transition between `up` and `down`) worth a penalty of 1.
///
/// The penalty halves every `half_life`. A flap that takes it above
/// `suppress` holds the backend at weight 0 (*suppressed*, no flush) until
/// it has decayed below `reuse`; it never exceeds what decays to `reuse`
/// in `max_suppress`, so no backend is held longer than that after its
/// last flap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Damping {
    /// The time the penalty takes to halve (default 1m).
    pub half_life: Duration,
    /// The penalty above which a flap suppresses the backend (default 3).
    pub suppress: f64,
    /// The penalty below which a suppressed backend is released (default 1).
    pub reuse: f64,
    /// The longest a backend stays suppressed after its last flap (default
    /// 4 half-lives).
    pub max_suppress: Duration,
}

impl Damping {
    /// The largest penalty: the one that decays to `reuse` in
    /// `max_suppress`.
    pub fn max_penalty(&self) -> f64 {
        self.reuse * (self.max_suppress.as_secs_f64() / self.half_life.as_secs_f64()).exp2()
    }
}

impl HealthCheck {
    /// A check with `probe` and `timing`, no damping and no slow start.
    pub fn new(probe: Probe, timing: Timing) -> HealthCheck {
        HealthCheck {
            probe,
            timing,
            damping: None,
            slow_start: Duration::ZERO,
        }
    }

    /// The `type` key of this check.
    pub fn kind(&self) -> ProbeKind {
        match &self.probe {
            Probe::Http(h) if h.tls.is_some() => ProbeKind::Https,
            Probe::Http(_) => ProbeKind::Http,
            Probe::Tcp(_) => ProbeKind::Tcp,
            Probe::Icmp => ProbeKind::Icmp,
        }
    }
}

/// The `type` of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    /// HTTP over plain TCP.
    Http,
    /// HTTP over TLS.
    Https,
    /// TCP connect, optionally followed by a TLS handshake.
    Tcp,
    /// ICMP or ICMPv6 echo.
    Icmp,
}

impl ProbeKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Https => "https",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Icmp => "icmp",
        }
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe with its type-specific parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `http` or, with `tls` set, `https`.
    Http(HttpProbe),
    /// `tcp`.
    Tcp(TcpProbe),
    /// `icmp`.
    Icmp,
}

/// Parameters of an HTTP or HTTPS probe.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    /// Destination port (default 80 for http, 443 for https).
    pub port: u16,
    /// Request path, starting with `/` (default `/`).
    pub path: String,
    /// Request method (default GET).
    pub method: HttpMethod,
    /// `Host` header; the backend address when `None`.
    pub host: Option<String>,
    /// Status codes that pass (default 200-399).
    pub response_codes: StatusCodes,
    /// A regular expression the first `max_body` bytes of the body must match.
    pub response_regex: Option<String>,
    /// The most body bytes read (default 64 KiB).
    pub max_body: usize,
    /// TLS settings; `Some` for `https`.
    pub tls: Option<TlsParams>,
}

impl Default for HttpProbe {
    /// What a config's `type: http` check without `port` or `params` gets:
    /// `GET /` on port 80, status 200-399 passes, at most 64 KiB of body
    /// read, no `Host` override, no TLS. For https, set `port` (443) and
    /// `tls` (e.g. [`TlsParams::default`]).
    fn default() -> Self {
        HttpProbe {
            port: 80,
            path: "/".to_owned(),
            method: HttpMethod::Get,
            host: None,
            response_codes: StatusCodes::default(),
            response_regex: None,
            max_body: validate::DEFAULT_MAX_BODY,
            tls: None,
        }
    }
}

/// Parameters of a TCP probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProbe {
    /// Destination port.
    pub port: u16,
    /// Complete a TLS handshake after connecting when `Some`.
    pub tls: Option<TlsParams>,
}

/// TLS settings of a probe. The default sends no SNI and verifies the
/// certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsParams {
    /// SNI and the name the certificate is checked against; for https it
    /// defaults to `host`. `None` sends no SNI.
    pub server_name: Option<String>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
}

/// The HTTP request method of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
}

impl HttpMethod {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    }
}

/// A set of HTTP status codes, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCodes {
    ranges: Vec<(u16, u16)>,
}

impl StatusCodes {
    /// Builds a set from inclusive ranges.
    pub fn new(ranges: Vec<(u16, u16)>) -> StatusCodes {
        StatusCodes { ranges }
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The ranges of the set.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

impl Default for StatusCodes {
    fn default() -> Self {
        StatusCodes::new(vec![(200, 399)])
    }
}

impl fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// When a backend is probed and how results move its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Period while fully up.
    pub interval: Duration,
    /// Period while rising, degraded or unknown (default `interval`).
    pub fast_interval: Duration,
    /// Period while fully down (default `interval`).
    pub down_interval: Duration,
    /// Per-probe timeout, at most the smallest interval.
    pub timeout: Duration,
    /// Consecutive passes that bring a down backend up (≥ 1, default 2).
    pub rise: u32,
    /// Consecutive failures that bring an up backend down (≥ 1, default 3).
    pub fall: u32,
}

impl Default for Timing {
    /// What a config's check without timing keys gets: every interval 2 s,
    /// timeout 1 s, rise 2, fall 3.
    fn default() -> Self {
        Timing {
            interval: validate::DEFAULT_INTERVAL,
            fast_interval: validate::DEFAULT_INTERVAL,
            down_interval: validate::DEFAULT_INTERVAL,
            timeout: validate::DEFAULT_TIMEOUT,
            rise: validate::DEFAULT_RISE,
            fall: validate::DEFAULT_FALL,
        }
    }
}

/// `maglev.backends.<name>`: one application server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The AS address programmed into VPP and probed.
    pub address: IpAddr,
    /// The health check that probes it; `None` for a static backend, which is
    /// always up.
    pub healthcheck: Option<String>,
    /// Whether it starts enabled (default true).
    pub enabled: bool,
}

/// `maglev.frontends.<name>`: one VIP and its pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// The VIP address (programmed as a host prefix).
    pub address: IpAddr,
    /// The VIP protocol; `None` for an all-protocol, all-port VIP.
    pub protocol: Option<Protocol>,
    /// The VIP port; 0 for all ports.
    pub port: u16,
    /// Free text shown to operators.
    pub description: String,
    /// Priority tiers, highest priority first; never empty.
    pub pools: Vec<Pool>,
    /// Hash new flows on the source address only.
    pub src_ip_sticky: bool,
    /// Tear down existing flows of a backend that goes down (default true).
    pub flush_on_down: bool,
    /// The length of the VIP's new-flow (Maglev) table.
    pub flow_table_length: TableLength,
}

/// A frontend's `flow-table-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableLength {
    /// This many buckets: a power of two up to
    /// [`MAX_TABLE_LEN`](crate::maglev::MAX_TABLE_LEN).
    Fixed(u32),
    /// [`auto_table_len`](crate::maglev::auto_table_len) of the frontend's
    /// pool members: members, not up backends, so health never resizes.
    Auto,
}

impl Default for TableLength {
    /// [`DEFAULT_TABLE_LEN`](crate::maglev::DEFAULT_TABLE_LEN) buckets.
    fn default() -> Self {
        TableLength::Fixed(crate::maglev::DEFAULT_TABLE_LEN as u32)
    }
}

impl fmt::Display for TableLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableLength::Fixed(n) => write!(f, "{n}"),
            TableLength::Auto => f.write_str("auto"),
        }
    }
}

impl Frontend {
    /// The VPP key of this frontend's VIP.
    pub fn vip_key(&self) -> VipKey {
        VipKey::host(self.address, self.protocol, self.port)
    }

    /// Whether any pool names `backend`.
    pub fn uses_backend(&self, backend: &str) -> bool {
        self.pools.iter().any(|p| p.backends.contains_key(backend))
    }

    /// The buckets of this frontend's new-flow table: the fixed length, or
    /// for `auto` the length its pool members call for.
    pub fn table_len(&self) -> u32 {
        match self.flow_table_length {
            TableLength::Fixed(n) => n,
            TableLength::Auto => {
                let members = self.pools.iter().map(|p| p.backends.len()).sum();
                // At most MAX_TABLE_LEN, which fits.
                crate::maglev::auto_table_len(members) as u32
            }
        }
    }

    /// Every backend name of every pool, each once, in pool order.
    pub fn backend_names(&self) -> impl Iterator<Item = &str> {
        self.pools
            .iter()
            .flat_map(|p| p.backends.keys().map(String::as_str))
    }
}

/// One priority tier of a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's name, unique within its frontend.
    pub name: String,
    /// Members by backend name; never empty.
    pub backends: BTreeMap<String, PoolMember>,
    /// How many members must be serving for the pool to stay (or become,
    /// failing over from a pool above it) the active one (default 1).
    pub min_up: Threshold,
    /// How many members must be serving for the pool to take traffic back
    /// from a lower pool (default `min_up`; never fewer).
    pub min_up_to_return: Threshold,
}

impl Pool {
    /// `min_up` as a number of members.
    pub fn min_up_count(&self) -> usize {
        self.min_up.count(self.backends.len())
    }

    /// `min_up_to_return` as a number of members.
    pub fn min_up_to_return_count(&self) -> usize {
        self.min_up_to_return.count(self.backends.len())
    }
}

/// A pool's `min-up` or `min-up-to-return`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// This many members (at least 1).
    Count(u32),
    /// This percentage of the pool's members (1..=100), rounded up.
    Percent(u8),
}

impl Threshold {
    /// The threshold as a number of members of a pool of `members`: at
    /// least 1.
    pub fn count(self, members: usize) -> usize {
        match self {
            Threshold::Count(n) => n as usize,
            Threshold::Percent(p) => (members * usize::from(p)).div_ceil(100),
        }
        .max(1)
    }
}

impl Default for Threshold {
    /// One member.
    fn default() -> Self {
        Threshold::Count(1)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Count(n) => write!(f, "{n}"),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// A backend's membership of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolMember {
    /// Configured weight, 0..=100 (default 100).
    pub weight: u8,
}
