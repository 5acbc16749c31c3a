//! The gRPC channel to one maglevd, plain or TLS (with the client
//! identity in the target's TLS settings), connected lazily.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::cli::Target;
use crate::transport::client::Connector;

/// How long connecting to a maglevd may take before a call fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port` as a gRPC endpoint URI (an `http://` or `https://` prefix
/// is kept), `https://` with TLS.
pub fn endpoint_uri(server: &str, tls: bool) -> String {
    if server.starts_with("http://") || server.starts_with("https://") {
        server.to_owned()
    } else if tls {
        format!("https://{server}")
    } else {
        format!("http://{server}")
    }
}

/// A lazy channel to `target`: nothing is connected until the first call,
/// and a lost connection is retried by the next. TLS files are read now,
/// so the error names a wrong one (or a bad address).
pub fn channel(target: &Target) -> Result<Channel, String> {
    let server = &target.server;
    let endpoint = Endpoint::from_shared(endpoint_uri(server, target.tls.is_some()))
        .map_err(|e| format!("bad server address \"{server}\": {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    Ok(match &target.tls {
        Some(tls) => {
            let connector = Connector::new(tls, server).map_err(|e| e.to_string())?;
            endpoint.connect_with_connector_lazy(connector)
        }
        None => endpoint.connect_lazy(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_keeps_a_scheme_and_adds_one_by_tls() {
        assert_eq!(endpoint_uri("a:1", false), "http://a:1");
        assert_eq!(endpoint_uri("a:1", true), "https://a:1");
        assert_eq!(endpoint_uri("https://a:1", false), "https://a:1");
    }

    #[tokio::test]
    async fn a_bad_address_is_named() {
        let e = channel(&Target::plain("a b:1")).unwrap_err();
        assert!(e.contains("\"a b:1\""), "{e}");
    }
}
