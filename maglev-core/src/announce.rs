//! The announce policy: whether this router should announce a VIP prefix
//! to its routing daemon, and when to look again.
//!
//! Several routers behind ECMP or anycast each announce the VIPs they can
//! serve; a router that announces a VIP it cannot serve black-holes its
//! share of the traffic. [`decide`] is pure: the daemon feeds it what it
//! knows of one prefix ([`PrefixInputs`]) and carries the [`Decision`] out
//! (a route in its kernel table) and looks again at
//! [`Decision::next_look`].
//!
//! **The rules**, in order:
//!
//! 1. A drained node announces nothing ([`Reason::Drained`]), at once.
//! 2. A route no frontend claims stays until warm-up is over
//!    ([`Reason::WarmingUp`]), then it is withdrawn ([`Reason::Unclaimed`]).
//! 3. When VPP has been unreachable, or has not held the VIP with a serving
//!    AS, for [`Policy::vpp_grace`] or longer, the prefix is withdrawn
//!    ([`Reason::VppUnreachable`], [`Reason::VppLacksVip`]), warm-up or
//!    not: nothing forwards the VIP, and a restart does not change that.
//!    Within the grace period nothing changes ([`Reason::VppGrace`]; the
//!    decision's `next_look` is the end of the period), except rule 5.
//! 4. Until warm-up has released one of the prefix's frontends after a
//!    start, nothing else changes ([`Reason::WarmingUp`]): routes are
//!    kernel state and outlive the process, so a restart is invisible.
//! 5. When no released frontend of the prefix serves (and none is still
//!    held by warm-up), it is withdrawn ([`Reason::NothingServes`]).
//! 6. Otherwise it is announced ([`Reason::Serving`]).
//!
//! Withdraws protect traffic and are never delayed. An announce within
//! [`Policy::min_interval`] of the prefix's last change waits for the
//! interval to pass ([`Reason::Damped`]), so a flapping backend cannot
//! make BGP flap (routers damp flapping prefixes, and take far longer to
//! forgive them than this interval). The interval is counted from this
//! process's own changes: a restart forgets them, so the first announce
//! after a restart is not damped (warm-up stands in for it).
//!
//! A fresh process that has not reached VPP yet sees it unreachable since
//! its start ([`VppView::Unreachable`]), so the grace period also bounds
//! how long a start may take to reach VPP before its routes go; that is
//! why `vpp-grace` cannot be zero in the config.
//!
//! These rules are checked as properties over random runs (inputs changing,
//! time passing, restarts, the decisions carried out) in
//! `maglev-core/tests/announce_properties.rs`.

use std::fmt;
use std::net::IpAddr;
use std::ops::Add;
use std::time::Duration;

