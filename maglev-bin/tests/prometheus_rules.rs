//! The Prometheus rules the `vpp-maglev` package installs
//! (`docs/prometheus/maglev.rules.yml`): `promtool check rules` accepts
//! them, and `promtool test rules` runs their unit tests
//! (`docs/prometheus/maglev.rules.test.yml`, series of agreeing and
//! disagreeing routers: each alert fires exactly when it should, and not
//! before its `for`). Without promtool (Debian's `prometheus` package)
//! those two say so and pass, unless `MAGLEV_REQUIRE_PROMTOOL=1` (as in
//! CI, which installs it).
//!
//! Without promtool: every metric a rule reads is one maglevd exports (a
//! sample of `SHAPE` in `metrics_endpoint.rs`, or a family the code under
//! `src/metrics/` names, so renaming a metric breaks this test until the
//! rules follow), with the labels its matchers name; every
//! alert has a unit test that fires it, and a line in
//! `docs/operations.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The rules, as the package ships them.
const RULES: &str = include_str!("../../docs/prometheus/maglev.rules.yml");
/// Their promtool unit tests.
const RULE_TESTS: &str = include_str!("../../docs/prometheus/maglev.rules.test.yml");
/// The test that holds the exported families and label sets (its `SHAPE`).
const METRICS_TEST: &str = include_str!("metrics_endpoint.rs");
/// The operator's guide, which explains each alert.
const OPERATIONS: &str = include_str!("../../docs/operations.md");

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus")
}

/// Whether promtool is installed; if not, says so, or fails when
/// `MAGLEV_REQUIRE_PROMTOOL=1`.
fn promtool() -> bool {
    let works = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        let require = std::env::var("MAGLEV_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
        assert!(
            !require,
            "MAGLEV_REQUIRE_PROMTOOL=1 but promtool is not installed (apt-get install prometheus)"
        );
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
    }
    works
}

