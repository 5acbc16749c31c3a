//! maglevc, the operator CLI (SPEC §9, §16.6): a birdc-style shell and
//! scriptable one-shot commands over maglevd's gRPC API.
//!
//! # Module map
//!
//! - [`tree`]: the command tree as data, the one definition everything
//!   below is derived from.
//! - [`parse`]: unambiguous-prefix parsing, and what may come next.
//! - [`render`]: aligned tables and blocks, colors, durations and ages.
//! - [`lists`]: the tables of `show frontends` and `show backends`, with a
//!   NODE column for several servers.
//! - [`multi`]: one command on several servers (`--server a,b,c`): per
//!   node output, writes confirmed and sent to every node.
//! - [`fleet_view`]: `show fleet`, every frontend on every node with the
//!   agreement verdict.
//! - [`exec`]: running a command against maglevd and printing the reply,
//!   with one renderer per reply type in its own file: [`frontend`]
//!   (`show frontend`), [`backend`] (`show backend`, backend states),
//!   [`healthcheck`], [`overrides`], [`vpp`] (`show vpp lb state`,
//!   `counters`), [`lists`]; single- and multi-server output share them.
//! - [`plan`]: sync results and dry runs (ops, bucket movement), share bars.
//! - [`watch`]: `watch events`.
//! - [`announce`]: `show announcements`, `show node` and what `set node
//!   drain` / `undrain` print.
//! - `sync_health`: the sync-health lines of `show vpp info`.
//! - [`shell`]: the interactive shell (rustyline: history, Tab, `?`).
//! - [`generate`]: shell completions and the `maglevc(1)` man page.
//!
//! [`main`] is the whole program; `src/bin/maglevc.rs` only calls it.
//! Exit codes: 0 success, 1 a server error (or maglevd unreachable), 2 a
//! usage error.

pub mod announce;
pub mod backend;
pub mod exec;
pub mod fleet_view;
pub mod frontend;
pub mod generate;
pub mod healthcheck;
pub mod lists;
pub mod multi;
pub mod overrides;
pub mod parse;
pub mod plan;
pub mod render;
pub mod shell;
mod sync_health;
pub mod tree;
pub mod vpp;
pub mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use self::exec::Failure;
use self::multi::Multi;
use self::parse::Invocation;
use self::render::Style;
use crate::transport::client::ClientTls;

/// The default server address (SPEC §9.1, §16.4).
pub const DEFAULT_SERVER: &str = "localhost:9090";

/// maglevc: the maglevd operator CLI. With no command, an interactive
/// shell; with one, run it once and exit (0 ok, 1 server error, 2 usage
/// error).
#[derive(Debug, Clone, Parser)]
#[command(name = "maglevc", version = crate::VERSION_LINE)]
pub struct Args {
    /// The maglevd gRPC address, host:port; several, comma-separated
    /// (each optionally `name=host:port`), run each command on every one.
    #[arg(long, env = "MAGLEV_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// Print the reply as JSON (as the command's own `--json`).
    #[arg(long)]
    pub json: bool,

    /// Send a write to several servers without asking first (needed
    /// without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Talk TLS to maglevd (implied by --ca, --cert, --key and an
    /// https:// server); without --ca its certificate must chain to the
    /// system's authorities.
    #[arg(long, env = "MAGLEV_TLS", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls: bool,

    /// The CA certificate(s), PEM, that maglevd's certificate must chain to.
    #[arg(long, env = "MAGLEV_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// A client certificate (PEM) for a maglevd that requires one; needs
    /// --key.
    #[arg(long, env = "MAGLEV_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key (PEM) of --cert.
    #[arg(long, env = "MAGLEV_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Color output: on by default in the shell, off for one-shot
    /// commands; NO_COLOR turns the default off. `--color` alone means
    /// true.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub color: Option<bool>,

    /// Print a completion script for this shell (bash, zsh or fish) and
    /// exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the maglevc(1) man page (roff) and exit.
    #[arg(long, hide = true)]
    pub man: bool,

    /// The command to run once, e.g. `show frontends`; none for the shell.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

impl Args {
    /// Where and how to connect, for the first (or only) server.
    pub fn target(&self) -> Target {
        let first = self.server.split(',').next().unwrap_or_default().trim();
        let addr = first.split_once('=').map_or(first, |(_, a)| a.trim());
        self.target_at(addr)
    }

