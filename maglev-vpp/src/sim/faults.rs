//! Faults the simulator can inject, to test the client's error paths.

use std::time::Duration;

/// What to do instead of (or on top of) the normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Handle the request but send no reply (VPP's silent drop).
    DropReply,
    /// Wait before handling the request (later requests on the connection
    /// wait too: VPP handles them in order).
    Delay(Duration),
    /// Do not handle the request; answer with this retval.
    Retval(i32),
    /// Close the connection instead of answering.
    CloseSocket,
    /// For a dump: send the first half of the details, then close.
    CloseMidDump,
}

/// A fault for requests of one message (or any message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The request's message name (e.g. `lb_as_set_weight`); None: any.
    pub message: Option<&'static str>,
    /// What to do.
    pub action: FaultAction,
    /// How many matching requests it applies to.
    pub times: usize,
}

impl Fault {
    /// A fault for the next request of `message`.
    pub fn once(message: &'static str, action: FaultAction) -> Fault {
        Fault {
            message: Some(message),
            action,
            times: 1,
        }
    }
}

/// The queue of pending faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    list: Vec<Fault>,
}

impl Faults {
    pub(crate) fn push(&mut self, f: Fault) {
        if f.times > 0 {
            self.list.push(f);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
    }

    /// Uses left over every pending fault.
    pub(crate) fn pending(&self) -> usize {
        self.list.iter().map(|f| f.times).sum()
    }

    /// The action for a request of `message`, consuming one use.
    pub(crate) fn take(&mut self, message: &str) -> Option<FaultAction> {
        let i = self
            .list
            .iter()
            .position(|f| f.message.is_none_or(|m| m == message))?;
        let f = &mut self.list[i];
        let action = f.action;
        f.times -= 1;
        if f.times == 0 {
            self.list.remove(i);
        }
        Some(action)
    }
}
