//! One command on several maglevds (`--server a,b,c`): reads answer per
//! node (a NODE column for `show frontends` and `show backends`, `show
//! fleet` its own view, a section per node for the rest); writes go to
//! every node once confirmed, each node's answer reported, and the
//! command fails (exit 1) if any node refused. With one server it is
//! exactly the single-server [`Session`].

use std::io::Write;

use super::Target;
use super::exec::{Failure, Flow, Session, write_out};
use super::fleet_view;
use super::lists;
use super::parse::Invocation;
use super::render::Style;
use super::tree::{CommandId, commands};
use crate::fleet::{self, join::join_all};
use crate::grpc::paging;

/// One listed server and its session.
#[derive(Clone)]
struct Member {
    name: String,
    session: Session,
}

/// Sessions to every listed server, in the order listed.
#[derive(Clone)]
pub struct Multi {
    members: Vec<Member>,
    style: Style,
}

/// Whether `inv` changes something on the server (and so asks before it
/// goes to several).
pub fn is_write(inv: &Invocation) -> bool {
    match inv.id {
        CommandId::PauseBackend
        | CommandId::ResumeBackend
        | CommandId::EnableBackend
        | CommandId::DisableBackend
        | CommandId::ClearBackendOverride
        | CommandId::ClearWeightOverride
        | CommandId::DrainNode
        | CommandId::UndrainNode
        | CommandId::ConfigReload => true,
        CommandId::SetWeight | CommandId::SyncVppLbState => !inv.flag("dry-run"),
        _ => false,
    }
}

/// The global `--json` (given before the command): the command's own
/// `--json` option, or a usage error when it has none.
pub fn apply_json(inv: &mut Invocation) -> Result<(), Failure> {
    let has = commands()
        .iter()
        .any(|c| c.command.id == inv.id && c.command.options.iter().any(|o| o.word == "--json"));
    if !has {
        return Err(Failure::Usage(format!(
            "--json: \"{}\" has no JSON output",
            inv.words.join(" ")
        )));
    }
    inv.flags.insert("--json");
    Ok(())
}

