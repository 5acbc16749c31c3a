//! Semantic validation: every rule that spans fields and objects, and the one
//! place where defaults are filled in.
//!
//! Validation never stops at the first problem: each broken rule is recorded
//! with its key path and checking goes on, so an operator sees every mistake
//! in one `--check`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::yaml::{
    RawAccess, RawBackend, RawDamping, RawFrontend, RawHealthCheck, RawLb, RawMaglev, RawMethod,
    RawParams, RawProbeKind, RawTableLength, RawThreshold,
};
use super::{
    Access, AnnounceConfig, Backend, Config, ConfigData, Damping, Frontend, HealthCheck,
    HealthCheckerConfig, HttpMethod, HttpProbe, LbConfig, MAX_WEIGHT, Pool, PoolMember, Probe,
    SemanticError, StatusCodes, TableLength, TcpProbe, Threshold, Timing, TlsParams, VppConfig,
    format_duration,
};
use crate::dataplane::{Encap, VipKey};
use crate::maglev::MAX_TABLE_LEN;

/// Default `healthchecker.transition-history`.
const DEFAULT_TRANSITION_HISTORY: usize = 5;
/// Upper bound of `transition-history`, so history stays small per backend.
const MAX_TRANSITION_HISTORY: u64 = 1000;
/// Default probe interval.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default probe timeout (capped by the smallest interval).
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default `rise` and `fall` (HAProxy's).
pub(super) const DEFAULT_RISE: u32 = 2;
pub(super) const DEFAULT_FALL: u32 = 3;
/// Upper bound of `rise` and `fall`.
const MAX_RISE_FALL: u32 = 1000;
/// Default and largest `max-body`.
pub(super) const DEFAULT_MAX_BODY: usize = 64 * 1024;
const MAX_MAX_BODY: u64 = 16 * 1024 * 1024;
/// Default sync and warm-up timing.
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_STARTUP_MIN_DELAY: Duration = Duration::from_secs(5);
const DEFAULT_STARTUP_MAX_DELAY: Duration = Duration::from_secs(30);
/// Default `healthchecker.state-max-age`.
const DEFAULT_STATE_MAX_AGE: Duration = Duration::from_secs(300);
/// Default damping: a one-minute half-life, suppressed above 3 flaps'
/// worth, released below 1, held at most 4 half-lives.
const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(60);
const DEFAULT_SUPPRESS: f64 = 3.0;
const DEFAULT_REUSE: f64 = 1.0;
const DEFAULT_MAX_SUPPRESS_HALF_LIVES: u32 = 4;
/// The largest damping penalty thresholds (a flap is worth 1).
const MAX_PENALTY: f64 = 1000.0;
/// `maglev.announce.min-interval` by default.
const DEFAULT_ANNOUNCE_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// `maglev.announce.vpp-grace` by default.
const DEFAULT_ANNOUNCE_VPP_GRACE: Duration = Duration::from_secs(5);
/// The longest `min-interval` and `vpp-grace`.
const MAX_ANNOUNCE_DURATION: Duration = Duration::from_secs(3600);

/// The longest `slow-start`, `half-life` and `max-suppress`.
const MAX_HEALTH_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Checks `raw` and builds the typed config, or returns every violation.
pub(super) fn validate(raw: RawMaglev) -> Result<Config, Vec<SemanticError>> {
    let mut v = Validator::default();
    let healthchecker = v.healthchecker(raw.healthchecker.unwrap_or_default());
    let access = v.access(raw.access.unwrap_or_default());
    let vpp = raw.vpp.map(|vpp| match vpp.lb {
        Some(lb) => VppConfig {
            lb: v.lb(lb).unwrap_or_else(placeholder_lb),
        },
        None => {
            v.error(
                "maglev.vpp.lb",
                "is required when the vpp section is present",
            );
            VppConfig {
                lb: placeholder_lb(),
            }
        }
    });
    let announce = raw.announce.map(|a| v.announce(a));
    let raw_checks = raw.healthchecks.map(|m| m.0).unwrap_or_default();
    // Backends may name a check that has errors of its own: those errors are
    // reported once, at the check, not again at every backend.
    let check_names: BTreeSet<String> = raw_checks.keys().cloned().collect();
    let healthchecks: BTreeMap<String, HealthCheck> = raw_checks
        .into_iter()
        .filter_map(|(name, hc)| {
            let path = format!("maglev.healthchecks.{name}");
            v.name(&path, &name);
            v.healthcheck(&path, hc).map(|hc| (name, hc))
        })
        .collect();
    let raw_backends = raw.backends.map(|m| m.0).unwrap_or_default();
    let backends: BTreeMap<String, Backend> = raw_backends
        .into_iter()
        .map(|(name, b)| {
            let path = format!("maglev.backends.{name}");
            v.name(&path, &name);
            let b = v.backend(&path, b, &check_names);
            (name, b)
        })
        .collect();
    let frontends: BTreeMap<String, Frontend> = raw
        .frontends
        .map(|m| m.0)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, f)| {
            let path = format!("maglev.frontends.{name}");
            v.name(&path, &name);
            let f = v.frontend(&path, f, &backends);
            (name, f)
        })
        .collect();
    v.vips(&frontends, &backends);

    if v.errors.is_empty() {
        Ok(Config {
            inner: Arc::new(ConfigData {
                healthchecker,
                access,
                vpp,
                announce,
                healthchecks,
                backends,
                frontends,
                index: Default::default(),
            }),
        })
    } else {
        Err(v.errors)
    }
}

