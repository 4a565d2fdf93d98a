//! Consuming with acks through a proxy, and the raw AMQP pieces a consumer needs: queue
//! declare/purge, prefill, basic.qos, basic.consume, and a delivery loop that acks each
//! message (one basic.ack per delivery, the acks for everything one read brought in sent in
//! one write, as a client library with a write buffer does).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use crate::amqp::{self, expect, frame, method, read_frame, shortstr};

/// The queue `consume` prefills and drains.
const QUEUE: &str = "warren-bench-consume";

/// What kind of queue to declare.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Classic, not durable.
    Classic,
    /// Quorum (durable, replicated on every node of the cluster).
    Quorum,
}

/// queue.declare (and queue.purge when `purge`) on channel 1.
pub async fn declare(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    queue: &str,
    kind: Kind,
    purge: bool,
) -> Result<()> {
    let mut a = 0u16.to_be_bytes().to_vec();
    shortstr(&mut a, queue);
    if kind == Kind::Quorum {
        a.push(0b10); // durable
        let mut t = Vec::new();
        shortstr(&mut t, "x-queue-type");
        t.push(b'S');
        t.extend_from_slice(&6u32.to_be_bytes());
        t.extend_from_slice(b"quorum");
        a.extend_from_slice(&(t.len() as u32).to_be_bytes());
        a.extend_from_slice(&t);
    } else {
        a.push(0);
        a.extend_from_slice(&0u32.to_be_bytes());
    }
    w.write_all(&method(1, 50, 10, &a)).await?;
    expect(r, 50, 11).await?;
    if purge {
        let mut a = 0u16.to_be_bytes().to_vec();
        shortstr(&mut a, queue);
        a.push(0);
        w.write_all(&method(1, 50, 30, &a)).await?;
        expect(r, 50, 31).await?;
    }
    Ok(())
}

/// basic.publish to the default exchange, routing key `queue`, with `body`: three frames in
/// one buffer.
pub fn message(queue: &str, body: &[u8]) -> Vec<u8> {
    let mut a = 0u16.to_be_bytes().to_vec();
    shortstr(&mut a, "");
    shortstr(&mut a, queue);
    a.push(0);
    let mut out = method(1, 60, 40, &a);
    let mut h = 60u16.to_be_bytes().to_vec();
    h.extend_from_slice(&0u16.to_be_bytes());
    h.extend_from_slice(&(body.len() as u64).to_be_bytes());
    h.extend_from_slice(&0u16.to_be_bytes());
    out.extend(frame(2, 1, &h));
    out.extend(frame(3, 1, body));
    out
}

/// basic.qos with `prefetch` on channel 1, waiting for qos-ok. A channel handles its frames
/// in order, so the qos-ok also says everything sent before it was taken.
pub async fn qos(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    prefetch: u16,
) -> Result<()> {
    let mut a = 0u32.to_be_bytes().to_vec();
    a.extend_from_slice(&prefetch.to_be_bytes());
    a.push(0);
    w.write_all(&method(1, 60, 10, &a)).await?;
    expect(r, 60, 11).await?;
    Ok(())
}

/// basic.consume on `queue` (manual acks), waiting for consume-ok.
pub async fn consume(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    queue: &str,
) -> Result<()> {
    let mut a = 0u16.to_be_bytes().to_vec();
    shortstr(&mut a, queue);
    shortstr(&mut a, "");
    a.push(0); // no-local, no-ack, exclusive, no-wait: all off
    a.extend_from_slice(&0u32.to_be_bytes());
    w.write_all(&method(1, 60, 20, &a)).await?;
    expect(r, 60, 21).await?;
    Ok(())
}

/// One delivery as the consumer loop hands it over.
pub struct Delivery<'a> {
    pub redelivered: bool,
    pub body: &'a [u8],
}

/// Reads deliveries on `r` and acks each on `w` (the acks for one read in one write), calling
/// `f` for each; returns when `f` returns false or the connection fails.
pub async fn deliveries(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    mut f: impl FnMut(Delivery<'_>) -> bool,
) -> Result<()> {
    let mut acks = Vec::new();
    let mut pending: Option<(u64, bool)> = None; // a deliver whose body has not come yet
    loop {
        let (kind, _, p) = read_frame(r).await?;
        match kind {
            1 if p.len() >= 4 && p[0..4] == [0, 60, 0, 60] => {
                // basic.deliver: consumer-tag, delivery-tag, redelivered, ...
                let tag_at = 5 + usize::from(*p.get(4).context("short deliver")?);
                let tag = p
                    .get(tag_at..tag_at + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .context("short deliver")?;
                let redelivered = p.get(tag_at + 8).context("short deliver")? & 1 == 1;
                pending = Some((tag, redelivered));
            }
            1 if p.len() >= 4 && (p[0..4] == [0, 10, 0, 50] || p[0..4] == [0, 20, 0, 40]) => {
                bail!("the server closed: {}", String::from_utf8_lossy(&p[6..]));
            }
            3 => {
                let Some((tag, redelivered)) = pending.take() else {
                    continue;
                };
                let mut a = tag.to_be_bytes().to_vec();
                a.push(0); // not multiple
                acks.extend(method(1, 60, 80, &a));
                if !f(Delivery {
                    redelivered,
                    body: &p,
                }) {
                    w.write_all(&acks).await?;
                    return Ok(());
                }
            }
            _ => {}
        }
        if r.buffer().is_empty() && !acks.is_empty() {
            w.write_all(&acks).await?;
            acks.clear();
        }
    }
}

/// Prefills the consume queue through `direct` (not timed), then consumes through `addr`
/// with prefetch 100 and an ack per message for `secs`: acked deliveries per second.
pub async fn run(direct: SocketAddr, addr: SocketAddr, secs: f64) -> Result<()> {
    // More than the fastest path can take in `secs` (direct: ~40,000/s on this machine's
    // shared core); a run that empties the queue says so.
    let prefill = (secs * 80_000.0) as u64;
    {
        let (mut r, mut w) = amqp::handshake(direct).await?;
        amqp::open_channel(&mut r, &mut w).await?;
        declare(&mut r, &mut w, QUEUE, Kind::Classic, true).await?;
        let batch: Vec<u8> = (0..100)
            .flat_map(|_| message(QUEUE, &[0x42u8; 64]))
            .collect();
        for _ in 0..prefill / 100 {
            w.write_all(&batch).await?;
        }
        qos(&mut r, &mut w, 0).await?;
    }
    let (mut r, mut w) = amqp::handshake(addr).await?;
    amqp::open_channel(&mut r, &mut w).await?;
    qos(&mut r, &mut w, 100).await?;
    consume(&mut r, &mut w, QUEUE).await?;
    let started = Instant::now();
    let total = prefill / 100 * 100;
    let mut acked = 0u64;
    let run = deliveries(&mut r, &mut w, |_| {
        acked += 1;
        acked < total
    });
    // The deadline is the normal end; before it, only an error or the last message.
    if let Ok(r) = tokio::time::timeout(Duration::from_secs_f64(secs), run).await {
        r?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = acked as f64 / elapsed;
    let dry = if acked >= total {
        " (the queue ran dry: a lower bound)"
    } else {
        ""
    };
    println!("RESULT amqp_consume_acks {rate:.0} msg/s ({acked} acked in {elapsed:.1} s){dry}");
    Ok(())
}
