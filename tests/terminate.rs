//! `amqp-terminate` mode over real sockets, against fake nodes: what is warren's own
//! behaviour (the handshake it plays, the node's answers passed on, framing rules). What
//! RabbitMQ does when a session moves is tested against real RabbitMQ in
//! `e2e/tests/terminate.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use amq_protocol::protocol::{connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use common::amqp::{next_frame, Client, Got, Node, NodeEvent};
use common::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren::amqp::frame::{encode, FrameTracker, FRAME_METHOD, PROTOCOL_HEADER};
use warren::amqp::methods;

const LIMIT: Duration = Duration::from_secs(10);

fn cfg(node: SocketAddr) -> String {
    format!(
        "defaults\n    mode tcp\n    option amqp-terminate\n    timeout connect 2s\n    timeout failover 2s\n\
         listen px\n    bind 127.0.0.1:0\n    server n {node}\n"
    )
}

fn method(class: AMQPClass) -> Vec<u8> {
    encode(
        FRAME_METHOD,
        0,
        &methods::encode_class(&class).expect("encode"),
    )
}

/// Reads frames until a `connection.close`; its code and text.
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
async fn a_client_that_breaks_the_framing_loses_only_its_own_connection() {
    let mut node = Node::start(0).await;
    let w = start(&cfg(node.addr));
    let addr = w.addr("px");
    let mut good = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let mut bad = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    // An unknown frame type, then a frame over the negotiated frame_max.
    bad.stream.write_all(&[0xff; 64]).await.expect("garbage");
    let (code, text) = close_code(&mut bad.stream).await;
    assert_eq!(code, 501, "{text}");
    assert!(text.contains("unknown frame type"), "{text}");
    assert!(
        matches!(node.next().await, NodeEvent::Ended { close_seen: true }),
        "warren closes its node connection cleanly"
    );
    let mut big = Client::connect(addr, 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    let huge = [FRAME_METHOD, 0, 1, 0x00, 0x10, 0x00, 0x00];
    big.stream.write_all(&huge).await.expect("header");
    let (code, text) = close_code(&mut big.stream).await;
    assert_eq!(code, 501, "{text}");
    assert!(text.contains("exceeds frame_max 131072"), "{text}");
    // The good session never noticed.
    good.stream
        .write_all(&methods::connection_close(200, "bye"))
        .await
        .expect("write");
    assert_eq!(good.next().await, Some(Got::CloseOk));
    w.stop().await;
}

/// A fake node whose `connection.start` carries `properties`, and that answers `start-ok`
/// with `refusal` when given (RabbitMQ's ACCESS_REFUSED), else with `tune`.
async fn fake_node(properties: FieldTable, refusal: Option<(u16, &'static str)>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let properties = properties.clone();
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if s.read_exact(&mut header).await.is_err() {
                    return;
                }
                let start = method(AMQPClass::Connection(connection::AMQPMethod::Start(
                    connection::Start {
                        version_major: 0,
                        version_minor: 9,
                        server_properties: properties,
                        mechanisms: LongString::from("PLAIN AMQPLAIN"),
                        locales: LongString::from("en_US"),
                    },
                )));
                let _ = s.write_all(&start).await;
                let mut tracker = FrameTracker::server();
                if next_frame(&mut s, &mut tracker).await.is_none() {
                    return;
                }
                match refusal {
                    Some((code, text)) => {
                        let _ = s.write_all(&methods::connection_close(code, text)).await;
                        let _ = next_frame(&mut s, &mut tracker).await;
                    }
                    None => {
                        let _ = s.write_all(&common::amqp::tune(0)).await;
                        let _ = next_frame(&mut s, &mut tracker).await;
                        let _ = next_frame(&mut s, &mut tracker).await;
                        let _ = s.write_all(&common::amqp::open_ok()).await;
                        while next_frame(&mut s, &mut tracker).await.is_some() {}
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_client_sees_the_nodes_start_and_limits_and_its_refusal() {
    let mut props = FieldTable::default();
    props.insert("product".into(), AMQPValue::LongString("RabbitMQ".into()));
    let mut caps = FieldTable::default();
    caps.insert("consumer_cancel_notify".into(), AMQPValue::Boolean(true));
    caps.insert("connection.blocked".into(), AMQPValue::Boolean(true));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    let node = fake_node(props.clone(), None).await;
    let w = start(&cfg(node));
    let mut s = TcpStream::connect(w.addr("px")).await.expect("connect");
    s.write_all(PROTOCOL_HEADER).await.expect("header");
    let mut tracker = FrameTracker::server();
    match tokio::time::timeout(LIMIT, next_frame(&mut s, &mut tracker))
        .await
        .expect("start")
    {
        Some(Got::Other(AMQPClass::Connection(connection::AMQPMethod::Start(st)))) => {
            assert_eq!(
                st.server_properties, props,
                "the node's properties and capabilities"
            );
            assert_eq!(st.mechanisms.to_string(), "PLAIN AMQPLAIN");
        }
        other => panic!("expected the node's connection.start, got {other:?}"),
    }
    let start_ok = method(AMQPClass::Connection(connection::AMQPMethod::StartOk(
        connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: "PLAIN".into(),
            response: LongString::from("\0guest\0guest".as_bytes()),
            locale: "en_US".into(),
        },
    )));
    s.write_all(&start_ok).await.expect("start-ok");
    match tokio::time::timeout(LIMIT, next_frame(&mut s, &mut tracker))
        .await
        .expect("tune")
    {
        Some(Got::Other(AMQPClass::Connection(connection::AMQPMethod::Tune(t)))) => {
            assert_eq!(t.frame_max, 131072, "the node's frame_max");
            assert_eq!(
                t.channel_max, 2046,
                "one channel kept back for warren's replays"
            );
        }
        other => panic!("expected tune, got {other:?}"),
    }
    w.stop().await;

    // A refused login: the node's own close, word for word.
    let text = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN";
    let node = fake_node(FieldTable::default(), Some((403, text))).await;
    let w = start(&cfg(node));
    let mut s = TcpStream::connect(w.addr("px")).await.expect("connect");
    s.write_all(PROTOCOL_HEADER).await.expect("header");
    let mut tracker = FrameTracker::server();
    let _start = next_frame(&mut s, &mut tracker).await;
    s.write_all(&start_ok).await.expect("start-ok");
    let (code, said) = close_code(&mut s).await;
    assert_eq!((code, said.as_str()), (403, text));
    w.stop().await;
}

#[tokio::test]
async fn a_node_that_answers_no_header_is_left_for_another() {
    // A frozen node: its socket accepts (the kernel completes the handshake into the
    // backlog), nothing ever answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let frozen = silent.local_addr().expect("addr");
    let mut node = Node::start(0).await;
    let cfg = format!(
        "defaults\n    mode tcp\n    option amqp-terminate\n    timeout connect 300ms\n\
         listen px\n    bind 127.0.0.1:0\n    balance first\n    server frozen {frozen}\n    server n {}\n",
        node.addr
    );
    let w = start(&cfg);
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    c.stream
        .write_all(&methods::connection_close(200, "bye"))
        .await
        .expect("write");
    assert_eq!(c.next().await, Some(Got::CloseOk));
    let down = w.backend("px").server("frozen").map(|s| {
        s.counters
            .connect_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    assert_eq!(down, Some(1), "the silent node counted as a failed connect");
    drop(silent);
    w.stop().await;
}
