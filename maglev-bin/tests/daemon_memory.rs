//! The daemon's memory budget (`docs/performance.md`, "Memory"): the heap
//! a daemon holds once it has synced 1,000 frontends × 16 static backends
//! stays under the budget written down per backend and per VIP.
//!
//! The heap is counted by this test binary's global allocator (`cap`) (live bytes
//! asked of malloc, not RSS: what glibc keeps on top is measured by the
//! release runs in the docs). The simulator runs in this process too, so
//! the figure is a difference: a first daemon programs the simulator and
//! stops; the heap is counted; a second daemon starts against the
//! programmed simulator, syncs (finding nothing to change, so the simulator
//! grows by nothing) and the heap is counted again.

mod common;

use std::alloc::System;
use std::fmt::Write as _;

use cap::Cap;
use common::{World, until};

/// The system allocator, counting the bytes live (no limit).
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const FRONTENDS: usize = 1_000;
const PER_FRONTEND: usize = 16;
const BACKENDS: usize = FRONTENDS * PER_FRONTEND;

/// The budget of `docs/performance.md` ("Memory"), in heap bytes, with
/// about 10 % of margin over what was measured: per backend (the checker's
/// slot and status, about 1,320; its share of the config, about 150) and
/// per VIP (the belief of VPP, the predicted table, the planned weights,
/// frontend state, counters, and the simulator's reply buffer for the
/// second daemon's dump, which this count cannot tell from the daemon's).
const PER_BACKEND: usize = 1_600;
const PER_VIP: usize = 12_000;

/// N frontends of a primary pool of 8 static backends and a fallback of 8,
/// every backend its own (after [`common::HEAD`]).
fn body() -> String {
    let mut y = String::from("  backends:\n");
    for n in 0..BACKENDS {
        let _ = writeln!(
            y,
            "    f{}b{}: {{ address: 10.{}.{}.{} }}",
            n / PER_FRONTEND,
            n % PER_FRONTEND,
            n >> 16,
            (n >> 8) & 0xff,
            n & 0xff
        );
    }
    y.push_str("  frontends:\n");
    for f in 0..FRONTENDS {
        let _ = writeln!(
            y,
            "    f{f}:\n      address: 198.18.{}.{}\n      protocol: tcp\n      port: 80\n      pools:",
            f / 250,
            f % 250 + 1
        );
        for (pool, range) in [("primary", 0..8), ("fallback", 8..16)] {
            let _ = write!(y, "        - name: {pool}\n          backends: {{");
            for b in range {
                let _ = write!(y, " f{f}b{b}: {{}},");
            }
            y.push_str(" }\n");
        }
    }
    y
}

/// Starts a daemon and waits for a full sync (one it asks for, after the
/// one of its start) and its predicted tables; returns the ops that sync
/// sent.
async fn synced_daemon(world: &mut World) -> usize {
    world.start(world.settings()).await;
    // On a loaded machine a dump this size may outlast the client's
    // patience and the link is opened again: a memory test asks again.
    let mut attempts = 0;
    let report = loop {
        until("the daemon is connected to VPP", || {
            world.handle().vpp().is_ok()
        })
        .await;
        match world.handle().sync(None).await {
            Ok(report) => break report,
            Err(e) if attempts < 3 => {
                attempts += 1;
                eprintln!("sync failed ({e}); asking again");
            }
            Err(e) => panic!("sync failed {attempts} times, the last with: {e}"),
        }
    };
    until("every VIP has its predicted table", || {
        let h = world.handle();
        (0..FRONTENDS).all(|f| h.table(&format!("f{f}")).is_some())
    })
    .await;
    report.ops.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heap_at_1000_frontends_x_16_backends_is_within_the_budget() {
    let mut world = World::new(140, 1).await;
    world.write_body(&body());

    // The first daemon programs the simulator.
    synced_daemon(&mut world).await;
    let held_by_vpp = world.vpp.sim.with_model(|m| {
        m.vips()
            .filter(|(_, v)| v.used)
            .map(|(_, v)| v.ases.iter().flatten().filter(|a| a.used).count())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        held_by_vpp,
        vec![PER_FRONTEND; FRONTENDS],
        "the simulator holds it all"
    );
    if let Some(d) = world.daemon.take() {
        d.shutdown().await;
    }
    let before = ALLOCATOR.allocated();

    // The second finds it programmed: its heap is the daemon's own.
    assert_eq!(synced_daemon(&mut world).await, 0, "nothing left to change");
    let held = ALLOCATOR.allocated().saturating_sub(before);
    eprintln!(
        "heap held by a synced daemon at {FRONTENDS} x {PER_FRONTEND}: {held} bytes \
         ({} per backend)",
        held / BACKENDS
    );
    let budget = BACKENDS * PER_BACKEND + FRONTENDS * PER_VIP;
    assert!(
        held <= budget,
        "the daemon holds {held} bytes, over its budget of {budget} \
         ({PER_BACKEND} per backend, {PER_VIP} per VIP)"
    );
    world.stop().await;
}
