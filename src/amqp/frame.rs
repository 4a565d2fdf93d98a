//! Following AMQP 0-9-1 frame boundaries in a byte stream that warren forwards untouched.
//!
//! ```text
//! frame: type(1) channel(2) size(4) | payload(size) | 0xCE
//! ```
//! The tracker is fed each chunk as it passes and does arithmetic on sizes: content bodies
//! are skipped, never copied. Only method frames on channel 0 (the connection class:
//! start, tune, open, close) are captured whole, since those are all warren needs to
//! decode; they are small and bounded by [`MAX_CAPTURED`], whatever `frame_max` says.

use thiserror::Error;

/// Frame type octets (AMQP 0-9-1 §4.2.3).
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;

/// What a client must send first.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// A frame can never be smaller than this before `tune` raised the limit (the spec's
/// `frame-min-size`); RabbitMQ accepts up to 128 KiB for `start-ok` with big client
/// properties, so that is what warren allows before the limit is negotiated.
pub const PRE_TUNE_FRAME_MAX: u32 = 128 * 1024;

/// Largest channel-0 method payload warren copies to decode. `frame_max` alone cannot
/// bound it: a `tune-ok` may negotiate 0 ("no limit"), after which a 4 GiB method header
/// would make warren reserve 4 GiB. Connection methods are small; the biggest,
/// `start-ok`, fits in the pre-tune limit.
pub const MAX_CAPTURED: u32 = PRE_TUNE_FRAME_MAX;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("not an AMQP 0-9-1 protocol header")]
    BadProtocolHeader,
    #[error("unknown frame type {0}")]
    BadType(u8),
    #[error("frame of {size} bytes exceeds frame_max {max}")]
    TooLarge { size: u32, max: u32 },
    #[error("frame does not end with 0xCE")]
    BadFrameEnd,
    #[error("connection method of {size} bytes exceeds {max}")]
    MethodTooLarge { size: u32, max: u32 },
}

/// A complete frame seen by the tracker. `payload` is present only for captured frames
/// (channel-0 methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: u8,
    pub channel: u16,
    pub payload: Option<&'a [u8]>,
}

#[derive(Debug)]
enum State {
    /// Expecting the 8-byte protocol header (client side, before anything else).
    ProtocolHeader { have: usize },
    /// Reading the 7-byte frame header.
    Header { buf: [u8; 7], have: usize },
    /// Inside a payload; `remaining` counts the payload left, not the frame-end octet.
    Payload { kind: u8, channel: u16, remaining: u32, capture: bool },
    /// Expecting the frame-end octet.
    End { kind: u8, channel: u16, capture: bool },
}

/// Tracks one direction of one AMQP connection.
#[derive(Debug)]
pub struct FrameTracker {
    state: State,
    /// Largest frame accepted (`frame_max` once negotiated; 0 means no limit).
    pub frame_max: u32,
    /// Buffer for the captured payload of the current channel-0 method frame.
    captured: Vec<u8>,
}

impl FrameTracker {
    /// For the client → server direction: starts with the protocol header.
    pub fn client() -> FrameTracker {
        FrameTracker { state: State::ProtocolHeader { have: 0 }, frame_max: PRE_TUNE_FRAME_MAX, captured: Vec::new() }
    }

    /// For the server → client direction.
    pub fn server() -> FrameTracker {
        FrameTracker { state: State::Header { buf: [0; 7], have: 0 }, frame_max: PRE_TUNE_FRAME_MAX, captured: Vec::new() }
    }

    /// For a client whose protocol header was already read and checked.
    pub fn skip_protocol_header(&mut self) {
        if matches!(self.state, State::ProtocolHeader { have: 0 }) {
            self.state = State::Header { buf: [0; 7], have: 0 };
        }
    }

