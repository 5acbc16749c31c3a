//! `maglev_probe_total{backend,type,result,code}` and
//! `maglev_probe_duration_seconds{backend,type}`: one series set per
//! backend and probe type, kept in atomics and encoded by hand (these are
//! the largest families: about twenty lines per backend, so detail, not
//! default). And
//! `maglev_probe_errors_total{reason}`: probes that could not run for a
//! reason of ours (`fd_limit`, `no_buffers`, ...), one series per reason,
//! every one written from 0 so that `increase()` sees the first.
//!
//! A probe of a backend already seen costs a read lock, a map lookup by
//! `&str` and a few atomic adds: no allocation. Durations are summed in
//! nanoseconds, so the sum is exact.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use maglev_health::Code;
use maglev_health::observe::{ProbeObserver, ProbeRecord};
use maglev_health::probe::LocalCause;

use super::text::{self, Kind};
use super::{Families, Format};

/// The upper bounds of the duration buckets, in nanoseconds: 0.5 ms to
/// about 4 s, doubling (probe timeouts are in that range).
const BUCKETS_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_000_000,
    4_000_000,
    8_000_000,
    16_000_000,
    32_000_000,
    64_000_000,
    128_000_000,
    256_000_000,
    512_000_000,
    1_024_000_000,
    2_048_000_000,
    4_096_000_000,
];

/// The same bounds as the `le` label writes them, then `+Inf`.
const BUCKET_LABELS: [&str; 15] = [
    r#"le="0.0005""#,
    r#"le="0.001""#,
    r#"le="0.002""#,
    r#"le="0.004""#,
    r#"le="0.008""#,
    r#"le="0.016""#,
    r#"le="0.032""#,
    r#"le="0.064""#,
    r#"le="0.128""#,
    r#"le="0.256""#,
    r#"le="0.512""#,
    r#"le="1.024""#,
    r#"le="2.048""#,
    r#"le="4.096""#,
    r#"le="+Inf""#,
];

