//! AMQP 0-9-1 frames as the forwarding loop sees them: in chunks cut wherever TCP cuts.
//!
//! Input: `mode`, `n`, then `n & 15` chunk lengths, then the bytes. Two checks:
//! 1. `FrameTracker` alone (client or server side, a `frame_max` chosen by `mode`): the
//!    stream fed in one chunk and in the chosen chunks gives the same frames and the same
//!    error, and ends at a frame boundary in both or neither.
//! 2. The session path (`Amqp::observe`, tracker and handshake together, `frame_max`
//!    applied from `tune-ok` as it passes): chunks go alternately to the client and server
//!    sides as the chunk lengths' low bit says; it must not panic, and a refusal must say why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokio::time::Instant;
use warren::amqp::frame::{FrameError, FrameTracker, DEFAULT_INITIAL_FRAME_MAX};
use warren::proxy::amqp::Amqp;
use warren::proxy::forward::{Activity, Protocol, Side};

/// (type, channel, captured payload) of each frame, and how feeding ended.
type Outcome = (
    Vec<(u8, u16, Option<Vec<u8>>)>,
    Result<(), FrameError>,
    bool,
);

fn track(mut tracker: FrameTracker, chunks: &[&[u8]]) -> Outcome {
    let mut frames = Vec::new();
    for chunk in chunks {
        let fed = tracker.feed(chunk, |f| {
            frames.push((f.kind, f.channel, f.payload.map(<[u8]>::to_vec)))
        });
        if fed.is_err() {
            return (frames, fed, false);
        }
    }
    let boundary = tracker.at_boundary();
    (frames, Ok(()), boundary)
}

fn split<'a>(lengths: &[u8], mut data: &'a [u8]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    for &len in lengths {
        let (chunk, rest) = data.split_at((len as usize >> 1).min(data.len()));
        chunks.push(chunk);
        data = rest;
    }
    chunks.push(data);
    chunks
}

fuzz_target!(|input: &[u8]| {
    let [mode, n, rest @ ..] = input else { return };
    let n = (*n as usize & 15).min(rest.len());
    let (lengths, stream) = rest.split_at(n);
    let chunks = split(lengths, stream);

    let tracker = || {
        let mut t = if mode & 1 == 0 {
            FrameTracker::client()
        } else {
            FrameTracker::server()
        };
        if mode & 2 != 0 {
            t.skip_protocol_header();
        }
        t.frame_max = match (mode >> 2) & 3 {
            0 => DEFAULT_INITIAL_FRAME_MAX,
            1 => 0,
            2 => 4096,
            _ => 8,
        };
        t
    };
    let whole = track(tracker(), &[stream]);
    let pieces = track(tracker(), &chunks);
    assert_eq!(
        whole,
        pieces,
        "one chunk and {} chunks disagree",
        chunks.len()
    );

    let mut amqp = Amqp::new(Instant::now(), DEFAULT_INITIAL_FRAME_MAX);
    let activity = Activity::new(Instant::now());
    for (i, chunk) in chunks.iter().enumerate() {
        let from = match lengths.get(i) {
            Some(len) if len & 1 == 1 => Side::Server,
            _ => Side::Client,
        };
        if amqp.observe(from, chunk).is_err() {
            assert!(amqp.violation.is_some(), "refused without a reason");
            break;
        }
        let _ = amqp.deadline(from, false, &activity);
        let _ = amqp.deadlines_changed();
    }
});
