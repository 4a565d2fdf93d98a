//! Slow clients over real sockets (slowloris, AMQP and tcp mode): warren cuts them by the
//! deadlines that apply and serves everyone else meanwhile. Part of the hostile-client
//! tests (`hostile.rs`); the kit is `common/hostile.rs`.
//!
//! These run on real time with short timeouts: a paused clock jumps to the next timer
//! whenever the runtime waits for I/O, which would push a well-behaved client past its
//! handshake timeout. The slow clients sleep between their bytes: that is what they are.
//! Their only time checks are lower bounds that hold by construction (warren never cuts a
//! client before its deadline).

mod common;

use std::time::Duration;

use common::amqp::{Client, Got, Node, NodeEvent};
use common::hostile::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use warren::amqp::frame::PROTOCOL_HEADER;
use warren::amqp::methods;

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
