//! The forwarding loop: bytes both ways between a client and its server, until both
//! sides have closed, a timeout strikes, or the session is killed.
//!
//! Memory: an idle session holds no user-space buffer. Data is read into one buffer per
//! worker thread and written straight on; only when the destination cannot take it all
//! (back-pressure) is the remainder copied into a per-direction `Vec`, which is freed as
//! soon as it drains. So 10,000 quiet AMQP consumers cost sockets, not buffers.
//!
//! Timeouts follow HAProxy's tunnel semantics: a side's inactivity timer is refreshed by
//! reading from it and by writing to it; `timeout tunnel` replaces both once connected;
//! `timeout client-fin`/`server-fin` apply to a side that has half-closed. A half-close
//! (FIN) is passed on with `shutdown(SHUT_WR)` and the other direction keeps flowing.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// Size of the per-thread transfer buffer. Larger reads mean fewer syscalls on bulk
/// transfers; the benchmark (`bench/`) is where this number is argued.
const BUF_SIZE: usize = 64 * 1024;

thread_local! {
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; BUF_SIZE].into_boxed_slice());
}

/// The inactivity timers of one session, resolved from its frontend and backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
}

/// How a forwarding loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed their sending half.
    Closed,
    ClientTimeout,
    ServerTimeout,
    /// The client reset the connection or an I/O error struck on its socket.
    ClientError,
    ServerError,
    /// `killed` resolved (shutdown-sessions, process stopping).
    Killed,
}

/// Bytes moved and how it ended.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub to_server: u64,
    pub to_client: u64,
    pub end: End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// One direction of the session.
struct Direction {
    from: Side,
    /// Bytes read but not yet written (only under back-pressure).
    pending: Vec<u8>,
    /// Set once the source sent FIN and everything was passed on.
    done: bool,
    bytes: u64,
}

/// What one step of a direction observed.
enum Step {
    /// Made progress (or found nothing to do after a spurious wake-up).
    Progress { read: bool, wrote: bool },
    /// Source reached EOF and the FIN was passed on.
    Eof,
    /// I/O error on this side.
    Failed(Side),
}

impl Direction {
    fn new(from: Side) -> Direction {
        Direction { from, pending: Vec::new(), done: false, bytes: 0 }
    }

