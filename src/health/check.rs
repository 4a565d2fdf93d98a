//! The probes themselves: one attempt against one server, reported with HAProxy's
//! layered status codes. Scheduling and state live in `checker.rs` and `state.rs`.
//!
//! Every probe closes cleanly so that checks every `inter` do not fill RabbitMQ's log:
//! the AMQP check closes its socket right after `connection.start` (what the spec tells a
//! client that will not go on to do), the login check ends with `connection.close` /
//! `close-ok`, the HTTP check asks for `Connection: close`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::CheckStatus;
use crate::amqp::frame::{FrameTracker, PROTOCOL_HEADER};
use crate::amqp::handshake::{Handshake, Seen};
use crate::amqp::methods;
use crate::config::{BodyExpect, CheckKind, HttpCheck, ProxyProtocol};
use crate::net::{Stream, Tls};
use crate::proxy_protocol;

/// The result of one probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: CheckStatus,
    /// What went wrong, in words (the OS error, the server's answer), for the DOWN log line.
    pub info: String,
    pub duration: Duration,
}

/// How long each part of a probe may take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub connect: Duration,
    /// For the answer once connected (L7 checks).
    pub read: Duration,
}

/// TLS for a check (`check-ssl`, or `ssl` on the server): the connector and the name.
pub type CheckTls = (
    std::sync::Arc<rustls::ClientConfig>,
    rustls_pki_types::ServerName<'static>,
);

/// Runs the probe `kind` against `addr`, first sending a PROXY header when `proxy` says
/// so (`check-send-proxy`: a node with `proxy_protocol = true` refuses connections without),
/// then completing a TLS handshake when `tls` is set (a failed one is `L6RSP`).
pub async fn probe(
    kind: &CheckKind,
    addr: SocketAddr,
    budget: Budget,
    proxy: Option<ProxyProtocol>,
    tls: Option<&CheckTls>,
) -> Probe {
    let started = Instant::now();
    let (status, info) = match kind {
        CheckKind::TcpCheck(script) => {
            super::tcp_check::run(script, addr, budget, proxy, tls).await
        }
        _ => match open(addr, budget, proxy, tls).await {
            Err(failed) => failed,
            Ok(stream) => judge(kind, stream, addr, budget, tls.is_some()).await,
        },
    };
    Probe {
        status,
        info,
        duration: started.elapsed(),
    }
}

/// Connects, sends the PROXY header if asked, completes the TLS handshake if asked.
pub(super) async fn open(
    addr: SocketAddr,
    budget: Budget,
    proxy: Option<ProxyProtocol>,
    tls: Option<&CheckTls>,
) -> Result<Stream, (CheckStatus, String)> {
    let connected = match (connect(addr, budget.connect).await, proxy) {
        (Ok(mut stream), Some(version)) => {
            let (local, peer) = (stream.local_addr(), stream.peer_addr());
            let header = match (local, peer) {
                (Ok(l), Ok(p)) => proxy_protocol::encode(version.into(), l, p),
                _ => Vec::new(),
            };
            match stream.write_all(&header).await {
                Ok(()) => Ok(stream),
                Err(e) => Err((CheckStatus::L4Con, e.to_string())),
            }
        }
        (result, _) => result,
    };
    let connected = match (connected, tls) {
        (Ok(stream), Some((config, name))) => {
            match tokio::time::timeout(
                budget.connect,
                Box::pin(Tls::connect(stream, config, name.clone())),
            )
            .await
            {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err((CheckStatus::L6Rsp, format!("TLS handshake failed: {e}"))),
                Err(_) => Err((
                    CheckStatus::L6TimeOut,
                    format!("no TLS handshake within {} ms", budget.connect.as_millis()),
                )),
            }
        }
        (connected, _) => connected.map(Stream::Plain),
    };
    connected
}

