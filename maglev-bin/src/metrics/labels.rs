//! The label sets of the registry's counter families, with the label
//! names of SPEC §10 and §16.5.

use prometheus_client::encoding::EncodeLabelSet;

/// `maglev_backend_transitions_total{backend,from,to}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TransitionLabels {
    pub(super) backend: String,
    pub(super) from: &'static str,
    pub(super) to: &'static str,
}

/// `maglev_vpp_api_total{msg,direction,result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ApiLabels {
    pub(super) msg: &'static str,
    pub(super) direction: &'static str,
    pub(super) result: &'static str,
}

/// `maglev_vpp_lbsync_total{scope,kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SyncLabels {
    pub(super) scope: &'static str,
    pub(super) kind: &'static str,
}

/// `maglev_vpp_lb_buckets_moved_total{frontend}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FrontendLabels {
    pub(super) frontend: String,
}

/// `maglev_reconcile_errors_total{scope}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ScopeLabels {
    pub(super) scope: &'static str,
}

/// `maglev_config_reloads_total{result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResultLabels {
    pub(super) result: &'static str,
}

/// `maglev_grpc_requests_total{method,code}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct GrpcLabels {
    pub(super) method: String,
    pub(super) code: &'static str,
}

/// `maglev_grpc_writes_total{rpc,identity,result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WriteLabels {
    pub(super) rpc: String,
    pub(super) identity: String,
    pub(super) result: &'static str,
}

/// The name of a gRPC status code as gRPC spells it everywhere else
/// (`OK`, `NotFound`, ...: the names of grpc-go's `codes.Code.String` and
/// of the `grpc_code` label of the usual gRPC Prometheus middlewares).
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_are_named_as_grpc_names_them() {
        assert_eq!(grpc_code_name(tonic::Code::Ok), "OK");
        assert_eq!(grpc_code_name(tonic::Code::Cancelled), "Canceled");
        assert_eq!(grpc_code_name(tonic::Code::NotFound), "NotFound");
        assert_eq!(grpc_code_name(tonic::Code::Unavailable), "Unavailable");
    }
}

/// `maglev_announce_changes_total{action}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionLabels {
    pub(super) action: &'static str,
}
