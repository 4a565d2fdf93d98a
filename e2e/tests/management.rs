//! The management plugin (UI and HTTP API) behind the proxy under test in `mode http`, as
//! the third-party configurations put it behind HAProxy: basic auth to the API, cookie
//! persistence, a node killed (the next request goes to a living node), and a WebSocket
//! upgrade through the proxy. Needs the cluster with `MANAGEMENT=1` (the management plugin
//! on `MGMT_BASE`..); `WARREN_E2E_PROXY=haproxy` runs the same test against HAProxy.

use anyhow::{bail, ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Duration, Instant};
use warren_e2e::lab::mgmt_port;
use warren_e2e::proxy::{free_port, ProxyConfig};
use warren_e2e::{e2e_test, TestCtx};

/// `guest:guest`, which RabbitMQ accepts from localhost only (warren connects from there).
const GUEST: &str = "Z3Vlc3Q6Z3Vlc3Q=";

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
async fn get(port: u16, path: &str, extra: &str) -> Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .context("answer within 20 s")??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP answer: {text:?}");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Answer {
        status,
        head: head.to_string(),
        body,
    })
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// The node that answered `/api/overview` (`"node":"rabbit2@host"` → 2).
fn node_of(body: &str) -> Option<usize> {
    let at = body.find("\"node\":\"rabbit")? + "\"node\":\"rabbit".len();
    body[at..].split('@').next()?.parse().ok()
}

/// A WebSocket endpoint for the upgrade test: answers RFC 6455's sample handshake with
/// 101, then echoes.
async fn websocket_echo() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n").await;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(port)
}

fn sections(mgmt: u16, ws_front: u16, ws_port: u16) -> String {
    format!(
        "
listen management
    bind 127.0.0.1:{mgmt}
    mode http
    option httplog
    option forwardfor
    option redispatch
    retries 2
    balance roundrobin
    cookie RABBITSRV insert indirect nocache
    option httpchk GET /api/health/checks/alarms
    http-check send hdr Authorization \"Basic {GUEST}\"
    http-check expect status 200
    server rabbit1 127.0.0.1:{p1} check inter 500 rise 2 fall 2 cookie r1
    server rabbit2 127.0.0.1:{p2} check inter 500 rise 2 fall 2 cookie r2
    server rabbit3 127.0.0.1:{p3} check inter 500 rise 2 fall 2 cookie r3

listen websocket
    bind 127.0.0.1:{ws_front}
    mode http
    timeout tunnel 1h
    server ws 127.0.0.1:{ws_port}
",
        p1 = mgmt_port(1),
        p2 = mgmt_port(2),
        p3 = mgmt_port(3),
    )
}

/// Waits until the proxy's management frontend answers `/api/overview` with 200.
async fn until_ready(port: u16) -> Result<Answer> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(a) = get(
            port,
            "/api/overview",
            &format!("Authorization: Basic {GUEST}\r\n"),
        )
        .await
        {
            if a.status == 200 {
                return Ok(a);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the management API did not answer through the proxy within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_ui_and_api_behind_the_proxy() {
    e2e_test("management_ui_and_api_behind_the_proxy", |t: TestCtx| async move {
        let (mgmt, ws_front) = (free_port(), free_port());
        let ws_port = websocket_echo().await?;
        let mut config = ProxyConfig::report();
        config.extra_sections = sections(mgmt, ws_front, ws_port);
        let _proxy = t.proxy(config).await?;

        // The UI's page and the API with basic auth.
        let first = until_ready(mgmt).await?;
        ensure!(first.body.contains("\"rabbitmq_version\""), "overview: {}", first.body);
        let ui = get(mgmt, "/", "").await?;
        ensure!(ui.status == 200 && ui.body.contains("RabbitMQ Management"), "UI page: {} {}", ui.status, &ui.body[..ui.body.len().min(200)]);
        let denied = get(mgmt, "/api/overview", "").await?;
        ensure!(denied.status == 401, "the API without credentials: {}", denied.status);

        // Cookie persistence: the cookie set on the first answer brings every request back
        // to the same node.
        let cookie = first.header("set-cookie").context("a persistence cookie")?;
        let value = cookie.split(';').next().unwrap_or("").to_string();
        let node = node_of(&first.body).context("node in overview")?;
        for _ in 0..6 {
            let a = get(mgmt, "/api/overview", &format!("Authorization: Basic {GUEST}\r\nCookie: {value}\r\n")).await?;
            ensure!(a.status == 200 && node_of(&a.body) == Some(node), "sticky to rabbit{node}: got {:?}", node_of(&a.body));
        }

        // That node dies: the next request with its cookie goes to a living node, which
        // sets a new cookie.
        t.lab.run_async(&["kill", &node.to_string()]).await?;
        let a = get(mgmt, "/api/overview", &format!("Authorization: Basic {GUEST}\r\nCookie: {value}\r\n")).await?;
        ensure!(a.status == 200, "after the kill: {} {}", a.status, a.body);
        let now = node_of(&a.body).context("node after kill")?;
        ensure!(now != node, "still answered by the dead rabbit{node}");
        ensure!(a.header("set-cookie").is_some(), "a new cookie for rabbit{now}");
        t.lab.run_async(&["restart", &node.to_string()]).await?;

        // A WebSocket upgrade becomes a tunnel.
        let mut s = TcpStream::connect(("127.0.0.1", ws_front)).await?;
        s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await?;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await?;
            ensure!(n > 0, "closed before the 101");
            got.extend_from_slice(&buf[..n]);
        }
        ensure!(got.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&got));
        s.write_all(b"hello through the tunnel").await?;
        let mut echo = vec![0u8; 24];
        s.read_exact(&mut echo).await?;
        ensure!(echo == b"hello through the tunnel", "echo: {:?}", String::from_utf8_lossy(&echo));
        Ok(())
    })
    .await;
}
