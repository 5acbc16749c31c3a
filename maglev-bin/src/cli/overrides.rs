//! Operators' overrides of the config file in words: `show overrides`,
//! `show backend`'s override line, and what `clear override` prints.

use super::render::{self, Style, Table};
use crate::grpc::proto;

/// One override in words: "backend b1 disabled (by bob 5m ago)",
/// "frontend web pool primary backend b2 weight 10 (set by alice 2h ago;
/// file says 100)".
pub fn override_text(o: &proto::OperatorOverride, now: i64) -> String {
    if o.kind == "weight" {
        format!(
            "frontend {} pool {} backend {} {}",
            o.frontend,
            o.pool,
            o.backend,
            weight_override_text(o, now)
        )
    } else {
        format!("backend {} {}", o.backend, intent_text(o, now))
    }
}

/// "disabled (by bob 5m ago)".
pub fn intent_text(o: &proto::OperatorOverride, now: i64) -> String {
    let file = if o.file_enabled {
        ""
    } else {
        "; file says enabled: false"
    };
    format!(
        "{} (by {} {} ago{file})",
        o.kind,
        o.by,
        render::age(o.at_unix_nanos, now)
    )
}

/// "weight 10 (set by alice 2h ago; file says 100)".
pub fn weight_override_text(o: &proto::OperatorOverride, now: i64) -> String {
    format!(
        "weight {} (set by {} {} ago; file says {})",
        o.weight,
        o.by,
        render::age(o.at_unix_nanos, now),
        o.file_weight
    )
}

/// `show overrides`: one line per override, or a word that there is none.
pub fn overrides_text(overrides: &[proto::OperatorOverride], now: i64, st: Style) -> String {
    if overrides.is_empty() {
        return "no overrides: everything is as the config file says\n".to_owned();
    }
    let mut t = Table::new(&["WHAT", "OVERRIDE", "BY", "AGO", "FILE SAYS"]);
    for o in overrides {
        let (what, value, file) = if o.kind == "weight" {
            (
                format!("{}/{}/{}", o.frontend, o.pool, o.backend),
                format!("weight {}", o.weight),
                format!("weight {}", o.file_weight),
            )
        } else {
            (
                o.backend.clone(),
                o.kind.clone(),
                if o.file_enabled {
                    "enabled".to_owned()
                } else {
                    "enabled: false".to_owned()
                },
            )
        };
        t.row(vec![
            what.into(),
            value.into(),
            o.by.clone().into(),
            render::age(o.at_unix_nanos, now).into(),
            file.into(),
        ]);
    }
    t.render(st)
}