/// Stands in for an invalid `vpp.lb` while the rest is checked; never
/// returned, because an error has been recorded.
fn placeholder_lb() -> LbConfig {
    LbConfig {
        ipv4_src_address: std::net::Ipv4Addr::UNSPECIFIED,
        ipv6_src_address: std::net::Ipv6Addr::UNSPECIFIED,
        sticky_buckets_per_core: None,
        flow_timeout: None,
        sync_interval: DEFAULT_SYNC_INTERVAL,
        startup_min_delay: DEFAULT_STARTUP_MIN_DELAY,
        startup_max_delay: DEFAULT_STARTUP_MAX_DELAY,
    }
}

/// The check types each `params` key belongs to, and whether it is set:
/// one row per key, so a key is never forgotten or checked twice.
type ParamRule = (
    &'static str,
    &'static [RawProbeKind],
    fn(&RawParams) -> bool,
);

const PARAM_RULES: &[ParamRule] = {
    use RawProbeKind::{Http, Https, Tcp};
    const WEB: &[RawProbeKind] = &[Http, Https];
    const TLS: &[RawProbeKind] = &[Https, Tcp];
    &[
        ("path", WEB, |p| p.path.is_some()),
        ("method", WEB, |p| p.method.is_some()),
        ("host", WEB, |p| p.host.is_some()),
        ("response-code", WEB, |p| p.response_code.is_some()),
        ("response-regex", WEB, |p| p.response_regex.is_some()),
        ("max-body", WEB, |p| p.max_body.is_some()),
        ("server-name", TLS, |p| p.server_name.is_some()),
        ("insecure-skip-verify", TLS, |p| {
            p.insecure_skip_verify.is_some()
        }),
        ("tls", &[Tcp], |p| p.tls.is_some()),
    ]
};

/// The `type` of a check as written in the file.
fn kind_name(kind: RawProbeKind) -> &'static str {
    match kind {
        RawProbeKind::Http => "http",
        RawProbeKind::Https => "https",
        RawProbeKind::Tcp => "tcp",
        RawProbeKind::Icmp => "icmp",
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<SemanticError>,
}