    fn to(&self) -> Side {
        match self.from {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// Waits until this direction can make progress: the source is readable, or (when
    /// data is pending) the destination is writable.
    async fn ready(&self, src: &TcpStream, dst: &TcpStream) -> io::Result<()> {
        if self.pending.is_empty() {
            src.readable().await
        } else {
            dst.writable().await
        }
    }

    /// Moves what can be moved without blocking.
    fn step(&mut self, src: &TcpStream, dst: &TcpStream) -> Step {
        if !self.pending.is_empty() {
            return match dst.try_write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                    if self.pending.is_empty() {
                        // Give the memory back: an idle session holds no buffer.
                        self.pending = Vec::new();
                    }
                    Step::Progress { read: false, wrote: n > 0 }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Step::Progress { read: false, wrote: false },
                Err(_) => Step::Failed(self.to()),
            };
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let n = match src.try_read(&mut buf) {
                Ok(0) => {
                    // FIN from the source: pass it on, keep the other direction open.
                    let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
                    self.done = true;
                    return Step::Eof;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Progress { read: false, wrote: false },
                Err(_) => return Step::Failed(self.from),
            };
            self.bytes += n as u64;
            match dst.try_write(&buf[..n]) {
                Ok(m) => {
                    if m < n {
                        self.pending.extend_from_slice(&buf[m..n]);
                    }
                    Step::Progress { read: true, wrote: m > 0 }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(&buf[..n]);
                    Step::Progress { read: true, wrote: false }
                }
                Err(_) => Step::Failed(self.to()),
            }
        })
    }
}

/// Last activity per side, and the deadline it implies.
struct Activity {
    client: Instant,
    server: Instant,
}

impl Activity {
    fn touch(&mut self, side: Side, now: Instant) {
        match side {
            Side::Client => self.client = now,
            Side::Server => self.server = now,
        }
    }
}

impl Timers {
    /// The inactivity limit of one side, given whether it has half-closed.
    fn limit(&self, side: Side, half_closed: bool) -> Option<Duration> {
        let (normal, fin) = match side {
            Side::Client => (self.client, self.client_fin),
            Side::Server => (self.server, self.server_fin),
        };
        let normal = self.tunnel.or(normal);
        if half_closed {
            fin.or(normal)
        } else {
            normal
        }
    }
}

/// Forwards until the session ends. `c2s_done`/`s2c_done` state is local; counters are
/// returned rather than updated per packet so the hot loop touches no shared memory.
pub async fn forward(client: &TcpStream, server: &TcpStream, timers: &Timers, killed: impl Future<Output = ()>) -> Transfer {
    tokio::pin!(killed);
    let mut c2s = Direction::new(Side::Client);
    let mut s2c = Direction::new(Side::Server);
    let start = Instant::now();
    let mut activity = Activity { client: start, server: start };

    // One timer for the whole session, reset only when it fires early: activity updates
    // an `Instant`, never the timer wheel.
    let far = Duration::from_secs(86400 * 365);
    let sleep = tokio::time::sleep_until(start + far);
    tokio::pin!(sleep);
    let mut deadline = next_deadline(timers, &activity, &c2s, &s2c);
    sleep.as_mut().reset(deadline.map_or(start + far, |(d, _)| d));

    let end = loop {
        if c2s.done && s2c.done {
            break End::Closed;
        }
        tokio::select! {
            biased;
            _ = &mut killed => break End::Killed,
            r = c2s.ready(client, server), if !c2s.done => {
                if r.is_err() { break End::ClientError; }
                match c2s.step(client, server) {
                    Step::Progress { read, wrote } => {
                        let now = Instant::now();
                        if read { activity.touch(Side::Client, now); }
                        if wrote { activity.touch(Side::Server, now); }
                    }
                    Step::Eof => {}
                    Step::Failed(Side::Client) => break End::ClientError,
                    Step::Failed(Side::Server) => break End::ServerError,
                }
            }
            r = s2c.ready(server, client), if !s2c.done => {
                if r.is_err() { break End::ServerError; }
                match s2c.step(server, client) {
                    Step::Progress { read, wrote } => {
                        let now = Instant::now();
                        if read { activity.touch(Side::Server, now); }
                        if wrote { activity.touch(Side::Client, now); }
                    }
                    Step::Eof => {}
                    Step::Failed(Side::Client) => break End::ClientError,
                    Step::Failed(Side::Server) => break End::ServerError,
                }
            }
            _ = &mut sleep => {
                deadline = next_deadline(timers, &activity, &c2s, &s2c);
                match deadline {
                    Some((d, side)) if d <= Instant::now() => {
                        break match side {
                            Side::Client => End::ClientTimeout,
                            Side::Server => End::ServerTimeout,
                        };
                    }
                    Some((d, _)) => sleep.as_mut().reset(d),
                    None => sleep.as_mut().reset(Instant::now() + far),
                }
            }
        }
    };
    Transfer { to_server: c2s.bytes, to_client: s2c.bytes, end }
}

/// The earliest inactivity deadline and the side it belongs to.
fn next_deadline(timers: &Timers, activity: &Activity, c2s: &Direction, s2c: &Direction) -> Option<(Instant, Side)> {
    // A side has half-closed when the direction it sends in is done.
    let client = timers.limit(Side::Client, c2s.done).map(|t| (activity.client + t, Side::Client));
    let server = timers.limit(Side::Server, s2c.done).map(|t| (activity.server + t, Side::Server));
    match (client, server) {
        (Some(c), Some(s)) => Some(if s.0 < c.0 { s } else { c }),
        (c, s) => c.or(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_replaces_client_and_server_but_not_fin() {
        let t = Timers {
            client: Some(Duration::from_secs(1)),
            server: Some(Duration::from_secs(2)),
            tunnel: Some(Duration::from_secs(60)),
            client_fin: Some(Duration::from_secs(3)),
            server_fin: None,
        };
        assert_eq!(t.limit(Side::Client, false), Some(Duration::from_secs(60)));
        assert_eq!(t.limit(Side::Server, false), Some(Duration::from_secs(60)));
        assert_eq!(t.limit(Side::Client, true), Some(Duration::from_secs(3)));
        assert_eq!(t.limit(Side::Server, true), Some(Duration::from_secs(60)));
    }

    #[test]
    fn no_timeouts_means_no_deadline() {
        let now = Instant::now();
        let a = Activity { client: now, server: now };
        let d = next_deadline(&Timers::default(), &a, &Direction::new(Side::Client), &Direction::new(Side::Server));
        assert!(d.is_none());
    }
}
