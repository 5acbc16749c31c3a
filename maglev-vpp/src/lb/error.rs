//! The LB layer's error: either VPP (or the connection) failed a request,
//! or maglev refused to send it. A local refusal is never dressed up as a
//! VPP retval, so logs and metrics say who was at fault.

use maglev_core::dataplane::{Encap, VipKey};

use crate::api::error::{Error, Retval};

/// Why a typed LB operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LbError {
    /// VPP answered with an error, or talking to it failed.
    #[error(transparent)]
    Vpp(#[from] Error),
    /// maglev refused to create a VIP with an encap other than GRE4/GRE6
    /// (VPP silently turns an IPv6 VIP with another encap into GRE6, and
    /// maglev creates only GRE VIPs, VPP-WIRE C.3). Nothing was sent.
    #[error("VIP {key}: not sent to VPP: maglev creates only gre4/gre6 VIPs, not {encap}")]
    UnsupportedEncap {
        /// The VIP.
        key: VipKey,
        /// The encap asked for.
        encap: Encap,
    },
}

impl LbError {
    /// The VPP retval, if VPP answered with one (never for a local refusal).
    pub fn retval(&self) -> Option<Retval> {
        match self {
            LbError::Vpp(e) => e.retval(),
            LbError::UnsupportedEncap { .. } => None,
        }
    }

    /// Whether the connection is gone (reconnect before retrying).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, LbError::Vpp(e) if e.is_disconnected())
    }

    /// The VPP-side error, if this is one.
    pub fn as_vpp(&self) -> Option<&Error> {
        match self {
            LbError::Vpp(e) => Some(e),
            LbError::UnsupportedEncap { .. } => None,
        }
    }
}
