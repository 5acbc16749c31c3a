//! `/metrics` with 10,000 backends (SPEC §10): the time and bytes of one
//! scrape, rendered from a running daemon's snapshots (goal < 25 ms).
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
use maglev_bin::metrics::{Format, render_as};
use maglev_core::config::{Config, ProbeKind};
use maglev_health::{Code, ProbeRecord};

const FRONTENDS: usize = 625;
/// Two pools of eight: 10,000 backends in all.
const PER_FRONTEND: usize = 16;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let yaml = daemon_yaml(FRONTENDS, PER_FRONTEND, None, model_address);
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
    for name in config.backends().keys() {
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
    let mut group = c.benchmark_group("metrics_10000_backends");
    group.sample_size(20);
    for (name, format) in [("openmetrics", Format::OpenMetrics), ("text", Format::Text)] {
        let bytes = render_as(&handle, format).len();
        eprintln!("{name}: {bytes} bytes per scrape");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| b.iter(|| render_as(&handle, format).len()));
    }
    group.finish();
    rt.block_on(daemon.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
