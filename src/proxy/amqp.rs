//! An AMQP session as the forwarding loop sees it, and its polite ending.
//!
//! [`Amqp`] is the [`Protocol`] of `amqp` mode: it follows frames both ways, reads the
//! handshake, and sets deadlines from the protocol rather than from idle timers:
//! - before `open-ok`: the handshake must finish within `timeout handshake`;
//! - after: with a negotiated heartbeat H, a side that sends nothing for 2×H + 1 s is
//!   dead (an idle peer sends a heartbeat frame every H at the latest; two missed ones
//!   is RabbitMQ's own rule);
//! - with heartbeats off, no deadline at all: TCP keep-alive finds dead peers.
//!
//! When warren ends a session, [`end_politely`] sends the client `connection.close` 320
//! with the reason at a frame boundary, and, if the server is alive, closes the upstream
//! connection cleanly too, so RabbitMQ logs a normal close instead of a lost client.
//!
//! A client that breaks the framing (a frame larger than allowed, an unknown frame type,
//! a bad frame-end octet, an undecodable connection method) gets what RabbitMQ sends:
//! `connection.close` 501 FRAME_ERROR with the reason ([`refuse_frame`]), then the socket
//! closes. Only that session ends.

use std::time::Duration;

use crate::net::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::forward::{Activity, OnEof, Protocol, Side, Violation};
use crate::amqp::frame::{FrameError, FrameTracker, FRAME_MIN_SIZE, PROTOCOL_HEADER};
use crate::amqp::handshake::{Handshake, Seen};
use crate::amqp::methods::{self, CONNECTION_FORCED, FRAME_ERROR};

/// Slack added to 2×heartbeat before a silent side is declared dead.
const HEARTBEAT_SLACK: Duration = Duration::from_secs(1);

/// How long warren waits for `close-ok` after sending `connection.close`.
const CLOSE_OK_WAIT: Duration = Duration::from_secs(3);

/// Why the client's first bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Something other than `AMQP\0\0\x09\x01` (another protocol version, HTTP, garbage).
    NotAmqp,
    /// Nothing (or not enough) within `timeout handshake`.
    Timeout,
    /// The client closed or reset before sending it.
    Closed,
}

/// Reads the 8-byte protocol header, however slowly it trickles in, until `deadline`.
/// On a wrong header, answers as the spec says (with the header of the version warren
/// speaks) before the caller closes the socket; RabbitMQ does the same. Returns, with the
/// outcome, how many bytes the client sent (for the log's byte count).
pub async fn read_protocol_header(
    client: &mut Stream,
    deadline: Instant,
) -> (Result<(), HeaderError>, usize) {
    let mut header = [0u8; 8];
    let mut have = 0;
    while have < header.len() {
        match tokio::time::timeout_at(deadline, client.read(&mut header[have..])).await {
            Err(_) => return (Err(HeaderError::Timeout), have),
            Ok(Ok(0)) | Ok(Err(_)) => return (Err(HeaderError::Closed), have),
            Ok(Ok(n)) => have += n,
        }
        // A wrong byte is refused at once: no need to wait for the rest.
        if header[..have] != PROTOCOL_HEADER[..have] {
            let _ = tokio::time::timeout(CLOSE_OK_WAIT, client.write_all(PROTOCOL_HEADER)).await;
            return (Err(HeaderError::NotAmqp), have);
        }
    }
    (Ok(()), have)
}

/// The AMQP view of one session (the protocol header already consumed).
#[derive(Debug)]
pub struct Amqp {
    c2s: FrameTracker,
    s2c: FrameTracker,
    pub handshake: Handshake,
    /// The server sent `connection.start`, so the client is speaking AMQP with it and
    /// will understand a `connection.close`.
    started: bool,
    handshake_deadline: Instant,
    /// What was wrong when the session ended on a protocol violation.
    pub violation: Option<String>,
    /// When the client broke the framing: the reply text of the `connection.close` 501 it
    /// is owed (RabbitMQ's FRAME_ERROR).
    pub frame_error: Option<String>,
    /// Set when the handshake moved on in a way that changes deadlines.
    rearm: bool,
}

