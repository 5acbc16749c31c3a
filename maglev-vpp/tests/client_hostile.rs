//! The client against a hostile peer on the API socket: nothing VPP (or
//! whatever sits on the socket) sends can panic the client or make it
//! hold unbounded memory; bad framing closes the connection with a
//! reason, after a best-effort goodbye.

mod common;

use bytes::{BufMut, BytesMut};
use maglev_vpp::Client;
use maglev_vpp::api::error::DisconnectReason;
use maglev_vpp::api::frame::{FrameError, MAX_PAYLOAD, decode_frame, encode_frame};
use maglev_vpp::api::messages::{
    ControlPingReply, Envelope, MsgId, SOCKCLNT_CREATE_REPLY_ID, SockclntCreateReply, peek_msg_id,
    peek_request_header,
};
use maglev_vpp::api::types::MessageTableEntry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use common::sock_path;

/// A fake VPP: answers the handshake and the connect-time ping with a
/// well-formed table (ids from 100 on), then sends `hostile` and reports
/// the message ids it reads afterwards.
async fn fake_vpp(listener: UnixListener, hostile: Vec<u8>) -> Vec<u16> {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = BytesMut::new();
    let table: Vec<MessageTableEntry> = MsgId::ALL
        .iter()
        .zip(100u16..)
        .map(|(m, index)| MessageTableEntry {
            index,
            name: m.key(),
        })
        .collect();
    let ping_reply = table
        .iter()
        .find(|e| e.name == MsgId::ControlPingReply.key())
        .unwrap()
        .index;
    let mut out = BytesMut::new();
    // sockclnt_create
    let _ = next(&mut s, &mut buf).await;
    encode_frame(
        &SockclntCreateReply {
            response: 0,
            index: 0x8000_0001,
            message_table: table,
        },
        Envelope {
            msg_id: SOCKCLNT_CREATE_REPLY_ID,
            client_index: 0,
            context: 1,
        },
        &mut out,
    );
    s.write_all(&out).await.unwrap();
    // control_ping
    let p = next(&mut s, &mut buf).await.unwrap();
    let (_, context) = peek_request_header(&p).unwrap();
    out.clear();
    encode_frame(
        &ControlPingReply {
            retval: 0,
            client_index: 0x8000_0001,
            vpe_pid: 1,
        },
        Envelope {
            msg_id: ping_reply,
            client_index: 0,
            context,
        },
        &mut out,
    );
    s.write_all(&out).await.unwrap();
    s.write_all(&hostile).await.unwrap();
    let mut seen = Vec::new();
    while let Some(p) = next(&mut s, &mut buf).await {
        seen.extend(peek_msg_id(&p));
    }
    seen
}

async fn next(s: &mut UnixStream, buf: &mut BytesMut) -> Option<bytes::Bytes> {
    loop {
        if let Ok(Some(p)) = decode_frame(buf) {
            return Some(p);
        }
        if s.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

fn header(len: u32) -> Vec<u8> {
    let mut h = BytesMut::new();
    h.put_u64(0);
    h.put_u32(len);
    h.put_u32(0);
    h.to_vec()
}

#[tokio::test]
async fn an_absurd_frame_length_closes_with_a_reason_and_a_goodbye() {
    let path = sock_path("hostile-len");
    let listener = UnixListener::bind(&path).unwrap();
    let hostile = header(u32::MAX);
    let peer = tokio::spawn(fake_vpp(listener, hostile));
    let vpp = Client::connect(&path).await.unwrap();
    let reason = vpp.closed().await;
    assert_eq!(
        reason,
        DisconnectReason::Frame(FrameError::TooLarge {
            len: u32::MAX as usize,
            max: MAX_PAYLOAD
        })
    );
    assert!(vpp.ping().await.unwrap_err().is_disconnected());
    drop(vpp);
    // The client still told the peer goodbye (id 17 in every VPP is only
    // a fallback: this table puts sockclnt_delete elsewhere).
    let delete_id = MsgId::ALL
        .iter()
        .zip(100u16..)
        .find(|(m, _)| **m == MsgId::SockclntDelete)
        .unwrap()
        .1;
    assert_eq!(peer.await.unwrap(), [delete_id]);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn short_unknown_and_unsolicited_frames_are_ignored() {
    let path = sock_path("hostile-junk");
    let listener = UnixListener::bind(&path).unwrap();
    let mut hostile = Vec::new();
    // A 1-byte payload (too short for a context), an unknown id with a
    // context nobody uses, and a half-written frame at the end.
    hostile.extend(header(1));
    hostile.push(0xff);
    hostile.extend(header(10));
    hostile.extend([0xff, 0xff, 0, 0, 0x12, 0x34, 0, 0, 0, 0]);
    hostile.extend(header(1000));
    hostile.extend([0; 10]);
    let peer = tokio::spawn(fake_vpp(listener, hostile));
    let vpp = Client::connect(&path).await.unwrap();
    assert!(vpp.is_connected());
    vpp.close().await.unwrap_err();
    assert_eq!(peer.await.unwrap().len(), 1, "the goodbye");
    let _ = std::fs::remove_file(&path);
}
