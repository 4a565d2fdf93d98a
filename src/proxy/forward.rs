//! The forwarding loop: bytes both ways between a client and its server, until both
//! sides have closed, a timeout strikes, or the session is killed.
//!
//! Memory: an idle session holds no user-space buffer. Data is read into one buffer per
//! worker thread and written straight on; only when the destination cannot take it all
//! (back-pressure) is the remainder copied into a per-direction `Vec`, which is freed as
//! soon as it drains. So 10,000 quiet AMQP consumers cost sockets, not buffers.
//!
//! What the bytes mean is the [`Protocol`]'s business: it sees every chunk (without
//! copying it), decides each side's deadline, and what a FIN means. `tcp::Tcp` follows
//! HAProxy's tunnel semantics: a side's inactivity timer is refreshed by reading from it
//! and by writing to it; `timeout tunnel` replaces both once connected; `timeout
//! client-fin`/`server-fin` apply to a side that has half-closed; a FIN is passed on with
//! `shutdown(SHUT_WR)` and the other direction keeps flowing; `amqp::Amqp` follows frames.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::splice::{self, Pipe};
use crate::net::Stream;

/// Size of the per-thread transfer buffer. Larger reads mean fewer syscalls on bulk
/// transfers; the benchmark (`bench/`) is where this number is argued.
const BUF_SIZE: usize = 64 * 1024;

thread_local! {
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; BUF_SIZE].into_boxed_slice());
}

/// How a forwarding loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed their sending half.
    Closed,
    /// A side sent FIN and the protocol said the session ends there (AMQP: the server
    /// closed without `connection.close`).
    Eof(Side),
    /// The protocol rejected what a side sent (malformed frame).
    Violation(Side),
    ClientTimeout,
    ServerTimeout,
    /// The client reset the connection or an I/O error struck on its socket.
    ClientError,
    ServerError,
    /// `killed` resolved (shutdown-sessions, process stopping).
    Killed,
}

/// Bytes moved and how it ended.
#[derive(Debug)]
pub struct Transfer {
    pub to_server: u64,
    pub to_client: u64,
    pub end: End,
    /// Bytes read from the server but not yet delivered to the client when the loop
    /// ended (only under back-pressure); AMQP flushes them before writing its own close.
    pub undelivered_to_client: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// What a FIN from one side means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEof {
    /// Pass it on (half-close) and keep the other direction flowing.
    PassOn,
    /// End the session here.
    End,
}

/// The protocol knowledge the forwarding loop consults. Implementations must be cheap:
/// `observe` runs on every chunk.
pub trait Protocol {
    /// Sees every chunk read from `from` before it is written on. An error ends the session.
    fn observe(&mut self, from: Side, data: &[u8]) -> Result<(), Violation>;
    /// When `side` is to be declared dead or idle, given its last activity.
    fn deadline(&self, side: Side, half_closed: bool, activity: &Activity) -> Option<Instant>;
    fn on_eof(&mut self, from: Side) -> OnEof;
    /// True (once) when the deadlines may have moved earlier than the timer already set,
    /// e.g. the handshake ended and heartbeats now rule. The loop then re-arms its timer.
    fn deadlines_changed(&mut self) -> bool {
        false
    }
    /// May bulk data bypass user space (splice)? Only when the protocol never needs to
    /// see the bytes.
    fn splice(&self) -> bool {
        false
    }
}

/// A side broke the protocol; the protocol keeps the details for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation;

/// A read at least this large marks a bulk transfer, which splice moves more cheaply than
/// a copy; smaller ones (AMQP publishes, heartbeats) are copied.
const BULK: usize = 16 * 1024;

/// Where the bytes a direction moves are counted as they move, so the stats page shows
/// live numbers for sessions that last hours (AMQP consumers). Relaxed atomic adds, one per
/// chunk read, to the server's and the frontend's counter.
#[derive(Clone, Copy)]
pub struct Meter<'a> {
    pub server: &'a AtomicU64,
    pub frontend: &'a AtomicU64,
}

