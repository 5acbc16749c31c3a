//! What a soak run found: counts by kind, convergence times, resource
//! samples, violations with the events before each, and the one summary
//! line.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;

/// How many recent events a violation carries.
const JOURNAL: usize = 40;

/// The recent events of a run, newest last.
#[derive(Debug, Default)]
pub struct Journal {
    lines: VecDeque<String>,
}

impl Journal {
    /// Records one event at `at` (seconds into the run).
    pub fn push(&mut self, at: Duration, what: impl std::fmt::Display) {
        if self.lines.len() == JOURNAL {
            self.lines.pop_front();
        }
        self.lines
            .push_back(format!("{:9.3} s  {what}", at.as_secs_f64()));
    }

    /// The recent events, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// One broken invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    /// When (seconds into the run).
    pub at: Duration,
    /// Which invariant (1 to 6, as in docs/reliability.md); 0 for
    /// anything else that must not happen (an invalid config accepted, a
    /// valid one refused, calls that never end).
    pub invariant: u8,
    /// What was wrong.
    pub what: String,
    /// The events before it.
    pub before: Vec<String>,
}

impl Violation {
    /// The one line that reports it: when, the seed, and what.
    pub fn line(&self, seed: u64) -> String {
        format!(
            "VIOLATION at {:.3} s (seed {seed}): {}",
            self.at.as_secs_f64(),
            self.what
        )
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Operator actions, by kind.
    pub actions: BTreeMap<&'static str, u64>,
    /// Operator actions the daemon refused (as it should, e.g. a weight of
    /// 101 or resuming a backend that is not paused).
    pub refused: u64,
    /// Daemon restarts, with and without a state file.
    pub restarts: (u64, u64),
    /// Backend transitions the daemon published.
    pub transitions: u64,
    /// Time from the end of a chaos window to VPP holding the desired
    /// state, in milliseconds.
    pub convergence: Histogram<u64>,
    /// Resident memory (KiB) after the first minute (or quarter of the
    /// run; at least what it was at the priming floods' peak) and at the
    /// end.
    pub rss: (u64, u64),
    /// The most tokio tasks alive on the daemon's runtimes, at the first
    /// sample after the baseline and over the run.
    pub tasks: (usize, usize),
    /// The most API registrations alive in the simulator at once.
    pub max_sessions: usize,
    /// Events read by the `WatchEvents` subscribers.
    pub watched: u64,
    /// Descriptor floods (the priming ones included): connections asked
    /// for (after the budget), opened, and failed (refused or not
    /// answered in time).
    pub floods: (u64, u64, u64),
    /// Reader storms (the priming one included): reads answered, reads
    /// failed, the slowest read.
    pub storms: (u64, u64, Duration),
    /// Transitions away from `up` that invariant 5 examined.
    pub left_up: u64,
    /// Events invariant 5's reader lost (it fell behind).
    pub lost_events: u64,
    /// Restarts (with the state file) and reloads after which operator
    /// intent was checked (invariant 6).
    pub intent_checks: u64,
    /// What went wrong.
    pub violations: Vec<Violation>,
}

impl Report {
    /// An empty report for `seed`.
    pub fn new(seed: u64) -> Report {
        Report {
            seed,
            elapsed: Duration::ZERO,
            faults: BTreeMap::new(),
            actions: BTreeMap::new(),
            refused: 0,
            restarts: (0, 0),
            transitions: 0,
            convergence: Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid bounds"),
            rss: (0, 0),
            tasks: (0, 0),
            max_sessions: 0,
            watched: 0,
            floods: (0, 0, 0),
            storms: (0, 0, Duration::ZERO),
            left_up: 0,
            lost_events: 0,
            intent_checks: 0,
            violations: Vec::new(),
        }
    }

    /// Faults injected in all.
    pub fn fault_count(&self) -> u64 {
        self.faults.values().sum()
    }

