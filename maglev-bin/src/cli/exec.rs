//! Running a parsed command against maglevd over gRPC and rendering the
//! reply: one [`Session`] per server, shared by the shell, one-shot mode
//! and several servers ([`super::multi`]) so all print the same text and
//! the same errors. The renderers of each reply type live in files named
//! for it (`frontend`, `backend`, `healthcheck`, `overrides`, `vpp`,
//! `lists`, `announce`, `plan`).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::time::Duration;

use tonic::transport::Channel;

use super::Target;
use super::announce;
use super::backend::backend_text;
use super::frontend::frontend_text;
use super::healthcheck::healthcheck_text;
use super::lists;
use super::overrides::{override_text, overrides_text};
use super::parse::Invocation;
use super::plan;
use super::render::{self, Block, Paint, Style, Table};
use super::tree::{CommandId, Slot, commands};
use super::vpp::{counters_text, lb_state_text};
use super::watch;
use crate::clock::WallClock;
use crate::grpc::json;
use crate::grpc::paging;
use crate::grpc::proto;
use crate::grpc::proto::maglev_client::MaglevClient;
use crate::transport::client::ClientTls;

/// How long one name look-up for completion may take.
const NAMES_TIMEOUT: Duration = Duration::from_millis(800);
/// How long `show vpp lb counters` waits for a second scrape to compute
/// rates (the daemon scrapes every 5 s by default).
const RATE_WAIT: Duration = Duration::from_secs(12);
/// How often it looks for that second scrape.
const RATE_POLL: Duration = Duration::from_millis(200);

/// Why a command did not succeed, and so the exit code.
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// maglevd refused, failed or could not be reached (exit 1); the text
    /// is the server's message only.
    Server(String),
    /// The failure was already printed (exit 1), e.g. a config check that
    /// found errors.
    Reported,
}

impl Failure {
    /// The process exit code for it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Server(_) | Failure::Reported => 1,
        }
    }

    /// The message to print, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            Failure::Usage(m) | Failure::Server(m) => Some(m),
            Failure::Reported => None,
        }
    }
}

/// What the caller does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Leave the shell.
    Quit,
}

/// A connection to one maglevd and how to print.
#[derive(Clone)]
pub struct Session {
    client: MaglevClient<Channel>,
    target: Target,
    style: Style,
    wall: WallClock,
}

pub use crate::fleet::channel::endpoint_uri;

impl Session {
    /// A session to `target`. Nothing is connected until the first
    /// command, and a lost connection is retried by the next one; TLS
    /// files are read now, so a wrong one is a usage error naming it.
    pub fn new(target: &Target, style: Style) -> Result<Session, Failure> {
        let channel = crate::fleet::channel::channel(target).map_err(Failure::Usage)?;
        Ok(Session {
            client: MaglevClient::new(channel),
            target: target.clone(),
            style,
            wall: WallClock::new(),
        })
    }

    /// The server address.
    pub fn server(&self) -> &str {
        &self.target.server
    }

    /// The output style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// The gRPC client (cheap to clone).
    pub fn client(&self) -> &MaglevClient<Channel> {
        &self.client
    }

    /// Where it talks to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// This session's server as a fleet node named `name`, sharing its
    /// channel.
    pub fn node(&self, name: &str) -> crate::fleet::Node {
        crate::fleet::Node {
            name: name.to_owned(),
            target: self.target.clone(),
            client: self.client.clone(),
        }
    }

    /// The wall clock now (Unix nanoseconds).
    pub fn now_unix_nanos(&self) -> i64 {
        self.wall.now_unix_nanos()
    }

    fn status(&self, s: tonic::Status) -> Failure {
        Failure::Server(server_message(&self.target, &s))
    }

    /// Runs `inv`, writing its output to `out`.
    pub async fn run(&mut self, inv: &Invocation, out: &mut dyn Write) -> Result<Flow, Failure> {
        let text = match self.render(inv, out).await {
            Ok(t) => t.unwrap_or_default(),
            Err(Stop::Quit) => return Ok(Flow::Quit),
            Err(Stop::Other(f)) => return Err(f),
        };
        write_out(out, &text)?;
        Ok(Flow::Continue)
    }
}

/// Writes `text`: `Ok(false)` when the reader went away (`| head`), which
/// ends output quietly.
pub fn write_out(out: &mut dyn Write, text: &str) -> Result<bool, Failure> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::Server(format!("cannot write output: {e}"))),
    }
}

