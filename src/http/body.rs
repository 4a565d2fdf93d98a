//! Message bodies: where they end (`Content-Length`, chunked, or the server's close) and
//! copying them from one side to the other through the session's buffer, bounded by each
//! side's inactivity timeout. Chunked bodies pass unchanged; they are parsed only to find
//! their end, so the next request on the connection starts where it really starts.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::head::Framing;
use crate::net::Stream;

/// Bytes read from a socket at a time.
pub const READ_CHUNK: usize = 16 * 1024;

/// Where the chunked parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size (`digits` read so far).
    Size {
        size: u64,
        digits: u8,
    },
    /// After `;`: chunk extensions up to the CR.
    Extension {
        size: u64,
    },
    /// The LF after a size line.
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// Start of a trailer line: CR here ends the message.
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Follows a chunked body to its end.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl Chunked {
    /// Reads `data`; `Ok(Some(n))` when the body ends after its first `n` bytes,
    /// `Ok(None)` when all of it belongs to the body and more is to come.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, &'static str> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            self.state = match self.state {
                State::Size { size, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= 15 {
                            return Err("chunk size too large");
                        }
                        let v = (b as char).to_digit(16).unwrap_or(0) as u64;
                        State::Size {
                            size: size * 16 + v,
                            digits: digits + 1,
                        }
                    }
                    b';' | b' ' | b'\t' if digits > 0 => State::Extension { size },
                    b'\r' if digits > 0 => State::SizeLf { size },
                    _ => return Err("invalid chunk size"),
                },
                State::Extension { size } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err("bare LF in a chunk size line"),
                    _ => State::Extension { size },
                },
                State::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => State::TrailerStart,
                    (b'\n', n) => State::Data { left: n },
                    _ => return Err("bare CR in a chunk size line"),
                },
                State::Data { left } => {
                    let take = (left).min((data.len() - i) as u64) as usize;
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { size: 0, digits: 0 },
                State::DataCr | State::DataLf => return Err("chunk data not followed by CRLF"),
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err("bare LF in the trailers"),
                    _ => State::TrailerLine,
                },
                State::TrailerLine => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err("bare LF in the trailers"),
                    _ => State::TrailerLine,
                },
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::EndLf if b == b'\n' => State::Done,
                State::TrailerLf | State::EndLf => return Err("bare CR in the trailers"),
                State::Done => return Ok(Some(i)),
            };
            i += 1;
            if self.state == State::Done {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// Why a body copy stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyError {
    /// The sending side closed or failed before the end of the body.
    ReadFailed,
    ReadTimeout,
    WriteFailed,
    WriteTimeout,
    /// A chunked body that does not parse.
    Malformed,
}

/// Copies one body from `from` (whose already-read bytes are in `buf`) to `to`. Bytes
/// after the body stay in `buf`. Returns the bytes written.
pub async fn copy(
    from: &mut Stream,
    buf: &mut BytesMut,
    to: &mut Stream,
    framing: Framing,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
) -> Result<u64, CopyError> {
    let mut left = match framing {
        Framing::Empty => return Ok(0),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    let mut chunked = Chunked::default();
    let mut sent = 0u64;
    loop {
        if !buf.is_empty() {
            let (take, done) = match framing {
                Framing::Length(_) => {
                    let take = (buf.len() as u64).min(left) as usize;
                    (take, take as u64 == left)
                }
                Framing::Chunked => match chunked.feed(buf) {
                    Ok(Some(n)) => (n, true),
                    Ok(None) => (buf.len(), false),
                    Err(_) => return Err(CopyError::Malformed),
                },
                _ => (buf.len(), false),
            };
            write(to, &buf[..take], write_timeout)
                .await
                .map_err(|timed_out| {
                    if timed_out {
                        CopyError::WriteTimeout
                    } else {
                        CopyError::WriteFailed
                    }
                })?;
            buf.advance(take);
            sent += take as u64;
            if let Framing::Length(_) = framing {
                left -= take as u64;
            }
            if done {
                return Ok(sent);
            }
        }
        match read(from, buf, read_timeout).await {
            Ok(0) if framing == Framing::UntilClose => return Ok(sent),
            Ok(0) => return Err(CopyError::ReadFailed),
            Ok(_) => {}
            Err(true) => return Err(CopyError::ReadTimeout),
            Err(false) => return Err(CopyError::ReadFailed),
        }
    }
}

/// Reads more into `buf`; `Err(true)` on timeout, `Err(false)` on an error.
pub async fn read(
    from: &mut Stream,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
) -> Result<usize, bool> {
    buf.reserve(READ_CHUNK);
    let r = match timeout {
        Some(t) => match tokio::time::timeout(t, from.read_buf(buf)).await {
            Ok(r) => r,
            Err(_) => return Err(true),
        },
        None => from.read_buf(buf).await,
    };
    r.map_err(|_| false)
}

/// Writes all of `data` and flushes; `Err(true)` on timeout, `Err(false)` on an error.
pub async fn write(to: &mut Stream, data: &[u8], timeout: Option<Duration>) -> Result<(), bool> {
    let io = async {
        to.write_all(data).await?;
        to.flush().await
    };
    match timeout {
        Some(t) => match tokio::time::timeout(t, io).await {
            Ok(r) => r.map_err(|_| false),
            Err(_) => Err(true),
        },
        None => io.await.map_err(|_| false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_end_where_they_end() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: a\r\n\r\nGET /next";
        assert_eq!(Chunked::default().feed(body), Ok(Some(body.len() - 9)));
        // Fed one byte at a time, the end is found at the same place.
        let mut c = Chunked::default();
        let mut end = None;
        for (i, b) in body.iter().enumerate() {
            if let Some(n) = c
                .feed(std::slice::from_ref(b))
                .unwrap_or_else(|e| panic!("{e}"))
            {
                end = Some(i + n);
                break;
            }
        }
        assert_eq!(end, Some(body.len() - 9));
        assert_eq!(Chunked::default().feed(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(Chunked::default().feed(b"10\r\n0123456789"), Ok(None));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"4\nWiki",
            b"4\r\nWikiXX",
            b"fffffffffffffffff\r\n",
            b"0\r\n\n",
        ] {
            assert!(Chunked::default().feed(bad).is_err(), "{bad:?}");
        }
    }
}