/// A VIP prefix as announced: the VIP's host prefix (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The address (IPv4 sorts before IPv6).
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl Prefix {
    /// The host prefix of `addr`: `/32` for IPv4, `/128` for IPv6.
    pub fn host(addr: IpAddr) -> Prefix {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Prefix { addr, len }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The timing of the policy (`maglev.announce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The least time between two changes of one prefix, unless the second
    /// is a withdraw.
    pub min_interval: Duration,
    /// How long VPP may be unreachable, or lack a VIP, before its prefix
    /// is withdrawn (a VPP restart or reconnect takes a few seconds).
    pub vpp_grace: Duration,
}

/// What VPP holds of a prefix, as the daemon last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VppView<I> {
    /// VPP holds one of the prefix's VIPs with an AS of non-zero weight.
    Holds,
    /// VPP is reachable but holds none of the prefix's VIPs with an AS of
    /// non-zero weight, since this instant.
    Lacks {
        /// When it was first seen lacking.
        since: I,
    },
    /// VPP is unreachable, since this instant.
    Unreachable {
        /// When the connection was lost (or the start, if never reached).
        since: I,
    },
}

/// One frontend of a prefix, as the policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontendInput {
    /// Whether it serves: its state is up (some backend has a non-zero
    /// effective weight).
    pub serving: bool,
    /// Whether warm-up has released it since the start.
    pub released: bool,
}

/// What the daemon knows of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixInputs<I> {
    /// Every frontend whose VIP is in the prefix (none for a route left in
    /// the table that no frontend claims).
    pub frontends: Vec<FrontendInput>,
    /// What VPP holds of it.
    pub vpp: VppView<I>,
    /// Whether the node is drained.
    pub drained: bool,
    /// Whether warm-up is over for the whole node (every frontend released
    /// or the watchdog fired): until then an unclaimed route stays.
    pub warmup_done: bool,
    /// Whether the prefix is announced now (its route is in the table).
    pub announced: bool,
    /// When it was last announced or withdrawn by this process; `None`
    /// since the start.
    pub last_change: Option<I>,
}

/// Why the policy decided what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// At least one frontend serves and VPP holds the VIP.
    Serving,
    /// No frontend of the prefix serves.
    NothingServes,
    /// VPP has been unreachable for longer than the grace period.
    VppUnreachable,
    /// VPP has not held the VIP with a serving AS for longer than the
    /// grace period.
    VppLacksVip,
    /// An operator drained the node.
    Drained,
    /// No frontend claims the route (warm-up is over).
    Unclaimed,
    /// Held as it is: warm-up has not released any of its frontends.
    WarmingUp,
    /// Held as it is: VPP is within its grace period.
    VppGrace,
    /// Held withdrawn: the last change was less than the minimum interval
    /// ago.
    Damped,
}

impl Reason {
    /// The reason's name, as logs, events and the API show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Serving => "serving",
            Reason::NothingServes => "nothing-serves",
            Reason::VppUnreachable => "vpp-unreachable",
            Reason::VppLacksVip => "vpp-lacks-vip",
            Reason::Drained => "drained",
            Reason::Unclaimed => "unclaimed",
            Reason::WarmingUp => "warming-up",
            Reason::VppGrace => "vpp-grace",
            Reason::Damped => "damped",
        }
    }
}

/// The policy's answer for one prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<I> {
    /// Whether the prefix should be announced now.
    pub announce: bool,
    /// Why.
    pub reason: Reason,
    /// When to decide again even if no input changes (the end of a grace
    /// period or of a minimum interval); `None` to wait for an input.
    pub next_look: Option<I>,
}

impl<I> Decision<I> {
    /// Whether carrying the decision out changes the table, given whether
    /// the prefix is `announced` now.
    pub fn changes(&self, announced: bool) -> bool {
        self.announce != announced
    }
}

/// Decides prefix `inputs` at `now` under `policy` (see the module's
/// rules).
pub fn decide<I>(policy: &Policy, inputs: &PrefixInputs<I>, now: I) -> Decision<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    let hold = |reason, next_look| Decision {
        announce: inputs.announced,
        reason,
        next_look,
    };
    let withdraw = |reason| Decision {
        announce: false,
        reason,
        next_look: None,
    };
    if inputs.drained {
        return withdraw(Reason::Drained);
    }
    if inputs.frontends.is_empty() {
        if !inputs.warmup_done {
            return hold(Reason::WarmingUp, None);
        }
        return withdraw(Reason::Unclaimed);
    }
    let released = inputs.frontends.iter().filter(|f| f.released);
    let serves = released.clone().any(|f| f.serving);
    let waiting = inputs.frontends.iter().any(|f| !f.released);
    // The end of VPP's grace period, if VPP is away or lacks the VIP. It is
    // looked at before warm-up: VPP away past its grace is evidence about
    // the VIP (nothing forwards it), not something a restart forgot.
    let grace_end = match inputs.vpp {
        VppView::Holds => None,
        VppView::Lacks { since } | VppView::Unreachable { since } => {
            let reason = match inputs.vpp {
                VppView::Unreachable { .. } => Reason::VppUnreachable,
                _ => Reason::VppLacksVip,
            };
            let end = since + policy.vpp_grace;
            if now >= end {
                return withdraw(reason);
            }
            Some(end)
        }
    };
    if released.count() == 0 {
        return hold(Reason::WarmingUp, grace_end);
    }
    if let Some(end) = grace_end {
        // Within the grace period nothing changes, except that a prefix
        // nothing would serve anyway is withdrawn at once.
        if !serves && !waiting {
            return withdraw(Reason::NothingServes);
        }
        return hold(Reason::VppGrace, Some(end));
    }
    if !serves {
        if waiting {
            return hold(Reason::WarmingUp, None);
        }
        return withdraw(Reason::NothingServes);
    }
    if !inputs.announced
        && let Some(last) = inputs.last_change
    {
        let end = last + policy.min_interval;
        if now < end {
            return Decision {
                announce: false,
                reason: Reason::Damped,
                next_look: Some(end),
            };
        }
    }
    Decision {
        announce: true,
        reason: Reason::Serving,
        next_look: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        min_interval: Duration::from_secs(10),
        vpp_grace: Duration::from_secs(5),
    };

    /// Instants as durations since an origin.
    type T = Duration;

    fn s(n: u64) -> T {
        Duration::from_secs(n)
    }

    fn inputs(serving: &[bool]) -> PrefixInputs<T> {
        PrefixInputs {
            frontends: serving
                .iter()
                .map(|&serving| FrontendInput {
                    serving,
                    released: true,
                })
                .collect(),
            vpp: VppView::Holds,
            drained: false,
            warmup_done: true,
            announced: false,
            last_change: None,
        }
    }

    #[test]
    fn a_serving_prefix_is_announced() {
        let d = decide(&POLICY, &inputs(&[false, true]), s(100));
        assert_eq!((d.announce, d.reason), (true, Reason::Serving));
    }

    #[test]
    fn a_prefix_nothing_serves_is_withdrawn_at_once() {
        let mut i = inputs(&[false, false]);
        i.announced = true;
        i.last_change = Some(s(99));
        let d = decide(&POLICY, &i, s(100));
        assert_eq!((d.announce, d.reason), (false, Reason::NothingServes));
    }

    #[test]
    fn an_announce_waits_for_the_minimum_interval() {
        let mut i = inputs(&[true]);
        i.last_change = Some(s(95));
        let d = decide(&POLICY, &i, s(100));
        assert_eq!(
            (d.announce, d.reason, d.next_look),
            (false, Reason::Damped, Some(s(105)))
        );
        assert!(decide(&POLICY, &i, s(105)).announce);
    }

    #[test]
    fn vpp_away_is_held_for_the_grace_period_then_withdrawn() {
        let mut i = inputs(&[true]);
        i.announced = true;
        i.vpp = VppView::Unreachable { since: s(100) };
        let d = decide(&POLICY, &i, s(103));
        assert_eq!(
            (d.announce, d.reason, d.next_look),
            (true, Reason::VppGrace, Some(s(105)))
        );
        let d = decide(&POLICY, &i, s(105));
        assert_eq!((d.announce, d.reason), (false, Reason::VppUnreachable));
        i.vpp = VppView::Lacks { since: s(100) };
        assert_eq!(decide(&POLICY, &i, s(106)).reason, Reason::VppLacksVip);
    }

    #[test]
    fn warm_up_holds_the_table_as_it_was() {
        let mut i = inputs(&[false]);
        i.frontends[0].released = false;
        i.announced = true;
        let d = decide(&POLICY, &i, s(0));
        assert_eq!((d.announce, d.reason), (true, Reason::WarmingUp));
        i.announced = false;
        i.frontends[0].serving = true;
        assert!(!decide(&POLICY, &i, s(0)).announce);
    }

    #[test]
    fn vpp_away_past_its_grace_withdraws_during_warm_up_too() {
        let mut i = inputs(&[true]);
        i.frontends[0].released = false;
        i.announced = true;
        i.vpp = VppView::Unreachable { since: s(0) };
        let d = decide(&POLICY, &i, s(3));
        assert_eq!(
            (d.announce, d.reason, d.next_look),
            (true, Reason::WarmingUp, Some(s(5)))
        );
        let d = decide(&POLICY, &i, s(5));
        assert_eq!((d.announce, d.reason), (false, Reason::VppUnreachable));
    }

    #[test]
    fn drain_wins() {
        let mut i = inputs(&[true]);
        i.frontends[0].released = false;
        i.announced = true;
        i.drained = true;
        let d = decide(&POLICY, &i, s(0));
        assert_eq!((d.announce, d.reason), (false, Reason::Drained));
    }

    #[test]
    fn an_unclaimed_route_is_removed_after_warm_up() {
        let mut i = inputs(&[]);
        i.announced = true;
        i.warmup_done = false;
        assert!(decide(&POLICY, &i, s(0)).announce);
        i.warmup_done = true;
        assert_eq!(decide(&POLICY, &i, s(0)).reason, Reason::Unclaimed);
    }
}
