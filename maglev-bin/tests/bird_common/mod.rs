//! Two BIRDs peering over BGP in two network namespaces made for the test:
//! BIRD A learns kernel table 200 of namespace A with the BIRD 2 snippet of
//! docs/user-guide.md (the very text between its markers) and exports
//! maglevd's routes over eBGP to BIRD B in namespace B, which imports
//! them; the test asks B (`birdc show route`) what it holds.
//!
//! The namespaces are named after the process id (and a counter), joined
//! by a veth pair with link-local and ULA addresses that exist only inside
//! them, so nothing leaves them. Dropping a [`Peering`] (also when a test
//! panics) kills both BIRDs and deletes both namespaces.
//!
//! Needs root, iproute2 and BIRD 2 (`bird`, `birdc`; Debian `bird2`):
//! without them [`Peering::start`] says why, and the caller skips, unless
//! `MAGLEV_REQUIRE_BIRD=1` (CI), when it fails. Waits poll BIRD with a
//! deadline, in tokio time. The benches include this file (`#[path]`).

#![allow(dead_code, reason = "each test binary uses a part of it")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

#[path = "../netns_common/mod.rs"]
mod netns_common;
pub use netns_common::Netns;

/// The kernel table and route protocol of the snippet (and of the tests'
/// `maglev.announce`).
pub const TABLE: u32 = 200;
/// See [`TABLE`].
pub const PROTOCOL: u8 = 201;

/// How long a real process may take to get somewhere before the test
/// fails: it only bounds a hang, nothing is timed against it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often a condition on a real process is looked at again.
const POLL: Duration = Duration::from_millis(5);

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/user-guide.md");
const BEGIN: &str = "<!-- bird-snippet-begin -->";
const END: &str = "<!-- bird-snippet-end -->";

/// Whether the BIRD test must run (`MAGLEV_REQUIRE_BIRD=1`, as in CI).
pub fn required() -> bool {
    std::env::var("MAGLEV_REQUIRE_BIRD").is_ok_and(|v| v == "1")
}

/// Says why the BIRD test cannot run here; fails when it is required.
pub fn skip(why: &str) {
    assert!(
        !required(),
        "MAGLEV_REQUIRE_BIRD=1 but the BIRD test cannot run: {why}"
    );
    eprintln!("skipped: the BIRD test cannot run here: {why}");
}

/// The BIRD 2 snippet of the user guide: the fenced block between the
/// markers, without its fence.
pub fn snippet() -> String {
    let text = std::fs::read_to_string(DOCS).unwrap_or_else(|e| panic!("{DOCS}: {e}"));
    let (_, rest) = text
        .split_once(BEGIN)
        .unwrap_or_else(|| panic!("{DOCS} has no {BEGIN}"));
    let (block, _) = rest
        .split_once(END)
        .unwrap_or_else(|| panic!("{DOCS} has no {END}"));
    let lines: Vec<&str> = block.trim().lines().collect();
    assert!(
        lines.len() > 2 && lines[0].starts_with("```") && lines[lines.len() - 1] == "```",
        "{DOCS}: the BIRD snippet is not one fenced block"
    );
    let mut out = lines[1..lines.len() - 1].join("\n");
    out.push('\n');
    out
}

/// A route as `birdc show route` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `unicast`, `blackhole`, …
    pub kind: String,
    /// The protocol it came from (`peer`, `maglev4`, …).
    pub proto: String,
    /// When the route last changed in this BIRD's table (its age), as
    /// BIRD prints it (`timeformat route iso long ms`).
    pub since: String,
}

