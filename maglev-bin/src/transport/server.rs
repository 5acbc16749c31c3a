//! The servers' TLS: a certificate and key, and optionally the CAs whose
//! client certificates are required, read from [`TlsFiles`]. The built
//! configuration is swapped whole by [`ServerTls::reload`]: every
//! handshake after it uses the new files, connections already open keep
//! theirs, and a reload that fails keeps the old configuration.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::daemon::settings::TlsFiles;
use crate::transport::pem::{self, TlsError};
use crate::transport::{peer, provider};

/// Which application protocol a listener speaks over TLS (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/2: gRPC.
    H2,
    /// HTTP/1.1: `/metrics`.
    Http1,
}

/// One configuration per protocol, built from the same files.
struct Configs {
    h2: Arc<ServerConfig>,
    http1: Arc<ServerConfig>,
}

/// A reloadable server TLS configuration.
pub struct ServerTls {
    files: TlsFiles,
    configs: ArcSwap<Configs>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads `files`; fails naming the file that is missing or wrong.
    pub fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let configs = build(&files)?;
        Ok(ServerTls {
            files,
            configs: ArcSwap::from_pointee(configs),
        })
    }

    /// Reads the files again. On success new handshakes use them; on an
    /// error the configuration in use is kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let configs = build(&self.files)?;
        self.configs.store(Arc::new(configs));
        Ok(())
    }

    /// The files it is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// An acceptor for `alpn` with the configuration in use now.
    pub fn acceptor(&self, alpn: Alpn) -> TlsAcceptor {
        let configs = self.configs.load();
        TlsAcceptor::from(match alpn {
            Alpn::H2 => configs.h2.clone(),
            Alpn::Http1 => configs.http1.clone(),
        })
    }
}

fn build(files: &TlsFiles) -> Result<Configs, TlsError> {
    let certs = pem::certificates(&files.cert)?;
    let key = pem::private_key(&files.key)?;
    let now = crate::clock::WallClock::new().now_unix_nanos() / 1_000_000_000;
    if let Some(at) = peer::expires_at(&certs[0])
        && at <= now
    {
        tracing::warn!(
            cert = %files.cert.display(),
            "the server certificate has expired: clients will refuse it"
        );
    }
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Config {
            context: "TLS protocol versions".to_owned(),
            source,
        })?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = pem::roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Content {
                    path: ca.clone(),
                    what: format!("cannot verify client certificates with it: {e}"),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Config {
            context: format!("{} with {}", files.cert.display(), files.key.display()),
            source,
        })?;
    let with_alpn = |protocol: &[u8]| {
        let mut c = config.clone();
        c.alpn_protocols = vec![protocol.to_vec()];
        Arc::new(c)
    };
    Ok(Configs {
        h2: with_alpn(b"h2"),
        http1: with_alpn(b"http/1.1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &std::path::Path, name: &str) -> TlsFiles {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        TlsFiles {
            cert,
            key,
            client_ca: None,
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_pair(dir.path(), "a");
        let b = write_pair(dir.path(), "b");
        let mixed = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
            client_ca: None,
        };
        let e = ServerTls::load(mixed).unwrap_err().to_string();
        assert!(e.contains("a.pem with") && e.contains("b.key"), "{e}");
        assert!(ServerTls::load(a).is_ok());
    }

    #[test]
    fn a_failed_reload_keeps_the_configuration_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "a");
        let tls = ServerTls::load(files.clone()).unwrap();
        let before = tls.configs.load_full();
        std::fs::write(&files.key, "garbage").unwrap();
        let e = tls.reload().unwrap_err().to_string();
        assert!(e.contains("a.key: holds no private key"), "{e}");
        assert!(Arc::ptr_eq(&before, &tls.configs.load_full()));
        write_pair(dir.path(), "a");
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &tls.configs.load_full()));
    }
}
