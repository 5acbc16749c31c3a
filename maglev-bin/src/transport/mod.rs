//! Connections: what the gRPC and `/metrics` servers accept (TCP, or TLS
//! with or without a client certificate) and how maglevc connects.
//!
//! - [`pem`]: reading certificate, key and CA files, with errors that name
//!   the file and what is wrong with it.
//! - [`server`]: the servers' TLS configuration, swapped whole on reload so
//!   new handshakes get the new certificate and open connections keep
//!   theirs.
//! - [`peer`]: who is at the other end (address, certificate names), the
//!   identity access checks and the audit trail use.
//! - [`conn`]: an accepted connection and the accept loop (handshakes
//!   off the accept path; header and idle timeouts on every connection).
//! - [`gate`]: each server's connection cap, and which pending
//!   connection is shed to make room.
//! - [`budget`]: the descriptor limit raised at start, and the reserve
//!   for probes and VPP the listeners' caps leave.
//! - [`serve`]: running a server until the daemon stops, with a grace
//!   for open connections; the HTTP servers over [`conn`]'s connections.
//! - [`client`]: maglevc's side: TLS to maglevd, trusting a CA file or the
//!   system's, with a client certificate.

pub mod budget;
pub mod client;
pub mod conn;
pub mod gate;
pub mod peer;
pub mod pem;
pub mod serve;
pub mod server;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub use conn::{Conn, Incoming, accept};
pub use peer::{CertNames, Peer};
pub use pem::TlsError;
pub use server::{Alpn, ServerTls};

/// The one crypto provider of maglev's TLS (ring, as the probes use).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
