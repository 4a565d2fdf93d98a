//! Following AMQP 0-9-1 frame boundaries in a byte stream that warren forwards untouched.
//!
//! ```text
//! frame: type(1) channel(2) size(4) | payload(size) | 0xCE
//! ```
//! The tracker is fed each chunk as it passes and does arithmetic on sizes: content bodies
//! are skipped, never copied. Only method frames on channel 0 (the connection class:
//! start, tune, open, close) are captured whole, since those are all warren needs to
//! decode; they are small, and a capture never grows past `max_captured` (what a peer
//! announces is not believed: memory follows the bytes that really arrived).
//!
//! Sizes are checked on the frame header, before the payload arrives, the way RabbitMQ's
//! reader does: before `tune-ok` the client is held to the initial limit
//! ([`DEFAULT_INITIAL_FRAME_MAX`], RabbitMQ's `initial_frame_max`), after it to the
//! negotiated `frame_max`.

use thiserror::Error;

/// Frame type octets (AMQP 0-9-1 §4.2.3).
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;

/// What a client must send first.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// The largest frame a client may send before `tune-ok` negotiated `frame_max`: RabbitMQ's
/// reader starts with `frame_max = initial_frame_max`, whose default is `FRAME_MIN_SIZE`,
/// 8192 since RabbitMQ 4.1 (4096 before; raised for large JWT tokens in `start-ok`).
/// Warren is never stricter than the node behind it; `amqp-initial-frame-max` changes it.
pub const DEFAULT_INITIAL_FRAME_MAX: u32 = crate::config::DEFAULT_INITIAL_FRAME_MAX;

/// The spec's `frame-min-size`: no peer may be held to less than this.
pub const FRAME_MIN_SIZE: u32 = 4096;

/// The limit on what the server (our own node) sends before `tune`: its `connection.start`
/// is a few hundred bytes; this only bounds the memory a broken node could make warren use.
pub const SERVER_PRE_TUNE_FRAME_MAX: u32 = 128 * 1024;

/// RabbitMQ lets a frame exceed `frame_max` by this much, "since quite a few [clients] get
/// it wrong - off-by 1 or 8 (empty frame size) are typical" (`rabbit_reader`'s
/// `FRAME_SIZE_FUDGE`): a payload of up to `frame_max` bytes passes. Warren does the same,
/// so it never cuts a client the node would have served.
pub const FRAME_SIZE_FUDGE: u32 = 8;

/// Bytes around a payload: type, channel, size (7) and the frame-end octet.
pub const FRAME_OVERHEAD: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("not an AMQP 0-9-1 protocol header")]
    BadProtocolHeader,
    #[error("unknown frame type {0}")]
    BadType(u8),
    /// `size` counts the whole frame (header, payload, frame-end), as `frame_max` does.
    #[error("frame of {size} bytes exceeds frame_max {max}")]
    TooLarge { size: u32, max: u32 },
    #[error("frame does not end with 0xCE")]
    BadFrameEnd,
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
    Payload {
        kind: u8,
        channel: u16,
        remaining: u32,
        capture: bool,
    },
    /// Expecting the frame-end octet.
    End {
        kind: u8,
        channel: u16,
        capture: bool,
    },
}

/// Tracks one direction of one AMQP connection.
#[derive(Debug)]
pub struct FrameTracker {
    state: State,
    /// Largest frame accepted (`frame_max` once negotiated; 0 means no limit), with
    /// RabbitMQ's [`FRAME_SIZE_FUDGE`].
    pub frame_max: u32,
    /// Channel-0 method payloads larger than this are passed on without being captured
    /// (and so not decoded): whatever the negotiated `frame_max`, a session never holds
    /// more than this for decoding. The methods warren reads are far smaller.
    max_captured: u32,
    /// Buffer for the captured payload of the current channel-0 method frame.
    captured: Vec<u8>,
}

impl FrameTracker {
    /// For the client → server direction: starts with the protocol header; frames are
    /// limited to [`DEFAULT_INITIAL_FRAME_MAX`] until `tune-ok` (see [`Self::initial_frame_max`]).
    pub fn client() -> FrameTracker {
        FrameTracker::new(State::ProtocolHeader { have: 0 }, DEFAULT_INITIAL_FRAME_MAX)
    }

