//! Reading PEM files: certificate chains, private keys and certificate
//! authorities. Every error names the file and says what was wrong.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest PEM file read: certificate chains and CA bundles are far
/// smaller, so a wrong path (a device, a log) fails fast.
pub const MAX_PEM_FILE: u64 = 4 << 20;

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what it should be.
    #[error("{}: {what}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The pieces do not make a TLS configuration (a key that does not
    /// belong to the certificate, say).
    #[error("{context}: {source}")]
    Config {
        /// Which files, or which setting.
        context: String,
        /// What rustls said.
        source: rustls::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let fail = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(content(path, format!("larger than {MAX_PEM_FILE} bytes")));
    }
    Ok(bytes)
}

fn content(path: &Path, what: impl Into<String>) -> TlsError {
    TlsError::Content {
        path: path.to_owned(),
        what: what.into(),
    }
}

/// Every certificate of the PEM file at `path` (a chain: the leaf first),
/// at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(content(
            path,
            "holds no certificate (a PEM \"CERTIFICATE\" block)",
        ));
    }
    Ok(certs)
}

/// The private key of the PEM file at `path` (PKCS #8, PKCS #1 or SEC 1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => content(
            path,
            "holds no private key (a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)",
        ),
        e => content(path, format!("not a PEM private key: {e}")),
    })
}

/// The certificate authorities of the PEM file at `path`, at least one.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for (i, cert) in certificates(path)?.into_iter().enumerate() {
        store
            .add(cert)
            .map_err(|e| content(path, format!("certificate {} is not a CA: {e}", i + 1)))?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = certificates(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", missing.display())), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let e = certificates(&empty).unwrap_err().to_string();
        assert!(e.contains("empty.pem: holds no certificate"), "{e}");
        let e = private_key(&empty).unwrap_err().to_string();
        assert!(e.contains("empty.pem: holds no private key"), "{e}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = certificates(&broken).unwrap_err().to_string();
        assert!(e.contains("broken.pem: not PEM certificates"), "{e}");
    }

    #[test]
    fn a_key_and_a_certificate_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        assert_eq!(certificates(&cert).unwrap().len(), 1);
        assert!(private_key(&key).is_ok());
        assert_eq!(roots(&cert).unwrap().len(), 1);
        // A key file is not a certificate file.
        assert!(certificates(&key).is_err());
    }
}
