//! Hostile clients over real sockets: a connection flood against `maxconn`, the rate
//! limits, slowloris (AMQP and tcp mode), garbage bytes in AMQP mode. In each, warren stays
//! up, the hostile sessions end (and are logged, with why), other sessions are unaffected,
//! and memory stays bounded.
//!
//! Nothing here sleeps to wait for warren. The slow clients do sleep between their bytes:
//! that is what they are. Where the limits are measured on tokio's clock the tests pause
//! it (`rate-limit sessions`, `timeout client-hs`); the slowloris tests run on real time
//! with short timeouts, because a paused clock jumps to the next timer whenever the
//! runtime waits for I/O, which would push a well-behaved client past its handshake
//! timeout. Their only time checks are lower bounds that hold by construction (warren
//! never cuts a client before its deadline).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use common::amqp::{next_frame, Client, Got, Node, NodeEvent};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use warren::amqp::frame::{encode, FrameTracker, FRAME_HEARTBEAT, FRAME_METHOD, PROTOCOL_HEADER};
use warren::amqp::methods;

/// Bound on any one wait: a hung test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Kit

/// Panics in warren's own code (a session task's included, which tokio would swallow) are
/// counted, so a test can say "no session panicked". Assertions of the tests themselves
/// (in `tests/`) are not counted.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
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

fn no_panics() {
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "warren panicked (see the output above)"
    );
}

/// xorshift64*: deterministic "random" bytes, no dependency.
struct Prng(u64);