/// The application-level part of a check on an open connection.
async fn judge(
    kind: &CheckKind,
    stream: Stream,
    addr: SocketAddr,
    budget: Budget,
    tls: bool,
) -> (CheckStatus, String) {
    match kind {
        CheckKind::Tcp | CheckKind::TcpCheck(_) => {
            // Linger 0 (RST on close, which never blocks) as HAProxy does for TCP
            // checks: no TIME_WAIT pile-up at one check every `inter` per server.
            let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
            let status = if tls {
                CheckStatus::L6Ok
            } else {
                CheckStatus::L4Ok
            };
            (status, String::new())
        }
        CheckKind::Amqp => within(budget.read, amqp_start(stream)).await,
        CheckKind::AmqpLogin {
            user,
            password,
            vhost,
        } => within(budget.read, amqp_login(stream, user, &password.0, vhost)).await,
        CheckKind::Http(http) => within(budget.read, http_check(stream, addr, http)).await,
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, (CheckStatus, String)> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err((CheckStatus::L4Con, e.to_string())),
        Err(_) => Err((
            CheckStatus::L4TimeOut,
            format!("no connection within {} ms", timeout.as_millis()),
        )),
    }
}

/// An L7 probe that does not answer in time is `L7TOUT`: the node accepted TCP (the
/// kernel does that even for a frozen process) but the application is silent.
async fn within(
    limit: Duration,
    check: impl std::future::Future<Output = (CheckStatus, String)>,
) -> (CheckStatus, String) {
    match tokio::time::timeout(limit, check).await {
        Ok(result) => result,
        Err(_) => (
            CheckStatus::L7TimeOut,
            format!("no answer within {} ms", limit.as_millis()),
        ),
    }
}

/// Reads frames until a channel-0 method the check is waiting for (or a close) arrives.
async fn next_method(
    stream: &mut Stream,
    tracker: &mut FrameTracker,
    hs: &mut Handshake,
) -> Result<Seen, String> {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the node closed the connection".into());
        }
        let mut seen = None;
        tracker
            .feed(&buf[..n], |f| {
                if let (Some(p), None) = (f.payload, &seen) {
                    seen = Some(hs.server_method(p));
                }
            })
            .map_err(|e| format!("not an AMQP answer: {e}"))?;
        if let Some(seen) = seen {
            return Ok(seen);
        }
    }
}

/// `option amqp-check`: the protocol header must be answered with `connection.start`.
async fn amqp_start(mut stream: Stream) -> (CheckStatus, String) {
    if let Err(e) = stream.write_all(PROTOCOL_HEADER).await {
        return (CheckStatus::L7Rsp, e.to_string());
    }
    let mut hs = Handshake::default();
    let result = match next_method(&mut stream, &mut FrameTracker::server(), &mut hs).await {
        Ok(Seen::Start) => (CheckStatus::L7Ok, String::new()),
        Ok(other) => (
            CheckStatus::L7Rsp,
            format!("expected connection.start, got {other:?}"),
        ),
        Err(e) => (CheckStatus::L7Rsp, e),
    };
    let _ = stream.shutdown().await;
    result
}

