//! AMQP mode over real sockets, against a fake node that speaks the connection class:
//! what warren itself does (header check, liveness from heartbeats, polite closes).
//! RabbitMQ's own behaviour is tested against real nodes in `e2e/`.

mod common;

use std::time::Duration;

use common::amqp::{Client, Got, Node, NodeEvent};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren::amqp::frame::PROTOCOL_HEADER;
use warren::config::{Config, Mode};

const LIMIT: Duration = Duration::from_secs(10);

fn amqp(c: &mut Config) {
    for f in &mut c.frontends {
        f.mode = Mode::Amqp;
    }
    for b in &mut c.backends {
        b.mode = Mode::Amqp;
    }
}

fn cfg(timeouts: &str, servers: &str) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n{timeouts}\n\
         listen px\n    bind 127.0.0.1:0\n{servers}\n"
    )
}

fn handshake_timeout(ms: u64) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        amqp(c);
        for f in &mut c.frontends {
            f.timeouts.handshake = Some(Duration::from_millis(ms));
        }
    }
}

#[tokio::test]
async fn a_non_amqp_client_gets_the_protocol_header_and_never_reaches_a_node() {
    let mut node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    server n {}", node.addr),
        ),
        amqp,
    );
    let mut s = TcpStream::connect(w.addr("px")).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
    let answer = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("closed");
    assert_eq!(answer, PROTOCOL_HEADER.to_vec());
    // The node saw nothing: a real client opens normally right after.
    let c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    drop(c);
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_stalling_in_the_handshake_is_closed() {
    let node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    server n {}", node.addr),
        ),
        handshake_timeout(200),
    );
    let mut s = TcpStream::connect(w.addr("px")).await.expect("connect");
    s.write_all(&PROTOCOL_HEADER[..4])
        .await
        .expect("half a header");
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("closed by timeout handshake");
    assert!(rest.is_empty());
    // After the header, a client that never answers connection.start is closed too.
    let mut s = TcpStream::connect(w.addr("px")).await.expect("connect");
    s.write_all(PROTOCOL_HEADER).await.expect("header");
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("closed by timeout handshake");
    assert!(
        !got.is_empty(),
        "connection.start was forwarded before the cut"
    );
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_quiet_session_without_heartbeats_outlives_timeout_client_and_server() {
    let mut node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 100ms\n    timeout server 100ms",
            &format!("    server n {}", node.addr),
        ),
        amqp,
    );
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    // Many times timeout client/server pass (on the paused clock, warren's timers fire first
    // if they apply); in tcp mode this session would be cut.
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.stream
        .write_all(&warren::amqp::methods::connection_close(200, "done"))
        .await
        .expect("still open");
    assert_eq!(c.next().await, Some(Got::CloseOk));
    assert!(matches!(
        node.next().await,
        NodeEvent::Ended { close_seen: true }
    ));
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_heartbeating_is_declared_dead() {
    let mut node = Node::start(1).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 1h\n    timeout server 1h",
            &format!("    server n {}", node.addr),
        ),
        amqp,
    );
    let mut c = Client::connect(w.addr("px"), 1).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    // The client sends nothing more. With heartbeat 1 s warren gives it 2×1 s + 1 s;
    // the node then sees its connection end.
    let ended = node.next().await;
    assert!(matches!(ended, NodeEvent::Ended { .. }), "{ended:?}");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LIMIT, c.stream.read_to_end(&mut rest))
        .await
        .expect("client side closed");
    w.stop().await;
}