impl Meter<'_> {
    #[inline]
    pub fn add(&self, n: usize) {
        self.server.fetch_add(n as u64, Ordering::Relaxed);
        self.frontend.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// One direction of the session.
struct Direction<'m> {
    from: Side,
    /// Bytes read but not yet written (only under back-pressure).
    pending: Vec<u8>,
    /// While spliced bytes wait in a pipe: the pipe and how many bytes it holds.
    pipe: Option<(Pipe, usize)>,
    /// The last read was bulk-sized: the next one may splice.
    bulk: bool,
    meter: Meter<'m>,
    /// Set once the source sent FIN and everything was passed on.
    done: bool,
    bytes: u64,
}

/// What one step of a direction observed.
enum Step {
    /// Made progress (or found nothing to do after a spurious wake-up).
    Progress { read: bool, wrote: bool },
    /// Source reached EOF (FIN).
    Eof,
    /// I/O error on this side.
    Failed(Side),
    /// The protocol rejected the data read.
    Violation,
}

impl<'m> Direction<'m> {
    fn new(from: Side, meter: Meter<'m>) -> Direction<'m> {
        Direction {
            from,
            pending: Vec::new(),
            pipe: None,
            bulk: false,
            meter,
            done: false,
            bytes: 0,
        }
    }

    fn to(&self) -> Side {
        match self.from {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// Ready when this direction can make progress: the source is readable, or (when
    /// data is pending) the destination is writable.
    fn poll_ready(&self, cx: &mut Context<'_>, src: &Stream, dst: &Stream) -> Poll<io::Result<()>> {
        if self.pending.is_empty() && self.pipe.is_none() && !dst.wants_flush() {
            src.poll_read_ready(cx)
        } else {
            dst.poll_write_ready(cx)
        }
    }

    /// The splice path: empty the pipe, or fill it from `src` and empty it into `dst`.
    fn step_spliced(&mut self, src: &TcpStream, dst: &TcpStream) -> Option<Step> {
        let (pipe, held, read) = match self.pipe.take() {
            Some((pipe, held)) => (pipe, held, false),
            None => {
                let pipe = Pipe::get().ok()?; // out of fds: copy instead
                match splice::fill(src, &pipe) {
                    Ok(0) => {
                        pipe.put();
                        return Some(Step::Eof);
                    }
                    Ok(n) => {
                        self.bytes += n as u64;
                        self.meter.add(n);
                        self.bulk = n >= BULK;
                        (pipe, n, true)
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        pipe.put();
                        return Some(Step::Progress {
                            read: false,
                            wrote: false,
                        });
                    }
                    Err(_) => return Some(Step::Failed(self.from)),
                }
            }
        };
        match splice::drain(&pipe, dst, held) {
            Ok(n) if n == held => {
                pipe.put();
                Some(Step::Progress { read, wrote: true })
            }
            Ok(n) => {
                self.pipe = Some((pipe, held - n));
                Some(Step::Progress { read, wrote: n > 0 })
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.pipe = Some((pipe, held));
                Some(Step::Progress { read, wrote: false })
            }
            Err(_) => Some(Step::Failed(self.to())),
        }
    }

    /// Moves what can be moved without blocking, showing what it reads to `proto`.
    fn step(&mut self, src: &mut Stream, dst: &mut Stream, proto: &mut impl Protocol) -> Step {
        if dst.wants_flush() {
            // TLS records (or a close_notify and FIN) wait for the destination first.
            match dst.try_flush() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Step::Progress {
                        read: false,
                        wrote: false,
                    }
                }
                Err(_) => return Step::Failed(self.to()),
            }
            if self.done {
                return Step::Progress {
                    read: false,
                    wrote: true,
                };
            }
        }
        if self.pipe.is_some() || (self.bulk && self.pending.is_empty() && proto.splice()) {
            if let (Some(s), Some(d)) = (src.plain(), dst.plain()) {
                if let Some(step) = self.step_spliced(s, d) {
                    return step;
                }
            }
        }
        if !self.pending.is_empty() {
            return match dst.try_write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                    if self.pending.is_empty() {
                        // Give the memory back: an idle session holds no buffer.
                        self.pending = Vec::new();
                    }
                    Step::Progress {
                        read: false,
                        wrote: n > 0,
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Step::Progress {
                    read: false,
                    wrote: false,
                },
                Err(_) => Step::Failed(self.to()),
            };
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let n = match src.try_read(&mut buf) {
                Ok(0) => return Step::Eof,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Step::Progress {
                        read: false,
                        wrote: false,
                    }
                }
                Err(_) => return Step::Failed(self.from),
            };
            self.bytes += n as u64;
            self.meter.add(n);
            self.bulk = n >= BULK;
            if proto.observe(self.from, &buf[..n]).is_err() {
                return Step::Violation;
            }
            match dst.try_write(&buf[..n]) {
                Ok(m) => {
                    if m < n {
                        self.pending.extend_from_slice(&buf[m..n]);
                    }
                    Step::Progress {
                        read: true,
                        wrote: m > 0,
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(&buf[..n]);
                    Step::Progress {
                        read: true,
                        wrote: false,
                    }
                }
                Err(_) => Step::Failed(self.to()),
            }
        })
    }
}