impl Prng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
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
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A syslog receiver: warren's `log 127.0.0.1:<port> local0` lines arrive here. A task
/// drains the socket as lines come, so a burst of them is not dropped by a full buffer.
struct Syslog {
    port: u16,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Syslog {
    async fn bind() -> Syslog {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let port = socket.local_addr().expect("addr").port();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
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

    fn port(&self) -> u16 {
        self.port
    }

    /// Waits until `count` lines containing `needle` have arrived (a bound against a hang).
    async fn wait_for(&mut self, needle: &str, count: usize) -> Vec<String> {
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
struct Counting {
    addr: SocketAddr,
    now: watch::Receiver<usize>,
    max: Arc<AtomicUsize>,
}

impl Counting {
    async fn start() -> Counting {
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

    async fn wait_open(&mut self, n: usize) {
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
async fn frontend_sessions(w: &Running, frontend: &str, n: u32) {
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

fn tcp_cfg(frontend_extra: &str, backend: SocketAddr) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
         listen px\n    bind 127.0.0.1:0\n{frontend_extra}\n    server s {backend}\n"
    )
}

fn amqp_cfg(extra: &str, node: SocketAddr, syslog: u16) -> String {
    format!(
        "defaults\n    mode tcp\n    option amqp\n    timeout connect 5s\n\
         listen px\n    bind 127.0.0.1:0\n    log 127.0.0.1:{syslog} local0\n    option tcplog\n{extra}\n    server n {node}\n"
    )
}

/// Reads what warren says before closing, with a bound.
async fn answer_then_close(s: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(LIMIT, read_to_end(s))
        .await
        .expect("warren closes the connection")
}

// ---------------------------------------------------------------------------------------
// maxconn and the rate limits

#[tokio::test]
async fn maxconn_holds_under_a_connection_flood_and_serves_normally_after() {
    count_panics();
    const MAXCONN: usize = 20;
    const FLOOD: usize = 300;
    let mut backend = Counting::start().await;
    let w = start(&tcp_cfg(&format!("    maxconn {MAXCONN}"), backend.addr));
    let addr = w.addr("px");

    // Every client connects at once (the kernel completes the handshakes; the ones over
    // maxconn wait in the backlog), waits to be served, and leaves when released.
    let (served_tx, mut served) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    for _ in 0..FLOOD {
        let (served_tx, release) = (served_tx.clone(), Arc::clone(&release));
        tokio::spawn(async move {
            let mut s = TcpStream::connect(addr)
                .await
                .expect("the kernel accepts the connection");
            let greeting = read_line(&mut s).await;
            let _ = served_tx.send(greeting == "hi");
            if let Ok(permit) = release.acquire().await {
                permit.forget();
            }
        });
    }
    // The first maxconn are served and nobody else: the limit is reached, not exceeded.
    for _ in 0..MAXCONN {
        assert_eq!(
            tokio::time::timeout(LIMIT, served.recv())
                .await
                .expect("served"),
            Some(true)
        );
    }
    backend.wait_open(MAXCONN).await;
    assert!(
        served.try_recv().is_err(),
        "a client beyond maxconn was served"
    );
    // Then each client leaving lets exactly one more in, until all were served.
    release.add_permits(1);
    for n in MAXCONN..FLOOD {
        let got = tokio::time::timeout(LIMIT, served.recv())
            .await
            .unwrap_or_else(|_| panic!("client {n} never served"));
        assert_eq!(got, Some(true));
        release.add_permits(1);
    }
    release.add_permits(FLOOD);
    backend.wait_open(0).await;
    let fe = w.frontend_state("px");
    assert_eq!(
        backend.max.load(Ordering::SeqCst),
        MAXCONN,
        "never more than maxconn sessions at the backend"
    );
    assert_eq!(
        fe.counters.max.load(Ordering::Relaxed) as usize,
        MAXCONN,
        "nor counted by warren (smax)"
    );
    assert_eq!(fe.counters.total.load(Ordering::Relaxed) as usize, FLOOD);

    // After the flood: a client is served at once, and its bytes flow.
    let (mut s, tag) = which_backend(addr).await;
    assert_eq!(tag, "hi");
    s.write_all(b"still here\n").await.expect("write");
    assert_eq!(read_line(&mut s).await, "still here");
    no_panics();
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn rate_limit_sessions_pauses_accepting_and_refuses_nobody() {
    count_panics();
    const LIMIT_PER_S: usize = 5;
    const CLIENTS: usize = 20;
    let backend = Counting::start().await;
    let w = start(&tcp_cfg(
        &format!("    rate-limit sessions {LIMIT_PER_S}"),
        backend.addr,
    ));
    let addr = w.addr("px");
    let t0 = Instant::now();
    // All connect at once.
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let greeting = read_line(&mut s).await;
            (greeting, s)
        }));
    }
    let mut keep = Vec::new();
    for t in tasks {
        let (greeting, s) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("served in time")
            .expect("task");
        assert_eq!(greeting, "hi", "paused, not refused");
        keep.push(s);
    }
    // The rate is counted by warren at each accept, on the paused clock: it never went
    // over the limit (all 20 at once would have made it 20), and it did reach it.
    let fe = w.frontend_state("px");
    assert_eq!(
        fe.counters.rate_max.load(Ordering::Relaxed) as usize,
        LIMIT_PER_S
    );
    assert_eq!(fe.counters.total.load(Ordering::Relaxed) as usize, CLIENTS);
    assert_eq!(fe.counters.denied.load(Ordering::Relaxed), 0);
    assert!(
        Instant::now() - t0 >= Duration::from_secs(2),
        "20 sessions at 5/s take seconds"
    );
    no_panics();
    drop(keep);
    w.stop().await;
}

/// Connects from a chosen loopback address (127.0.0.x are all this host).
async fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((source, 0)))?;
    s.connect(to).await
}

#[tokio::test]
async fn sessions_per_source_refuses_a_hammering_address_only_and_says_so() {
    count_panics();
    let backend = Counting::start().await;
    let mut syslog = Syslog::bind().await;
    let w = start(&tcp_cfg(
        &format!(
            "    rate-limit sessions-per-source 3\n    log 127.0.0.1:{} local0\n    option tcplog",
            syslog.port()
        ),
        backend.addr,
    ));
    let addr = w.addr("px");
    // One address opens 30 connections as fast as it can: 3 per second may pass.
    let (mut served, mut refused, mut keep) = (0, 0, Vec::new());
    for _ in 0..30 {
        let mut s = connect_from([127, 0, 0, 1], addr).await.expect("connect");
        // A refused connection is reset at once: the read ends without a greeting (were it
        // merely left open, this would wait for LIMIT and fail).
        let greeting = tokio::time::timeout(LIMIT, read_line(&mut s))
            .await
            .expect("served or closed at once");
        if greeting == "hi" {
            served += 1;
            keep.push(s);
        } else {
            refused += 1;
        }
    }
    assert!(served >= 3, "the first ones pass ({served})");
    assert!(refused > 0, "30 connections in a burst exceed 3 per second");
    // Another client address is not affected, even now.
    let mut other = connect_from([127, 0, 0, 2], addr).await.expect("connect");
    assert_eq!(read_line(&mut other).await, "hi");
    let fe = w.frontend_state("px");
    assert_eq!(
        fe.counters.denied.load(Ordering::Relaxed),
        refused,
        "counted in dcon"
    );
    let lines = syslog
        .wait_for("refusing connections from 127.0.0.1", 1)
        .await;
    assert!(
        lines[0].contains("rate-limit sessions-per-source 3"),
        "{}",
        lines[0]
    );
    no_panics();
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_behind_accept_proxy_is_closed_after_timeout_client_hs() {
    count_panics();
    let backend = Counting::start().await;
    let mut syslog = Syslog::bind().await;
    let cfg = tcp_cfg(
        &format!(
            "    timeout client-hs 3s\n    log 127.0.0.1:{} local0\n    option tcplog",
            syslog.port()
        ),
        backend.addr,
    )
    .replace("bind 127.0.0.1:0", "bind 127.0.0.1:0 accept-proxy");
    let w = start(&cfg);
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(w.addr("px")).await.expect("connect");
    assert!(answer_then_close(&mut silent).await.is_empty());
    let waited = t0.elapsed();
    // Paused clock: warren's deadline is exact. Without client-hs it would be timeout
    // handshake (10 s), or timeout client (30 s) in HAProxy.
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(10),
        "client-hs (3 s): {waited:?}"
    );
    syslog
        .wait_for("no complete PROXY protocol header in time", 1)
        .await;
    no_panics();
    w.stop().await;
}

// ---------------------------------------------------------------------------------------
// Slowloris

/// Sends `bytes` one at a time, `every` apart, until warren closes the connection; returns
/// how many it sent and when the connection ended.
async fn trickle(mut s: TcpStream, bytes: Vec<u8>, every: Duration) -> (usize, Instant) {
    let mut sent = 0;
    let mut buf = [0u8; 512];
    let mut next = Instant::now() + every;
    while sent < bytes.len() {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(n) if n > 0 => {} // connection.start, an echo: still open
                _ => return (sent, Instant::now()),
            },
            _ = tokio::time::sleep_until(next) => {
                if s.write_all(&bytes[sent..=sent]).await.is_err() {
                    return (sent, Instant::now());
                }
                sent += 1;
                next += every;
            }
        }
    }
    // Out of bytes: silent from now on, until closed.
    loop {
        match s.read(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => return (sent, Instant::now()),
        }
    }
}

