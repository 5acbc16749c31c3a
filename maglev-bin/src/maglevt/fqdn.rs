//! The host's fully qualified name, as `hostname -f` finds it: the
//! kernel's host name, then the canonical name the resolver gives it
//! (`getaddrinfo` with `AI_CANONNAME`, which follows CNAMEs and
//! `/etc/hosts`). Shown in maglevt's header, so a screenshot from several
//! sites says which site it was taken at.

use std::time::Duration;

use dns_lookup::{AddrInfoHints, get_hostname, getaddrinfo};

/// How long the resolver may take before the short name is used.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The host's FQDN, or its short name when the resolver does not answer
/// in [`LOOKUP_TIMEOUT`] or knows no better; `localhost` if even the host
/// name cannot be read.
pub async fn fqdn() -> String {
    let short = get_hostname().unwrap_or_else(|_| "localhost".to_owned());
    let name = short.clone();
    let lookup = tokio::task::spawn_blocking(move || canonical(&name));
    match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(Some(full))) => full,
        _ => short,
    }
}

/// The resolver's canonical name for `host`.
fn canonical(host: &str) -> Option<String> {
    let hints = AddrInfoHints {
        flags: nix::libc::AI_CANONNAME,
        address: 0,
        socktype: nix::libc::SOCK_STREAM,
        protocol: 0,
    };
    getaddrinfo(Some(host), None, Some(hints))
        .ok()?
        .filter_map(Result::ok)
        .find_map(|ai| ai.canonname)
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_name_is_the_resolvers_canonical_name_of_the_host_name() {
        let short = get_hostname().unwrap();
        let want = canonical(&short).unwrap_or(short);
        assert_eq!(fqdn().await, want);
        assert_eq!(canonical("localhost").as_deref(), Some("localhost"));
    }
}
