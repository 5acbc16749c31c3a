//! The command tree of maglevc (SPEC §9.3, §16.6) as data: keywords, typed
//! slots and per-command options. The parser, completion, `?` help, the
//! `help` command, the shell completions and the man page are all derived
//! from [`ROOT`], so they cannot drift apart.

use std::fmt;

/// A typed value in a command: an object name fetched live from the
/// daemon, a number with its range, or a log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// A frontend's name.
    Frontend,
    /// A backend's name.
    Backend,
    /// A pool's name (of the frontend named before it).
    Pool,
    /// A health check's name.
    HealthCheck,
    /// A weight, 0..100.
    Weight,
    /// A count of events, 1 or more.
    Count,
    /// A log level.
    LogLevel,
}

/// The log levels a `level` slot accepts, least severe first.
pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

impl Slot {
    /// How the slot is written in help and syntax lines.
    pub fn placeholder(self) -> &'static str {
        match self {
            Slot::Frontend => "<frontend>",
            Slot::Backend => "<backend>",
            Slot::Pool => "<pool>",
            Slot::HealthCheck => "<healthcheck>",
            Slot::Weight => "<0-100>",
            Slot::Count => "<n>",
            Slot::LogLevel => "<level>",
        }
    }

    /// One line saying what goes there.
    pub fn help(self) -> &'static str {
        match self {
            Slot::Frontend => "a frontend's name",
            Slot::Backend => "a backend's name",
            Slot::Pool => "a pool's name",
            Slot::HealthCheck => "a health check's name",
            Slot::Weight => "a weight from 0 to 100",
            Slot::Count => "a number of events, 1 or more",
            Slot::LogLevel => "trace, debug, info, warn or error",
        }
    }

    /// The inclusive range of a numeric slot.
    pub fn range(self) -> Option<(u64, u64)> {
        match self {
            Slot::Weight => Some((0, 100)),
            Slot::Count => Some((1, u64::MAX)),
            _ => None,
        }
    }

    /// The fixed values of a slot that has them (log levels).
    pub fn fixed(self) -> &'static [&'static str] {
        match self {
            Slot::LogLevel => LOG_LEVELS,
            _ => &[],
        }
    }

    /// Whether the values are names the daemon knows (completed live).
    pub fn is_name(self) -> bool {
        matches!(
            self,
            Slot::Frontend | Slot::Backend | Slot::Pool | Slot::HealthCheck
        )
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.placeholder())
    }
}

/// What a tree node matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// A fixed keyword, matched by an unambiguous prefix.
    Key(&'static str),
    /// A typed value.
    Slot(Slot),
}

impl Word {
    /// The keyword, or the slot's placeholder.
    pub fn text(self) -> &'static str {
        match self {
            Word::Key(k) => k,
            Word::Slot(s) => s.placeholder(),
        }
    }
}

/// Every command maglevc runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandId {
    /// `show version`
    ShowVersion,
    /// `show frontends`
    ShowFrontends,
    /// `show frontend <frontend>`
    ShowFrontend,
    /// `show backends`
    ShowBackends,
    /// `show backend <backend>`
    ShowBackend,
    /// `show healthchecks`
    ShowHealthChecks,
    /// `show healthcheck <healthcheck>`
    ShowHealthCheck,
    /// `show vpp info`
    ShowVppInfo,
    /// `show vpp lb state [<frontend>]`
    ShowVppLbState,
    /// `show vpp lb counters`
    ShowVppLbCounters,
    /// `sync vpp lb state [<frontend>] [dry-run]`
    SyncVppLbState,
    /// `set backend <backend> pause`
    PauseBackend,
    /// `set backend <backend> resume`
    ResumeBackend,
    /// `set backend <backend> enable`
    EnableBackend,
    /// `set backend <backend> disable`
    DisableBackend,
    /// `set frontend <frontend> pool <pool> backend <backend> weight <0-100> [flush] [dry-run]`
    SetWeight,
    /// `show overrides`
    ShowOverrides,
    /// `clear override backend <backend>`
    ClearBackendOverride,
    /// `clear override frontend <frontend> pool <pool> backend <backend>`
    ClearWeightOverride,
    /// `watch events ...`
    WatchEvents,
    /// `show announcements`
    ShowAnnouncements,
    /// `show node`
    ShowNode,
    /// `show fleet`
    ShowFleet,
    /// `set node drain`
    DrainNode,
    /// `set node undrain`
    UndrainNode,
    /// `config check`
    ConfigCheck,
    /// `config reload [force]`
    ConfigReload,
    /// `help [<word>...]`
    Help,
    /// `quit` / `exit`
    Quit,
}