    /// For the server → client direction.
    pub fn server() -> FrameTracker {
        FrameTracker::new(
            State::Header {
                buf: [0; 7],
                have: 0,
            },
            SERVER_PRE_TUNE_FRAME_MAX,
        )
    }

    fn new(state: State, frame_max: u32) -> FrameTracker {
        FrameTracker {
            state,
            frame_max,
            max_captured: frame_max.max(FRAME_MIN_SIZE),
            captured: Vec::new(),
        }
    }

    /// Sets the limit in force until `tune-ok` (`amqp-initial-frame-max`); it also bounds
    /// what is captured for decoding for the rest of the connection.
    pub fn initial_frame_max(mut self, max: u32) -> FrameTracker {
        self.frame_max = max;
        self.max_captured = max.max(FRAME_MIN_SIZE);
        self
    }

    /// For a client whose protocol header was already read and checked.
    pub fn skip_protocol_header(&mut self) {
        if matches!(self.state, State::ProtocolHeader { have: 0 }) {
            self.state = State::Header {
                buf: [0; 7],
                have: 0,
            };
        }
    }

    /// True between frames: a frame warren writes now would not split one of the peer's.
    pub fn at_boundary(&self) -> bool {
        matches!(
            self.state,
            State::Header { have: 0, .. } | State::ProtocolHeader { have: 0 }
        )
    }