/// The probes of one backend with one probe type.
#[derive(Debug)]
struct Series {
    kind: &'static str,
    /// Probes by result code, indexed like [`Code::ALL`].
    by_code: [AtomicU64; Code::ALL.len()],
    /// Probes by duration bucket (not cumulative; the last is `+Inf`).
    buckets: [AtomicU64; BUCKET_LABELS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Series {
    fn new(kind: &'static str) -> Series {
        Series {
            kind,
            by_code: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, code: Code, nanos: u64) {
        if let Some(i) = Code::ALL.iter().position(|c| *c == code) {
            self.by_code[i].fetch_add(1, Ordering::Relaxed);
        }
        let bucket = BUCKETS_NANOS
            .iter()
            .position(|le| nanos <= *le)
            .unwrap_or(BUCKETS_NANOS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every backend's probe series, by backend name (one per probe type the
/// backend was probed with; a reload may change the type).
#[derive(Debug, Default)]
pub(super) struct ProbeStats {
    series: RwLock<BTreeMap<Arc<str>, Vec<Arc<Series>>>>,
    /// Probes that could not run, indexed like [`LocalCause::ALL`].
    errors: [AtomicU64; LocalCause::ALL.len()],
}

impl ProbeStats {
    fn series(&self, backend: &str, kind: &'static str) -> Arc<Series> {
        let found = |map: &BTreeMap<Arc<str>, Vec<Arc<Series>>>| {
            map.get(backend)
                .and_then(|v| v.iter().find(|s| s.kind == kind).cloned())
        };
        if let Some(s) = found(&self.series.read().unwrap_or_else(|e| e.into_inner())) {
            return s;
        }
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = found(&map) {
            return s;
        }
        let s = Arc::new(Series::new(kind));
        map.entry(Arc::from(backend)).or_default().push(s.clone());
        s
    }

    /// Forgets the series of `backend` (a reload removed it).
    pub(super) fn forget(&self, backend: &str) {
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(backend);
    }

    /// Counts one probe.
    pub(super) fn record(&self, r: &ProbeRecord<'_>) {
        let nanos = u64::try_from(r.duration.as_nanos()).unwrap_or(u64::MAX);
        self.series(r.backend, r.kind.as_str())
            .record(r.code, nanos);
    }

    /// Counts one probe that could not run.
    pub(super) fn could_not_run(&self, cause: LocalCause) {
        if let Some(i) = LocalCause::ALL.iter().position(|c| *c == cause) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the probe families of `families`: the errors by reason are
    /// default, the per-backend counters and histograms detail.
    pub(super) fn encode(&self, out: &mut String, format: Format, families: Families) {
        if families.default_set() {
            self.encode_errors(out, format);
        }
        if families.detail_set() {
            self.encode_detail(out, format);
        }
    }

    /// `maglev_probe_errors_total{reason}`.
    fn encode_errors(&self, out: &mut String, format: Format) {
        text::header(
            out,
            format,
            "maglev_probe_errors",
            "Probes that could not run for a reason of ours (no evidence about the backend), by reason",
            Kind::Counter,
        );
        for (cause, n) in LocalCause::ALL.iter().zip(&self.errors) {
            let labels = [("reason", cause.as_str())];
            let n = n.load(Ordering::Relaxed);
            text::sample(out, "maglev_probe_errors_total", &labels, n);
        }
    }

    /// `maglev_probe_total` and `maglev_probe_duration_seconds`: about
    /// twenty series per probed backend.
    fn encode_detail(&self, out: &mut String, format: Format) {
        let map = self.series.read().unwrap_or_else(|e| e.into_inner());
        text::header(
            out,
            format,
            "maglev_probe",
            "Health-check probes by backend, type, result and code",
            Kind::Counter,
        );
        for (backend, list) in map.iter() {
            for s in list {
                for (code, n) in Code::ALL.iter().zip(&s.by_code) {
                    let n = n.load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let result = match code {
                        c if c.is_pass() => "pass",
                        // Could not run: neither pass nor fail.
                        Code::SockErr => "error",
                        _ => "fail",
                    };
                    let labels = [
                        ("backend", backend.as_ref()),
                        ("type", s.kind),
                        ("result", result),
                        ("code", code.as_str()),
                    ];
                    text::sample(out, "maglev_probe_total", &labels, n);
                }
            }
        }
        text::header(
            out,
            format,
            "maglev_probe_duration_seconds",
            "How long health-check probes took",
            Kind::Histogram,
        );
        let mut prefix = String::new();
        for (backend, list) in map.iter() {
            for s in list {
                let labels = [("backend", backend.as_ref()), ("type", s.kind)];
                text::prefix(&mut prefix, "maglev_probe_duration_seconds_bucket", &labels);
                // Read the buckets first: a probe landing meanwhile makes
                // `_count` at most larger than `+Inf`, never smaller.
                let mut cumulative = 0;
                for (le, n) in BUCKET_LABELS.iter().zip(&s.buckets) {
                    cumulative += n.load(Ordering::Relaxed);
                    text::sample_with(out, &prefix, le, cumulative);
                }
                let sum = s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                let count = s.count.load(Ordering::Relaxed).max(cumulative);
                text::sample_f64(out, "maglev_probe_duration_seconds_sum", &labels, sum);
                text::sample(out, "maglev_probe_duration_seconds_count", &labels, count);
            }
        }
    }
}

/// The checker's observer: counts into the shared [`ProbeStats`].
#[derive(Debug)]
pub(super) struct ProbeCounter(pub(super) Arc<ProbeStats>);

impl ProbeObserver for ProbeCounter {
    fn probe_ended(&self, r: &ProbeRecord<'_>) {
        self.0.record(r);
    }

    fn probe_could_not_run(&self, _backend: &str, cause: LocalCause) {
        self.0.could_not_run(cause);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use maglev_core::config::ProbeKind;

    use super::*;

    fn probe(stats: &ProbeStats, backend: &str, code: Code, millis: u64) {
        stats.record(&ProbeRecord {
            backend,
            address: [127, 0, 0, 1].into(),
            kind: ProbeKind::Http,
            code,
            duration: Duration::from_millis(millis),
        });
    }

    #[test]
    fn probes_are_counted_by_code_and_bucketed_by_duration() {
        let stats = ProbeStats::default();
        probe(&stats, "a", Code::L7Ok, 1);
        probe(&stats, "a", Code::L7Ok, 3);
        probe(&stats, "a", Code::L7Sts, 10_000);
        let mut out = String::new();
        stats.encode(&mut out, Format::OpenMetrics, Families::All);
        let has = |line: &str| out.lines().any(|l| l == line);
        assert!(
            has(r#"maglev_probe_total{backend="a",type="http",result="pass",code="L7OK"} 2"#),
            "{out}"
        );
        assert!(has(
            r#"maglev_probe_total{backend="a",type="http",result="fail",code="L7STS"} 1"#
        ));
        // 1 ms falls in le=0.001 (bounds are inclusive), 3 ms in le=0.004.
        let bucket = |le: &str, n: u64| {
            format!(
                r#"maglev_probe_duration_seconds_bucket{{backend="a",type="http",le="{le}"}} {n}"#
            )
        };
        assert!(has(&bucket("0.0005", 0)));
        assert!(has(&bucket("0.001", 1)));
        assert!(has(&bucket("0.002", 1)));
        assert!(has(&bucket("0.004", 2)));
        assert!(has(&bucket("4.096", 2)));
        assert!(has(&bucket("+Inf", 3)));
        assert!(has(
            r#"maglev_probe_duration_seconds_sum{backend="a",type="http"} 10.004"#
        ));
        assert!(has(
            r#"maglev_probe_duration_seconds_count{backend="a",type="http"} 3"#
        ));
    }

    #[test]
    fn probes_that_could_not_run_are_counted_by_reason_from_zero() {
        let stats = ProbeStats::default();
        probe(&stats, "a", Code::SockErr, 0);
        stats.could_not_run(LocalCause::FdLimit);
        stats.could_not_run(LocalCause::FdLimit);
        let mut out = String::new();
        stats.encode(&mut out, Format::OpenMetrics, Families::All);
        let has = |line: &str| out.lines().any(|l| l == line);
        assert!(
            has(r#"maglev_probe_errors_total{reason="fd_limit"} 2"#),
            "{out}"
        );
        assert!(has(r#"maglev_probe_errors_total{reason="netns"} 0"#));
        assert!(has(
            r#"maglev_probe_total{backend="a",type="http",result="error",code="SOCKERR"} 1"#
        ));
    }

    #[test]
    fn bucket_labels_are_the_bounds() {
        for (nanos, label) in BUCKETS_NANOS.iter().zip(BUCKET_LABELS) {
            assert_eq!(format!(r#"le="{}""#, *nanos as f64 / 1e9), label);
        }
        assert_eq!(BUCKET_LABELS.last(), Some(&r#"le="+Inf""#));
    }
}
