//! A raw AMQP 0-9-1 publisher: raw frames, so "one small write per message" means exactly one
//! `write` syscall per message, the pattern where HAProxy was measured losing ~28% against the
//! direct path.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::time::Instant;

const QUEUE: &str = "warren-bench";

pub fn shortstr(p: &mut Vec<u8>, s: &str) {
    p.push(s.len() as u8);
    p.extend_from_slice(s.as_bytes());
}

pub fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    f
}

pub fn method(channel: u16, class: u16, id: u16, args: &[u8]) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(args);
    frame(1, channel, &p)
}

pub async fn read_frame(r: &mut BufReader<OwnedReadHalf>) -> Result<(u8, u16, Vec<u8>)> {
    let mut h = [0u8; 7];
    r.read_exact(&mut h).await.context("connection ended")?;
    let size = u32::from_be_bytes([h[3], h[4], h[5], h[6]]) as usize;
    let mut p = vec![0u8; size + 1];
    r.read_exact(&mut p).await?;
    p.pop();
    Ok((h[0], u16::from_be_bytes([h[1], h[2]]), p))
}

pub async fn expect(r: &mut BufReader<OwnedReadHalf>, class: u16, id: u16) -> Result<Vec<u8>> {
    loop {
        let (kind, _, p) = read_frame(r).await?;
        if kind != 1 || p.len() < 4 {
            continue;
        }
        let got = (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        );
        if got == (class, id) {
            return Ok(p);
        }
        if got == (10, 50) || got == (20, 40) {
            bail!("the server closed: {}", String::from_utf8_lossy(&p[6..]));
        }
    }
}

pub type Conn = (BufReader<OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf);

/// Handshake as guest on `/`, channel 1 open, the bench queue declared and purged.
async fn open(addr: SocketAddr) -> Result<Conn> {
    let (mut r, mut w) = handshake(addr).await?;
    open_channel(&mut r, &mut w).await?;
    declare(&mut r, &mut w).await?;
    Ok((r, w))
}

/// channel.open on channel 1.
pub async fn open_channel(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Result<()> {
    let mut a = Vec::new();
    shortstr(&mut a, "");
    w.write_all(&method(1, 20, 10, &a)).await?;
    expect(r, 20, 11).await?;
    Ok(())
}

/// Connection-level handshake as guest, up to connection.open-ok on `/`: what a client
/// needs before it can do anything.
pub async fn handshake(addr: SocketAddr) -> Result<Conn> {
    handshake_named(addr, None).await
}

/// [`handshake`], with `connection_name` in the client properties when given (the name
/// `rabbitmqctl list_connections client_properties` shows, through a proxy too).
pub async fn handshake_named(addr: SocketAddr, name: Option<&str>) -> Result<Conn> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"AMQP\x00\x00\x09\x01").await?;
    expect(&mut r, 10, 10).await?;
    let mut props = Vec::new();
    if let Some(name) = name {
        shortstr(&mut props, "connection_name");
        props.push(b'S');
        props.extend_from_slice(&(name.len() as u32).to_be_bytes());
        props.extend_from_slice(name.as_bytes());
    }
    let mut a = (props.len() as u32).to_be_bytes().to_vec(); // client properties
    a.extend_from_slice(&props);
    shortstr(&mut a, "PLAIN");
    let resp = b"\0guest\0guest";
    a.extend_from_slice(&(resp.len() as u32).to_be_bytes());
    a.extend_from_slice(resp);
    shortstr(&mut a, "en_US");
    w.write_all(&method(0, 10, 11, &a)).await?;
    expect(&mut r, 10, 30).await?;
    let mut a = 2047u16.to_be_bytes().to_vec();
    a.extend_from_slice(&131072u32.to_be_bytes());
    a.extend_from_slice(&0u16.to_be_bytes());
    w.write_all(&method(0, 10, 31, &a)).await?;
    let mut a = Vec::new();
    shortstr(&mut a, "/");
    shortstr(&mut a, "");
    a.push(0);
    w.write_all(&method(0, 10, 40, &a)).await?;
    expect(&mut r, 10, 41).await?;
    Ok((r, w))
}

