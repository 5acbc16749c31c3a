//! The Maglev table end to end: a dry run's ops and bucket movement equal
//! what the following real sync does and what the simulator then holds;
//! the table the daemon reports is the simulator's; a table length change
//! recreates the VIP, and the dry run says so first.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::{World, until, w};
use maglev_bin::daemon::WeightChange;
use maglev_core::maglev::MaglevTable;

/// Backends and frontends, after [`common::HEAD`]; `{len}` is the table.
const CONFIG: &str = r#"
  backends:
    a: { address: 127.0.52.1, healthcheck: web }
    b: { address: 127.0.52.2, healthcheck: web }
    c: { address: 127.0.52.3, healthcheck: web }
  frontends:
    web:
      address: 192.0.2.52
      protocol: tcp
      port: 80
      flow-table-length: {len}
      pools:
        - name: primary
          backends: { a: {}, b: {}, c: { weight: 50 } }
"#;

const VIP: &str = "192.0.2.52";

async fn world() -> World {
    let mut world = World::new(52, 3).await;
    world.write_body(&CONFIG.replace("{len}", "2048"));
    world.start(world.settings()).await;
    until("every backend carries traffic", || {
        world.weights(VIP) == w(&[("127.0.52.1", 100), ("127.0.52.2", 100), ("127.0.52.3", 50)])
    })
    .await;
    world
}

