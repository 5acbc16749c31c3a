//! The docs say what exists, and what exists is in the docs: the flags of
//! the three binaries (as clap prints them) against their guides and every
//! command line the docs show; maglevc's command tree against its guide
//! and every `maglevc` command the docs show; the config schema (as the
//! strict parser names its fields) against the config guide and the
//! every-key example `docs/examples/maglev.yaml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use maglev_bin::cli::{parse, tree};
use maglev_core::config::{Config, ConfigError};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// README.md and every `docs/*.md`, with their names.
fn all_docs() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    names.sort();
    names.insert(0, "README.md".into());
    names
        .into_iter()
        .map(|n| (read(&n), n))
        .map(|(t, n)| (n, t))
        .collect()
}

// ---- flags ----

const BINARIES: [(&str, &str, &str); 3] = [
    (
        "maglevd",
        env!("CARGO_BIN_EXE_maglevd"),
        "docs/operations.md",
    ),
    ("maglevc", env!("CARGO_BIN_EXE_maglevc"), "docs/maglevc.md"),
    ("maglevt", env!("CARGO_BIN_EXE_maglevt"), "docs/maglevt.md"),
];

/// The long flags `exe --help` lists, plus the hidden `--man` and
/// `--completions` every binary has.
fn flags(exe: &str) -> BTreeSet<String> {
    let out = Command::new(exe).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let mut set: BTreeSet<String> = help
        .lines()
        .map(str::trim_start)
        .filter_map(|l| l.strip_prefix("-").map(|_| l))
        .filter_map(|l| {
            // `-h, --help`: the long one.
            let l = match l.as_bytes() {
                [b'-', c, b',', b' ', ..] if c.is_ascii_alphanumeric() => &l[4..],
                _ => l,
            };
            let flag = l.split([' ', '[', '=', '<']).next()?;
            flag.starts_with("--").then(|| flag.to_string())
        })
        .collect();
    set.insert("--man".into());
    set.insert("--completions".into());
    set
}

/// Whether `text` mentions `flag` as code: `` `--flag` ``, `` `--flag X` ``,
/// `` `--flag=X` `` or `` `--flag[=X]` ``.
fn mentions_flag(text: &str, flag: &str) -> bool {
    let needle = format!("`{flag}");
    text.match_indices(&needle).any(|(i, _)| {
        matches!(
            text[i + needle.len()..].chars().next(),
            Some('`' | ' ' | '=' | '[')
        )
    })
}

#[test]
fn every_flag_is_in_its_binarys_guide() {
    for (name, exe, doc) in BINARIES {
        let text = read(doc);
        let hidden = ["--help", "--version", "--man", "--completions"];
        let missing: Vec<_> = flags(exe)
            .into_iter()
            .filter(|f| !hidden.contains(&f.as_str()) && !mentions_flag(&text, f))
            .collect();
        assert!(
            missing.is_empty(),
            "{doc} does not document {name}'s {missing:?}"
        );
    }
}

/// The code of a markdown text: fenced blocks line by line, and inline
/// code spans.
fn code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_string());
        } else {
            out.extend(line.split('`').skip(1).step_by(2).map(String::from));
        }
    }
    out
}

/// The arguments after each `maglevX` (or `--bin maglevX --`) on a line
/// of code, up to the end of the command (a pipe, `;`, `&&`, `#`, a
/// closing parenthesis).
fn invocations<'a>(line: &'a str, name: &str) -> Vec<Vec<&'a str>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let is_name = w.trim_start_matches(['(', '"', '\'']).rsplit('/').next() == Some(name);
        // A command starts the line or follows a shell word that runs one.
        let runs = i == 0
            || [
                "sudo", "$", "--bin", "|", "&&", ";", "exec", "time", "nice", "watch",
            ]
            .contains(&words[i - 1])
            || words[i - 1].contains('=') && !words[i - 1].starts_with('-');
        if !is_name || !runs {
            continue;
        }
        let mut rest = &words[i + 1..];
        // `cargo run --bin maglevd -- --demo`: the arguments follow `--`.
        if i > 0 && words[i - 1] == "--bin" {
            match rest.iter().position(|w| *w == "--") {
                Some(p) => rest = &rest[p + 1..],
                None => rest = &[],
            }
        }
        let end = rest
            .iter()
            .position(|w| {
                ["|", ";", "&&", "||", "#", ">", "2>&1"].contains(w) || w.starts_with('#')
            })
            .unwrap_or(rest.len());
        // maglevd and maglevt take only flags: `maglevd wants …` is prose.
        if name != "maglevc" && rest.first().is_some_and(|w| !w.starts_with('-')) {
            continue;
        }
        found.push(rest[..end].to_vec());
    }
    found
}

