//! Announcements as maglevc prints them: `show announcements` (where the
//! routes go, then one row per VIP prefix), `show node` (drained or not,
//! since when and by whom, the table and how many prefixes are
//! announced, also printed after `set node drain` / `undrain`), and the
//! `announce` line of `show frontend`.

use super::render::{self, Block, Cell, Paint, Style, Table};
use crate::grpc::proto;

/// The word of a prefix's state.
fn state_word(announced: bool) -> &'static str {
    if announced { "announced" } else { "withdrawn" }
}

/// A prefix's state cell: `announced` green, `withdrawn` red.
fn state_cell(announced: bool) -> Cell {
    Cell {
        text: state_word(announced).to_owned(),
        paint: if announced { Paint::Green } else { Paint::Red },
    }
}

/// Where the routes go, as the header line says it.
fn where_routes_go(table: &str, in_memory: bool) -> String {
    if in_memory {
        format!(
            "routes go to {table} (kept in memory: no kernel table, no routing daemon sees them)"
        )
    } else {
        format!("routes go to {table}")
    }
}

/// `show announcements`: a line saying where the routes go (and that they
/// are only kept in memory when they are), then one row per prefix; or a
/// line saying there is no announce section.
pub fn announcements_text(r: &proto::ListAnnouncementsResponse, now: i64, st: Style) -> String {
    if !r.enabled {
        return "no announcements: the config has no maglev.announce section\n".to_owned();
    }
    let mut out = where_routes_go(&r.table, r.in_memory);
    out.push('\n');
    if r.announcements.is_empty() {
        out.push_str("no prefixes: no frontend claims one and the table holds none of ours\n");
        return out;
    }
    let mut t = Table::new(&["PREFIX", "FRONTENDS", "STATE", "REASON", "SINCE", "ERROR"]);
    for a in &r.announcements {
        t.row(vec![
            a.prefix.clone().into(),
            if a.frontends.is_empty() {
                "- (unclaimed)".into()
            } else {
                a.frontends.join(",").into()
            },
            state_cell(a.announced),
            a.reason.clone().into(),
            if a.since_unix_nanos > 0 {
                render::age(a.since_unix_nanos, now).into()
            } else {
                // Adopted from the table at start, unchanged since.
                "-".into()
            },
            if a.error.is_empty() {
                "".into()
            } else {
                Cell {
                    text: a.error.clone(),
                    paint: Paint::Red,
                }
            },
        ]);
    }
    out.push_str(&t.render(st));
    out
}

/// `show node` (and the answer of `set node drain` / `undrain`): the
/// drain, where the routes go, and how many prefixes are announced.
pub fn node_text(n: &proto::NodeInfo, now: i64, st: Style) -> String {
    let mut b = Block::new();
    let drain = if n.drained {
        let since = if n.drained_since_unix_nanos > 0 {
            format!(
                " since {} ({} ago)",
                render::utc(n.drained_since_unix_nanos),
                render::age(n.drained_since_unix_nanos, now)
            )
        } else {
            String::new()
        };
        let by = if n.drained_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", n.drained_by)
        };
        Cell {
            text: format!("drained{since}{by}: every prefix withdrawn"),
            paint: Paint::Yellow,
        }
    } else {
        Cell {
            text: "not drained".to_owned(),
            paint: Paint::Green,
        }
    };
    b.kv("drain", drain);
    if n.announce_enabled {
        b.kv("table", n.table.as_str()).kv(
            "prefixes",
            format!("{} of {} announced", n.announced, n.prefixes),
        );
    } else {
        b.kv(
            "announce",
            "off (the config has no maglev.announce section)",
        );
    }
    b.render(st)
}

