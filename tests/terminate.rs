//! `amqp-terminate` mode over real sockets, against fake nodes: what is warren's own
//! behaviour (the handshake it plays, the node's answers passed on, framing rules). What
//! RabbitMQ does when a session moves is tested against real RabbitMQ in
//! `e2e/tests/terminate.rs`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use amq_protocol::protocol::{connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use common::amqp::{close_code, next_frame, Client, Got, Node, NodeEvent};
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
    // backlog), nothing ever answers. `fall 3`, yet one unanswered header marks it DOWN at
    // once, as in amqp mode; `inter 1h`: its TCP check (which a frozen node passes) plays
    // no part in the test.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let frozen = silent.local_addr().expect("addr");
    let mut node = Node::start(0).await;
    let mut syslog = common::hostile::Syslog::bind().await;
    let cfg = format!(
        "global\n    log 127.0.0.1:{} local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    option amqp-terminate\n    timeout connect 300ms\n\
         listen px\n    bind 127.0.0.1:0\n    balance first\n\
         server frozen {frozen} check inter 1h rise 2 fall 3\n    server n {}\n",
        syslog.port(),
        node.addr
    );
    let w = start(&cfg);
    let mut events = w.backend("px").events.subscribe();
    let mut c = Client::connect(w.addr("px"), 0).await;
    assert!(matches!(node.next().await, NodeEvent::Opened));
    common::wait_state(&mut events, "frozen", false, Duration::from_secs(10)).await;
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
    let down = syslog
        .wait_for("Server px/frozen is DOWN", 1)
        .await
        .remove(0);
    assert!(
        down.contains(
            "info: \"a session's connect failed: no connection.start within timeout connect\""
        ),
        "the DOWN line says why: {down}"
    );
    let line = syslog.wait_for(" px px/n ", 1).await.remove(0);
    assert!(
        line.contains("left=frozen:\"no connection.start within timeout connect\""),
        "the session's line says which server was left and why: {line}"
    );
    drop(silent);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------
// A node that answers channel and queue methods, records what it receives, and confirms
// publishes only when told to.

use amq_protocol::protocol::{basic, channel, confirm, queue};
use tokio::sync::mpsc;
use warren::amqp::frame::{FRAME_BODY, FRAME_HEADER};

/// What a scripted node saw: one line per method or content frame.
type Seen = mpsc::UnboundedReceiver<String>;

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    encode(kind, channel, payload)
}

fn on(channel: u16, class: AMQPClass) -> Vec<u8> {
    frame(
        FRAME_METHOD,
        channel,
        &methods::encode_class(&class).expect("encode"),
    )
}

/// A fake node's side of the handshake: header, start, start-ok, tune, tune-ok, open,
/// open-ok. False when the peer went away first.
async fn node_handshake(s: &mut TcpStream) -> bool {
    let mut header = [0u8; 8];
    if s.read_exact(&mut header).await.is_err() {
        return false;
    }
    let _ = s.write_all(&common::amqp::start()).await;
    let _ = read_frame(s).await; // start-ok
    let _ = s.write_all(&common::amqp::tune(0)).await;
    let _ = read_frame(s).await; // tune-ok
    let _ = read_frame(s).await; // open
    s.write_all(&common::amqp::open_ok()).await.is_ok()
}

/// Reads one whole frame: (type, channel, payload).
async fn read_frame(s: &mut TcpStream) -> Option<(u8, u16, Vec<u8>)> {
    let mut head = [0u8; 7];
    s.read_exact(&mut head).await.ok()?;
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
    let mut rest = vec![0u8; size + 1];
    s.read_exact(&mut rest).await.ok()?;
    rest.pop();
    Some((head[0], u16::from_be_bytes([head[1], head[2]]), rest))
}

/// A node that answers what a replay sends; `confirm_publishes` says whether it acks
/// publishes. Sending `true` on the returned watch cuts its connections (a `kill -9`).
async fn scripted_node(
    confirm_publishes: bool,
) -> (SocketAddr, Seen, tokio::sync::watch::Sender<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, seen) = mpsc::unbounded_channel();
    let (die, dying) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tx = tx.clone();
            let mut dying = dying.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = serve_scripted(s, tx, confirm_publishes) => {}
                    _ = dying.changed() => {}
                }
            });
        }
    });
    (addr, seen, die)
}

