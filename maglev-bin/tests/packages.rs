//! The Debian packages as an operator receives them: `ci/package.sh` builds
//! both from this build's binaries (dev profile, `--no-build`), and the test
//! reads the `.deb`s back with `dpkg-deb`: every file at its path with its
//! mode, the conffiles marked, the unit passing `systemd-analyze verify`
//! (alone and with each packaged drop-in; and, from the source, setting
//! `LimitNOFILE` and `time-sync.target`, and the drop-ins adding their
//! capabilities),
//! the packaged config accepted by the packaged `maglevd --check`; then, as
//! root, installs, purges and reinstalls both into a throwaway root
//! (`dpkg --root`, maintainer scripts run chrootless with `DPKG_ROOT`) and
//! compares the tree with what was there before. The tools package ships
//! the Prometheus rules (`docs/prometheus/maglev.rules.yml`) as they are in
//! the repository.
//!
//! Needs `cargo-deb` and `dpkg-deb`; the install part needs root. Without
//! them each test says so and passes, unless `MAGLEV_REQUIRE_PACKAGES=1`
//! (as in CI, which installs cargo-deb).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn require() -> bool {
    std::env::var("MAGLEV_REQUIRE_PACKAGES").is_ok_and(|v| v == "1")
}

/// Whether `cmd args` runs and succeeds.
fn works(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Says why a test cannot run, and fails when it must.
fn unavailable(why: &str) {
    assert!(!require(), "MAGLEV_REQUIRE_PACKAGES=1 but {why}");
    eprintln!("skipped: {why}");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// The two packages, built once for every test of this file.
struct Debs {
    _dir: tempfile::TempDir,
    daemon: PathBuf,
    tools: PathBuf,
}

fn debs() -> Option<&'static Debs> {
    static DEBS: OnceLock<Option<Debs>> = OnceLock::new();
    DEBS.get_or_init(|| {
        if !works("cargo", &["deb", "--version"]) {
            unavailable("cargo-deb is not installed (cargo install cargo-deb --locked)");
            return None;
        }
        if !works("dpkg-deb", &["--version"]) {
            unavailable("dpkg-deb is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        // The binaries this test run built: the dev profile's directory.
        let bin = Path::new(env!("CARGO_BIN_EXE_maglevd"));
        let target = bin.parent().and_then(Path::parent).unwrap();
        run(Command::new("bash")
            .arg(root.join("ci/package.sh"))
            .args(["--profile", "dev", "--no-build", "--out"])
            .arg(dir.path())
            .env("CARGO_TARGET_DIR", target)
            .current_dir(&root));
        let find = |prefix: &str| {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix}*.deb in {}", dir.path().display()))
        };
        Some(Debs {
            daemon: find("vpp-maglevd_"),
            tools: find("vpp-maglev_"),
            _dir: dir,
        })
    })
    .as_ref()
}

/// The regular files of a package, as (path, mode) from `dpkg-deb -c`.
fn files(deb: &Path) -> BTreeSet<(String, String)> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let mode = l.split_whitespace().next().unwrap().to_string();
            let path = l.split_whitespace().last().unwrap();
            (path.trim_start_matches('.').to_string(), mode)
        })
        .collect()
}

fn expected(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect()
}

const EXEC: &str = "-rwxr-xr-x";
const DATA: &str = "-rw-r--r--";