/// A word that may follow a complete command, in any order, at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt {
    /// The option's keyword.
    pub word: &'static str,
    /// The value it takes, if any.
    pub arg: Option<Slot>,
    /// One line of help.
    pub help: &'static str,
}

/// A command that may end at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// Which command.
    pub id: CommandId,
    /// The options that may follow.
    pub options: &'static [Opt],
    /// Whether it takes every remaining word as free text (`help`).
    pub rest: bool,
}

/// One node of the tree.
#[derive(Debug)]
pub struct Node {
    /// What it matches.
    pub word: Word,
    /// One line of help, shown by `?`, `help` and the man page.
    pub help: &'static str,
    /// What may follow.
    pub children: &'static [Node],
    /// The command that ends here, if the line may stop here.
    pub command: Option<Command>,
}

/// `--json`: the reply as pretty JSON.
pub const JSON: Opt = Opt {
    word: "--json",
    arg: None,
    help: "print the reply as JSON",
};

const SHOW_OPTS: &[Opt] = &[JSON];

const WATCH_OPTS: &[Opt] = &[
    Opt {
        word: "num",
        arg: Some(Slot::Count),
        help: "stop after this many events",
    },
    Opt {
        word: "log",
        arg: None,
        help: "log records (info and above unless `level` says otherwise)",
    },
    Opt {
        word: "level",
        arg: Some(Slot::LogLevel),
        help: "the least log level shown (implies `log`)",
    },
    Opt {
        word: "backend",
        arg: None,
        help: "backend transitions",
    },
    Opt {
        word: "frontend",
        arg: None,
        help: "frontend transitions, starting with each frontend's state",
    },
    Opt {
        word: "vpp",
        arg: None,
        help: "every change maglevd makes to VPP",
    },
    Opt {
        word: "announce",
        arg: None,
        help: "VIP prefixes announced and withdrawn, and the node drained or undrained",
    },
    Opt {
        word: "--json",
        arg: None,
        help: "print each event as one line of JSON",
    },
];

/// Plan only: print the ops and the buckets that would move, send nothing.
const DRY_RUN: Opt = Opt {
    word: "dry-run",
    arg: None,
    help: "print the ops and the buckets that would move; send nothing",
};

const SYNC_OPTS: &[Opt] = &[DRY_RUN, JSON];

const RELOAD_OPTS: &[Opt] = &[
    Opt {
        word: "force",
        arg: None,
        help: "apply even if it deletes more VIPs than the daemon's --reload-delete-limit allows",
    },
    JSON,
];

const FLUSH_OPTS: &[Opt] = &[
    Opt {
        word: "flush",
        arg: None,
        help: "also flush the backend's existing flows",
    },
    DRY_RUN,
    JSON,
];

const fn key(
    word: &'static str,
    help: &'static str,
    children: &'static [Node],
    command: Option<Command>,
) -> Node {
    Node {
        word: Word::Key(word),
        help,
        children,
        command,
    }
}

const fn slot(
    s: Slot,
    help: &'static str,
    children: &'static [Node],
    command: Option<Command>,
) -> Node {
    Node {
        word: Word::Slot(s),
        help,
        children,
        command,
    }
}

const fn cmd(id: CommandId, options: &'static [Opt]) -> Option<Command> {
    Some(Command {
        id,
        options,
        rest: false,
    })
}

const fn backend_action(word: &'static str, help: &'static str, id: CommandId) -> Node {
    key(word, help, &[], cmd(id, SHOW_OPTS))
}

