//! Properties of the reconciler's schedule: a drain is never delayed by a
//! retry's backoff (neither when marked nor when VPP refused it), and one
//! batch runs at a time.

use std::collections::BTreeSet;
use std::time::Duration;

use maglev_core::schedule::{RETRY_MAX, RETRY_MIN, Schedule};
use proptest::prelude::*;

const ALL: [&str; 3] = ["a", "b", "c"];

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// A change to a frontend; `drain` says whether it lowers a weight.
    Mark { frontend: usize, drain: bool },
    /// The periodic full sync.
    MarkAll,
    /// Time passes.
    Wait(u64),
    /// The reconciler takes the next batch and VPP answers: `refuse` lists
    /// the frontends whose ops it refuses; `unreachable` fails it all.
    Run {
        refuse: [bool; 3],
        unreachable: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, any::<bool>()).prop_map(|(frontend, drain)| Step::Mark { frontend, drain }),
        Just(Step::MarkAll),
        (0..40u64).prop_map(Step::Wait),
        (any::<[bool; 3]>(), proptest::bool::weighted(0.2)).prop_map(|(refuse, unreachable)| {
            Step::Run {
                refuse,
                unreachable,
            }
        }),
    ]
}

proptest! {
    /// Whatever failed before, a drain marked while no batch is in flight
    /// is in the very next batch (with everything a full sync covers).
    #[test]
    fn a_drain_is_in_the_next_batch(steps in proptest::collection::vec(step(), 1..60)) {
        let mut q = Schedule::<Duration>::new();
        let mut now = Duration::ZERO;
        // Frontends whose latest mark is a drain not yet synced.
        let mut drains: BTreeSet<&str> = BTreeSet::new();
        for step in steps {
            match step {
                Step::Mark { frontend, drain } => {
                    let f = ALL[frontend];
                    q.mark(f);
                    if drain {
                        drains.insert(f);
                    } else {
                        drains.remove(f);
                    }
                }
                Step::MarkAll => q.mark_all(ALL),
                Step::Wait(s) => now += Duration::from_secs(s),
                Step::Run { refuse, unreachable } => {
                    let batch = q.next(now, true, ALL, |_| true, |f| drains.contains(f));
                    for f in &drains {
                        let batch = batch.as_ref();
                        prop_assert!(
                            batch.is_some_and(|b| b.frontends.contains(*f)),
                            "drain of {f} not in {batch:?}"
                        );
                    }
                    let Some(batch) = batch else { continue };
                    prop_assert!(q.next(now, true, ALL, |_| true, |_| true).is_none());
                    let batch_drains: BTreeSet<String> =
                        drains.iter().map(|f| f.to_string()).collect();
                    drains.clear();
                    let failed: BTreeSet<String> = ALL
                        .iter()
                        .zip(refuse)
                        .filter(|(_, r)| *r)
                        .map(|(f, _)| f.to_string())
                        .collect();
                    let drained: BTreeSet<String> =
                        failed.intersection(&batch_drains).cloned().collect();
                    q.finished(&batch, &failed, &drained, unreachable, now);
                    for f in ALL {
                        if let Some(at) = q.retry_at(f) {
                            prop_assert!(at <= now + RETRY_MAX);
                        }
                    }
                    if !unreachable {
                        // A refused drain is retried within a second.
                        for f in &drained {
                            prop_assert_eq!(q.retry_at(f), Some(now + RETRY_MIN));
                        }
                    }
                }
            }
        }
    }
}
