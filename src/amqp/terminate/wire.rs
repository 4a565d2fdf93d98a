//! Frames as the terminating session handles them: cut whole from a read buffer as
//! [`Bytes`] (shared with the buffer, not copied), with the method id read from the first
//! four payload bytes. Methods on the hot path (publish, deliver, ack, confirms) are never
//! decoded into structs: the fields warren needs sit at fixed offsets, and a delivery tag
//! is rewritten in place in the outgoing copy.

use bytes::{Bytes, BytesMut};

use crate::amqp::frame::{
    FrameError, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD,
    FRAME_SIZE_FUDGE,
};

/// A method's class and method ids.
pub type MethodId = (u16, u16);

/// The method ids warren acts on (AMQP 0-9-1 with RabbitMQ's extensions).
pub mod id {
    use super::MethodId;
    pub const CONNECTION_START: MethodId = (10, 10);
    pub const CONNECTION_START_OK: MethodId = (10, 11);
    pub const CONNECTION_SECURE: MethodId = (10, 20);
    pub const CONNECTION_TUNE: MethodId = (10, 30);
    pub const CONNECTION_TUNE_OK: MethodId = (10, 31);
    pub const CONNECTION_OPEN: MethodId = (10, 40);
    pub const CONNECTION_OPEN_OK: MethodId = (10, 41);
    pub const CONNECTION_CLOSE: MethodId = (10, 50);
    pub const CONNECTION_CLOSE_OK: MethodId = (10, 51);
    pub const CONNECTION_BLOCKED: MethodId = (10, 60);
    pub const CONNECTION_UNBLOCKED: MethodId = (10, 61);
    pub const CONNECTION_UPDATE_SECRET: MethodId = (10, 70);
    pub const CONNECTION_UPDATE_SECRET_OK: MethodId = (10, 71);
    pub const CHANNEL_OPEN: MethodId = (20, 10);
    pub const CHANNEL_OPEN_OK: MethodId = (20, 11);
    pub const CHANNEL_FLOW: MethodId = (20, 20);
    pub const CHANNEL_FLOW_OK: MethodId = (20, 21);
    pub const CHANNEL_CLOSE: MethodId = (20, 40);
    pub const CHANNEL_CLOSE_OK: MethodId = (20, 41);
    pub const EXCHANGE_DECLARE: MethodId = (40, 10);
    pub const EXCHANGE_DELETE: MethodId = (40, 20);
    pub const EXCHANGE_BIND: MethodId = (40, 30);
    pub const EXCHANGE_UNBIND: MethodId = (40, 40);
    pub const QUEUE_DECLARE: MethodId = (50, 10);
    pub const QUEUE_BIND: MethodId = (50, 20);
    pub const QUEUE_PURGE: MethodId = (50, 30);
    pub const QUEUE_DELETE: MethodId = (50, 40);
    pub const QUEUE_UNBIND: MethodId = (50, 50);
    pub const BASIC_QOS: MethodId = (60, 10);
    pub const BASIC_CONSUME: MethodId = (60, 20);
    pub const BASIC_CONSUME_OK: MethodId = (60, 21);
    pub const BASIC_CANCEL: MethodId = (60, 30);
    pub const BASIC_CANCEL_OK: MethodId = (60, 31);
    pub const BASIC_PUBLISH: MethodId = (60, 40);
    pub const BASIC_RETURN: MethodId = (60, 50);
    pub const BASIC_DELIVER: MethodId = (60, 60);
    pub const BASIC_GET: MethodId = (60, 70);
    pub const BASIC_GET_OK: MethodId = (60, 71);
    pub const BASIC_GET_EMPTY: MethodId = (60, 72);
    pub const BASIC_ACK: MethodId = (60, 80);
    pub const BASIC_REJECT: MethodId = (60, 90);
    pub const BASIC_RECOVER_ASYNC: MethodId = (60, 100);
    pub const BASIC_RECOVER: MethodId = (60, 110);
    pub const BASIC_NACK: MethodId = (60, 120);
    pub const CONFIRM_SELECT: MethodId = (85, 10);
    pub const CONFIRM_SELECT_OK: MethodId = (85, 11);
    pub const TX_SELECT: MethodId = (90, 10);
    pub const TX_COMMIT: MethodId = (90, 20);
    pub const TX_COMMIT_OK: MethodId = (90, 21);
    pub const TX_ROLLBACK: MethodId = (90, 30);
    pub const TX_ROLLBACK_OK: MethodId = (90, 31);
}

/// One whole frame: header, payload and frame-end, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub kind: u8,
    pub channel: u16,
    pub bytes: Bytes,
}

impl RawFrame {
    /// The payload, between the 7-byte header and the frame-end octet.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[7..self.bytes.len() - 1]
    }

    /// The method id of a method frame with at least four payload bytes.
    pub fn method(&self) -> Option<MethodId> {
        let p = self.payload();
        (self.kind == FRAME_METHOD && p.len() >= 4).then(|| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        })
    }

    pub fn is_heartbeat(&self) -> bool {
        self.kind == FRAME_HEARTBEAT
    }
}