/// The simulator's buckets per AS of the VIP, and its table.
fn sim_table(world: &World) -> (BTreeMap<IpAddr, u32>, Vec<Option<IpAddr>>) {
    let vip = world
        .vips()
        .into_iter()
        .find(|v| v.key.address.to_string() == VIP)
        .expect("the VIP");
    let mut counts = BTreeMap::new();
    for (a, _) in &vip.ases {
        counts.insert(a.parse().unwrap(), 0);
    }
    for b in vip.buckets.iter().flatten() {
        *counts.entry(*b).or_insert(0) += 1;
    }
    (counts, vip.buckets)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_is_what_the_sync_then_does() {
    let world = world().await;
    let h = world.handle();

    // The table the daemon reports is the simulator's, with no drift.
    assert!(h.sync(None).await.unwrap().ops.is_empty());
    let (counts, buckets) = sim_table(&world);
    assert_eq!(buckets.len(), 2048);
    // The tables are built off the reconciler's path, a moment later.
    until("the table of the read is predicted", || {
        h.table("web")
            .is_some_and(|t| t.drift == Some(0) && t.summary.buckets == counts)
    })
    .await;
    let table = h.table("web").unwrap();
    let rebuilt = MaglevTable::build(
        world
            .weights(VIP)
            .iter()
            .map(|(a, wt)| (a.parse::<IpAddr>().unwrap(), *wt)),
        2048,
    )
    .unwrap();
    assert_eq!(rebuilt.buckets(), &buckets[..]);
    assert_eq!(table.summary.fingerprint, rebuilt.fingerprint());

    // Someone else changes a weight in VPP: the dry run plans the repair,
    // sends nothing, and the sync then does exactly that.
    let key = world.vips()[0].key;
    let stray = maglev_vpp::lb::ops::weight_request(&key, ip("127.0.52.1"), 10, false);
    assert_eq!(world.vpp.sim.with_model(|m| m.set_weight(&stray)), 0);
    let plan = h.plan_sync(Some("web"), None).await.unwrap();
    assert_eq!(plan.ops.len(), 1, "{:?}", plan.ops);
    assert_eq!(
        world.weights(VIP)[0],
        ("127.0.52.1".to_owned(), 10),
        "nothing sent"
    );
    let done = h.sync(Some("web")).await.unwrap();
    assert_eq!(done, plan, "the sync did what the dry run said");
    let [change] = &plan.tables[..] else {
        panic!("{:?}", plan.tables)
    };
    assert!(change.movement.moved > 0 && !change.movement.recreated);
    let (counts, _) = sim_table(&world);
    assert_eq!(change.after.as_ref().unwrap().buckets, counts);

    // A weight change's dry run: the movement and the shares after are
    // what the simulator holds once it is made for real.
    let drain = WeightChange {
        frontend: "web".into(),
        pool: "primary".into(),
        backend: "c".into(),
        weight: 0,
        flush: true,
    };
    let before = sim_table(&world).1;
    let plan = h.plan_sync(None, Some(&drain)).await.unwrap();
    assert_eq!(
        plan.ops.iter().map(|op| op.to_string()).collect::<Vec<_>>(),
        ["set as 127.0.52.3 weight 0 on 192.0.2.52/32 tcp/80 flush"]
    );
    assert_eq!(world.weights(VIP)[2], ("127.0.52.3".to_owned(), 50));
    h.set_weight("web", "primary", "c", 0, true).await.unwrap();
    let (counts, after) = sim_table(&world);
    let [change] = &plan.tables[..] else {
        panic!("{:?}", plan.tables)
    };
    assert_eq!(change.after.as_ref().unwrap().buckets, counts);
    let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert_eq!(change.movement.moved, moved);
    let from_c: u32 = change
        .movement
        .transfers
        .iter()
        .filter(|((from, _), _)| *from == Some(ip("127.0.52.3")))
        .map(|(_, n)| n)
        .sum();
    // All of c's buckets go; Maglev also shuffles a few between a and b.
    let c_had = before
        .iter()
        .filter(|b| **b == Some(ip("127.0.52.3")))
        .count();
    assert_eq!(from_c as usize, c_had, "every bucket of c moved");
    assert!(moved >= c_had);
    assert!(
        world
            .flushes()
            .contains(&(VIP.to_owned(), "127.0.52.3".to_owned()))
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_table_length_recreates_the_vip_and_the_dry_run_says_so() {
    let world = world().await;
    let h = world.handle();
    world.write_body(&CONFIG.replace("{len}", "auto"));
    assert!(h.reload().await.ok());
    // The new VIP comes first, its ASes in the ops after: wait for both.
    until("web is recreated with the auto length and its ASes", || {
        world.vips().first().is_some_and(|v| v.buckets.len() == 512)
            && world.weights(VIP)
                == w(&[("127.0.52.1", 100), ("127.0.52.2", 100), ("127.0.52.3", 50)])
    })
    .await;
    until("auto: 3 members × 100 → a table of 512", || {
        h.table("web").is_some_and(|t| t.summary.len == 512)
    })
    .await;

    // Someone else recreates the VIP with VPP's default length: the dry run
    // says the sync will recreate it (every bucket moves), and the sync does.
    use maglev_vpp::lb::ops::{as_request, vip_request};
    let key = world.vips()[0].key;
    let ases = world.weights(VIP);
    world.vpp.sim.with_model(|m| {
        for (a, _) in &ases {
            assert_eq!(m.add_del_as(&as_request(&key, ip(a), 0, true, true), 0), 0);
        }
        let encap = maglev_core::dataplane::Encap::Gre4;
        assert_eq!(m.add_del_vip(&vip_request(&key, encap, false, true), 0), 0);
        assert_eq!(m.add_del_vip(&vip_request(&key, encap, false, false), 0), 0);
        for (a, wt) in &ases {
            assert_eq!(
                m.add_del_as(&as_request(&key, ip(a), *wt, false, false), 0),
                0
            );
        }
    });
    assert_eq!(world.vips()[0].buckets.len(), 1024);
    let plan = h.plan_sync(None, None).await.unwrap();
    let [change] = &plan.tables[..] else {
        panic!("{:?}", plan.tables)
    };
    assert!(change.movement.recreated);
    assert_eq!(change.movement.moved, 512);
    assert_eq!(change.before.as_ref().unwrap().len, 1024);
    assert_eq!(change.after.as_ref().unwrap().len, 512);
    assert!(
        plan.ops
            .iter()
            .any(|op| op.to_string().contains("table 512")),
        "{:?}",
        plan.ops
    );
    let done = h.sync(None).await.unwrap();
    assert_eq!(done, plan);
    assert_eq!(world.vips()[0].buckets.len(), 512);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_of_a_reload_that_recreates_a_vip() {
    let mut world = World::new(53, 3).await;
    let config = CONFIG.replace("52", "53");
    world.write_body(&config.replace("{len}", "2048"));
    let mut settings = world.settings();
    settings.grpc_addr = Some("127.0.0.1:0".into());
    world.start(settings).await;
    let addr = world.daemon().grpc_addrs()[0].to_string();
    let (path, port) = (world.config_path(), world.port.to_string());
    let write = |body: &str| {
        let yaml = format!("{}{body}", common::HEAD).replace("{port}", &port);
        std::fs::write(&path, yaml).unwrap()
    };
    let check = |body: &str| {
        write(body);
        let (path, addr) = (path.clone(), addr.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_maglevd"))
                .args(["--check", "--grpc-addr", &addr, "--config"])
                .arg(path)
                .output()
                .unwrap()
        })
    };
    let same = check(&config.replace("{len}", "2048")).await.unwrap();
    assert!(same.status.success());
    assert_eq!(String::from_utf8_lossy(&same.stderr), "");
    let bigger = check(&config.replace("{len}", "4096")).await.unwrap();
    assert!(bigger.status.success(), "a warning, not an error");
    let err = String::from_utf8(bigger.stderr).unwrap();
    assert_eq!(
        err,
        "warning: frontend web: its new-flow table goes from 2048 to 4096 buckets: a reload \
         recreates its VIP, so every flow re-hashes and established flows lose their sticky entries\n"
    );
    // A file without the frontend: the deletion is named, with the limit.
    let none = check("  backends:\n    a: { address: 127.0.53.1 }\n")
        .await
        .unwrap();
    assert!(none.status.success(), "a warning, not an error");
    assert_eq!(
        String::from_utf8(none.stderr).unwrap(),
        "warning: the file has no frontends: a reload of it deletes every VIP the daemon runs\n\
         warning: frontend web: VIP 192.0.2.53/32 tcp/80 is deleted: its flows are dropped\n\
         warning: a reload deletes 1 of the 1 VIPs the daemon runs; the daemon refuses one that \
         deletes more than its --reload-delete-limit (default 50%) unless forced\n"
    );
    // No daemon: the check says it could not compare.
    world.daemon.take().unwrap().shutdown().await;
    let out = check(&config.replace("{len}", "4096")).await.unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("recreations not checked"), "{stdout}");
    world.stop().await;
}