/// Declares the bench queue and purges it.
async fn declare(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Result<()> {
    let mut a = 0u16.to_be_bytes().to_vec();
    shortstr(&mut a, QUEUE);
    a.push(0); // passive, durable, exclusive, auto-delete, no-wait: all off
    a.extend_from_slice(&0u32.to_be_bytes());
    w.write_all(&method(1, 50, 10, &a)).await?;
    expect(r, 50, 11).await?;
    let mut a = 0u16.to_be_bytes().to_vec();
    shortstr(&mut a, QUEUE);
    a.push(0);
    w.write_all(&method(1, 50, 30, &a)).await?;
    expect(r, 50, 31).await?;
    Ok(())
}

/// One message: basic.publish + content header + a 64-byte body, as one buffer.
fn message() -> Vec<u8> {
    let mut a = 0u16.to_be_bytes().to_vec();
    shortstr(&mut a, "");
    shortstr(&mut a, QUEUE);
    a.push(0);
    let mut out = method(1, 60, 40, &a);
    let body = [0x42u8; 64];
    let mut h = 60u16.to_be_bytes().to_vec();
    h.extend_from_slice(&0u16.to_be_bytes());
    h.extend_from_slice(&(body.len() as u64).to_be_bytes());
    h.extend_from_slice(&0u16.to_be_bytes());
    out.extend(frame(2, 1, &h));
    out.extend(frame(3, 1, &body));
    out
}

/// Publishes for `secs`: with `confirms`, pipelined (100 messages per write, at most 2,000
/// unconfirmed) and counted when confirmed; without, one write per message. `select` (small
/// writes only) puts the channel in confirm mode first and never waits for a confirm: what
/// `amqp-terminate` mode asks of the node for a client that publishes without confirms, so
/// that cost can be seen on the direct path.
pub async fn publish(addr: SocketAddr, confirms: bool, select: bool, secs: f64) -> Result<()> {
    let (mut r, mut w) = open(addr).await?;
    let msg = message();
    if select && !confirms {
        w.write_all(&method(1, 85, 10, &[0])).await?;
        expect(&mut r, 85, 11).await?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    if !confirms {
        let mut sent = 0u64;
        while Instant::now() < deadline {
            w.write_all(&msg).await?;
            sent += 1;
        }
        // A channel handles its frames in order, so basic.qos-ok arrives once the node has
        // taken every message before it: what still sits in socket buffers (more of it
        // through a proxy) is not counted as published until then.
        let mut a = 0u32.to_be_bytes().to_vec(); // prefetch-size
        a.extend_from_slice(&0u16.to_be_bytes()); // prefetch-count
        a.push(0); // global
        w.write_all(&method(1, 60, 10, &a)).await?;
        expect(&mut r, 60, 11).await?;
        let rate = sent as f64 / started.elapsed().as_secs_f64();
        let name = if select {
            "amqp_small_writes_select"
        } else {
            "amqp_small_writes"
        };
        println!("RESULT {name} {rate:.0} msg/s");
        return Ok(());
    }
    w.write_all(&method(1, 85, 10, &[0])).await?;
    expect(&mut r, 85, 11).await?;
    let batch: Vec<u8> = (0..100).flat_map(|_| msg.iter().copied()).collect();
    let (tx, mut acked) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        loop {
            let (kind, _, p) = read_frame(&mut r).await?;
            if kind == 1 && p.len() >= 13 && p[0..4] == [0, 60, 0, 80] {
                let tag = u64::from_be_bytes(p[4..12].try_into().unwrap_or([0; 8]));
                tx.send_replace(tag);
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    });
    let mut sent = 0u64;
    while Instant::now() < deadline {
        while sent.saturating_sub(*acked.borrow()) >= 2000 {
            acked.changed().await.context("the reader stopped")?;
        }
        w.write_all(&batch).await?;
        sent += 100;
    }
    let confirmed = *acked.borrow();
    let rate = confirmed as f64 / started.elapsed().as_secs_f64();
    reader.abort();
    println!("RESULT amqp_confirms {rate:.0} msg/s");
    Ok(())
}

/// Retries a full handshake through `addr` until one succeeds; prints the time it took.
pub async fn ready(addr: SocketAddr, timeout: f64) -> Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(timeout);
    while Instant::now() < deadline {
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), open(addr)).await {
            println!("RESULT amqp_ready_ms {} ms", started.elapsed().as_millis());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("RESULT amqp_ready_ms none ms (not within {timeout} s)");
    Ok(())
}
