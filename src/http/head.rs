//! Request and response heads: found in the read buffer, parsed (httparse), checked, and
//! kept as ranges into the bytes that were read, so forwarding copies each header once.
//!
//! What is refused, and why (HAProxy refuses the same, with 400): a head larger than
//! `tune.bufsize`; a bare CR or LF (a line ending one hop reads differently from the next
//! is how requests are smuggled); invalid header names or values; a `Content-Length` that
//! is not a number or differs between copies; `Content-Length` and `Transfer-Encoding`
//! together, or a `Transfer-Encoding` that does not end in `chunked` (a request whose end
//! two parsers could see in different places).

use std::ops::Range;

use bytes::Bytes;

/// Most header lines a head may have (HAProxy's `tune.http.maxhdr`).
pub const MAX_HEADERS: usize = 101;

/// How the end of a message body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes (responses only).
    UntilClose,
}

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// More than `bufsize` bytes without the end of the head.
    TooLarge,
    /// Not HTTP/1.x, or broken in a way that could be read two ways; the text says how.
    Invalid(&'static str),
}

/// A parsed head; every range points into `raw`.
#[derive(Debug, Clone)]
pub struct Head {
    pub raw: Bytes,
    /// Request: method; response: the status code's text.
    pub first: Range<usize>,
    /// Request: the target (URI); response: the reason phrase.
    pub second: Range<usize>,
    /// HTTP/1.`minor`.
    pub minor: u8,
    /// Response status (0 for requests).
    pub status: u16,
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    pub framing: Framing,
    /// `Connection: close` (or HTTP/1.0 without `keep-alive`).
    pub close: bool,
    /// `Connection: upgrade` with an `Upgrade` header: the connection becomes a tunnel
    /// once the server agrees (101).
    pub upgrade: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// The upgrade asked for (request) or agreed to (response) is to WebSocket.
    pub websocket: bool,
}

impl Head {
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.raw[self.first.clone()]).unwrap_or("")
    }

    pub fn target(&self) -> &str {
        std::str::from_utf8(&self.raw[self.second.clone()]).unwrap_or("")
    }

    pub fn reason(&self) -> &[u8] {
        &self.raw[self.second.clone()]
    }

    /// (name, value) pairs as received.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Looks for a complete request head at the start of `buf`: `Ok(None)` when more bytes
/// are needed (and `buf` is still under `limit`).
pub fn request(buf: &[u8], limit: usize) -> Result<Option<Head>, HeadError> {
    parse(buf, limit, Kind::Request)
}

/// Looks for a complete response head; `head_request` says the request was `HEAD`, whose
/// response never has a body.
pub fn response(buf: &[u8], limit: usize, head_request: bool) -> Result<Option<Head>, HeadError> {
    parse(buf, limit, Kind::Response { head_request })
}

#[derive(Clone, Copy)]
enum Kind {
    Request,
    Response { head_request: bool },
}

