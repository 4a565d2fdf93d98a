//! One side of a terminated session (the client, or the node): its socket, what was read
//! and not yet cut into frames, and what waits to be written.
//!
//! The session's loop waits on readiness (`&self`), then reads and writes without blocking
//! (`&mut self`), so one task drives both sides and both directions without splitting the
//! sockets. Buffers exist only while they hold bytes: an idle side holds none.

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::task::Poll;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::amqp::frame::FrameError;
use crate::amqp::terminate::wire::{self, RawFrame};
use crate::net::Stream;

/// How much one read asks for.
const READ_CHUNK: usize = 16 * 1024;

/// Above this many bytes waiting to be written to a side, warren stops reading what would
/// be written there (back-pressure instead of buffering).
pub const HIGH_WATER: usize = 512 * 1024;

pub struct Side {
    pub stream: Stream,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    /// Largest frame accepted from this side.
    pub frame_max: u32,
    /// Last time anything was read from this side (liveness).
    pub last_read: Instant,
    /// Last time anything was written to this side (when to send a heartbeat).
    pub last_write: Instant,
    /// Bytes read and written, for the log line and the stats.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The peer closed (EOF) or the socket failed.
    pub gone: bool,
}

/// Why a side stopped.
#[derive(Debug)]
pub enum SideError {
    Io(io::Error),
    Eof,
    Frame(FrameError),
    Timeout,
}

impl std::fmt::Display for SideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SideError::Io(e) => write!(f, "{e}"),
            SideError::Eof => f.write_str("connection closed"),
            SideError::Frame(e) => write!(f, "{e}"),
            SideError::Timeout => f.write_str("no answer in time"),
        }
    }
}

/// One read into the spare room of `buf`. A short read shows the socket was drained, so
/// tokio's readiness is cleared at once (as the forwarding loop's reads do) instead of
/// costing another wake-up and a `recv` that returns `EAGAIN`.
fn read_plain(tcp: &tokio::net::TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let mut short = None;
    let result = tcp.try_io(tokio::io::Interest::READABLE, || {
        let spare = buf.spare_capacity_mut();
        let room = spare.len();
        let n = socket2::SockRef::from(tcp).recv(spare)?;
        // SAFETY: `recv` initialised the first `n` bytes of the spare room.
        unsafe { buf.set_len(buf.len() + n) };
        if n > 0 && n < room {
            short = Some(n);
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (result, short) {
        (_, Some(n)) => Ok(n),
        (r, None) => r,
    }
}

impl Side {
    pub fn new(stream: Stream, frame_max: u32) -> Side {
        let now = Instant::now();
        Side {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            frame_max,
            last_read: now,
            last_write: now,
            bytes_in: 0,
            bytes_out: 0,
            gone: false,
        }
    }

    /// Waits until the socket can be read (if `read`) or written (if `write`); returns
    /// which. Never resolves when neither is wanted.
    pub async fn ready(&self, read: bool, write: bool) -> (bool, bool) {
        poll_fn(|cx| {
            let r = read && self.stream.poll_read_ready(cx).is_ready();
            let w = write && self.stream.poll_write_ready(cx).is_ready();
            if r || w {
                Poll::Ready((r, w))
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Reads what is there into `rbuf` without blocking. `Ok(0)` means nothing was there.
    pub fn read_some(&mut self) -> Result<usize, SideError> {
        self.rbuf.reserve(READ_CHUNK);
        let result = match &mut self.stream {
            Stream::Plain(tcp) => read_plain(tcp, &mut self.rbuf),
            tls => {
                let start = self.rbuf.len();
                self.rbuf.resize(start + READ_CHUNK, 0);
                let r = tls.try_read(&mut self.rbuf[start..]);
                self.rbuf.truncate(start + *r.as_ref().unwrap_or(&0));
                r
            }
        };
        match result {
            Ok(0) => {
                self.gone = true;
                Err(SideError::Eof)
            }
            Ok(n) => {
                self.bytes_in += n as u64;
                self.last_read = Instant::now();
                Ok(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
            Err(e) => {
                self.gone = true;
                Err(SideError::Io(e))
            }
        }
    }

    /// The next whole frame read, if one is complete.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, SideError> {
        wire::cut(&mut self.rbuf, self.frame_max).map_err(SideError::Frame)
    }

    /// Writes what the socket takes without blocking.
    pub fn write_some(&mut self) -> Result<(), SideError> {
        while !self.wbuf.is_empty() {
            match self.stream.try_write(&self.wbuf) {
                Ok(0) => {
                    self.gone = true;
                    return Err(SideError::Eof);
                }
                Ok(n) => {
                    self.bytes_out += n as u64;
                    self.last_write = Instant::now();
                    self.wbuf.advance(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.gone = true;
                    return Err(SideError::Io(e));
                }
            }
        }
        if self.stream.wants_flush() {
            match self.stream.try_flush() {
                Err(e) if e.kind() != ErrorKind::WouldBlock => {
                    self.gone = true;
                    return Err(SideError::Io(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Gives back the buffers' memory when they hold nothing. Called on the session's
    /// timer, not after every read or write: a busy side keeps reusing its buffers, an idle
    /// one holds none a moment later (thousands of quiet consumers are the common case).
    pub fn release_idle(&mut self) {
        wire::shrink_if_empty(&mut self.rbuf);
        wire::shrink_if_empty(&mut self.wbuf);
    }

    /// Something waits to be written (or flushed, under TLS).
    pub fn wants_write(&self) -> bool {
        !self.wbuf.is_empty() || self.stream.wants_flush()
    }

    /// Writes everything buffered, waiting for the socket as needed, until `deadline`.
    pub async fn flush_until(&mut self, deadline: Instant) -> Result<(), SideError> {
        let written = async {
            while !self.wbuf.is_empty() {
                let n = self.stream.write(&self.wbuf).await.map_err(SideError::Io)?;
                if n == 0 {
                    return Err(SideError::Eof);
                }
                self.bytes_out += n as u64;
                self.wbuf.advance(n);
            }
            self.stream.flush().await.map_err(SideError::Io)?;
            self.last_write = Instant::now();
            Ok(())
        };
        match tokio::time::timeout_at(deadline, written).await {
            Ok(r) => r.inspect_err(|_| self.gone = true),
            Err(_) => Err(SideError::Timeout),
        }
    }

    /// Reads until a whole frame is there (heartbeats included), waiting until `deadline`.
    pub async fn read_frame(&mut self, deadline: Instant) -> Result<RawFrame, SideError> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(frame);
            }
            self.rbuf.reserve(READ_CHUNK);
            let n = match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rbuf))
                .await
            {
                Err(_) => return Err(SideError::Timeout),
                Ok(Err(e)) => {
                    self.gone = true;
                    return Err(SideError::Io(e));
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                self.gone = true;
                return Err(SideError::Eof);
            }
            self.bytes_in += n as u64;
            self.last_read = Instant::now();
        }
    }

    /// The next frame that is not a heartbeat.
    pub async fn read_method(&mut self, deadline: Instant) -> Result<RawFrame, SideError> {
        loop {
            let frame = self.read_frame(deadline).await?;
            if !frame.is_heartbeat() {
                return Ok(frame);
            }
        }
    }
}