/// The message a failed call to `target` prints: the server's own
/// message (a denial says so), or that the server could not be reached,
/// with what to do when the cause is TLS.
pub fn server_message(target: &Target, s: &tonic::Status) -> String {
    let from_transport = std::error::Error::source(s).is_some();
    if from_transport || (s.code() == tonic::Code::Unknown && s.message().contains("transport")) {
        // The error chain, each cause once (hyper repeats some).
        let mut parts: Vec<String> = Vec::new();
        let mut cur = std::error::Error::source(s);
        while let Some(e) = cur {
            let text = e.to_string();
            if parts.last() != Some(&text) {
                parts.push(text);
            }
            cur = e.source();
        }
        let cause = if parts.is_empty() {
            s.message().to_owned()
        } else {
            parts.join(": ")
        };
        let server = &target.server;
        match tls_hint(&cause, target.tls.as_ref()) {
            Some(hint) => format!("cannot reach maglevd at {server}: {cause}\n{hint}"),
            None => format!("cannot reach maglevd at {server}: {cause}"),
        }
    } else if s.code() == tonic::Code::PermissionDenied {
        format!("permission denied: {}", s.message())
    } else {
        s.message().to_owned()
    }
}

/// What to do about a connection failure whose causes read `cause`, made
/// with `tls` (or plain), when TLS is the likely reason.
pub fn tls_hint(cause: &str, tls: Option<&ClientTls>) -> Option<&'static str> {
    let has = |needles: &[&str]| needles.iter().any(|n| cause.contains(n));
    // TLS 1.3 finishes the client's handshake before the server checks its
    // certificate: a refusal often shows only as a closed connection.
    let closed = has(&[
        "broken pipe",
        "reset by peer",
        "unexpected EOF",
        "connection closed",
    ]);
    match tls {
        Some(tls) if has(&["invalid peer certificate"]) => Some(if tls.ca.is_some() {
            "maglevd's certificate is not signed by --ca, or does not name the server: give its name or address as --server"
        } else {
            "maglevd's certificate is not trusted by the system: give the CA that signed it with --ca"
        }),
        Some(_) if has(&["InvalidContentType", "corrupt message"]) => Some(
            "maglevd does not speak TLS at that address: leave out --tls, --ca, --cert and --key",
        ),
        Some(tls) if tls.cert.is_none() && (closed || has(&["CertificateRequired"])) => Some(
            "maglevd wants a client certificate: give --cert and --key (or MAGLEV_CERT, MAGLEV_KEY)",
        ),
        Some(_)
            if closed
                || has(&[
                    "BadCertificate",
                    "UnknownCA",
                    "CertificateExpired",
                    "CertificateUnknown",
                    "AccessDenied",
                ]) =>
        {
            Some(
                "maglevd refused the client certificate: it must be current and signed by maglevd's --grpc-client-ca",
            )
        }
        None if closed || has(&["frame with invalid size", "protocol error"]) => Some(
            "is maglevd serving TLS there? then give --tls (and --ca, --cert, --key as it needs)",
        ),
        _ => None,
    }
}

enum Stop {
    Quit,
    Other(Failure),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Other(f)
    }
}

type Rendered = Result<Option<String>, Stop>;

fn js<M: json::Reply>(m: &M) -> Rendered {
    json::pretty(m)
        .map(Some)
        .map_err(|e| Stop::Other(Failure::Server(e)))
}

fn req_arg(inv: &Invocation, slot: Slot) -> String {
    inv.arg(slot).unwrap_or_default().to_owned()
}

pub(super) fn proto_name(p: &str) -> &str {
    if p.is_empty() { "any" } else { p }
}

pub(super) fn port_name(p: u32) -> String {
    if p == 0 {
        "any".to_owned()
    } else {
        p.to_string()
    }
}

pub(super) fn dur(d: &Option<prost_types::Duration>) -> String {
    d.as_ref()
        .and_then(|d| Duration::try_from(*d).ok())
        .map(render::duration)
        .unwrap_or_else(|| "-".to_owned())
}

impl Session {
    fn now(&self) -> i64 {
        self.wall.now_unix_nanos()
    }