#[tokio::test]
async fn a_dying_node_gets_its_clients_a_connection_close_320_with_the_reason() {
    let mut node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    server rabbit2 {}", node.addr),
        ),
        amqp,
    );
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    node.kill();
    match c.next().await {
        Some(Got::Close { code, text }) => {
            assert_eq!(code, 320);
            assert!(text.contains("px/rabbit2"), "reason names the node: {text}");
            assert!(text.starts_with("CONNECTION_FORCED"), "{text}");
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    c.stream
        .write_all(&warren::amqp::methods::connection_close_ok())
        .await
        .expect("close-ok");
    assert_eq!(c.next().await, None, "then the socket closes");
    w.stop().await;
}

#[tokio::test]
async fn shutdown_sessions_on_marked_down_tells_the_client_why() {
    let mut node = Node::start(0).await;
    let dead = refused_addr().await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    balance first\n    server n {} check inter 100 fall 1 on-marked-down shutdown-sessions\n    server spare {dead}", node.addr),
        ),
        amqp,
    );
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let mut events = w.backend("px").events.subscribe();
    // Make the checks fail while the session itself stays up: the node stops listening
    // but keeps this connection.
    node.stop_listening();
    wait_state(&mut events, "n", false, LIMIT).await;
    match c.next().await {
        Some(Got::Close { code, text }) => {
            assert_eq!(code, 320);
            assert!(text.contains("px/n") && text.contains("DOWN"), "{text}");
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    c.stream
        .write_all(&warren::amqp::methods::connection_close_ok())
        .await
        .expect("close-ok");
    w.stop().await;
}

#[tokio::test]
async fn stopping_warren_closes_amqp_sessions_politely_on_both_sides() {
    let mut node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    server n {}", node.addr),
        ),
        amqp,
    );
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let stopping = tokio::spawn(w.stop());
    match c.next().await {
        Some(Got::Close { code, text }) => {
            assert_eq!(code, 320);
            assert!(text.contains("shutting down"), "{text}");
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    c.stream
        .write_all(&warren::amqp::methods::connection_close_ok())
        .await
        .expect("close-ok");
    assert!(
        matches!(node.next().await, NodeEvent::Ended { close_seen: true }),
        "the node got a clean close too"
    );
    stopping.await.expect("stopped");
}

#[tokio::test(start_paused = true)]
async fn a_malformed_frame_closes_that_session_only() {
    let mut node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    server n {}", node.addr),
        ),
        amqp,
    );
    let mut good = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let mut bad = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    bad.stream
        .write_all(&[9, 0, 0, 0, 0, 0, 0, 0xCE])
        .await
        .expect("garbage frame type");
    match bad.next().await {
        Some(Got::Close { code, text }) => {
            assert_eq!(code, 501, "{text}");
            assert!(
                text.starts_with("FRAME_ERROR") && text.contains("unknown frame type 9"),
                "{text}"
            );
        }
        other => panic!("expected connection.close 501, got {other:?}"),
    }
    assert_eq!(bad.next().await, None, "then the bad session is closed");
    assert!(matches!(node.next().await, NodeEvent::Ended { .. }));
    good.stream
        .write_all(&warren::amqp::methods::connection_close(200, "bye"))
        .await
        .expect("write");
    assert_eq!(
        good.next().await,
        Some(Got::CloseOk),
        "the other session is untouched"
    );
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn frames_over_the_limit_get_connection_close_501_before_and_after_tune() {
    let mut node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!("    server n {}", node.addr),
        ),
        amqp,
    );
    // Before tune-ok: RabbitMQ's initial frame_max (8192) holds, with its 8-byte fudge.
    let mut s = TcpStream::connect(w.addr("px")).await.expect("connect");
    s.write_all(PROTOCOL_HEADER).await.expect("header");
    let mut tracker = warren::amqp::frame::FrameTracker::server();
    assert!(
        matches!(
            common::amqp::next_frame(&mut s, &mut tracker).await,
            Some(Got::Other(_))
        ),
        "connection.start"
    );
    let mut big_start_ok = vec![1u8, 0, 0];
    big_start_ok.extend_from_slice(&8193u32.to_be_bytes());
    s.write_all(&big_start_ok)
        .await
        .expect("oversized frame header");
    match tokio::time::timeout(LIMIT, common::amqp::next_frame(&mut s, &mut tracker))
        .await
        .expect("an answer")
    {
        Some(Got::Close { code, text }) => {
            assert_eq!(code, 501);
            assert!(
                text.contains("8201 bytes") && text.contains("before connection.tune-ok"),
                "{text}"
            );
        }
        other => panic!("expected connection.close 501, got {other:?}"),
    }
    // After tune-ok (frame_max 131072), a body frame one byte over the fudge is refused.
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let mut body = vec![3u8, 0, 1];
    body.extend_from_slice(&(131072u32 + 1).to_be_bytes());
    c.stream
        .write_all(&body)
        .await
        .expect("oversized body header");
    match c.next().await {
        Some(Got::Close { code, text }) => {
            assert_eq!(code, 501);
            assert!(text.contains("negotiated frame_max 131072"), "{text}");
        }
        other => panic!("expected connection.close 501, got {other:?}"),
    }
    assert_eq!(c.next().await, None, "and the session ends");
    assert!(matches!(
        node.next().await,
        NodeEvent::Ended { close_seen: false }
    ));
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn rebalance_sheds_the_excess_to_a_node_that_came_back() {
    let (a, b) = (Node::start(0).await, Node::start(0).await);
    let c_addr = refused_addr().await;
    let w = start_adjusted(
        &cfg(
            "    timeout client 30s\n    timeout server 30s",
            &format!(
                "    server a {} check inter 100 rise 1 fall 1\n    server b {} check inter 100 rise 1 fall 1\n    server c {c_addr} check inter 100 rise 1 fall 1",
                a.addr, b.addr
            ),
        ),
        |c| {
            amqp(c);
            c.backends[0].rebalance = Some(warren::config::Rebalance { window: Duration::from_millis(400), batch: 1 });
        },
    );
    let be = w.backend("px");
    let mut events = be.events.subscribe();
    wait_state(&mut events, "c", false, LIMIT).await;
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(Client::connect(w.addr("px"), 0).await);
    }
    let count = |name: &str| {
        be.server(name)
            .map(|s| {
                s.counters
                    .current
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .unwrap_or(0)
    };
    assert_eq!((count("a"), count("b"), count("c")), (3, 3, 0));

    let _c = Node::start_on(c_addr, 0).await;
    wait_state(&mut events, "c", true, LIMIT).await;
    // Two clients (one from a, one from b) are told to reconnect; they do, and land on c.
    let mut shed = 0;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while shed < 2 && tokio::time::Instant::now() < deadline {
        for client in &mut clients {
            // A short look at each client in turn; a frame not complete yet stays in the
            // client's tracker for the next round.
            let got = tokio::time::timeout(Duration::from_millis(20), client.next()).await;
            if let Ok(Some(Got::Close { code, text })) = got {
                assert_eq!(code, 320);
                assert!(text.contains("rebalancing"), "{text}");
                client
                    .stream
                    .write_all(&warren::amqp::methods::connection_close_ok())
                    .await
                    .expect("close-ok");
                *client = Client::connect(w.addr("px"), 0).await;
                shed += 1;
            }
        }
    }
    assert_eq!(shed, 2);
    assert_eq!((count("a"), count("b"), count("c")), (2, 2, 2));
    w.stop().await;
}
