//! Who is at the other end of a connection: its address and, on a TLS
//! connection with a client certificate, the names that certificate
//! carries. Access checks compare those names with `maglev.access`, and
//! the audit trail records them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The other end of an accepted connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// Its address (`None` if the socket could not say).
    pub addr: Option<SocketAddr>,
    /// The names of its verified client certificate, if it sent one.
    pub certificate: Option<Arc<CertNames>>,
}

impl Peer {
    /// How the peer is named in denials, the audit trail and metrics: its
    /// certificate's subject, or else its IP address (without the port,
    /// so one client is one identity).
    pub fn identity(&self) -> String {
        match (&self.certificate, self.addr) {
            (Some(cert), _) => cert.subject().to_owned(),
            (None, Some(addr)) => addr.ip().to_string(),
            (None, None) => "unknown".to_owned(),
        }
    }

    /// Every name the peer's certificate carries (none without one).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.certificate.iter().flat_map(|c| c.names())
    }
}

/// What a certificate says its holder is called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertNames {
    /// The subject's common name (CN), if it has one.
    pub common_name: Option<String>,
    /// The subject alternative names: DNS names, emails, URIs and IP
    /// addresses, in the certificate's order.
    pub alt_names: Vec<String>,
}

/// What a certificate without any name is called.
const NAMELESS: &str = "(certificate without a name)";

impl CertNames {
    /// The names in the DER certificate `der`.
    pub fn from_der(der: &[u8]) -> Result<CertNames, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .find_map(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let alt_names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        Some((*s).to_owned())
                    }
                    GeneralName::IPAddress(bytes) => ip(bytes).map(|a| a.to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(format!("subject alternative names: {e}")),
        };
        Ok(CertNames {
            common_name,
            alt_names,
        })
    }

    /// The one name to show: the common name, or else the first
    /// alternative name.
    pub fn subject(&self) -> &str {
        self.common_name
            .as_deref()
            .or(self.alt_names.first().map(String::as_str))
            .unwrap_or(NAMELESS)
    }

    /// The common name and every alternative name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.common_name
            .iter()
            .chain(self.alt_names.iter())
            .map(String::as_str)
    }
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// When the DER certificate `der` expires (its `notAfter`, Unix
/// seconds), if it parses.
pub fn expires_at(der: &[u8]) -> Option<i64> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: Option<&str>, sans: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn common_name_and_every_kind_of_alternative_name_are_read() {
        let names = CertNames::from_der(&cert(Some("alice"), &["ops.example", "127.0.0.1", "::1"]))
            .unwrap();
        assert_eq!(names.common_name.as_deref(), Some("alice"));
        assert_eq!(names.alt_names, ["ops.example", "127.0.0.1", "::1"]);
        assert_eq!(names.subject(), "alice");
        assert_eq!(names.names().count(), 4);
    }

    #[test]
    fn the_subject_falls_back_to_the_first_alternative_name() {
        let names = CertNames::from_der(&cert(None, &["ops.example"])).unwrap();
        assert_eq!(names.subject(), "ops.example");
        let none = CertNames::from_der(&cert(None, &[])).unwrap();
        assert_eq!(none.subject(), NAMELESS);
        assert!(CertNames::from_der(b"not a certificate").is_err());
    }

    #[test]
    fn a_peer_without_certificate_is_its_ip_address() {
        let peer = Peer {
            addr: Some("127.0.0.7:5555".parse().unwrap()),
            certificate: None,
        };
        assert_eq!(peer.identity(), "127.0.0.7");
        assert_eq!(peer.names().count(), 0);
        assert_eq!(Peer::default().identity(), "unknown");
    }

    #[test]
    fn expiry_is_read() {
        // rcgen's default validity ends in 4096.
        let at = expires_at(&cert(Some("x"), &[])).unwrap();
        assert_eq!(at, 67_090_118_400);
    }
}
