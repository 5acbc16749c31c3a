//! `/metrics` at the scale SPEC's benchmark names: 10,000 backends in 625
//! frontends of two pools, each backend with probe counters, a duration
//! histogram and a transition. The rendering holds every series once and
//! nothing else (the time it takes is a benchmark's business, not a
//! test's).

use std::fmt::Write as _;
use std::time::Duration;

use maglev_bin::daemon::{Daemon, Parts, Settings};
use maglev_bin::metrics::{Format, render, render_as};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_backends_render_every_series_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maglev.yaml");
    std::fs::write(&path, config()).unwrap();
    let mut settings = Settings::new(&path);
    settings.grpc_addr = None;
    settings.metrics_addr = None;
    settings.vpp = None;
    let daemon = Daemon::start(settings, Parts::default()).await.unwrap();
    let handle = daemon.handle().clone();

    // What a running checker would have recorded by now.
    let observer = handle.metrics().probe_observer();
    for i in 0..BACKENDS {
        let name = backend_name(i);
        for n in 0..3u64 {
            observer.probe_ended(&ProbeRecord {
                backend: &name,
                address: [10, 0, 0, 1].into(),
                kind: ProbeKind::Http,
                code: Code::L7Ok,
                duration: Duration::from_micros(300 + 700 * n + i as u64 % 5000),
            });
        }
        handle.metrics().backend_transition(&name, "unknown", "up");
    }

    let text = render(&handle);
    let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("maglev_backend_state{"), BACKENDS * 6);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("maglev_backend_state{") && l.ends_with(" 1"))
            .count(),
        BACKENDS
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("maglev_backend_state{")
                && l.contains("state=\"up\"")
                && l.ends_with(" 1"))
            .count(),
        BACKENDS,
        "every static backend is up"
    );
    assert_eq!(count("maglev_backend_health{"), BACKENDS);
    assert_eq!(count("maglev_backend_enabled{"), BACKENDS);
    assert_eq!(count("maglev_frontend_state{"), FRONTENDS);
    assert_eq!(count("maglev_frontend_pool_backend_weight{"), BACKENDS);
    assert_eq!(
        count("maglev_frontend_pool_backend_effective_weight{"),
        BACKENDS
    );
    // The primary pools carry the traffic, the fallbacks stand by.
    assert_eq!(
        text.lines()
            .filter(
                |l| l.starts_with("maglev_frontend_pool_backend_effective_weight{")
                    && l.ends_with(" 100")
            )
            .count(),
        BACKENDS / 2
    );
    assert_eq!(count("maglev_probe_total{"), BACKENDS);
    assert_eq!(count("maglev_probe_duration_seconds_count{"), BACKENDS);
    assert_eq!(count("maglev_backend_transitions_total{"), BACKENDS);
    assert!(!text.contains("maglev_vpp_connected"));
    assert!(text.ends_with("# EOF\n"));

    // The text format has the same series.
    let plain = render_as(&handle, Format::Text);
    let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples(&plain), samples(&text));

    daemon.shutdown().await;
}