/// One BIRD, in the foreground in a namespace; killed on drop.
#[derive(Debug)]
pub struct Bird {
    child: Child,
    /// Its control socket.
    pub sock: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl Bird {
    /// Starts `bird -f` on config `conf` in namespace `ns`, files in `dir`
    /// named after `name`, and waits until it answers on its socket.
    pub async fn start(ns: &Netns, dir: &Path, name: &str, conf: &str) -> Result<Bird, String> {
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, conf).map_err(|e| format!("{}: {e}", path.display()))?;
        let sock = dir.join(format!("{name}.ctl"));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "bird", "-f", "-c"])
            .arg(&path)
            .arg("-s")
            .arg(&sock)
            .arg("-P")
            .arg(dir.join(format!("{name}.pid")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run `ip netns exec … bird`: {e}"))?;
        let mut bird = Bird { child, sock, log };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = bird.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "BIRD {name} exited ({status}): {}",
                    std::fs::read_to_string(&bird.log)
                        .unwrap_or_default()
                        .trim()
                ));
            }
            if bird.birdc(&["show", "status"]).await.is_ok() {
                return Ok(bird);
            }
            if Instant::now() > deadline {
                return Err(format!("BIRD {name} does not answer on its socket"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `birdc -s <socket> <args>`: BIRD's answer, or why there is none.
    pub async fn birdc(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new("birdc")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run birdc: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // birdc exits non-zero on a command's error too ("Network not
        // found"): what counts is that BIRD answered.
        if text.starts_with("BIRD ") && text.lines().next().is_some_and(|l| l.ends_with("ready.")) {
            Ok(text)
        } else {
            Err(format!(
                "`birdc {}` failed: {text}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The best route of `prefix` (`192.0.2.1/32`) in this BIRD's table,
    /// or `None`.
    pub async fn route(&self, prefix: &str) -> Option<Route> {
        let text = self
            .birdc(&["show", "route", prefix])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        parse_route(&text, prefix)
    }

    /// Whether the BGP protocol `name` is established.
    pub async fn established(&self, name: &str) -> bool {
        self.birdc(&["show", "protocols", name])
            .await
            .is_ok_and(|t| t.contains("Established"))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        // `ip netns exec` execs BIRD: the child is BIRD itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The route of `prefix` in `birdc show route` output: its first line
/// starts with the prefix, then the kind and `[proto since…]`.
pub fn parse_route(text: &str, prefix: &str) -> Option<Route> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(prefix))?;
    let mut words = line.split_whitespace().skip(1);
    let kind = words.next()?.to_owned();
    let inside = line.split_once('[')?.1.split_once(']')?.0;
    let mut parts = inside.split_whitespace();
    let proto = parts.next()?.to_owned();
    let date = parts.next()?;
    let since = match parts.next() {
        Some(time) if time != "from" => format!("{date} {time}"),
        _ => date.to_owned(),
    };
    Some(Route { kind, proto, since })
}

/// Two namespaces joined by a veth pair, BIRD A learning table 200 of A
/// with the user guide's snippet and exporting to BIRD B over eBGP.
/// Fields drop in order: the BIRDs first, then the namespaces.
#[derive(Debug)]
pub struct Peering {
    /// BIRD A (AS 65001), in [`Peering::a`].
    pub bird_a: Bird,
    /// BIRD B (AS 65002), in [`Peering::b`].
    pub bird_b: Bird,
    /// The namespace whose table 200 BIRD A learns (maglevd's `netns`).
    pub a: Netns,
    /// BIRD B's namespace.
    pub b: Netns,
    /// Configs, sockets and logs.
    pub dir: tempfile::TempDir,
}

const A4: &str = "169.254.77.1";
const B4: &str = "169.254.77.2";

/// BIRD A: the snippet, and the BGP session exporting what it selects.
fn conf_a(snippet: &str) -> String {
    format!(
        "router id {A4};\ntimeformat route iso long ms;\nprotocol device {{}}\n\n{snippet}\n\
         protocol bgp peer {{\n    local {A4} as 65001;\n    neighbor {B4} as 65002;\n\
         \x20   connect delay time 1;\n    connect retry time 1;\n    error wait time 1, 5;\n\
         \x20   ipv4 {{ import none; export where maglev_vip(); }};\n\
         \x20   ipv6 {{ import none; export where maglev_vip(); }};\n}}\n"
    )
}

/// BIRD B: imports everything A sends.
fn conf_b() -> String {
    format!(
        "router id {B4};\ntimeformat route iso long ms;\nprotocol device {{}}\n\
         protocol bgp peer {{\n    local {B4} as 65002;\n    neighbor {A4} as 65001;\n\
         \x20   connect delay time 1;\n    connect retry time 1;\n    error wait time 1, 5;\n\
         \x20   ipv4 {{ import all; export none; }};\n\
         \x20   ipv6 {{ import all; export none; }};\n}}\n"
    )
}

impl Peering {
    /// Makes the namespaces and the link, starts both BIRDs and waits
    /// until their session is established; `Err` says why it cannot.
    pub async fn start() -> Result<Peering, String> {
        for tool in ["bird", "birdc"] {
            let found = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
            if !found {
                return Err(format!("no `{tool}` (Debian: apt-get install bird2)"));
            }
        }
        let a = Netns::new("mgbirda")?;
        let b = Netns::new("mgbirdb")?;
        a.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", &b.0,
        ])?;
        a.ip(&["addr", "add", &format!("{A4}/30"), "dev", "veth0"])?;
        b.ip(&["addr", "add", &format!("{B4}/30"), "dev", "veth1"])?;
        a.ip(&[
            "-6",
            "addr",
            "add",
            "fd00:77::1/64",
            "dev",
            "veth0",
            "nodad",
        ])?;
        b.ip(&[
            "-6",
            "addr",
            "add",
            "fd00:77::2/64",
            "dev",
            "veth1",
            "nodad",
        ])?;
        for (ns, dev) in [(&a, "veth0"), (&b, "veth1"), (&a, "lo"), (&b, "lo")] {
            ns.ip(&["link", "set", dev, "up"])?;
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bird_a = Bird::start(&a, dir.path(), "a", &conf_a(&snippet())).await?;
        let bird_b = Bird::start(&b, dir.path(), "b", &conf_b()).await?;
        let peering = Peering {
            bird_a,
            bird_b,
            a,
            b,
            dir,
        };
        peering
            .until("the BGP session between A and B is established", || async {
                peering.bird_a.established("peer").await && peering.bird_b.established("peer").await
            })
            .await;
        Ok(peering)
    }

    /// BIRD B's route of `prefix`.
    pub async fn on_b(&self, prefix: &str) -> Option<Route> {
        self.bird_b.route(prefix).await
    }

    /// Polls until `cond` holds; fails the test after [`PATIENCE`], with
    /// both BIRDs' routes.
    pub async fn until<F: Future<Output = bool>>(&self, what: &str, mut cond: impl FnMut() -> F) {
        let deadline = Instant::now() + PATIENCE;
        while !cond().await {
            if Instant::now() > deadline {
                let a = self.bird_a.birdc(&["show", "route", "table", "all"]).await;
                let b = self.bird_b.birdc(&["show", "route", "table", "all"]).await;
                panic!(
                    "timed out waiting until {what}\nBIRD A: {}\nBIRD B: {}",
                    a.unwrap_or_else(|e| e),
                    b.unwrap_or_else(|e| e),
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until B holds a route of `prefix` and returns it.
    pub async fn until_on_b(&self, prefix: &str) -> Route {
        let found = std::cell::RefCell::new(None);
        self.until(&format!("BIRD B holds {prefix}"), || async {
            *found.borrow_mut() = self.on_b(prefix).await;
            found.borrow().is_some()
        })
        .await;
        found.into_inner().unwrap()
    }

    /// Waits until B holds no route of `prefix`.
    pub async fn until_gone_from_b(&self, prefix: &str) {
        self.until(&format!("BIRD B no longer holds {prefix}"), || async {
            self.on_b(prefix).await.is_none()
        })
        .await;
    }

    /// Runs `ip <args>` inside namespace A (e.g. a route of the test's
    /// own in table 200).
    pub fn ip_a(&self, args: &[&str]) -> Result<(), String> {
        self.a.ip(args)
    }
}
