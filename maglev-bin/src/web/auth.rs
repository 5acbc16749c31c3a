//! Who is looking at the dashboard, and whether they may act.
//!
//! An admin is a user of the password file (`--http-password-file`,
//! `htpasswd -B` lines `user:$2y$…`) who sent valid HTTP basic
//! credentials, or, on a listener with the gRPC TLS and client
//! certificates (`--http-tls`), a certificate naming an entry of
//! `maglev.access.admins`. Everyone else reads. `--grpc-read-only` makes
//! everyone a reader here too.
//!
//! Mutations also need the session's CSRF token in an `X-CSRF-Token`
//! header: a header a cross-site form cannot send, holding a secret a
//! cross-site script cannot read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::daemon::Handle;
use crate::transport::Peer;

/// The most verified credentials remembered (bcrypt is slow on purpose;
/// the page sends its credentials with every request).
const VERIFIED_CACHE: usize = 64;

/// A password file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// It could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `user:bcrypt-hash`.
    #[error("{}:{line}: {what}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// The admins of a password file: user name → bcrypt hash.
#[derive(Debug, Default)]
pub struct Passwords {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<String, String>>,
}

impl Passwords {
    /// Reads `path`: `user:hash` lines (`htpasswd -B`), `#` comments and
    /// blank lines ignored.
    pub fn load(path: &Path) -> Result<Passwords, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Passwords::parse(&text, path)
    }

    /// Parses the text of password file `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Passwords, PasswordFileError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |what: String| PasswordFileError::Line {
                path: path.to_owned(),
                line: i + 1,
                what,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| fail("not user:hash".to_owned()))?;
            if user.is_empty() {
                return Err(fail("the user name is empty".to_owned()));
            }
            if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
                return Err(fail(format!(
                    "{user}'s password is not a bcrypt hash ($2y$…; make one with htpasswd -B)"
                )));
            }
            if users.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(fail(format!("{user} is listed twice")));
            }
        }
        Ok(Passwords {
            users,
            verified: Mutex::default(),
        })
    }

    /// The user whose basic credentials `authorization` (the header's
    /// value) carries, if they are right.
    pub fn verify(&self, authorization: &str) -> Option<String> {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(user) = verified.get(authorization) {
            return Some(user.clone());
        }
        let (user, password) = basic_credentials(authorization)?;
        let hash = self.users.get(&user)?;
        if !bcrypt::verify(&password, hash).unwrap_or(false) {
            return None;
        }
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(authorization.to_owned(), user.clone());
        Some(user)
    }
}

/// The user and password of a `Basic` authorization value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// How a visitor is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// Not at all.
    None,
    /// By a password-file user's basic credentials.
    Basic,
    /// By a client certificate.
    Certificate,
}

/// One visitor's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// May act.
    pub admin: bool,
    /// As named in the audit trail: the user, the certificate's subject,
    /// or the IP address.
    pub identity: String,
    /// How the identity was established.
    pub auth: AuthKind,
}

/// The session of a request with `headers` from `peer`.
pub fn session(
    handle: &Handle,
    passwords: Option<&Passwords>,
    headers: &HeaderMap,
    peer: &Peer,
) -> Session {
    let read_only = handle.settings().grpc_read_only;
    if peer.certificate.is_some() {
        return Session {
            admin: !read_only && handle.config().access().is_admin(peer.names()),
            identity: peer.identity(),
            auth: AuthKind::Certificate,
        };
    }
    let user = passwords.and_then(|p| {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| p.verify(v))
    });
    match user {
        Some(user) => Session {
            admin: !read_only,
            identity: user,
            auth: AuthKind::Basic,
        },
        None => Session {
            admin: false,
            identity: peer.identity(),
            auth: AuthKind::None,
        },
    }
}

/// A fresh CSRF token: 128 random bits, hex.
pub fn csrf_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `sent` is `token`, compared in constant time.
pub fn csrf_ok(token: &str, sent: Option<&str>) -> bool {
    let Some(sent) = sent else {
        return false;
    };
    sent.len() == token.len()
        && sent
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_is_read_and_its_mistakes_named() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let p = Passwords::parse(&format!("# admins\n\nalice:{hash}\n"), Path::new("pw")).unwrap();
        use base64::Engine;
        let header = |u: &str, pw: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}"))
            )
        };
        assert_eq!(
            p.verify(&header("alice", "secret")).as_deref(),
            Some("alice")
        );
        // Cached, and still right.
        assert_eq!(
            p.verify(&header("alice", "secret")).as_deref(),
            Some("alice")
        );
        assert_eq!(p.verify(&header("alice", "wrong")), None);
        assert_eq!(p.verify(&header("bob", "secret")), None);
        assert_eq!(p.verify("Bearer x"), None);

        let e = Passwords::parse("alice\n", Path::new("pw"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "pw:1: not user:hash");
        let e = Passwords::parse("\nalice:plain\n", Path::new("pw"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("pw:2: alice's password is not a bcrypt hash"),
            "{e}"
        );
        let e = Passwords::parse(&format!("a:{hash}\na:{hash}\n"), Path::new("pw"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "pw:2: a is listed twice");
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let t = csrf_token();
        assert_eq!(t.len(), 32);
        assert!(csrf_ok(&t, Some(&t)));
        assert!(!csrf_ok(&t, Some(&t[..31])));
        assert!(!csrf_ok(&t, None));
        assert_ne!(t, csrf_token());
    }
}