async fn serve_scripted(
    mut s: TcpStream,
    tx: mpsc::UnboundedSender<String>,
    confirm_publishes: bool,
) {
    {
        if !node_handshake(&mut s).await {
            return;
        }
        let mut published = 0u64;
        while let Some((kind, ch, payload)) = read_frame(&mut s).await {
            if kind == FRAME_HEADER || kind == FRAME_BODY {
                let _ = tx.send(format!(
                    "{ch} content {}",
                    String::from_utf8_lossy(if kind == FRAME_BODY { &payload } else { b"" })
                ));
                if kind == FRAME_BODY && confirm_publishes {
                    let _ = s
                        .write_all(&on(
                            ch,
                            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                                delivery_tag: published,
                                multiple: false,
                            })),
                        ))
                        .await;
                }
                continue;
            }
            if kind != FRAME_METHOD {
                continue;
            }
            let Ok((_, class)) = amq_protocol::protocol::parse_class(&payload[..]) else {
                return;
            };
            let reply = match &class {
                AMQPClass::Channel(channel::AMQPMethod::Open(_)) => Some(AMQPClass::Channel(
                    channel::AMQPMethod::OpenOk(channel::OpenOk {}),
                )),
                AMQPClass::Channel(channel::AMQPMethod::Close(_)) => Some(AMQPClass::Channel(
                    channel::AMQPMethod::CloseOk(channel::CloseOk {}),
                )),
                AMQPClass::Confirm(confirm::AMQPMethod::Select(c)) if !c.nowait => Some(
                    AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
                ),
                AMQPClass::Basic(basic::AMQPMethod::Qos(_)) => {
                    Some(AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})))
                }
                AMQPClass::Basic(basic::AMQPMethod::Consume(c)) => Some(AMQPClass::Basic(
                    basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                        consumer_tag: c.consumer_tag.clone(),
                    }),
                )),
                AMQPClass::Queue(queue::AMQPMethod::Declare(d)) => Some(AMQPClass::Queue(
                    queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                        queue: d.queue.clone(),
                        message_count: 0,
                        consumer_count: 0,
                    }),
                )),
                AMQPClass::Queue(queue::AMQPMethod::Bind(_)) => Some(AMQPClass::Queue(
                    queue::AMQPMethod::BindOk(queue::BindOk {}),
                )),
                AMQPClass::Basic(basic::AMQPMethod::Publish(_)) => {
                    published += 1;
                    None
                }
                AMQPClass::Connection(connection::AMQPMethod::Close(_)) => {
                    let _ = s.write_all(&methods::connection_close_ok()).await;
                    return;
                }
                _ => None,
            };
            let name = format!("{class:?}");
            let name = name
                .split(['(', ' ', '{'])
                .take(2)
                .collect::<Vec<_>>()
                .join(".");
            let _ = tx.send(format!("{ch} {name}"));
            if let Some(reply) = reply {
                let _ = s.write_all(&on(ch, reply)).await;
            }
        }
    }
}

/// Drains what a node saw so far (the node sends a line per frame; a `channel.close` on
/// warren's replay channel marks the end of the topology replay).
async fn seen_until(seen: &mut Seen, last: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = tokio::time::timeout(LIMIT, seen.recv())
            .await
            .expect("node saw more")
            .expect("node");
        let done = line.contains(last);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

async fn handshake(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(PROTOCOL_HEADER).await.expect("header");
    let _start = read_frame(&mut s).await.expect("start");
    s.write_all(&method(AMQPClass::Connection(
        connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: "PLAIN".into(),
            response: LongString::from("\0guest\0guest".as_bytes()),
            locale: "en_US".into(),
        }),
    )))
    .await
    .expect("start-ok");
    let _tune = read_frame(&mut s).await.expect("tune");
    s.write_all(&method(AMQPClass::Connection(
        connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 2046,
            frame_max: 131072,
            heartbeat: 0,
        }),
    )))
    .await
    .expect("tune-ok");
    s.write_all(&method(AMQPClass::Connection(
        connection::AMQPMethod::Open(connection::Open {
            virtual_host: "/".into(),
        }),
    )))
    .await
    .expect("open");
    let (_, _, ok) = read_frame(&mut s).await.expect("open-ok");
    assert_eq!(&ok[..4], &[0, 10, 0, 41], "connection.open-ok");
    s
}

fn publish(ch: u16, body: &str) -> Vec<u8> {
    let mut out = on(
        ch,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: "q".into(),
            mandatory: false,
            immediate: false,
        })),
    );
    let mut header = vec![0, 60, 0, 0];
    header.extend_from_slice(&(body.len() as u64).to_be_bytes());
    header.extend_from_slice(&[0, 0]);
    out.extend(frame(FRAME_HEADER, ch, &header));
    out.extend(frame(FRAME_BODY, ch, body.as_bytes()));
    out
}

