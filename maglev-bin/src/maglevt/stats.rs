//! What maglevt keeps of each VIP's probes: lifetime counts, a rolling
//! window of latencies (hdrhistogram, one per second), a sparkline of the
//! latest probes, the tally of who answered, and the anomalies.
//!
//! Pure: time comes in as the run's elapsed [`Duration`], so the window,
//! "recent" and spikes are tested without a clock. Bounded: the window is
//! [`WINDOW_SLOTS`] histograms, the sparkline [`SPARK_LEN`] samples, the
//! tally [`MAX_TALLY`] values (then `(other)`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::probe::{Outcome, Status};

/// The rolling window's length, in one-second slots.
pub const WINDOW_SLOTS: usize = 10;

/// An answer this recent makes its tally entry bright.
pub const RECENT: Duration = Duration::from_secs(5);

/// Latest probes kept for the sparkline.
pub const SPARK_LEN: usize = 512;

/// Distinct header values tallied per VIP; more count as [`OTHER`].
pub const MAX_TALLY: usize = 32;

/// The tally entry of values beyond [`MAX_TALLY`].
pub const OTHER: &str = "(other)";

/// The tally entry of answers without the header.
pub const NO_HEADER: &str = "(none)";

/// A spike: a success this many times slower than the window's median...
pub const SPIKE_FACTOR: u64 = 4;

/// ...and at least this much slower, in microseconds (loopback medians are
/// tens of microseconds: no spike for scheduler noise).
pub const SPIKE_MIN_EXTRA_US: u64 = 10_000;

/// Successes the window needs before spikes are judged.
pub const SPIKE_MIN_SAMPLES: u64 = 20;

/// The largest latency recorded, in microseconds (a minute: probes time out
/// long before).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Which kind of anomaly, in the error panel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// No answer within the timeout.
    Timeout,
    /// An HTTP answer outside 200–399.
    HttpErr,
    /// The connect, TLS or HTTP failed.
    NetErr,
    /// A success, but much slower than the window's median.
    Spike,
}

impl AnomalyKind {
    /// Every kind, in order.
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::Timeout,
        AnomalyKind::HttpErr,
        AnomalyKind::NetErr,
        AnomalyKind::Spike,
    ];

    /// `timeout`, `http-err`, `net-err` or `spike`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Timeout => "timeout",
            AnomalyKind::HttpErr => "http-err",
            AnomalyKind::NetErr => "net-err",
            AnomalyKind::Spike => "spike",
        }
    }
}

/// One anomaly of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Its kind.
    pub kind: AnomalyKind,
    /// What happened, for people.
    pub detail: String,
}

/// Counts by anomaly kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AnomalyCounts {
    /// Timeouts.
    pub timeout: u64,
    /// HTTP errors.
    pub http_err: u64,
    /// Network errors.
    pub net_err: u64,
    /// Spikes.
    pub spike: u64,
}

impl AnomalyCounts {
    /// Counts one of `kind`.
    pub fn add(&mut self, kind: AnomalyKind) {
        *self.get_mut(kind) += 1;
    }

    /// The count of `kind`.
    pub fn get(&self, kind: AnomalyKind) -> u64 {
        match kind {
            AnomalyKind::Timeout => self.timeout,
            AnomalyKind::HttpErr => self.http_err,
            AnomalyKind::NetErr => self.net_err,
            AnomalyKind::Spike => self.spike,
        }
    }

    fn get_mut(&mut self, kind: AnomalyKind) -> &mut u64 {
        match kind {
            AnomalyKind::Timeout => &mut self.timeout,
            AnomalyKind::HttpErr => &mut self.http_err,
            AnomalyKind::NetErr => &mut self.net_err,
            AnomalyKind::Spike => &mut self.spike,
        }
    }
}

/// One second of the window.
#[derive(Debug, Clone)]
struct Slot {
    second: u64,
    ok: u64,
    fail: u64,
    latency_us: Histogram<u32>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            second: u64::MAX,
            ok: 0,
            fail: 0,
            latency_us: histogram(),
        }
    }
}

