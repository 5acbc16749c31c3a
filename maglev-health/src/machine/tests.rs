//! Table tests of every transition and refusal, and the rise/fall
//! properties.

use super::*;
use proptest::prelude::*;

use BackendState::{Disabled, Down, Paused, Removed, Unknown, Up};

fn now() -> Instant {
    Instant::now()
}

fn probed(rise: u32, fall: u32) -> Machine {
    Machine::new(Checking::Probed { rise, fall }, true, 5, now()).0
}

const PASS: Code = Code::L7Ok;
const FAIL: Code = Code::L7Sts;

/// Drives `m` with passes (`true`) and failures, returning the states
/// and counters after each result.
fn run(m: &mut Machine, results: &[bool]) -> Vec<(BackendState, u32)> {
    results
        .iter()
        .map(|&ok| {
            m.record(if ok { PASS } else { FAIL }, "", now());
            (m.state(), m.counter())
        })
        .collect()
}

/// A machine in `state` (reached through real transitions).
fn in_state(state: BackendState) -> Machine {
    let mut m = probed(2, 3);
    let t = now();
    match state {
        Unknown => {}
        Up => {
            m.record(PASS, "", t);
        }
        Down => {
            m.record(FAIL, "", t);
        }
        Paused => {
            m.pause(t).unwrap();
        }
        Disabled => {
            m.disable(t).unwrap();
        }
        Removed => {
            m.remove(t);
        }
    }
    assert_eq!(m.state(), state);
    m
}

#[test]
fn worked_example_of_the_spec() {
    // rise=2, fall=3, Max=4: unknown (1) → pass → 4 up; fail 3, 2, 0 down;
    // pass 1, pass → 4 up.
    let mut m = probed(2, 3);
    assert_eq!((m.state(), m.counter()), (Unknown, 1));
    let got = run(&mut m, &[true, false, false, false, true, true]);
    assert_eq!(
        got,
        [(Up, 4), (Up, 3), (Up, 2), (Down, 0), (Down, 1), (Up, 4)]
    );
}

#[test]
fn unknown_resolves_on_one_result() {
    for (rise, fall) in [(1, 1), (2, 3), (5, 1), (1, 5)] {
        let mut m = probed(rise, fall);
        let t = m.record(PASS, "ok", now()).unwrap();
        assert_eq!((t.from, t.to, t.code), (Unknown, Up, PASS));
        assert_eq!(m.counter(), rise + fall - 1);

        let mut m = probed(rise, fall);
        let t = m.record(Code::L4Con, "refused", now()).unwrap();
        assert_eq!(
            (t.from, t.to, t.code, t.detail.as_str()),
            (Unknown, Down, Code::L4Con, "refused")
        );
        assert_eq!(m.counter(), 0);
    }
}

#[test]
fn one_pass_restores_a_degraded_backend_and_one_failure_resets_a_rising_one() {
    let mut m = probed(3, 3);
    run(&mut m, &[true]); // up, 5
    assert_eq!(
        run(&mut m, &[false, false, true]),
        [(Up, 4), (Up, 3), (Up, 5)]
    );
    run(&mut m, &[false, false, false]);
    assert_eq!(m.state(), Down);
    assert_eq!(
        run(&mut m, &[true, true, false]),
        [(Down, 1), (Down, 2), (Down, 0)]
    );
    assert_eq!(
        run(&mut m, &[true, true, true]),
        [(Down, 1), (Down, 2), (Up, 5)]
    );
}

#[test]
fn a_restored_up_needs_fall_failures_like_a_running_one() {
    let checking = Checking::Probed { rise: 2, fall: 2 };
    let (mut m, t) = Machine::seeded(checking, Up, 5, now()).unwrap();
    assert_eq!((t.from, t.to, t.code), (Unknown, Up, Code::Restored));
    // As a backend that has been up a while: counter at rise + fall - 1.
    assert_eq!(m.counter(), 3);
    assert_eq!(m.counter(), in_state_with(2, 2, Up).counter());
    assert_eq!(run(&mut m, &[false]), [(Up, 2)], "one failure: still up");
    assert_eq!(run(&mut m, &[false]), [(Down, 0)], "the second: down");
    // A restored down needs rise passes.
    let (mut m, _) = Machine::seeded(checking, Down, 5, now()).unwrap();
    assert_eq!(run(&mut m, &[true, true]), [(Down, 1), (Up, 3)]);
    // fall 1: the first failure, as while running.
    let (mut m, _) = Machine::seeded(Checking::Probed { rise: 3, fall: 1 }, Up, 5, now()).unwrap();
    assert_eq!(run(&mut m, &[false]), [(Down, 0)]);
}

