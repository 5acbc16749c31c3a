//! The parser over [`tree::ROOT`](super::tree::ROOT): unambiguous-prefix
//! matching of keywords where an exact match wins, typed slots, options in
//! any order, and what may come next (for `?` and Tab).
//!
//! A line is read in every way the tree allows: a keyword prefix may stand
//! for several keywords, and the readings that do not parse the whole line
//! drop out. So `sh fr` is `show frontends` (`show frontend` would need a
//! name) and `sh b nginx0-ams` is `show backend nginx0-ams` (`show
//! backends` takes no name). A word that still has two readings is
//! reported as ambiguous with its candidates.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::tree::{Command, CommandId, Node, Opt, ROOT, Slot, Word};

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The command.
    pub id: CommandId,
    /// The canonical words, e.g. `show frontend web`.
    pub words: Vec<String>,
    /// The slot values by slot (each slot appears at most once per command).
    pub args: BTreeMap<Slot, String>,
    /// The options given, by keyword.
    pub flags: BTreeSet<&'static str>,
    /// Free words after `help`.
    pub rest: Vec<String>,
}

impl Invocation {
    /// A slot's value.
    pub fn arg(&self, slot: Slot) -> Option<&str> {
        self.args.get(&slot).map(String::as_str)
    }

    /// A numeric slot's value (checked against its range when parsed).
    pub fn num(&self, slot: Slot) -> Option<u64> {
        self.arg(slot).and_then(|v| v.parse().ok())
    }

    /// Whether an option was given.
    pub fn flag(&self, word: &str) -> bool {
        self.flags.contains(word)
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.flag("--json")
    }
}

/// Why a line does not parse. Every variant names the word at fault and
/// what would have been accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but blanks.
    Empty,
    /// A word that matches nothing here.
    Unknown {
        /// The word.
        word: String,
        /// The canonical words before it.
        after: String,
        /// What would have been accepted.
        expected: Vec<String>,
    },
    /// A prefix of several keywords that all read on.
    Ambiguous {
        /// The word.
        word: String,
        /// The canonical words before it.
        after: String,
        /// The keywords it could be.
        choices: Vec<String>,
    },
    /// The line stops before a command is complete.
    Incomplete {
        /// The canonical words given.
        after: String,
        /// What may come next.
        expected: Vec<String>,
    },
    /// A number slot given something else, or out of range.
    BadNumber {
        /// The word.
        word: String,
        /// The slot.
        slot: Slot,
        /// The least value.
        min: u64,
        /// The greatest value.
        max: u64,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn at(after: &str) -> String {
            if after.is_empty() {
                String::new()
            } else {
                format!(" after \"{after}\"")
            }
        }
        match self {
            ParseError::Empty => f.write_str("no command given (try `help`)"),
            ParseError::Unknown {
                word,
                after,
                expected,
            } => write!(
                f,
                "unknown word \"{word}\"{}: expected {}",
                at(after),
                list(expected)
            ),
            ParseError::Ambiguous {
                word,
                after,
                choices,
            } => write!(
                f,
                "ambiguous word \"{word}\"{}: it could be {}",
                at(after),
                list(choices)
            ),
            ParseError::Incomplete { after, expected } => write!(
                f,
                "incomplete command \"{after}\": expected {}",
                list(expected)
            ),
            ParseError::BadNumber {
                word,
                slot,
                min,
                max,
            } => {
                if *max == u64::MAX {
                    write!(
                        f,
                        "\"{word}\" is not a valid {slot}: expected a number from {min}"
                    )
                } else {
                    write!(
                        f,
                        "\"{word}\" is not a valid {slot}: expected a number from {min} to {max}"
                    )
                }
            }
        }
    }
}

impl std::error::Error for ParseError {}

