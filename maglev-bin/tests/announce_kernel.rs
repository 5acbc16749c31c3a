//! maglevd's kernel routing table over netlink, in network namespaces the
//! test makes (and deletes): routes added, listed and removed for IPv4 and
//! IPv6, idempotently; a route of another protocol in the same table left
//! alone and never listed; two tables kept apart; the routes outliving
//! the `KernelTable`; a missing namespace named in the error; without
//! `CAP_NET_ADMIN` (a child run under `setpriv`), a refusal naming it.
//! What the kernel holds is read back with iproute2 (`ip route show`), not
//! with the code under test. It needs root and iproute2: without them it
//! says why it was skipped, and fails when `MAGLEV_REQUIRE_NETNS=1`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use maglev_bin::announce::kernel::KernelTable;
use maglev_bin::announce::table::RouteTable;
use maglev_core::announce::Prefix;
use maglev_core::config::AnnounceConfig;

const TABLE: u32 = 200;
const PROTOCOL: u8 = 201;

#[path = "netns_common/mod.rs"]
mod netns_common;
use netns_common::Netns;

/// What the tests ask of a namespace beyond the shared helper.
trait KernelNetns {
    fn config(&self, table: u32) -> AnnounceConfig;
    async fn open(&self, table: u32) -> KernelTable;
}

impl KernelNetns for Netns {
    fn config(&self, table: u32) -> AnnounceConfig {
        AnnounceConfig {
            table,
            protocol: PROTOCOL,
            netns: Some(self.0.clone()),
            min_interval: Duration::from_secs(10),
            vpp_grace: Duration::from_secs(5),
        }
    }

    async fn open(&self, table: u32) -> KernelTable {
        KernelTable::open(&self.config(table)).await.unwrap()
    }
}

/// A namespace, or `None` after saying why the test is skipped.
fn netns() -> Option<Netns> {
    Netns::or_skip("mgk", "the kernel table test")
}

fn p(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix {
        addr: a.parse().unwrap(),
        len: l.parse().unwrap(),
    }
}

fn set(prefixes: &[&str]) -> BTreeSet<Prefix> {
    prefixes.iter().map(|s| p(s)).collect()
}

/// Whether iproute2 shows a blackhole route of `addr` with `proto`.
fn shows(routes: &[String], addr: &str, proto: &str) -> bool {
    routes.iter().any(|l| {
        l.starts_with(&format!("blackhole {addr} ")) && l.contains(&format!(" proto {proto}"))
    })
}

