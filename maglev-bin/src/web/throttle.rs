//! Failed logins, rate limited per peer: each client address (an IPv6
//! client by its /64, which one host usually holds whole) has a bucket of
//! [`BURST`] attempts that refills one every [`REFILL`]. A password check
//! takes a token before it runs and gives it back when the password was
//! right, so only failures drain a bucket, and an empty bucket means no
//! bcrypt is run at all for that peer. At most [`MAX_PEERS`] peers are
//! tracked: full buckets are forgotten first, and when every tracked peer
//! is still refilling a new one is refused too (the memory stays bounded;
//! an address already let in is unaffected).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many failed logins a peer may make in a row.
pub const BURST: u32 = 5;
/// How long a peer waits for one more attempt once its burst is spent.
pub const REFILL: Duration = Duration::from_secs(12);
/// The most peers whose failures are remembered.
pub const MAX_PEERS: usize = 4096;

/// The per-peer buckets.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    peers: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the tokens were last counted.
    at: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant) -> Bucket {
        let gained = now.duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        let whole = gained.floor() as u32;
        if whole == 0 {
            return self;
        }
        let tokens = self.tokens.saturating_add(whole).min(BURST);
        // The part of a token not yet earned is kept.
        let at = if tokens == BURST {
            now
        } else {
            self.at + REFILL * whole
        };
        Bucket { tokens, at }
    }
}

/// The key a peer is counted under.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginThrottle {
    /// Takes an attempt for `ip` at `now`: `false` when it has none left
    /// (the caller refuses without checking the password).
    pub fn take(&self, ip: IpAddr, now: Instant) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let key = key(ip);
        if !peers.contains_key(&key) && peers.len() >= MAX_PEERS {
            peers.retain(|_, b| b.refilled(now).tokens < BURST);
            if peers.len() >= MAX_PEERS {
                return false;
            }
        }
        let bucket = peers.entry(key).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        *bucket = bucket.refilled(now);
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// Gives back the attempt `ip` took: its password was right.
    pub fn give_back(&self, ip: IpAddr) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = peers.get_mut(&key(ip)) {
            b.tokens = (b.tokens + 1).min(BURST);
        }
    }

    /// How many peers are tracked.
    pub fn tracked(&self) -> usize {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_gets_its_burst_then_one_attempt_per_refill() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..BURST {
            assert!(t.take(ip("192.0.2.1"), now));
        }
        assert!(!t.take(ip("192.0.2.1"), now));
        // Another peer is not affected.
        assert!(t.take(ip("192.0.2.2"), now));
        // A right password gives its attempt back.
        t.give_back(ip("192.0.2.2"));
        assert!(!t.take(ip("192.0.2.1"), now + REFILL / 2));
        assert!(t.take(ip("192.0.2.1"), now + REFILL));
        assert!(!t.take(ip("192.0.2.1"), now + REFILL));
        assert!(t.take(ip("192.0.2.1"), now + REFILL * 100));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_host_is_counted_by_its_64() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..BURST {
            assert!(t.take(ip(&format!("2001:db8::{i}")), now));
        }
        assert!(!t.take(ip("2001:db8::ffff"), now));
        assert!(t.take(ip("2001:db8:0:1::1"), now));
        assert_eq!(t.tracked(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tracked_peers_are_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_PEERS as u32 {
            assert!(t.take(IpAddr::V4(i.into()), now));
        }
        assert_eq!(t.tracked(), MAX_PEERS);
        // Every tracked peer is refilling: a new one is refused.
        assert!(!t.take(ip("255.255.255.255"), now));
        assert_eq!(t.tracked(), MAX_PEERS);
        // Refilled peers are forgotten to make room.
        assert!(t.take(ip("255.255.255.255"), now + REFILL));
        assert_eq!(t.tracked(), 1);
    }
}
