//! A minimal AMQP 0-9-1 node and client for tests of warren's own AMQP behaviour (frame
//! following, heartbeats, polite closes). What RabbitMQ itself does is tested against real
//! RabbitMQ in `e2e/`; this fake only speaks the connection class.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use amq_protocol::protocol::{connection, AMQPClass};
use amq_protocol::types::{FieldTable, LongString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use warren::amqp::frame::{encode, FrameTracker, FRAME_HEARTBEAT, FRAME_METHOD, PROTOCOL_HEADER};
use warren::amqp::methods;

fn method(class: AMQPClass) -> Vec<u8> {
    encode(
        FRAME_METHOD,
        0,
        &methods::encode_class(&class).expect("encode"),
    )
}

pub fn start() -> Vec<u8> {
    method(AMQPClass::Connection(connection::AMQPMethod::Start(
        connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: FieldTable::default(),
            mechanisms: LongString::from("PLAIN"),
            locales: LongString::from("en_US"),
        },
    )))
}

pub fn tune(heartbeat: u16) -> Vec<u8> {
    method(AMQPClass::Connection(connection::AMQPMethod::Tune(
        connection::Tune {
            channel_max: 2047,
            frame_max: 131072,
            heartbeat,
        },
    )))
}

pub fn open_ok() -> Vec<u8> {
    method(AMQPClass::Connection(connection::AMQPMethod::OpenOk(
        connection::OpenOk {},
    )))
}

pub fn heartbeat_frame() -> Vec<u8> {
    encode(FRAME_HEARTBEAT, 0, &[])
}

/// A decoded channel-0 method, as far as tests care.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Close {
        code: u16,
        text: String,
    },
    CloseOk,
    Other(AMQPClass),
    /// A non-method frame (heartbeat, body…), by type.
    Frame(u8),
}

/// Reads frames from `s` until one arrives (or EOF: None).
pub async fn next_frame(s: &mut TcpStream, tracker: &mut FrameTracker) -> Option<Got> {
    let mut buf = [0u8; 1];
    loop {
        // One byte at a time keeps this simple and never reads past the frame.
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        let mut got = None;
        tracker
            .feed(&buf[..1], |f| {
                got = Some(match f.payload {
                    Some(p) => match amq_protocol::protocol::parse_class(p) {
                        Ok((_, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                            Got::Close {
                                code: c.reply_code,
                                text: c.reply_text.as_str().to_string(),
                            }
                        }
                        Ok((_, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))) => {
                            Got::CloseOk
                        }
                        Ok((_, other)) => Got::Other(other),
                        Err(_) => Got::Frame(FRAME_METHOD),
                    },
                    None => Got::Frame(f.kind),
                })
            })
            .ok()?;
        if got.is_some() {
            return got;
        }
    }
}

/// What the fake node reports about each connection it served.
#[derive(Debug)]
pub enum NodeEvent {
    Opened,
    /// The connection ended; `close_seen` tells whether the peer sent `connection.close`.
    Ended {
        close_seen: bool,
    },
}

/// A fake node: answers the handshake with `tune(heartbeat)`, then answers heartbeats
/// and `connection.close`, and reports to `events`.
pub struct Node {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<NodeEvent>,
    task: tokio::task::JoinHandle<()>,
    /// Dropping or sending on this makes the node cut every connection without a close.
    die: tokio::sync::watch::Sender<bool>,
}

impl Node {
    pub async fn start(heartbeat: u16) -> Node {
        Node::start_on("127.0.0.1:0".parse().expect("addr"), heartbeat).await
    }

    /// A node on a given address (to bring a "dead" server back).
    pub async fn start_on(addr: SocketAddr, heartbeat: u16) -> Node {
        let l = TcpListener::bind(addr).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (tx, events) = mpsc::unbounded_channel();
        let (die, die_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                // As the client does: no Nagle delay a paused clock would jump past.
                let _ = s.set_nodelay(true);
                let (tx, mut die_rx) = (tx.clone(), die_rx.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        // Connections that never opened (health checks) are not reported.
                        Some(close_seen) = serve(s, heartbeat, &tx) => { let _ = tx.send(NodeEvent::Ended { close_seen }); }
                        _ = die_rx.changed() => {}
                    }
                });
            }
        });
        Node {
            addr,
            events,
            task,
            die,
        }
    }

    /// Cuts every connection abruptly (as `kill -9` of a node does) and stops listening.
    pub fn kill(&self) {
        self.task.abort();
        let _ = self.die.send(true);
    }

    /// Stops accepting (new connects are refused) but keeps the open connections.
    pub fn stop_listening(&self) {
        self.task.abort();
    }

    /// Waits for the next event (with a limit for a hung test).
    pub async fn next(&mut self) -> NodeEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("node event within 10 s")
            .expect("node alive")
    }
}