impl Amqp {
    /// `initial_frame_max` limits the client's frames until `tune-ok` (the frontend's
    /// `amqp-initial-frame-max`, RabbitMQ's `initial_frame_max`).
    pub fn new(handshake_deadline: Instant, initial_frame_max: u32) -> Amqp {
        let mut c2s = FrameTracker::client().initial_frame_max(initial_frame_max);
        // The header was read (and checked) before the loop started.
        c2s.skip_protocol_header();
        Amqp {
            c2s,
            s2c: FrameTracker::server(),
            handshake: Handshake::default(),
            started: false,
            handshake_deadline,
            violation: None,
            frame_error: None,
            rearm: false,
        }
    }

    fn apply_tune(&mut self) {
        if let Some(max) = self.handshake.frame_max {
            // 0 is "no limit"; below the spec's minimum the node refuses the connection
            // itself (530), and its close must still reach the client.
            let max = if max == 0 { 0 } else { max.max(FRAME_MIN_SIZE) };
            self.c2s.frame_max = max;
            self.s2c.frame_max = max;
        }
    }

    /// The frame error in words, for the log and the client's `connection.close` 501.
    fn describe(&self, e: &FrameError) -> String {
        match e {
            FrameError::TooLarge { size, max } if self.handshake.frame_max.is_none() => {
                format!("frame of {size} bytes is larger than {max}, the limit before connection.tune-ok")
            }
            FrameError::TooLarge { size, max } => {
                format!("frame of {size} bytes exceeds the negotiated frame_max {max}")
            }
            other => other.to_string(),
        }
    }
}

impl Protocol for Amqp {
    fn observe(&mut self, from: Side, data: &[u8]) -> Result<(), Violation> {
        let hs = &mut self.handshake;
        // Flags, not a list: this runs on every chunk and must not allocate.
        let (mut started, mut tuned, mut malformed, mut opened) = (false, false, false, false);
        let tracker = match from {
            Side::Client => &mut self.c2s,
            Side::Server => &mut self.s2c,
        };
        let fed = tracker.feed(data, |frame| {
            if let Some(payload) = frame.payload {
                let seen = match from {
                    Side::Client => hs.client_method(payload),
                    Side::Server => hs.server_method(payload),
                };
                started |= seen == Seen::Start;
                tuned |= seen == Seen::TuneOk;
                malformed |= seen == Seen::Malformed;
                opened |= seen == Seen::OpenOk;
            }
        });
        if let Err(e) = fed {
            let what = self.describe(&e);
            self.violation = Some(format!(
                "{} sent a malformed frame: {what}",
                side_name(from)
            ));
            if from == Side::Client {
                self.frame_error = Some(format!("FRAME_ERROR - {what}"));
            }
            return Err(Violation);
        }
        if malformed {
            self.violation = Some(format!(
                "{} sent a malformed connection method",
                side_name(from)
            ));
            if from == Side::Client {
                // RabbitMQ: a method that does not decode is a frame_error too.
                self.frame_error = Some("FRAME_ERROR - cannot decode the connection method".into());
            }
            return Err(Violation);
        }
        self.started |= started;
        if tuned {
            self.apply_tune();
        }
        self.rearm |= opened;
        Ok(())
    }

    fn deadline(&self, side: Side, _half_closed: bool, activity: &Activity) -> Option<Instant> {
        if !self.handshake.opened {
            return Some(self.handshake_deadline);
        }
        match self.handshake.heartbeat {
            Some(h) if h > 0 => {
                Some(activity.read(side) + Duration::from_secs(2 * u64::from(h)) + HEARTBEAT_SLACK)
            }
            _ => None,
        }
    }

    fn deadlines_changed(&mut self) -> bool {
        std::mem::take(&mut self.rearm)
    }

    fn on_eof(&mut self, from: Side) -> OnEof {
        let closing = self.handshake.server_closing || self.handshake.client_closing;
        match from {
            // The client leaving is its business; RabbitMQ will see the FIN.
            Side::Client => OnEof::PassOn,
            Side::Server if closing => OnEof::PassOn,
            // The node went away without closing: the client must be told, not reset.
            Side::Server => OnEof::End,
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "the client",
        Side::Server => "the server",
    }
}

/// What [`end_politely`] managed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// The client was sent `connection.close` 320.
    pub client_told: bool,
    /// The client answered `close-ok`.
    pub client_acknowledged: bool,
    /// The server was sent `connection.close` (it was alive).
    pub server_closed: bool,
}