#[test]
fn every_flag_the_docs_show_exists() {
    let mut all: Vec<(&str, BTreeSet<String>)> = BINARIES
        .iter()
        .map(|(n, exe, _)| (*n, flags(exe)))
        .collect();
    // maglevc's commands take `--json` (an option of the command tree).
    all[1].1.insert("--json".into());
    let any: BTreeSet<&String> = all.iter().flat_map(|(_, f)| f).collect();
    // Flags of other tools the docs show beside ours.
    let others = [
        "--workspace",
        "--all-features",
        "--locked",
        "--release",
        "--bin",
        "--bench",
        "--example",
        "--profile",
        "--no-build",
        "--out",
        "--offline",
        "--threshold",
        "--now",
        "--check",
        "--all-targets",
        "--seconds",
        "--seed",
        "--fast",
        "--variant",
        "--root",
        "--force-script-chrootless",
        "--man=no",
        "--prefix",
        "--append",
        "--groups",
        "--lib",
        "--test",
        "--features",
        "--quiet",
        "--cert",
        "--key",
        "--plaintext",
        // The benches' own processes.
        "--role",
    ];
    let mut bad = Vec::new();
    for (doc, text) in all_docs() {
        for line in code(&text) {
            // Flags on a line that runs one of ours belong to it.
            for (name, own) in &all {
                for args in invocations(&line, name) {
                    for a in args.iter().filter(|a| a.starts_with("--") && **a != "--") {
                        let flag = a
                            .split('=')
                            .next()
                            .unwrap()
                            .trim_matches(['`', '"', '\'', ',', ')']);
                        if !own.contains(flag) {
                            bad.push(format!("{doc}: `{line}`: {name} has no {flag}"));
                        }
                    }
                }
            }
            // A flag named on its own, as inline code, is one of ours.
            let t = line.trim();
            if t.starts_with("--") && !t.contains(' ')
                || t.starts_with("--") && t.split(' ').count() == 2
            {
                let flag = t.split([' ', '=', '[']).next().unwrap();
                if !any.contains(&flag.to_string()) && !others.contains(&flag) && flag != "--" {
                    bad.push(format!("{doc}: `{t}`: no binary has {flag}"));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "flags the binaries do not have:\n{}",
        bad.join("\n")
    );
}

// ---- maglevc's commands ----

/// The keyword words of a syntax line: up to the first slot or option.
fn keywords(line: &str) -> String {
    line.split_whitespace()
        .take_while(|w| !w.starts_with(['<', '[', '|']))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_command_is_in_the_maglevc_guide_and_every_command_there_exists() {
    let text = read("docs/maglevc.md");
    let block = text
        .split("## Commands")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("docs/maglevc.md has a ## Commands section with a code block");
    let documented: BTreeSet<String> = block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|l| {
            // `quit | exit`: two commands on one line.
            if l.contains(" | ") && !l.contains('<') {
                l.split(" | ").map(keywords).collect::<Vec<_>>()
            } else {
                vec![keywords(l)]
            }
        })
        .collect();
    let real: BTreeSet<String> = tree::commands()
        .iter()
        .map(|s| keywords(&s.words.join(" ")))
        .collect();
    assert_eq!(
        documented, real,
        "docs/maglevc.md ## Commands against the command tree"
    );
}

/// A placeholder of the docs (`<frontend>`, `NAME`) made a word.
fn concrete(word: &str) -> String {
    if word.starts_with('<') || word.chars().all(|c| c.is_ascii_uppercase()) && word.len() > 1 {
        "web".into()
    } else {
        word.to_string()
    }
}

#[test]
fn every_maglevc_command_the_docs_show_parses() {
    let mut bad = Vec::new();
    for (doc, text) in all_docs() {
        for line in code(&text) {
            for args in invocations(&line, "maglevc") {
                // The flags (with their values) first, then the command.
                let mut words = args
                    .iter()
                    .map(|w| w.trim_matches(['`', '"', '\'']))
                    .peekable();
                while let Some(w) = words.peek() {
                    if !w.starts_with("--") && !w.starts_with('[') {
                        break;
                    }
                    let flag = words.next().unwrap();
                    let takes_value = ["--server", "--ca", "--cert", "--key", "--completions"]
                        .contains(&flag.trim_start_matches('['));
                    if takes_value && !flag.contains('=') {
                        words.next();
                    }
                    if flag == "--man" || flag == "--completions" {
                        // No command: the binary prints its page or script.
                        words.by_ref().for_each(drop);
                    }
                }
                let command: Vec<String> = words.map(concrete).collect();
                if command.is_empty()
                    || command[0].starts_with(['[', '<'])
                    || command[0] == "COMMAND"
                {
                    continue;
                }
                if let Err(e) = parse::parse_words(&command) {
                    bad.push(format!("{doc}: `{line}`: {e}"));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "maglevc commands in the docs that do not parse:\n{}",
        bad.join("\n")
    );
}

// ---- the config schema ----

/// How a config key holds its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A map of fixed keys.
    Struct,
    /// A map of names to structs (`backends.<name>`).
    Named,
    /// A list of structs (`pools[]`).
    List,
    /// Anything else.
    Leaf,
}

/// A key path with its shapes, e.g. `maglev.frontends.<name>.pools[]`.
type KeyPath = Vec<(String, Shape)>;

/// The YAML that holds `inner` at `path` (flow style).
fn nest(path: &KeyPath, inner: &str) -> String {
    path.iter()
        .rev()
        .fold(inner.to_string(), |acc, (key, shape)| match shape {
            Shape::Named => format!("{{ {key}: {{ n: {acc} }} }}"),
            Shape::List => format!("{{ {key}: [ {acc} ] }}"),
            _ => format!("{{ {key}: {acc} }}"),
        })
}

/// The fields the strict parser expects at `path` (a struct), from its
/// answer to an unknown field there; None if `path` is no struct.
fn fields_at(path: &KeyPath) -> Option<Vec<String>> {
    let yaml = nest(path, "{ zzz-unknown: 1 }");
    let Err(ConfigError::Parse(e)) = Config::from_yaml(&yaml, "probe") else {
        return None;
    };
    let msg = e.to_string();
    let expected = msg.split("unknown field `zzz-unknown`, expected ").nth(1)?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect(),
    )
}

/// Every key path of the schema.
fn schema() -> BTreeSet<String> {
    fn walk(path: &mut KeyPath, out: &mut BTreeSet<String>) {
        for field in fields_at(path).unwrap_or_default() {
            let shape = [Shape::Struct, Shape::Named, Shape::List]
                .into_iter()
                .find(|&s| {
                    // A named map or a list holds structs: `nest` probes one.
                    let mut p = path.clone();
                    p.push((field.clone(), s));
                    fields_at(&p).is_some()
                })
                .unwrap_or(Shape::Leaf);
            path.push((field, shape));
            out.insert(render(path));
            if shape != Shape::Leaf {
                walk(path, out);
            }
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(&mut vec![("maglev".into(), Shape::Struct)], &mut out);
    out
}

fn render(path: &KeyPath) -> String {
    let mut s = String::new();
    for (i, (key, shape)) in path.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(key);
        match shape {
            Shape::Named => s.push_str(".<name>"),
            Shape::List => s.push_str("[]"),
            _ => {}
        }
    }
    s
}

/// The key paths `value` uses, named maps and lists folded as [`schema`]
/// renders them.
fn used(
    value: &serde_yaml::Value,
    prefix: &str,
    schema: &BTreeSet<String>,
    out: &mut BTreeSet<String>,
) {
    let serde_yaml::Value::Mapping(map) = value else {
        return;
    };
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let plain = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        let named = format!("{plain}.<name>");
        let list = format!("{plain}[]");
        if schema.contains(&named) {
            out.insert(named.clone());
            if let serde_yaml::Value::Mapping(m) = v {
                for inner in m.values() {
                    used(inner, &named, schema, out);
                }
            }
        } else if schema.contains(&list) {
            out.insert(list.clone());
            for inner in v.as_sequence().into_iter().flatten() {
                used(inner, &list, schema, out);
            }
        } else {
            out.insert(plain.clone());
            used(v, &plain, schema, out);
        }
    }
}

#[test]
fn the_example_config_uses_every_key_of_the_schema() {
    let schema = schema();
    assert!(
        schema.contains("maglev.healthchecks.<name>.params.path"),
        "{schema:#?}"
    );
    assert!(
        schema.contains("maglev.frontends.<name>.pools[].backends.<name>.weight"),
        "{schema:#?}"
    );
    let text = read("docs/examples/maglev.yaml");
    Config::from_yaml(&text, "docs/examples/maglev.yaml").expect("the example is valid");
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut keys = BTreeSet::new();
    used(&value, "", &schema, &mut keys);
    keys.remove("maglev");
    let unused: Vec<_> = schema.difference(&keys).collect();
    let unknown: Vec<_> = keys.difference(&schema).collect();
    assert!(
        unused.is_empty(),
        "docs/examples/maglev.yaml does not use {unused:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/examples/maglev.yaml uses keys the schema lacks: {unknown:?}"
    );
}

/// The config guide's text about a top-level section (`healthchecks`):
/// from its `## \`maglev.healthchecks…\`` heading to the next `## `.
fn guide_section<'a>(guide: &'a str, section: &str) -> &'a str {
    let heading = format!("## `maglev.{section}");
    let start = guide
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/config-guide.md has no {heading}` section"));
    let rest = &guide[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_config_guide_documents_every_key_and_only_keys_that_exist() {
    let schema = schema();
    let guide = read("docs/config-guide.md");
    let mut missing = Vec::new();
    let mut by_section: std::collections::BTreeMap<&str, BTreeSet<String>> = Default::default();
    for path in &schema {
        let parts: Vec<&str> = path.split('.').collect();
        let section = parts[1].trim_end_matches("[]");
        let leaf = parts.last().unwrap().trim_end_matches("[]");
        let leaf = if leaf == "<name>" {
            parts[parts.len() - 2]
        } else {
            leaf
        };
        by_section
            .entry(section)
            .or_default()
            .insert(leaf.to_string());
        // `vpp` and `lb` are the path of the section's heading itself.
        if ["vpp", "lb"].contains(&leaf) && parts.len() <= 3 {
            continue;
        }
        // `maglev.backends.<name>` and the like are the sections' headings.
        if parts.len() == 2 || parts.len() == 3 && parts[2] == "<name>" {
            continue;
        }
        if !guide_section(&guide, section).contains(&format!("`{leaf}`")) {
            missing.push(path.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/config-guide.md does not document {missing:?}"
    );

    // Every key in a table of a section's guide is a key of that section.
    let mut unknown = Vec::new();
    for (section, keys) in &by_section {
        let text = guide_section(&guide, section);
        // Rows of the tables whose first column is `key`.
        let mut in_keys = false;
        for line in text.lines() {
            if !line.starts_with('|') {
                in_keys = false;
                continue;
            }
            if line.starts_with("| key |") {
                in_keys = true;
            }
            if !in_keys || !line.starts_with("| `") {
                continue;
            }
            let key = line.split('`').nth(1).unwrap();
            if !keys.contains(key) {
                unknown.push(format!("maglev.{section}: `{key}`"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/config-guide.md documents keys the schema lacks: {unknown:?}"
    );
}
