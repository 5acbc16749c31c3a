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
    parse_vips_text(payload);
}

/// Parses `data` (lossily UTF-8) as the output of `show lb vips verbose`:
/// a list of VIPs or an error naming a line, never a panic. What parses
/// must hold only what the text said.
pub fn parse_vips_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(vips) = crate::lb::vips_text::parse(&text) {
        let lines = text.lines().count();
        assert!(vips.len() <= lines, "more VIPs than lines");
        for v in &vips {
            assert!(v.ases.len() <= lines, "more ASes than lines");
            let max = if v.address.is_ipv4() { 32 } else { 128 };
            assert!(v.prefix_len <= max, "prefix length {}", v.prefix_len);
            let _ = v.key();
        }
    }
}

/// Cuts `data` into frames as the client's reader does and decodes each
/// payload as every message.
pub fn decode_stream(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(payload)) = decode_frame(&mut buf) {
        decode_payload(&payload);
    }
}