/// Ends a session warren chose to end: delivers what the client was owed, sends it
/// `connection.close` 320 with `reason` at a frame boundary, waits briefly for
/// `close-ok`; when `server_alive`, closes the upstream connection the same way.
pub async fn end_politely(
    amqp: &mut Amqp,
    client: &mut Stream,
    server: &mut Stream,
    undelivered: &[u8],
    reason: &str,
    server_alive: bool,
) -> Ending {
    let mut ending = Ending {
        client_told: false,
        client_acknowledged: false,
        server_closed: false,
    };
    let deadline = Instant::now() + CLOSE_OK_WAIT;
    let already_closing = amqp.handshake.client_closing || amqp.handshake.server_closing;

    if server_alive && amqp.handshake.opened && amqp.c2s.at_boundary() && !already_closing {
        let close =
            methods::connection_close(methods::REPLY_SUCCESS, "client session ended by warren");
        ending.server_closed = write_by(server, &close, deadline).await;
    }
    let flushed = undelivered.is_empty() || write_by(client, undelivered, deadline).await;
    if flushed && amqp.started && amqp.s2c.at_boundary() && !already_closing {
        let text = format!("CONNECTION_FORCED - {reason}");
        ending.client_told = write_by(
            client,
            &methods::connection_close(CONNECTION_FORCED, &text),
            deadline,
        )
        .await;
    }
    if ending.client_told {
        ending.client_acknowledged =
            await_close_ok(&mut amqp.c2s, Side::Client, client, deadline).await;
    }
    if ending.server_closed {
        await_close_ok(&mut amqp.s2c, Side::Server, server, deadline).await;
    }
    ending
}

/// The client broke the framing: like RabbitMQ, send it `connection.close` 501 with
/// `text` (after what it was still owed, at a frame boundary), then close. Warren has lost
/// sync with the client's stream, so it does not wait for a `close-ok` it could not find:
/// it half-closes and discards what the client still sends, for at most
/// [`CLOSE_OK_WAIT`], so the close is read rather than lost in a reset. Returns whether the
/// client was told.
pub async fn refuse_frame(
    amqp: &Amqp,
    client: &mut Stream,
    undelivered: &[u8],
    text: &str,
) -> bool {
    let deadline = Instant::now() + CLOSE_OK_WAIT;
    let flushed = undelivered.is_empty() || write_by(client, undelivered, deadline).await;
    let told = flushed
        && amqp.s2c.at_boundary()
        && write_by(
            client,
            &methods::connection_close(FRAME_ERROR, text),
            deadline,
        )
        .await;
    let _ = client.shutdown().await;
    let mut buf = vec![0u8; 4096];
    let mut drained = 0usize;
    // Bounded in time and in bytes: a hostile client cannot keep warren reading.
    while drained < 1 << 20 {
        match tokio::time::timeout_at(deadline, client.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
    told
}

/// The node sent `connection.close` and then dropped the socket before the client's
/// `close-ok` (RabbitMQ does on `stop_app`). Warren stands in for it: it waits (briefly)
/// for the client's answer, so the client library reports the node's reply code rather than
/// a broken connection. Returns whether the client answered.
pub async fn await_client_close_ok(amqp: &mut Amqp, client: &mut Stream) -> bool {
    if amqp.handshake.client_close_ok {
        return true;
    }
    let deadline = Instant::now() + CLOSE_OK_WAIT;
    await_close_ok(&mut amqp.c2s, Side::Client, client, deadline).await
}

async fn write_by(stream: &mut Stream, data: &[u8], deadline: Instant) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, stream.write_all(data)).await,
        Ok(Ok(()))
    )
}

/// Reads (and drops: after a close, the spec has the peer discard everything) until the
/// peer's `close-ok`, EOF or the deadline.
async fn await_close_ok(
    tracker: &mut FrameTracker,
    from: Side,
    stream: &mut Stream,
    deadline: Instant,
) -> bool {
    // On the heap: this runs once per session at its end, and a stack array here would
    // sit in every session's future for its whole life (idle sessions must stay small).
    let mut buf = vec![0u8; 4096];
    let mut handshake = Handshake::default();
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return false,
        };
        let mut got = false;
        let fed = tracker.feed(&buf[..n], |frame| {
            if let Some(p) = frame.payload {
                let seen = match from {
                    Side::Client => handshake.client_method(p),
                    Side::Server => handshake.server_method(p),
                };
                got |= seen == Seen::CloseOk;
            }
        });
        if got {
            return true;
        }
        if fed.is_err() {
            return false;
        }
    }
}
