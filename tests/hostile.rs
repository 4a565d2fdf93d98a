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
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::amqp::{close_code, Client, Got, Node, NodeEvent};
use common::hostile::*;
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use warren::amqp::frame::{encode, FRAME_HEARTBEAT, FRAME_METHOD, PROTOCOL_HEADER};
use warren::amqp::methods;

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

#[tokio::test(start_paused = true)]
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
