//! Entry points for the cargo-fuzz targets in `fuzz/`; not a stable API.

use bytes::BytesMut;

use crate::api::frame::decode_frame;
use crate::api::messages::*;

/// Decodes `payload` as every known message. Each must return a value or
/// an error, never panic.
pub fn decode_payload(payload: &[u8]) {
    macro_rules! all {
        ($($m:ty),* $(,)?) => {
            $( let _ = decode_message::<$m>(payload); )*
        };
    }
    all!(
        SockclntCreate,
        SockclntCreateReply,
        SockclntDelete,
        SockclntDeleteReply,
        MemclntKeepalive,
        MemclntKeepaliveReply,
        ControlPing,
        ControlPingReply,
        ShowVersion,
        ShowVersionReply,
        CliInband,
        CliInbandReply,
        LbConf,
        LbConfReply,
        LbConfGet,
        LbConfGetReply,
        LbAddDelVipV2,
        LbAddDelVipV2Reply,
        LbAddDelAsV2,
        LbAddDelAsV2Reply,
        LbAsSetWeight,
        LbAsSetWeightReply,
        LbFlushVip,
        LbFlushVipReply,
        LbVipDump,
        LbVipDetails,
        LbAsV2Dump,
        LbAsV2Details,
        IpRouteLookup,
        IpRouteLookupReply,
    );
    let _ = crate::lb::vips_text::parse(&String::from_utf8_lossy(payload));
}

/// Cuts `data` into frames as the client's reader does and decodes each
/// payload as every message.
pub fn decode_stream(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(payload)) = decode_frame(&mut buf) {
        decode_payload(&payload);
    }
}
