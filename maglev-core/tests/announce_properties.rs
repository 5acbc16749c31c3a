//! Properties of the announce policy ([`maglev_core::announce::decide`]).
//!
//! Two kinds of test: one decision over arbitrary inputs, and random runs
//! of a model daemon that feeds `decide` what changes (frontends serving or
//! not, released by warm-up, VPP holding, lacking or unreachable, the
//! drain, time passing, restarts), carries each decision out (`announced`
//! and `last_change` follow it) and looks again at `next_look`. The
//! properties are those of issue 26:
//!
//! - (a) a prefix none of whose released frontends serves is never
//!   announced (it may only stay announced while warm-up holds it);
//! - (b) no prefix changes more often than `min_interval` unless the
//!   change is a withdraw (every withdraw protects traffic);
//! - (c) a restart (fresh process, same inputs, the table as it was)
//!   changes nothing before warm-up releases a frontend, except what (d)
//!   and (e) demand;
//! - (d) drain wins over everything;
//! - (e) VPP unreachable or lacking the VIP for `vpp_grace` or longer
//!   always withdraws, and before that a prefix is only withdrawn when
//!   nothing serves it;
//! - (f) `next_look`, when given, is in the future, nothing changes before
//!   it without an input changing, and looking then makes progress.

use std::time::Duration;

use maglev_core::announce::{
    Decision, FrontendInput, Policy, PrefixInputs, Reason, VppView, decide,
};
use proptest::prelude::*;

/// Instants as durations since an origin.
type T = Duration;

/// Times are multiples of a quarter second, so that waits land on the ends
/// of intervals and grace periods as often as between them.
fn quarters(n: u64) -> T {
    Duration::from_millis(250 * n)
}

fn policy() -> impl Strategy<Value = Policy> {
    // `vpp-grace` is at least a quarter second (the config refuses zero).
    (0..48u64, 1..32u64).prop_map(|(m, g)| Policy {
        min_interval: quarters(m),
        vpp_grace: quarters(g),
    })
}

/// What VPP holds, without its instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vpp {
    Holds,
    Lacks,
    Unreachable,
}

fn vpp() -> impl Strategy<Value = Vpp> {
    prop_oneof![
        3 => Just(Vpp::Holds),
        1 => Just(Vpp::Lacks),
        1 => Just(Vpp::Unreachable),
    ]
}

fn frontend() -> impl Strategy<Value = FrontendInput> {
    (any::<bool>(), any::<bool>())
        .prop_map(|(serving, released)| FrontendInput { serving, released })
}

/// Arbitrary inputs at an arbitrary `now` (every instant in them at or
/// before `now`).
fn inputs() -> impl Strategy<Value = (PrefixInputs<T>, T)> {
    (
        proptest::collection::vec(frontend(), 0..4),
        vpp(),
        0..80u64,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0..80u64),
        40..120u64,
    )
        .prop_map(
            |(frontends, vpp, since, drained, warmup_done, announced, last, now)| {
                let now = quarters(now);
                let since = quarters(since).min(now);
                let vpp = match vpp {
                    Vpp::Holds => VppView::Holds,
                    Vpp::Lacks => VppView::Lacks { since },
                    Vpp::Unreachable => VppView::Unreachable { since },
                };
                let inputs = PrefixInputs {
                    frontends,
                    vpp,
                    drained,
                    warmup_done,
                    announced,
                    last_change: last.map(|l| quarters(l).min(now)),
                };
                (inputs, now)
            },
        )
}

fn released_serves(i: &PrefixInputs<T>) -> bool {
    i.frontends.iter().any(|f| f.released && f.serving)
}

fn any_waiting(i: &PrefixInputs<T>) -> bool {
    i.frontends.iter().any(|f| !f.released)
}

/// Whether VPP has been away or lacking the VIP for the grace period.
fn vpp_past_grace(p: &Policy, i: &PrefixInputs<T>, now: T) -> bool {
    match i.vpp {
        VppView::Holds => false,
        VppView::Lacks { since } | VppView::Unreachable { since } => now >= since + p.vpp_grace,
    }
}

