//! `watch events`: one line per event (or one line of JSON with
//! `--json`) until `num <n>` events, Ctrl-C, any key, or the stream ends.
//! On a terminal, stdin is put in cbreak mode (no echo, no line
//! buffering; output processing and signals stay on) for the keypress,
//! and restored on every way out.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use tonic::transport::Channel;

use super::Target;
use super::exec::{Failure, server_message, write_out};
use super::parse::Invocation;
use super::render::{self, Paint, Style};
use super::tree::Slot;
use crate::grpc::json;
use crate::grpc::proto;
use crate::grpc::proto::maglev_client::MaglevClient;

/// The request for an invocation's filters. With no kind named, the
/// daemon sends backend, frontend and VPP events (no logs).
pub fn request(inv: &Invocation) -> proto::WatchRequest {
    let level = inv.arg(Slot::LogLevel).unwrap_or_default().to_owned();
    proto::WatchRequest {
        log: inv.flag("log") || !level.is_empty(),
        log_level: level,
        backend: inv.flag("backend"),
        frontend: inv.flag("frontend"),
        vpp: inv.flag("vpp"),
        announce: inv.flag("announce"),
        frontends: Vec::new(),
        backends: Vec::new(),
    }
}

/// One event as one line for people.
pub fn line(e: &proto::Event, st: Style) -> String {
    use proto::event::Kind;
    let t = render::time_of_day(e.unix_nanos);
    let body = match &e.kind {
        None => "(empty event)".to_owned(),
        Some(Kind::Log(l)) => {
            let mut s = format!("log {} {}: {}", l.level, l.target, l.message);
            let mut fields: Vec<_> = l.fields.iter().collect();
            fields.sort();
            for (k, v) in fields {
                s.push_str(&format!(" {k}={v}"));
            }
            s
        }
        Some(Kind::Backend(b)) => match (&b.transition, &b.damping) {
            (Some(x), _) => {
                let detail = if x.detail.is_empty() {
                    String::new()
                } else {
                    format!(" {}", x.detail)
                };
                format!(
                    "backend {} ({}) {} -> {} {}{detail}",
                    b.backend,
                    b.address,
                    st.paint(&x.from, Paint::state(&x.from)),
                    st.paint(&x.to, Paint::state(&x.to)),
                    x.code
                )
            }
            (None, Some(d)) => {
                let (what, paint) = if d.suppressed {
                    ("suppressed", Paint::state("down"))
                } else {
                    ("released", Paint::state("up"))
                };
                // The release is counted from the event's own time, so a
                // replayed line reads the same.
                let release = render::until(d.release_unix_nanos, e.unix_nanos)
                    .filter(|_| d.suppressed)
                    .map(|t| format!(", release in {t}"))
                    .unwrap_or_default();
                format!(
                    "backend {} ({}) {} by flap damping (penalty {:.2}{release})",
                    b.backend,
                    b.address,
                    st.paint(what, paint),
                    d.penalty
                )
            }
            (None, None) => match &b.probe_blocked {
                Some(p) => {
                    let spell = p.spell.clone().unwrap_or_default();
                    if p.blocked {
                        format!(
                            "backend {} ({}) {} ({}): {}; state held",
                            b.backend,
                            b.address,
                            st.paint("probe-blocked", Paint::Yellow),
                            spell.reason,
                            spell.detail
                        )
                    } else {
                        format!(
                            "backend {} ({}) {}: probes run again after {} that could not ({})",
                            b.backend,
                            b.address,
                            st.paint("probe-unblocked", Paint::state("up")),
                            spell.count,
                            spell.reason
                        )
                    }
                }
                None => format!("backend {} ({})", b.backend, b.address),
            },
        },
        Some(Kind::Frontend(f)) => format!(
            "frontend {} {} -> {}",
            f.frontend,
            st.paint(&f.from, Paint::state(&f.from)),
            st.paint(&f.to, Paint::state(&f.to))
        ),
        Some(Kind::Vpp(v)) => {
            let fe = if v.frontend.is_empty() {
                "-"
            } else {
                v.frontend.as_str()
            };
            let err = if v.error.is_empty() {
                String::new()
            } else {
                format!(" {}", st.error(&format!("failed: {}", v.error)))
            };
            match &v.summary {
                // A large plan's totals, from the numbers (not `op`).
                Some(t) => format!("vpp plan ({}) {}{err}", v.scope, summary(t)),
                None => format!("vpp {fe} {} ({}) {}{err}", v.kind, v.scope, v.op),
            }
        }
        Some(Kind::Announce(a)) => {
            let what = if a.announced {
                "announced"
            } else {
                "withdrawn"
            };
            let paint = Paint::state(if a.announced { "up" } else { "down" });
            let err = if a.error.is_empty() {
                String::new()
            } else {
                format!(" {}", st.error(&format!("failed: {}", a.error)))
            };
            format!(
                "announce {} ({}) {} ({}){err}",
                a.prefix,
                a.frontends.join(","),
                st.paint(what, paint),
                a.reason
            )
        }
        Some(Kind::Node(n)) => {
            let what = if n.drained { "drained" } else { "undrained" };
            format!("node {what} by {}", n.by)
        }
        Some(Kind::Lag(l)) => st.paint(
            &format!("lag: this watch fell behind and lost {} events", l.lost),
            Paint::Yellow,
        ),
    };
    format!("{t} {body}\n")
}