    /// The violations of one invariant (0: the others that are not
    /// numbered).
    pub fn violations_of(&self, invariant: u8) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(move |v| v.invariant == invariant)
    }

    fn quantile(&self, q: f64) -> String {
        if self.convergence.is_empty() {
            return "-".to_owned();
        }
        format!("{}ms", self.convergence.value_at_quantile(q))
    }

    /// The one summary line.
    pub fn summary(&self) -> String {
        format!(
            "soak: seed {}, {} s, {} faults, {} transitions, convergence {}/{}/{}, {} violations",
            self.seed,
            self.elapsed.as_secs(),
            self.fault_count(),
            self.transitions,
            self.quantile(0.5),
            self.quantile(0.99),
            if self.convergence.is_empty() {
                "-".to_owned()
            } else {
                format!("{}ms", self.convergence.max())
            },
            self.violations.len()
        )
    }

    /// The details: counts by kind, resources, and each violation with the
    /// events before it.
    pub fn details(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "faults by kind:");
        for (k, n) in &self.faults {
            let _ = writeln!(s, "  {k:20} {n}");
        }
        let _ = writeln!(s, "operator actions by kind ({} refused):", self.refused);
        for (k, n) in &self.actions {
            let _ = writeln!(s, "  {k:20} {n}");
        }
        let _ = writeln!(
            s,
            "daemon restarts: {} with a state file, {} without",
            self.restarts.0, self.restarts.1
        );
        let _ = writeln!(
            s,
            "convergence samples: {}; RSS {} KiB after warm-up, {} KiB at the end; \
             daemon tasks {} at baseline, {} at most; VPP sessions at most {}; events watched {}",
            self.convergence.len(),
            self.rss.0,
            self.rss.1,
            self.tasks.0,
            self.tasks.1,
            self.max_sessions,
            self.watched
        );
        let _ = writeln!(
            s,
            "descriptor floods: {} connections asked, {} opened, {} failed; reader storms: \
             {} reads answered, {} failed, slowest {} ms",
            self.floods.0,
            self.floods.1,
            self.floods.2,
            self.storms.0,
            self.storms.1,
            self.storms.2.as_millis()
        );
        let _ = writeln!(
            s,
            "transitions away from up examined: {} ({} events lost); intent checked after {} \
             restarts and reloads",
            self.left_up, self.lost_events, self.intent_checks
        );
        let mut by_invariant = BTreeMap::<u8, usize>::new();
        for v in &self.violations {
            *by_invariant.entry(v.invariant).or_default() += 1;
        }
        let _ = writeln!(
            s,
            "violations by invariant: {}",
            if by_invariant.is_empty() {
                "none".to_owned()
            } else {
                by_invariant
                    .iter()
                    .map(|(i, n)| {
                        if *i == 0 {
                            format!("other {n}")
                        } else {
                            format!("{i}: {n}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        for v in &self.violations {
            let _ = writeln!(s, "{}", v.line(self.seed));
            let _ = writeln!(s, "  last events before it:");
            for l in &v.before {
                let _ = writeln!(s, "    {l}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_has_every_figure() {
        let mut r = Report::new(42);
        r.elapsed = Duration::from_secs(60);
        r.faults.insert("vpp-restart", 2);
        r.faults.insert("backend-stall", 3);
        r.transitions = 17;
        for ms in [100, 200, 300] {
            r.convergence.record(ms).unwrap();
        }
        assert_eq!(
            r.summary(),
            "soak: seed 42, 60 s, 5 faults, 17 transitions, convergence 200ms/300ms/300ms, 0 violations"
        );
    }

    #[test]
    fn the_journal_keeps_the_last_events() {
        let mut j = Journal::default();
        for i in 0..100 {
            j.push(Duration::from_millis(i), i);
        }
        let lines = j.lines();
        assert_eq!(lines.len(), JOURNAL);
        assert!(lines[JOURNAL - 1].ends_with("99"));
    }
}
