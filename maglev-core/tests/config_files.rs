//! Config files end to end: every example in `docs/` and `tests/configs/valid`
//! parses; every file in `tests/configs/invalid` fails exactly as its
//! `# expect:` lines say (kind, place, key path, message).

use std::path::{Path, PathBuf};

use maglev_core::config::{Config, ConfigError};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

fn load(path: &Path) -> (String, Result<Config, ConfigError>) {
    let text = std::fs::read_to_string(path).unwrap();
    let result = Config::from_yaml(&text, &path.display().to_string());
    (text, result)
}

#[test]
fn every_documented_example_is_valid() {
    let mut files = yaml_files(&workspace().join("docs/examples"));
    files.extend(yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/valid"),
    ));
    for path in files {
        if let (_, Err(e)) = load(&path) {
            panic!("{} should be valid:\n{e}", path.display());
        }
    }
}

#[test]
fn the_full_example_uses_every_section() {
    let (_, config) = load(&workspace().join("docs/examples/maglev.yaml"));
    let config = config.unwrap();
    let lb = &config.vpp().expect("vpp section").lb;
    assert_eq!(lb.sticky_buckets_per_core, Some(1024));
    assert_eq!(config.healthchecker().transition_history, 10);
    assert_eq!(config.healthchecker().netns.as_deref(), Some("dataplane"));
    assert!(!config.backend("nginx0-zrh").unwrap().enabled);
    assert_eq!(
        config.backend("dns1").unwrap().healthcheck,
        None,
        "static backend"
    );
    let dns = config.frontend("dns").unwrap();
    assert!(dns.src_ip_sticky && !dns.flush_on_down);
    assert_eq!(dns.table_len(), 256, "auto: 2 members × 100, rounded up");
    assert_eq!(config.frontend("web").unwrap().table_len(), 4096);
    let kinds: Vec<_> = config
        .healthchecks()
        .values()
        .map(|h| h.kind().as_str())
        .collect();
    assert_eq!(kinds, ["tcp", "icmp", "http", "https"]);
}

/// One `# expect:` line.
#[derive(Debug)]
enum Expect {
    Parse {
        line: usize,
        column: usize,
        path: String,
        message: String,
    },
    Semantic {
        path: String,
        message: String,
    },
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let (kind, rest) = l.split_once(' ').unwrap();
            match kind {
                "parse" => {
                    let mut parts = rest.splitn(3, ' ');
                    let place = parts.next().unwrap();
                    let (line, column) = place.split_once(':').unwrap();
                    Expect::Parse {
                        line: line.parse().unwrap(),
                        column: column.parse().unwrap(),
                        path: parts.next().unwrap().to_owned(),
                        message: parts.next().unwrap().to_owned(),
                    }
                }
                "semantic" => {
                    let (path, message) = rest.split_once(": ").unwrap();
                    Expect::Semantic {
                        path: path.to_owned(),
                        message: message.to_owned(),
                    }
                }
                other => panic!("unknown expectation kind {other}"),
            }
        })
        .collect()
}

#[test]
fn every_invalid_fixture_fails_as_expected() {
    for path in yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/invalid")) {
        let (text, result) = load(&path);
        let expected = expectations(&text);
        assert!(
            !expected.is_empty(),
            "{} has no # expect: lines",
            path.display()
        );
        let name = path.display();
        match (result, &expected[..]) {
            (Ok(_), _) => panic!("{name} should be refused"),
            (
                Err(ConfigError::Parse(e)),
                [
                    Expect::Parse {
                        line,
                        column,
                        path: p,
                        message,
                    },
                ],
            ) => {
                assert_eq!((e.line, e.column), (*line, *column), "{name}: place of {e}");
                assert_eq!(&e.path, p, "{name}: path of {e}");
                assert!(
                    e.message.contains(message.as_str()),
                    "{name}: message of {e}"
                );
                assert!(
                    e.to_string()
                        .starts_with(&format!("{name}:{line}:{column}: {p}: ")),
                    "{e}"
                );
            }
            (Err(ConfigError::Semantic(errors)), exp) => {
                let listing = errors
                    .iter()
                    .map(|e| format!("  {e}\n"))
                    .collect::<String>();
                assert_eq!(errors.len(), exp.len(), "{name}: got\n{listing}");
                for x in exp {
                    let Expect::Semantic { path: p, message } = x else {
                        panic!("{name}: expected a parse error, got\n{listing}")
                    };
                    assert!(
                        errors
                            .iter()
                            .any(|e| &e.path == p && e.message.starts_with(message.as_str())),
                        "{name}: no error `{p}: {message}` in\n{listing}"
                    );
                }
            }
            (Err(e), _) => panic!("{name}: unexpected error kind:\n{e}"),
        }
    }
}