#[tokio::test]
async fn amqp_slowloris_is_cut_by_the_handshake_timeout_while_others_are_served() {
    count_panics();
    const SILENT: usize = 100;
    const HEADER_TRICKLERS: usize = 100;
    const FRAME_TRICKLERS: usize = 100;
    const HANDSHAKE: Duration = Duration::from_secs(2);
    let mut node = Node::start(0).await;
    let mut syslog = Syslog::bind().await;
    let w = start(&amqp_cfg(
        "    timeout handshake 2s",
        node.addr,
        syslog.port(),
    ));
    let addr = w.addr("px");
    let before = rss_kib();
    let t0 = Instant::now();

    let mut slow = Vec::new();
    // Connects and says nothing.
    for _ in 0..SILENT {
        let s = TcpStream::connect(addr).await.expect("connect");
        slow.push(tokio::spawn(trickle(
            s,
            Vec::new(),
            Duration::from_millis(100),
        )));
    }
    // Trickles the protocol header, a byte every 400 ms: it would need 3.2 s.
    for _ in 0..HEADER_TRICKLERS {
        let s = TcpStream::connect(addr).await.expect("connect");
        slow.push(tokio::spawn(trickle(
            s,
            PROTOCOL_HEADER.to_vec(),
            Duration::from_millis(400),
        )));
    }
    // Sends the header at once, then trickles a start-ok, a byte every 100 ms.
    for _ in 0..FRAME_TRICKLERS {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(PROTOCOL_HEADER).await.expect("header");
        slow.push(tokio::spawn(trickle(
            s,
            methods::start_ok_plain("guest", "guest"),
            Duration::from_millis(100),
        )));
    }
    // Meanwhile a normal client connects, works, and leaves.
    let mut good = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let during = rss_kib();
    good.stream
        .write_all(&methods::connection_close(200, "bye"))
        .await
        .expect("close");
    assert_eq!(good.next().await, Some(Got::CloseOk));
    assert!(matches!(
        node.next().await,
        NodeEvent::Ended { close_seen: true }
    ));
    drop(good);

    for (i, task) in slow.into_iter().enumerate() {
        let (sent, ended) = tokio::time::timeout(LIMIT, task)
            .await
            .expect("slow client closed")
            .expect("task");
        assert!(
            ended - t0 >= HANDSHAKE,
            "client {i} was closed before its handshake timeout"
        );
        if (SILENT..SILENT + HEADER_TRICKLERS).contains(&i) {
            assert!(
                sent < PROTOCOL_HEADER.len(),
                "cut before its header was complete"
            );
        }
    }
    // One line per session, saying why it ended.
    syslog
        .wait_for(
            "{no AMQP header within timeout handshake}",
            SILENT + HEADER_TRICKLERS,
        )
        .await;
    syslog
        .wait_for(
            "handshake not finished within timeout handshake",
            FRAME_TRICKLERS,
        )
        .await;
    frontend_sessions(&w, "px", 0).await;
    // Generous: 300 sessions held by warren (plus this test's own clients) cost far less.
    let grown = during.saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB for 300 slow clients"
    );
    // And the frontend still serves.
    let c = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    drop(c);
    no_panics();
    w.stop().await;
}

