//! HTTP load: an origin server answering every request with a small fixed page
//! (keep-alive), and a client that runs `conns` connections in parallel, each sending
//! requests one after another for `secs` seconds. `keepalive`: each connection carries
//! many requests; `close`: one request per connection (`Connection: close`), so every
//! request pays for a connect through the proxy. Prints requests/s and the p50/p99 of
//! the request's latency (from writing it to having the whole answer).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const BODY: &[u8] = b"{\"status\":\"ok\"}\n";

/// The origin: answers each request head (no request bodies here) with `BODY`.
pub async fn serve(addr: SocketAddr) -> Result<()> {
    let l = TcpListener::bind(addr).await?;
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        BODY.len(),
        String::from_utf8_lossy(BODY)
    );
    loop {
        let (mut s, _) = l.accept().await?;
        let answer = answer.clone();
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; 16384];
            let mut have = 0usize;
            loop {
                match s.read(&mut buf[have..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => have += n,
                }
                // Every complete head gets an answer; the rest waits for more bytes.
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let close = buf[..end]
                        .windows(17)
                        .any(|w| w.eq_ignore_ascii_case(b"connection: close"));
                    if s.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                    if close {
                        return;
                    }
                }
                if have == buf.len() {
                    return;
                }
            }
        });
    }
}

/// Reads one answer (head plus `Content-Length` body) from `s`; `buf` keeps what follows.
async fn answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if !head.starts_with("http/1.1 200") {
                bail!("unexpected answer: {}", head.lines().next().unwrap_or(""));
            }
            while buf.len() < end + 4 + len {
                read_more(s, buf).await?;
            }
            buf.drain(..end + 4 + len);
            return Ok(());
        }
        read_more(s, buf).await?;
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 8192];
    let n = s.read(&mut chunk).await?;
    if n == 0 {
        bail!("connection closed before the answer");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The client side; `label` names the scenario (`http_keepalive`, `http_close`).
pub async fn load(addr: SocketAddr, conns: usize, secs: u64, keepalive: bool) -> Result<()> {
    let label = if keepalive {
        "http_keepalive"
    } else {
        "http_close"
    };
    let request: &'static [u8] = if keepalive {
        b"GET /api/overview HTTP/1.1\r\nHost: bench\r\n\r\n"
    } else {
        b"GET /api/overview HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    };
    let start = Instant::now();
    let warmup = Duration::from_millis(300).min(Duration::from_secs(secs) / 4);
    let end = start + warmup + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<u64> = Vec::new();
            let mut buf = Vec::with_capacity(4096);
            let mut conn: Option<TcpStream> = None;
            while Instant::now() < end {
                let t = Instant::now();
                let s = match conn.as_mut() {
                    Some(s) => s,
                    None => {
                        let s = TcpStream::connect(addr).await?;
                        s.set_nodelay(true)?;
                        buf.clear();
                        conn.insert(s)
                    }
                };
                s.write_all(request).await?;
                answer(s, &mut buf).await?;
                if !keepalive {
                    conn = None;
                }
                if t >= start + warmup {
                    samples.push(t.elapsed().as_nanos() as u64);
                }
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    if all.is_empty() {
        bail!("no request completed");
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!("RESULT {label} {:.0} req/s", all.len() as f64 / secs as f64);
    println!("RESULT {label}_p50 {:.1} us", pct(0.50));
    println!("RESULT {label}_p99 {:.1} us", pct(0.99));
    Ok(())
}