fn list(words: &[String]) -> String {
    match words {
        [] => "nothing more".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Splits a line into words at blanks.
pub fn tokenize(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// What a node position in the tree is: the root or a node.
#[derive(Clone, Copy, Debug)]
enum At {
    Root,
    Node(&'static Node),
}

impl At {
    fn children(self) -> &'static [Node] {
        match self {
            At::Root => ROOT,
            At::Node(n) => n.children,
        }
    }

    fn command(self) -> Option<Command> {
        match self {
            At::Root => None,
            At::Node(n) => n.command,
        }
    }
}

/// One reading of a line so far.
#[derive(Clone, Debug)]
pub struct State {
    at: At,
    /// For each word consumed: the index of the word and its canonical text.
    path: Vec<(usize, String)>,
    args: BTreeMap<Slot, String>,
    flags: BTreeSet<&'static str>,
    rest: Vec<String>,
    /// The value an option given last still needs.
    pending: Option<Slot>,
}

impl State {
    fn root() -> State {
        State {
            at: At::Root,
            path: Vec::new(),
            args: BTreeMap::new(),
            flags: BTreeSet::new(),
            rest: Vec::new(),
            pending: None,
        }
    }

    fn complete(&self) -> bool {
        self.at.command().is_some() && self.pending.is_none()
    }

    fn after(&self) -> String {
        self.path
            .iter()
            .map(|(_, w)| w.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn unused_options(&self) -> impl Iterator<Item = &'static Opt> + '_ {
        self.at
            .command()
            .map(|c| c.options)
            .unwrap_or_default()
            .iter()
            .filter(|o| !self.flags.contains(o.word))
    }

    /// The slot values read so far (for completing names that depend on
    /// them, like a frontend's pools).
    pub fn args(&self) -> &BTreeMap<Slot, String> {
        &self.args
    }

    /// What may come next here.
    pub fn next(&self) -> Vec<Choice> {
        let mut out = Vec::new();
        if let Some(s) = self.pending {
            out.push(Choice {
                text: s.placeholder().to_owned(),
                help: s.help(),
                kind: ChoiceKind::Slot(s),
            });
            return out;
        }
        if self.at.command().is_some_and(|c| c.rest) {
            out.push(Choice {
                text: "<word>".to_owned(),
                help: "a command word",
                kind: ChoiceKind::Free,
            });
        }
        for n in self.at.children() {
            out.push(match n.word {
                Word::Key(k) => Choice {
                    text: k.to_owned(),
                    help: n.help,
                    kind: ChoiceKind::Key,
                },
                Word::Slot(s) => Choice {
                    text: s.placeholder().to_owned(),
                    help: s.help(),
                    kind: ChoiceKind::Slot(s),
                },
            });
        }
        for o in self.unused_options() {
            let text = match o.arg {
                Some(a) => format!("{} {}", o.word, a.placeholder()),
                None => o.word.to_owned(),
            };
            out.push(Choice {
                text,
                help: o.help,
                kind: ChoiceKind::Option(o.word),
            });
        }
        if self.at.command().is_some() {
            out.push(Choice {
                text: "<cr>".to_owned(),
                help: "run the command",
                kind: ChoiceKind::End,
            });
        }
        out
    }

    fn invocation(&self) -> Option<Invocation> {
        if self.pending.is_some() {
            return None;
        }
        let c = self.at.command()?;
        Some(Invocation {
            id: c.id,
            words: self.path.iter().map(|(_, w)| w.clone()).collect(),
            args: self.args.clone(),
            flags: self.flags.clone(),
            rest: self.rest.clone(),
        })
    }
}

/// One thing that may come next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The keyword, or a placeholder like `<frontend>`, or `<cr>`.
    pub text: String,
    /// One line of help.
    pub help: &'static str,
    /// What it is.
    pub kind: ChoiceKind,
}

/// The kind of a [`Choice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceKind {
    /// A keyword.
    Key,
    /// A typed value.
    Slot(Slot),
    /// An option (its keyword).
    Option(&'static str),
    /// The command may end here.
    End,
    /// Any word (after `help`).
    Free,
}

/// The result of reading words every way the tree allows.
struct Reading {
    /// The readings that consumed every word.
    done: Vec<State>,
    /// The failure that got furthest, if any reading failed.
    failure: Option<(usize, ParseError)>,
}

fn keep_deepest(best: &mut Option<(usize, ParseError)>, at: usize, err: ParseError) {
    if best.as_ref().is_none_or(|(b, _)| at > *b) {
        *best = Some((at, err));
    }
}

fn check_slot(slot: Slot, word: &str) -> Result<(), ParseError> {
    if let Some((min, max)) = slot.range() {
        match word.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(()),
            _ => Err(ParseError::BadNumber {
                word: word.to_owned(),
                slot,
                min,
                max,
            }),
        }
    } else if !slot.fixed().is_empty() && !slot.fixed().contains(&word) {
        Err(ParseError::Unknown {
            word: word.to_owned(),
            after: String::new(),
            expected: slot.fixed().iter().map(|s| (*s).to_owned()).collect(),
        })
    } else {
        Ok(())
    }
}

/// A keyword candidate at a position: a child node or an option.
enum Cand {
    Child(&'static Node),
    Opt(&'static Opt),
}

impl Cand {
    fn word(&self) -> &'static str {
        match self {
            Cand::Child(n) => n.word.text(),
            Cand::Opt(o) => o.word,
        }
    }
}

fn read(state: State, words: &[String], i: usize, out: &mut Reading) {
    if i == words.len() {
        out.done.push(state);
        return;
    }
    if state.at.command().is_some_and(|c| c.rest) {
        let mut s = state;
        s.rest = words[i..].to_vec();
        out.done.push(s);
        return;
    }
    let word = &words[i];
    if let Some(slot) = state.pending {
        match check_slot(slot, word) {
            Err(e) => keep_deepest(&mut out.failure, i, with_after(e, &state)),
            Ok(()) => {
                let mut s = state;
                s.pending = None;
                s.path.push((i, word.clone()));
                s.args.insert(slot, word.clone());
                read(s, words, i + 1, out);
            }
        }
        return;
    }
    let mut cands: Vec<Cand> = state
        .at
        .children()
        .iter()
        .filter(|n| matches!(n.word, Word::Key(_)))
        .map(Cand::Child)
        .chain(state.unused_options().map(Cand::Opt))
        .filter(|c| c.word().starts_with(word.as_str()))
        .collect();
    if cands.iter().any(|c| c.word() == word) {
        cands.retain(|c| c.word() == word);
    }
    if !cands.is_empty() {
        let several = cands.len() > 1;
        let words_of: Vec<String> = cands.iter().map(|c| c.word().to_owned()).collect();
        let mut sub = Reading {
            done: Vec::new(),
            failure: None,
        };
        for c in cands {
            let mut s = state.clone();
            s.path.push((i, c.word().to_owned()));
            match c {
                Cand::Child(n) => s.at = At::Node(n),
                Cand::Opt(o) => {
                    s.flags.insert(o.word);
                    s.pending = o.arg;
                }
            }
            read(s, words, i + 1, &mut sub);
        }
        // Several keywords and none read past the next word: the word
        // itself is what is wrong.
        let stuck = sub.done.is_empty() && sub.failure.as_ref().is_none_or(|(at, _)| *at <= i + 1);
        out.done.append(&mut sub.done);
        if several && stuck {
            let mut choices = words_of;
            choices.sort();
            keep_deepest(
                &mut out.failure,
                i + 1,
                ParseError::Ambiguous {
                    word: word.clone(),
                    after: state.after(),
                    choices,
                },
            );
        } else if let Some((at, e)) = sub.failure {
            keep_deepest(&mut out.failure, at, e);
        }
        return;
    }
    // No keyword fits: a slot child takes the word.
    let slot = state.at.children().iter().find_map(|n| match n.word {
        Word::Slot(s) => Some((n, s)),
        Word::Key(_) => None,
    });
    match slot {
        Some((n, s)) => match check_slot(s, word) {
            Err(e) => keep_deepest(&mut out.failure, i, with_after(e, &state)),
            Ok(()) => {
                let mut st = state;
                st.path.push((i, word.clone()));
                st.args.insert(s, word.clone());
                st.at = At::Node(n);
                read(st, words, i + 1, out);
            }
        },
        None => {
            let expected = state
                .next()
                .into_iter()
                .filter(|c| c.kind != ChoiceKind::End)
                .map(|c| c.text)
                .collect::<Vec<_>>();
            let expected = if expected.is_empty() {
                vec!["nothing more".to_owned()]
            } else {
                expected
            };
            keep_deepest(
                &mut out.failure,
                i,
                ParseError::Unknown {
                    word: word.clone(),
                    after: state.after(),
                    expected,
                },
            );
        }
    }
}

fn with_after(e: ParseError, s: &State) -> ParseError {
    match e {
        ParseError::Unknown { word, expected, .. } => ParseError::Unknown {
            word,
            after: s.after(),
            expected,
        },
        other => other,
    }
}

/// The readings of `words` that consume every word, or the furthest
/// failure when there is none.
fn readings(words: &[String]) -> Result<Vec<State>, ParseError> {
    let mut out = Reading {
        done: Vec::new(),
        failure: None,
    };
    read(State::root(), words, 0, &mut out);
    if out.done.is_empty() {
        Err(out.failure.map(|(_, e)| e).unwrap_or(ParseError::Empty))
    } else {
        Ok(out.done)
    }
}

/// The first word where two readings differ, as an ambiguity.
fn ambiguity(words: &[String], states: &[State]) -> ParseError {
    let first = &states[0];
    for (k, (i, w)) in first.path.iter().enumerate() {
        let differs = states
            .iter()
            .any(|s| s.path.get(k).is_none_or(|(_, x)| x != w));
        if differs {
            let mut choices: Vec<String> = states
                .iter()
                .filter_map(|s| s.path.get(k).map(|(_, x)| x.clone()))
                .collect();
            choices.sort();
            choices.dedup();
            return ParseError::Ambiguous {
                word: words[*i].clone(),
                after: first.path[..k]
                    .iter()
                    .map(|(_, w)| w.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                choices,
            };
        }
    }
    ParseError::Ambiguous {
        word: words.last().cloned().unwrap_or_default(),
        after: first.after(),
        choices: Vec::new(),
    }
}

/// Parses a command line.
pub fn parse(line: &str) -> Result<Invocation, ParseError> {
    parse_words(&tokenize(line))
}

/// Parses a command line given as words.
pub fn parse_words(words: &[String]) -> Result<Invocation, ParseError> {
    if words.is_empty() {
        return Err(ParseError::Empty);
    }
    let states = readings(words)?;
    let complete: Vec<&State> = states.iter().filter(|s| s.complete()).collect();
    match complete.as_slice() {
        [one] => one.invocation().ok_or(ParseError::Empty),
        [] if states.len() == 1 => Err(ParseError::Incomplete {
            after: states[0].after(),
            expected: states[0].next().into_iter().map(|c| c.text).collect(),
        }),
        [] => Err(ambiguity(words, &states)),
        _ => {
            let owned: Vec<State> = complete.into_iter().cloned().collect();
            Err(ambiguity(words, &owned))
        }
    }
}

/// What the cursor is on: the readings of the words before it and the
/// partial word under it.
#[derive(Clone, Debug)]
pub struct Context {
    /// The readings of the complete words.
    pub states: Vec<State>,
    /// The word being typed (empty after a blank).
    pub partial: String,
    /// Where the partial word starts in the line.
    pub start: usize,
}

/// Reads `line` up to `pos` for `?` and Tab.
pub fn context(line: &str, pos: usize) -> Result<Context, ParseError> {
    let upto = line.get(..pos).unwrap_or(line);
    let start = upto
        .rfind(char::is_whitespace)
        .map(|i| i + upto[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let partial = upto[start..].to_owned();
    let words = tokenize(&upto[..start]);
    let states = if words.is_empty() {
        vec![State::root()]
    } else {
        readings(&words)?
    };
    Ok(Context {
        states,
        partial,
        start,
    })
}

impl Context {
    /// Every choice of every reading whose text starts with the partial
    /// word (slots and `<cr>` are kept while nothing is typed; a typed
    /// word keeps the slots that could take it), without duplicates.
    pub fn choices(&self) -> Vec<Choice> {
        let mut out: Vec<Choice> = Vec::new();
        for s in &self.states {
            for c in s.next() {
                let keep = match c.kind {
                    ChoiceKind::Key | ChoiceKind::Option(_) => c.text.starts_with(&self.partial),
                    ChoiceKind::Slot(_) | ChoiceKind::Free => true,
                    ChoiceKind::End => self.partial.is_empty(),
                };
                if keep && !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::{Syntax, commands};
    use super::*;

    /// A concrete line for a syntax: slots filled, no options.
    fn example(c: &Syntax) -> String {
        c.words
            .iter()
            .map(|w| match *w {
                "<0-100>" => "50",
                "<n>" => "3",
                "<level>" => "debug",
                w if w.starts_with('<') => "x1",
                w => w,
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn every_command_parses_in_full_and_with_every_option() {
        for c in commands() {
            let line = example(&c);
            let inv = parse(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(inv.id, c.command.id, "{line}");
            let mut with = line.clone();
            for o in c.command.options {
                with.push(' ');
                with.push_str(o.word);
                match o.arg {
                    Some(Slot::Count) => with.push_str(" 7"),
                    Some(Slot::LogLevel) => with.push_str(" warn"),
                    Some(_) | None => {}
                }
            }
            let inv = parse(&with).unwrap_or_else(|e| panic!("{with}: {e}"));
            assert_eq!(inv.id, c.command.id, "{with}");
            for o in c.command.options {
                assert!(inv.flag(o.word), "{with}: {}", o.word);
            }
        }
    }

    #[test]
    fn every_command_parses_from_its_shortest_unambiguous_prefixes() {
        // Each keyword cut to the shortest prefix that still reads as the
        // same command (the whole line decides, so `sh fr` is enough).
        for c in commands() {
            let full: Vec<String> = tokenize(&example(&c));
            let mut words = full.clone();
            for i in 0..words.len() {
                if c.words[i].starts_with('<') {
                    continue;
                }
                let kw = full[i].clone();
                for n in 1..=kw.len() {
                    let mut trial = words.clone();
                    trial[i] = kw[..n].to_owned();
                    if parse_words(&trial).is_ok_and(|inv| inv.id == c.command.id) {
                        words = trial;
                        break;
                    }
                }
            }
            let inv = parse_words(&words).unwrap();
            assert_eq!(inv.id, c.command.id, "{words:?}");
        }
    }

    #[test]
    fn every_prefix_resolves_or_names_its_candidates() {
        // Any keyword of any command cut to any prefix reads as a command
        // whose word there starts with that prefix, or is refused as
        // ambiguous with the keyword among the candidates.
        for c in commands() {
            let full = tokenize(&example(&c));
            for i in (0..full.len()).filter(|i| !c.words[*i].starts_with('<')) {
                for n in 1..=full[i].len() {
                    let mut words = full.clone();
                    let prefix = full[i][..n].to_owned();
                    words[i] = prefix.clone();
                    match parse_words(&words) {
                        Ok(inv) => assert!(
                            inv.words[i].starts_with(&prefix),
                            "{words:?} read as {:?}",
                            inv.words
                        ),
                        Err(ParseError::Ambiguous { word, choices, .. }) => {
                            assert_eq!(word, prefix, "{words:?}");
                            assert!(choices.contains(&full[i]), "{words:?}: {choices:?}");
                        }
                        // An exact keyword wins even where it does not fit
                        // the rest (`show frontend` for `show frontends`).
                        Err(e) => assert!(
                            commands().iter().any(|d| d.words.len() > i
                                && d.words[..i] == c.words[..i]
                                && d.words[i] == prefix),
                            "{words:?}: {e}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn prefixes_resolve_by_reading_the_whole_line() {
        let p = |l: &str| parse(l).map(|i| (i.id, i.args.clone()));
        assert_eq!(p("sh fr").unwrap().0, CommandId::ShowFrontends);
        let (id, args) = p("sh b nginx0-ams").unwrap();
        assert_eq!(id, CommandId::ShowBackend);
        assert_eq!(args[&Slot::Backend], "nginx0-ams");
        assert_eq!(p("sh b").unwrap().0, CommandId::ShowBackends);
        assert_eq!(p("sh h").unwrap().0, CommandId::ShowHealthChecks);
        assert_eq!(p("sh v l s").unwrap().0, CommandId::ShowVppLbState);
        assert_eq!(p("sh v l s web").unwrap().1[&Slot::Frontend], "web");
        assert_eq!(p("sh v l c").unwrap().0, CommandId::ShowVppLbCounters);
        assert_eq!(p("sy v l s").unwrap().0, CommandId::SyncVppLbState);
        assert_eq!(p("se b nginx0 p").unwrap().0, CommandId::PauseBackend);
        assert_eq!(p("se b nginx0 d").unwrap().0, CommandId::DisableBackend);
        assert_eq!(p("co r").unwrap().0, CommandId::ConfigReload);
        assert_eq!(
            p("cl o b nginx0").unwrap().0,
            CommandId::ClearBackendOverride
        );
        assert_eq!(p("sh o").unwrap().0, CommandId::ShowOverrides);
        assert_eq!(p("q").unwrap().0, CommandId::Quit);
        assert_eq!(p("e").unwrap().0, CommandId::Quit);
        // An exact keyword wins over a longer one it is a prefix of.
        assert_eq!(p("show frontend web").unwrap().0, CommandId::ShowFrontend);
        let inv = parse("se f web po primary b nginx0 w 0 fl").unwrap();
        assert_eq!(inv.id, CommandId::SetWeight);
        assert_eq!(inv.num(Slot::Weight), Some(0));
        assert!(inv.flag("flush"));
        assert_eq!(
            inv.words.join(" "),
            "set frontend web pool primary backend nginx0 weight 0 flush"
        );
        let inv = parse("w e num 5 le debug ba").unwrap();
        assert_eq!(inv.id, CommandId::WatchEvents);
        assert_eq!(inv.num(Slot::Count), Some(5));
        assert_eq!(inv.arg(Slot::LogLevel), Some("debug"));
        assert!(inv.flag("backend") && !inv.flag("frontend"));
        // `b` for the `backend` option, `f` for `frontend`.
        let inv = parse("watch events f b v").unwrap();
        assert!(inv.flag("backend") && inv.flag("frontend") && inv.flag("vpp"));
        assert!(parse("show frontends --j").unwrap().json());
        assert_eq!(parse("help sh vpp").unwrap().rest, vec!["sh", "vpp"]);
    }

    #[test]
    fn ambiguity_names_the_word_and_the_candidates() {
        assert_eq!(
            parse("s"),
            Err(ParseError::Ambiguous {
                word: "s".into(),
                after: String::new(),
                choices: vec!["set".into(), "show".into(), "sync".into()],
            })
        );
        assert_eq!(
            parse("show frontends").map(|i| i.id),
            Ok(CommandId::ShowFrontends)
        );
        let e = parse("show vpp lb").unwrap_err();
        assert_eq!(
            e,
            ParseError::Incomplete {
                after: "show vpp lb".into(),
                expected: vec!["state".into(), "counters".into()],
            }
        );
        // `watch events l` could be `log` or `level <level>`: alone it is
        // `log` (level needs a value), with a level after it `level`.
        assert!(parse("watch events l").unwrap().flag("log"));
        let inv = parse("watch events l debug").unwrap();
        assert_eq!(inv.arg(Slot::LogLevel), Some("debug"));
        assert!(!inv.flag("log"));
        let e = parse("s x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ambiguous word \"s\": it could be set, show or sync"
        );
    }

    #[test]
    fn errors_name_the_word_and_the_choices() {
        assert_eq!(parse("  "), Err(ParseError::Empty));
        let e = parse("shwo frontends").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown word \"shwo\": expected show, sync, set, clear, watch, config, help, quit or exit"
        );
        let e = parse("show frontends extra").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown word \"extra\" after \"show frontends\": expected --json"
        );
        let e = parse("sh b x y").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown word \"y\" after \"show backend x\": expected --json"
        );
        let e = parse("show frontend").unwrap_err();
        assert_eq!(
            e.to_string(),
            "incomplete command \"show frontend\": expected <frontend>"
        );
        let e = parse("set frontend web pool p backend b weight 101").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"101\" is not a valid <0-100>: expected a number from 0 to 100"
        );
        let e = parse("watch events num 0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"0\" is not a valid <n>: expected a number from 1"
        );
        let e = parse("watch events level loud").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown word \"loud\" after \"watch events level\": expected trace, debug, info, warn or error"
        );
        let e = parse("watch events num").unwrap_err();
        assert_eq!(
            e.to_string(),
            "incomplete command \"watch events num\": expected <n>"
        );
        // An option is given once.
        let e = parse("show frontends --json --json").unwrap_err();
        assert!(
            matches!(e, ParseError::Unknown { ref word, .. } if word == "--json"),
            "{e:?}"
        );
    }

    fn next(line: &str) -> Vec<String> {
        context(line, line.len())
            .unwrap()
            .choices()
            .into_iter()
            .map(|c| c.text)
            .collect()
    }

    #[test]
    fn question_lists_the_right_words_at_every_depth() {
        assert_eq!(
            next(""),
            [
                "show", "sync", "set", "clear", "watch", "config", "help", "quit", "exit"
            ]
        );
        assert_eq!(next("s"), ["show", "sync", "set"]);
        assert_eq!(
            next("show "),
            [
                "version",
                "frontends",
                "frontend",
                "backends",
                "backend",
                "overrides",
                "announcements",
                "node",
                "fleet",
                "healthchecks",
                "healthcheck",
                "vpp"
            ]
        );
        assert_eq!(next("show fr"), ["frontends", "frontend"]);
        // After an ambiguous prefix, both readings say what may follow.
        assert_eq!(next("sh b "), ["--json", "<cr>", "<backend>"]);
        assert_eq!(next("show backend "), ["<backend>"]);
        assert_eq!(next("show backend x "), ["--json", "<cr>"]);
        assert_eq!(next("show vpp "), ["info", "lb"]);
        assert_eq!(next("show vpp lb "), ["state", "counters"]);
        assert_eq!(next("show vpp lb state "), ["<frontend>", "--json", "<cr>"]);
        assert_eq!(
            next("set backend x "),
            ["pause", "resume", "enable", "disable"]
        );
        assert_eq!(next("set frontend web "), ["pool"]);
        assert_eq!(
            next("set frontend web pool p backend b weight "),
            ["<0-100>"]
        );
        assert_eq!(
            next("set frontend web pool p backend b weight 5 "),
            ["flush", "dry-run", "--json", "<cr>"]
        );
        assert_eq!(
            next("watch events num 3 "),
            [
                "log",
                "level <level>",
                "backend",
                "frontend",
                "vpp",
                "announce",
                "--json",
                "<cr>"
            ]
        );
        assert_eq!(next("watch events level "), ["<level>"]);
        assert_eq!(next("config "), ["check", "reload"]);
        assert!(context("shwo ", 5).is_err());
        // The cursor decides, not the end of the line.
        assert_eq!(
            context("show vpp", 5).unwrap().choices().len(),
            12,
            "the words after `show `"
        );
    }
}