/// The `announce` line of `show frontend`: `announced (serving)` or
/// `withdrawn (nothing-serves)`, painted; `None` without an announce
/// section.
pub fn frontend_cell(f: &proto::FrontendInfo) -> Option<Cell> {
    if f.announce.is_empty() {
        return None;
    }
    let announced = f.announce == "announced";
    let reason = if f.announce_reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.announce_reason)
    };
    Some(Cell {
        text: format!("{}{reason}", f.announce),
        paint: if announced { Paint::Green } else { Paint::Red },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::render::strip;

    const NS: i64 = 1_000_000_000;
    /// 2026-12-01 21:00:58 UTC.
    const NOW: i64 = 1_796_158_858 * NS;
    const PLAIN: Style = Style { color: false };
    const COLOR: Style = Style { color: true };

    fn announcement(
        prefix: &str,
        frontends: &[&str],
        announced: bool,
        reason: &str,
    ) -> proto::Announcement {
        proto::Announcement {
            prefix: prefix.into(),
            frontends: frontends.iter().map(|f| (*f).to_owned()).collect(),
            announced,
            reason: reason.into(),
            since_unix_nanos: NOW - 90 * NS,
            error: String::new(),
        }
    }

    fn list() -> proto::ListAnnouncementsResponse {
        proto::ListAnnouncementsResponse {
            enabled: true,
            table: "kernel table 200 (protocol 201)".into(),
            in_memory: false,
            announcements: vec![
                announcement("192.0.2.1/32", &["web", "web-udp"], true, "serving"),
                proto::Announcement {
                    error: "netlink: Operation not permitted (os error 1)".into(),
                    ..announcement("192.0.2.2/32", &["api"], false, "nothing-serves")
                },
                proto::Announcement {
                    since_unix_nanos: 0,
                    ..announcement("2001:db8::9/128", &[], true, "warming-up")
                },
            ],
            next_page_token: String::new(),
        }
    }

    #[test]
    fn the_announcements_table_says_where_routes_go_and_each_prefix_state() {
        let r = list();
        let plain = announcements_text(&r, NOW, PLAIN);
        assert_eq!(
            plain,
            "routes go to kernel table 200 (protocol 201)\n\
             PREFIX           FRONTENDS      STATE      REASON          SINCE  ERROR\n\
             192.0.2.1/32     web,web-udp    announced  serving         1m30s\n\
             192.0.2.2/32     api            withdrawn  nothing-serves  1m30s  netlink: Operation not permitted (os error 1)\n\
             2001:db8::9/128  - (unclaimed)  announced  warming-up      -\n"
        );
        let colored = announcements_text(&r, NOW, COLOR);
        assert_eq!(strip(&colored), plain);
        assert!(colored.contains("\x1b[32mannounced\x1b[0m"), "{colored}");
        assert!(colored.contains("\x1b[31mwithdrawn\x1b[0m"), "{colored}");
        assert!(
            colored.contains("\x1b[31mnetlink: Operation not permitted"),
            "{colored}"
        );
    }

    #[test]
    fn routes_kept_in_memory_say_so_and_no_section_says_that() {
        let r = proto::ListAnnouncementsResponse {
            table: "memory".into(),
            in_memory: true,
            announcements: Vec::new(),
            ..list()
        };
        assert_eq!(
            announcements_text(&r, NOW, PLAIN),
            "routes go to memory (kept in memory: no kernel table, no routing daemon sees them)\n\
             no prefixes: no frontend claims one and the table holds none of ours\n"
        );
        let off = proto::ListAnnouncementsResponse::default();
        assert_eq!(
            announcements_text(&off, NOW, PLAIN),
            "no announcements: the config has no maglev.announce section\n"
        );
    }

    #[test]
    fn the_node_says_whether_it_is_drained_since_when_by_whom_and_its_totals() {
        let drained = proto::NodeInfo {
            drained: true,
            drained_by: "alice".into(),
            drained_since_unix_nanos: NOW - 120 * NS,
            announce_enabled: true,
            table: "kernel table 200 (protocol 201)".into(),
            announced: 0,
            prefixes: 3,
            ..Default::default()
        };
        let plain = node_text(&drained, NOW, PLAIN);
        assert_eq!(
            plain,
            "drain     drained since 2026-12-01 20:58:58 UTC (2m ago) by alice: every prefix withdrawn\n\
             table     kernel table 200 (protocol 201)\n\
             prefixes  0 of 3 announced\n"
        );
        let colored = node_text(&drained, NOW, COLOR);
        assert_eq!(strip(&colored), plain);
        assert!(colored.contains("\x1b[33mdrained since"), "{colored}");
        let serving = proto::NodeInfo {
            drained: false,
            drained_by: String::new(),
            drained_since_unix_nanos: 0,
            announced: 2,
            ..drained
        };
        assert_eq!(
            node_text(&serving, NOW, PLAIN),
            "drain     not drained\n\
             table     kernel table 200 (protocol 201)\n\
             prefixes  2 of 3 announced\n"
        );
        assert_eq!(
            node_text(&proto::NodeInfo::default(), NOW, PLAIN),
            "drain     not drained\n\
             announce  off (the config has no maglev.announce section)\n"
        );
    }

    #[test]
    fn the_commands_parse_by_their_prefixes() {
        use crate::cli::parse::parse_words;
        use crate::cli::tree::CommandId;
        let p = |line: &str| {
            let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            parse_words(&words).map(|i| i.id)
        };
        assert_eq!(p("sh a"), Ok(CommandId::ShowAnnouncements));
        assert_eq!(p("sh n"), Ok(CommandId::ShowNode));
        assert_eq!(p("se n d"), Ok(CommandId::DrainNode));
        assert_eq!(p("set node undrain --json"), Ok(CommandId::UndrainNode));
        let watch = parse_words(&["watch".into(), "events".into(), "announce".into()]).unwrap();
        assert!(watch.flag("announce"));
        assert!(crate::cli::watch::request(&watch).announce);
    }

    #[test]
    fn a_frontend_shows_its_prefix_state_with_the_reason() {
        let f = proto::FrontendInfo {
            announce: "withdrawn".into(),
            announce_reason: "nothing-serves".into(),
            ..Default::default()
        };
        assert_eq!(
            frontend_cell(&f),
            Some(Cell {
                text: "withdrawn (nothing-serves)".into(),
                paint: Paint::Red
            })
        );
        let f = proto::FrontendInfo {
            announce: "announced".into(),
            announce_reason: "serving".into(),
            ..Default::default()
        };
        assert_eq!(frontend_cell(&f).unwrap().paint, Paint::Green);
        assert_eq!(frontend_cell(&proto::FrontendInfo::default()), None);
    }
}
