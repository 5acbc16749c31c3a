//! The code generated from `proto/maglev.proto` (package `maglev`), its
//! file descriptor set for server reflection, and the same descriptors
//! loaded for reading messages and RPC options at run time.
#![allow(
    missing_docs,
    reason = "generated; the proto file documents every field"
)]
#![allow(unreachable_pub, reason = "generated")]
#![allow(unused_qualifications, reason = "generated")]
#![allow(clippy::all, reason = "generated")]

tonic::include_proto!("maglev");

/// The encoded `FileDescriptorSet` of `maglev.proto`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("maglev_descriptor");

/// The descriptors of `maglev.proto` (and what it imports), loaded once:
/// for the JSON of messages, the RPC list and each RPC's access.
pub fn descriptors() -> Result<&'static prost_reflect::DescriptorPool, String> {
    static POOL: std::sync::OnceLock<Result<prost_reflect::DescriptorPool, String>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("the built-in descriptor set does not load: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}