#[tokio::test]
async fn a_move_replays_topology_then_channels_then_unconfirmed_publishes_in_order() {
    let (a, mut seen_a, kill_a) = scripted_node(false).await;
    let (b, mut seen_b, _node_b) = scripted_node(false).await;
    let cfg = format!(
        "defaults\n    mode tcp\n    option amqp-terminate\n    timeout connect 2s\n\
         listen px\n    bind 127.0.0.1:0\n    balance first\n    server a {a}\n    server b {b}\n"
    );
    let w = start(&cfg);
    let mut c = handshake(w.addr("px")).await;
    c.write_all(&on(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    ))
    .await
    .expect("open");
    let _ = read_frame(&mut c).await.expect("open-ok");
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: "q".into(),
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    }));
    c.write_all(&on(1, declare)).await.expect("declare");
    let _ = read_frame(&mut c).await.expect("declare-ok");
    c.write_all(&on(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: 7,
            global: false,
        })),
    ))
    .await
    .expect("qos");
    let _ = read_frame(&mut c).await.expect("qos-ok");
    let consume = AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: "q".into(),
        consumer_tag: "".into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    }));
    c.write_all(&on(1, consume)).await.expect("consume");
    let (_, _, ok) = read_frame(&mut c).await.expect("consume-ok");
    let tag = match amq_protocol::protocol::parse_class(&ok[..]) {
        Ok((_, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(o)))) => o.consumer_tag.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(tag.starts_with("warren.ctag-"), "{tag}");
    for body in ["one", "two", "three"] {
        c.write_all(&publish(1, body)).await.expect("publish");
    }
    seen_until(&mut seen_a, "content three").await;
    let _ = kill_a.send(true);
    let replay = seen_until(&mut seen_b, "content three").await;
    let expected = [
        "2047 Channel.Open",
        "2047 Queue.Declare",
        "2047 Channel.Close",
        "1 Channel.Open",
        "1 Confirm.Select",
        "1 Basic.Qos",
        "1 Basic.Consume",
        "1 Basic.Publish",
        "1 content ",
        "1 content one",
        "1 Basic.Publish",
        "1 content ",
        "1 content two",
        "1 Basic.Publish",
        "1 content ",
        "1 content three",
    ];
    assert_eq!(replay, expected, "what node b saw");
    // The client noticed nothing: its channel still works on node b.
    c.write_all(&publish(1, "four")).await.expect("publish");
    assert_eq!(
        seen_until(&mut seen_b, "content four")
            .await
            .last()
            .map(String::as_str),
        Some("1 content four")
    );
    w.stop().await;
}

/// A node that reads publishes at once but confirms them only once released: the stand-in
/// for a slow node, to see warren's publish budget push back on the client. The returned
/// watch counts the publishes it has read.
async fn slow_confirming_node() -> (
    SocketAddr,
    tokio::sync::watch::Receiver<u64>,
    tokio::sync::watch::Sender<bool>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (count, seen) = tokio::sync::watch::channel(0u64);
    let (release, released) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let Ok((mut s, _)) = l.accept().await else {
            return;
        };
        if !node_handshake(&mut s).await {
            return;
        }
        let (mut rd, wr) = s.into_split();
        let wr = std::sync::Arc::new(tokio::sync::Mutex::new(wr));
        let (w2, mut counted, mut released) =
            (std::sync::Arc::clone(&wr), count.subscribe(), released);
        // Once released, every publish read is confirmed (multiple) as it is counted.
        tokio::spawn(async move {
            let _ = released.wait_for(|r| *r).await;
            loop {
                let n = *counted.borrow_and_update();
                let ack = on(
                    1,
                    AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                        delivery_tag: n,
                        multiple: true,
                    })),
                );
                if w2.lock().await.write_all(&ack).await.is_err()
                    || counted.changed().await.is_err()
                {
                    return;
                }
            }
        });
        let mut head = [0u8; 7];
        while rd.read_exact(&mut head).await.is_ok() {
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            let mut rest = vec![0u8; size + 1];
            if rd.read_exact(&mut rest).await.is_err() {
                return;
            }
            if head[0] == FRAME_METHOD && rest.starts_with(&[0, 20, 0, 10]) {
                let ok = on(
                    1,
                    AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
                );
                let _ = wr.lock().await.write_all(&ok).await;
            }
            if head[0] == FRAME_METHOD && rest.starts_with(&[0, 60, 0, 40]) {
                count.send_modify(|n| *n += 1);
            }
        }
    });
    (addr, seen, release)
}

#[tokio::test]
async fn unconfirmed_publishes_past_the_budget_push_back_on_the_client() {
    let (node, mut seen, release) = slow_confirming_node().await;
    let cfg = format!(
        "defaults\n    mode tcp\n    option amqp-terminate\n    timeout connect 2s\n    amqp-publish-buffer 128k\n\
         listen px\n    bind 127.0.0.1:0\n    server n {node}\n"
    );
    let w = start(&cfg);
    let mut c = handshake(w.addr("px")).await;
    c.write_all(&on(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    ))
    .await
    .expect("open");
    let _ = read_frame(&mut c).await.expect("open-ok");
    let body = "x".repeat(64 * 1024);
    const MESSAGES: u64 = 40;
    let (_rd, mut wr) = c.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            if wr.write_all(&publish(1, &body)).await.is_err() {
                return;
            }
        }
        // keep the connection open until the test ends
        std::future::pending::<()>().await;
    });
    tokio::time::timeout(LIMIT, seen.wait_for(|n| *n >= 2))
        .await
        .expect("publishes reach the node")
        .expect("node");
    // A bounded look for more: with 128 KiB kept unconfirmed, warren reads no further.
    let more = tokio::time::timeout(Duration::from_millis(500), seen.wait_for(|n| *n > 3))
        .await
        .is_ok();
    assert!(
        !more,
        "more than 3 publishes of 64 KiB passed a 128 KiB budget"
    );
    // The node confirms: the rest flows.
    let _ = release.send(true);
    tokio::time::timeout(LIMIT, seen.wait_for(|n| *n >= MESSAGES))
        .await
        .expect("every publish once the node confirmed")
        .expect("node");
    writer.abort();
    w.stop().await;
}