/// `option amqp-check user .. password .. vhost ..`: the whole handshake to `open-ok`,
/// then a clean `connection.close`.
async fn amqp_login(
    mut stream: Stream,
    user: &str,
    password: &str,
    vhost: &str,
) -> (CheckStatus, String) {
    let mut tracker = FrameTracker::server();
    let mut hs = Handshake::default();
    let refused = |hs: &Handshake| {
        let (code, text) = hs.close_reason.clone().unwrap_or((0, String::new()));
        (
            CheckStatus::L7Rsp,
            format!("the node refused: {code} {text}"),
        )
    };
    let steps: [(Vec<u8>, Seen); 3] = [
        (PROTOCOL_HEADER.to_vec(), Seen::Start),
        (methods::start_ok_plain(user, password), Seen::Tune),
        // A channel_max of 1 and the minimum frame size: all a check needs, and never
        // more than any node offers.
        (
            [methods::tune_ok(1, 4096), methods::open(vhost)].concat(),
            Seen::OpenOk,
        ),
    ];
    for (send, expect) in steps {
        if let Err(e) = stream.write_all(&send).await {
            return (CheckStatus::L7Rsp, e.to_string());
        }
        match next_method(&mut stream, &mut tracker, &mut hs).await {
            Ok(seen) if seen == expect => {}
            Ok(Seen::Close) => {
                let _ = stream.write_all(&methods::connection_close_ok()).await;
                return refused(&hs);
            }
            Ok(other) => {
                return (
                    CheckStatus::L7Rsp,
                    format!("expected {expect:?}, got {other:?}"),
                )
            }
            Err(e) if hs.close_reason.is_some() => {
                return (CheckStatus::L7Rsp, format!("{e} ({:?})", hs.close_reason))
            }
            // RabbitMQ answers bad credentials by closing the socket after start-ok.
            Err(e) if expect == Seen::Tune => {
                return (
                    CheckStatus::L7Rsp,
                    format!("login refused for user '{user}': {e}"),
                )
            }
            Err(e) => return (CheckStatus::L7Rsp, e),
        }
    }
    if stream
        .write_all(&methods::connection_close(
            methods::REPLY_SUCCESS,
            "warren health check",
        ))
        .await
        .is_ok()
    {
        let _ = next_method(&mut stream, &mut tracker, &mut hs).await;
    }
    (CheckStatus::L7Ok, String::new())
}

/// `option httpchk`: one request, judged by its status line.
async fn http_check(
    mut stream: Stream,
    addr: SocketAddr,
    check: &HttpCheck,
) -> (CheckStatus, String) {
    let mut request = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: warren\r\n",
        check.method, check.uri
    );
    for (name, value) in &check.headers {
        request.push_str(&format!("{name}: {}\r\n", value.0));
    }
    request.push_str("\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return (CheckStatus::L7Rsp, e.to_string());
    }
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    let status = loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = head.iter().position(|b| *b == b'\n') {
            break parse_status(&head[..end]);
        }
        if head.len() > 8192 {
            break None;
        }
    };
    let code = match status {
        None => return (CheckStatus::L7Rsp, "no valid HTTP status line".into()),
        Some(code) if !http_passes(check, code) => {
            return (CheckStatus::L7Sts, format!("HTTP status {code}"))
        }
        Some(code) => code,
    };
    let Some(expect) = &check.expect_body else {
        return (CheckStatus::L7Ok, format!("HTTP status {code}"));
    };
    // The body, up to HAProxy's `tune.chksize` (16 KiB): the check asked for
    // `Connection: close`, so it ends with the server's close.
    while head.len() < CHECK_BODY_LIMIT {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&head[..0], |i| &head[i + 4..]);
    let text = String::from_utf8_lossy(body);
    let found = match expect {
        BodyExpect::Contains(s) => text.contains(s.as_str()),
        BodyExpect::Matches(r) => r.0.is_match(&text),
    };
    if found {
        (
            CheckStatus::L7Ok,
            format!("HTTP status {code}, content matched"),
        )
    } else {
        (
            CheckStatus::L7Rsp,
            "HTTP content check did not match".into(),
        )
    }
}

/// How much of a response an HTTP check reads for `expect string`/`rstring`.
const CHECK_BODY_LIMIT: usize = 16 * 1024;

fn parse_status(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let version = words.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

/// HAProxy's default without `http-check expect`: 2xx and 3xx pass; with only a body
/// expectation, any status does.
fn http_passes(check: &HttpCheck, code: u16) -> bool {
    if check.expect_status.is_empty() && check.expect_body.is_some() {
        true
    } else if check.expect_status.is_empty() {
        (200..400).contains(&code)
    } else {
        check.expect_status.contains(&code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn default_expectation_is_2xx_3xx() {
        let mut c = HttpCheck {
            method: "GET".into(),
            uri: "/".into(),
            headers: vec![],
            expect_status: vec![],
            expect_body: None,
        };
        assert!(http_passes(&c, 200) && http_passes(&c, 302));
        assert!(!http_passes(&c, 503) && !http_passes(&c, 404));
        c.expect_status = vec![204];
        assert!(http_passes(&c, 204) && !http_passes(&c, 200));
    }
}