/// What one direction's turn in the loop did.
enum Turn {
    /// Not ready (its waker is registered).
    Idle,
    Moved,
    End(End),
}

impl Direction<'_> {
    /// If the direction is ready, one step of it, with its activity booked.
    fn turn(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut Stream,
        dst: &mut Stream,
        proto: &mut impl Protocol,
        activity: &mut Activity,
    ) -> Turn {
        if self.done && !dst.wants_flush() {
            return Turn::Idle;
        }
        match self.poll_ready(cx, src, dst) {
            Poll::Pending => Turn::Idle,
            Poll::Ready(Err(_)) => Turn::End(if self.from == Side::Client {
                End::ClientError
            } else {
                End::ServerError
            }),
            Poll::Ready(Ok(())) => {
                let step = self.step(src, dst, proto);
                match after_step(step, self, dst, proto, activity) {
                    Some(end) => Turn::End(end),
                    None => Turn::Moved,
                }
            }
        }
    }
}

/// Last activity of each side: when warren last read from it, and when it last read
/// from or wrote to it.
#[derive(Debug, Clone, Copy)]
pub struct Activity {
    pub started: Instant,
    read: [Instant; 2],
    any: [Instant; 2],
}

impl Activity {
    pub fn new(now: Instant) -> Activity {
        Activity {
            started: now,
            read: [now; 2],
            any: [now; 2],
        }
    }

    /// Last time `side` sent something.
    pub fn read(&self, side: Side) -> Instant {
        self.read[side as usize]
    }

    /// Last time `side` sent or accepted something.
    pub fn any(&self, side: Side) -> Instant {
        self.any[side as usize]
    }

    fn on_read(&mut self, side: Side, now: Instant) {
        self.read[side as usize] = now;
        self.any[side as usize] = now;
    }

    fn on_write(&mut self, side: Side, now: Instant) {
        self.any[side as usize] = now;
    }
}