    async fn render(&mut self, inv: &Invocation, out: &mut dyn Write) -> Rendered {
        let json = inv.json();
        let st = self.style;
        match inv.id {
            CommandId::Quit => Err(Stop::Quit),
            CommandId::Help => Ok(Some(help_text(&inv.rest, st))),
            CommandId::ShowVersion => {
                if json {
                    let v = serde_json::json!({
                        "maglevc": crate::VERSION,
                        "commit": crate::COMMIT,
                        "build_date": crate::BUILD_DATE,
                        "server": self.target.server,
                    });
                    Ok(Some(format!("{v:#}\n")))
                } else {
                    let mut b = Block::new();
                    b.kv("maglevc", crate::VERSION_LINE)
                        .kv("server", self.target.server.as_str());
                    Ok(Some(b.render(st)))
                }
            }
            CommandId::ShowFrontends => {
                let r = paging::all_frontends(&self.client, Default::default())
                    .await
                    .map_err(|s| self.status(s))?;
                if json {
                    return js(&r);
                }
                Ok(Some(lists::frontends_table(&[(None, &r.frontends)], st)))
            }
            CommandId::ShowFrontend => {
                let name = req_arg(inv, Slot::Frontend);
                let f = self
                    .client
                    .get_frontend(proto::GetFrontendRequest { name: name.clone() })
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&f);
                }
                // VPP's buckets per AS address; `-` when VPP cannot say.
                // When VPP's buckets matched the prediction at the
                // daemon's last read (drift 0), the prediction is what VPP
                // holds: no dump of every VIP to show one.
                if f.buckets_drift == Some(0) {
                    return Ok(Some(frontend_text(&f, None, st)));
                }
                let req = proto::GetVpplbStateRequest {
                    frontend: name,
                    ..Default::default()
                };
                let buckets: Option<BTreeMap<String, u32>> =
                    paging::all_lb_state(&self.client, req).await.ok().map(|r| {
                        r.vips
                            .iter()
                            .flat_map(|v| v.ases.iter().map(|a| (a.address.clone(), a.num_buckets)))
                            .collect()
                    });
                Ok(Some(frontend_text(&f, buckets.as_ref(), st)))
            }
            CommandId::ShowBackends => {
                let r = paging::all_backends(&self.client, Default::default())
                    .await
                    .map_err(|s| self.status(s))?;
                if json {
                    return js(&r);
                }
                Ok(Some(lists::backends_table(
                    &[(None, &r.backends)],
                    self.now(),
                    st,
                )))
            }
            CommandId::ShowBackend => {
                let b = self
                    .client
                    .get_backend(proto::GetBackendRequest {
                        name: req_arg(inv, Slot::Backend),
                    })
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&b);
                }
                Ok(Some(backend_text(&b, self.now(), st)))
            }
            CommandId::ShowHealthChecks => {
                let r = paging::all_health_checks(&self.client, Default::default())
                    .await
                    .map_err(|s| self.status(s))?;
                if json {
                    return js(&r);
                }
                let mut t = Table::new(&[
                    "NAME", "TYPE", "PORT", "INTERVAL", "FAST", "DOWN", "TIMEOUT", "RISE", "FALL",
                    "BACKENDS",
                ]);
                for h in &r.healthchecks {
                    t.row(vec![
                        h.name.clone().into(),
                        h.r#type.clone().into(),
                        if h.port == 0 {
                            "-".into()
                        } else {
                            h.port.to_string().into()
                        },
                        dur(&h.interval).into(),
                        dur(&h.fast_interval).into(),
                        dur(&h.down_interval).into(),
                        dur(&h.timeout).into(),
                        h.rise.to_string().into(),
                        h.fall.to_string().into(),
                        h.backends.len().to_string().into(),
                    ]);
                }
                Ok(Some(t.render(st)))
            }
            CommandId::ShowHealthCheck => {
                let h = self
                    .client
                    .get_health_check(proto::GetHealthCheckRequest {
                        name: req_arg(inv, Slot::HealthCheck),
                    })
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&h);
                }
                Ok(Some(healthcheck_text(&h, st)))
            }
            CommandId::ShowVppInfo => {
                let v = self
                    .client
                    .get_vpp_info(proto::GetVppInfoRequest {})
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&v);
                }
                let now = self.now();
                let when = |t: i64| {
                    if t <= 0 {
                        "-".to_owned()
                    } else {
                        format!("{} ({} ago)", render::utc(t), render::age(t, now))
                    }
                };
                let mut b = Block::new();
                b.kv("version", v.version.as_str())
                    .kv("build-date", v.build_date.as_str())
                    .kv("build-dir", v.build_directory.as_str())
                    .kv("vpp-pid", v.pid.to_string())
                    .kv("vpp-boottime", when(v.boottime_ns))
                    .kv("connected", when(v.connecttime_ns));
                super::sync_health::lines(&mut b, &v, now);
                Ok(Some(b.render(st)))
            }
            CommandId::ShowVppLbState => {
                let req = proto::GetVpplbStateRequest {
                    frontend: req_arg(inv, Slot::Frontend),
                    ..Default::default()
                };
                let s = paging::all_lb_state(&self.client, req)
                    .await
                    .map_err(|s| self.status(s))?;
                if json {
                    return js(&s);
                }
                Ok(Some(lb_state_text(&s, st)))
            }
            CommandId::ShowVppLbCounters => {
                let first = self.counters().await?;
                if json {
                    return js(&first);
                }
                let mut second = None;
                if first.scrape_unix_nanos > 0 {
                    let deadline = tokio::time::Instant::now() + RATE_WAIT;
                    while tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(RATE_POLL).await;
                        let c = self.counters().await?;
                        if c.scrape_unix_nanos != first.scrape_unix_nanos {
                            second = Some(c);
                            break;
                        }
                    }
                }
                Ok(Some(counters_text(&first, second.as_ref(), self.now(), st)))
            }
            CommandId::SyncVppLbState => {
                let frontend = req_arg(inv, Slot::Frontend);
                let dry_run = inv.flag("dry-run");
                let r = if dry_run {
                    self.client
                        .plan_sync(proto::PlanSyncRequest {
                            frontend,
                            weight: None,
                        })
                        .await
                } else {
                    self.client
                        .sync_vpplb_state(proto::SyncVpplbStateRequest { frontend })
                        .await
                };
                let r = r.map_err(|s| self.status(s))?.into_inner();
                if json {
                    return js(&r);
                }
                Ok(Some(plan::sync_text(&r, dry_run, st)))
            }
            CommandId::PauseBackend
            | CommandId::ResumeBackend
            | CommandId::EnableBackend
            | CommandId::DisableBackend => {
                let req = proto::BackendRequest {
                    name: req_arg(inv, Slot::Backend),
                };
                let c = &mut self.client;
                let r = match inv.id {
                    CommandId::PauseBackend => c.pause_backend(req).await,
                    CommandId::ResumeBackend => c.resume_backend(req).await,
                    CommandId::EnableBackend => c.enable_backend(req).await,
                    _ => c.disable_backend(req).await,
                };
                let b = r.map_err(|s| self.status(s))?.into_inner();
                if json {
                    return js(&b);
                }
                Ok(Some(format!(
                    "backend {} is now {}\n",
                    b.name,
                    st.paint(&b.state, Paint::state(&b.state))
                )))
            }
            CommandId::ShowOverrides => {
                let r = paging::all_overrides(&self.client, Default::default())
                    .await
                    .map_err(|s| self.status(s))?;
                if json {
                    return js(&r);
                }
                Ok(Some(overrides_text(&r.overrides, self.now(), st)))
            }
            CommandId::ClearBackendOverride | CommandId::ClearWeightOverride => {
                let weight = inv.id == CommandId::ClearWeightOverride;
                let req = proto::ClearOverrideRequest {
                    backend: req_arg(inv, Slot::Backend),
                    frontend: if weight {
                        req_arg(inv, Slot::Frontend)
                    } else {
                        String::new()
                    },
                    pool: if weight {
                        req_arg(inv, Slot::Pool)
                    } else {
                        String::new()
                    },
                };
                let o = self
                    .client
                    .clear_override(req)
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&o);
                }
                Ok(Some(format!(
                    "cleared: {}; back to the config file\n",
                    override_text(&o, self.now())
                )))
            }
            CommandId::SetWeight => {
                let req = proto::SetWeightRequest {
                    frontend: req_arg(inv, Slot::Frontend),
                    pool: req_arg(inv, Slot::Pool),
                    backend: req_arg(inv, Slot::Backend),
                    weight: u32::try_from(inv.num(Slot::Weight).unwrap_or(0)).unwrap_or(u32::MAX),
                    flush: inv.flag("flush"),
                };
                if inv.flag("dry-run") {
                    let r = self
                        .client
                        .plan_sync(proto::PlanSyncRequest {
                            frontend: req.frontend.clone(),
                            weight: Some(req),
                        })
                        .await
                        .map_err(|s| self.status(s))?
                        .into_inner();
                    if json {
                        return js(&r);
                    }
                    return Ok(Some(plan::sync_text(&r, true, st)));
                }
                let (pool, backend) = (req.pool.clone(), req.backend.clone());
                let f = self
                    .client
                    .set_frontend_pool_backend_weight(req)
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&f);
                }
                let member = f
                    .pools
                    .iter()
                    .filter(|p| p.name == pool)
                    .flat_map(|p| &p.backends)
                    .find(|b| b.name == backend);
                Ok(Some(match member {
                    Some(m) => format!(
                        "frontend {} pool {} backend {}: weight {}, effective {}{}\n",
                        f.name,
                        pool,
                        backend,
                        m.weight,
                        m.effective_weight,
                        if inv.flag("flush") {
                            ", flows flushed"
                        } else {
                            ""
                        }
                    ),
                    None => format!("frontend {} updated\n", f.name),
                }))
            }
            CommandId::ConfigCheck => {
                let r = self
                    .client
                    .check_config(proto::CheckConfigRequest {})
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                self.config_result(
                    json,
                    &r,
                    r.ok,
                    &r.path,
                    &r.parse_error,
                    &r.semantic_error,
                    "is valid",
                    out,
                )
            }
            CommandId::ConfigReload => {
                let r = self
                    .client
                    .reload_config(proto::ReloadConfigRequest {
                        force: inv.flag("force"),
                    })
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                let mut done = "is loaded".to_owned();
                for line in &r.deleted {
                    done.push_str("\n  ");
                    done.push_str(line);
                }
                self.config_result(
                    json,
                    &r,
                    r.ok,
                    &r.path,
                    &r.parse_error,
                    &r.semantic_error,
                    &done,
                    out,
                )
            }
            CommandId::ShowAnnouncements => {
                let r = paging::all_announcements(&self.client, Default::default())
                    .await
                    .map_err(|s| self.status(s))?;
                if json {
                    return js(&r);
                }
                Ok(Some(announce::announcements_text(&r, self.now(), st)))
            }
            CommandId::ShowNode => {
                let n = self
                    .client
                    .get_node(proto::GetNodeRequest {})
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&n);
                }
                Ok(Some(announce::node_text(&n, self.now(), st)))
            }
            CommandId::ShowFleet => {
                let node = self.node(&self.target.server);
                let reading = match crate::fleet::read(&node, crate::fleet::READ_TIMEOUT).await {
                    Ok(r) => crate::fleet::Reading::Read(r),
                    Err(e) => crate::fleet::Reading::Unreachable(e),
                };
                let server = self.target.server.as_str();
                let nodes = [(server, server)];
                if json {
                    return super::fleet_view::json(&nodes, &[reading])
                        .map(Some)
                        .map_err(|e| Failure::Server(e).into());
                }
                Ok(Some(super::fleet_view::text(&nodes, &[reading], st)))
            }
            CommandId::DrainNode | CommandId::UndrainNode => {
                let n = self
                    .client
                    .set_node_drain(proto::SetNodeDrainRequest {
                        drained: inv.id == CommandId::DrainNode,
                    })
                    .await
                    .map_err(|s| self.status(s))?
                    .into_inner();
                if json {
                    return js(&n);
                }
                Ok(Some(announce::node_text(&n, self.now(), st)))
            }
            CommandId::WatchEvents => {
                watch::run(&mut self.client, &self.target, inv, st, out).await?;
                Ok(None)
            }
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the two config replies share this printer"
    )]
    fn config_result<M: json::Reply>(
        &self,
        json: bool,
        reply: &M,
        ok: bool,
        path: &str,
        parse_error: &str,
        semantic_error: &str,
        done: &str,
        out: &mut dyn Write,
    ) -> Rendered {
        if json {
            let text = json::pretty(reply).map_err(Failure::Server)?;
            write_out(out, &text)?;
            return if ok {
                Ok(None)
            } else {
                Err(Failure::Reported.into())
            };
        }
        if ok {
            return Ok(Some(format!("config {path} {done}\n")));
        }
        let mut msg = format!("config {path} has errors:");
        for line in parse_error.lines().chain(semantic_error.lines()) {
            msg.push_str("\n  ");
            msg.push_str(line);
        }
        Err(Failure::Server(msg).into())
    }

    async fn counters(&mut self) -> Result<proto::VpplbCounters, Failure> {
        paging::all_counters(&self.client, Default::default())
            .await
            .map_err(|s| self.status(s))
    }

    /// The live names a slot may take (for Tab), given the slots before
    /// it: a frontend's pools, a pool's backends. Empty when the daemon
    /// cannot be asked quickly.
    pub async fn names(&mut self, slot: Slot, args: &BTreeMap<Slot, String>) -> Vec<String> {
        let fut = self.names_inner(slot, args);
        tokio::time::timeout(NAMES_TIMEOUT, fut)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    async fn names_inner(
        &mut self,
        slot: Slot,
        args: &BTreeMap<Slot, String>,
    ) -> Result<Vec<String>, tonic::Status> {
        let c = &mut self.client;
        Ok(match slot {
            Slot::Frontend => paging::all_frontends(c, Default::default())
                .await?
                .frontends
                .into_iter()
                .map(|f| f.name)
                .collect(),
            Slot::Pool | Slot::Backend if args.contains_key(&Slot::Frontend) => {
                let f = c
                    .get_frontend(proto::GetFrontendRequest {
                        name: args[&Slot::Frontend].clone(),
                    })
                    .await?
                    .into_inner();
                if slot == Slot::Pool {
                    f.pools.into_iter().map(|p| p.name).collect()
                } else {
                    let pool = args.get(&Slot::Pool);
                    let mut v: Vec<String> = f
                        .pools
                        .into_iter()
                        .filter(|p| pool.is_none_or(|n| *n == p.name))
                        .flat_map(|p| p.backends.into_iter().map(|b| b.name))
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                }
            }
            Slot::Backend => paging::all_backends(c, Default::default())
                .await?
                .backends
                .into_iter()
                .map(|b| b.name)
                .collect(),
            Slot::HealthCheck => paging::all_health_checks(c, Default::default())
                .await?
                .healthchecks
                .into_iter()
                .map(|h| h.name)
                .collect(),
            Slot::Pool | Slot::Weight | Slot::Count | Slot::LogLevel => Vec::new(),
        })
    }
}