    /// Every listed server, with its name, and how to connect to each.
    pub fn targets(&self) -> Result<Vec<(String, Target)>, Failure> {
        let listed = crate::fleet::servers::parse(&self.server).map_err(Failure::Usage)?;
        Ok(listed
            .into_iter()
            .map(|l| (l.name, self.target_at(&l.addr)))
            .collect())
    }

    fn target_at(&self, addr: &str) -> Target {
        let tls =
            self.tls || self.ca.is_some() || self.cert.is_some() || addr.starts_with("https://");
        Target {
            server: addr.to_owned(),
            tls: tls.then(|| ClientTls {
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
            }),
        }
    }
}

/// The global flags that shape every command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Global {
    /// `--json` before the command.
    pub json: bool,
    /// `--yes`: no confirmation for writes to several servers.
    pub yes: bool,
}

/// A maglevd to talk to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Its gRPC address, `host:port`.
    pub server: String,
    /// TLS, if it serves it.
    pub tls: Option<ClientTls>,
}

impl Target {
    /// A plain-gRPC target at `server`.
    pub fn plain(server: &str) -> Target {
        Target {
            server: server.to_owned(),
            tls: None,
        }
    }
}

/// Whether output is colored: an explicit `--color` wins; otherwise on in
/// the shell unless `NO_COLOR` is set to something.
pub fn color(explicit: Option<bool>, shell: bool, no_color: Option<&str>) -> bool {
    explicit.unwrap_or(shell && no_color.is_none_or(str::is_empty))
}

/// The whole program: flags parsed, then the shell or one command.
pub fn main(args: Args) -> ExitCode {
    let mut stdout = std::io::stdout();
    if let Some(shell) = args.completions {
        let text = generate::completions(shell);
        return exit(
            exec::write_out(&mut stdout, &text).map(|_| ()),
            Style { color: false },
        );
    }
    if args.man {
        let text = generate::man();
        return exit(
            exec::write_out(&mut stdout, &text).map(|_| ()),
            Style { color: false },
        );
    }
    let interactive = args.command.is_empty();
    let no_color = std::env::var("NO_COLOR").ok();
    let style = Style {
        color: color(args.color, interactive, no_color.as_deref()),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit(Err(Failure::Server(format!("cannot start: {e}"))), style),
    };
    let targets = match args.targets() {
        Ok(t) => t,
        Err(f) => return exit(Err(f), style),
    };
    let global = Global {
        json: args.json,
        yes: args.yes,
    };
    if interactive {
        return exit(shell::run(&rt, &targets, style, global), style);
    }
    let result = rt.block_on(one_shot(
        &targets,
        &args.command,
        style,
        global,
        &mut stdout,
    ));
    exit(result, style)
}

/// Runs one command given as words on every listed server, writing to
/// `out`; a write to several asks first (on a terminal) unless `--yes`.
pub async fn one_shot(
    targets: &[(String, Target)],
    words: &[String],
    style: Style,
    global: Global,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let mut inv = parse::parse_words(words).map_err(|e| Failure::Usage(e.to_string()))?;
    if global.json {
        multi::apply_json(&mut inv)?;
    }
    let mut multi = Multi::new(targets, style)?;
    if multi.needs_confirmation(&inv) && !global.yes {
        confirm(&multi, &inv)?;
    }
    multi.run(&inv, out).await.map(|_| ())
}

/// Asks on the terminal whether to send `inv` to every server; without a
/// terminal, refuses (`--yes` is how scripts say yes).
fn confirm(multi: &Multi, inv: &Invocation) -> Result<(), Failure> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Usage(format!(
            "\"{}\" would change {} servers ({}): give --yes to confirm without a terminal",
            inv.words.join(" "),
            multi.len(),
            multi.names()
        )));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{}", multi.question(inv));
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .read_line(&mut answer)
        .map_err(|e| Failure::Server(format!("cannot read the answer: {e}")))?;
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(Failure::Server(
            "not confirmed: nothing was sent".to_owned(),
        ))
    }
}

/// Whether a confirmation answer is yes (`y` or `yes`, any case).
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn exit(result: Result<(), Failure>, style: Style) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if let Some(m) = f.message() {
                let mut err = std::io::stderr();
                let _ = writeln!(err, "{}", style.error(m));
            }
            ExitCode::from(f.exit_code())
        }
    }
}
