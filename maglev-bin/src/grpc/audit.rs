//! The audit trail: every write RPC (over gRPC or the web dashboard), allowed or denied, as one INFO event
//! of target `audit` with the caller's identity (certificate subject or
//! IP address) and address, the RPC, its arguments (the request in the
//! proto3 JSON mapping) and the result, and as one count of
//! `maglev_grpc_writes_total{rpc,identity,result}`.

use std::net::SocketAddr;

use prost_reflect::{DynamicMessage, SerializeOptions};

use crate::daemon::Handle;
use crate::grpc::proto;
use crate::metrics::WriteResult;

/// The longest arguments text recorded; longer ones are cut, marked `…`.
pub const MAX_ARGUMENTS: usize = 1024;

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused before the service saw it: the caller may only read.
    Denied(String),
    /// Refused or failed by the daemon: the status code and message.
    Failure(tonic::Code, String),
}

impl Outcome {
    /// The outcome of a call answered with `status` (`OK` is a success).
    pub fn of(status: &tonic::Status) -> Outcome {
        match status.code() {
            tonic::Code::Ok => Outcome::Success,
            code => Outcome::Failure(code, status.message().to_owned()),
        }
    }

    fn result(&self) -> WriteResult {
        match self {
            Outcome::Success => WriteResult::Success,
            Outcome::Denied(_) => WriteResult::Denied,
            Outcome::Failure(..) => WriteResult::Failure,
        }
    }
}

/// Records one write of `rpc` by `identity` from `addr`: `args` is the
/// request as JSON ([`arguments`]' text for gRPC).
pub fn record(
    handle: &Handle,
    rpc: &str,
    identity: &str,
    addr: Option<SocketAddr>,
    args: &str,
    outcome: &Outcome,
) {
    let addr = addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let result = outcome.result().as_str();
    match outcome {
        Outcome::Success => tracing::info!(
            target: "audit", identity, peer = addr, rpc, args, result, "audit"
        ),
        Outcome::Denied(why) => tracing::info!(
            target: "audit", identity, peer = addr, rpc, args, result, detail = why.as_str(),
            "audit"
        ),
        Outcome::Failure(code, message) => tracing::info!(
            target: "audit", identity, peer = addr, rpc, args, result,
            code = crate::metrics::grpc_code_name(*code), detail = message.as_str(), "audit"
        ),
    }
    handle.metrics().grpc_write(rpc, identity, outcome.result());
}

/// The request of `rpc` (of service `service`) in `body`, one gRPC
/// message frame, as compact JSON; a short note in parentheses for a
/// body that is not one uncompressed message of the RPC's input type.
pub fn arguments(service: &str, rpc: &str, body: &[u8]) -> String {
    let Some(input) = proto::descriptors()
        .ok()
        .and_then(|pool| pool.get_service_by_name(service))
        .and_then(|s| s.methods().find(|m| m.name() == rpc))
        .map(|m| m.input())
    else {
        return "(unknown RPC)".to_owned();
    };
    let Some((&flag, rest)) = body.split_first() else {
        return "(no request)".to_owned();
    };
    if flag != 0 {
        return "(compressed)".to_owned();
    }
    let message = rest
        .split_first_chunk::<4>()
        .and_then(|(len, rest)| rest.get(..u32::from_be_bytes(*len) as usize));
    let Some(message) = message else {
        return "(truncated request)".to_owned();
    };
    let text = DynamicMessage::decode(input, message)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            let mut out = serde_json::Serializer::new(Vec::new());
            m.serialize_with_options(
                &mut out,
                &SerializeOptions::new().use_proto_field_name(true),
            )
            .map_err(|e| e.to_string())?;
            String::from_utf8(out.into_inner()).map_err(|e| e.to_string())
        });
    match text {
        Ok(t) => cut(t),
        Err(e) => format!("(undecodable request: {e})"),
    }
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_ARGUMENTS {
        let mut end = MAX_ARGUMENTS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn frame(m: &impl Message) -> Vec<u8> {
        let body = m.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn arguments_are_the_request_as_json() {
        let req = proto::SetWeightRequest {
            frontend: "web".into(),
            pool: "primary".into(),
            backend: "a".into(),
            weight: 40,
            flush: true,
        };
        assert_eq!(
            arguments(
                "maglev.Maglev",
                "SetFrontendPoolBackendWeight",
                &frame(&req)
            ),
            r#"{"frontend":"web","pool":"primary","backend":"a","weight":40,"flush":true}"#
        );
        let pause = proto::BackendRequest { name: "a".into() };
        assert_eq!(
            arguments("maglev.Maglev", "PauseBackend", &frame(&pause)),
            r#"{"name":"a"}"#
        );
        assert_eq!(
            arguments(
                "maglev.Maglev",
                "ReloadConfig",
                &frame(&proto::ReloadConfigRequest::default())
            ),
            "{}"
        );
    }

    #[test]
    fn bodies_that_are_not_one_request_are_described() {
        let m = "maglev.Maglev";
        assert_eq!(arguments(m, "PauseBackend", b""), "(no request)");
        assert_eq!(
            arguments(m, "PauseBackend", &[1, 0, 0, 0, 0]),
            "(compressed)"
        );
        assert_eq!(
            arguments(m, "PauseBackend", &[0, 0, 0, 0, 9, 1]),
            "(truncated request)"
        );
        assert!(
            arguments(m, "PauseBackend", &[0, 0, 0, 0, 2, 0xff, 0xff]).starts_with("(undecodable")
        );
        assert_eq!(arguments(m, "Nope", b""), "(unknown RPC)");
        let long = proto::BackendRequest {
            name: "x".repeat(5000),
        };
        let text = arguments(m, "PauseBackend", &frame(&long));
        assert_eq!(text.chars().last(), Some('…'));
        assert!(text.len() <= MAX_ARGUMENTS + '…'.len_utf8());
    }
}
