//! maglevc's TLS: a connector for tonic's channel that dials TCP and
//! completes a TLS handshake (ALPN `h2`) with maglevd, trusting the CA
//! file given or else the system's authorities, and presenting a client
//! certificate when one is given.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::codegen::{Service, http::Uri};

use crate::transport::pem::{self, TlsError};
use crate::transport::provider;

/// What maglevc was told about TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA file maglevd's certificate must chain to (`--ca`); `None`
    /// trusts the system's authorities.
    pub ca: Option<PathBuf>,
    /// The client certificate chain (`--cert`), with its key.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (`--key`).
    pub key: Option<PathBuf>,
}

/// Dials maglevd over TLS; a [`Service`] tonic's channel connects with.
#[derive(Clone)]
pub struct Connector {
    tls: TlsConnector,
    name: ServerName<'static>,
    /// `host:port`, as dialled.
    addr: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector to `addr` (`host:port`) whose certificate must name
    /// `host`. Reads the files now, so a wrong one fails before any
    /// connection, naming it.
    pub fn new(tls: &ClientTls, addr: &str) -> Result<Connector, TlsError> {
        let addr = authority(addr);
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Content {
            path: PathBuf::from(addr),
            what: format!("{host:?} is not a host name or IP address to verify"),
        })?;
        let roots = match &tls.ca {
            Some(ca) => pem::roots(ca)?,
            None => system_roots(),
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Config {
                context: "TLS protocol versions".to_owned(),
                source,
            })?
            .with_root_certificates(roots);
        let mut config = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let chain = pem::certificates(cert)?;
                let key_der = pem::private_key(key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|source| TlsError::Config {
                        context: format!("{} with {}", cert.display(), key.display()),
                        source,
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), None) | (None, Some(cert)) => {
                return Err(TlsError::Content {
                    path: cert.clone(),
                    what: "a client certificate needs both --cert and --key".to_owned(),
                });
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Connector {
            tls: TlsConnector::from(Arc::new(config)),
            name,
            addr: addr.to_owned(),
        })
    }
}

/// `host:port` of a server address that may be a URI (`https://host:port/`).
fn authority(addr: &str) -> &str {
    let addr = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    addr.split('/').next().unwrap_or(addr)
}

/// The host of `host:port` (`[v6]:port` without the brackets).
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, _)) => host,
        None => addr,
    }
}

fn system_roots() -> rustls::RootCertStore {
    let mut store = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(found.certs);
    store
}

impl Service<Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&this.addr).await?;
            tcp.set_nodelay(true)?;
            let tls = this.tls.connect(this.name.clone(), tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_what_the_certificate_must_name() {
        assert_eq!(host_of("localhost:9090"), "localhost");
        assert_eq!(
            authority("https://maglev.example:9090/"),
            "maglev.example:9090"
        );
        assert_eq!(
            host_of(authority("https://maglev.example:9090")),
            "maglev.example"
        );
        assert_eq!(host_of("[::1]:9090"), "::1");
        assert_eq!(host_of("127.0.0.1:9090"), "127.0.0.1");
    }

    #[test]
    fn half_a_client_certificate_is_refused() {
        let tls = ClientTls {
            ca: None,
            cert: Some(PathBuf::from("/nonexistent/c.pem")),
            key: None,
        };
        let e = Connector::new(&tls, "localhost:9090")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs both --cert and --key"), "{e}");
    }
}