/// Forwards until the session ends. Counters are returned rather than updated per
/// packet so the hot loop touches no shared memory.
///
/// The loop is a hand-written poll rather than `select!` over readiness futures: every
/// idle session is parked here, and this way its state is the two directions, one timer
/// and `killed`, with the wakers kept in the sockets' own slots (no waiter node per
/// await, no futures rebuilt per wake-up). Tokio's cooperative budget, which
/// `poll_read_ready` consumes, keeps one busy session from starving the others.
pub async fn forward<P: Protocol>(
    client: &mut Stream,
    server: &mut Stream,
    proto: &mut P,
    meters: [Meter<'_>; 2],
    mut killed: Pin<&mut impl Future<Output = ()>>,
) -> Transfer {
    let [to_server, to_client] = meters;
    let mut c2s = Direction::new(Side::Client, to_server);
    let mut s2c = Direction::new(Side::Server, to_client);
    let mut activity = Activity::new(Instant::now());

    // One timer for the whole session, reset only when it fires early: activity updates
    // an `Instant`, never the timer wheel.
    let far = Duration::from_secs(86400 * 365);
    let sleep = tokio::time::sleep_until(activity.started + far);
    tokio::pin!(sleep);
    if let Some((d, _)) = next_deadline(proto, &activity, &c2s, &s2c) {
        sleep.as_mut().reset(d);
    }

    let end = std::future::poll_fn(|cx| {
        // Once per wake-up, not per turn of the loop below: its waker stays registered.
        if killed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::Killed);
        }
        loop {
            if c2s.done && s2c.done && !client.wants_flush() && !server.wants_flush() {
                return Poll::Ready(End::Closed);
            }
            let mut progressed = false;
            for from in [Side::Client, Side::Server] {
                let turn = match from {
                    Side::Client => c2s.turn(cx, client, server, proto, &mut activity),
                    Side::Server => s2c.turn(cx, server, client, proto, &mut activity),
                };
                match turn {
                    Turn::Idle => {}
                    Turn::Moved => progressed = true,
                    Turn::End(end) => return Poll::Ready(end),
                }
                if proto.deadlines_changed() {
                    rearm(sleep.as_mut(), proto, &activity, &c2s, &s2c, far);
                }
            }
            if sleep.as_mut().poll(cx).is_ready() {
                match next_deadline(proto, &activity, &c2s, &s2c) {
                    Some((d, side)) if d <= Instant::now() => {
                        return Poll::Ready(match side {
                            Side::Client => End::ClientTimeout,
                            Side::Server => End::ServerTimeout,
                        });
                    }
                    Some((d, _)) => sleep.as_mut().reset(d),
                    None => sleep.as_mut().reset(Instant::now() + far),
                }
                // Polled again on the next turn, which registers the new deadline.
                progressed = true;
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await;
    Transfer {
        to_server: c2s.bytes,
        to_client: s2c.bytes,
        end,
        undelivered_to_client: s2c.pending,
    }
}

fn rearm(
    sleep: Pin<&mut tokio::time::Sleep>,
    proto: &impl Protocol,
    activity: &Activity,
    c2s: &Direction,
    s2c: &Direction,
    far: Duration,
) {
    let at =
        next_deadline(proto, activity, c2s, s2c).map_or_else(|| Instant::now() + far, |(d, _)| d);
    sleep.reset(at);
}

/// Books the activity of one step; `Some` when it ends the session.
fn after_step(
    step: Step,
    dir: &mut Direction,
    dst: &mut Stream,
    proto: &mut impl Protocol,
    activity: &mut Activity,
) -> Option<End> {
    match step {
        Step::Progress { read, wrote } => {
            let now = Instant::now();
            if read {
                activity.on_read(dir.from, now);
            }
            if wrote {
                activity.on_write(dir.to(), now);
            }
            None
        }
        Step::Eof => match proto.on_eof(dir.from) {
            OnEof::PassOn => {
                // Half-close: pass the FIN on, keep the other direction open.
                dst.shutdown_write();
                dir.done = true;
                None
            }
            OnEof::End => Some(End::Eof(dir.from)),
        },
        Step::Failed(Side::Client) => Some(End::ClientError),
        Step::Failed(Side::Server) => Some(End::ServerError),
        Step::Violation => Some(End::Violation(dir.from)),
    }
}

/// The earliest deadline and the side it belongs to.
fn next_deadline(
    proto: &impl Protocol,
    activity: &Activity,
    c2s: &Direction,
    s2c: &Direction,
) -> Option<(Instant, Side)> {
    // A side has half-closed when the direction it sends in is done.
    let client = proto
        .deadline(Side::Client, c2s.done, activity)
        .map(|d| (d, Side::Client));
    let server = proto
        .deadline(Side::Server, s2c.done, activity)
        .map(|d| (d, Side::Server));
    match (client, server) {
        (Some(c), Some(s)) => Some(if s.0 < c.0 { s } else { c }),
        (c, s) => c.or(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::tcp::Tcp;

    #[test]
    fn no_timeouts_means_no_deadline() {
        let a = Activity::new(Instant::now());
        let none = crate::config::Timeouts::default();
        let (x, y) = (AtomicU64::new(0), AtomicU64::new(0));
        let m = Meter {
            server: &x,
            frontend: &y,
        };
        let d = next_deadline(
            &Tcp {
                frontend: &none,
                backend: &none,
                splice: false,
            },
            &a,
            &Direction::new(Side::Client, m),
            &Direction::new(Side::Server, m),
        );
        assert!(d.is_none());
    }
}