#[test]
fn every_file_is_at_its_path_with_its_mode() {
    let Some(debs) = debs() else { return };
    assert_eq!(
        files(&debs.daemon),
        expected(&[
            ("/usr/sbin/maglevd", EXEC),
            ("/usr/lib/systemd/system/vpp-maglevd.service", DATA),
            ("/etc/vpp-maglev/maglev.yaml", DATA),
            ("/etc/default/vpp-maglev", DATA),
            ("/usr/share/man/man8/maglevd.8.gz", DATA),
            ("/usr/share/bash-completion/completions/maglevd", DATA),
            ("/usr/share/zsh/vendor-completions/_maglevd", DATA),
            ("/usr/share/fish/vendor_completions.d/maglevd.fish", DATA),
            ("/usr/share/doc/vpp-maglevd/copyright", DATA),
            ("/usr/share/doc/vpp-maglevd/user-guide.md", DATA),
            ("/usr/share/doc/vpp-maglevd/config-guide.md", DATA),
            ("/usr/share/doc/vpp-maglevd/operations.md", DATA),
            ("/usr/share/doc/vpp-maglevd/examples/netns.conf", DATA),
            ("/usr/share/doc/vpp-maglevd/examples/announce.conf", DATA),
        ])
    );
    let tools: Vec<_> = ["maglevc", "maglevt"]
        .iter()
        .flat_map(|b| {
            [
                (format!("/usr/bin/{b}"), EXEC),
                (format!("/usr/share/man/man1/{b}.1.gz"), DATA),
                (format!("/usr/share/bash-completion/completions/{b}"), DATA),
                (format!("/usr/share/zsh/vendor-completions/_{b}"), DATA),
                (
                    format!("/usr/share/fish/vendor_completions.d/{b}.fish"),
                    DATA,
                ),
                (format!("/usr/share/doc/vpp-maglev/{b}.md"), DATA),
            ]
        })
        .chain([
            ("/usr/share/doc/vpp-maglev/copyright".to_string(), DATA),
            (format!("/{RULES}"), DATA),
        ])
        .collect();
    let tools: Vec<_> = tools.iter().map(|(p, m)| (p.as_str(), *m)).collect();
    assert_eq!(files(&debs.tools), expected(&tools));
}

/// Where the tools package installs the Prometheus rules (the monitoring
/// host installs it; the daemon's package stays off that host).
const RULES: &str = "usr/share/vpp-maglev/prometheus/maglev.rules.yml";

#[test]
fn the_tools_package_ships_the_prometheus_rules_of_the_repository() {
    let Some(debs) = debs() else { return };
    let x = extracted(&debs.tools);
    let shipped = std::fs::read_to_string(x.path().join(RULES)).unwrap();
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus/maglev.rules.yml"),
    )
    .unwrap();
    assert_eq!(
        shipped, source,
        "/{RULES} is not docs/prometheus/maglev.rules.yml"
    );
}

#[test]
fn the_daemon_package_marks_its_conffiles_and_its_user_scripts() {
    let Some(debs) = debs() else { return };
    let info = |part: &str| {
        stdout(
            Command::new("dpkg-deb")
                .arg("-I")
                .arg(&debs.daemon)
                .arg(part),
        )
    };
    let conffiles: BTreeSet<String> = info("conffiles").lines().map(String::from).collect();
    assert_eq!(
        conffiles,
        ["/etc/default/vpp-maglev", "/etc/vpp-maglev/maglev.yaml"]
            .map(String::from)
            .into()
    );
    let postinst = info("postinst");
    assert!(postinst.contains("useradd") && postinst.contains("--groups vpp"));
    // Upgrades never restart a running daemon: the scripts only ever stop
    // it (on removal), and install does not start it.
    for script in ["postinst", "prerm", "postrm"] {
        let text = info(script);
        for line in text.lines().map(str::trim) {
            let invokes = line.starts_with("deb-systemd-invoke") || line.starts_with("systemctl");
            assert!(
                !invokes
                    || line.contains(" stop ")
                    || line.contains("daemon-reload")
                    || line.contains("is-active"),
                "{script} starts or restarts the daemon: {line}"
            );
        }
    }
    let control = info("control");
    assert!(control.contains("Package: vpp-maglevd"), "{control}");
    assert!(control.contains("Depends: libc6"), "{control}");
}

/// `dpkg-deb -x` of a package.
fn extracted(deb: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    dir
}