/// The properties of one decision, whatever the inputs.
fn check_decision(
    p: &Policy,
    i: &PrefixInputs<T>,
    now: T,
    d: &Decision<T>,
) -> Result<(), TestCaseError> {
    // (d) Drain wins, at once and for good.
    if i.drained {
        prop_assert_eq!(
            (d.announce, d.reason, d.next_look),
            (false, Reason::Drained, None)
        );
    }
    // (a) Never announce what no released frontend serves; an announced
    // prefix may stay so only while warm-up holds it.
    if d.announce {
        let held = i.announced && (any_waiting(i) || (i.frontends.is_empty() && !i.warmup_done));
        prop_assert!(released_serves(i) || held, "announced without a server");
    }
    // A new announce needs a server, VPP holding the VIP, and the minimum
    // interval since the last change (b).
    if d.announce && !i.announced {
        prop_assert!(released_serves(i) && i.vpp == VppView::Holds);
        prop_assert_eq!(d.reason, Reason::Serving);
        if let Some(last) = i.last_change {
            prop_assert!(
                now >= last + p.min_interval,
                "announced within the interval"
            );
        }
    }
    // (e) VPP away past its grace always withdraws a claimed prefix ...
    if !i.frontends.is_empty() && vpp_past_grace(p, i, now) {
        prop_assert!(!d.announce);
        if !i.drained {
            prop_assert!(matches!(
                d.reason,
                Reason::VppUnreachable | Reason::VppLacksVip
            ));
        }
    }
    // ... and nothing withdraws a prefix for a reason that says nothing
    // about it: every withdraw has one of these causes.
    if i.announced && !d.announce {
        prop_assert!(
            i.drained
                || (i.frontends.is_empty() && i.warmup_done)
                || vpp_past_grace(p, i, now)
                || !released_serves(i),
            "withdrawn for no reason: {:?}",
            d
        );
    }
    // (f) The next look is in the future.
    if let Some(at) = d.next_look {
        prop_assert!(at > now, "next look {:?} not after {:?}", at, now);
    }
    Ok(())
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// A frontend starts or stops serving.
    Serving { frontend: usize, serving: bool },
    /// Warm-up releases a frontend.
    Release { frontend: usize },
    /// Warm-up's watchdog releases everything.
    Watchdog,
    /// VPP's view of the prefix changes.
    Vpp(Vpp),
    /// An operator drains or undrains the node.
    Drain(bool),
    /// Time passes (the daemon looks at every `next_look` on the way).
    Wait(u64),
    /// The daemon looks again at its `next_look`, if it has one.
    Look,
    /// maglevd restarts: same inputs, a fresh process, the table as it was.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, proptest::bool::weighted(0.6))
            .prop_map(|(frontend, serving)| Step::Serving { frontend, serving }),
        2 => (0..3usize).prop_map(|frontend| Step::Release { frontend }),
        1 => Just(Step::Watchdog),
        2 => vpp().prop_map(Step::Vpp),
        1 => proptest::bool::weighted(0.3).prop_map(Step::Drain),
        4 => (0..60u64).prop_map(Step::Wait),
        2 => Just(Step::Look),
        1 => Just(Step::Restart),
    ]
}

/// A model daemon deciding one prefix.
#[derive(Debug)]
struct Run {
    policy: Policy,
    now: T,
    frontends: Vec<FrontendInput>,
    vpp: VppView<T>,
    drained: bool,
    warmup_done: bool,
    announced: bool,
    last_change: Option<T>,
    /// The decision in force (after carrying out the last one).
    decision: Decision<T>,
    /// The changes this process made: when, and to what.
    changes: Vec<(T, bool)>,
    /// Whether warm-up has released a frontend since the start.
    released_since_start: bool,
}

impl Run {
    fn inputs(&self) -> PrefixInputs<T> {
        PrefixInputs {
            frontends: self.frontends.clone(),
            vpp: self.vpp,
            drained: self.drained,
            warmup_done: self.warmup_done,
            announced: self.announced,
            last_change: self.last_change,
        }
    }

    /// A fresh process finding the table as `announced` says, with
    /// frontends whose state is `serving`.
    fn start(
        policy: Policy,
        serving: &[bool],
        vpp: Vpp,
        drained: bool,
        announced: bool,
    ) -> Result<Run, TestCaseError> {
        let mut run = Run {
            policy,
            now: Duration::ZERO,
            frontends: serving
                .iter()
                .map(|&serving| FrontendInput {
                    serving,
                    released: false,
                })
                .collect(),
            vpp: VppView::Holds,
            drained,
            warmup_done: false,
            announced,
            last_change: None,
            decision: Decision {
                announce: announced,
                reason: Reason::WarmingUp,
                next_look: None,
            },
            changes: Vec::new(),
            released_since_start: false,
        };
        run.set_vpp(vpp);
        run.look()?;
        Ok(run)
    }