/// A plan's totals: `4150 ops: 245 vip_added, 3905 as_added`, the kinds
/// with none left out.
fn summary(t: &proto::VppChangeSummary) -> String {
    let kinds: Vec<String> = [
        ("vip_added", t.vip_added),
        ("vip_removed", t.vip_removed),
        ("as_added", t.as_added),
        ("as_removed", t.as_removed),
        ("as_weight_updated", t.as_weight_updated),
        ("skipped", t.skipped),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| format!("{n} {k}"))
    .collect();
    format!("{} ops: {}", t.ops, kinds.join(", "))
}

/// Cbreak mode on a terminal's stdin for as long as it lives.
struct Cbreak {
    saved: Termios,
}

impl Cbreak {
    /// Cbreak mode, if stdin is a terminal.
    fn on() -> Option<Cbreak> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut t = saved.clone();
        t.local_flags.remove(LocalFlags::ICANON | LocalFlags::ECHO);
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &t).ok()?;
        Some(Cbreak { saved })
    }
}

impl Drop for Cbreak {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// How often the key reader looks whether the watch is over.
const KEY_POLL_MS: u16 = 50;

/// A thread that reports the first keypress on the terminal, and stops
/// within [`KEY_POLL_MS`] once the watch is over, reading nothing after
/// that (so the shell gets every later key).
struct Keys {
    stop: Arc<AtomicBool>,
    pressed: tokio::sync::oneshot::Receiver<()>,
    thread: tokio::task::JoinHandle<()>,
}

impl Keys {
    fn start() -> Keys {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, pressed) = tokio::sync::oneshot::channel();
        let flag = stop.clone();
        let thread = tokio::task::spawn_blocking(move || {
            let stdin = std::io::stdin();
            while !flag.load(Ordering::Acquire) {
                let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(KEY_POLL_MS)) {
                    Ok(0) => continue,
                    Ok(_) if flag.load(Ordering::Acquire) => return,
                    Ok(_) => {
                        let mut buf = [0u8; 64];
                        if matches!(nix::unistd::read(stdin.as_fd(), &mut buf), Ok(n) if n > 0) {
                            let _ = tx.send(());
                        }
                        // A key, or the end of input: either way, stop reading.
                        return;
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                }
            }
        });
        Keys {
            stop,
            pressed,
            thread,
        }
    }

    /// Stops the thread and waits for it.
    async fn finish(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.await;
    }
}