#[tokio::test]
async fn tcp_slowloris_lives_by_timeout_client_as_in_haproxy_and_bounds_nothing_else() {
    count_panics();
    const SLOW: usize = 100;
    const EVERY: Duration = Duration::from_millis(400);
    const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
    let backend = Counting::start().await;
    let w = start(&tcp_cfg(
        "    timeout client 2s\n    maxconn 500",
        backend.addr,
    ));
    let addr = w.addr("px");
    let before = rss_kib();
    let t0 = Instant::now();
    // A byte every 400 ms keeps a tcp session alive (timeout client is an idle timeout, as
    // in HAProxy: only `maxconn` bounds how many such clients there are); after the 4th
    // byte they fall silent and timeout client cuts them.
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let s = TcpStream::connect(addr).await.expect("connect");
        slow.push(tokio::spawn(trickle(s, b"slow".to_vec(), EVERY)));
    }
    let (mut good, tag) = which_backend(addr).await;
    assert_eq!(tag, "hi");
    let during = rss_kib();
    good.write_all(b"fine\n").await.expect("write");
    assert_eq!(read_line(&mut good).await, "fine");
    drop(good);
    for task in slow {
        let (sent, ended) = tokio::time::timeout(LIMIT, task)
            .await
            .expect("closed")
            .expect("task");
        assert_eq!(sent, 4, "alive while trickling");
        assert!(
            ended - t0 >= EVERY * 4 + CLIENT_TIMEOUT,
            "cut only once silent for timeout client"
        );
    }
    frontend_sessions(&w, "px", 0).await;
    let grown = during.saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB for {SLOW} slow clients"
    );
    no_panics();
    w.stop().await;
}

// ---------------------------------------------------------------------------------------
// Garbage

