//! Probes bound to a network namespace. The test makes two namespaces
//! joined by a veth pair (192.0.2.1 and 192.0.2.2, TEST-NET-1, which exist
//! only inside them) and a backend inside the second; the probes run in
//! the first. It needs root and iproute2: without them it says why it was
//! skipped, and fails when `MAGLEV_REQUIRE_NETNS=1`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::*;
use maglev_health::Code;
use maglev_health::netns::Sockets;
use maglev_health::probe::{self, LocalCause, ProbeEnv};
use socket2::{Domain, Protocol, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const PROBE_ADDR: &str = "192.0.2.1/24";
const BACKEND: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SILENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

/// A namespace made for this test, deleted on drop.
struct Netns(String);

impl Netns {
    fn add(name: String) -> Result<Netns, String> {
        ip(&["netns", "add", &name])?;
        Ok(Netns(name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The two namespaces with the veth pair between them, addressed and up.
fn topology() -> Result<(Netns, Netns), String> {
    let pid = std::process::id();
    let probe_ns = Netns::add(format!("mh{pid}p"))?;
    let backend_ns = Netns::add(format!("mh{pid}b"))?;
    let (p, b) = (probe_ns.0.as_str(), backend_ns.0.as_str());
    ip(&[
        "-n", p, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b,
    ])?;
    ip(&["-n", p, "addr", "add", PROBE_ADDR, "dev", "veth0"])?;
    ip(&[
        "-n",
        b,
        "addr",
        "add",
        &format!("{BACKEND}/24"),
        "dev",
        "veth1",
    ])?;
    for (ns, dev) in [(p, "veth0"), (b, "veth1"), (p, "lo"), (b, "lo")] {
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    Ok((probe_ns, backend_ns))
}

fn skip(reason: &str) {
    assert!(
        std::env::var("MAGLEV_REQUIRE_NETNS").as_deref() != Ok("1"),
        "MAGLEV_REQUIRE_NETNS=1 but the netns test cannot run: {reason}"
    );
    eprintln!("skipped: the netns test cannot run here: {reason}");
}

/// The network namespace of every thread of this process, by thread name.
fn thread_namespaces() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if let Ok(ns) = std::fs::read_link(path.join("ns/net")) {
            out.push((comm.trim().to_owned(), ns.display().to_string()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_run_inside_the_namespace_and_daemon_threads_stay_out() {
    let (probe_ns, backend_ns) = match topology() {
        Ok(t) => t,
        Err(reason) => return skip(&reason),
    };
    let own_ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();

    // The backend: a listener created inside the backend namespace.
    let backend_sockets = Sockets::in_netns(&backend_ns.0);
    let s = backend_sockets
        .socket(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .await
        .unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&SocketAddr::new(IpAddr::V4(BACKEND), 8080).into())
        .unwrap();
    s.listen(16).unwrap();
    let listener = TcpListener::from_std(s.into()).unwrap();
    let server = serve(listener, |mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
            .await;
    });

    // Datagram ICMP sockets are allowed in the probe namespace only, so
    // both kinds of ICMP socket are exercised (the host test uses raw ones
    // when running as root).
    let sysctl = Command::new("ip")
        .args([
            "netns",
            "exec",
            &probe_ns.0,
            "sysctl",
            "-qw",
            "net.ipv4.ping_group_range=0 2147483647",
        ])
        .status();
    let dgram = matches!(sysctl, Ok(s) if s.success());

    let env = ProbeEnv::new().with_sockets(Sockets::in_netns(&probe_ns.0));
    let backend = IpAddr::V4(BACKEND);

    let mut p = http_probe(8080);
    p.response_regex = Some("OK".into());
    let r = probe::build(&http_check(p, LONG), &env)
        .unwrap()
        .probe(backend)
        .await;
    assert_eq!(r.code, Code::L7Ok, "{r}");
    assert_eq!(server.accepted(), 1);

    let r = probe::build(&tcp_check(8080, None, LONG), &env)
        .unwrap()
        .probe(backend)
        .await;
    assert_eq!(r.code, Code::L4Ok, "{r}");

    let r = probe::build(&icmp_check(LONG), &env)
        .unwrap()
        .probe(backend)
        .await;
    assert_eq!(r.code, Code::L4Ok, "{r}");
    if dgram {
        assert!(r.detail.ends_with("(datagram socket)"), "{r}");
    }

    // Nobody has 192.0.2.3: no reply (or, later, host unreachable).
    let r = probe::build(&icmp_check(Duration::from_millis(500)), &env)
        .unwrap()
        .probe(IpAddr::V4(SILENT))
        .await;
    assert!(matches!(r.code, Code::L4Tout | Code::L4Con), "{r}");

    // The probe namespace is deleted and made again, empty: the namespace
    // thread follows the name into the new one, where 192.0.2.2 is not
    // reachable (no interface is up), so the probe fails at once.
    let name = probe_ns.0.clone();
    drop(probe_ns);
    let probe_ns = Netns::add(name).unwrap();
    let r = probe::build(&tcp_check(8080, None, LONG), &env)
        .unwrap()
        .probe(backend)
        .await;
    assert_eq!(r.code, Code::L4Con, "{r}");
    drop(probe_ns);
    let r = probe::build(&tcp_check(8080, None, LONG), &env)
        .unwrap()
        .probe(backend)
        .await;
    assert_eq!(r.code, Code::SockErr, "{r}");
    assert!(r.detail.contains("No such file or directory"), "{r}");

    // Only the namespace threads moved.
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        own_ns
    );
    let own = own_ns.display().to_string();
    let threads = thread_namespaces();
    assert!(
        threads.iter().any(|(name, _)| name.starts_with("netns-")),
        "{threads:?}"
    );
    for (name, ns) in &threads {
        if !name.starts_with("netns-") {
            assert_eq!(ns, &own, "thread {name} changed namespace");
        }
    }
}

#[tokio::test]
async fn a_namespace_that_cannot_be_entered_is_sockerr_with_the_reason() {
    let env = ProbeEnv::new().with_sockets(Sockets::in_netns("maglev-test-no-such-netns"));
    let target = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for check in [
        http_check(http_probe(80), LONG),
        tcp_check(80, None, LONG),
        icmp_check(LONG),
    ] {
        let r = probe::build(&check, &env).unwrap().probe(target).await;
        assert_eq!(r.code, Code::SockErr, "{r}");
        // Ours, not the backend's: the checker holds its state.
        assert_eq!(r.could_not_run(), Some(LocalCause::Netns), "{r}");
        assert!(
            r.detail
                .contains("enter netns \"maglev-test-no-such-netns\": No such file or directory"),
            "{r}"
        );
    }
}