/// Resolves on the first keypress; never without a key reader or once it
/// ended without a key.
async fn keypress(keys: Option<&mut Keys>) {
    match keys {
        Some(k) => {
            if (&mut k.pressed).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Runs `watch events` for `inv`; when stdin is a terminal, a keypress
/// stops it.
pub async fn run(
    client: &mut MaglevClient<Channel>,
    target: &Target,
    inv: &Invocation,
    st: Style,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let limit = inv.num(Slot::Count);
    let mut stream = client
        .watch_events(request(inv))
        .await
        .map_err(|s| Failure::Server(server_message(target, &s)))?
        .into_inner();
    // On the way out the key reader stops before the terminal is restored.
    let cbreak = Cbreak::on();
    let mut keys = cbreak.is_some().then(Keys::start);
    let mut seen: u64 = 0;
    let result = loop {
        if limit.is_some_and(|n| seen >= n) {
            break Ok(());
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            () = keypress(keys.as_mut()) => break Ok(()),
            msg = stream.message() => match msg {
                Ok(Some(e)) => {
                    seen += 1;
                    let text = if inv.json() {
                        match json::compact(&e) {
                            Ok(t) => t,
                            Err(m) => break Err(Failure::Server(m)),
                        }
                    } else {
                        line(&e, st)
                    };
                    match write_out(out, &text) {
                        Ok(true) => {}
                        Ok(false) => break Ok(()),
                        Err(f) => break Err(f),
                    }
                }
                Ok(None) => break Err(Failure::Server("maglevd ended the event stream".to_owned())),
                Err(s) => break Err(Failure::Server(server_message(target, &s))),
            },
        }
    };
    if let Some(k) = keys {
        k.finish().await;
    }
    drop(cbreak);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::render::strip;

    const NS: i64 = 1_000_000_000;
    /// 2026-12-01 21:00:58.123 UTC.
    const AT: i64 = 1_796_158_858_123_000_000;

    fn backend_event(
        transition: Option<proto::Transition>,
        damping: Option<proto::DampingEvent>,
    ) -> proto::Event {
        proto::Event {
            unix_nanos: AT,
            kind: Some(proto::event::Kind::Backend(proto::BackendEvent {
                backend: "nginx0".into(),
                address: "10.0.0.1".into(),
                transition,
                damping,
                probe_blocked: None,
            })),
        }
    }

    #[test]
    fn probes_that_could_not_run_say_why_and_when_they_run_again() {
        let blocked = |blocked| proto::Event {
            unix_nanos: AT,
            kind: Some(proto::event::Kind::Backend(proto::BackendEvent {
                backend: "nginx0".into(),
                address: "10.0.0.1".into(),
                probe_blocked: Some(proto::ProbeBlockedEvent {
                    blocked,
                    spell: Some(proto::ProbeBlocked {
                        reason: "fd_limit".into(),
                        detail: "create socket: Too many open files".into(),
                        since_unix_nanos: AT,
                        count: 12,
                    }),
                }),
                ..Default::default()
            })),
        };
        assert_eq!(
            line(&blocked(true), Style { color: false }),
            "21:00:58.123 backend nginx0 (10.0.0.1) probe-blocked (fd_limit): \
             create socket: Too many open files; state held\n"
        );
        assert_eq!(
            line(&blocked(false), Style { color: false }),
            "21:00:58.123 backend nginx0 (10.0.0.1) probe-unblocked: probes run again \
             after 12 that could not (fd_limit)\n"
        );
    }

    #[test]
    fn damping_events_say_what_flap_damping_did() {
        let suppressed = backend_event(
            None,
            Some(proto::DampingEvent {
                suppressed: true,
                penalty: 3.4213,
                release_unix_nanos: AT + 120 * NS,
            }),
        );
        let plain = line(&suppressed, Style { color: false });
        assert_eq!(
            plain,
            "21:00:58.123 backend nginx0 (10.0.0.1) suppressed by flap damping (penalty 3.42, release in 2m)\n"
        );
        let colored = line(&suppressed, Style { color: true });
        assert_eq!(strip(&colored), plain);
        assert!(
            colored.contains(" \x1b[31msuppressed\x1b[0m by flap damping"),
            "{colored}"
        );

        let released = backend_event(
            None,
            Some(proto::DampingEvent {
                suppressed: false,
                penalty: 0.99,
                release_unix_nanos: 0,
            }),
        );
        let plain = line(&released, Style { color: false });
        assert_eq!(
            plain,
            "21:00:58.123 backend nginx0 (10.0.0.1) released by flap damping (penalty 0.99)\n"
        );
        let colored = line(&released, Style { color: true });
        assert_eq!(strip(&colored), plain);
        assert!(colored.contains(" \x1b[32mreleased\x1b[0m by"), "{colored}");
    }

    #[test]
    fn a_large_plan_reads_as_its_totals() {
        let summary = |error: &str, skipped| proto::Event {
            unix_nanos: AT,
            kind: Some(proto::event::Kind::Vpp(proto::VppChangeEvent {
                frontend: String::new(),
                kind: "summary".into(),
                op: "ignored: the numbers are rendered".into(),
                scope: "all".into(),
                error: error.into(),
                summary: Some(proto::VppChangeSummary {
                    ops: 4150,
                    vip_added: 245,
                    as_added: 3905,
                    skipped,
                    ..Default::default()
                }),
            })),
        };
        assert_eq!(
            line(&summary("", 0), Style { color: false }),
            "21:00:58.123 vpp plan (all) 4150 ops: 245 vip_added, 3905 as_added\n"
        );
        assert_eq!(
            line(&summary("100 ops refused", 7), Style { color: false }),
            "21:00:58.123 vpp plan (all) 4150 ops: 245 vip_added, 3905 as_added, 7 skipped \
             failed: 100 ops refused\n"
        );
    }

    #[test]
    fn transitions_and_bare_backend_events_read_as_before() {
        let restored = backend_event(
            Some(proto::Transition {
                from: "unknown".into(),
                to: "up".into(),
                code: "restored".into(),
                detail: "from the state file".into(),
                unix_nanos: AT,
            }),
            None,
        );
        assert_eq!(
            line(&restored, Style { color: false }),
            "21:00:58.123 backend nginx0 (10.0.0.1) unknown -> up restored from the state file\n"
        );
        assert_eq!(
            line(&backend_event(None, None), Style { color: false }),
            "21:00:58.123 backend nginx0 (10.0.0.1)\n"
        );
    }
}
