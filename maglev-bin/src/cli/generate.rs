//! Shell completions (clap_complete) and the `maglevc(1)` man page
//! (clap_mangen), both built from [`tree::ROOT`](super::tree::ROOT) and
//! the flags of [`Args`](super::Args): keywords become subcommands, slots
//! positional values (log levels with their values), options flags or
//! trailing words. Object names are not in the static scripts; the shell's
//! Tab completes them live.

use crate::manpage::{entry, render};
use clap::{Arg, ArgAction, CommandFactory};

use super::Args;
use super::tree::{Node, ROOT, Slot, Word, commands};

fn slot_arg(s: Slot, help: &'static str) -> Arg {
    let (id, value) = match s {
        Slot::Frontend => ("frontend", "FRONTEND"),
        Slot::Backend => ("backend", "BACKEND"),
        Slot::Pool => ("pool", "POOL"),
        Slot::HealthCheck => ("healthcheck", "HEALTHCHECK"),
        Slot::Weight => ("weight", "0-100"),
        Slot::Count => ("n", "N"),
        Slot::LogLevel => ("level", "LEVEL"),
    };
    let mut a = Arg::new(id).value_name(value).help(help).required(true);
    if !s.fixed().is_empty() {
        a = a.value_parser(s.fixed().to_vec());
    }
    a
}

fn node_command(n: &'static Node) -> Option<clap::Command> {
    let Word::Key(word) = n.word else {
        return None;
    };
    let mut c = clap::Command::new(word)
        .about(n.help)
        .disable_help_subcommand(true);
    fill(&mut c, n);
    Some(c)
}

/// Adds a node's children and options to `c`; a slot child becomes a
/// positional value followed by the slot node's own children.
fn fill(c: &mut clap::Command, n: &'static Node) {
    let mut cmd = std::mem::replace(c, clap::Command::new("tmp"));
    for child in n.children {
        match child.word {
            Word::Key(_) => {
                if let Some(sub) = node_command(child) {
                    cmd = cmd.subcommand(sub);
                }
            }
            Word::Slot(s) => {
                // The slot is optional when the command may end before it.
                cmd = cmd.arg(slot_arg(s, child.help).required(n.command.is_none()));
                let mut inner = cmd;
                fill(&mut inner, child);
                cmd = inner;
            }
        }
    }
    if let Some(command) = n.command {
        let words: Vec<&'static str> = command
            .options
            .iter()
            .filter(|o| !o.word.starts_with("--"))
            .map(|o| o.word)
            .collect();
        for o in command.options.iter().filter(|o| o.word.starts_with("--")) {
            let id = o.word.trim_start_matches('-');
            if cmd.get_arguments().all(|a| a.get_id() != id) {
                cmd = cmd.arg(
                    Arg::new(id)
                        .long(id)
                        .help(o.help)
                        .action(ArgAction::SetTrue),
                );
            }
        }
        // A command with an optional slot (`sync vpp lb state [<frontend>]`)
        // gets the options of both forms once: they are the same words.
        if !words.is_empty() && cmd.get_arguments().all(|a| a.get_id() != "option") {
            cmd = cmd.arg(
                Arg::new("option")
                    .value_name("OPTION")
                    .help("options, in any order (see COMMANDS)")
                    .num_args(1..)
                    .value_parser(words),
            );
        }
        if command.rest {
            cmd = cmd.arg(Arg::new("word").num_args(1..).value_name("WORD"));
        }
    }
    *c = cmd;
}

/// The one-shot form as a clap command: maglevc's flags and the whole
/// tree as subcommands. Used for completions and the man page only; lines
/// are parsed by [`parse`](super::parse).
pub fn clap_command() -> clap::Command {
    let flags = Args::command();
    let mut c = clap::Command::new("maglevc")
        .disable_help_subcommand(true)
        .version(crate::VERSION_LINE)
        .about("The maglevd operator CLI: a birdc-style shell, or one command and exit.")
        .long_about(
            "maglevc talks to maglevd over gRPC. With no command it is an interactive shell \
             with Tab completion of keywords and live object names, `?` help on the keypress \
             and unambiguous-prefix matching (`sh fr` is `show frontends`). With a command it \
             runs it once and exits 0 on success, 1 on a server error and 2 on a usage error.",
        );
    for a in flags.get_arguments() {
        if a.get_id() != "command" && a.get_id() != "help" && a.get_id() != "version" {
            c = c.arg(a.clone());
        }
    }
    for n in ROOT {
        if let Some(sub) = node_command(n) {
            c = c.subcommand(sub);
        }
    }
    c
}

/// A completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    crate::manpage::completions(clap_command(), "maglevc", shell)
}

/// The `maglevc(1)` man page, in roff.
pub fn man() -> String {
    let mut s = String::from(".SH COMMANDS\n");
    s.push_str(
        "Keywords may be shortened to any unambiguous prefix; an exact keyword wins. \
         Words in angle brackets are values; options in brackets may follow in any order.\n",
    );
    for c in commands() {
        s.push_str(&entry(&c.line(), c.help));
    }
    s.push_str(".SH ENVIRONMENT\n.TP\n\\fBMAGLEV_SERVER\\fR\nThe server address when \\fB\\-\\-server\\fR is not given (default localhost:9090).\n");
    s.push_str(".TP\n\\fBNO_COLOR\\fR\nWhen set and not empty, color is off unless \\fB\\-\\-color\\fR turns it on.\n");
    s.push_str(".SH EXIT STATUS\n.TP\n0\nSuccess.\n.TP\n1\nmaglevd refused or failed the command, or could not be reached.\n.TP\n2\nA usage error: an unknown, ambiguous or incomplete command, or a bad flag.\n");
    s.push_str(".SH FILES\n.TP\n\\fI$XDG_STATE_HOME/maglev/maglevc_history\\fR\nThe shell's history (\\fI~/.local/state/maglev/maglevc_history\\fR when XDG_STATE_HOME is not set).\n");
    s.push_str(SEE_ALSO);
    render(clap_command(), "1", &s)
}

/// The `SEE ALSO` section of the three man pages.
pub const SEE_ALSO: &str =
    ".SH SEE ALSO\n\\fBmaglevd\\fR(8), \\fBmaglevc\\fR(1), \\fBmaglevt\\fR(1)\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manpage::roff_escape;

    #[test]
    fn the_clap_tree_is_consistent() {
        clap_command().debug_assert();
    }

    #[test]
    fn completions_cover_every_keyword() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let text = completions(shell);
            // clap_complete's fish script goes three words deep.
            let depth = if shell == clap_complete::Shell::Fish {
                3
            } else {
                usize::MAX
            };
            for c in commands() {
                for w in c.words.iter().take(depth).filter(|w| !w.starts_with('<')) {
                    assert!(text.contains(w), "{shell}: no {w}");
                }
            }
        }
    }

    #[test]
    fn the_man_page_lists_every_command() {
        let page = man();
        for c in commands() {
            let line = format!("\\fB{}\\fR", roff_escape(&c.line()));
            assert!(page.contains(&line), "man page lacks {}", c.line());
        }
        assert!(page.contains(".SH EXIT STATUS"));
        assert!(page.contains("MAGLEV_SERVER"));
    }
}
