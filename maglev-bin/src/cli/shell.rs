//! The interactive shell: rustyline line editing with history in the
//! user's state directory, Tab completion of keywords and live object
//! names, `?` on the keypress listing what may come next (birdc-style),
//! and errors that name the word at fault. A lost connection to maglevd is
//! reported by the command that met it and retried by the next.

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context as RlContext, Editor, Event,
    EventContext, EventHandler, Helper, KeyEvent, RepeatCount,
};
use tokio::runtime::Runtime;

use super::Global;
use super::Target;
use super::exec::{Failure, Flow, Session};
use super::multi::{self, Multi};
use super::parse::{self, ChoiceKind};
use super::render::{Paint, Style, Table};

/// The prompt.
pub const PROMPT: &str = "maglev> ";

/// Where the history is kept: `$XDG_STATE_HOME/maglev/maglevc_history`,
/// else `~/.local/state/maglev/maglevc_history`; `None` without either.
pub fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(base.join("maglev").join("maglevc_history"))
}

/// What `?` prints for `line` with the cursor at `pos`: each word that may
/// come next with one line of help, or why the words so far do not read.
pub fn question(line: &str, pos: usize, st: Style) -> String {
    match parse::context(line, pos) {
        Err(e) => format!("{}\n", st.error(&e.to_string())),
        Ok(ctx) => {
            let choices = ctx.choices();
            if choices.is_empty() {
                return format!(
                    "{}\n",
                    st.error(&format!("nothing here starts with \"{}\"", ctx.partial))
                );
            }
            let mut t = Table::new(&["NEXT", "WHAT IT IS"]).indent(2);
            for c in choices {
                t.row(vec![c.text.into(), c.help.into()]);
            }
            t.render(st)
        }
    }
}

/// The words Tab may put at the cursor, fetching live names with
/// `session` on `rt`.
pub fn candidates(
    line: &str,
    pos: usize,
    session: &Session,
    rt: &tokio::runtime::Handle,
) -> (usize, Vec<String>) {
    let Ok(ctx) = parse::context(line, pos) else {
        return (pos, Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for state in &ctx.states {
        for c in state.next() {
            match c.kind {
                ChoiceKind::Key => out.push(c.text),
                ChoiceKind::Option(w) => out.push(w.to_owned()),
                ChoiceKind::Slot(s) if s.is_name() => {
                    let mut sess = session.clone();
                    let args = state.args().clone();
                    out.extend(rt.block_on(async move { sess.names(s, &args).await }));
                }
                ChoiceKind::Slot(s) => out.extend(s.fixed().iter().map(|v| (*v).to_owned())),
                ChoiceKind::End | ChoiceKind::Free => {}
            }
        }
    }
    out.retain(|w| w.starts_with(&ctx.partial));
    out.sort();
    out.dedup();
    (ctx.start, out)
}

struct ShellHelper {
    session: Session,
    rt: tokio::runtime::Handle,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &RlContext<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = candidates(line, pos, &self.session, &self.rt);
        let one = words.len() == 1;
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: if one { w + " " } else { w },
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// `?`: prints the line with the `?`, then what may come next, then
/// repaints the prompt and the line below, without Enter.
struct QuestionKey {
    style: Style,
}

impl ConditionalEventHandler for QuestionKey {
    fn handle(
        &self,
        _evt: &Event,
        _n: RepeatCount,
        _positive: bool,
        ctx: &EventContext<'_>,
    ) -> Option<Cmd> {
        let help = question(ctx.line(), ctx.pos(), self.style);
        // The terminal is in raw mode here: lines end in \r\n.
        let text = format!(
            "\r\x1b[K{PROMPT}{}?\r\n{}",
            ctx.line(),
            help.replace('\n', "\r\n")
        );
        let mut out = std::io::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        Some(Cmd::Repaint)
    }
}

/// Runs the shell on `rt` until `quit`, `exit` or Ctrl-D.
pub fn run(
    rt: &Runtime,
    targets: &[(String, Target)],
    style: Style,
    global: Global,
) -> Result<(), Failure> {
    let mut multi = {
        let _entered = rt.enter();
        Multi::new(targets, style)?
    };
    let session = multi.first().clone();
    let server = if multi.len() == 1 {
        session.server().to_owned()
    } else {
        multi.names()
    };
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .max_history_size(1000)
        .map_err(|e| Failure::Server(format!("cannot configure the shell: {e}")))?
        .build();
    let mut rl: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| Failure::Server(format!("cannot start the shell: {e}")))?;
    rl.set_helper(Some(ShellHelper {
        session: session.clone(),
        rt: rt.handle().clone(),
    }));
    rl.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(QuestionKey { style })),
    );
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "maglevc {} on {}; `?` lists what may come next, Tab completes, `quit` leaves.",
        crate::VERSION_LINE,
        server
    );
    loop {
        match rl.readline(PROMPT) {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let mut inv = match parse::parse(&line) {
                    Ok(inv) => inv,
                    Err(e) => {
                        let _ = writeln!(stdout, "{}", style.error(&e.to_string()));
                        continue;
                    }
                };
                if global.json {
                    // The global --json shapes what can be JSON; the rest
                    // prints as text.
                    let _ = multi::apply_json(&mut inv);
                }
                if multi.needs_confirmation(&inv) && !global.yes {
                    let yes = rl
                        .readline(&multi.question(&inv))
                        .is_ok_and(|a| super::is_yes(&a));
                    if !yes {
                        let _ = writeln!(stdout, "not confirmed: nothing was sent");
                        continue;
                    }
                }
                let result = rt.block_on(async {
                    tokio::select! {
                        r = multi.run(&inv, &mut stdout) => r,
                        _ = tokio::signal::ctrl_c() => Err(Failure::Server("interrupted".to_owned())),
                    }
                });
                match result {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(f) => {
                        if let Some(m) = f.message() {
                            let _ = writeln!(stdout, "{}", style.paint(m, Paint::Red));
                        }
                    }
                }
            }
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Failure::Server(format!("the shell failed: {e}"))),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = rl.save_history(h);
    }
    Ok(())
}