/// Serves one connection; once opened, returns whether the peer sent `connection.close`.
async fn serve(
    mut s: TcpStream,
    heartbeat: u16,
    tx: &mpsc::UnboundedSender<NodeEvent>,
) -> Option<bool> {
    let mut header = [0u8; 8];
    if s.read_exact(&mut header).await.is_err() || &header != PROTOCOL_HEADER {
        return None;
    }
    let mut tracker = FrameTracker::server();
    s.write_all(&start()).await.ok()?;
    next_frame(&mut s, &mut tracker).await?; // start-ok
    s.write_all(&tune(heartbeat)).await.ok()?;
    next_frame(&mut s, &mut tracker).await?; // tune-ok
    next_frame(&mut s, &mut tracker).await?; // open
    s.write_all(&open_ok()).await.ok()?;
    let _ = tx.send(NodeEvent::Opened);
    Some(opened(s, tracker, heartbeat).await)
}

async fn opened(mut s: TcpStream, mut tracker: FrameTracker, heartbeat: u16) -> bool {
    loop {
        match next_frame(&mut s, &mut tracker).await {
            None => return false,
            Some(Got::Close { .. }) => {
                let _ = s.write_all(&methods::connection_close_ok()).await;
                return true;
            }
            Some(Got::Frame(FRAME_HEARTBEAT)) => {
                if heartbeat > 0 && s.write_all(&heartbeat_frame()).await.is_err() {
                    return false;
                }
            }
            Some(_) => {}
        }
    }
}

/// A raw AMQP client: connects and completes the handshake with `heartbeat`.
pub struct Client {
    pub stream: TcpStream,
    pub tracker: FrameTracker,
}

impl Client {
    pub async fn connect(addr: SocketAddr, heartbeat: u16) -> Client {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // Without it, Nagle holds a second small write until the first is ACKed, which the
        // kernel delays: invisible to a paused clock, which would jump past it.
        stream.set_nodelay(true).expect("nodelay");
        stream.write_all(PROTOCOL_HEADER).await.expect("header");
        let mut tracker = FrameTracker::server();
        let first = next_frame(&mut stream, &mut tracker).await;
        assert!(
            matches!(first, Some(Got::Other(_))),
            "connection.start, got {first:?}"
        );
        stream
            .write_all(&methods::start_ok_plain("guest", "guest"))
            .await
            .expect("start-ok");
        assert!(
            matches!(
                next_frame(&mut stream, &mut tracker).await,
                Some(Got::Other(_))
            ),
            "connection.tune"
        );
        stream
            .write_all(&tune_ok(heartbeat))
            .await
            .expect("tune-ok");
        stream.write_all(&methods::open("/")).await.expect("open");
        let open_ok = next_frame(&mut stream, &mut tracker).await;
        assert!(
            matches!(open_ok, Some(Got::Other(_))),
            "connection.open-ok, got {open_ok:?}"
        );
        Client { stream, tracker }
    }

    pub async fn next(&mut self) -> Option<Got> {
        tokio::time::timeout(
            Duration::from_secs(10),
            next_frame(&mut self.stream, &mut self.tracker),
        )
        .await
        .expect("a frame or EOF within 10 s")
    }
}

fn tune_ok(heartbeat: u16) -> Vec<u8> {
    method(AMQPClass::Connection(connection::AMQPMethod::TuneOk(
        connection::TuneOk {
            channel_max: 2047,
            frame_max: 131072,
            heartbeat,
        },
    )))
}

/// Reads frames until a `connection.close` (within 20 s); its code and text.
pub async fn close_code(s: &mut TcpStream) -> (u16, String) {
    let mut tracker = FrameTracker::server();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), next_frame(s, &mut tracker))
            .await
            .expect("a frame or EOF")
        {
            Some(Got::Close { code, text }) => return (code, text),
            Some(_) => continue,
            None => panic!("closed without connection.close"),
        }
    }
}
