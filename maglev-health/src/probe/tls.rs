//! TLS for the `https` and `tcp` probes: rustls with ring, SNI from
//! `server-name`, and `insecure-skip-verify`, which still checks the
//! handshake signatures but accepts any certificate.
//!
//! **Invariant:** a probe does exactly one TLS handshake, on the TCP stream
//! it connected; the HTTP layer above it speaks plain HTTP/1.1.
//!
//! [`TlsClient`] is public so other probers (`maglevt`) verify, or skip
//! verifying, exactly as health checks do.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Fail;
use crate::code::Code;
use crate::error::Error;
use maglev_core::config::TlsParams;

/// A TLS client for one health check (or any prober with the same
/// parameters).
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    /// `None`: no SNI, and the certificate is checked against the address.
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's certificate authorities, loaded once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "loading system certificate authorities");
            }
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system certificate authorities");
            Arc::new(store)
        })
        .clone()
}

impl TlsClient {
    /// A TLS client for `params`, offering `alpn` protocols, trusting
    /// `roots` (the system's when `None`). Fails on a `server-name` that is
    /// not a DNS name or address, or a rustls configuration error.
    pub fn new(
        params: &TlsParams,
        alpn: &[&[u8]],
        roots: Option<Arc<RootCertStore>>,
    ) -> Result<TlsClient, Error> {
        let server_name = params
            .server_name
            .as_deref()
            .map(|n| {
                ServerName::try_from(n)
                    .map(|s| s.to_owned())
                    .map_err(|_| Error::BadServerName(n.to_owned()))
            })
            .transpose()?;
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::TlsConfig)?;
        let mut config = if params.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipVerify(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(roots.unwrap_or_else(system_roots))
                .with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Completes a handshake over `tcp`: `L6RSP` on failure (the caller's
    /// timer makes `L6TOUT`).
    pub(super) async fn handshake(
        &self,
        tcp: TcpStream,
        target: IpAddr,
    ) -> Result<TlsStream<TcpStream>, Fail> {
        self.connect(tcp, target)
            .await
            .map_err(|e| Fail::new(Code::L6Rsp, format!("TLS handshake: {e}")))
    }

    /// Completes a handshake over `tcp` with the server at `target`: SNI
    /// and verification by `server-name` when given, else by the address.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        target: IpAddr,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = self
            .server_name
            .clone()
            .unwrap_or(ServerName::IpAddress(target.into()));
        self.connector.connect(name, tcp).await
    }
}

/// The negotiated version and cipher suite, for the detail.
pub(super) fn describe(s: &TlsStream<TcpStream>) -> String {
    let (_, conn) = s.get_ref();
    let version = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("unknown version");
    match conn.negotiated_cipher_suite() {
        Some(cs) => format!("{version}, {:?}", cs.suite()),
        None => version.to_owned(),
    }
}

/// `insecure-skip-verify`: any certificate is accepted, but the handshake
/// signatures are still verified (so the peer holds the key it presented).
#[derive(Debug)]
struct SkipVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
