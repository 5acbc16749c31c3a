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
//!
//! bcrypt is slow on purpose, so a password check runs on the blocking
//! pool (never on the runtime that serves gRPC and the page), at most
//! [`CHECKS_AT_ONCE`] at a time, with no lock held while it runs; failed
//! checks are rate limited per peer ([`LoginThrottle`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::daemon::Handle;
use crate::transport::Peer;
use crate::web::throttle::LoginThrottle;

/// The most verified credentials remembered (bcrypt is slow on purpose;
/// the page sends its credentials with every request).
const VERIFIED_CACHE: usize = 64;
/// How many bcrypt checks run at once (each takes a blocking thread and
/// a core for as long as the hash's cost says).
pub const CHECKS_AT_ONCE: usize = 2;

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
#[derive(Debug)]
pub struct Passwords {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<String, String>>,
    throttle: LoginThrottle,
    checks: tokio::sync::Semaphore,
}

/// What a password check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The credentials of this user.
    User(String),
    /// Wrong (or unreadable) credentials.
    Wrong,
    /// Not checked: the peer failed too often; it may try again later.
    Limited,
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
            throttle: LoginThrottle::default(),
            checks: tokio::sync::Semaphore::new(CHECKS_AT_ONCE),
        })
    }

    /// Checks the basic credentials `authorization` (the header's value)
    /// sent from `peer`: credentials verified before answer at once; others
    /// take one of the peer's attempts and run bcrypt on the blocking pool.
    pub async fn check(self: &Arc<Self>, authorization: &str, peer: Option<IpAddr>) -> Check {
        if let Some(user) = self.cached(authorization) {
            return Check::User(user);
        }
        let Some((user, password)) = basic_credentials(authorization) else {
            return Check::Wrong;
        };
        let now = tokio::time::Instant::now();
        if let Some(ip) = peer
            && !self.throttle.take(ip, now)
        {
            return Check::Limited;
        }
        // An unknown user is checked against another user's hash, so the
        // answer takes as long and says nothing about who exists.
        let (known, hash) = match self.users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => match self.users.values().next() {
                Some(hash) => (false, hash.clone()),
                None => return Check::Wrong,
            },
        };
        let Ok(_permit) = self.checks.acquire().await else {
            return Check::Wrong;
        };
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let right = known && matches;
        if !right {
            return Check::Wrong;
        }
        if let Some(ip) = peer {
            self.throttle.give_back(ip);
        }
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(authorization.to_owned(), user.clone());
        Check::User(user)
    }

    fn cached(&self, authorization: &str) -> Option<String> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.get(authorization).cloned()
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
    /// Credentials were sent and not checked: the peer failed too often.
    pub limited: bool,
}

impl Session {
    /// Whether the visitor is known (logged in or by certificate): only
    /// they see log and audit records.
    pub fn known(&self) -> bool {
        self.auth != AuthKind::None
    }
}

/// The session of a request with `headers` from `peer`.
pub async fn session(
    handle: &Handle,
    passwords: Option<&Arc<Passwords>>,
    headers: &HeaderMap,
    peer: &Peer,
) -> Session {
    let read_only = handle.settings().grpc_read_only;
    if peer.certificate.is_some() {
        return Session {
            admin: !read_only && handle.config().access().is_admin(peer.names()),
            identity: peer.identity(),
            auth: AuthKind::Certificate,
            limited: false,
        };
    }
    let sent = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let check = match (passwords, sent) {
        (Some(p), Some(v)) => {
            let check = p.check(v, peer.addr.map(|a| a.ip())).await;
            let logins = handle.metrics().listeners();
            match check {
                Check::Wrong => logins.login_failure("wrong"),
                Check::Limited => logins.login_failure("limited"),
                Check::User(_) => {}
            }
            check
        }
        _ => Check::Wrong,
    };
    match check {
        Check::User(user) => Session {
            admin: !read_only,
            identity: user,
            auth: AuthKind::Basic,
            limited: false,
        },
        Check::Wrong | Check::Limited => Session {
            admin: false,
            identity: peer.identity(),
            auth: AuthKind::None,
            limited: check == Check::Limited,
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

    #[tokio::test]
    async fn a_password_file_is_read_and_its_mistakes_named() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let p = Arc::new(
            Passwords::parse(&format!("# admins\n\nalice:{hash}\n"), Path::new("pw")).unwrap(),
        );
        let verify = |h: String| {
            let p = p.clone();
            async move {
                match p.check(&h, None).await {
                    Check::User(u) => Some(u),
                    _ => None,
                }
            }
        };
        use base64::Engine;
        let header = |u: &str, pw: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}"))
            )
        };
        assert_eq!(
            verify(header("alice", "secret")).await.as_deref(),
            Some("alice")
        );
        // Cached, and still right.
        assert_eq!(
            verify(header("alice", "secret")).await.as_deref(),
            Some("alice")
        );
        assert_eq!(verify(header("alice", "wrong")).await, None);
        assert_eq!(verify(header("bob", "secret")).await, None);
        assert_eq!(verify("Bearer x".to_owned()).await, None);

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
