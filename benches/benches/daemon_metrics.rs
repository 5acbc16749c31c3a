//! `/metrics` with 10,000 backends (SPEC §10): the time and bytes of one
//! scrape, rendered from a running daemon's snapshots (goal < 25 ms), for
//! each set: the default of `/metrics`, the detail of `/metrics/detail`,
//! and both (`--metrics-detail`). `MAGLEV_BENCH_FRONTENDS` changes the
//! number of frontends of 16 backends (625 by default; 10000 for the
//! issue-25 scale), and `MAGLEV_BENCH_STATIC=1` records no probe (static
//! backends, as the issue-25 configs have). Before criterion runs, each
//! set's bytes and the CPU time of one rendering (the thread's run time
//! from `/proc/thread-self/schedstat`, which a loaded machine does not
//! inflate as it does wall time) are printed.
//!
//! ```sh
//! cargo bench -p maglev-benches --bench daemon_metrics
//! ```
//!
//! The daemon runs with VPP off and static backends (`maglev_benches::daemon_yaml`), with three probe
//! results and one transition recorded per backend (what a checker that
//! has been running leaves), so every per-backend family is populated.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maglev_benches::{daemon_yaml, model_address};
use maglev_bin::daemon::{Daemon, Parts, Settings};
use maglev_bin::metrics::{Families, Format, render_families};
use maglev_core::config::{Config, ProbeKind};
use maglev_health::{Code, ProbeRecord};

/// Frontends unless `MAGLEV_BENCH_FRONTENDS` says otherwise.
const FRONTENDS: usize = 625;
/// Two pools of eight: 10,000 backends in all.
const PER_FRONTEND: usize = 16;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let frontends = std::env::var("MAGLEV_BENCH_FRONTENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FRONTENDS);
    let yaml = daemon_yaml(frontends, PER_FRONTEND, None, model_address);
    let config = Config::from_yaml(&yaml, "bench").expect("config");
    let mut settings = Settings::new("bench.yaml");
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.vpp = None;
    let daemon = rt
        .block_on(Daemon::start_with(
            settings,
            Parts::default(),
            config.clone(),
        ))
        .expect("daemon");
    let handle = daemon.handle().clone();
    let observer = handle.metrics().probe_observer();
    let probed = std::env::var_os("MAGLEV_BENCH_STATIC").is_none();
    for name in config.backends().keys().filter(|_| probed) {
        for n in 0..3u64 {
            observer.probe_ended(&ProbeRecord {
                backend: name,
                address: [10, 0, 0, 1].into(),
                kind: ProbeKind::Http,
                code: Code::L7Ok,
                duration: Duration::from_micros(300 + 700 * n),
            });
        }
        handle.metrics().backend_transition(name, "unknown", "up");
    }
    let mut group = c.benchmark_group(format!("metrics_{}_backends", frontends * PER_FRONTEND));
    group.sample_size(20);
    for (name, families, format) in [
        ("default", Families::Default, Format::OpenMetrics),
        ("detail", Families::Detail, Format::OpenMetrics),
        ("all_openmetrics", Families::All, Format::OpenMetrics),
        ("all_text", Families::All, Format::Text),
    ] {
        let bytes = render_families(&handle, format, families).len();
        let cpu = cpu_per_rendering(|| render_families(&handle, format, families).len());
        eprintln!("{name}: {bytes} bytes per scrape, {cpu:.1} ms CPU per rendering");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| render_families(&handle, format, families).len())
        });
    }
    group.finish();
    rt.block_on(daemon.shutdown());
}

/// This thread's time on a CPU so far, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The CPU milliseconds of one call of `f`, the mean of five.
fn cpu_per_rendering(f: impl Fn() -> usize) -> f64 {
    let start = thread_cpu_nanos();
    for _ in 0..5 {
        std::hint::black_box(f());
    }
    (thread_cpu_nanos() - start) as f64 / 5.0 / 1e6
}

criterion_group!(benches, bench);
criterion_main!(benches);