fn histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("static histogram bounds are valid")
}

/// A sparkline sample: a success's latency, or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// A success, in microseconds.
    Ok(u64),
    /// A failure.
    Fail,
}

#[derive(Debug, Clone, Copy)]
struct TallyCount {
    count: u64,
    last: Duration,
}

/// Everything kept of one VIP.
#[derive(Debug, Clone)]
pub struct VipStats {
    n: u64,
    ok: u64,
    anomalies: AnomalyCounts,
    last: Option<String>,
    slots: Vec<Slot>,
    spark: VecDeque<Sample>,
    tally: BTreeMap<String, TallyCount>,
}

impl Default for VipStats {
    fn default() -> Self {
        VipStats::new()
    }
}

impl VipStats {
    /// Nothing seen yet.
    pub fn new() -> VipStats {
        VipStats {
            n: 0,
            ok: 0,
            anomalies: AnomalyCounts::default(),
            last: None,
            slots: (0..WINDOW_SLOTS).map(|_| Slot::new()).collect(),
            spark: VecDeque::with_capacity(SPARK_LEN),
            tally: BTreeMap::new(),
        }
    }

    /// Records a probe that ended at `now` (the run's elapsed time); the
    /// anomaly it was, if any.
    pub fn record(&mut self, now: Duration, outcome: &Outcome) -> Option<Anomaly> {
        self.n += 1;
        let us = (outcome.latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let ok = outcome.status.is_ok();
        // Judged against the window before this probe joins it.
        let spike = ok.then(|| self.spike(now, us)).flatten();
        if ok {
            self.ok += 1;
        }
        let slot = self.slot(now);
        if ok {
            slot.ok += 1;
            let _ = slot.latency_us.record(us);
        } else {
            slot.fail += 1;
        }
        if self.spark.len() == SPARK_LEN {
            self.spark.pop_front();
        }
        self.spark
            .push_back(if ok { Sample::Ok(us) } else { Sample::Fail });
        self.last = Some(outcome.status.short());
        if let Some(header) = &outcome.header {
            self.count_answer(now, header);
        }
        let anomaly = match &outcome.status {
            Status::Connected => spike,
            Status::Http(_) if ok => spike,
            Status::Http(code) => Some(Anomaly {
                kind: AnomalyKind::HttpErr,
                detail: match outcome.header.as_deref() {
                    Some(from) if from != NO_HEADER => format!("HTTP status {code} from {from}"),
                    _ => format!("HTTP status {code}"),
                },
            }),
            Status::Timeout => Some(Anomaly {
                kind: AnomalyKind::Timeout,
                detail: format!("no answer in {}", ms(outcome.latency)),
            }),
            Status::NetErr(detail) => Some(Anomaly {
                kind: AnomalyKind::NetErr,
                detail: detail.clone(),
            }),
        };
        if let Some(a) = &anomaly {
            self.anomalies.add(a.kind);
        }
        anomaly
    }

    /// A spike's anomaly if `us` is one against the window at `now`.
    fn spike(&self, now: Duration, us: u64) -> Option<Anomaly> {
        let window = self.merged(now);
        if window.len() < SPIKE_MIN_SAMPLES {
            return None;
        }
        let median = window.value_at_quantile(0.5);
        (us > median.saturating_mul(SPIKE_FACTOR) && us > median + SPIKE_MIN_EXTRA_US).then(|| {
            Anomaly {
                kind: AnomalyKind::Spike,
                detail: format!(
                    "{} against a median of {}",
                    ms(Duration::from_micros(us)),
                    ms(Duration::from_micros(median))
                ),
            }
        })
    }

    fn count_answer(&mut self, now: Duration, key: &str) {
        let key = if self.tally.contains_key(key) || self.tally.len() < MAX_TALLY {
            key
        } else {
            OTHER
        };
        let entry = self.tally.entry(key.to_owned()).or_insert(TallyCount {
            count: 0,
            last: now,
        });
        entry.count += 1;
        entry.last = now;
    }

    /// The slot of `now`'s second, emptied if it held an older second.
    fn slot(&mut self, now: Duration) -> &mut Slot {
        let second = now.as_secs();
        let slot = &mut self.slots[(second % WINDOW_SLOTS as u64) as usize];
        if slot.second != second {
            slot.second = second;
            slot.ok = 0;
            slot.fail = 0;
            slot.latency_us.reset();
        }
        slot
    }

    /// The slots within the window at `now`.
    fn live(&self, now: Duration) -> impl Iterator<Item = &Slot> {
        let second = now.as_secs();
        self.slots
            .iter()
            .filter(move |s| s.second <= second && second - s.second < WINDOW_SLOTS as u64)
    }

    fn merged(&self, now: Duration) -> Histogram<u32> {
        let mut h = histogram();
        for s in self.live(now) {
            let _ = h.add(&s.latency_us);
        }
        h
    }

    /// The summary at `now`.
    pub fn summary(&self, now: Duration) -> StatsSummary {
        let (ok, fail) = self
            .live(now)
            .fold((0, 0), |(o, f), s| (o + s.ok, f + s.fail));
        let h = self.merged(now);
        let q = |q: f64| (!h.is_empty()).then(|| us_to_ms(h.value_at_quantile(q)));
        StatsSummary {
            n: self.n,
            ok: self.ok,
            fail: self.n - self.ok,
            anomalies: self.anomalies,
            last: self.last.clone(),
            window: Window {
                seconds: WINDOW_SLOTS as u64,
                n: ok + fail,
                ok_pct: (ok + fail > 0).then(|| 100.0 * ok as f64 / (ok + fail) as f64),
                p50_ms: q(0.5),
                p95_ms: q(0.95),
                p99_ms: q(0.99),
                max_ms: (!h.is_empty()).then(|| us_to_ms(h.max())),
            },
            tally: self
                .tally
                .iter()
                .map(|(value, t)| Tally {
                    value: value.clone(),
                    count: t.count,
                    recent: now.saturating_sub(t.last) < RECENT,
                })
                .collect(),
            spark: self.spark.iter().copied().collect(),
        }
    }
}

/// A VIP's numbers at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSummary {
    /// Probes completed.
    pub n: u64,
    /// Of which succeeded.
    pub ok: u64,
    /// Of which failed.
    pub fail: u64,
    /// Anomalies by kind, lifetime.
    pub anomalies: AnomalyCounts,
    /// The latest probe's status (`200`, `open`, `timeout`, `refused`...).
    pub last: Option<String>,
    /// The rolling window.
    pub window: Window,
    /// Who answered, by header value.
    pub tally: Vec<Tally>,
    /// The latest probes, oldest first.
    #[serde(skip)]
    pub spark: Vec<Sample>,
}

