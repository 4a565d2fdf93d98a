//! The hostile-client tests' kit: a syslog receiver, a counting backend, panic and memory
//! watch, configurations. Shared by `hostile.rs` and `hostile_slow.rs`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

/// Bound on any one wait: a hung test fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Kit

/// Panics in warren's own code (a session task's included, which tokio would swallow) are
/// counted, so a test can say "no session panicked". Assertions of the tests themselves
/// (in `tests/`) are not counted.
pub static PANICS: AtomicUsize = AtomicUsize::new(0);

pub fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().starts_with("src/"))
            {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

pub fn no_panics() {
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "warren panicked (see the output above)"
    );
}

/// xorshift64*: deterministic "random" bytes, no dependency.
pub struct Prng(pub u64);

impl Prng {
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }
}

/// This process's resident memory (warren runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A syslog receiver: warren's `log 127.0.0.1:<port> local0` lines arrive here. A task
/// drains the socket as lines come, so a burst of them is not dropped by a full buffer.
pub struct Syslog {
    pub port: u16,
    pub lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
}

impl Syslog {
    pub async fn bind() -> Syslog {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let port = socket.local_addr().expect("addr").port();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // Large enough for an httplog line with its captured headers.
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = socket.recv(&mut buf).await {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        Syslog {
            port,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the first line containing `needle`.
    pub async fn line(&mut self, needle: &str) -> String {
        self.wait_for(needle, 1).await.remove(0)
    }

    /// Waits until `count` lines containing `needle` have arrived (a bound against a hang).
    pub async fn wait_for(&mut self, needle: &str, count: usize) -> Vec<String> {
        loop {
            let found: Vec<String> = self
                .seen
                .iter()
                .filter(|l| l.contains(needle))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            match tokio::time::timeout(LIMIT, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                _ => panic!(
                    "{} of {count} log lines with '{needle}'; saw:\n{}",
                    found.len(),
                    self.seen.join("\n")
                ),
            }
        }
    }
}

/// A backend that greets each connection with `hi\n`, echoes, and counts how many
/// connections it has open now and at most.
pub struct Counting {
    pub addr: SocketAddr,
    pub now: watch::Receiver<usize>,
    pub max: Arc<AtomicUsize>,
}

impl Counting {
    pub async fn start() -> Counting {
        let l = listener().await;
        let addr = l.local_addr().expect("addr");
        let (tx, now) = watch::channel(0usize);
        let tx = Arc::new(tx);
        let max = Arc::new(AtomicUsize::new(0));
        let m = Arc::clone(&max);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let (tx, m) = (Arc::clone(&tx), Arc::clone(&m));
                tokio::spawn(async move {
                    tx.send_modify(|n| {
                        *n += 1;
                        m.fetch_max(*n, Ordering::SeqCst);
                    });
                    let _ = s.write_all(b"hi\n").await;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    tx.send_modify(|n| *n -= 1);
                });
            }
        });
        Counting { addr, now, max }
    }

    pub async fn wait_open(&mut self, n: usize) {
        let reached = tokio::time::timeout(LIMIT, self.now.wait_for(|v| *v == n))
            .await
            .map(|r| r.is_ok());
        assert_eq!(
            reached,
            Ok(true),
            "the backend never had {n} connections open (now {})",
            *self.now.borrow()
        );
    }
}

/// Waits until warren counts `n` open sessions on the frontend.
pub async fn frontend_sessions(w: &Running, frontend: &str, n: u32) {
    let fe = w.frontend_state(frontend);
    tokio::time::timeout(LIMIT, async {
        while fe.counters.current.load(Ordering::Relaxed) != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "frontend {frontend} never got to {n} sessions (now {})",
            fe.counters.current.load(Ordering::Relaxed)
        )
    });
}

pub fn tcp_cfg(frontend_extra: &str, backend: SocketAddr) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
         listen px\n    bind 127.0.0.1:0\n{frontend_extra}\n    server s {backend}\n"
    )
}

pub fn amqp_cfg(extra: &str, node: SocketAddr, syslog: u16) -> String {
    format!(
        "defaults\n    mode tcp\n    option amqp\n    timeout connect 5s\n\
         listen px\n    bind 127.0.0.1:0\n    log 127.0.0.1:{syslog} local0\n    option tcplog\n{extra}\n    server n {node}\n"
    )
}

/// Reads what warren says before closing, with a bound.
pub async fn answer_then_close(s: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(LIMIT, read_to_end(s))
        .await
        .expect("warren closes the connection")
}

// ---------------------------------------------------------------------------------------
// maxconn and the rate limits