/// Cuts the next whole frame off `buf`, or `None` if it is not all there yet. A frame over
/// `frame_max` (plus RabbitMQ's fudge) is refused on its header, before its payload is
/// waited for, so a peer cannot make warren buffer more than one frame.
pub fn cut(buf: &mut BytesMut, frame_max: u32) -> Result<Option<RawFrame>, FrameError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    if !matches!(
        kind,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(FrameError::BadType(kind));
    }
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
    let whole = u64::from(size) + u64::from(FRAME_OVERHEAD);
    if frame_max != 0 && whole > u64::from(frame_max) + u64::from(FRAME_SIZE_FUDGE) {
        return Err(FrameError::TooLarge {
            size: u32::try_from(whole).unwrap_or(u32::MAX),
            max: frame_max,
        });
    }
    let whole = whole as usize;
    if buf.len() < whole {
        buf.reserve(whole - buf.len());
        return Ok(None);
    }
    if buf[whole - 1] != FRAME_END {
        return Err(FrameError::BadFrameEnd);
    }
    let bytes = buf.split_to(whole).freeze();
    Ok(Some(RawFrame {
        kind,
        channel,
        bytes,
    }))
}

/// A frame around `payload`, appended to `out`.
pub fn put_frame(out: &mut BytesMut, kind: u8, channel: u16, payload: &[u8]) {
    out.reserve(payload.len() + FRAME_OVERHEAD as usize);
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&[FRAME_END]);
}

/// The heartbeat frame.
pub const HEARTBEAT: [u8; 8] = [FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END];

/// Offset, in a frame's bytes, of the delivery tag of a `basic.deliver`: after the 7-byte
/// header, class and method ids (4) and the consumer tag (a short string).
pub fn deliver_tag_offset(frame: &[u8]) -> Option<usize> {
    let tag_len = *frame.get(11)? as usize;
    let at = 12 + tag_len;
    (frame.len() > at + 8).then_some(at)
}

/// Offset of the delivery tag of `basic.get-ok`, `basic.ack`, `basic.nack`,
/// `basic.reject`: the first argument.
pub const FIRST_ARG: usize = 11;

/// Reads a big-endian u64 at `at`.
pub fn u64_at(frame: &[u8], at: usize) -> Option<u64> {
    let b = frame.get(at..at + 8)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// The consumer tag of a `basic.deliver` frame.
pub fn deliver_consumer_tag(frame: &[u8]) -> Option<&[u8]> {
    let tag_len = *frame.get(11)? as usize;
    frame.get(12..12 + tag_len)
}

/// `(delivery tag, multiple)` of `basic.ack`/`basic.nack` (`multiple` is bit 0 of the
/// octet after the tag) or `(delivery tag, false)` of `basic.reject`.
pub fn ack_fields(frame: &RawFrame) -> Option<(u64, bool)> {
    let tag = u64_at(&frame.bytes, FIRST_ARG)?;
    let bits = *frame.bytes.get(FIRST_ARG + 8)?;
    let multiple = frame.method() != Some(id::BASIC_REJECT) && bits & 1 == 1;
    Some((tag, multiple))
}

/// The body size announced by a content header frame.
pub fn body_size(frame: &RawFrame) -> Option<u64> {
    u64_at(&frame.bytes, 7 + 4)
}

/// Appends `frame` to `out` with the u64 at `at` replaced by `value`.
pub fn put_patched(out: &mut BytesMut, frame: &[u8], at: usize, value: u64) {
    let start = out.len();
    out.extend_from_slice(frame);
    out[start + at..start + at + 8].copy_from_slice(&value.to_be_bytes());
}

/// A short string (`reply-text`, names) out of a payload at `at`, with what follows.
pub fn short_str(payload: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = *payload.get(at)? as usize;
    Some((payload.get(at + 1..at + 1 + len)?, at + 1 + len))
}

/// Drops the read buffer's spare room when it holds nothing: an idle session keeps no
/// buffer (thousands of quiet consumers are the common case).
pub fn shrink_if_empty(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        *buf = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, channel: u16, payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        put_frame(&mut b, kind, channel, payload);
        b
    }

    #[test]
    fn frames_are_cut_whole_and_only_when_complete() {
        let mut all = frame(FRAME_METHOD, 3, &[0, 60, 0, 40, 1, 2]);
        all.extend_from_slice(&frame(FRAME_BODY, 3, b"hello"));
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in all.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = cut(&mut buf, 131072).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].method(), Some(id::BASIC_PUBLISH));
        assert_eq!(got[0].channel, 3);
        assert_eq!(got[1].payload(), b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut b = frame(9, 0, &[]);
        assert_eq!(cut(&mut b, 0), Err(FrameError::BadType(9)));
        let mut b = frame(FRAME_BODY, 1, &[0u8; 100]);
        let n = b.len();
        b[n - 1] = 0;
        assert_eq!(cut(&mut b, 0), Err(FrameError::BadFrameEnd));
        let mut b = BytesMut::from(&[FRAME_BODY, 0, 1, 0, 1, 0, 0][..]);
        assert!(matches!(
            cut(&mut b, 4096),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn delivery_tags_are_found_and_patched() {
        // basic.deliver: ctag "ab", tag 7, redelivered 0, exchange "", routing key "q"
        let mut p = vec![0, 60, 0, 60, 2, b'a', b'b'];
        p.extend_from_slice(&7u64.to_be_bytes());
        p.extend_from_slice(&[0, 0, 1, b'q']);
        let f = frame(FRAME_METHOD, 1, &p);
        let at = deliver_tag_offset(&f).unwrap();
        assert_eq!(u64_at(&f, at), Some(7));
        assert_eq!(deliver_consumer_tag(&f), Some(&b"ab"[..]));
        let mut out = BytesMut::new();
        put_patched(&mut out, &f, at, 1234);
        assert_eq!(u64_at(&out, at), Some(1234));
        assert_eq!(out.len(), f.len());
    }
}
