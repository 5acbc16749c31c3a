//! The checker's memory per backend, guarded so it does not grow back
//! (issue 25: 160,000 backends in a maglevd of at most 150 MB). A counting
//! allocator (`cap`) measures the heap a checker keeps per static backend; the
//! published status's size is checked too.

use std::alloc::System;
use std::fmt::Write as _;

use cap::Cap;
use maglev_core::config::Config;
use maglev_health::checker::Checker;
use maglev_health::status::BackendStatus;

/// The system allocator, counting the bytes live (no limit).
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Static backends measured: enough that the fixed costs vanish.
const N: usize = 20_000;

/// The heap a checker keeps per static backend (requested bytes, without
/// the allocator's own overhead), after its start: 396 after issue 25's
/// cuts (484 with only the boxes and the shared history; the bench row
/// `benches/benches/health.rs` `state-file` measured 920 bytes of RSS a
/// backend before them).
const MAX_BYTES_A_BACKEND: usize = 420;

/// `N` static backends `s0…` on 10.x.y.z.
fn config() -> Config {
    let mut y = String::from("maglev:\n  backends:\n");
    for i in 0..N {
        let _ = writeln!(
            y,
            "    s{i}: {{ address: 10.{}.{}.{} }}",
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    Config::from_yaml(&y, "memory.yaml").unwrap()
}

#[test]
fn a_published_status_stays_small() {
    // Rarely set parts (damping, a blocked spell) are boxed.
    let size = size_of::<BackendStatus>();
    assert!(size <= 160, "BackendStatus is {size} bytes");
}

#[test]
fn a_static_backend_costs_a_few_hundred_bytes_of_heap() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = config();
    let per_backend = runtime.block_on(async {
        let before = ALLOCATOR.allocated();
        let checker = Checker::start(&config).unwrap();
        let after = ALLOCATOR.allocated();
        assert_eq!(checker.snapshot().len(), N);
        checker.shutdown().await;
        after.saturating_sub(before) / N
    });
    println!("{per_backend} bytes a static backend");
    assert!(
        per_backend <= MAX_BYTES_A_BACKEND,
        "{per_backend} bytes a static backend (at most {MAX_BYTES_A_BACKEND})"
    );
}
