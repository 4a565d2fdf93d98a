//! warren-bench: the load tool behind `bench/run`. Each subcommand measures one thing
//! against one address (the direct path, HAProxy, or warren) and prints one line:
//! `RESULT <scenario> <value> <unit>`, which `bench/run` collects.
//!
//! ```text
//! warren-bench serve <addr> echo|sink          a backend: echo every byte, or swallow them
//! warren-bench throughput <addr> <streams> <secs>        Gbit/s to a sink
//! warren-bench connrate <addr> <workers> <secs>          connect, 16 B out, 16 B back, close: conn/s
//! warren-bench latency <addr> <count>                    64 B ping-pong on one connection: p50, p99 µs
//! warren-bench amqp <addr> confirms|small|small-select <secs>   publishes/s to a RabbitMQ node
//!                         (small-select: small writes on a channel in confirm mode, see amqp.rs)
//! warren-bench idle <addr> <conns> <pid>                 RSS growth of <pid> per idle proxied connection
//! warren-bench amqp-ready <addr> <timeout-secs>          ms until an AMQP handshake through <addr> succeeds
//! warren-bench serve-http <addr>                         an HTTP origin: a small JSON page per request
//! warren-bench http <addr> keepalive|close <conns> <secs> requests/s, p50, p99 µs (see http.rs)
//! warren-bench failover <addr> <pid> kill|stop <log> <server> <secs>
//!                         signal a node, then probe AMQP handshakes through <addr> and watch
//!                         <log> for "<server> is DOWN" (see failover.rs)
//! warren-bench consume <direct-addr> <addr> <secs>   prefill via <direct-addr>, then acked
//!                         deliveries/s through <addr>, prefetch 100 (see consume.rs)
//! warren-bench idle-amqp <addr> <clients> <pid>     RSS growth of <pid> per AMQP client with
//!                         one channel and one consumer
//! warren-bench kill-move <addr> <rabbit-cluster> <node-base-port> <nodes> <kills>
//!                         kill -9 the node under a consumer through <addr> (amqp-terminate),
//!                         ms to its next delivery through another node (see terminate.rs)
//! ```

mod amqp;
mod consume;
mod failover;
mod http;
mod terminate;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T> {
    args.get(i)
        .with_context(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| anyhow::anyhow!("bad {what}: {:?}", args.get(i)))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr: SocketAddr = arg(&args, 1, "address")?;
        match args.first().map(String::as_str) {
            Some("serve") => serve(addr, args.get(2).map(String::as_str) == Some("echo")).await,
            Some("throughput") => {
                throughput(addr, arg(&args, 2, "streams")?, arg(&args, 3, "seconds")?).await
            }
            Some("connrate") => {
                connrate(addr, arg(&args, 2, "workers")?, arg(&args, 3, "seconds")?).await
            }
            Some("latency") => latency(addr, arg(&args, 2, "count")?).await,
            Some("serve-http") => http::serve(addr).await,
            Some("http") => {
                http::load(
                    addr,
                    arg(&args, 3, "connections")?,
                    arg(&args, 4, "seconds")?,
                    args.get(2).map(String::as_str) == Some("keepalive"),
                )
                .await
            }
            Some("amqp") => {
                amqp::publish(
                    addr,
                    args.get(2).map(String::as_str) == Some("confirms"),
                    args.get(2).map(String::as_str) == Some("small-select"),
                    arg(&args, 3, "seconds")?,
                )
                .await
            }
            Some("idle") => idle(addr, arg(&args, 2, "connections")?, arg(&args, 3, "pid")?).await,
            Some("amqp-ready") => amqp::ready(addr, arg(&args, 2, "timeout")?).await,
            Some("failover") => {
                failover::run(failover::Args {
                    addr,
                    pid: arg(&args, 2, "pid")?,
                    signal: arg(&args, 3, "kill|stop")?,
                    log: arg(&args, 4, "log file")?,
                    server: arg(&args, 5, "server (backend/name)")?,
                    secs: arg(&args, 6, "seconds")?,
                })
                .await
            }
            Some("consume") => {
                consume::run(addr, arg(&args, 2, "address")?, arg(&args, 3, "seconds")?).await
            }
            Some("idle-amqp") => {
                terminate::idle(addr, arg(&args, 2, "clients")?, arg(&args, 3, "pid")?).await
            }
            Some("kill-move") => {
                terminate::kill_move(terminate::KillArgs {
                    addr,
                    cluster: arg(&args, 2, "rabbit-cluster script")?,
                    node_base: arg(&args, 3, "node base port")?,
                    nodes: arg(&args, 4, "nodes")?,
                    kills: arg(&args, 5, "kills")?,
                })
                .await
            }
            _ => bail!("usage: see the header of bench/src/main.rs"),
        }
    })
}

