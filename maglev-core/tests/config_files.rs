//! Config files end to end: every example in `docs/` and `tests/configs/valid`
//! parses; every file in `tests/configs/invalid` fails exactly as its
//! `# expect:` lines say (kind, place, key path, message).

use std::path::{Path, PathBuf};
use std::time::Duration;

use maglev_core::announce::Policy;
use maglev_core::config::{AnnounceConfig, Config, ConfigError};

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

/// `text` with an `announce` section of `body` (one `key: value` a line)
/// added to a minimal config.
fn with_announce(body: &str) -> Result<Config, ConfigError> {
    let body: String = body.lines().map(|l| format!("    {l}\n")).collect();
    let text = format!(
        "maglev:\n  announce:\n{body}  backends:\n    a: {{ address: 10.0.0.1 }}\n  frontends:\n    web:\n      address: 192.0.2.1\n      pools: [{{ name: p, backends: {{ a: }} }}]\n"
    );
    Config::from_yaml(&text, "announce.yaml")
}

/// The semantic errors of a refused config, as `path: message` lines.
fn semantic(r: Result<Config, ConfigError>) -> Vec<String> {
    match r {
        Err(ConfigError::Semantic(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected semantic errors, got {other:?}"),
    }
}

#[test]
fn announce_defaults_are_filled_in() {
    let config = with_announce("table: 200").unwrap();
    let a = config.announce().expect("announce section");
    assert_eq!(
        (a.table, a.protocol, a.netns.as_deref()),
        (200, AnnounceConfig::DEFAULT_PROTOCOL, None)
    );
    assert_eq!(AnnounceConfig::DEFAULT_PROTOCOL, 201);
    assert_eq!(
        a.policy(),
        Policy {
            min_interval: Duration::from_secs(10),
            vpp_grace: Duration::from_secs(5),
        }
    );
    // An empty netns is maglevd's own namespace.
    let config = with_announce("table: 200\nnetns: \"\"").unwrap();
    assert_eq!(config.announce().unwrap().netns, None);
    // No section: nothing is announced.
    let (_, minimal) =
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/valid/minimal.yaml"));
    assert!(minimal.unwrap().announce().is_none());
}

#[test]
fn announce_values_are_taken_as_written() {
    let config = with_announce(
        "table: 4294967295\nprotocol: 255\nnetns: routing\nmin-interval: 0s\nvpp-grace: 1ms",
    )
    .unwrap();
    let a = config.announce().unwrap();
    assert_eq!(
        (a.table, a.protocol, a.netns.as_deref()),
        (u32::MAX, 255, Some("routing"))
    );
    assert_eq!(
        (a.min_interval, a.vpp_grace),
        (Duration::ZERO, Duration::from_millis(1))
    );
    // The longest interval and grace allowed.
    let config = with_announce("table: 1\nmin-interval: 1h\nvpp-grace: 60m").unwrap();
    let a = config.announce().unwrap();
    assert_eq!((a.table, a.min_interval, a.vpp_grace), (1, HOUR, HOUR));
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn announce_refuses_the_kernels_tables_and_protocols() {
    for table in [0, 253, 254, 255] {
        assert_eq!(
            semantic(with_announce(&format!("table: {table}"))),
            [format!(
                "maglev.announce.table: {table} is one of the kernel's own tables (0 unspec, 253 default, 254 main, 255 local): maglevd needs a table of its own"
            )]
        );
    }
    for table in [1, 200, 252, 256, 1000] {
        assert!(with_announce(&format!("table: {table}")).is_ok(), "{table}");
    }
    for protocol in 0..=4 {
        let errors = semantic(with_announce(&format!("table: 200\nprotocol: {protocol}")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "maglev.announce.protocol: {protocol} is reserved for the kernel"
            )),
            "{errors:?}"
        );
    }
    for protocol in [5, 201, 255] {
        assert!(with_announce(&format!("table: 200\nprotocol: {protocol}")).is_ok());
    }
}

#[test]
fn announce_refuses_what_is_not_a_namespace_name() {
    for ns in [".", "..", "a/b", "/var/run/netns/x", "a\\0b"] {
        let errors = semantic(with_announce(&format!("table: 200\nnetns: \"{ns}\"")));
        assert_eq!(errors.len(), 1, "{ns}: {errors:?}");
        assert!(
            errors[0].starts_with("maglev.announce.netns: ")
                && errors[0].ends_with("is not a namespace name (as under /var/run/netns)"),
            "{errors:?}"
        );
    }
    for ns in ["routing", "ns-1", ".hidden", "a.b"] {
        let config = with_announce(&format!("table: 200\nnetns: \"{ns}\"")).unwrap();
        assert_eq!(config.announce().unwrap().netns.as_deref(), Some(ns));
    }
}

#[test]
fn announce_refuses_durations_out_of_range() {
    assert_eq!(
        semantic(with_announce(
            "table: 200\nmin-interval: 3601s\nvpp-grace: 0s"
        )),
        [
            "maglev.announce.min-interval: 1h1s is longer than 1h",
            "maglev.announce.vpp-grace: must be greater than zero (a start needs a moment to reach VPP)",
        ]
    );
    assert_eq!(
        semantic(with_announce("table: 200\nvpp-grace: 2h")),
        ["maglev.announce.vpp-grace: 2h is longer than 1h"]
    );
}

#[test]
fn announce_parse_errors_name_the_file_line_and_key() {
    let cases = [
        (
            "table: 200\ntabel: 201",
            "announce.yaml:4:5: maglev.announce.tabel: unknown field `tabel`",
        ),
        (
            "table: -1",
            "announce.yaml:3:12: maglev.announce.table: invalid type: integer `-1`, expected u32",
        ),
        (
            "table: 200\nmin-interval: soon",
            "announce.yaml:4:19: maglev.announce.min-interval: invalid duration",
        ),
        (
            "table: [200]",
            "announce.yaml:3:12: maglev.announce.table: invalid type",
        ),
    ];
    for (body, expected) in cases {
        match with_announce(body) {
            Err(e @ ConfigError::Parse(_)) => {
                assert!(e.to_string().starts_with(expected), "{body:?}: {e}")
            }
            other => panic!("{body:?}: expected a parse error, got {other:?}"),
        }
    }
}