#[test]
fn the_packaged_maglevd_accepts_the_packaged_config_and_the_unit_verifies() {
    let Some(debs) = debs() else { return };
    let x = extracted(&debs.daemon);
    let maglevd = x.path().join("usr/sbin/maglevd");
    let config = x.path().join("etc/vpp-maglev/maglev.yaml");
    let out = stdout(
        Command::new(&maglevd)
            .arg("--check")
            .arg("--config")
            .arg(&config)
            .args(["--grpc-addr", ""]),
    );
    assert!(out.contains(": ok ("), "{out}");
    // The man page is the binary's own.
    let man = run(Command::new("gzip")
        .arg("-dc")
        .arg(x.path().join("usr/share/man/man8/maglevd.8.gz")));
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH maglevd 8"));

    if !works("systemd-analyze", &["--version"]) {
        // Verified where available: systemd is not a build dependency.
        eprintln!("unit not verified: systemd-analyze is not installed");
        return;
    }
    // The unit as installed, with its binary where this extraction put it.
    let unit = std::fs::read_to_string(x.path().join("usr/lib/systemd/system/vpp-maglevd.service"))
        .unwrap()
        .replace("/usr/sbin/maglevd", &maglevd.display().to_string());
    let path = x.path().join("vpp-maglevd.service");
    std::fs::write(&path, unit).unwrap();
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With each packaged drop-in applied (its [Service] lines after the
    // unit's, as systemd merges them), the unit still verifies.
    for dropin in ["netns.conf", "announce.conf"] {
        let text = std::fs::read_to_string(
            x.path()
                .join("usr/share/doc/vpp-maglevd/examples")
                .join(dropin),
        )
        .unwrap();
        let with = x.path().join(format!("with-{dropin}"));
        std::fs::create_dir_all(&with).unwrap();
        let path = with.join("vpp-maglevd.service");
        std::fs::write(
            &path,
            format!(
                "{}\n{text}",
                std::fs::read_to_string(x.path().join("vpp-maglevd.service")).unwrap()
            ),
        )
        .unwrap();
        let out = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path));
        assert!(
            out.stderr.is_empty(),
            "{dropin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Exposure below 2.0 (systemd counts tenths).
    let security = stdout(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&path),
    );
    assert!(security.contains("Overall exposure level"), "{security}");
}

/// A root dpkg can install into: its database, the users a Debian base
/// system has, group `vpp` (as VPP's package makes it), and the systemd
/// directories a system with systemd has.
fn throwaway_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "etc/systemd/system",
        "var/lib/systemd",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let write = |name: &str, text: &str| std::fs::write(r.join(name), text).unwrap();
    write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    write("etc/group", "root:x:0:\nvpp:x:990:\n");
    write("etc/shadow", "root:*:20000:0:99999:7:::\n");
    write("etc/gshadow", "root:*::\nvpp:!::\n");
    root
}

/// Every path under `root` but dpkg's database and the shadow tools'
/// backups (`passwd-` and the like), with the text of `etc/passwd` and
/// `etc/group`.
fn tree(root: &Path) -> (BTreeSet<String>, String, String) {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with("var/lib/dpkg") || rel.ends_with('-') {
                continue;
            }
            out.insert(rel);
            if p.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut paths = BTreeSet::new();
    walk(root, root, &mut paths);
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    (paths, read("etc/passwd"), read("etc/group"))
}

fn dpkg(root: &Path, args: &[&str], debs: &[&Path]) -> String {
    stdout(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--log=/dev/null",
            ])
            .args(args)
            .args(debs),
    )
}

