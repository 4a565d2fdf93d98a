//! Test kit: small real servers on 127.0.0.1:0 and a warren started in-process.
//!
//! Every helper returns as soon as its socket is bound, so tests never sleep to wait for
//! a server to come up.

#![allow(dead_code)]

pub mod both;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warren::config::{self, Syntax};
use warren::runtime::Warren;

/// A bound 127.0.0.1 listener on a free port.
pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// A server that greets each connection with `tag\n`, then echoes until EOF, then closes.
/// Dropping the handle (abort) stops it and closes its listener.
pub struct Backend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn tagged(tag: &str) -> Backend {
        Backend::serve(listener().await, tag)
    }

    /// A tagged echo server on a listener the caller bound (another loopback address).
    pub fn serve(l: TcpListener, tag: &str) -> Backend {
        let addr = l.local_addr().expect("local addr");
        let tag = format!("{tag}\n");
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let tag = tag.clone();
                tokio::spawn(async move {
                    if s.write_all(tag.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        Backend { addr, task }
    }

    /// Stops accepting and closes the listening socket (open connections stay).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A listening socket on a free port, bound here and handed to warren
/// ([`start_on`]): the test knows the address before warren starts, and it stays the same
/// across reloads, with no window where another process could take the port.
pub fn held_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("local addr").port();
    (l, port)
}

/// A port nothing listens on right now (the listener is closed before returning), for a
/// warren started as a separate process, which cannot be handed a socket: the port could
/// be taken by someone else before warren binds it (then the test fails, it cannot pass
/// wrongly). In-process tests use [`held_listener`].
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports (all held until each is known, so none is returned twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("local addr").port())
}

/// An address where nothing listens: connects are refused.
pub async fn refused_addr() -> SocketAddr {
    let l = listener().await;
    l.local_addr().expect("local addr")
}

/// An address whose SYNs go unanswered: a listener with a full backlog that never
/// accepts. Keep the returned guard alive for as long as the address must stay silent.
pub fn blackhole() -> (SocketAddr, Vec<std::net::TcpStream>, socket2::Socket) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    s.bind(&addr.into()).expect("bind");
    s.listen(0).expect("listen");
    let addr = s.local_addr().expect("addr").as_socket().expect("inet");
    // Fill the backlog (Linux keeps backlog+1 established connections queued).
    let mut fill = Vec::new();
    for _ in 0..2 {
        if let Ok(c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fill.push(c);
        }
    }
    (addr, fill, s)
}

/// Warren running in this test's runtime; stops when dropped or on `stop()`.
pub struct Running {
    pub warren_frontends: Vec<(String, Vec<SocketAddr>)>,
    pub frontends: Vec<std::sync::Arc<warren::state::FrontendState>>,
    pub stats_pages: Vec<(String, Vec<SocketAddr>)>,
    pub backends: Vec<std::sync::Arc<warren::state::BackendState>>,
    pub handle: warren::runtime::Handle,
    /// The generation in force (a reload replaces it).
    pub current: std::sync::Arc<arc_swap::ArcSwap<warren::state::Generation>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The first address of a stats page.
    pub fn stats_addr(&self, page: &str) -> SocketAddr {
        self.stats_pages
            .iter()
            .find(|(n, _)| n == page)
            .and_then(|(_, a)| a.first().copied())
            .expect("stats page address")
    }

    /// The first address of a frontend.
    pub fn addr(&self, frontend: &str) -> SocketAddr {
        self.warren_frontends
            .iter()
            .find(|(n, _)| n == frontend)
            .and_then(|(_, a)| a.first().copied())
            .expect("frontend address")
    }

    pub fn frontend_state(&self, name: &str) -> std::sync::Arc<warren::state::FrontendState> {
        self.frontends
            .iter()
            .find(|f| f.config.name == name)
            .cloned()
            .expect("frontend")
    }

    pub fn backend(&self, name: &str) -> std::sync::Arc<warren::state::BackendState> {
        self.backends
            .iter()
            .find(|b| b.name() == name)
            .cloned()
            .expect("backend")
    }

    /// A backend of the generation in force (after reloads).
    pub fn handle_backend(&self, name: &str) -> std::sync::Arc<warren::state::BackendState> {
        self.current.load().backend(name).cloned().expect("backend")
    }

    /// Applies new HAProxy-syntax text as a reload would (the text must load).
    pub async fn reload(&self, haproxy_cfg: &str) -> Result<(), warren::runtime::RuntimeError> {
        let loaded = config::load_str(haproxy_cfg, "test.cfg", Syntax::Haproxy)
            .unwrap_or_else(|e| panic!("config: {e}"));
        self.handle.reload(loaded.config).await
    }

