//! What `show healthcheck` prints.

use super::exec::dur;
use super::render::{self, Block, Style};
use crate::grpc::proto;

/// `show healthcheck`: every setting that applies to its type.
pub fn healthcheck_text(h: &proto::HealthCheckInfo, st: Style) -> String {
    let mut k = Block::new();
    k.kv("name", h.name.as_str())
        .kv("type", h.r#type.as_str())
        .kv(
            "port",
            if h.port == 0 {
                "-".to_owned()
            } else {
                h.port.to_string()
            },
        )
        .kv("interval", dur(&h.interval))
        .kv("fast-interval", dur(&h.fast_interval))
        .kv("down-interval", dur(&h.down_interval))
        .kv("timeout", dur(&h.timeout))
        .kv("rise", h.rise.to_string())
        .kv("fall", h.fall.to_string());
    let http = h.r#type == "http" || h.r#type == "https";
    if http {
        k.kv("method", h.method.as_str())
            .kv("path", h.path.as_str())
            .kv(
                "host",
                if h.host.is_empty() {
                    "-"
                } else {
                    h.host.as_str()
                },
            )
            .kv("response-codes", h.response_codes.join(","))
            .kv(
                "response-regex",
                if h.response_regex.is_empty() {
                    "-"
                } else {
                    h.response_regex.as_str()
                },
            )
            .kv("max-body", h.max_body.to_string());
    }
    if h.r#type == "tcp" {
        k.kv("tls", render::yes_no(h.tls));
    }
    if h.r#type == "https" || h.tls {
        k.kv(
            "server-name",
            if h.server_name.is_empty() {
                "-"
            } else {
                h.server_name.as_str()
            },
        )
        .kv(
            "insecure-skip-verify",
            render::yes_no(h.insecure_skip_verify),
        );
    }
    k.kv(
        "backends",
        if h.backends.is_empty() {
            "-".to_owned()
        } else {
            h.backends.join(", ")
        },
    );
    k.render(st)
}