/// Reads frames until a `connection.close`; returns its code and text.
async fn close_code(s: &mut TcpStream) -> (u16, String) {
    let mut tracker = FrameTracker::server();
    loop {
        match tokio::time::timeout(LIMIT, next_frame(s, &mut tracker))
            .await
            .expect("a frame or EOF")
        {
            Some(Got::Close { code, text }) => return (code, text),
            Some(_) => continue,
            None => panic!("closed without connection.close"),
        }
    }
}

#[tokio::test]
async fn garbage_gets_the_answer_amqp_prescribes_and_touches_no_other_session() {
    count_panics();
    let mut node = Node::start(0).await;
    let mut syslog = Syslog::bind().await;
    let w = start(&amqp_cfg("", node.addr, syslog.port()));
    let addr = w.addr("px");
    let mut good = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let mut rng = Prng(0x5eed_cafe_f00d_d00d);

    // Not AMQP 0-9-1 at all, or another version: the protocol header in reply, then EOF.
    let random = rng.bytes(4096);
    assert_ne!(&random[..8], PROTOCOL_HEADER);
    for first in [
        random,
        b"AMQP\x01\x01\x00\x09".to_vec(),
        b"AMQP\x00\x00\x09\x02".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01".to_vec(),
    ] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let _ = s.write_all(&first).await;
        assert_eq!(
            answer_then_close(&mut s).await,
            PROTOCOL_HEADER.to_vec(),
            "after {:?}",
            &first[..8]
        );
    }

    // A valid header, then framing garbage: connection.close 501, then EOF.
    let mut bad_end = encode(FRAME_HEARTBEAT, 0, b"");
    let last = bad_end.len() - 1;
    bad_end[last] = 0x00;
    let huge_header = [FRAME_METHOD, 0, 0, 0x7f, 0xff, 0xff, 0xff].to_vec();
    let undecodable = encode(FRAME_METHOD, 0, &[0, 10, 0, 11, 0xff]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "oversized frame header",
            huge_header,
            "bytes is larger than 8192",
        ),
        ("bad frame-end", bad_end, "0xCE"),
        (
            "random bytes after the header",
            rng.bytes(2048),
            "FRAME_ERROR",
        ),
        (
            "undecodable connection method",
            undecodable,
            "cannot decode",
        ),
    ];
    for (what, bytes, expect) in &cases {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(PROTOCOL_HEADER).await.expect("header");
        let _ = s.write_all(bytes).await;
        let (code, text) = close_code(&mut s).await;
        assert_eq!(code, 501, "{what}: {text}");
        assert!(
            text.starts_with("FRAME_ERROR") && text.contains(expect),
            "{what}: {text}"
        );
        assert!(
            answer_then_close(&mut s).await.is_empty(),
            "{what}: then closed"
        );
    }
    // The same after a complete handshake.
    let mut c = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    c.stream.write_all(&rng.bytes(1024)).await.expect("garbage");
    let (code, text) = close_code(&mut c.stream).await;
    assert_eq!(code, 501, "{text}");
    assert!(
        matches!(node.next().await, NodeEvent::Ended { .. }),
        "its node connection ends"
    );

    // Each hostile session left one line saying why.
    syslog.wait_for("{not an AMQP 0-9-1 client}", 4).await;
    syslog
        .wait_for(
            "told the client (connection.close 501): FRAME_ERROR",
            cases.len() + 1,
        )
        .await;
    // The good session never noticed.
    good.stream
        .write_all(&methods::connection_close(200, "bye"))
        .await
        .expect("write");
    assert_eq!(good.next().await, Some(Got::CloseOk));
    assert!(matches!(
        node.next().await,
        NodeEvent::Ended { close_seen: true }
    ));
    drop((good, c));
    frontend_sessions(&w, "px", 0).await;
    let again = Client::connect(addr, 0).await;
    assert!(
        matches!(node.next().await, NodeEvent::Opened),
        "the frontend still serves"
    );
    drop(again);
    no_panics();
    w.stop().await;
}
