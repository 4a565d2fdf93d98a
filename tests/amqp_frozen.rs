//! A frozen node never costs a client its connection attempt (AMQP mode). A frozen node
//! (SIGSTOP, a stuck VM) still completes TCP handshakes, its kernel queueing them in the
//! backlog, but never answers. In `amqp` mode the node's answer to the protocol header is
//! part of connecting, within `timeout connect`: a node that does not answer is a failed
//! connect, with retries, redispatch to a node that answers, passive health, and a log
//! line that says which server was left and why. The client sees one ordinary handshake.
//!
//! The frozen node here is a listening socket nobody accepts on. Timeouts run on tokio's
//! paused clock.

mod common;

use std::sync::atomic::Ordering;

use common::amqp::{Client, Node, NodeEvent};
use common::hostile::Syslog;
use common::*;
use tokio::io::AsyncWriteExt;

const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn cfg(syslog: u16, defaults: &str, servers: &str) -> String {
    format!(
        "global\n    log 127.0.0.1:{syslog} local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 300ms\n    timeout client 30s\n    timeout server 30s\n{defaults}\n\
         listen px\n    bind 127.0.0.1:0\n    option amqp\n    balance first\n{servers}\n"
    )
}

#[tokio::test(start_paused = true)]
async fn a_node_that_does_not_answer_the_header_is_left_for_one_that_does() {
    let frozen = listener().await;
    let frozen_addr = frozen.local_addr().expect("addr");
    let mut node = Node::start(0).await;
    let mut syslog = Syslog::bind().await;
    let w = start(&cfg(
        syslog.port(),
        "    retries 3\n    option redispatch",
        // `fall 3`, yet one unanswered header marks it DOWN at once (passive health); `rise
        // 2` and a long `inter`: the TCP check it asks for (which a frozen node passes)
        // cannot bring it back during the test.
        &format!(
            "    server frozen {frozen_addr} check inter 1h rise 2 fall 3\n    server live {}",
            node.addr
        ),
    ));
    let backend = w.backend("px");
    let mut events = backend.events.subscribe();

    // `balance first` sends the session to the frozen node first.
    let mut client = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    wait_state(&mut events, "frozen", false, LIMIT).await;
    let frozen_state = backend.server("frozen").expect("frozen");
    assert_eq!(
        frozen_state.counters.connect_errors.load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        frozen_state.counters.redispatches.load(Ordering::Relaxed),
        1
    );

    client
        .stream
        .write_all(&warren::amqp::methods::connection_close(200, "done"))
        .await
        .expect("close");
    drop(client);
    let down = syslog
        .wait_for("Server px/frozen is DOWN", 1)
        .await
        .remove(0);
    assert!(
        down.contains("reason: Layer7 timeout, info: \"a session's connect failed: no connection.start within timeout connect\""),
        "the DOWN line says why: {down}"
    );
    let line = syslog.wait_for(" px px/live ", 1).await.remove(0);
    assert!(
        line.contains("left=frozen:\"no connection.start within timeout connect\""),
        "the line says which server was left and why: {line}"
    );
    assert!(line.contains("/+1 "), "redispatched once: {line}");
    drop(frozen);
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_every_node_frozen_the_session_fails_as_a_connect_timeout() {
    let frozen = listener().await;
    let frozen_addr = frozen.local_addr().expect("addr");
    let mut syslog = Syslog::bind().await;
    let w = start(&cfg(
        syslog.port(),
        "    retries 1",
        &format!("    server frozen {frozen_addr}"),
    ));
    let mut c = tokio::net::TcpStream::connect(w.addr("px"))
        .await
        .expect("connect");
    c.write_all(warren::amqp::frame::PROTOCOL_HEADER)
        .await
        .expect("header");
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut c))
        .await
        .expect("closed after the connect attempts");
    assert!(got.is_empty(), "nothing from a node that never answered");
    let line = syslog.wait_for(" px px/frozen ", 1).await.remove(0);
    assert!(line.contains(" sC "), "a connect timeout: {line}");
    assert_eq!(
        line.matches("left=frozen:\"no connection.start within timeout connect\"")
            .count(),
        2,
        "the first attempt and the retry: {line}"
    );
    drop(frozen);
    w.stop().await;
}

/// A node that takes the connection and closes it instead of answering (a node shutting
/// down) is left the same way, as an aborted connect.
#[tokio::test(start_paused = true)]
async fn a_node_that_closes_instead_of_answering_is_left_too() {
    let closing = listener().await;
    let closing_addr = closing.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = closing.accept().await {
            drop(s);
        }
    });
    let mut node = Node::start(0).await;
    let mut syslog = Syslog::bind().await;
    let w = start(&cfg(
        syslog.port(),
        "    retries 3\n    option redispatch",
        &format!(
            "    server closing {closing_addr}\n    server live {}",
            node.addr
        ),
    ));
    let mut client = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    client
        .stream
        .write_all(&warren::amqp::methods::connection_close(200, "done"))
        .await
        .expect("close");
    drop(client);
    let line = syslog.wait_for(" px px/live ", 1).await.remove(0);
    assert!(
        line.contains(
            "left=closing:\"closed the connection instead of answering the AMQP protocol header\""
        ),
        "{line}"
    );
    w.stop().await;
}