    fn set_vpp(&mut self, vpp: Vpp) {
        let since = match self.vpp {
            VppView::Holds => self.now,
            VppView::Lacks { since } | VppView::Unreachable { since } => since,
        };
        self.vpp = match (vpp, self.vpp) {
            (Vpp::Holds, _) => VppView::Holds,
            // Still lacking: since the first time it was seen lacking.
            (Vpp::Lacks, VppView::Lacks { .. }) => VppView::Lacks { since },
            (Vpp::Lacks, _) => VppView::Lacks { since: self.now },
            // Still away: since the connection was lost.
            (Vpp::Unreachable, VppView::Unreachable { .. }) => VppView::Unreachable { since },
            (Vpp::Unreachable, _) => VppView::Unreachable { since: self.now },
        };
    }

    /// The daemon decides at `now` and carries the decision out, checking
    /// every property on the way.
    fn look(&mut self) -> Result<(), TestCaseError> {
        let inputs = self.inputs();
        let d = decide(&self.policy, &inputs, self.now);
        check_decision(&self.policy, &inputs, self.now, &d)?;
        if d.changes(self.announced) {
            // (c) Before warm-up releases anything, only drain and VPP past
            // its grace change the table.
            if !self.released_since_start {
                prop_assert!(
                    matches!(
                        d.reason,
                        Reason::Drained | Reason::VppUnreachable | Reason::VppLacksVip
                    ),
                    "a change before warm-up released anything: {:?}",
                    d
                );
            }
            // (b) An announce comes at least the minimum interval after
            // this process's last change.
            if d.announce
                && let Some(&(at, _)) = self.changes.last()
            {
                prop_assert!(
                    self.now >= at + self.policy.min_interval,
                    "announced at {:?}, last change at {:?}",
                    self.now,
                    at
                );
            }
            self.announced = d.announce;
            self.last_change = Some(self.now);
            self.changes.push((self.now, d.announce));
        }
        // Carried out, the decision is stable: looking again at once
        // changes nothing.
        let again = decide(&self.policy, &self.inputs(), self.now);
        prop_assert!(!again.changes(self.announced), "{:?} after {:?}", again, d);
        check_decision(&self.policy, &self.inputs(), self.now, &again)?;
        // (f) Looking at the next look makes progress.
        if let Some(at) = again.next_look {
            let then = decide(&self.policy, &self.inputs(), at);
            prop_assert_ne!(
                (then.announce, then.reason),
                (again.announce, again.reason),
                "no progress at the next look"
            );
        }
        self.decision = again;
        self.check_state()
    }

    /// What holds of the table between steps, the decisions carried out.
    fn check_state(&self) -> Result<(), TestCaseError> {
        // (d)
        if self.drained {
            prop_assert!(!self.announced, "announced while drained");
        }
        // (e) Since the daemon looks at every next look, it is never late.
        if vpp_past_grace(&self.policy, &self.inputs(), self.now) {
            prop_assert!(!self.announced, "announced with VPP away past its grace");
        }
        // (a) Once warm-up holds nothing back, announced means served.
        if self.announced && self.frontends.iter().all(|f| f.released) {
            prop_assert!(
                self.frontends.iter().any(|f| f.serving),
                "announced with no server"
            );
        }
        Ok(())
    }