/// The whole tree: the words that may start a command line.
pub const ROOT: &[Node] = &[
    key(
        "show",
        "show the daemon's state",
        &[
            key(
                "version",
                "maglevc's version",
                &[],
                cmd(CommandId::ShowVersion, SHOW_OPTS),
            ),
            key(
                "frontends",
                "every frontend with its state and active pool",
                &[],
                cmd(CommandId::ShowFrontends, SHOW_OPTS),
            ),
            key(
                "frontend",
                "one frontend: its pools and every member's weights and buckets",
                &[slot(
                    Slot::Frontend,
                    "the frontend to show",
                    &[],
                    cmd(CommandId::ShowFrontend, SHOW_OPTS),
                )],
                None,
            ),
            key(
                "backends",
                "every backend with its health",
                &[],
                cmd(CommandId::ShowBackends, SHOW_OPTS),
            ),
            key(
                "backend",
                "one backend: health, last probe, transitions",
                &[slot(
                    Slot::Backend,
                    "the backend to show",
                    &[],
                    cmd(CommandId::ShowBackend, SHOW_OPTS),
                )],
                None,
            ),
            key(
                "overrides",
                "operators' overrides of the config file, with who and when",
                &[],
                cmd(CommandId::ShowOverrides, SHOW_OPTS),
            ),
            key(
                "announcements",
                "every VIP prefix announced or withdrawn, why and since when, and where the routes go",
                &[],
                cmd(CommandId::ShowAnnouncements, SHOW_OPTS),
            ),
            key(
                "node",
                "this router: drained or not (since when, by whom), and how many prefixes it announces",
                &[],
                cmd(CommandId::ShowNode, SHOW_OPTS),
            ),
            key(
                "fleet",
                "every frontend on every --server listed: state, active pool, announcement, table fingerprint, and whether their Maglev tables agree",
                &[],
                cmd(CommandId::ShowFleet, SHOW_OPTS),
            ),
            key(
                "healthchecks",
                "every health check",
                &[],
                cmd(CommandId::ShowHealthChecks, SHOW_OPTS),
            ),
            key(
                "healthcheck",
                "one health check with its defaults filled in",
                &[slot(
                    Slot::HealthCheck,
                    "the health check to show",
                    &[],
                    cmd(CommandId::ShowHealthCheck, SHOW_OPTS),
                )],
                None,
            ),
            key(
                "vpp",
                "VPP's view",
                &[
                    key(
                        "info",
                        "the connected VPP's version, pid and uptime",
                        &[],
                        cmd(CommandId::ShowVppInfo, SHOW_OPTS),
                    ),
                    key(
                        "lb",
                        "VPP's load balancer",
                        &[
                            key(
                                "state",
                                "the VIPs and ASes VPP holds, with weights and buckets",
                                &[slot(
                                    Slot::Frontend,
                                    "only this frontend's VIP",
                                    &[],
                                    cmd(CommandId::ShowVppLbState, SHOW_OPTS),
                                )],
                                cmd(CommandId::ShowVppLbState, SHOW_OPTS),
                            ),
                            key(
                                "counters",
                                "per-VIP packet counters with rates",
                                &[],
                                cmd(CommandId::ShowVppLbCounters, SHOW_OPTS),
                            ),
                        ],
                        None,
                    ),
                ],
                None,
            ),
        ],
        None,
    ),
    key(
        "sync",
        "reconcile VPP now",
        &[key(
            "vpp",
            "VPP",
            &[key(
                "lb",
                "VPP's load balancer",
                &[key(
                    "state",
                    "sync every frontend (and remove VIPs not in the config)",
                    &[slot(
                        Slot::Frontend,
                        "only this frontend",
                        &[],
                        cmd(CommandId::SyncVppLbState, SYNC_OPTS),
                    )],
                    cmd(CommandId::SyncVppLbState, SYNC_OPTS),
                )],
                None,
            )],
            None,
        )],
        None,
    ),
    key(
        "set",
        "change the running state",
        &[
            key(
                "backend",
                "act on one backend",
                &[slot(
                    Slot::Backend,
                    "the backend",
                    &[
                        backend_action(
                            "pause",
                            "stop probing and drain it (weight 0, no flush)",
                            CommandId::PauseBackend,
                        ),
                        backend_action(
                            "resume",
                            "probe it again, from unknown",
                            CommandId::ResumeBackend,
                        ),
                        backend_action(
                            "enable",
                            "re-enable a disabled backend",
                            CommandId::EnableBackend,
                        ),
                        backend_action(
                            "disable",
                            "weight 0 with flush; probing stops",
                            CommandId::DisableBackend,
                        ),
                    ],
                    None,
                )],
                None,
            ),
            key(
                "node",
                "this router's announcements",
                &[
                    key(
                        "drain",
                        "withdraw every VIP prefix and keep them withdrawn (across restarts) until undrained",
                        &[],
                        cmd(CommandId::DrainNode, SHOW_OPTS),
                    ),
                    key(
                        "undrain",
                        "announce again every prefix that serves",
                        &[],
                        cmd(CommandId::UndrainNode, SHOW_OPTS),
                    ),
                ],
                None,
            ),
            key(
                "frontend",
                "change a frontend's pool member",
                &[slot(
                    Slot::Frontend,
                    "the frontend",
                    &[key(
                        "pool",
                        "one of its pools",
                        &[slot(
                            Slot::Pool,
                            "the pool",
                            &[key(
                                "backend",
                                "one of the pool's backends",
                                &[slot(
                                    Slot::Backend,
                                    "the backend",
                                    &[key(
                                        "weight",
                                        "set its weight (an override of the file's, kept across restarts)",
                                        &[slot(
                                            Slot::Weight,
                                            "the new weight",
                                            &[],
                                            cmd(CommandId::SetWeight, FLUSH_OPTS),
                                        )],
                                        None,
                                    )],
                                    None,
                                )],
                                None,
                            )],
                            None,
                        )],
                        None,
                    )],
                    None,
                )],
                None,
            ),
        ],
        None,
    ),
    key(
        "clear",
        "undo an operator's change",
        &[key(
            "override",
            "back to what the config file says",
            &[
                key(
                    "backend",
                    "a backend's state (resumed, enabled or disabled as the file says)",
                    &[slot(
                        Slot::Backend,
                        "the backend",
                        &[],
                        cmd(CommandId::ClearBackendOverride, SHOW_OPTS),
                    )],
                    None,
                ),
                key(
                    "frontend",
                    "a pool member's runtime weight (the file's weight, synced at once)",
                    &[slot(
                        Slot::Frontend,
                        "the frontend",
                        &[key(
                            "pool",
                            "one of its pools",
                            &[slot(
                                Slot::Pool,
                                "the pool",
                                &[key(
                                    "backend",
                                    "one of the pool's backends",
                                    &[slot(
                                        Slot::Backend,
                                        "the backend",
                                        &[],
                                        cmd(CommandId::ClearWeightOverride, SHOW_OPTS),
                                    )],
                                    None,
                                )],
                                None,
                            )],
                            None,
                        )],
                        None,
                    )],
                    None,
                ),
            ],
            None,
        )],
        None,
    ),
    key(
        "watch",
        "follow the daemon live",
        &[key(
            "events",
            "one line per event until `num` events, Ctrl-C or a key",
            &[],
            cmd(CommandId::WatchEvents, WATCH_OPTS),
        )],
        None,
    ),
    key(
        "config",
        "the config file on disk",
        &[
            key(
                "check",
                "validate the file without loading it",
                &[],
                cmd(CommandId::ConfigCheck, SHOW_OPTS),
            ),
            key(
                "reload",
                "validate and load the file (as SIGHUP does)",
                &[],
                cmd(CommandId::ConfigReload, RELOAD_OPTS),
            ),
        ],
        None,
    ),
    key(
        "help",
        "list the commands (those starting with the words given)",
        &[],
        Some(Command {
            id: CommandId::Help,
            options: &[],
            rest: true,
        }),
    ),
    key("quit", "leave the shell", &[], cmd(CommandId::Quit, &[])),
    key("exit", "leave the shell", &[], cmd(CommandId::Quit, &[])),
];

