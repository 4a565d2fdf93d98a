//! AMQP clients for the tests: lapin on tokio, the report's topology, and a raw client.
//!
//! The raw client exists because lapin cannot switch heartbeats off: when it asks for 0 and
//! the server proposes 60 s, it follows the server. The report's consumers (like php-amqplib
//! or amqplib by default) answer `tune-ok` with heartbeat 0, which RabbitMQ honours; that is
//! the quiet connection a proxy's `timeout client` cuts, so the raw client reproduces it.

use anyhow::{bail, Context, Result};
use lapin::options::{
    BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Duration;

/// The report's exchange (its name is not in the report; a direct exchange is).
pub const EXCHANGE: &str = "clusterRabbitExchange";
pub const KEY1: &str = "clusterRabbit1key";
pub const KEY2: &str = "clusterRabbit2key";
pub const COMMON_KEY: &str = "clusterRabbitCommonKey";

/// The report's four queues and their routing keys, in consumer order 1..4.
pub const QUEUES: [(&str, &str); 4] = [
    ("clusterRabbit1Queue1", KEY1),
    ("clusterRabbit1Queue2", COMMON_KEY),
    ("clusterRabbit2Queue1", KEY2),
    ("clusterRabbit2Queue2", COMMON_KEY),
];

/// Queues (0-based indices into [`QUEUES`]) that a message with `key` must reach.
pub fn queues_for_key(key: &str) -> Vec<usize> {
    QUEUES
        .iter()
        .enumerate()
        .filter(|(_, (_, k))| *k == key)
        .map(|(i, _)| i)
        .collect()
}

/// Connects with lapin on the current tokio runtime; `name` becomes the client-provided
/// connection name (`connection_name`), which is how the tests find a connection's node.
pub async fn connect(uri: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name(name.into());
    Connection::connect(uri, props).await
}

/// Closes a connection that is not under test. lapin reports "invalid channel state:
/// Closing" when a dropped channel is still closing as the connection closes; that is not a
/// failure of anything the tests check.
pub async fn close(conn: &Connection) {
    let _ = conn.close(200, "done").await;
}

/// Deletes and re-declares the report's topology: a direct exchange and the four queues
/// bound with their keys. `quorum` declares quorum queues (replicated on every node, so they
/// survive a node); otherwise classic durable queues, as the report's mirrored set-up.
pub async fn declare_topology(ch: &Channel, quorum: bool) -> Result<()> {
    ch.exchange_declare(
        EXCHANGE,
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .context("declaring the exchange")?;
    for (queue, key) in QUEUES {
        // a queue left by an earlier test may be of the other type: start clean
        ch.queue_delete(queue, QueueDeleteOptions::default())
            .await
            .with_context(|| format!("deleting {queue}"))?;
        let mut args = FieldTable::default();
        if quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        ch.queue_declare(
            queue,
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .with_context(|| format!("declaring {queue}"))?;
        ch.queue_bind(
            queue,
            EXCHANGE,
            key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("binding {queue}"))?;
    }
    Ok(())
}

/// A channel with a prefetch, ready for `basic_consume`.
pub async fn consumer_channel(conn: &Connection) -> lapin::Result<Channel> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(50, BasicQosOptions::default()).await?;
    Ok(ch)
}

/// A bare AMQP 0-9-1 client that negotiates heartbeat 0 and consumes from a queue, then
/// reads until the peer ends the connection.
pub struct RawQuietConsumer {
    reader: tokio::net::tcp::OwnedReadHalf,
    /// Kept so the socket stays open for writing (dropping it would send FIN); `None` while
    /// the heartbeat task owns it.
    _writer: Option<tokio::net::tcp::OwnedWriteHalf>,
    beat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RawQuietConsumer {
    fn drop(&mut self) {
        if let Some(b) = self.beat.take() {
            b.abort();
        }
    }
}

impl RawQuietConsumer {
    /// Handshake as guest/guest on vhost `/`, `tune-ok` with `heartbeat`, channel 1,
    /// `basic.consume` on `queue` (no-ack). Returns once `consume-ok` is read.
    pub async fn start(addr: (&str, u16), queue: &str, heartbeat: u16) -> Result<RawQuietConsumer> {
        Self::start_with(addr, queue, heartbeat, false).await
    }

    /// As [`start`](Self::start), and with `send_heartbeats` a task sends a heartbeat frame
    /// every `heartbeat / 2` seconds, as a live client does (the client never checks the
    /// server's heartbeats, as many client libraries don't).
    pub async fn start_with(
        addr: (&str, u16),
        queue: &str,
        heartbeat: u16,
        send_heartbeats: bool,
    ) -> Result<RawQuietConsumer> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"AMQP\x00\x00\x09\x01").await?;
        expect_method(&mut s, 10, 10)
            .await
            .context("connection.start")?;
        let mut p = method(10, 11);
        p.extend_from_slice(&0u32.to_be_bytes()); // client-properties: empty table
        shortstr(&mut p, "PLAIN");
        longstr(&mut p, b"\0guest\0guest");
        shortstr(&mut p, "en_US");
        send(&mut s, 0, &p).await?;
        expect_method(&mut s, 10, 30)
            .await
            .context("connection.tune")?;
        let mut p = method(10, 31);
        p.extend_from_slice(&2047u16.to_be_bytes()); // channel-max
        p.extend_from_slice(&131072u32.to_be_bytes()); // frame-max
        p.extend_from_slice(&heartbeat.to_be_bytes());
        send(&mut s, 0, &p).await?;
        let mut p = method(10, 40);
        shortstr(&mut p, "/");
        shortstr(&mut p, "");
        p.push(0);
        send(&mut s, 0, &p).await?;
        expect_method(&mut s, 10, 41)
            .await
            .context("connection.open-ok")?;
        let mut p = method(20, 10);
        shortstr(&mut p, "");
        send(&mut s, 1, &p).await?;
        expect_method(&mut s, 20, 11)
            .await
            .context("channel.open-ok")?;
        let mut p = method(60, 20);
        p.extend_from_slice(&0u16.to_be_bytes());
        shortstr(&mut p, queue);
        shortstr(&mut p, "quiet");
        p.push(0b0000_0010); // no-ack
        p.extend_from_slice(&0u32.to_be_bytes());
        send(&mut s, 1, &p).await?;
        expect_method(&mut s, 60, 21)
            .await
            .context("basic.consume-ok")?;
        let (reader, mut writer) = s.into_split();
        if send_heartbeats && heartbeat > 0 {
            let every = Duration::from_millis(u64::from(heartbeat) * 500);
            let beat = tokio::spawn(async move {
                let frame = [8u8, 0, 0, 0, 0, 0, 0, 0xCE];
                loop {
                    tokio::time::sleep(every).await;
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
            return Ok(RawQuietConsumer {
                reader,
                _writer: None,
                beat: Some(beat),
            });
        }
        Ok(RawQuietConsumer {
            reader,
            _writer: Some(writer),
            beat: None,
        })
    }

    /// Reads frames until a `basic.deliver`; an error if the connection ends first.
    pub async fn wait_delivery(&mut self) -> Result<()> {
        loop {
            match read_frame(&mut self.reader).await? {
                (1, _, payload) if payload.len() >= 4 && payload[0..4] == [0, 60, 0, 60] => {
                    return Ok(())
                }
                (1, _, payload) if payload.len() >= 4 && payload[0..4] == [0, 10, 0, 50] => {
                    bail!("connection.close from the server")
                }
                _ => continue,
            }
        }
    }

    /// Reads frames until EOF or an error; returns how the connection ended.
    pub async fn wait_end(mut self) -> String {
        loop {
            match read_frame(&mut self.reader).await {
                Ok((8, _, _)) => continue, // a heartbeat: would mean heartbeats are on
                Ok((1, _, payload)) if payload.len() >= 4 && payload[0..4] == [0, 10, 0, 50] => {
                    return format!("connection.close from server: {}", close_reason(&payload))
                }
                Ok(_) => continue,
                Err(e) => return format!("{e:#}"),
            }
        }
    }
}

fn method(class: u16, id: u16) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&id.to_be_bytes());
    p
}

fn shortstr(p: &mut Vec<u8>, s: &str) {
    p.push(s.len() as u8);
    p.extend_from_slice(s.as_bytes());
}

fn longstr(p: &mut Vec<u8>, s: &[u8]) {
    p.extend_from_slice(&(s.len() as u32).to_be_bytes());
    p.extend_from_slice(s);
}

async fn send(s: &mut TcpStream, channel: u16, payload: &[u8]) -> Result<()> {
    let mut f = vec![1u8];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    s.write_all(&f).await?;
    Ok(())
}

/// `code text` of a `connection.close` payload.
fn close_reason(payload: &[u8]) -> String {
    let code = payload
        .get(4..6)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let len = payload.get(6).copied().unwrap_or(0) as usize;
    let text = payload
        .get(7..7 + len)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    format!("{code} {text}")
}

async fn read_frame(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<(u8, u16, Vec<u8>)> {
    let mut h = [0u8; 7];
    s.read_exact(&mut h).await.context("connection ended")?;
    let size = u32::from_be_bytes([h[3], h[4], h[5], h[6]]) as usize;
    if size > 1 << 20 {
        bail!("frame of {size} bytes: not AMQP?");
    }
    let mut payload = vec![0u8; size + 1];
    s.read_exact(&mut payload)
        .await
        .context("connection ended mid-frame")?;
    if payload.pop() != Some(0xCE) {
        bail!("bad frame end");
    }
    Ok((h[0], u16::from_be_bytes([h[1], h[2]]), payload))
}

async fn expect_method(s: &mut TcpStream, class: u16, id: u16) -> Result<()> {
    let (t, _, p) = read_frame(s).await?;
    if t != 1 || p.len() < 4 {
        bail!("expected method {class}.{id}, got frame type {t}");
    }
    let (c, m) = (
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    );
    if (c, m) != (class, id) {
        bail!("expected method {class}.{id}, got {c}.{m}");
    }
    Ok(())
}