    /// Stops warren and waits until it has.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts warren from HAProxy-syntax text. Frontends should bind `127.0.0.1:0`.
pub fn start(haproxy_cfg: &str) -> Running {
    start_adjusted(haproxy_cfg, |_| {})
}

/// Connects and reads the backend's greeting line (its tag).
pub async fn which_backend(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect to warren");
    let tag = read_line(&mut s).await;
    (s, tag)
}

/// Reads one `\n`-terminated line; empty string on EOF.
pub async fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => break,
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => out.push(b[0]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until EOF (or error); returns what was read.
pub async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out
}

/// Waits for the next UP/DOWN event of `server` in `backend`, up to `limit` (a deadline
/// for a hung test, not a synchronisation delay).
pub async fn wait_state(
    rx: &mut tokio::sync::broadcast::Receiver<warren::state::ServerEvent>,
    server: &str,
    up: bool,
    limit: Duration,
) {
    tokio::time::timeout(limit, async {
        loop {
            match rx.recv().await {
                Ok(e) if e.server == server && e.up == up => return,
                Ok(_) => continue,
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "server {server} did not go {} within {limit:?}",
            if up { "UP" } else { "DOWN" }
        )
    });
}

pub mod amqp;
pub mod dns;
pub mod hostile;
pub mod http;
pub mod tls;

/// Starts warren from HAProxy-syntax text after `adjust` changed the loaded model (for
/// settings a test needs before the parser knows them).
pub fn start_adjusted(
    haproxy_cfg: &str,
    adjust: impl FnOnce(&mut warren::config::Config),
) -> Running {
    let mut loaded = config::load_str(haproxy_cfg, "test.cfg", Syntax::Haproxy)
        .unwrap_or_else(|e| panic!("config: {e}"));
    adjust(&mut loaded.config);
    run_config(loaded.config)
}

/// Starts warren from HAProxy-syntax text, on the listening sockets given for the
/// addresses they are bound to ([`held_listener`]).
pub fn start_on(haproxy_cfg: &str, listeners: Vec<std::net::TcpListener>) -> Running {
    let loaded = config::load_str(haproxy_cfg, "test.cfg", Syntax::Haproxy)
        .unwrap_or_else(|e| panic!("config: {e}"));
    run_config_on(loaded.config, listeners)
}

/// Starts warren from a model.
pub fn run_config(config: warren::config::Config) -> Running {
    run_config_on(config, Vec::new())
}

/// Starts warren from a model, on the listening sockets given.
pub fn run_config_on(
    config: warren::config::Config,
    listeners: Vec<std::net::TcpListener>,
) -> Running {
    let warren = Warren::bind_with(&config, listeners).expect("bind");
    let warren_frontends = config
        .frontends
        .iter()
        .map(|f| (f.name.clone(), warren.local_addrs(&f.name)))
        .collect();
    let stats_pages = config
        .stats
        .iter()
        .map(|p| (p.name.clone(), warren.stats_addrs(&p.name)))
        .collect();
    let frontends = config
        .frontends
        .iter()
        .filter_map(|f| warren.frontend(&f.name))
        .collect();
    let backends = config
        .backends
        .iter()
        .filter_map(|b| warren.backend(&b.name))
        .collect();
    let handle = warren.handle();
    let current = warren.current();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(warren.run(async move {
        let _ = rx.await;
        warren::runtime::Stop::Graceful
    }));
    Running {
        warren_frontends,
        frontends,
        stats_pages,
        backends,
        handle,
        current,
        stop: Some(tx),
        task: Some(task),
    }
}

/// An HTTP/1.1 answer: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The stats page's CSV (HAProxy's layout) as one map of column to value per row.
pub async fn stats_csv(stats_port: u16) -> Vec<std::collections::HashMap<String, String>> {
    let answer = http(
        ([127, 0, 0, 1], stats_port).into(),
        "GET",
        "/stats;csv",
        &[],
        "",
    )
    .await;
    let mut lines = answer.body.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

/// Cell `field` of row `svname` (a server, `FRONTEND` or `BACKEND`) of proxy `pxname`.
pub async fn stats_cell(stats_port: u16, pxname: &str, svname: &str, field: &str) -> String {
    let rows = stats_csv(stats_port).await;
    let row = rows
        .iter()
        .find(|r| {
            r.get("pxname").map(String::as_str) == Some(pxname)
                && r.get("svname").map(String::as_str) == Some(svname)
        })
        .unwrap_or_else(|| panic!("no row {pxname}/{svname} in the stats CSV"));
    row.get(field)
        .unwrap_or_else(|| panic!("no column {field} in the stats CSV"))
        .clone()
}

/// One HTTP request on a fresh connection (`Connection: close`), read to the end.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    let mut s = TcpStream::connect(addr)
        .await
        .expect("connect to the stats page");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send request");
    let raw = String::from_utf8_lossy(&read_to_end(&mut s).await).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    HttpAnswer {
        status,
        headers,
        body,
    }
}

/// Undoes chunked transfer encoding.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Basic-auth header value.
pub fn basic(user_pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}