impl Multi {
    /// Sessions to each `(name, target)`; nothing connects yet.
    pub fn new(targets: &[(String, Target)], style: Style) -> Result<Multi, Failure> {
        let members = targets
            .iter()
            .map(|(name, t)| {
                Ok(Member {
                    name: name.clone(),
                    session: Session::new(t, style)?,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        if members.is_empty() {
            return Err(Failure::Usage("--server: no server given".to_owned()));
        }
        Ok(Multi { members, style })
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none (never, once built).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The first server's session (Tab completion asks it).
    pub fn first(&self) -> &Session {
        &self.members[0].session
    }

    /// The listed names, comma-separated.
    pub fn names(&self) -> String {
        let v: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        v.join(", ")
    }

    /// Whether `inv` needs a confirmation first: a write to several.
    pub fn needs_confirmation(&self, inv: &Invocation) -> bool {
        self.len() > 1 && is_write(inv)
    }

    /// The confirmation question for `inv`.
    pub fn question(&self, inv: &Invocation) -> String {
        format!(
            "{} on {} servers ({})? [y/N] ",
            inv.words.join(" "),
            self.len(),
            self.names()
        )
    }

    /// Runs `inv` on every server, writing to `out`.
    pub async fn run(&mut self, inv: &Invocation, out: &mut dyn Write) -> Result<Flow, Failure> {
        if self.members.len() == 1 {
            return self.members[0].session.run(inv, out).await;
        }
        let st = self.style;
        match inv.id {
            CommandId::Quit => return Ok(Flow::Quit),
            CommandId::Help | CommandId::ShowVersion => {
                return self.members[0].session.run(inv, out).await;
            }
            CommandId::WatchEvents => {
                return Err(Failure::Usage(
                    "watch events follows one server: give one --server".to_owned(),
                ));
            }
            CommandId::ShowFleet => {
                let nodes: Vec<fleet::Node> = self
                    .members
                    .iter()
                    .map(|m| m.session.node(&m.name))
                    .collect();
                let readings = fleet::read_all(&nodes, fleet::READ_TIMEOUT).await;
                let pairs: Vec<(&str, &str)> = self
                    .members
                    .iter()
                    .map(|m| (m.name.as_str(), m.session.server()))
                    .collect();
                let text = if inv.json() {
                    fleet_view::json(&pairs, &readings).map_err(Failure::Server)?
                } else {
                    fleet_view::text(&pairs, &readings, st)
                };
                write_out(out, &text)?;
                return Ok(Flow::Continue);
            }
            CommandId::ShowFrontends | CommandId::ShowBackends if !inv.json() => {
                return self.list(inv.id, out).await;
            }
            _ => {}
        }
        let results = join_all(self.members.iter_mut().map(|m| async move {
            let mut buf: Vec<u8> = Vec::new();
            let r = m.session.run(inv, &mut buf).await;
            (String::from_utf8_lossy(&buf).into_owned(), r)
        }))
        .await;
        let failed = results.iter().any(|(_, r)| r.is_err());
        let text = if inv.json() {
            let mut v = Vec::new();
            for (m, (buf, r)) in self.members.iter().zip(&results) {
                let mut o = serde_json::json!({ "node": m.name, "server": m.session.server() });
                if let Ok(reply) = serde_json::from_str::<serde_json::Value>(buf) {
                    o["reply"] = reply;
                }
                if let Err(f) = r {
                    o["error"] = f.message().unwrap_or("failed").into();
                }
                v.push(o);
            }
            format!("{:#}\n", serde_json::Value::Array(v))
        } else {
            let mut text = String::new();
            for (i, (m, (buf, r))) in self.members.iter().zip(&results).enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(&self.header(m));
                text.push_str(buf);
                if let Err(f) = r {
                    let msg = f.message().unwrap_or("failed");
                    text.push_str(&st.error(&format!("error: {msg}")));
                    text.push('\n');
                }
            }
            text
        };
        write_out(out, &text)?;
        if failed {
            let bad: Vec<&str> = self
                .members
                .iter()
                .zip(&results)
                .filter(|(_, (_, r))| r.is_err())
                .map(|(m, _)| m.name.as_str())
                .collect();
            return Err(Failure::Server(format!(
                "failed on {} of {} servers: {}",
                bad.len(),
                self.len(),
                bad.join(", ")
            )));
        }
        Ok(Flow::Continue)
    }

    /// A node's section header: `== a (host:9090) ==`.
    fn header(&self, m: &Member) -> String {
        let server = m.session.server();
        let title = if m.name == server {
            m.name.clone()
        } else {
            format!("{} ({server})", m.name)
        };
        format!(
            "{}\n",
            self.style
                .paint(&format!("== {title} =="), super::render::Paint::Bold)
        )
    }

    /// `show frontends` / `show backends` on every node: one table with a
    /// NODE column; the nodes that failed are named after it.
    async fn list(&self, id: CommandId, out: &mut dyn Write) -> Result<Flow, Failure> {
        let st = self.style;
        let now = self.members[0].session.now_unix_nanos();
        let (text, errors) = if id == CommandId::ShowFrontends {
            let rs = join_all(self.members.iter().map(|m| async move {
                paging::all_frontends(m.session.client(), Default::default())
                    .await
                    .map(|r| r.frontends)
                    .map_err(|s| super::exec::server_message(m.session.target(), &s))
            }))
            .await;
            let lists = self.answered(&rs);
            (lists::frontends_table(&lists, st), self.errors(&rs))
        } else {
            let rs = join_all(self.members.iter().map(|m| async move {
                paging::all_backends(m.session.client(), Default::default())
                    .await
                    .map(|r| r.backends)
                    .map_err(|s| super::exec::server_message(m.session.target(), &s))
            }))
            .await;
            let lists = self.answered(&rs);
            (lists::backends_table(&lists, now, st), self.errors(&rs))
        };
        write_out(out, &text)?;
        if errors.is_empty() {
            Ok(Flow::Continue)
        } else {
            Err(Failure::Server(errors.join("\n")))
        }
    }

    /// The lists of the nodes that answered, each with its node's name.
    fn answered<'a, T>(
        &'a self,
        rs: &'a [Result<Vec<T>, String>],
    ) -> Vec<(Option<&'a str>, &'a [T])> {
        self.members
            .iter()
            .zip(rs)
            .filter_map(|(m, r)| r.as_ref().ok().map(|v| (Some(m.name.as_str()), &v[..])))
            .collect()
    }

    fn errors<T>(&self, rs: &[Result<T, String>]) -> Vec<String> {
        self.members
            .iter()
            .zip(rs)
            .filter_map(|(m, r)| r.as_ref().err().map(|e| format!("{}: {e}", m.name)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse::parse;

    #[test]
    fn writes_are_told_from_reads_and_dry_runs() {
        for line in [
            "set backend a disable",
            "set node drain",
            "clear override backend a",
            "config reload",
            "sync vpp lb state",
            "set frontend web pool p backend a weight 5",
        ] {
            assert!(is_write(&parse(line).unwrap()), "{line}");
        }
        for line in [
            "show fleet",
            "show frontends",
            "config check",
            "sync vpp lb state dry-run",
            "set frontend web pool p backend a weight 5 dry-run",
        ] {
            assert!(!is_write(&parse(line).unwrap()), "{line}");
        }
    }

    #[test]
    fn the_global_json_is_the_commands_own_or_a_usage_error() {
        let mut inv = parse("show frontends").unwrap();
        apply_json(&mut inv).unwrap();
        assert!(inv.json());
        let mut inv = parse("help").unwrap();
        let e = apply_json(&mut inv).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().unwrap().contains("\"help\" has no JSON output"));
    }

    #[test]
    fn only_yes_confirms() {
        assert!(crate::cli::is_yes("y\n"));
        assert!(crate::cli::is_yes(" YES "));
        assert!(!crate::cli::is_yes("\n"));
        assert!(!crate::cli::is_yes("no"));
    }
}