/// `help`: every command (or those whose words start with `words`) with
/// its help.
pub fn help_text(words: &[String], st: Style) -> String {
    /// Commands longer than this put their help on the next line.
    const COLUMN: usize = 40;
    let rows: Vec<(String, &str)> = commands()
        .into_iter()
        .filter(|c| {
            words.iter().enumerate().all(|(i, w)| {
                c.words
                    .get(i)
                    .is_some_and(|k| k.starts_with('<') || k.starts_with(w.as_str()))
            })
        })
        .map(|c| (c.line(), c.help))
        .collect();
    if rows.is_empty() {
        return format!("no command starts with \"{}\"\n", words.join(" "));
    }
    let col = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .filter(|n| *n <= COLUMN)
        .max()
        .unwrap_or(COLUMN);
    let mut out = String::new();
    for (line, help) in rows {
        let n = line.chars().count();
        out.push_str(&st.paint(&line, Paint::Bold));
        if n <= col {
            out.push_str(&" ".repeat(col - n + 2));
        } else {
            out.push('\n');
            out.push_str(&" ".repeat(col + 2));
        }
        out.push_str(help);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::backend::*;
    use crate::cli::render::{Cell, strip};

    const NS: i64 = 1_000_000_000;
    /// 2026-12-01 21:00:58 UTC.
    const NOW: i64 = 1_796_158_858 * NS;
    const PLAIN: Style = Style { color: false };
    const COLOR: Style = Style { color: true };

    fn secs(s: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration {
            seconds: s,
            nanos: 0,
        })
    }

    fn damping(suppressed: bool, penalty: f64, release_unix_nanos: i64) -> proto::Damping {
        proto::Damping {
            suppressed,
            penalty,
            release_unix_nanos,
            half_life: secs(60),
            suppress: 3.0,
            reuse: 1.0,
            max_suppress: secs(3600),
        }
    }

    fn backend() -> proto::BackendInfo {
        proto::BackendInfo {
            name: "nginx0".into(),
            address: "10.0.0.1".into(),
            state: "up".into(),
            enabled: true,
            healthcheck: "http".into(),
            health: 4,
            rise: 2,
            fall: 3,
            frontends: vec!["web".into()],
            flaps: 7,
            transitions: vec![proto::Transition {
                from: "down".into(),
                to: "up".into(),
                code: "restored".into(),
                detail: String::new(),
                unix_nanos: NOW - 90 * NS,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_suppressed_backend_says_so_in_red_and_when_it_is_released() {
        let b = proto::BackendInfo {
            // Released 72.3 s from now: whole seconds, as ages are.
            damping: Some(damping(true, 3.4213, NOW + 72 * NS + 300_000_000)),
            ..backend()
        };
        let plain = backend_text(&b, NOW, PLAIN);
        assert_eq!(
            plain,
            "name         nginx0\n\
             address      10.0.0.1\n\
             state        up (suppressed)\n\
             enabled      yes\n\
             healthcheck  http\n\
             health       4/4 (rise 2, fall 3)\n\
             flaps        7\n\
             damping      suppressed (penalty 3.42, released in 1m12s)\n\
             last-probe   -\n\
             frontends    web\n\
             transitions\n  \
               AGO    FROM  TO  CODE      DETAIL\n  \
               1m30s  down  up  restored\n"
        );
        let colored = backend_text(&b, NOW, COLOR);
        assert_eq!(strip(&colored), plain);
        assert!(
            colored.contains("\x1b[31mup (suppressed)\x1b[0m\n"),
            "{colored}"
        );
        assert!(
            colored.contains("\x1b[31msuppressed (penalty 3.42, released in 1m12s)\x1b[0m\n"),
            "{colored}"
        );
        // A release already due (or unknown) has no time left to print.
        let due = proto::BackendInfo {
            damping: Some(damping(true, 3.0, NOW - NS)),
            ..backend()
        };
        assert!(
            backend_text(&due, NOW, PLAIN).contains("\ndamping      suppressed (penalty 3.00)\n"),
            "{}",
            backend_text(&due, NOW, PLAIN)
        );
    }

    #[test]
    fn a_ramping_backend_shows_its_penalty_settings_and_slow_start_step() {
        let b = proto::BackendInfo {
            damping: Some(damping(false, 0.8, 0)),
            slow_start: Some(proto::SlowStart {
                since_unix_nanos: NOW - 12 * NS,
                length: secs(30),
                step: 4,
            }),
            transitions: Vec::new(),
            ..backend()
        };
        let plain = backend_text(&b, NOW, PLAIN);
        assert_eq!(
            plain,
            "name         nginx0\n\
             address      10.0.0.1\n\
             state        up\n\
             enabled      yes\n\
             healthcheck  http\n\
             health       4/4 (rise 2, fall 3)\n\
             flaps        7\n\
             damping      penalty 0.80 (suppress above 3, reuse below 1, half-life 1m)\n\
             slow-start   step 4/10 since 12s (of 30s)\n\
             last-probe   -\n\
             frontends    web\n"
        );
        let colored = backend_text(&b, NOW, COLOR);
        assert_eq!(strip(&colored), plain);
        assert!(colored.contains("\x1b[32mup\x1b[0m\n"), "{colored}");
        // Only the state is painted: the damping line is not alarming.
        assert!(
            colored.contains("\x1b[34mdamping\x1b[0m      penalty 0.80 ("),
            "{colored}"
        );
    }

    #[test]
    fn a_backend_whose_probes_cannot_run_says_so_and_that_its_state_is_held() {
        let b = proto::BackendInfo {
            probe_blocked: Some(proto::ProbeBlocked {
                reason: "fd_limit".into(),
                detail: "create socket: Too many open files (os error 24)".into(),
                since_unix_nanos: NOW - 125 * NS,
                count: 13,
            }),
            transitions: Vec::new(),
            ..backend()
        };
        let plain = backend_text(&b, NOW, PLAIN);
        assert_eq!(
            plain,
            "name         nginx0\n\
             address      10.0.0.1\n\
             state        up\n\
             enabled      yes\n\
             healthcheck  http\n\
             health       4/4 (rise 2, fall 3)\n\
             flaps        7\n\
             probes       blocked (fd_limit) for 2m5s, 13 probes, state held: \
             create socket: Too many open files (os error 24)\n\
             last-probe   -\n\
             frontends    web\n"
        );
        let colored = backend_text(&b, NOW, COLOR);
        assert_eq!(strip(&colored), plain);
        assert!(
            colored.contains("\x1b[33mblocked (fd_limit) for 2m5s"),
            "{colored}"
        );
    }

    #[test]
    fn a_static_backend_has_no_flaps_line() {
        let b = proto::BackendInfo {
            healthcheck: String::new(),
            transitions: Vec::new(),
            ..backend()
        };
        assert_eq!(
            backend_text(&b, NOW, PLAIN),
            "name         nginx0\n\
             address      10.0.0.1\n\
             state        up\n\
             enabled      yes\n\
             healthcheck  - (static)\n\
             last-probe   -\n\
             frontends    web\n"
        );
    }

    fn member(
        name: &str,
        state: &str,
        effective_weight: u32,
        buckets: u32,
    ) -> proto::PoolBackendInfo {
        proto::PoolBackendInfo {
            name: name.into(),
            address: format!("10.0.0.{}", name.len()),
            state: state.into(),
            weight: 100,
            effective_weight,
            buckets: Some(buckets),
            ..Default::default()
        }
    }

    fn frontend() -> proto::FrontendInfo {
        proto::FrontendInfo {
            name: "web".into(),
            state: "up".into(),
            active_pool: "primary".into(),
            table_length: 1024,
            pools: vec![
                proto::PoolInfo {
                    name: "primary".into(),
                    backends: vec![
                        proto::PoolBackendInfo {
                            suppressed: true,
                            ..member("a", "up", 0, 0)
                        },
                        proto::PoolBackendInfo {
                            slow_start_step: Some(4),
                            ..member("bb", "up", 40, 293)
                        },
                        member("ccc", "up", 100, 731),
                    ],
                    min_up: 2,
                    min_up_to_return: 3,
                    serving: 2,
                },
                proto::PoolInfo {
                    name: "fallback".into(),
                    backends: vec![member("dddd", "up", 0, 0), member("eeeee", "down", 0, 0)],
                    min_up: 2,
                    min_up_to_return: 2,
                    serving: 1,
                },
                proto::PoolInfo {
                    name: "spare".into(),
                    backends: vec![member("ffffff", "up", 0, 0)],
                    min_up: 1,
                    min_up_to_return: 1,
                    serving: 1,
                },
            ],
            ..Default::default()
        }
    }

    /// The text from the first pool heading on.
    fn pools(text: &str) -> &str {
        &text[text.find("pool primary").expect(text)..]
    }

    #[test]
    fn pools_show_thresholds_and_members_their_damping_and_slow_start() {
        let f = frontend();
        let plain = frontend_text(&f, None, PLAIN);
        assert_eq!(
            pools(&plain),
            "pool primary (active): min-up 2, return at 3, serving 2\n  \
               BACKEND  ADDRESS   STATE                 WEIGHT  EFFECTIVE  BUCKETS  SHARE\n  \
               a        10.0.0.1  up (suppressed)       100     0          0        0.0%   ....................\n  \
               bb       10.0.0.2  up (slow start 4/10)  100     40         293      28.6%  ######..............\n  \
               ccc      10.0.0.3  up                    100     100        731      71.4%  ##############......\n\
             pool fallback: min-up 2, serving 1\n  \
               BACKEND  ADDRESS   STATE  WEIGHT  EFFECTIVE  BUCKETS  SHARE\n  \
               dddd     10.0.0.4  up     100     0          0        0.0%   ....................\n  \
               eeeee    10.0.0.5  down   100     0          0        0.0%   ....................\n\
             pool spare\n  \
               BACKEND  ADDRESS   STATE  WEIGHT  EFFECTIVE  BUCKETS  SHARE\n  \
               ffffff   10.0.0.6  up     100     0          0        0.0%   ....................\n"
        );
        let colored = frontend_text(&f, None, COLOR);
        assert_eq!(strip(&colored), plain);
        assert!(
            colored.contains("\x1b[31mup (suppressed)\x1b[0m       100"),
            "{colored}"
        );
        assert!(
            colored.contains("\x1b[32mup (slow start 4/10)\x1b[0m  100"),
            "{colored}"
        );
        // A pool serving fewer than min-up has the count in red; one that
        // has enough does not.
        assert!(
            colored.contains("min-up 2, \x1b[31mserving 1\x1b[0m\n"),
            "{colored}"
        );
        assert!(colored.contains("return at 3, serving 2\n"), "{colored}");
    }

    #[test]
    fn an_older_daemon_without_thresholds_shows_the_plain_heading() {
        let mut f = frontend();
        for p in &mut f.pools {
            p.min_up = 0;
            p.min_up_to_return = 0;
            p.serving = 0;
        }
        let plain = frontend_text(&f, None, PLAIN);
        let headings: Vec<&str> = plain.lines().filter(|l| l.starts_with("pool ")).collect();
        assert_eq!(
            headings,
            ["pool primary (active)", "pool fallback", "pool spare"]
        );
    }

    #[test]
    fn the_backends_table_marks_a_suppressed_backend_in_its_state_column() {
        let b = proto::BackendInfo {
            damping: Some(damping(true, 3.5, 0)),
            ..backend()
        };
        assert_eq!(backend_state(&b).text, "up (suppressed)");
        assert_eq!(backend_state(&b).paint, Paint::Red);
        let not = proto::BackendInfo {
            damping: Some(damping(false, 0.5, 0)),
            ..backend()
        };
        assert_eq!(backend_state(&not), Cell::state("up"));
        assert_eq!(backend_state(&backend()), Cell::state("up"));
    }
}