    /// Consumes `data`, calling `on_frame` for every frame completed in it.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut on_frame: impl FnMut(Frame<'_>),
    ) -> Result<(), FrameError> {
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
                        self.state = State::Header {
                            buf: [0; 7],
                            have: 0,
                        };
                    }
                }
                State::Header { buf, have } => {
                    // Fast path: a whole header in this chunk (the common case) is read in
                    // place; only a header split across chunks is assembled in `buf`.
                    let header: [u8; 7] = if *have == 0 && data.len() >= 7 {
                        let h = [
                            data[0], data[1], data[2], data[3], data[4], data[5], data[6],
                        ];
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
                    if !matches!(
                        kind,
                        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
                    ) {
                        return Err(FrameError::BadType(kind));
                    }
                    // frame_max counts the whole frame (7 header bytes, payload, frame-end);
                    // RabbitMQ allows FRAME_SIZE_FUDGE more, so a payload of frame_max passes.
                    let whole = size.saturating_add(FRAME_OVERHEAD);
                    if self.frame_max != 0
                        && whole > self.frame_max.saturating_add(FRAME_SIZE_FUDGE)
                    {
                        return Err(FrameError::TooLarge {
                            size: whole,
                            max: self.frame_max,
                        });
                    }
                    let capture = kind == FRAME_METHOD && channel == 0 && size <= self.max_captured;
                    if capture {
                        self.captured.clear();
                        // Bounded by max_captured; the rest grows only as bytes arrive.
                        self.captured.reserve((size as usize).min(4096));
                    }
                    self.state = if size == 0 {
                        State::End {
                            kind,
                            channel,
                            capture,
                        }
                    } else {
                        State::Payload {
                            kind,
                            channel,
                            remaining: size,
                            capture,
                        }
                    };
                }
                State::Payload {
                    kind,
                    channel,
                    remaining,
                    capture,
                } => {
                    let take = (*remaining as usize).min(data.len());
                    if *capture {
                        self.captured.extend_from_slice(&data[..take]);
                    }
                    *remaining -= take as u32;
                    data = &data[take..];
                    if *remaining == 0 {
                        self.state = State::End {
                            kind: *kind,
                            channel: *channel,
                            capture: *capture,
                        };
                    }
                }
                State::End {
                    kind,
                    channel,
                    capture,
                } => {
                    if data[0] != FRAME_END {
                        return Err(FrameError::BadFrameEnd);
                    }
                    data = &data[1..];
                    let frame = Frame {
                        kind: *kind,
                        channel: *channel,
                        payload: if *capture {
                            Some(&self.captured[..])
                        } else {
                            None
                        },
                    };
                    on_frame(frame);
                    self.state = State::Header {
                        buf: [0; 7],
                        have: 0,
                    };
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
            t.feed(c, |f| {
                out.push((f.kind, f.channel, f.payload.map(|p| p.to_vec())))
            })?;
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
            assert_eq!(
                frames[1],
                (FRAME_BODY, 1, None),
                "bodies are never captured"
            );
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
        assert_eq!(
            t.feed(b"GET / HTTP/1.1\r\n", |_| {}),
            Err(FrameError::BadProtocolHeader)
        );
        let mut t = FrameTracker::server();
        assert_eq!(
            t.feed(&[7, 0, 0, 0, 0, 0, 0], |_| {}),
            Err(FrameError::BadType(7))
        );
        let mut bad_end = encode(FRAME_HEARTBEAT, 0, b"");
        let last = bad_end.len() - 1;
        bad_end[last] = 0;
        let mut t = FrameTracker::server();
        assert_eq!(t.feed(&bad_end, |_| {}), Err(FrameError::BadFrameEnd));
    }

    fn header(kind: u8, channel: u16, size: u32) -> Vec<u8> {
        let mut h = vec![kind];
        h.extend_from_slice(&channel.to_be_bytes());
        h.extend_from_slice(&size.to_be_bytes());
        h
    }

    #[test]
    fn frame_max_is_enforced_from_the_header_with_rabbitmqs_fudge() {
        // RabbitMQ: a payload of up to frame_max passes (frame_max - 8 + FRAME_SIZE_FUDGE).
        let mut t = FrameTracker::server();
        t.frame_max = 4096;
        assert_eq!(t.feed(&header(FRAME_BODY, 1, 4096), |_| {}), Ok(()));
        let mut t = FrameTracker::server();
        t.frame_max = 4096;
        assert_eq!(
            t.feed(&header(FRAME_BODY, 1, 4097), |_| {}),
            Err(FrameError::TooLarge {
                size: 4105,
                max: 4096
            })
        );
    }

    #[test]
    fn a_client_is_held_to_the_initial_limit_until_tune() {
        let mut t = FrameTracker::client();
        let mut stream = PROTOCOL_HEADER.to_vec();
        stream.extend(header(FRAME_METHOD, 0, DEFAULT_INITIAL_FRAME_MAX + 1));
        assert_eq!(
            t.feed(&stream, |_| {}),
            Err(FrameError::TooLarge {
                size: DEFAULT_INITIAL_FRAME_MAX + 9,
                max: DEFAULT_INITIAL_FRAME_MAX
            })
        );
        // A node configured with a larger initial_frame_max: so is warren.
        let mut t = FrameTracker::client().initial_frame_max(64 * 1024);
        let big = encode(FRAME_METHOD, 0, &vec![7u8; 60 * 1024]);
        let mut stream = PROTOCOL_HEADER.to_vec();
        stream.extend(&big);
        let mut captured = 0;
        t.feed(&stream, |f| captured = f.payload.map_or(0, <[u8]>::len))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(captured, 60 * 1024);
    }

    #[test]
    fn an_announced_size_is_not_allocated_and_large_methods_are_not_captured() {
        // After tune with frame_max 0 (no limit), a 4 GiB channel-0 method announced in a
        // header must not make warren reserve 4 GiB, nor hold it for decoding.
        let mut t = FrameTracker::client();
        t.skip_protocol_header();
        t.frame_max = 0;
        t.feed(&header(FRAME_METHOD, 0, u32::MAX - 8), |_| {})
            .unwrap_or_else(|e| panic!("{e}"));
        t.feed(&[1u8; 100_000], |_| {})
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            t.captured.capacity() < 16 * 1024,
            "captured {} bytes",
            t.captured.capacity()
        );
        // A channel-0 method larger than the capture limit passes, uncaptured.
        let mut t = FrameTracker::client();
        t.skip_protocol_header();
        t.frame_max = 1 << 20;
        let frame = encode(FRAME_METHOD, 0, &vec![0u8; 200_000]);
        let mut seen = Vec::new();
        t.feed(&frame, |f| seen.push(f.payload.is_some()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen, vec![false]);
    }
}