/// The network namespace of every thread of this process.
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
async fn routes_are_added_listed_and_removed_idempotently() {
    let Some(ns) = netns() else { return };
    let own_ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let table = ns.open(TABLE).await;
    assert_eq!(
        table.describe(),
        format!("kernel table 200 (protocol 201) in netns {}", ns.0)
    );
    assert!(!table.in_memory());
    // The namespace was entered by a thread of its own (`netns-NAME`, gone
    // once the socket is made; another test's may be running now): every
    // other thread of this process, tokio's workers among them, is still
    // in its own namespace.
    for (thread, netns) in thread_namespaces() {
        if !thread.starts_with("netns-") {
            assert_eq!(netns, own_ns.display().to_string(), "thread {thread}");
        }
    }

    // A table that never held a route lists empty (not an error).
    assert_eq!(table.list().await.unwrap(), set(&[]));

    for prefix in ["192.0.2.1/32", "2001:db8::1/128"] {
        table.add(p(prefix)).await.unwrap();
        // Added again: nothing changes, no error.
        table.add(p(prefix)).await.unwrap();
    }
    assert_eq!(
        table.list().await.unwrap(),
        set(&["192.0.2.1/32", "2001:db8::1/128"])
    );
    let routes = ns.routes(TABLE);
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert!(shows(&routes, "192.0.2.1", "201"), "{routes:?}");
    assert!(shows(&routes, "2001:db8::1", "201"), "{routes:?}");
    // Nothing went to the main table.
    let main = ns.routes(254);
    assert!(!main.iter().any(|l| l.contains("192.0.2.1")), "{main:?}");

    for prefix in ["192.0.2.1/32", "2001:db8::1/128"] {
        table.remove(p(prefix)).await.unwrap();
        // Removed again: already gone is not an error.
        table.remove(p(prefix)).await.unwrap();
    }
    assert_eq!(table.list().await.unwrap(), set(&[]));
    assert_eq!(ns.routes(TABLE), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_of_another_protocol_is_never_listed_changed_or_removed() {
    let Some(ns) = netns() else { return };
    // The operator's own routes in the same table, protocol static.
    let table_arg = TABLE.to_string();
    for (family, prefix) in [("-4", "192.0.2.9/32"), ("-6", "2001:db8::9/128")] {
        ns.ip(&[
            family,
            "route",
            "add",
            "blackhole",
            prefix,
            "table",
            &table_arg,
            "proto",
            "static",
        ])
        .unwrap();
    }
    let table = ns.open(TABLE).await;
    assert_eq!(table.list().await.unwrap(), set(&[]));

    table.add(p("192.0.2.1/32")).await.unwrap();
    table.add(p("2001:db8::1/128")).await.unwrap();
    assert_eq!(
        table.list().await.unwrap(),
        set(&["192.0.2.1/32", "2001:db8::1/128"])
    );

    for prefix in ["192.0.2.9/32", "2001:db8::9/128"] {
        // Removing a prefix only another protocol holds: nothing of ours
        // to remove, so Ok, and theirs stays.
        table.remove(p(prefix)).await.unwrap();
        // Adding it: an error naming the prefix and the table; theirs is
        // not taken over.
        let e = table.add(p(prefix)).await.unwrap_err();
        assert_eq!(e.action, format!("add {prefix}"));
        assert!(e.table.contains("kernel table 200"), "{e}");
        assert!(e.message.contains("another protocol"), "{e}");
    }
    let routes = ns.routes(TABLE);
    assert!(shows(&routes, "192.0.2.9", "static"), "{routes:?}");
    assert!(shows(&routes, "2001:db8::9", "static"), "{routes:?}");
    assert!(!shows(&routes, "192.0.2.9", "201"), "{routes:?}");

    // Ours go, theirs stay.
    table.remove(p("192.0.2.1/32")).await.unwrap();
    table.remove(p("2001:db8::1/128")).await.unwrap();
    assert_eq!(table.list().await.unwrap(), set(&[]));
    let routes = ns.routes(TABLE);
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert!(shows(&routes, "192.0.2.9", "static"), "{routes:?}");
    assert!(shows(&routes, "2001:db8::9", "static"), "{routes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tables_do_not_mix() {
    let Some(ns) = netns() else { return };
    // 1000 is past 255: only the RTA_TABLE attribute can name it (and
    // 1000 & 0xff is 232, which must stay empty).
    let a = ns.open(TABLE).await;
    let b = ns.open(1000).await;
    a.add(p("192.0.2.1/32")).await.unwrap();
    a.add(p("192.0.2.5/32")).await.unwrap();
    b.add(p("192.0.2.2/32")).await.unwrap();
    b.add(p("192.0.2.5/32")).await.unwrap();
    b.add(p("2001:db8::2/128")).await.unwrap();
    assert_eq!(
        a.list().await.unwrap(),
        set(&["192.0.2.1/32", "192.0.2.5/32"])
    );
    assert_eq!(
        b.list().await.unwrap(),
        set(&["192.0.2.2/32", "192.0.2.5/32", "2001:db8::2/128"])
    );
    let in_b = ns.routes(1000);
    assert_eq!(in_b.len(), 3, "{in_b:?}");
    assert_eq!(ns.routes(232), Vec::<String>::new());

    // The prefix both hold leaves one table only.
    b.remove(p("192.0.2.5/32")).await.unwrap();
    assert_eq!(
        a.list().await.unwrap(),
        set(&["192.0.2.1/32", "192.0.2.5/32"])
    );
    assert_eq!(
        b.list().await.unwrap(),
        set(&["192.0.2.2/32", "2001:db8::2/128"])
    );
    assert!(shows(&ns.routes(TABLE), "192.0.2.5", "201"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_outlive_the_table_and_dropping_it_ends_its_task() {
    let Some(ns) = netns() else { return };
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let table = ns.open(TABLE).await;
    assert_eq!(metrics.num_alive_tasks(), before + 1);
    table.add(p("192.0.2.1/32")).await.unwrap();
    table.add(p("2001:db8::1/128")).await.unwrap();
    drop(table);

    // The connection task ends (it is aborted; poll until it is gone).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the netlink task outlived its KernelTable"
        );
        tokio::task::yield_now().await;
    }

    // The routes are kernel state: a new table (a restarted maglevd)
    // finds them.
    let routes = ns.routes(TABLE);
    assert!(shows(&routes, "192.0.2.1", "201"), "{routes:?}");
    let again = ns.open(TABLE).await;
    assert_eq!(
        again.list().await.unwrap(),
        set(&["192.0.2.1/32", "2001:db8::1/128"])
    );
}

#[tokio::test]
async fn a_missing_namespace_is_an_error_naming_it() {
    // Needs no root: the namespace is looked for before anything else.
    let name = format!("mgk{}-absent", std::process::id());
    let config = AnnounceConfig {
        table: TABLE,
        protocol: PROTOCOL,
        netns: Some(name.clone()),
        min_interval: Duration::from_secs(10),
        vpp_grace: Duration::from_secs(5),
    };
    let e = KernelTable::open(&config).await.unwrap_err();
    assert_eq!(e.action, "open");
    assert_eq!(
        e.table,
        format!("kernel table 200 (protocol 201) in netns {name}")
    );
    assert!(e.message.contains(&format!("netns {name:?}")), "{e}");
    assert!(e.message.contains("no such network namespace"), "{e}");
    assert!(e.message.contains(&format!("/var/run/netns/{name}")), "{e}");
}

/// Where the child of [`without_cap_net_admin_a_change_says_what_is_needed`]
/// finds its namespace.
const CHILD_NETNS: &str = "MAGLEV_TEST_KERNEL_CHILD_NETNS";

#[test]
fn without_cap_net_admin_a_change_says_what_is_needed() {
    let Some(ns) = netns() else { return };
    // This test binary again, running only the child below, as root
    // without CAP_NET_ADMIN (dropped from the bounding set before exec).
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--bounding-set=-net_admin", "--inh-caps=-net_admin", "--"])
        .arg(exe)
        .args(["--exact", "child_without_cap_net_admin", "--nocapture"])
        .env(CHILD_NETNS, &ns.0)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var("MAGLEV_REQUIRE_NETNS").as_deref() != Ok("1"),
                "MAGLEV_REQUIRE_NETNS=1 but setpriv (util-linux) cannot run: {e}"
            );
            return eprintln!("skipped: setpriv (util-linux) cannot run: {e}");
        }
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    // Nothing was added.
    assert_eq!(ns.routes(TABLE), Vec::<String>::new());
}

/// Run by the test above, in its namespace, without CAP_NET_ADMIN; on its
/// own (no namespace named by the parent) it has nothing to run in.
#[tokio::test]
async fn child_without_cap_net_admin() {
    use maglev_bin::announce::privilege::{self, Capability};

    let Ok(name) = std::env::var(CHILD_NETNS) else {
        // Not run by the parent: nothing to run in.
        return eprintln!("skipped: run only by its parent test");
    };
    assert!(!privilege::has_net_admin());
    let config = AnnounceConfig {
        table: TABLE,
        protocol: PROTOCOL,
        netns: Some(name.clone()),
        min_interval: Duration::from_secs(10),
        vpp_grace: Duration::from_secs(5),
    };
    let refused = privilege::check(&config).unwrap_err();
    assert_eq!(refused.missing, [Capability::NetAdmin]);
    assert!(
        refused
            .to_string()
            .starts_with("maglev.announce needs CAP_NET_ADMIN (to change routes)"),
        "{refused}"
    );

    // Entering the namespace (CAP_SYS_ADMIN) and reading work; a change
    // is refused by the kernel, and the error says why and what.
    let table = KernelTable::open(&config).await.unwrap();
    assert_eq!(table.list().await.unwrap(), set(&[]));
    let e = table.add(p("192.0.2.1/32")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "kernel table 200 (protocol 201) in netns {name}: add 192.0.2.1/32: \
             Operation not permitted (EPERM): changing routes needs CAP_NET_ADMIN"
        )
    );
}