fn parse(buf: &[u8], limit: usize, kind: Kind) -> Result<Option<Head>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let window = &buf[..buf.len().min(limit)];
    let base = window.as_ptr() as usize;
    let range = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let (len, first, second, minor, status, raw_headers) = match kind {
        Kind::Request => {
            let mut req = httparse::Request::new(&mut slots);
            let len = match req.parse(window) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return partial(buf, limit),
                Err(e) => return Err(HeadError::Invalid(describe(e))),
            };
            let method = req.method.unwrap_or("");
            let path = req.path.unwrap_or("");
            (
                len,
                range(method.as_bytes()),
                range(path.as_bytes()),
                req.version.unwrap_or(1),
                0,
                req.headers
                    .iter()
                    .map(|h| (range(h.name.as_bytes()), range(h.value)))
                    .collect::<Vec<_>>(),
            )
        }
        Kind::Response { .. } => {
            let mut res = httparse::Response::new(&mut slots);
            let len = match res.parse(window) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return partial(buf, limit),
                Err(e) => return Err(HeadError::Invalid(describe(e))),
            };
            let reason = res.reason.unwrap_or("");
            let reason_range = if reason.is_empty() {
                0..0
            } else {
                range(reason.as_bytes())
            };
            (
                len,
                0..0,
                reason_range,
                res.version.unwrap_or(1),
                res.code.unwrap_or(0),
                res.headers
                    .iter()
                    .map(|h| (range(h.name.as_bytes()), range(h.value)))
                    .collect::<Vec<_>>(),
            )
        }
    };
    let head = &buf[..len];
    bare_line_endings(head)?;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = minor == 0;
    let mut connection_upgrade = false;
    let mut upgrade = false;
    let mut expect_continue = false;
    let mut websocket = false;
    let mut websocket_key = false;
    for (n, v) in &raw_headers {
        let name = &head[n.clone()];
        let value = &head[v.clone()];
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in value.split(|b| *b == b',') {
                let part = part.trim_ascii();
                if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                    return Err(HeadError::Invalid("invalid Content-Length"));
                }
                let n: u64 = std::str::from_utf8(part)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(HeadError::Invalid("invalid Content-Length"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HeadError::Invalid("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            // Only the last coding says whether the body is chunked.
            chunked = value
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .rfind(|c| !c.is_empty())
                .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                    close = false;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
            websocket = value
                .split(|b| *b == b',')
                .any(|p| p.trim_ascii().eq_ignore_ascii_case(b"websocket"));
        } else if name.eq_ignore_ascii_case(b"sec-websocket-key")
            || name.eq_ignore_ascii_case(b"sec-websocket-accept")
        {
            websocket_key = true;
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }
    // HAProxy's rule: a WebSocket handshake without its key (request) or its accept
    // (101 response) is not one.
    let websocket = websocket && upgrade && connection_upgrade;
    if websocket && !websocket_key && (matches!(kind, Kind::Request) || status == 101) {
        return Err(HeadError::Invalid(
            "WebSocket upgrade without its Sec-WebSocket key",
        ));
    }
    let framing = match kind {
        Kind::Request => {
            if transfer_encoding && content_length.is_some() {
                return Err(HeadError::Invalid(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if transfer_encoding && (minor == 0 || !chunked) {
                return Err(HeadError::Invalid(
                    "Transfer-Encoding must end with chunked (HTTP/1.1 only)",
                ));
            }
            match (chunked, content_length) {
                (true, _) => Framing::Chunked,
                (false, Some(0)) | (false, None) => Framing::Empty,
                (false, Some(n)) => Framing::Length(n),
            }
        }
        Kind::Response { head_request } => {
            if head_request || status < 200 || status == 204 || status == 304 {
                Framing::Empty
            } else if transfer_encoding {
                // RFC 9112 6.3: Transfer-Encoding wins over Content-Length.
                if chunked {
                    Framing::Chunked
                } else {
                    Framing::UntilClose
                }
            } else {
                match content_length {
                    Some(0) => Framing::Empty,
                    Some(n) => Framing::Length(n),
                    None => Framing::UntilClose,
                }
            }
        }
    };
    Ok(Some(Head {
        raw: Bytes::copy_from_slice(head),
        first,
        second,
        minor,
        status,
        headers: raw_headers,
        framing,
        close,
        upgrade: upgrade && connection_upgrade,
        expect_continue,
        websocket,
    }))
}

fn partial(buf: &[u8], limit: usize) -> Result<Option<Head>, HeadError> {
    if buf.len() >= limit {
        Err(HeadError::TooLarge)
    } else {
        Ok(None)
    }
}

/// Every LF must follow a CR and every CR precede an LF.
fn bare_line_endings(head: &[u8]) -> Result<(), HeadError> {
    for (i, b) in head.iter().enumerate() {
        match b {
            b'\n' if i == 0 || head[i - 1] != b'\r' => {
                return Err(HeadError::Invalid("bare LF in the head"))
            }
            b'\r' if head.get(i + 1) != Some(&b'\n') => {
                return Err(HeadError::Invalid("bare CR in the head"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Result<Option<Head>, HeadError> {
        request(text.as_bytes(), 16384)
    }

    #[test]
    fn a_plain_request() {
        let h =
            req("GET /api/overview HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zzpn\r\n\r\nrest")
                .unwrap_or_else(|e| panic!("{e:?}"))
                .unwrap_or_else(|| panic!("complete"));
        assert_eq!(
            (h.method(), h.target(), h.minor),
            ("GET", "/api/overview", 1)
        );
        assert_eq!(h.header("host"), Some(&b"x"[..]));
        assert_eq!(h.framing, Framing::Empty);
        assert!(!h.close && !h.upgrade);
        assert_eq!(
            h.raw.len(),
            "GET /api/overview HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zzpn\r\n\r\n".len()
        );
    }

    #[test]
    fn partial_then_too_large() {
        assert_eq!(
            req("GET / HTTP/1.1\r\nHost: x\r\n").map(|h| h.is_none()),
            Ok(true)
        );
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(200));
        assert_eq!(
            request(big.as_bytes(), 100).err(),
            Some(HeadError::TooLarge)
        );
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nX\x01: x\r\n\r\n",
        ] {
            assert!(
                matches!(req(bad), Err(HeadError::Invalid(_))),
                "{bad:?} was accepted"
            );
        }
        let h = req("POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("complete"));
        assert_eq!(h.framing, Framing::Length(7));
    }

    #[test]
    fn a_websocket_upgrade_needs_its_key() {
        assert!(
            req("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").is_err()
        );
    }

    #[test]
    fn connection_and_upgrade() {
        let h = req(
            "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: a\r\n\r\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|| panic!("complete"));
        assert!(h.upgrade && !h.close);
        let h = req("GET / HTTP/1.0\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("complete"));
        assert!(h.close);
        let h = req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("complete"));
        assert!(!h.close);
    }

    #[test]
    fn response_framing() {
        let res = |t: &str, head: bool| {
            response(t.as_bytes(), 16384, head)
                .unwrap_or_else(|e| panic!("{e:?}"))
                .unwrap_or_else(|| panic!("complete"))
        };
        assert_eq!(
            res("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false).framing,
            Framing::Length(3)
        );
        assert_eq!(
            res("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).framing,
            Framing::Empty
        );
        assert_eq!(
            res("HTTP/1.1 204 No Content\r\n\r\n", false).framing,
            Framing::Empty
        );
        assert_eq!(
            res("HTTP/1.1 200 OK\r\n\r\n", false).framing,
            Framing::UntilClose
        );
        assert_eq!(
            res(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                false
            )
            .framing,
            Framing::Chunked
        );
        let h = res(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\r\n",
            false,
        );
        assert_eq!((h.status, h.upgrade), (101, true));
    }
}
