//! The socket framing: a 16-byte header before every message (VPP-WIRE A.2).
//!
//! ```text
//! offset size field              value
//!      0    8 q                  0 when sending; ignored when reading
//!      8    4 data_len           payload bytes that follow, big-endian
//!     12    4 gc_mark_timestamp  0 when sending; ignored when reading
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::messages::{Envelope, Message, encode_message};

/// Bytes of the frame header.
pub const HEADER_LEN: usize = 16;
/// Offset of `data_len` in the header.
const DATA_LEN_OFFSET: usize = 8;
/// The largest payload accepted: anything above is taken as corruption
/// (the message table is a few hundred kB; CLI output a few MB at most).
pub const MAX_PAYLOAD: usize = 64 << 20;
/// The most room reserved ahead for a frame still arriving: a header's
/// length is only a claim, so memory grows with the bytes that come, not
/// with what a peer announces.
const RESERVE_AHEAD: usize = 1 << 20;

/// Why a byte stream is not a sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// `data_len` is 0 (VPP would never process such a frame).
    #[error("frame with an empty payload")]
    Empty,
    /// `data_len` is above [`MAX_PAYLOAD`].
    #[error("frame payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Appends a whole frame (header and payload) carrying `msg`.
pub fn encode_frame<M: Message>(msg: &M, env: Envelope, buf: &mut BytesMut) {
    let start = buf.len();
    buf.put_u64(0);
    buf.put_u32(0);
    buf.put_u32(0);
    encode_message(msg, env, buf);
    let len = (buf.len() - start - HEADER_LEN) as u32;
    buf[start + DATA_LEN_OFFSET..start + DATA_LEN_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
}

/// Takes the next complete frame's payload off the front of `buf`, if
/// there is one. Sans-IO: the caller reads from the socket into `buf`.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = usize::try_from(u32::from_be_bytes([
        buf[DATA_LEN_OFFSET],
        buf[DATA_LEN_OFFSET + 1],
        buf[DATA_LEN_OFFSET + 2],
        buf[DATA_LEN_OFFSET + 3],
    ]))
    .unwrap_or(usize::MAX);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    if buf.len() < HEADER_LEN + len {
        buf.reserve((HEADER_LEN + len - buf.len()).min(RESERVE_AHEAD));
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    Ok(Some(buf.split_to(len).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::messages::ControlPing;

    #[test]
    fn control_ping_frame_reads_like_the_spec() {
        let mut buf = BytesMut::new();
        let env = Envelope {
            msg_id: 23,
            client_index: 0x8000_0001,
            context: 0x2b,
        };
        encode_frame(&ControlPing, env, &mut buf);
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0, // q: 0
            0, 0, 0, 0x0a,          // data_len: 10
            0, 0, 0, 0,             // gc_mark_timestamp: 0
            0x00, 0x17,             // _vl_msg_id: 23
            0x80, 0, 0, 0x01,       // client_index: 0x80000001
            0, 0, 0, 0x2b,          // context: 0x2b
        ];
        assert_eq!(&buf[..], want);
    }

    #[test]
    fn partial_frames_wait_and_q_is_ignored() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[
            0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 0, 0, 0, 2, 9, 9, 9, 9, 0xaa,
        ]);
        assert_eq!(decode_frame(&mut buf), Ok(None));
        buf.put_slice(&[0xbb, 0xcc]);
        assert_eq!(
            decode_frame(&mut buf),
            Ok(Some(Bytes::from_static(&[0xaa, 0xbb])))
        );
        assert_eq!(&buf[..], &[0xcc]);
    }

    #[test]
    fn an_announced_length_reserves_only_a_bounded_room() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0; 8]);
        buf.put_u32(MAX_PAYLOAD as u32);
        buf.put_u32(0);
        assert_eq!(decode_frame(&mut buf), Ok(None));
        assert!(
            buf.capacity() <= HEADER_LEN + RESERVE_AHEAD,
            "{}",
            buf.capacity()
        );
    }

    #[test]
    fn empty_and_huge_frames_are_errors() {
        let mut buf = BytesMut::from(&[0u8; 16][..]);
        assert_eq!(decode_frame(&mut buf), Err(FrameError::Empty));
        let mut buf =
            BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }
}
