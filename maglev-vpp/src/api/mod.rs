//! VPP's binary API over the unix socket: framing, codec, messages,
//! request matching (all sans-IO) and the async [`Client`](client::Client) around them.
//!
//! - [`frame`]: the 16-byte socket header, cutting a stream into frames.
//! - [`codec`]: the [`Codec`](codec::Codec) trait, the bounded
//!   [`Reader`](codec::Reader) and [`DecodeError`](codec::DecodeError).
//! - [`types`]: addresses, prefixes, `lb_vip`, FIB paths, enums.
//! - [`messages`]: every message maglev uses, with name, CRC and header shape.
//! - [`table`]: resolving runtime message ids by `name_crc`.
//! - [`matcher`]: pending requests by context, admission and deadlines;
//!   dumps end at the ping reply.
//! - [`observer`]: the per-message hook ([`ApiObserver`](observer::ApiObserver)).
//! - [`client`]: the tokio client (pipelining, bounded in-flight requests,
//!   reconnect, a goodbye on every exit).
//! - [`error`]: the crate's [`Error`](error::Error).

pub mod client;
pub mod codec;
pub mod error;
pub mod frame;
pub mod matcher;
pub mod messages;
pub mod observer;
pub mod table;
pub mod types;
