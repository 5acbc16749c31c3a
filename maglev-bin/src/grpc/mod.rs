//! maglevd's gRPC API: the `maglev.Maglev` service over the daemon's
//! handle, with reflection and the standard health service.

pub mod proto;