/// A machine with `rise`/`fall` that reached `state` while running and
/// then saw nothing but confirming results.
fn in_state_with(rise: u32, fall: u32, state: BackendState) -> Machine {
    let mut m = probed(rise, fall);
    run(&mut m, &[state == Up; 8]);
    assert_eq!(m.state(), state);
    m
}

#[test]
fn a_probe_that_could_not_run_changes_nothing() {
    for state in [Unknown, Up, Down] {
        let mut m = in_state(state);
        // Part way: an up backend that has seen one failure.
        if state == Up {
            run(&mut m, &[false]);
        }
        let before = m.clone();
        for _ in 0..10 {
            assert_eq!(
                m.record(Code::SockErr, "create socket: EMFILE", now()),
                None
            );
        }
        assert_eq!(m, before, "{state}: counter, state and history unchanged");
    }
}

#[test]
fn results_are_ignored_when_not_probed() {
    for state in [Paused, Disabled, Removed] {
        let mut m = in_state(state);
        let before = m.clone();
        assert_eq!(m.record(PASS, "", now()), None);
        assert_eq!(m.record(FAIL, "", now()), None);
        assert_eq!(m, before);
    }
}

/// Every operator action from every state: the resulting state, the code
/// of the transition (None: no transition), or the refusal.
#[test]
fn operator_transition_table() {
    type Row = (
        BackendState,
        Action,
        Result<Option<(BackendState, Code)>, ()>,
    );
    let table: &[Row] = &[
        (Unknown, Action::Pause, Ok(Some((Paused, Code::Paused)))),
        (Up, Action::Pause, Ok(Some((Paused, Code::Paused)))),
        (Down, Action::Pause, Ok(Some((Paused, Code::Paused)))),
        (Paused, Action::Pause, Ok(None)),
        (Disabled, Action::Pause, Err(())),
        (Removed, Action::Pause, Err(())),
        (Unknown, Action::Resume, Ok(None)),
        (Up, Action::Resume, Ok(None)),
        (Down, Action::Resume, Ok(None)),
        (Paused, Action::Resume, Ok(Some((Unknown, Code::Resumed)))),
        (Disabled, Action::Resume, Err(())),
        (Removed, Action::Resume, Err(())),
        (
            Unknown,
            Action::Disable,
            Ok(Some((Disabled, Code::Disabled))),
        ),
        (Up, Action::Disable, Ok(Some((Disabled, Code::Disabled)))),
        (Down, Action::Disable, Ok(Some((Disabled, Code::Disabled)))),
        (
            Paused,
            Action::Disable,
            Ok(Some((Disabled, Code::Disabled))),
        ),
        (Disabled, Action::Disable, Ok(None)),
        (Removed, Action::Disable, Err(())),
        (Unknown, Action::Enable, Ok(None)),
        (Up, Action::Enable, Ok(None)),
        (Down, Action::Enable, Ok(None)),
        (Paused, Action::Enable, Ok(None)),
        (Disabled, Action::Enable, Ok(Some((Unknown, Code::Enabled)))),
        (Removed, Action::Enable, Err(())),
        (Unknown, Action::Remove, Ok(Some((Removed, Code::Removed)))),
        (Up, Action::Remove, Ok(Some((Removed, Code::Removed)))),
        (Down, Action::Remove, Ok(Some((Removed, Code::Removed)))),
        (Paused, Action::Remove, Ok(Some((Removed, Code::Removed)))),
        (Disabled, Action::Remove, Ok(Some((Removed, Code::Removed)))),
        (Removed, Action::Remove, Ok(None)),
    ];
    for &(from, action, ref want) in table {
        let mut m = in_state(from);
        let history_before = m.history().len();
        let t = now();
        let got = match action {
            Action::Pause => m.pause(t),
            Action::Resume => m.resume(t),
            Action::Disable => m.disable(t),
            Action::Enable => m.enable(t),
            Action::Remove => Ok(m.remove(t)),
        };
        let ctx = format!("{action} from {from}");
        match (got, want) {
            (Err(r), Err(())) => {
                assert_eq!(
                    r,
                    Refusal {
                        action,
                        state: from
                    },
                    "{ctx}"
                );
                assert_eq!(m.state(), from, "{ctx}");
            }
            (Ok(None), Ok(None)) => {
                assert_eq!(m.state(), from, "{ctx}");
                assert_eq!(m.history().len(), history_before, "{ctx}");
            }
            (Ok(Some(tr)), Ok(Some((to, code)))) => {
                assert_eq!((tr.from, tr.to, tr.code), (from, *to, *code), "{ctx}");
                assert_eq!(m.state(), *to, "{ctx}");
                assert_eq!(m.history().last(), Some(&tr), "{ctx}");
            }
            (got, want) => panic!("{ctx}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn enable_and_disable_sync_the_flag_from_the_state() {
    let mut m = in_state(Up);
    assert_eq!(m.enable(now()), Ok(None));
    assert!(m.enabled());
    m.disable(now()).unwrap();
    assert!(!m.enabled());
    assert_eq!(m.disable(now()), Ok(None));
    assert!(!m.enabled());
    m.enable(now()).unwrap();
    assert_eq!((m.state(), m.enabled(), m.counter()), (Unknown, true, 1));
}

#[test]
fn resume_and_enable_resolve_quickly() {
    let mut m = in_state(Paused);
    m.resume(now()).unwrap();
    assert_eq!((m.state(), m.counter()), (Unknown, 1));
    m.record(FAIL, "", now());
    assert_eq!(m.state(), Down);
}

#[test]
fn a_backend_disabled_in_config_starts_disabled() {
    let (m, t) = Machine::new(Checking::Probed { rise: 2, fall: 3 }, false, 5, now());
    assert_eq!(m.state(), Disabled);
    assert!(!m.enabled());
    let t = t.unwrap();
    assert_eq!((t.from, t.to, t.code), (Unknown, Disabled, Code::Disabled));
    assert_eq!(m.next_interval(&timing()), None);
}

#[test]
fn static_backends_are_up_at_once_and_never_probed() {
    let (mut m, t) = Machine::new(Checking::Static, true, 5, now());
    let t = t.unwrap();
    assert_eq!((t.from, t.to, t.code), (Unknown, Up, Code::Static));
    assert!(!m.is_probing());
    assert_eq!(m.next_interval(&timing()), None);
    assert_eq!(m.record(FAIL, "", now()), None);
    assert_eq!(m.state(), Up);

    m.pause(now()).unwrap();
    let t = m.resume(now()).unwrap().unwrap();
    assert_eq!((t.to, t.code), (Up, Code::Resumed));
    m.disable(now()).unwrap();
    let t = m.enable(now()).unwrap().unwrap();
    assert_eq!((t.to, t.code), (Up, Code::Enabled));
}

#[test]
fn history_keeps_the_last_entries_with_time_code_and_detail() {
    let start = now();
    let (mut m, _) = Machine::new(Checking::Probed { rise: 1, fall: 1 }, true, 3, start);
    for i in 0..6u64 {
        let at = start + Duration::from_secs(i);
        let code = if i % 2 == 0 { PASS } else { Code::L4Tout };
        m.record(code, &format!("probe {i}"), at);
    }
    let h: Vec<_> = m
        .history()
        .iter()
        .map(|t| (t.to, t.code, t.detail.as_str(), t.at - start))
        .collect();
    assert_eq!(
        h,
        [
            (Down, Code::L4Tout, "probe 3", Duration::from_secs(3)),
            (Up, PASS, "probe 4", Duration::from_secs(4)),
            (Down, Code::L4Tout, "probe 5", Duration::from_secs(5)),
        ]
    );
    m.set_history_len(1);
    assert_eq!(m.history().len(), 1);
    assert_eq!(m.history()[0].detail, "probe 5");
}

/// A machine with `rise`/`fall`, driven to `state` with `counter`.
fn at(rise: u32, fall: u32, results: &[bool]) -> Machine {
    let mut m = probed(rise, fall);
    run(&mut m, results);
    m
}

#[test]
fn retime_keeps_state_and_clamps_the_counter() {
    let p = |rise, fall| Checking::Probed { rise, fall };
    // Fully up (4 of 4) stays fully up under any rise/fall.
    for (rise, fall) in [(2, 3), (5, 5), (1, 1), (3, 1)] {
        let mut m = at(2, 3, &[true]);
        m.retime(p(rise, fall));
        assert_eq!((m.state(), m.counter()), (Up, rise + fall - 1));
    }
    // Up with one failure seen: still one failure seen, if fall allows.
    let mut m = at(2, 3, &[true, false]);
    assert_eq!(m.counter(), 3);
    m.retime(p(4, 5));
    assert_eq!((m.state(), m.counter()), (Up, 7));
    // Two failures seen but the new fall is 2: one more failure brings it
    // down, as it would have before.
    let mut m = at(2, 3, &[true, false, false]);
    m.retime(p(2, 2));
    assert_eq!((m.state(), m.counter()), (Up, 2));
    m.record(FAIL, "", now());
    assert_eq!(m.state(), Down);
    // Down and rising (1 pass of rise 3): keeps the pass; clamped to rise - 1.
    let mut m = at(3, 1, &[false, true]);
    assert_eq!((m.state(), m.counter()), (Down, 1));
    m.retime(p(5, 1));
    assert_eq!((m.state(), m.counter()), (Down, 1));
    m.retime(p(1, 1));
    assert_eq!((m.state(), m.counter()), (Down, 0));
    // Unknown stays one result from resolved.
    let mut m = probed(2, 3);
    m.retime(p(4, 1));
    assert_eq!((m.state(), m.counter()), (Unknown, 3));
    assert_eq!(m.history().len(), 0, "no transition");
}

#[test]
fn reprobe_keeps_the_state_until_the_new_probe_decides() {
    let p = Checking::Probed { rise: 2, fall: 3 };
    // Up, even degraded: stays up; `fall` failures of the new probe bring
    // it down.
    let mut m = at(2, 3, &[true, false, false]);
    assert_eq!(m.reprobe(p, true, now()), None);
    assert_eq!((m.state(), m.counter()), (Up, 4));
    let got = run(&mut m, &[false, false, false]);
    assert_eq!(got, [(Up, 3), (Up, 2), (Down, 0)]);
    // Down: `rise` passes of the new probe bring it up.
    let mut m = at(2, 3, &[false, true]);
    assert_eq!(m.reprobe(p, true, now()), None);
    assert_eq!((m.state(), m.counter()), (Down, 0));
    assert_eq!(run(&mut m, &[true, true]), [(Down, 1), (Up, 4)]);
    // Unknown resolves on the first result, as always.
    let mut m = probed(2, 3);
    assert_eq!(m.reprobe(p, true, now()), None);
    assert_eq!(run(&mut m, &[false]), [(Down, 0)]);
    // A static backend that gains a check stays up.
    let (mut m, _) = Machine::new(Checking::Static, true, 5, now());
    assert_eq!(m.reprobe(p, true, now()), None);
    assert_eq!((m.state(), m.counter()), (Up, 4));
    // One that loses its check is static: up.
    let mut m = at(2, 3, &[false]);
    let t = m.reprobe(Checking::Static, true, now()).unwrap();
    assert_eq!((t.from, t.to, t.code), (Down, Up, Code::Reloaded));
    // Paused or disabled: starts over from unknown, history kept.
    let mut m = in_state(Paused);
    let t = m.reprobe(p, true, now()).unwrap();
    assert_eq!((t.from, t.to, t.code), (Paused, Unknown, Code::Reloaded));
    assert_eq!(m.history().len(), 2);
    // The file's `enabled: false` applies.
    let mut m = in_state(Up);
    let t = m.reprobe(p, false, now()).unwrap();
    assert_eq!(
        (t.to, t.code, m.enabled()),
        (Disabled, Code::Disabled, false)
    );
}

#[test]
fn retarget_starts_a_probed_backend_over() {
    for from in [Up, Down, Unknown] {
        let mut m = in_state(from);
        let t = m.retarget(now());
        assert_eq!((m.state(), m.counter()), (Unknown, 1));
        if from != Unknown {
            let t = t.unwrap();
            assert_eq!((t.from, t.to, t.code), (from, Unknown, Code::Reloaded));
            assert_eq!(t.detail, "address changed");
        }
    }
    for kept in [Paused, Disabled] {
        let mut m = in_state(kept);
        assert_eq!(m.retarget(now()), None);
        assert_eq!(m.state(), kept);
    }
    let (mut m, _) = Machine::new(Checking::Static, true, 5, now());
    assert_eq!(m.retarget(now()), None);
    assert_eq!(m.state(), Up);
}

fn timing() -> Timing {
    Timing {
        interval: Duration::from_secs(2),
        fast_interval: Duration::from_millis(500),
        down_interval: Duration::from_secs(10),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 3,
    }
}

#[test]
fn interval_follows_the_counter() {
    let tm = timing();
    let mut m = probed(2, 3);
    assert_eq!(m.next_interval(&tm), Some(tm.fast_interval)); // unknown
    m.record(PASS, "", now());
    assert_eq!(m.next_interval(&tm), Some(tm.interval)); // up, 4
    m.record(FAIL, "", now());
    assert_eq!(m.next_interval(&tm), Some(tm.fast_interval)); // up, 3
    m.record(FAIL, "", now());
    m.record(FAIL, "", now());
    assert_eq!(m.next_interval(&tm), Some(tm.down_interval)); // down, 0
    m.record(PASS, "", now());
    assert_eq!(m.next_interval(&tm), Some(tm.fast_interval)); // down, 1
    m.pause(now()).unwrap();
    assert_eq!(m.next_interval(&tm), None);
}

#[test]
fn jitter_stays_within_ten_percent() {
    let base = Duration::from_secs(10);
    assert_eq!(jittered(base, 0.0), base);
    assert_eq!(jittered(base, -1.0), Duration::from_secs(9));
    assert_eq!(jittered(base, 1.0), Duration::from_secs(11));
    assert_eq!(jittered(base, 7.0), Duration::from_secs(11));
    assert_eq!(jittered(base, f64::NAN), base);
}

/// Counts, at each result, how many of the same kind came in a row.
fn streaks(results: &[bool]) -> Vec<u32> {
    let mut out = Vec::with_capacity(results.len());
    let mut run = 0;
    for (i, &r) in results.iter().enumerate() {
        run = if i > 0 && results[i - 1] == r {
            run + 1
        } else {
            1
        };
        out.push(run);
    }
    out
}

proptest! {
    #[test]
    fn never_up_before_rise_consecutive_passes_from_zero(
        rise in 1u32..6,
        fall in 1u32..6,
        results in proptest::collection::vec(any::<bool>(), 0..64),
    ) {
        let mut m = probed(rise, fall);
        m.record(FAIL, "", now()); // down, counter 0
        let streak = streaks(&results);
        for (i, &ok) in results.iter().enumerate() {
            let before = m.state();
            m.record(if ok { PASS } else { FAIL }, "", now());
            if before == Down && m.state() == Up {
                prop_assert!(ok && streak[i] >= rise, "up after {} passes, rise {rise}", streak[i]);
            }
            prop_assert!(m.counter() < rise + fall);
        }
    }

    #[test]
    fn never_leaves_up_before_fall_consecutive_failures(
        rise in 1u32..6,
        fall in 1u32..6,
        results in proptest::collection::vec(any::<bool>(), 0..64),
    ) {
        let mut m = probed(rise, fall);
        m.record(PASS, "", now()); // just up, counter Max
        let streak = streaks(&results);
        for (i, &ok) in results.iter().enumerate() {
            let before = m.state();
            m.record(if ok { PASS } else { FAIL }, "", now());
            if before == Up && m.state() != Up {
                prop_assert!(!ok && streak[i] >= fall, "down after {} failures, fall {fall}", streak[i]);
            }
        }
    }

    #[test]
    fn alternation_never_flaps(
        rise in 2u32..6,
        fall in 2u32..6,
        first in any::<bool>(),
        len in 1usize..64,
    ) {
        let mut m = probed(rise, fall);
        let mut ok = first;
        m.record(if ok { PASS } else { FAIL }, "", now());
        let resolved = m.state();
        for _ in 0..len {
            ok = !ok;
            prop_assert_eq!(m.record(if ok { PASS } else { FAIL }, "", now()), None);
        }
        prop_assert_eq!(m.state(), resolved);
    }

    /// A reload that changes the timing or the probe never changes the
    /// state of a probed backend, and keeps the counter invariant.
    #[test]
    fn reloads_keep_the_state_and_the_invariant(
        rise in 1u32..6,
        fall in 1u32..6,
        new_rise in 1u32..6,
        new_fall in 1u32..6,
        results in proptest::collection::vec(any::<bool>(), 0..16),
        probe_changed in any::<bool>(),
    ) {
        let mut m = probed(rise, fall);
        run(&mut m, &results);
        let before = m.state();
        let checking = Checking::Probed { rise: new_rise, fall: new_fall };
        if probe_changed {
            prop_assert_eq!(m.reprobe(checking, true, now()), None);
        } else {
            m.retime(checking);
        }
        prop_assert_eq!(m.state(), before);
        prop_assert!(m.counter() < new_rise + new_fall);
        match m.state() {
            Up => prop_assert!(m.counter() >= new_rise),
            _ => prop_assert!(m.counter() < new_rise),
        }
    }
}
