//! Planning 1,000 frontends × 16 backends: from scratch, and after one
//! backend changed state (full plan and the one frontend's plan).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use maglev_benches::{synthetic_config, synthetic_yaml};
use maglev_core::config::Config;
use maglev_core::dataplane::{DesiredState, ObservedState, observed_from};
use maglev_core::desired::{desired_all, desired_frontend};
use maglev_core::plan::{PendingFlushes, plan_all, plan_vip};
use maglev_core::state::BackendState;
use maglev_core::weights::{Serving, choose_pool};

const FRONTENDS: usize = 1000;
const BACKENDS: usize = 16;

fn planner(c: &mut Criterion) {
    let config = synthetic_config(FRONTENDS, BACKENDS);
    let all_up = |_: &str| Serving::from(BackendState::Up);
    let one_down = |b: &str| {
        Serving::from(if b == "f500b3" {
            BackendState::Down
        } else {
            BackendState::Up
        })
    };
    let no_history = |_: &str| None;
    let no_flush = PendingFlushes::new();
    let empty = ObservedState::new();
    let synced = observed_from(&desired_all(&config, all_up, no_history));

    let mut g = c.benchmark_group("plan 1000x16");
    g.bench_function("desired+plan from scratch", |b| {
        b.iter(|| {
            let desired = desired_all(&config, all_up, no_history);
            black_box(plan_all(&desired, &empty, &no_flush))
        })
    });
    g.bench_function("desired+plan_all, one backend changed", |b| {
        b.iter(|| {
            let desired = desired_all(&config, one_down, no_history);
            let ops = plan_all(&desired, &synced, &no_flush);
            assert_eq!(ops.len(), 1);
            black_box(ops)
        })
    });
    g.bench_function("desired+plan_vip, one backend changed", |b| {
        b.iter(|| {
            let fe = config.frontend("f500").unwrap();
            let active = choose_pool(fe, one_down, None);
            let desired = desired_frontend(&config, "f500", one_down, active).unwrap();
            let key = desired.key;
            let ops = plan_vip(
                key,
                &DesiredState::from([(key, desired)]),
                &synced,
                &no_flush,
            );
            assert_eq!(ops.len(), 1);
            black_box(ops)
        })
    });
    let desired = desired_all(&config, one_down, no_history);
    g.bench_function("plan_all only, one backend changed", |b| {
        b.iter(|| black_box(plan_all(&desired, &synced, &no_flush)))
    });
    g.finish();

    let yaml = synthetic_yaml(FRONTENDS, BACKENDS);
    let mut g = c.benchmark_group("config 1000x16");
    g.sample_size(10);
    g.bench_function("parse+validate", |b| {
        b.iter(|| black_box(Config::from_yaml(&yaml, "bench").unwrap()))
    });
    g.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