/// The rolling window's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Its length.
    pub seconds: u64,
    /// Probes completed in it.
    pub n: u64,
    /// The share that succeeded, in percent; `None` when empty.
    pub ok_pct: Option<f64>,
    /// Latency of successes, median, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
}

/// One header value's answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// The header's value ([`NO_HEADER`], [`OTHER`]).
    pub value: String,
    /// Answers, lifetime.
    pub count: u64,
    /// Whether it answered within [`RECENT`].
    pub recent: bool,
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A duration as `1.234 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_from(header: &str, us: u64) -> Outcome {
        Outcome {
            latency: Duration::from_micros(us),
            status: Status::Http(200),
            header: Some(header.to_owned()),
        }
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn percentiles_cover_the_last_ten_seconds_only() {
        let mut s = VipStats::new();
        for i in 0..100 {
            s.record(at(i * 10), &ok_from("a", 50_000));
        }
        for i in 0..100 {
            s.record(at(20_000 + i * 10), &ok_from("a", 1_000));
        }
        let sum = s.summary(at(21_000));
        assert_eq!(sum.n, 200);
        assert_eq!(sum.window.n, 100);
        let p99 = sum.window.p99_ms.unwrap();
        assert!((0.99..=1.01).contains(&p99), "{p99}");
        assert_eq!(sum.window.ok_pct, Some(100.0));
        // Later still, the window is empty.
        let sum = s.summary(at(40_000));
        assert_eq!(sum.window.n, 0);
        assert_eq!(sum.window.p50_ms, None);
        assert_eq!(sum.window.ok_pct, None);
    }

    #[test]
    fn failures_count_by_kind_and_lower_the_ok_share() {
        let mut s = VipStats::new();
        s.record(at(0), &ok_from("a", 100));
        let a = s.record(
            at(1),
            &Outcome {
                latency: at(1000),
                status: Status::Timeout,
                header: None,
            },
        );
        assert_eq!(a.unwrap().kind, AnomalyKind::Timeout);
        let a = s.record(
            at(2),
            &Outcome {
                latency: at(1),
                status: Status::Http(503),
                header: Some("b".into()),
            },
        );
        assert_eq!(a.unwrap().kind, AnomalyKind::HttpErr);
        let a = s.record(
            at(3),
            &Outcome {
                latency: at(1),
                status: Status::NetErr("connect: Connection refused".into()),
                header: None,
            },
        );
        assert_eq!(a.unwrap().kind, AnomalyKind::NetErr);
        let sum = s.summary(at(4));
        assert_eq!((sum.n, sum.ok, sum.fail), (4, 1, 3));
        assert_eq!(sum.window.ok_pct, Some(25.0));
        assert_eq!(sum.last.as_deref(), Some("refused"));
        let counts = sum.anomalies;
        assert_eq!(
            (
                counts.timeout,
                counts.http_err,
                counts.net_err,
                counts.spike
            ),
            (1, 1, 1, 0)
        );
        // The 503 still says who answered.
        let tally: Vec<(&str, u64)> = sum
            .tally
            .iter()
            .map(|t| (t.value.as_str(), t.count))
            .collect();
        assert_eq!(tally, vec![("a", 1), ("b", 1)]);
    }

    #[test]
    fn a_slow_success_against_a_fast_window_is_a_spike() {
        let mut s = VipStats::new();
        for i in 0..SPIKE_MIN_SAMPLES {
            assert_eq!(s.record(at(i), &ok_from("a", 300)), None);
        }
        let a = s.record(at(100), &ok_from("a", 5_000));
        assert_eq!(a, None, "slower, but not by the minimum");
        let a = s.record(at(101), &ok_from("a", 50_000)).unwrap();
        assert_eq!(a.kind, AnomalyKind::Spike);
        assert!(a.detail.contains("50.000 ms"), "{}", a.detail);
        assert_eq!(s.summary(at(102)).anomalies.spike, 1);
    }

    #[test]
    fn the_tally_dims_drained_values_and_stays_bounded() {
        let mut s = VipStats::new();
        s.record(at(0), &ok_from("web1", 100));
        s.record(at(4_000), &ok_from("web3", 100));
        let sum = s.summary(at(6_000));
        let recent: Vec<(&str, bool)> = sum
            .tally
            .iter()
            .map(|t| (t.value.as_str(), t.recent))
            .collect();
        assert_eq!(recent, vec![("web1", false), ("web3", true)]);
        for i in 0..(MAX_TALLY as u64 + 10) {
            s.record(at(7_000 + i), &ok_from(&format!("v{i}"), 100));
        }
        let sum = s.summary(at(8_000));
        assert_eq!(sum.tally.len(), MAX_TALLY + 1);
        let other = sum.tally.iter().find(|t| t.value == OTHER).unwrap();
        assert_eq!(other.count, 12);
        let answers: u64 = sum.tally.iter().map(|t| t.count).sum();
        assert_eq!(answers, sum.n);
    }

    #[test]
    fn the_sparkline_keeps_the_latest_probes() {
        let mut s = VipStats::new();
        for i in 0..(SPARK_LEN as u64 + 5) {
            s.record(at(i), &ok_from("a", i + 1));
        }
        let spark = s.summary(at(10)).spark;
        assert_eq!(spark.len(), SPARK_LEN);
        assert_eq!(spark[0], Sample::Ok(6));
    }
}
