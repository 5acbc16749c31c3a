//! Network namespaces made by a test (and deleted on drop), driven and read
//! back with iproute2, never with the code under test: the kernel table
//! tests, the announcer's netns test and the BIRD harness share it.

#![allow(dead_code, reason = "each test binary uses a part of it")]
#![allow(unreachable_pub, reason = "shared by the test binaries")]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `ip` with `args`; the error names the command and what it said.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace made for the test, deleted on drop.
#[derive(Debug)]
pub struct Netns(pub String);

impl Netns {
    /// A fresh namespace named `tag`, the process id and a counter, or why
    /// none can be made here.
    pub fn new(tag: &str) -> Result<Netns, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{tag}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        Ok(Netns(name))
    }

    /// As [`Netns::new`], or `None` after saying why `what` is skipped; it
    /// fails instead when `MAGLEV_REQUIRE_NETNS=1` (CI).
    pub fn or_skip(tag: &str, what: &str) -> Option<Netns> {
        match Netns::new(tag) {
            Ok(ns) => Some(ns),
            Err(reason) => {
                assert!(
                    std::env::var("MAGLEV_REQUIRE_NETNS").as_deref() != Ok("1"),
                    "MAGLEV_REQUIRE_NETNS=1 but {what} cannot run: {reason}"
                );
                eprintln!("skipped: {what} cannot run here: {reason}");
                None
            }
        }
    }

    /// Runs `ip -n <this namespace> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Every route of `table`, IPv4 then IPv6, one per line, as iproute2
    /// shows them (`blackhole 192.0.2.1 proto 201`).
    pub fn routes(&self, table: u32) -> Vec<String> {
        let table = table.to_string();
        let mut lines = Vec::new();
        for family in ["-4", "-6"] {
            let out = Command::new("ip")
                .args(["-n", &self.0, family, "route", "show", "table", &table])
                .output()
                .unwrap();
            // A table that never held a route does not exist yet.
            if String::from_utf8_lossy(&out.stderr).contains("table does not exist") {
                continue;
            }
            assert!(out.status.success(), "{out:?}");
            lines.extend(
                String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .map(|l| l.trim().to_owned()),
            );
        }
        lines
    }

    /// The addresses of the blackhole routes of `protocol` in `table`,
    /// IPv4 then IPv6.
    pub fn blackholes(&self, table: u32, protocol: u8) -> Vec<String> {
        let proto = protocol.to_string();
        self.routes(table)
            .iter()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                (words.first() == Some(&"blackhole")
                    && words.windows(2).any(|w| w == ["proto", proto.as_str()]))
                .then(|| words[1].to_owned())
            })
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}