    /// True between frames: a frame warren writes now would not split one of the peer's.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. } | State::ProtocolHeader { have: 0 })
    }

    /// Consumes `data`, calling `on_frame` for every frame completed in it.
    pub fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Frame<'_>)) -> Result<(), FrameError> {
        while !data.is_empty() {
            match &mut self.state {
                State::ProtocolHeader { have } => {
                    let take = (PROTOCOL_HEADER.len() - *have).min(data.len());
                    if data[..take] != PROTOCOL_HEADER[*have..*have + take] {
                        return Err(FrameError::BadProtocolHeader);
                    }
                    *have += take;
                    data = &data[take..];
                    if *have == PROTOCOL_HEADER.len() {
                        self.state = State::Header { buf: [0; 7], have: 0 };
                    }
                }
                State::Header { buf, have } => {
                    // Fast path: a whole header in this chunk (the common case) is read in
                    // place; only a header split across chunks is assembled in `buf`.
                    let header: [u8; 7] = if *have == 0 && data.len() >= 7 {
                        let h = [data[0], data[1], data[2], data[3], data[4], data[5], data[6]];
                        data = &data[7..];
                        h
                    } else {
                        let take = (7 - *have).min(data.len());
                        buf[*have..*have + take].copy_from_slice(&data[..take]);
                        *have += take;
                        data = &data[take..];
                        if *have < 7 {
                            continue;
                        }
                        *buf
                    };
                    let kind = header[0];
                    let channel = u16::from_be_bytes([header[1], header[2]]);
                    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
                    if !matches!(kind, FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT) {
                        return Err(FrameError::BadType(kind));
                    }
                    // frame_max counts the whole frame: 7 header bytes, payload, frame-end.
                    if self.frame_max != 0 && size.saturating_add(8) > self.frame_max {
                        return Err(FrameError::TooLarge { size: size.saturating_add(8), max: self.frame_max });
                    }
                    let capture = kind == FRAME_METHOD && channel == 0;
                    if capture && size > MAX_CAPTURED {
                        return Err(FrameError::MethodTooLarge { size, max: MAX_CAPTURED });
                    }
                    if capture {
                        self.captured.clear();
                        self.captured.reserve(size as usize);
                    }
                    self.state = if size == 0 {
                        State::End { kind, channel, capture }
                    } else {
                        State::Payload { kind, channel, remaining: size, capture }
                    };
                }
                State::Payload { kind, channel, remaining, capture } => {
                    let take = (*remaining as usize).min(data.len());
                    if *capture {
                        self.captured.extend_from_slice(&data[..take]);
                    }
                    *remaining -= take as u32;
                    data = &data[take..];
                    if *remaining == 0 {
                        self.state = State::End { kind: *kind, channel: *channel, capture: *capture };
                    }
                }
                State::End { kind, channel, capture } => {
                    if data[0] != FRAME_END {
                        return Err(FrameError::BadFrameEnd);
                    }
                    data = &data[1..];
                    let frame = Frame {
                        kind: *kind,
                        channel: *channel,
                        payload: if *capture { Some(&self.captured[..]) } else { None },
                    };
                    on_frame(frame);
                    self.state = State::Header { buf: [0; 7], have: 0 };
                    if self.captured.capacity() > 4096 {
                        // Keep no large buffer once a big start-ok has passed.
                        self.captured = Vec::new();
                    }
                }
            }
        }
        Ok(())
    }
}

/// Encodes one frame.
pub fn encode(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, channel, captured payload) of each frame seen.
    type Seen = Vec<(u8, u16, Option<Vec<u8>>)>;

    fn collect(t: &mut FrameTracker, chunks: &[&[u8]]) -> Result<Seen, FrameError> {
        let mut out = Vec::new();
        for c in chunks {
            t.feed(c, |f| out.push((f.kind, f.channel, f.payload.map(|p| p.to_vec()))))?;
        }
        Ok(out)
    }

    #[test]
    fn header_then_frames_split_anywhere() {
        let mut stream = PROTOCOL_HEADER.to_vec();
        stream.extend(encode(FRAME_METHOD, 0, b"start-ok"));
        stream.extend(encode(FRAME_BODY, 1, &[9u8; 1000]));
        stream.extend(encode(FRAME_HEARTBEAT, 0, b""));
        for split in 1..stream.len() {
            let mut t = FrameTracker::client();
            let (a, b) = stream.split_at(split);
            let frames = collect(&mut t, &[a, b]).unwrap_or_else(|e| panic!("split {split}: {e}"));
            assert_eq!(frames.len(), 3, "split {split}");
            assert_eq!(frames[0], (FRAME_METHOD, 0, Some(b"start-ok".to_vec())));
            assert_eq!(frames[1], (FRAME_BODY, 1, None), "bodies are never captured");
            assert_eq!(frames[2], (FRAME_HEARTBEAT, 0, None));
            assert!(t.at_boundary());
        }
    }

    #[test]
    fn boundary_is_known_mid_stream() {
        let mut t = FrameTracker::server();
        let f = encode(FRAME_BODY, 3, &[1u8; 10]);
        t.feed(&f[..5], |_| {}).unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.at_boundary());
        t.feed(&f[5..], |_| {}).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.at_boundary());
    }

    #[test]
    fn garbage_is_rejected() {
        let mut t = FrameTracker::client();
        assert_eq!(t.feed(b"GET / HTTP/1.1\r\n", |_| {}), Err(FrameError::BadProtocolHeader));
        let mut t = FrameTracker::server();
        assert_eq!(t.feed(&[7, 0, 0, 0, 0, 0, 0], |_| {}), Err(FrameError::BadType(7)));
        let mut bad_end = encode(FRAME_HEARTBEAT, 0, b"");
        let last = bad_end.len() - 1;
        bad_end[last] = 0;
        let mut t = FrameTracker::server();
        assert_eq!(t.feed(&bad_end, |_| {}), Err(FrameError::BadFrameEnd));
    }

    #[test]
    fn frame_max_is_enforced_from_the_header() {
        let mut t = FrameTracker::server();
        t.frame_max = 4096;
        let header = [FRAME_BODY, 0, 1, 0, 0, 0x0f, 0xf9];
        assert_eq!(t.feed(&header, |_| {}), Err(FrameError::TooLarge { size: 4097, max: 4096 }));
        let mut t = FrameTracker::server();
        t.frame_max = 4096;
        assert_eq!(t.feed(&[FRAME_BODY, 0, 1, 0, 0, 0x0f, 0xf8], |_| {}), Ok(()));
    }
}
