//! `/metrics` with 10,000 backends (SPEC §10): the time and bytes of one
//! scrape, rendered from a running daemon's snapshots (goal < 25 ms).
//!
//! ```sh
//! cargo bench -p maglev-benches --bench daemon_metrics
//! ```
//!
//! The daemon runs with VPP off and static backends, with three probe
//! results and one transition recorded per backend (what a checker that
//! has been running leaves), so every per-backend family is populated.

use std::fmt::Write as _;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maglev_bin::daemon::{Daemon, Parts, Settings};
use maglev_bin::metrics::{Format, render_as};
use maglev_core::config::ProbeKind;
use maglev_health::{Code, ProbeRecord};

/// Backends per frontend: two pools of eight.
const PER_FRONTEND: usize = 16;
const FRONTENDS: usize = 625;
const BACKENDS: usize = FRONTENDS * PER_FRONTEND;

fn backend_name(i: usize) -> String {
    format!("be-{i:05}")
}

/// Static backends (up without probing, so no probe traffic at all) in
/// frontends of a primary and a fallback pool.
fn config() -> String {
    let mut y = String::from(
        "maglev:\n  vpp:\n    lb:\n      ipv4-src-address: 192.0.2.254\n      \
         ipv6-src-address: 2001:db8::fe\n  backends:\n",
    );
    for i in 0..BACKENDS {
        let _ = writeln!(
            y,
            "    {}: {{ address: 10.{}.{}.{} }}",
            backend_name(i),
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    y.push_str("  frontends:\n");
    for f in 0..FRONTENDS {
        let base = f * PER_FRONTEND;
        let pool = |from: usize| {
            (from..from + PER_FRONTEND / 2)
                .map(|i| format!("{}: {{}}", backend_name(i)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            y,
            "    fe-{f:04}:\n      address: 198.18.{}.{}\n      protocol: tcp\n      port: 80\n      \
             pools:\n        - name: primary\n          backends: {{ {} }}\n        \
             - name: fallback\n          backends: {{ {} }}\n",
            f >> 8,
            f & 0xff,
            pool(base),
            pool(base + PER_FRONTEND / 2),
        );
    }
    y
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config()).expect("config");
    let mut settings = Settings::new(&path);
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.vpp = None;
    let daemon = rt
        .block_on(Daemon::start(settings, Parts::default()))
        .expect("daemon");
    let handle = daemon.handle().clone();
    let observer = handle.metrics().probe_observer();
    for i in 0..BACKENDS {
        let name = backend_name(i);
        for n in 0..3u64 {
            observer.probe_ended(&ProbeRecord {
                backend: &name,
                address: [10, 0, 0, 1].into(),
                kind: ProbeKind::Http,
                code: Code::L7Ok,
                duration: Duration::from_micros(300 + 700 * n),
            });
        }
        handle.metrics().backend_transition(&name, "unknown", "up");
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