impl Validator {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SemanticError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Names appear in CLI commands and metric labels: no blanks or controls.
    fn name(&mut self, path: &str, name: &str) {
        if name.is_empty() {
            self.error(path, "name must not be empty");
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                path,
                format!("name {name:?} must not contain spaces or control characters"),
            );
        }
    }

    fn positive(&mut self, path: String, d: Option<Duration>, default: Duration) -> Duration {
        match d {
            Some(d) if d.is_zero() => {
                self.error(path, "must be greater than zero");
                default
            }
            Some(d) => d,
            None => default,
        }
    }

    fn healthchecker(&mut self, raw: super::yaml::RawHealthChecker) -> HealthCheckerConfig {
        let path = "maglev.healthchecker";
        let transition_history = match raw.transition_history {
            None => DEFAULT_TRANSITION_HISTORY,
            Some(n) if (1..=MAX_TRANSITION_HISTORY).contains(&n) => n as usize,
            Some(n) => {
                self.error(
                    format!("{path}.transition-history"),
                    format!("{n} is out of range 1..={MAX_TRANSITION_HISTORY}"),
                );
                DEFAULT_TRANSITION_HISTORY
            }
        };
        let netns = raw.netns.filter(|n| !n.is_empty());
        if let Some(ns) = &netns
            && (ns == "." || ns == ".." || ns.contains('/') || ns.contains('\0'))
        {
            self.error(
                format!("{path}.netns"),
                format!("{ns:?} is not a namespace name (as under /var/run/netns)"),
            );
        }
        HealthCheckerConfig {
            transition_history,
            netns,
            state_max_age: raw.state_max_age.map_or(DEFAULT_STATE_MAX_AGE, |d| d.0),
        }
    }

    fn announce(&mut self, raw: super::yaml::RawAnnounce) -> AnnounceConfig {
        let path = "maglev.announce";
        let table = match raw.table {
            None => {
                self.error(format!("{path}.table"), "is required");
                0
            }
            Some(t @ (0 | 253..=255)) => {
                self.error(
                    format!("{path}.table"),
                    format!(
                        "{t} is one of the kernel's own tables (0 unspec, 253 default, 254 main, 255 local): maglevd needs a table of its own"
                    ),
                );
                t
            }
            Some(t) => t,
        };
        let protocol = match raw.protocol {
            None => AnnounceConfig::DEFAULT_PROTOCOL,
            Some(p @ 0..=4) => {
                self.error(
                    format!("{path}.protocol"),
                    format!(
                        "{p} is reserved for the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot, 4 static): use 5..=255"
                    ),
                );
                p
            }
            Some(p) => p,
        };
        let netns = raw.netns.filter(|n| !n.is_empty());
        if let Some(ns) = &netns
            && (ns == "." || ns == ".." || ns.contains('/') || ns.contains('\0'))
        {
            self.error(
                format!("{path}.netns"),
                format!("{ns:?} is not a namespace name (as under /var/run/netns)"),
            );
        }
        let min_interval = raw
            .min_interval
            .map_or(DEFAULT_ANNOUNCE_MIN_INTERVAL, |d| d.0);
        let vpp_grace = raw.vpp_grace.map_or(DEFAULT_ANNOUNCE_VPP_GRACE, |d| d.0);
        for (key, d) in [("min-interval", min_interval), ("vpp-grace", vpp_grace)] {
            if d > MAX_ANNOUNCE_DURATION {
                self.error(
                    format!("{path}.{key}"),
                    format!(
                        "{} is longer than {}",
                        format_duration(d),
                        format_duration(MAX_ANNOUNCE_DURATION)
                    ),
                );
            }
        }
        if vpp_grace.is_zero() {
            // A fresh maglevd sees VPP unreachable until it has connected:
            // with no grace at all, every restart would withdraw.
            self.error(
                format!("{path}.vpp-grace"),
                "must be greater than zero (a start needs a moment to reach VPP)",
            );
        }
        AnnounceConfig {
            table,
            protocol,
            netns,
            min_interval,
            vpp_grace,
        }
    }

    fn access(&mut self, raw: RawAccess) -> Access {
        let mut admins = BTreeSet::new();
        for (i, name) in raw.admins.unwrap_or_default().into_iter().enumerate() {
            let path = format!("maglev.access.admins[{i}]");
            if name.is_empty() {
                self.error(path, "must not be empty");
            } else if name.chars().any(char::is_control) {
                self.error(
                    path,
                    format!("{name:?} must not contain control characters"),
                );
            } else if admins.contains(&name) {
                self.error(path, format!("{name:?} is listed twice"));
            } else {
                admins.insert(name);
            }
        }
        Access { admins }
    }

    fn lb(&mut self, raw: RawLb) -> Option<LbConfig> {
        let path = "maglev.vpp.lb";
        let before = self.errors.len();
        let ipv4_src_address = match raw.ipv4_src_address {
            Some(IpAddr::V4(a)) => Some(a),
            Some(IpAddr::V6(a)) => {
                self.error(
                    format!("{path}.ipv4-src-address"),
                    format!("{a} is not an IPv4 address"),
                );
                None
            }
            None => {
                self.error(format!("{path}.ipv4-src-address"), "is required");
                None
            }
        };
        let ipv6_src_address = match raw.ipv6_src_address {
            Some(IpAddr::V6(a)) => Some(a),
            Some(IpAddr::V4(a)) => {
                self.error(
                    format!("{path}.ipv6-src-address"),
                    format!("{a} is not an IPv6 address"),
                );
                None
            }
            None => {
                self.error(format!("{path}.ipv6-src-address"), "is required");
                None
            }
        };
        if let Some(n) = raw.sticky_buckets_per_core
            && (n == 0 || !n.is_power_of_two())
        {
            self.error(
                format!("{path}.sticky-buckets-per-core"),
                format!("{n} is not a power of two (VPP refuses it with -70)"),
            );
        }
        let flow_timeout = raw.flow_timeout.map(|d| d.0);
        if let Some(d) = flow_timeout
            && (d < Duration::from_secs(1)
                || d.subsec_nanos() != 0
                || d.as_secs() >= u64::from(u32::MAX))
        {
            self.error(
                format!("{path}.flow-timeout"),
                format!(
                    "{} must be a whole number of seconds, at least 1s",
                    format_duration(d)
                ),
            );
        }
        let sync_interval = self.positive(
            format!("{path}.sync-interval"),
            raw.sync_interval.map(|d| d.0),
            DEFAULT_SYNC_INTERVAL,
        );
        let startup_min_delay = raw
            .startup_min_delay
            .map_or(DEFAULT_STARTUP_MIN_DELAY, |d| d.0);
        let startup_max_delay = raw
            .startup_max_delay
            .map_or(DEFAULT_STARTUP_MAX_DELAY, |d| d.0);
        if !startup_max_delay.is_zero() && startup_min_delay > startup_max_delay {
            self.error(
                format!("{path}.startup-max-delay"),
                format!(
                    "{} is shorter than startup-min-delay {} (or set it to 0 for no watchdog: each frontend then waits until all its backends are known)",
                    format_duration(startup_max_delay),
                    format_duration(startup_min_delay)
                ),
            );
        }
        if self.errors.len() != before {
            return None;
        }
        Some(LbConfig {
            ipv4_src_address: ipv4_src_address?,
            ipv6_src_address: ipv6_src_address?,
            sticky_buckets_per_core: raw.sticky_buckets_per_core,
            flow_timeout,
            sync_interval,
            startup_min_delay,
            startup_max_delay,
        })
    }

    fn healthcheck(&mut self, path: &str, raw: RawHealthCheck) -> Option<HealthCheck> {
        let before = self.errors.len();
        let timing = self.timing(path, &raw);
        let damping = raw
            .damping
            .map(|d| self.damping(&format!("{path}.damping"), d));
        let slow_start = raw.slow_start.map_or(Duration::ZERO, |d| d.0);
        if slow_start > MAX_HEALTH_DURATION {
            self.error(
                format!("{path}.slow-start"),
                format!(
                    "{} is longer than {}",
                    format_duration(slow_start),
                    format_duration(MAX_HEALTH_DURATION)
                ),
            );
        }
        let params = raw.params.unwrap_or_default();
        let probe = self.probe(path, raw.kind, raw.port, params);
        (self.errors.len() == before).then_some(HealthCheck {
            probe,
            timing,
            damping,
            slow_start,
        })
    }

    fn damping(&mut self, path: &str, raw: RawDamping) -> Damping {
        let mut duration = |key: &str, d: Option<Duration>, default: Duration| {
            let d = self.positive(format!("{path}.{key}"), d, default);
            if d > MAX_HEALTH_DURATION {
                self.error(
                    format!("{path}.{key}"),
                    format!(
                        "{} is longer than {}",
                        format_duration(d),
                        format_duration(MAX_HEALTH_DURATION)
                    ),
                );
                return default;
            }
            d
        };
        let half_life = duration("half-life", raw.half_life.map(|d| d.0), DEFAULT_HALF_LIFE);
        let max_suppress = duration(
            "max-suppress",
            raw.max_suppress.map(|d| d.0),
            half_life * DEFAULT_MAX_SUPPRESS_HALF_LIVES,
        );
        let mut penalty = |key: &str, v: Option<f64>, default: f64| match v {
            None => default,
            Some(v) if v > 0.0 && v <= MAX_PENALTY => v,
            Some(v) => {
                self.error(
                    format!("{path}.{key}"),
                    format!("{v} is out of range: a penalty above 0 and at most {MAX_PENALTY} (a flap is worth 1)"),
                );
                default
            }
        };
        let suppress = penalty("suppress", raw.suppress, DEFAULT_SUPPRESS);
        let reuse = penalty("reuse", raw.reuse, DEFAULT_REUSE);
        let damping = Damping {
            half_life,
            suppress,
            reuse,
            max_suppress,
        };
        if reuse >= suppress {
            self.error(
                format!("{path}.reuse"),
                format!("{reuse} is not below suppress {suppress}: a suppressed backend could never be released"),
            );
        } else if damping.max_penalty() <= suppress {
            self.error(
                format!("{path}.max-suppress"),
                format!(
                    "{} is too short: the penalty is capped at {:.2}, which never exceeds suppress {suppress}, so nothing would be suppressed",
                    format_duration(max_suppress),
                    damping.max_penalty()
                ),
            );
        }
        damping
    }

    fn timing(&mut self, path: &str, raw: &RawHealthCheck) -> Timing {
        let interval = self.positive(
            format!("{path}.interval"),
            raw.interval.map(|d| d.0),
            DEFAULT_INTERVAL,
        );
        let fast_interval = self.positive(
            format!("{path}.fast-interval"),
            raw.fast_interval.map(|d| d.0),
            interval,
        );
        let down_interval = self.positive(
            format!("{path}.down-interval"),
            raw.down_interval.map(|d| d.0),
            interval,
        );
        let smallest = interval.min(fast_interval).min(down_interval);
        let timeout = match raw.timeout.map(|d| d.0) {
            None => DEFAULT_TIMEOUT.min(smallest),
            Some(t) => {
                let t = self.positive(format!("{path}.timeout"), Some(t), DEFAULT_TIMEOUT);
                if t > smallest {
                    self.error(
                        format!("{path}.timeout"),
                        format!(
                            "{} is longer than the smallest interval {}: a probe must end before the next starts",
                            format_duration(t),
                            format_duration(smallest)
                        ),
                    );
                }
                t
            }
        };
        let mut counter = |key: &str, value: Option<u32>, default: u32| match value {
            None => default,
            Some(n) if (1..=MAX_RISE_FALL).contains(&n) => n,
            Some(n) => {
                self.error(
                    format!("{path}.{key}"),
                    format!("{n} is out of range 1..={MAX_RISE_FALL}"),
                );
                default
            }
        };
        let rise = counter("rise", raw.rise, DEFAULT_RISE);
        let fall = counter("fall", raw.fall, DEFAULT_FALL);
        Timing {
            interval,
            fast_interval,
            down_interval,
            timeout,
            rise,
            fall,
        }
    }

    fn probe(&mut self, path: &str, kind: RawProbeKind, port: Option<u16>, p: RawParams) -> Probe {
        use RawProbeKind::{Http, Https, Tcp};
        let params = format!("{path}.params");
        for &(key, allowed, is_set) in PARAM_RULES {
            if is_set(&p) && !allowed.contains(&kind) {
                let types: Vec<_> = allowed.iter().map(|k| kind_name(*k)).collect();
                self.error(
                    format!("{params}.{key}"),
                    format!(
                        "is only for {} checks, not {}",
                        types.join(" and "),
                        kind_name(kind)
                    ),
                );
            }
        }
        if kind == Tcp
            && p.tls != Some(true)
            && (p.server_name.is_some() || p.insecure_skip_verify.is_some())
        {
            self.error(
                format!("{params}.tls"),
                "server-name and insecure-skip-verify need tls: true",
            );
        }
        if port == Some(0) {
            self.error(format!("{path}.port"), "must be 1..=65535");
        }
        for (key, value) in [("host", &p.host), ("server-name", &p.server_name)] {
            if let Some(v) = value
                && (v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                self.error(
                    format!("{params}.{key}"),
                    format!("{v:?} is not a host name"),
                );
            }
        }
        let tls = TlsParams {
            server_name: p.server_name.clone().or_else(|| p.host.clone()),
            insecure_skip_verify: p.insecure_skip_verify.unwrap_or(false),
        };
        match kind {
            RawProbeKind::Icmp => {
                if port.is_some() {
                    self.error(format!("{path}.port"), "icmp checks have no port");
                }
                Probe::Icmp
            }
            Tcp => {
                if port.is_none() {
                    self.error(format!("{path}.port"), "is required for tcp checks");
                }
                Probe::Tcp(TcpProbe {
                    port: port.unwrap_or(0),
                    tls: (p.tls == Some(true)).then_some(TlsParams {
                        server_name: p.server_name,
                        ..tls
                    }),
                })
            }
            Http | Https => {
                let https = kind == Https;
                let path_value = p.path.unwrap_or_else(|| "/".to_owned());
                if !path_value.starts_with('/')
                    || path_value
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
                {
                    self.error(
                        format!("{params}.path"),
                        format!("{path_value:?} must start with / and contain no spaces"),
                    );
                }
                let response_codes = match p.response_code {
                    None => StatusCodes::default(),
                    Some(codes) => self.status_codes(&format!("{params}.response-code"), codes.0),
                };
                if let Some(re) = &p.response_regex
                    && let Err(e) = super::compile_response_regex(re)
                {
                    // regex's syntax errors span several lines; the last says what is wrong.
                    let text = e.to_string();
                    let what = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default();
                    self.error(
                        format!("{params}.response-regex"),
                        format!(
                            "invalid regular expression {re:?}: {}",
                            what.trim_start_matches("error: ")
                        ),
                    );
                }
                let max_body = match p.max_body {
                    None => DEFAULT_MAX_BODY,
                    Some(n) if (1..=MAX_MAX_BODY).contains(&n) => n as usize,
                    Some(n) => {
                        self.error(
                            format!("{params}.max-body"),
                            format!("{n} is out of range 1..={MAX_MAX_BODY}"),
                        );
                        DEFAULT_MAX_BODY
                    }
                };
                Probe::Http(HttpProbe {
                    port: port.unwrap_or(if https { 443 } else { 80 }),
                    path: path_value,
                    method: match p.method {
                        None | Some(RawMethod::Get) => HttpMethod::Get,
                        Some(RawMethod::Head) => HttpMethod::Head,
                    },
                    host: p.host,
                    response_codes,
                    response_regex: p.response_regex,
                    max_body,
                    tls: https.then_some(tls),
                })
            }
        }
    }

    fn status_codes(&mut self, path: &str, ranges: Vec<(u64, u64)>) -> StatusCodes {
        if ranges.is_empty() {
            self.error(path, "must list at least one code");
        }
        let mut out = Vec::new();
        for (lo, hi) in ranges {
            if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
                let text = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                };
                self.error(
                    path,
                    format!("{text} is not a status code or range within 100-599"),
                );
            } else {
                out.push((lo as u16, hi as u16));
            }
        }
        StatusCodes::new(out)
    }

    fn backend(&mut self, path: &str, raw: RawBackend, check_names: &BTreeSet<String>) -> Backend {
        self.unicast(&format!("{path}.address"), raw.address);
        if let Some(hc) = &raw.healthcheck
            && !check_names.contains(hc)
        {
            self.error(
                format!("{path}.healthcheck"),
                format!("no health check named {hc:?}"),
            );
        }
        Backend {
            address: raw.address,
            healthcheck: raw.healthcheck,
            enabled: raw.enabled.unwrap_or(true),
        }
    }

    fn unicast(&mut self, path: &str, address: IpAddr) {
        let bad = match address {
            IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
        };
        if bad {
            self.error(path, format!("{address} is not a unicast address"));
        }
    }

    fn frontend(
        &mut self,
        path: &str,
        raw: RawFrontend,
        backends: &BTreeMap<String, Backend>,
    ) -> Frontend {
        self.unicast(&format!("{path}.address"), raw.address);
        let port = raw.port.unwrap_or(0);
        match (raw.protocol, port) {
            (None, p) if p != 0 => self.error(
                format!("{path}.port"),
                format!("port {p} needs a protocol (tcp or udp); without one the VIP takes every port"),
            ),
            (Some(_), 0) => self.error(
                format!("{path}.port"),
                "a VIP with a protocol needs a port: VPP treats port 0 as every port of every protocol",
            ),
            _ => {}
        }
        let flow_table_length = match raw.flow_table_length {
            None => TableLength::default(),
            Some(RawTableLength::Auto) => TableLength::Auto,
            Some(RawTableLength::Fixed(n)) => match u32::try_from(n) {
                Ok(n) if n.is_power_of_two() && n as usize <= MAX_TABLE_LEN => {
                    TableLength::Fixed(n)
                }
                _ => {
                    self.error(
                        format!("{path}.flow-table-length"),
                        format!(
                            "{n} is not a power of two from 1 to {MAX_TABLE_LEN} (VPP's tables are powers of two), nor auto"
                        ),
                    );
                    TableLength::default()
                }
            },
        };
        let raw_pools = raw.pools.unwrap_or_default();
        if raw_pools.is_empty() {
            self.error(format!("{path}.pools"), "must list at least one pool");
        }
        let mut pools = Vec::new();
        let mut seen_pools = BTreeSet::new();
        let mut member_of: BTreeMap<String, String> = BTreeMap::new();
        let mut family: Option<(String, IpAddr)> = None;
        let mut addresses: BTreeMap<IpAddr, String> = BTreeMap::new();
        for (i, raw_pool) in raw_pools.into_iter().enumerate() {
            let ppath = format!("{path}.pools[{i}]");
            let name = raw_pool.name.unwrap_or_default();
            if name.is_empty() {
                self.error(format!("{ppath}.name"), "must not be empty");
            } else if !seen_pools.insert(name.clone()) {
                self.error(
                    format!("{ppath}.name"),
                    format!("pool {name:?} is listed twice"),
                );
            }
            let members = raw_pool.backends.map(|m| m.0).unwrap_or_default();
            if members.is_empty() {
                self.error(
                    format!("{ppath}.backends"),
                    "must list at least one backend",
                );
            }
            let member_count = members.len();
            let mut threshold = |key: &str, raw: Option<RawThreshold>| -> Option<Threshold> {
                let t = match raw? {
                    RawThreshold::Count(n) if n >= 1 && n <= member_count as u64 => {
                        Threshold::Count(n as u32)
                    }
                    RawThreshold::Count(n) => {
                        self.error(
                            format!("{ppath}.{key}"),
                            format!(
                                "{n} is out of range 1..={member_count} (the pool has {member_count} backends)"
                            ),
                        );
                        return None;
                    }
                    RawThreshold::Percent(p) if (1..=100).contains(&p) => {
                        Threshold::Percent(p as u8)
                    }
                    RawThreshold::Percent(p) => {
                        self.error(
                            format!("{ppath}.{key}"),
                            format!("{p}% is out of range 1%..=100%"),
                        );
                        return None;
                    }
                };
                Some(t)
            };
            let min_up = threshold("min-up", raw_pool.min_up).unwrap_or_default();
            let min_up_to_return =
                threshold("min-up-to-return", raw_pool.min_up_to_return).unwrap_or(min_up);
            if min_up_to_return.count(member_count) < min_up.count(member_count) {
                self.error(
                    format!("{ppath}.min-up-to-return"),
                    format!(
                        "{min_up_to_return} ({} backends) is below min-up {min_up} ({}): a pool would return before it could stay",
                        min_up_to_return.count(member_count),
                        min_up.count(member_count)
                    ),
                );
            }
            let mut pool = Pool {
                name: name.clone(),
                backends: BTreeMap::new(),
                min_up,
                min_up_to_return,
            };
            for (bname, member) in members {
                let bpath = format!("{ppath}.backends.{bname}");
                let weight = match member.and_then(|m| m.weight) {
                    None => MAX_WEIGHT,
                    Some(w) if w <= u64::from(MAX_WEIGHT) => w as u8,
                    Some(w) => {
                        self.error(
                            format!("{bpath}.weight"),
                            format!("{w} is out of range 0..={MAX_WEIGHT}"),
                        );
                        MAX_WEIGHT
                    }
                };
                if let Some(other) = member_of.insert(bname.clone(), name.clone()) {
                    self.error(
                        bpath.clone(),
                        format!("backend is already in pool {other:?}: a backend is one AS of the VIP, in one pool"),
                    );
                }
                match backends.get(&bname) {
                    None => self.error(bpath.clone(), format!("no backend named {bname:?}")),
                    Some(b) => {
                        match &family {
                            None => family = Some((bname.clone(), b.address)),
                            Some((first, addr)) if addr.is_ipv4() != b.address.is_ipv4() => self.error(
                                bpath.clone(),
                                format!(
                                    "backend {bname:?} ({}) is not in the address family of backend {first:?} ({addr}): \
                                     all backends of a frontend share one family",
                                    b.address
                                ),
                            ),
                            Some(_) => {}
                        }
                        if let Some(other) = addresses.insert(b.address, bname.clone())
                            && other != bname
                        {
                            self.error(
                                    bpath.clone(),
                                    format!("backend {bname:?} has the same address {} as backend {other:?}", b.address),
                                );
                        }
                    }
                }
                pool.backends.insert(bname, PoolMember { weight });
            }
            pools.push(pool);
        }
        Frontend {
            address: raw.address,
            protocol: raw.protocol.map(Into::into),
            port,
            description: raw.description.unwrap_or_default(),
            pools,
            src_ip_sticky: raw.src_ip_sticky.unwrap_or(false),
            flush_on_down: raw.flush_on_down.unwrap_or(true),
            flow_table_length,
        }
    }

    /// Rules across frontends: unique VIPs, no all-port VIP beside per-port
    /// ones on one address, one encap per VIP address.
    fn vips(
        &mut self,
        frontends: &BTreeMap<String, Frontend>,
        backends: &BTreeMap<String, Backend>,
    ) {
        let mut keys: BTreeMap<VipKey, &str> = BTreeMap::new();
        let mut by_address: BTreeMap<IpAddr, Vec<(&str, &Frontend)>> = BTreeMap::new();
        for (name, f) in frontends {
            let path = format!("maglev.frontends.{name}");
            if let Some(other) = keys.insert(f.vip_key(), name) {
                self.error(
                    path.clone(),
                    format!("same VIP {} as frontend {other:?}", f.vip_key()),
                );
            }
            by_address.entry(f.address).or_default().push((name, f));
        }
        for group in by_address.values() {
            let all_port = group.iter().find(|(_, f)| f.vip_key().is_all_port());
            let per_port = all_port.and_then(|(_, a)| {
                group
                    .iter()
                    .find(|(_, f)| a.vip_key().excludes(&f.vip_key()))
            });
            if let (Some((all_name, f)), Some((per_name, _))) = (all_port, per_port) {
                self.error(
                    format!("maglev.frontends.{all_name}.port"),
                    format!(
                        "an all-port VIP on {} cannot coexist with per-port frontend {per_name:?} on the same address \
                         (VPP refuses the pair with -81)",
                        f.address
                    ),
                );
            }
            let encap_of = |f: &Frontend| {
                f.backend_names()
                    .find_map(|b| backends.get(b))
                    .map(|b| Encap::for_backend(b.address))
            };
            let mut first: Option<(&str, Encap)> = None;
            for (name, f) in group {
                let Some(encap) = encap_of(f) else { continue };
                match first {
                    None => first = Some((name, encap)),
                    Some((other, e)) if e != encap => self.error(
                        format!("maglev.frontends.{name}"),
                        format!(
                            "shares VIP address {} with frontend {other:?} but its backends are in another address \
                             family: every VIP on one address needs the same encap (VPP refuses it with -73)",
                            f.address
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        Config, ConfigError, HttpProbe, Probe, Timing, TlsParams, compile_response_regex,
    };

    fn check(kind: &str, port: &str, params: &str) -> Result<Config, ConfigError> {
        let yaml = format!(
            "maglev:\n  healthchecks:\n    h: {{ type: {kind}{port}, params: {{ {params} }} }}\n"
        );
        Config::from_yaml(&yaml, "t.yaml")
    }

    /// The `Default`s an embedder builds a check from are what a config
    /// check without options gets.
    #[test]
    fn probe_and_timing_defaults_are_the_configs() {
        let config = check("http", "", "").unwrap();
        let h = config.healthcheck("h").unwrap();
        assert_eq!(h.probe, Probe::Http(HttpProbe::default()));
        assert_eq!(h.timing, Timing::default());
        let config = check("https", "", "").unwrap();
        let https = HttpProbe {
            port: 443,
            tls: Some(TlsParams::default()),
            ..HttpProbe::default()
        };
        assert_eq!(config.healthcheck("h").unwrap().probe, Probe::Http(https));
    }

    /// The probe matches bytes, so validation accepts what the probe
    /// compiles: a pattern for a non-UTF-8 body is valid.
    #[test]
    fn response_regex_is_validated_as_the_probe_compiles_it() {
        let r = check("http", "", r#"response-regex: '(?-u:\xFF)'"#);
        assert!(r.is_ok(), "{r:?}");
        assert!(compile_response_regex(r"(?-u:\xFF)").is_ok());
        // Over the one size limit: refused by both, with the same limit.
        let huge = r"\w{500}\w{500}\w{500}";
        assert!(compile_response_regex(huge).is_err());
        let err = check("http", "", &format!("response-regex: '{huge}'")).unwrap_err();
        assert!(
            err.to_string().contains(
                "maglev.healthchecks.h.params.response-regex: invalid regular expression"
            ),
            "{err}"
        );
    }

    /// Every `params` key against every type: refused exactly where the
    /// config guide's table says it does not belong.
    #[test]
    fn params_keys_belong_to_their_types() {
        let keys = [
            ("path", "/x", &["http", "https"][..]),
            ("method", "HEAD", &["http", "https"]),
            ("host", "a.example", &["http", "https"]),
            ("response-code", "200", &["http", "https"]),
            ("response-regex", "ok", &["http", "https"]),
            ("max-body", "10", &["http", "https"]),
            ("server-name", "a.example", &["https", "tcp"]),
            ("insecure-skip-verify", "true", &["https", "tcp"]),
            ("tls", "true", &["tcp"]),
        ];
        for kind in ["http", "https", "tcp", "icmp"] {
            let port = if kind == "tcp" { ", port: 853" } else { "" };
            for (key, value, allowed) in keys {
                // server-name and insecure-skip-verify on tcp need tls.
                let extra = if kind == "tcp" && key != "tls" {
                    ", tls: true"
                } else {
                    ""
                };
                let r = check(kind, port, &format!("{key}: {value}{extra}"));
                let wrong = format!("maglev.healthchecks.h.params.{key}: is only for");
                match r {
                    Ok(_) => assert!(allowed.contains(&kind), "{key} accepted for {kind}"),
                    Err(e) => {
                        let text = e.to_string();
                        assert!(!allowed.contains(&kind), "{key} refused for {kind}: {text}");
                        let want = format!("{wrong} {} checks, not {kind}", allowed.join(" and "));
                        assert!(text.contains(&want), "{text}\nwant {want}");
                    }
                }
            }
        }
    }

    const HEALTH: &str = "
maglev:
  healthchecker: { state-max-age: 90s }
  healthchecks:
    h:
      type: tcp
      port: 80
      slow-start: 30s
      damping: { half-life: 30s, suppress: 4, reuse: 1.5 }
  backends:
    a: { address: 10.0.0.1, healthcheck: h }
    b: { address: 10.0.0.2, healthcheck: h }
    c: { address: 10.0.0.3, healthcheck: h }
    d: { address: 10.0.0.4, healthcheck: h }
  frontends:
    web:
      address: 192.0.2.1
      pools:
        - name: primary
          min-up: 50%
          min-up-to-return: 3
          backends: { a: {}, b: {}, c: {} }
        - name: fallback
          backends: { d: {} }
";

    #[test]
    fn damping_slow_start_and_thresholds_are_read_with_their_defaults() {
        use super::super::{Damping, Threshold};
        use std::time::Duration;
        let c = Config::from_yaml(HEALTH, "t.yaml").unwrap();
        assert_eq!(c.healthchecker().state_max_age, Duration::from_secs(90));
        let h = c.healthcheck("h").unwrap();
        assert_eq!(h.slow_start, Duration::from_secs(30));
        assert_eq!(
            h.damping,
            Some(Damping {
                half_life: Duration::from_secs(30),
                suppress: 4.0,
                reuse: 1.5,
                max_suppress: Duration::from_secs(120),
            })
        );
        let pools = &c.frontend("web").unwrap().pools;
        assert_eq!(pools[0].min_up, Threshold::Percent(50));
        assert_eq!(pools[0].min_up_count(), 2);
        assert_eq!(pools[0].min_up_to_return_count(), 3);
        assert_eq!(pools[1].min_up, Threshold::Count(1));
        assert_eq!(pools[1].min_up_to_return, Threshold::Count(1));
        let plain = Config::from_yaml(
            &HEALTH
                .replace(
                    "      damping: { half-life: 30s, suppress: 4, reuse: 1.5 }\n",
                    "",
                )
                .replace("      slow-start: 30s\n", ""),
            "t.yaml",
        )
        .unwrap();
        assert_eq!(plain.healthcheck("h").unwrap().damping, None);
        assert_eq!(plain.healthcheck("h").unwrap().slow_start, Duration::ZERO);
    }

    #[test]
    fn damping_and_threshold_mistakes_are_named() {
        let cases = [
            (
                "suppress: 4, reuse: 1.5",
                "suppress: 2, reuse: 2",
                "maglev.healthchecks.h.damping.reuse: 2 is not below suppress 2",
            ),
            (
                "suppress: 4, reuse: 1.5",
                "suppress: 4, reuse: 1.5, max-suppress: 30s",
                "maglev.healthchecks.h.damping.max-suppress: 30s is too short",
            ),
            (
                "suppress: 4, reuse: 1.5",
                "suppress: -1",
                "maglev.healthchecks.h.damping.suppress: -1 is out of range",
            ),
            (
                "half-life: 30s",
                "half-life: 0s",
                "maglev.healthchecks.h.damping.half-life: must be greater than zero",
            ),
            (
                "slow-start: 30s",
                "slow-start: 48h",
                "maglev.healthchecks.h.slow-start: 48h is longer than 24h",
            ),
            (
                "min-up: 50%",
                "min-up: 4",
                "maglev.frontends.web.pools[0].min-up: 4 is out of range 1..=3 (the pool has 3 backends)",
            ),
            (
                "min-up: 50%",
                "min-up: 0%",
                "maglev.frontends.web.pools[0].min-up: 0% is out of range 1%..=100%",
            ),
            (
                "min-up: 50%",
                "min-up: half",
                "maglev.frontends.web.pools[0].min-up",
            ),
            (
                "min-up-to-return: 3",
                "min-up-to-return: 1",
                "maglev.frontends.web.pools[0].min-up-to-return: 1 (1 backends) is below min-up 50% (2)",
            ),
        ];
        for (from, to, want) in cases {
            let yaml = HEALTH.replace(from, to);
            assert_ne!(yaml, HEALTH, "{from}");
            let err = Config::from_yaml(&yaml, "t.yaml").unwrap_err().to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
    }

    #[test]
    fn access_admins_are_read_and_their_mistakes_named() {
        let c = Config::from_yaml(
            "maglev:\n  access:\n    admins: [alice, 'spiffe://ops/maglev']\n",
            "t.yaml",
        )
        .unwrap();
        let access = c.access();
        assert!(access.is_admin(["bob", "alice"].into_iter()));
        assert!(access.is_admin(["spiffe://ops/maglev"].into_iter()));
        assert!(!access.is_admin(["Alice", "bob"].into_iter()));
        assert!(
            Config::from_yaml("maglev: {}\n", "t.yaml")
                .unwrap()
                .access()
                .admins
                .is_empty()
        );

        let err = Config::from_yaml(
            "maglev:\n  access:\n    admins: [alice, '', alice]\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("maglev.access.admins[1]: must not be empty"),
            "{err}"
        );
        assert!(
            err.contains("maglev.access.admins[2]: \"alice\" is listed twice"),
            "{err}"
        );
        let err = Config::from_yaml("maglev:\n  access: { readers: [x] }\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("readers"), "{err}");
    }
}
