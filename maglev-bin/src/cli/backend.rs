//! What `show backend` and the backend lists print: a backend's state,
//! health, damping, probes held and slow start.

use maglev_core::slow_start;

use super::exec::dur;
use super::overrides::{intent_text, weight_override_text};
use super::render::{self, Block, Cell, Paint, Style, Table};
use crate::grpc::proto;

pub(super) fn health(b: &proto::BackendInfo) -> String {
    if b.healthcheck.is_empty() {
        "-".to_owned()
    } else {
        format!("{}/{}", b.health, (b.rise + b.fall).saturating_sub(1))
    }
}

/// Whether flap damping holds `b` at weight 0.
pub(super) fn suppressed(b: &proto::BackendInfo) -> bool {
    b.damping.as_ref().is_some_and(|d| d.suppressed)
}

/// A backend's state cell: `up (suppressed)` painted like `down` while
/// flap damping holds it at weight 0, else the plain state.
pub(super) fn backend_state(b: &proto::BackendInfo) -> Cell {
    member_state(&b.state, suppressed(b), None)
}

/// A pool member's state cell: `up (suppressed)` painted like `down`
/// while flap damping holds it, `up (slow start 4/10)` while it ramps to
/// its configured weight, else the state alone.
pub(super) fn member_state(state: &str, suppressed: bool, slow_start_step: Option<u32>) -> Cell {
    if suppressed {
        Cell {
            text: format!("{state} (suppressed)"),
            paint: Paint::state("down"),
        }
    } else if let Some(step) = slow_start_step {
        Cell {
            text: format!("{state} (slow start {step}/{})", slow_start::STEPS),
            paint: Paint::state(state),
        }
    } else {
        Cell::state(state)
    }
}

/// `show backend`'s damping line: while suppressed, the penalty and when
/// it is released; else the penalty and the health check's settings.
pub(super) fn damping_cell(d: &proto::Damping, now: i64) -> Cell {
    if d.suppressed {
        let release = render::until(d.release_unix_nanos, now)
            .map(|t| format!(", released in {t}"))
            .unwrap_or_default();
        Cell {
            text: format!("suppressed (penalty {:.2}{release})", d.penalty),
            paint: Paint::state("down"),
        }
    } else {
        format!(
            "penalty {:.2} (suppress above {}, reuse below {}, half-life {})",
            d.penalty,
            render::number(d.suppress),
            render::number(d.reuse),
            dur(&d.half_life)
        )
        .into()
    }
}

/// `show backend`'s line while probes cannot run for a reason of ours:
/// `blocked (fd_limit) for 2m, 37 probes, state held: <detail>`, yellow.
pub(super) fn probe_blocked_cell(pb: &proto::ProbeBlocked, now: i64) -> Cell {
    Cell {
        text: format!(
            "blocked ({}) for {}, {} probe{}, state held: {}",
            pb.reason,
            render::age(pb.since_unix_nanos, now),
            pb.count,
            if pb.count == 1 { "" } else { "s" },
            pb.detail
        ),
        paint: Paint::Yellow,
    }
}

/// `show backend`'s slow-start line: `step 4/10 since 12s (of 30s)`.
pub(super) fn slow_start_text(s: &proto::SlowStart, now: i64) -> String {
    format!(
        "step {}/{} since {} (of {})",
        s.step,
        slow_start::STEPS,
        render::age(s.since_unix_nanos, now),
        dur(&s.length)
    )
}

/// `show backend`: health, the last probe and the transitions.
pub fn backend_text(b: &proto::BackendInfo, now: i64, st: Style) -> String {
    let mut k = Block::new();
    k.kv("name", b.name.as_str())
        .kv("address", b.address.as_str())
        .kv("state", backend_state(b))
        .kv("enabled", render::yes_no(b.enabled))
        .kv(
            "healthcheck",
            if b.healthcheck.is_empty() {
                "- (static)"
            } else {
                b.healthcheck.as_str()
            },
        );
    if !b.healthcheck.is_empty() {
        k.kv(
            "health",
            format!("{} (rise {}, fall {})", health(b), b.rise, b.fall),
        )
        .kv("flaps", b.flaps.to_string());
    }
    if let Some(o) = &b.operator_override {
        k.kv("override", intent_text(o, now));
    }
    for o in &b.weight_overrides {
        k.kv(
            "override",
            format!(
                "{}/{}: {}",
                o.frontend,
                o.pool,
                weight_override_text(o, now)
            ),
        );
    }
    if let Some(d) = &b.damping {
        k.kv("damping", damping_cell(d, now));
    }
    if let Some(ss) = &b.slow_start {
        k.kv("slow-start", slow_start_text(ss, now));
    }
    if let Some(pb) = &b.probe_blocked {
        k.kv("probes", probe_blocked_cell(pb, now));
    }
    let probe = b
        .last_probe
        .as_ref()
        .map(|p| {
            let detail = if p.detail.is_empty() {
                String::new()
            } else {
                format!(" {}", p.detail)
            };
            format!(
                "{}{detail}, took {}, {} ago",
                p.code,
                dur(&p.duration),
                render::age(p.unix_nanos, now)
            )
        })
        .unwrap_or_else(|| "-".to_owned());
    k.kv("last-probe", probe).kv(
        "frontends",
        if b.frontends.is_empty() {
            "-".to_owned()
        } else {
            b.frontends.join(", ")
        },
    );
    let mut s = k.render(st);
    if !b.transitions.is_empty() {
        s.push_str(&format!("{}\n", st.paint("transitions", Paint::Label)));
        let mut t = Table::new(&["AGO", "FROM", "TO", "CODE", "DETAIL"]).indent(2);
        for x in &b.transitions {
            t.row(vec![
                render::age(x.unix_nanos, now).into(),
                Cell::state(&x.from),
                Cell::state(&x.to),
                x.code.clone().into(),
                x.detail.clone().into(),
            ]);
        }
        s.push_str(&t.render(st));
    }
    s
}