#[test]
fn defaults_are_filled_in() {
    let text = "maglev:\n  healthchecks:\n    h: { type: http, interval: 300ms }\n  backends:\n    a: { address: 10.0.0.1, healthcheck: h }\n  frontends:\n    f:\n      address: 192.0.2.1\n      pools: [{ name: p, backends: { a: } }]\n";
    let config = Config::from_yaml(text, "inline").unwrap();
    let h = config.healthcheck("h").unwrap();
    assert_eq!(h.timing.interval.as_millis(), 300);
    assert_eq!(h.timing.fast_interval, h.timing.interval);
    assert_eq!(h.timing.down_interval, h.timing.interval);
    assert_eq!(
        h.timing.timeout.as_millis(),
        300,
        "default timeout is capped by the interval"
    );
    assert_eq!((h.timing.rise, h.timing.fall), (2, 3));
    let maglev_core::config::Probe::Http(http) = &h.probe else {
        panic!("http")
    };
    assert_eq!(
        (http.port, http.path.as_str(), http.max_body),
        (80, "/", 65536)
    );
    assert!(http.response_codes.contains(200) && http.response_codes.contains(399));
    assert!(!http.response_codes.contains(404));
    let f = config.frontend("f").unwrap();
    assert_eq!(
        (f.port, f.protocol, f.flush_on_down, f.src_ip_sticky),
        (0, None, true, false)
    );
    assert_eq!(f.pools[0].backends["a"].weight, 100);
    assert!(config.backend("a").unwrap().enabled);
    assert_eq!(config.healthchecker().transition_history, 5);
    assert!(config.vpp().is_none());
}

#[test]
fn runtime_weight_change_makes_a_new_config() {
    let (_, config) = load(&workspace().join("docs/examples/maglev.yaml"));
    let config = config.unwrap();
    let changed = config
        .with_pool_weight("web", "primary", "nginx0-ams", 10)
        .unwrap();
    assert_eq!(
        changed.frontend("web").unwrap().pools[0].backends["nginx0-ams"].weight,
        10
    );
    assert_eq!(
        config.frontend("web").unwrap().pools[0].backends["nginx0-ams"].weight,
        100,
        "original untouched"
    );
    assert!(
        config
            .with_pool_weight("web", "primary", "nginx0-ams", 101)
            .is_err()
    );
    assert!(
        config
            .with_pool_weight("web", "nope", "nginx0-ams", 1)
            .is_err()
    );
    let users: Vec<_> = config.frontends_using("nginx0-ams").collect();
    assert_eq!(users, ["web"]);
}

#[test]
fn hostile_yaml_is_an_error_not_a_hang() {
    // A billion-laughs alias bomb must be refused by the YAML layer.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("maglev: *a11\n");
    assert!(matches!(
        Config::from_yaml(&text, "bomb"),
        Err(ConfigError::Parse(_))
    ));
    let deep = format!("maglev: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        Config::from_yaml(&deep, "deep"),
        Err(ConfigError::Parse(_))
    ));
    assert!(matches!(
        Config::from_yaml("", "empty"),
        Err(ConfigError::Parse(_))
    ));
}
