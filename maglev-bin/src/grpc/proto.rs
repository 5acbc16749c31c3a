//! The code generated from `proto/maglev.proto` (package `maglev`), and its
//! file descriptor set for server reflection.
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