async fn serve(addr: SocketAddr, echo: bool) -> Result<()> {
    let l = TcpListener::bind(addr).await?;
    loop {
        let (mut s, _) = l.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) if echo => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                }
            }
        });
    }
}

async fn throughput(addr: SocketAddr, streams: usize, secs: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..streams {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            let buf = vec![0x5Au8; 128 * 1024];
            let mut sent = 0u64;
            while Instant::now() < deadline {
                s.write_all(&buf).await?;
                sent += buf.len() as u64;
            }
            // Counted only once the sink has read it all: half-close, and the sink closes
            // when it reaches the end. Otherwise the megabytes still sitting in socket
            // buffers (more of them through a proxy) would count as transferred.
            s.shutdown().await?;
            let mut rest = [0u8; 64];
            while s.read(&mut rest).await? > 0 {}
            Ok::<u64, std::io::Error>(sent)
        }));
    }
    let started = Instant::now();
    let mut total = 0u64;
    for t in tasks {
        total += t.await??;
    }
    let gbit = total as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9;
    println!("RESULT throughput{streams} {gbit:.2} Gbit/s");
    Ok(())
}

async fn connrate(addr: SocketAddr, workers: usize, secs: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut failed = 0u64;
            let msg = [7u8; 16];
            while Instant::now() < deadline {
                let one = async {
                    let mut s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    s.write_all(&msg).await?;
                    let mut back = [0u8; 16];
                    s.read_exact(&mut back).await?;
                    Ok::<(), std::io::Error>(())
                };
                match one.await {
                    Ok(()) => done += 1,
                    Err(_) => failed += 1,
                }
            }
            (done, failed)
        }));
    }
    let (mut done, mut failed) = (0, 0);
    for t in tasks {
        let (d, f) = t.await?;
        done += d;
        failed += f;
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    println!("RESULT connrate {rate:.0} conn/s ({failed} failed)");
    Ok(())
}

async fn latency(addr: SocketAddr, count: usize) -> Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let msg = [1u8; 64];
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        if i >= count / 10 {
            samples.push(t.elapsed().as_nanos() as u64); // the first 10% warm up
        }
    }
    samples.sort_unstable();
    let pct = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1000.0
    };
    println!("RESULT latency_p50 {:.1} us", pct(0.50));
    println!("RESULT latency_p99 {:.1} us", pct(0.99));
    Ok(())
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

async fn idle(addr: SocketAddr, conns: usize, pid: u32) -> Result<()> {
    let before = rss_kib(pid)?;
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        let mut s = TcpStream::connect(addr).await?;
        // One byte each way: the session is fully set up (the proxy connected to the
        // server), then quiet.
        s.write_all(b"x").await?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        held.push(s);
    }
    // Let the proxy settle (its buffers returned) before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / conns as f64;
    println!(
        "RESULT idle_bytes_per_conn {per:.0} B ({conns} connections, RSS {before} -> {after} KiB)"
    );
    drop(held);
    Ok(())
}
