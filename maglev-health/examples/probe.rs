//! Probe one target once with the options of a health check, and print
//! the result code, detail and duration. Exit 0 on a pass, 1 on a fail, 2
//! on a usage or config error.
//!
//! ```text
//! cargo run -p maglev-health --example probe -- --type http --address 127.0.0.1 \
//!     --port 8080 --path /healthz --response-code 200-299 --response-regex OK --json
//! ```
//!
//! The options are built into a one-check config and validated exactly as
//! `maglev.yaml` is, so a check that works here works in the config.

use std::process::ExitCode;

use maglev_core::config::Config;
use maglev_health::netns::Sockets;
use maglev_health::probe::{self, ProbeEnv};

const USAGE: &str = "\
usage: probe --type http|https|tcp|icmp --address ADDR [options]

options (as in maglev.healthchecks.<name>, SPEC §16.1):
  --port N                    http default 80, https 443; required for tcp
  --path PATH                 http/https request path (default /)
  --method GET|HEAD           http/https method (default GET)
  --host NAME                 Host header (and default SNI for https)
  --response-code CODES       200, 200-399 or a list 200,204 (default 200-399)
  --response-regex RE         must match the first max-body bytes of the body
  --max-body BYTES            body bytes read at most (default 65536)
  --server-name NAME          TLS SNI and certificate name
  --insecure-skip-verify      accept any TLS certificate
  --tls                       tcp: complete a TLS handshake after connecting
  --timeout DURATION          e.g. 500ms, 2s (default 1s)
  --netns NAME                probe from this network namespace
  --json                      print the result as JSON";

/// Options that take a value, as the config's keys under `params` or the
/// check itself.
const PARAMS: &[&str] = &[
    "path",
    "method",
    "host",
    "response-regex",
    "max-body",
    "server-name",
];
const FLAGS: &[&str] = &["insecure-skip-verify", "tls"];

struct Args {
    kind: String,
    address: String,
    port: Option<String>,
    timeout: String,
    netns: Option<String>,
    response_code: Option<String>,
    params: Vec<(String, String)>,
    json: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut kind = None;
    let mut address = None;
    let mut args = Args {
        kind: String::new(),
        address: String::new(),
        port: None,
        timeout: "1s".into(),
        netns: None,
        response_code: None,
        params: Vec::new(),
        json: false,
    };
    while let Some(arg) = it.next() {
        let Some(key) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        if key == "help" || key == "h" {
            return Err(String::new());
        }
        if key == "json" {
            args.json = true;
            continue;
        }
        if FLAGS.contains(&key) {
            args.params.push((key.to_owned(), "true".to_owned()));
            continue;
        }
        let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        match key {
            "type" => kind = Some(value),
            "address" => address = Some(value),
            "port" => args.port = Some(value),
            "timeout" => args.timeout = value,
            "netns" => args.netns = Some(value),
            "response-code" => args.response_code = Some(value),
            k if PARAMS.contains(&k) => args.params.push((k.to_owned(), value)),
            _ => return Err(format!("unknown option --{key}")),
        }
    }
    args.kind = kind.ok_or("--type is required")?;
    args.address = address.ok_or("--address is required")?;
    Ok(args)
}

/// A YAML (JSON) string.
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The one-check config the options describe.
fn config_yaml(a: &Args) -> String {
    let mut y = String::from("maglev:\n");
    if let Some(ns) = &a.netns {
        y += &format!("  healthchecker:\n    netns: {}\n", quote(ns));
    }
    y += "  healthchecks:\n    probe:\n";
    y += &format!("      type: {}\n", quote(&a.kind));
    if let Some(p) = &a.port {
        y += &format!("      port: {p}\n");
    }
    // No schedule here: the interval only has to allow the timeout.
    y += &format!(
        "      interval: {0}\n      timeout: {0}\n",
        quote(&a.timeout)
    );
    if !a.params.is_empty() || a.response_code.is_some() {
        y += "      params:\n";
        for (k, v) in &a.params {
            let v = match k.as_str() {
                "max-body" | "insecure-skip-verify" | "tls" => v.clone(),
                _ => quote(v),
            };
            y += &format!("        {k}: {v}\n");
        }
        if let Some(codes) = &a.response_code {
            let items: Vec<String> = codes.split(',').map(|c| quote(c.trim())).collect();
            y += &format!("        response-code: [{}]\n", items.join(", "));
        }
    }
    y += &format!(
        "  backends:\n    target:\n      address: {}\n      healthcheck: probe\n",
        quote(&a.address)
    );
    y
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("probe: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_yaml(&config_yaml(&args), "command line") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("probe: invalid check:\n{e}");
            return ExitCode::from(2);
        }
    };
    let (Some(check), Some(backend)) = (config.healthcheck("probe"), config.backend("target"))
    else {
        eprintln!("probe: internal error: the check did not survive validation");
        return ExitCode::from(2);
    };
    let sockets = Sockets::for_config(config.healthchecker().netns.as_deref());
    let prober = match probe::build(check, &ProbeEnv::new().with_sockets(sockets)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("probe: {e}");
            return ExitCode::from(2);
        }
    };
    let target = backend.address;
    let r = prober.probe(target).await;
    if args.json {
        let v = serde_json::json!({
            "type": check.kind().as_str(),
            "target": target.to_string(),
            "code": r.code.as_str(),
            "passed": r.passed(),
            "detail": r.detail,
            "duration_ms": r.duration.as_micros() as f64 / 1000.0,
        });
        println!("{v}");
    } else {
        println!(
            "{} {} ({:.3}ms)",
            r.code,
            r.detail,
            r.duration.as_secs_f64() * 1000.0
        );
    }
    if r.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