    /// Time passes by `by`; the daemon looks at each next look on the way.
    fn wait(&mut self, by: T) -> Result<(), TestCaseError> {
        let target = self.now + by;
        // (f) The table changes at no time before the next look without an
        // input changing: just before it (or at the target) the decision
        // holds. (Its reason may: a prefix withdrawn because nothing serves
        // is later withdrawn because VPP lacks it too.)
        let quiet_until = match self.decision.next_look {
            Some(at) => (at - Duration::from_nanos(1)).min(target),
            None => target,
        };
        if quiet_until > self.now {
            let d = decide(&self.policy, &self.inputs(), quiet_until);
            prop_assert_eq!(
                d.announce,
                self.decision.announce,
                "changed at {:?} before the next look {:?}: {:?}",
                quiet_until,
                self.decision.next_look,
                d
            );
        }
        for _ in 0..10 {
            match self.decision.next_look {
                Some(at) if at <= target => {
                    self.now = at;
                    self.look()?;
                }
                _ => break,
            }
        }
        prop_assert!(
            self.decision.next_look.is_none_or(|at| at > target),
            "next looks do not end"
        );
        self.now = target;
        self.look()
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let n = self.frontends.len();
        match *step {
            Step::Serving { frontend, serving } => self.frontends[frontend % n].serving = serving,
            Step::Release { frontend } => {
                self.frontends[frontend % n].released = true;
                self.released_since_start = true;
                self.warmup_done = self.frontends.iter().all(|f| f.released);
            }
            Step::Watchdog => {
                for f in &mut self.frontends {
                    f.released = true;
                }
                self.released_since_start = true;
                self.warmup_done = true;
            }
            Step::Vpp(v) => self.set_vpp(v),
            Step::Drain(d) => self.drained = d,
            Step::Wait(q) => return self.wait(quarters(q)),
            Step::Look => match self.decision.next_look {
                Some(at) => self.now = at,
                None => return Ok(()),
            },
            Step::Restart => return self.restart(),
        }
        self.look()
    }

    /// A fresh process: same inputs, the table as it was, nothing released,
    /// no change remembered; VPP not yet reached if it was not holding.
    fn restart(&mut self) -> Result<(), TestCaseError> {
        let table = self.announced;
        for f in &mut self.frontends {
            f.released = false;
        }
        self.warmup_done = false;
        self.last_change = None;
        self.changes.clear();
        self.released_since_start = false;
        if self.vpp != VppView::Holds {
            self.vpp = VppView::Unreachable { since: self.now };
        }
        let d = decide(&self.policy, &self.inputs(), self.now);
        // (c) The restart itself changes nothing.
        prop_assert!(!d.changes(table), "a restart changed the table: {:?}", d);
        self.look()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a), (b), (d), (e), (f) for one decision over arbitrary inputs.
    #[test]
    fn every_decision_keeps_the_rules(p in policy(), (i, now) in inputs()) {
        let d = decide(&p, &i, now);
        check_decision(&p, &i, now, &d)?;
    }

    /// A route no frontend claims stays until warm-up is over, then goes;
    /// a drain takes it at once.
    #[test]
    fn an_unclaimed_route_goes_only_after_warm_up(p in policy(), (mut i, now) in inputs()) {
        i.frontends.clear();
        let d = decide(&p, &i, now);
        if i.drained {
            prop_assert_eq!((d.announce, d.reason), (false, Reason::Drained));
        } else if !i.warmup_done {
            prop_assert_eq!((d.announce, d.reason), (i.announced, Reason::WarmingUp));
        } else {
            prop_assert_eq!((d.announce, d.reason), (false, Reason::Unclaimed));
        }
    }

    /// Every property over random runs of a daemon carrying its decisions
    /// out, restarts included.
    #[test]
    fn runs_keep_the_rules(
        p in policy(),
        serving in proptest::collection::vec(any::<bool>(), 1..4),
        vpp in vpp(),
        drained in proptest::bool::weighted(0.2),
        announced in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let mut run = Run::start(p, &serving, vpp, drained, announced)?;
        for step in &steps {
            run.step(step)?;
        }
    }

    /// (c) A restart with the same inputs changes nothing until warm-up
    /// releases a frontend, however long that takes, while VPP holds the
    /// VIP and the node is not drained.
    #[test]
    fn a_restart_changes_nothing_before_warm_up(
        p in policy(),
        serving in proptest::collection::vec(any::<bool>(), 1..4),
        announced in any::<bool>(),
        flips in proptest::collection::vec((0..3usize, any::<bool>(), 0..400u64), 0..20),
    ) {
        let mut run = Run::start(p, &serving, Vpp::Holds, false, announced)?;
        for (frontend, serving, wait) in flips {
            run.step(&Step::Serving { frontend, serving })?;
            run.step(&Step::Wait(wait))?;
            prop_assert_eq!(run.announced, announced);
            prop_assert!(run.changes.is_empty());
        }
    }
}
