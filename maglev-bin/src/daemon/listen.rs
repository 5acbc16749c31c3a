//! Listen addresses as operators write them: `host:port` (every address
//! `host` resolves to, e.g. both loopbacks for `localhost`), `:port` (every
//! interface), or a literal socket address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

/// Binds every address `addr` names.
pub async fn bind(addr: &str) -> std::io::Result<Vec<TcpListener>> {
    let targets: Vec<SocketAddr> = match addr.strip_prefix(':') {
        Some(port) => {
            let port: u16 = port.parse().map_err(|_| invalid(addr))?;
            vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)]
        }
        None => {
            let mut v: Vec<SocketAddr> = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?
                .collect();
            v.sort();
            v.dedup();
            v
        }
    };
    if targets.is_empty() {
        return Err(invalid(addr));
    }
    let mut listeners = Vec::with_capacity(targets.len());
    // Port 0 asks for any port: every address then gets the port the first
    // one got, so `localhost:0` is one port on both loopbacks.
    let mut port = None;
    for mut target in targets {
        if target.port() == 0
            && let Some(p) = port
        {
            target.set_port(p);
        }
        let listener = TcpListener::bind(target)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{target}: {e}")))?;
        port = port.or(listener.local_addr().ok().map(|a| a.port()));
        listeners.push(listener);
    }
    Ok(listeners)
}

/// The addresses the listeners are bound to.
pub fn local_addrs(listeners: &[TcpListener]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect()
}

/// The warning a gRPC server that lets anyone write (plain, or TLS
/// without client certificates, and not `--grpc-read-only`) deserves when
/// it listens on `addrs`: `None` when every one is a loopback address
/// (only local users reach it), else the addresses and how to close it.
pub fn open_writes_warning(addrs: &[SocketAddr], tls: bool) -> Option<String> {
    let exposed: Vec<String> = addrs
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    if exposed.is_empty() {
        return None;
    }
    let how = if tls {
        "TLS without --grpc-client-ca"
    } else {
        "plain gRPC"
    };
    Some(format!(
        "gRPC on {} is {how} with writes allowed: anyone who reaches it may pause, disable, \
         reweight and reload; require client certificates (--grpc-tls-cert, --grpc-tls-key \
         and --grpc-client-ca with maglev.access.admins), or pass --grpc-read-only, or \
         listen on localhost",
        exposed.join(", ")
    ))
}

fn invalid(addr: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{addr:?} is not host:port or :port"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_port_zero_is_one_port_on_every_loopback() {
        let listeners = bind("localhost:0").await.unwrap();
        let addrs = local_addrs(&listeners);
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(addrs.iter().all(|a| a.port() == addrs[0].port()));
    }

    #[test]
    fn writable_grpc_off_loopback_is_named_with_the_fix() {
        let lo: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let lo6: SocketAddr = "[::1]:9090".parse().unwrap();
        let any: SocketAddr = "[::]:9090".parse().unwrap();
        assert_eq!(open_writes_warning(&[lo, lo6], false), None);
        let w = open_writes_warning(&[lo, any], false).unwrap();
        assert!(w.starts_with("gRPC on [::]:9090 is plain gRPC"), "{w}");
        assert!(!w.contains("127.0.0.1"), "{w}");
        assert!(
            w.contains("--grpc-client-ca") && w.contains("--grpc-read-only"),
            "{w}"
        );
        let w = open_writes_warning(&[any], true).unwrap();
        assert!(w.contains("TLS without --grpc-client-ca"), "{w}");
    }

    #[tokio::test]
    async fn bad_addresses_say_which() {
        let e = bind(":http").await.unwrap_err();
        assert!(e.to_string().contains(":http"), "{e}");
        let e = bind("no-port").await.unwrap_err();
        assert!(e.to_string().contains("no-port"), "{e}");
    }
}