/// One complete command as written in `help` and the man page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syntax {
    /// The keyword path, e.g. `["show", "frontend"]` (slots as placeholders).
    pub words: Vec<&'static str>,
    /// The command.
    pub command: Command,
    /// The help of the node where it ends.
    pub help: &'static str,
}

impl Syntax {
    /// The usage line: words, then each option in brackets.
    pub fn line(&self) -> String {
        let mut s = self.words.join(" ");
        for o in self.command.options {
            s.push_str(" [");
            s.push_str(o.word);
            if let Some(a) = o.arg {
                s.push(' ');
                s.push_str(a.placeholder());
            }
            s.push(']');
        }
        if self.command.rest {
            s.push_str(" [<word>...]");
        }
        s
    }
}

/// Every command of the tree, in tree order.
pub fn commands() -> Vec<Syntax> {
    /// `help` is the node's own, except that a slot which must be given
    /// (its parent is no command) says what its keyword says.
    fn walk(
        nodes: &'static [Node],
        parent: Option<&'static Node>,
        path: &mut Vec<&'static str>,
        out: &mut Vec<Syntax>,
    ) {
        for n in nodes {
            path.push(n.word.text());
            if let Some(c) = n.command {
                let help = match (n.word, parent) {
                    (Word::Slot(_), Some(p)) if p.command.is_none() => p.help,
                    _ => n.help,
                };
                out.push(Syntax {
                    words: path.clone(),
                    command: c,
                    help,
                });
            }
            walk(n.children, Some(n), path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(ROOT, None, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_tree_has_every_command_of_spec_9_3() {
        let lines: Vec<String> = commands().iter().map(Syntax::line).collect();
        for want in [
            "show version [--json]",
            "show frontends [--json]",
            "show frontend <frontend> [--json]",
            "show backends [--json]",
            "show backend <backend> [--json]",
            "show healthchecks [--json]",
            "show healthcheck <healthcheck> [--json]",
            "show vpp info [--json]",
            "show vpp lb state [--json]",
            "show vpp lb state <frontend> [--json]",
            "show vpp lb counters [--json]",
            "sync vpp lb state [dry-run] [--json]",
            "sync vpp lb state <frontend> [dry-run] [--json]",
            "set backend <backend> pause [--json]",
            "set backend <backend> resume [--json]",
            "set backend <backend> enable [--json]",
            "set backend <backend> disable [--json]",
            "set frontend <frontend> pool <pool> backend <backend> weight <0-100> [flush] [dry-run] [--json]",
            "watch events [num <n>] [log] [level <level>] [backend] [frontend] [vpp] [announce] [--json]",
            "show announcements [--json]",
            "show node [--json]",
            "show fleet [--json]",
            "set node drain [--json]",
            "set node undrain [--json]",
            "config check [--json]",
            "config reload [force] [--json]",
            "show overrides [--json]",
            "clear override backend <backend> [--json]",
            "clear override frontend <frontend> pool <pool> backend <backend> [--json]",
            "help [<word>...]",
            "quit",
            "exit",
        ] {
            assert!(
                lines.iter().any(|l| l == want),
                "missing {want}: {lines:#?}"
            );
        }
        assert_eq!(lines.len(), 32);
    }

    #[test]
    fn siblings_are_distinct_and_have_at_most_one_slot() {
        fn walk(nodes: &'static [Node]) {
            let keys: Vec<_> = nodes.iter().map(|n| n.word.text()).collect();
            assert_eq!(
                keys.len(),
                keys.iter().collect::<HashSet<_>>().len(),
                "{keys:?}"
            );
            assert!(
                nodes
                    .iter()
                    .filter(|n| matches!(n.word, Word::Slot(_)))
                    .count()
                    <= 1
            );
            for n in nodes {
                assert!(!n.help.is_empty());
                assert!(n.children.is_empty() || n.command.is_some() || !n.children.is_empty());
                assert!(
                    n.command.is_some() || !n.children.is_empty(),
                    "{} is a dead end",
                    n.word.text()
                );
                walk(n.children);
            }
        }
        walk(ROOT);
    }
}