/// Runs promtool in the rules' directory (it only reads there) and fails
/// with its output unless it succeeds.
fn run_promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .unwrap_or_else(|e| panic!("promtool {args:?}: {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules() {
    if !promtool() {
        return;
    }
    run_promtool(&["check", "rules", "maglev.rules.yml"]);
}

#[test]
fn every_rule_fires_exactly_when_its_unit_tests_say() {
    if !promtool() {
        return;
    }
    run_promtool(&["test", "rules", "maglev.rules.test.yml"]);
}

/// One alerting rule of the file.
#[derive(serde::Deserialize)]
struct Rule {
    alert: String,
    expr: String,
}

#[derive(serde::Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

fn rules() -> Vec<Rule> {
    let file: RuleFile = serde_yaml::from_str(RULES).expect("maglev.rules.yml is not a rule file");
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

/// The exported sample names with their label names, from `SHAPE` in
/// `metrics_endpoint.rs` (lines like `maglev_vpp_connected{}`).
fn exported() -> BTreeMap<String, BTreeSet<String>> {
    let start = METRICS_TEST
        .find("const SHAPE: &str = \"")
        .expect("metrics_endpoint.rs has no SHAPE");
    let shape = &METRICS_TEST[start..];
    let shape = &shape[..shape.find("\";").expect("SHAPE does not end")];
    let exported: BTreeMap<String, BTreeSet<String>> = shape
        .lines()
        .filter_map(|l| {
            let (name, labels) = l.trim().split_once('{')?;
            let labels = labels.strip_suffix('}')?;
            Some((
                name.to_owned(),
                labels
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ))
        })
        .collect();
    assert!(
        exported.len() > 30,
        "SHAPE in metrics_endpoint.rs no longer reads as expected: {exported:?}"
    );
    exported
}

/// The family names the code registers or writes: every `"maglev_…"`
/// literal under `maglev-bin/src/metrics/` (counters without `_total`).
/// Some families have no sample in `SHAPE` (they appear only after their
/// first event, or only for the backends they hold).
fn families_in_the_code() -> BTreeSet<String> {
    let literal = regex::Regex::new(r#""(maglev_[a-z0-9_]+)""#).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            names.extend(literal.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
    names
}

#[test]
fn every_metric_the_rules_read_is_exported_with_the_labels_they_match() {
    let exported = exported();
    let families = families_in_the_code();
    let is_exported = |name: &str| {
        exported.contains_key(name)
            || ["", "_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| {
                    name.strip_suffix(suffix)
                        .is_some_and(|family| families.contains(family))
                })
    };
    let name = regex::Regex::new(r"\bmaglev_[a-z0-9_]+").unwrap();
    let selector = regex::Regex::new(r"\b(maglev_[a-z0-9_]+)\s*\{([^}]*)\}").unwrap();
    let matcher = regex::Regex::new(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)").unwrap();
    let mut bad = Vec::new();
    let mut read = BTreeSet::new();
    for rule in rules() {
        for m in name.find_iter(&rule.expr) {
            read.insert(m.as_str().to_owned());
            if !is_exported(m.as_str()) {
                bad.push(format!("{}: maglevd exports no {}", rule.alert, m.as_str()));
            }
        }
        // Label matchers, where the test of /metrics saw the sample.
        for s in selector.captures_iter(&rule.expr) {
            let Some(labels) = exported.get(&s[1]) else {
                continue;
            };
            for l in matcher.captures_iter(&s[2]) {
                if !labels.contains(&l[1]) {
                    bad.push(format!("{}: {} has no label {}", rule.alert, &s[1], &l[1]));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the rules read what maglevd does not export:\n{}",
        bad.join("\n")
    );
    // The fleet rules read these (a guard against the regex finding nothing).
    for fleet in [
        "maglev_vpp_lb_table_hash",
        "maglev_config_fingerprint",
        "maglev_frontend_config_fingerprint",
    ] {
        assert!(read.contains(fleet), "no rule reads {fleet}: {read:?}");
    }
    // And the matcher check checks something.
    assert!(read.contains("maglev_vpp_lb_vip_packets_total"));
}

#[derive(serde::Deserialize)]
struct AlertTest {
    alertname: String,
    exp_alerts: Vec<serde_yaml::Value>,
}

#[derive(serde::Deserialize)]
struct TestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
}

#[derive(serde::Deserialize)]
struct TestFile {
    rule_files: Vec<String>,
    tests: Vec<TestGroup>,
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it_and_a_line_in_the_guide() {
    let tests: TestFile = serde_yaml::from_str(RULE_TESTS)
        .expect("maglev.rules.test.yml is not a promtool test file");
    assert_eq!(tests.rule_files, ["maglev.rules.yml"]);
    let fired: BTreeSet<&str> = tests
        .tests
        .iter()
        .flat_map(|g| &g.alert_rule_test)
        .filter(|t| !t.exp_alerts.is_empty())
        .map(|t| t.alertname.as_str())
        .collect();
    let rules = rules();
    let names: BTreeSet<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(names.len(), rules.len(), "an alert name is used twice");
    let untested: Vec<_> = names.difference(&fired).collect();
    assert!(
        untested.is_empty(),
        "alerts no unit test fires: {untested:?}"
    );
    let unknown: Vec<_> = fired.difference(&names).collect();
    assert!(
        unknown.is_empty(),
        "unit tests of alerts that do not exist: {unknown:?}"
    );
    let undocumented: Vec<_> = names
        .iter()
        .filter(|n| !OPERATIONS.contains(&format!("| `{n}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "alerts without a line in docs/operations.md: {undocumented:?}"
    );
    // The guide explains them; the rules are written once, in the file.
    assert!(
        !OPERATIONS.contains("- alert: "),
        "docs/operations.md holds rules again: they belong in docs/prometheus/maglev.rules.yml"
    );
}
