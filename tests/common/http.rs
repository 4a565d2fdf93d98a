//! HTTP test kit: a small HTTP/1.1 server on 127.0.0.1:0 that says which server it is and
//! what it received, a raw client that reads exactly one response, a syslog listener for
//! httplog lines, and HAProxy started from the same configuration text, so each scenario
//! runs against warren and against Debian's `haproxy`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bound on any wait: a hung test fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(20);

/// An HTTP/1.1 origin server. Each answer carries `X-Server: <tag>` and a body
/// `<tag> <method> <path> xff=<X-Forwarded-For or -> cookie=<Cookie or -> body=<body>`.
/// `/ws` with `Upgrade` answers 101 and echoes bytes; `/hang` never answers;
/// `/chunked` answers in two chunks; `/close` answers without a length and closes;
/// `/setcookie` sets `SRV=app1`; `/headers...` answers with the request head it received.
pub struct Origin {
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    pub async fn start(tag: &str) -> Origin {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        let tag = tag.to_string();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s, tag.clone()));
            }
        });
        Origin {
            addr,
            connections,
            task,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut s: TcpStream, tag: String) {
    let mut buf = Vec::new();
    loop {
        let Some((head, rest)) = read_head(&mut s, &mut buf).await else {
            return;
        };
        buf = rest;
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("").to_string();
        let mut parts = first.split(' ');
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body: Vec<u8> = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let Some(body) = read_chunked(&mut s, &mut buf).await else {
                return;
            };
            body
        } else {
            let len: usize = get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < len {
                if !fill(&mut s, &mut buf).await {
                    return;
                }
            }
            buf.drain(..len).collect()
        };
        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let text = format!(
            "{tag} {method} {path} xff={} cookie={} body={}",
            get("x-forwarded-for").unwrap_or_else(|| "-".into()),
            get("cookie").unwrap_or_else(|| "-".into()),
            String::from_utf8_lossy(&body)
        );
        match path.as_str() {
            "/hang" => {
                let _ = s.read(&mut [0u8; 1]).await;
                return;
            }
            "/ws" if get("upgrade").is_some() => {
                let _ = s
                    // RFC 6455's sample key and its answer: the tests send that key.
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                    .await;
                let mut chunk = [0u8; 4096];
                if !buf.is_empty() && s.write_all(&buf).await.is_err() {
                    return;
                }
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&chunk[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            "/chunked" => {
                let half = text.len() / 2;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nX-Server: {tag}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                    half,
                    &text[..half],
                    text.len() - half,
                    &text[half..]
                );
                if s.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            "/cacheable" => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nX-Server: {tag}\r\nCache-Control: max-age=60\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                if s.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            p if p.starts_with("/headers") => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nX-Server: {tag}\r\nContent-Length: {}\r\n\r\n{head}",
                    head.len()
                );
                if s.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            "/setcookie" => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nX-Server: {tag}\r\nSet-Cookie: SRV=app1; Path=/\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                if s.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            "/close" => {
                let answer = format!("HTTP/1.1 200 OK\r\nX-Server: {tag}\r\n\r\n{text}");
                let _ = s.write_all(answer.as_bytes()).await;
                return;
            }
            _ => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nX-Server: {tag}\r\nContent-Length: {}\r\n{}\r\n{text}",
                    text.len(),
                    if close { "Connection: close\r\n" } else { "" }
                );
                if s.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        if close {
            return;
        }
    }
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// A chunked body, decoded (no trailers expected).
async fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if !fill(s, buf).await {
                return None;
            }
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..end]).trim(), 16).ok()?;
        buf.drain(..end + 2);
        while buf.len() < size + 2 {
            if !fill(s, buf).await {
                return None;
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
        if size == 0 {
            return Some(body);
        }
    }
}

/// Reads up to the end of a head; returns it and the bytes after it.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return Some((head, buf[i + 4..].to_vec()));
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One response as the client read it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection that may carry several requests.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, raw: &str) {
        self.stream.write_all(raw.as_bytes()).await.expect("send");
    }

    /// `GET path` with Host and the extra header lines (each ending in \r\n).
    pub async fn get(&mut self, path: &str, extra: &str) -> Response {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n"))
            .await;
        self.response(false).await.expect("a response")
    }

    /// Reads one response (`head`: the request was HEAD); `None` on EOF before one.
    pub async fn response(&mut self, head: bool) -> Option<Response> {
        tokio::time::timeout(LIMIT, self.read_response(head))
            .await
            .expect("a response within the limit")
    }

    async fn read_response(&mut self, head_request: bool) -> Option<Response> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if head_request || status == 101 || status == 204 || status == 304 || status < 200 {
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    if !self.fill().await {
                        return None;
                    }
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end]).trim(),
                    16,
                )
                .unwrap_or(0);
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.fill().await {
                        return None;
                    }
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while self.buf.len() < len {
                if !self.fill().await {
                    return None;
                }
            }
            body.extend(self.buf.drain(..len));
        } else {
            while self.fill().await {}
            body.append(&mut self.buf);
        }
        Some(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// True once the connection is closed by the other side (EOF).
    pub async fn closed(&mut self) -> bool {
        tokio::time::timeout(LIMIT, async {
            let mut chunk = [0u8; 1024];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

// One syslog receiver for every test (`hostile`), named here too for the HTTP tests.
#[allow(unused_imports)]
pub use super::hostile::Syslog;

/// A proxy under test in the HTTP comparisons: warren in-process, or HAProxy as a child
/// process; both serve the section `web`.
pub enum Proxy {
    Warren(super::Running),
    /// The child process (stopped when dropped) and its address.
    Haproxy(#[allow(dead_code)] Haproxy, SocketAddr),
}

impl Proxy {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Proxy::Warren(w) => w.addr("web"),
            Proxy::Haproxy(_, a) => *a,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Proxy::Warren(_) => "warren",
            Proxy::Haproxy(..) => "haproxy",
        }
    }
}

/// HAProxy running the same configuration, for the comparison runs. `None` when Debian's
/// `haproxy` is not installed (the scenario then runs against warren only, and says so).
pub struct Haproxy {
    child: std::process::Child,
    _dir: std::path::PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

impl Haproxy {
    /// Starts `haproxy -db -f <cfg>` and waits until `addr` accepts connections.
    pub async fn start(cfg: &str, addr: SocketAddr) -> Option<Haproxy> {
        if std::process::Command::new("haproxy")
            .arg("-v")
            .output()
            .is_err()
        {
            eprintln!("haproxy is not installed: comparison skipped");
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warren-http-haproxy-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write cfg");
        let child = std::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn haproxy");
        let h = Haproxy { child, _dir: dir };
        // Ready when it accepts: connect until it does (bounded).
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return Some(h);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "haproxy did not start listening on {addr}"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