#[test]
fn install_purge_and_reinstall_in_a_throwaway_root_leave_nothing_behind() {
    let Some(debs) = debs() else { return };
    if stdout(Command::new("id").arg("-u")).trim() != "0" {
        unavailable("installing into a throwaway root needs root (useradd --prefix)");
        return;
    }
    let root = throwaway_root();
    let r = root.path();
    let before = tree(r);
    let both = [debs.daemon.as_path(), debs.tools.as_path()];

    dpkg(r, &["--install"], &both);
    let installed = tree(r);
    assert!(installed.0.contains("usr/sbin/maglevd"));
    assert!(installed.0.contains("usr/bin/maglevc"));
    let user = installed
        .1
        .lines()
        .find(|l| l.starts_with("maglevd:"))
        .unwrap_or_else(|| panic!("no maglevd user:\n{}", installed.1));
    assert!(
        user.ends_with(":/var/lib/vpp-maglev:/usr/sbin/nologin"),
        "{user}"
    );
    assert!(
        installed.2.contains("\nvpp:x:990:maglevd\n"),
        "maglevd is not in group vpp:\n{}",
        installed.2
    );
    assert!(installed.2.contains("\nmaglevd:x:"), "{}", installed.2);

    // The operator's config survives a reinstall (an upgrade to the same
    // version) untouched.
    let config = r.join("etc/vpp-maglev/maglev.yaml");
    let edited = format!(
        "{}\n# edited by the operator\n",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, &edited).unwrap();
    dpkg(r, &["--install"], &both);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    // A state file the daemon wrote goes with the purge.
    std::fs::create_dir_all(r.join("var/lib/vpp-maglev")).unwrap();
    std::fs::write(r.join("var/lib/vpp-maglev/state.json"), "{}").unwrap();

    dpkg(r, &["--purge", "vpp-maglevd", "vpp-maglev"], &[]);
    assert_eq!(tree(r), before, "the purge left something behind");

    dpkg(r, &["--install"], &both);
    assert_eq!(
        tree(r).0,
        installed.0,
        "a reinstall installs the same files"
    );
    assert!(tree(r).1.contains("\nmaglevd:x:"));
    dpkg(r, &["--purge", "vpp-maglevd", "vpp-maglev"], &[]);
    assert_eq!(tree(r), before);
}

/// The unit (as committed; no packaging tools needed) gives maglevd its
/// descriptor budget and starts it once the clock is set.
#[test]
fn the_unit_sets_the_descriptor_limit_and_waits_for_time_sync() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/vpp-maglevd.service"),
    )
    .unwrap();
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .flat_map(|v| v.split_whitespace().map(str::to_owned))
            .collect()
    };
    assert_eq!(values("LimitNOFILE"), ["65536"]);
    assert!(values("After").contains(&"time-sync.target".to_owned()));
    assert!(values("Wants").contains(&"time-sync.target".to_owned()));
}

/// The drop-ins (as committed; no packaging tools needed) add their
/// capabilities to both the ambient and the bounding set, and a maglevd
/// that lacks a capability for `maglev.announce` names the packaged
/// drop-in that grants it.
#[test]
fn the_drop_ins_add_their_capabilities_and_the_refusal_names_them() {
    let debian = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian");
    let values = |file: &str, key: &str| -> BTreeSet<String> {
        std::fs::read_to_string(debian.join(file))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .flat_map(|v| v.split_whitespace().map(str::to_owned))
            .collect()
    };
    for (file, cap) in [
        ("netns.conf", "CAP_SYS_ADMIN"),
        ("announce.conf", "CAP_NET_ADMIN"),
    ] {
        for key in ["AmbientCapabilities", "CapabilityBoundingSet"] {
            let caps = values(file, key);
            assert!(caps.contains(cap), "{file}: {key} lacks {cap}: {caps:?}");
            // The unit's own capability is kept whichever drop-in is read.
            assert!(caps.contains("CAP_NET_RAW"), "{file}: {key}: {caps:?}");
        }
    }

    // The packaged path, as the refusal tells it.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let asset = "usr/share/doc/vpp-maglevd/examples/announce.conf";
    assert!(
        manifest.contains(&format!(r#"["debian/announce.conf", "{asset}", "644"]"#)),
        "announce.conf is not packaged at /{asset}"
    );
    let config = maglev_core::config::AnnounceConfig {
        table: 200,
        protocol: 201,
        netns: None,
        min_interval: std::time::Duration::from_secs(10),
        vpp_grace: std::time::Duration::from_secs(5),
    };
    let refusal = maglev_bin::announce::privilege::check_mask(&config, Some(0))
        .unwrap_err()
        .to_string();
    assert!(refusal.contains(&format!("/{asset}")), "{refusal}");
}
