//! Scenarios for warren's `amqp-terminate` mode (they run against `amqp` mode too, for the
//! ratio): idle clients with one channel and one consumer each, and the gap in deliveries to
//! a consumer whose node is killed (`kill -9`) under it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::amqp;
use crate::consume::{self, Kind};

/// The queue the idle clients consume from (classic, on the proxy's only server).
const IDLE_QUEUE: &str = "warren-bench-idle";

/// Handshakes in flight at once while the idle clients connect.
const CONNECTING: usize = 32;

/// `clients` AMQP clients through `addr`, each with channel 1 open and one consumer on an
/// empty queue, then quiet: the RSS growth of `pid` (the proxy) per client.
pub async fn idle(addr: SocketAddr, clients: usize, pid: u32) -> Result<()> {
    {
        let (mut r, mut w) = amqp::handshake(addr).await?;
        amqp::open_channel(&mut r, &mut w).await?;
        consume::declare(&mut r, &mut w, IDLE_QUEUE, Kind::Classic, true).await?;
    }
    // The declaring client has gone: measure from here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::rss_kib(pid)?;
    let mut held = Vec::with_capacity(clients);
    let mut connecting = JoinSet::new();
    let mut started = 0;
    while held.len() < clients {
        while started < clients && connecting.len() < CONNECTING {
            connecting.spawn(async move {
                let (mut r, mut w) = amqp::handshake(addr).await?;
                amqp::open_channel(&mut r, &mut w).await?;
                consume::consume(&mut r, &mut w, IDLE_QUEUE).await?;
                Ok::<_, anyhow::Error>((r, w))
            });
            started += 1;
        }
        match connecting.join_next().await {
            Some(c) => held.push(c?.with_context(|| format!("client {}", held.len() + 1))?),
            None => bail!("no client left to wait for"),
        }
    }
    // Let the proxy settle (its buffers returned) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = crate::rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / clients as f64;
    println!(
        "RESULT idle_bytes_per_client {per:.0} B ({clients} clients, one channel and one consumer each, RSS {before} -> {after} KiB)"
    );
    drop(held);
    Ok(())
}

/// What `kill-move` needs.
pub struct KillArgs {
    /// warren's listener in `amqp-terminate` mode, over all the nodes.
    pub addr: SocketAddr,
    /// `scripts/rabbit-cluster` (with LAB, AMQP_BASE... in the environment).
    pub cluster: PathBuf,
    /// Node i serves AMQP on `node_base + i - 1`.
    pub node_base: u16,
    pub nodes: usize,
    pub kills: usize,
}

const KILL_QUEUE: &str = "warren-bench-kill";
const CONSUMER_NAME: &str = "warren-bench-moved-consumer";
/// The publisher sends this many messages per millisecond.
const PUBLISH_PER_MS: u64 = 2;

/// One delivery: when it arrived, the message id, the redelivered flag.
type Arrival = (Instant, u64, bool);

/// A consumer through warren (prefetch 100, manual acks) on a quorum queue, and a
/// confirming publisher straight to a node other than the consumer's; `kills` times, the
/// consumer's node is killed with SIGKILL (the tool sends it: time zero is exact), and the
/// time to the first delivery that can only have come through the consumer's new node is
/// measured: a message published after the kill, or one redelivered (the old node cannot
/// send either). The node is restarted before the next kill. Also checked each time: every
/// confirmed message is delivered.
pub async fn kill_move(a: KillArgs) -> Result<()> {
    let node_addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], a.node_base + (i as u16) - 1));
    {
        let (mut r, mut w) = amqp::handshake(node_addr(1)).await?;
        amqp::open_channel(&mut r, &mut w).await?;
        consume::declare(&mut r, &mut w, KILL_QUEUE, Kind::Quorum, true).await?;
    }
    let (mut r, mut w) = amqp::handshake_named(a.addr, Some(CONSUMER_NAME)).await?;
    amqp::open_channel(&mut r, &mut w).await?;
    consume::qos(&mut r, &mut w, 100).await?;
    consume::consume(&mut r, &mut w, KILL_QUEUE).await?;
    let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
    let (tx, notify) = tokio::sync::watch::channel(0u64);
    let consumer = {
        let arrivals = Arc::clone(&arrivals);
        tokio::spawn(async move {
            let r = consume::deliveries(&mut r, &mut w, |d| {
                let id = d
                    .body
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                lock(&arrivals).push((Instant::now(), id, d.redelivered));
                tx.send_modify(|n| *n += 1);
                true
            })
            .await;
            eprintln!("consumer ended: {r:?}");
        })
    };
    let mut gaps = Vec::new();
    let mut next_id = 1u64;
    let mut problems = Vec::new();
    for k in 1..=a.kills {
        let victim = consumer_node(&a).await?;
        let other = victim % a.nodes + 1;
        let from = lock(&arrivals).len();
        let publisher = Publisher::start(node_addr(other), next_id).await?;
        // Steady state: 500 deliveries of this round's messages.
        wait_count(&notify, from as u64 + 500, Duration::from_secs(20))
            .await
            .context("no steady deliveries before the kill")?;
        let pid: i32 = std::fs::read_to_string(lab_node_pid(victim)?)?
            .trim()
            .parse()?;
        let t0 = Instant::now();
        // SAFETY: kill(2) takes plain integers; a wrong pid fails with an errno, nothing else.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            bail!(
                "cannot kill node {victim} (pid {pid}): {}",
                std::io::Error::last_os_error()
            );
        }
        let t0_id = publisher.sent_before(t0);
        let resumed = wait_resumed(&arrivals, &notify, t0, t0_id, Duration::from_secs(30)).await;
        // A second more of traffic on the new node, then stop and check.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (confirmed, last) = publisher.stop().await?;
        next_id = last + 1;
        let missing = wait_delivered(&arrivals, &notify, &confirmed, Duration::from_secs(30)).await;
        let new_node = consumer_node(&a).await.unwrap_or(0);
        match resumed {
            Some(ms) => {
                println!(
                    "INFO kill {k}: node {victim} killed, consumer resumed on node {new_node} after {ms:.0} ms; {} confirmed this round, {} not delivered",
                    confirmed.len(),
                    missing
                );
                gaps.push(ms);
            }
            None => {
                println!("INFO kill {k}: node {victim} killed, no delivery through the new node within 30 s");
                problems.push(format!("kill {k}: no delivery within 30 s"));
            }
        }
        if missing > 0 {
            problems.push(format!(
                "kill {k}: {missing} confirmed messages not delivered"
            ));
        }
        let mut restart = Command::new(&a.cluster);
        restart.args(["restart", &victim.to_string()]);
        let out = run(restart).await?;
        if !out.status.success() {
            bail!(
                "rabbit-cluster restart {victim} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    consumer.abort();
    let dups = {
        let arr = lock(&arrivals);
        let ids: BTreeSet<u64> = arr.iter().map(|x| x.1).collect();
        arr.len() - ids.len()
    };
    gaps.sort_by(f64::total_cmp);
    let n = gaps.len();
    if n > 0 {
        let median = if n % 2 == 1 {
            gaps[n / 2]
        } else {
            (gaps[n / 2 - 1] + gaps[n / 2]) / 2.0
        };
        println!(
            "RESULT terminate_kill_to_delivery_median_ms {median:.0} ms (of {n} kills: {gaps:.0?})"
        );
        println!(
            "RESULT terminate_kill_to_delivery_worst_ms {:.0} ms",
            gaps[n - 1]
        );
    }
    println!(
        "RESULT terminate_kill_problems {} count ({}; {dups} duplicate deliveries in all, redeliveries after a kill being expected)",
        problems.len(),
        if problems.is_empty() { "none".to_string() } else { problems.join("; ") }
    );
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lab_node_pid(node: usize) -> Result<PathBuf> {
    let lab = std::env::var_os("LAB").context("LAB is not set (bench/run sets it)")?;
    Ok(PathBuf::from(lab).join(format!("nodes/rabbit{node}/pid")))
}

/// Runs `cmd` off the runtime's only worker (the consumer keeps acking meanwhile).
async fn run(mut cmd: Command) -> Result<std::process::Output> {
    Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
}

/// The node the consumer's upstream connection is on, as the cluster sees it (the
/// connection name warren passes on).
async fn consumer_node(a: &KillArgs) -> Result<usize> {
    for ask in 1..=a.nodes {
        let mut cmd = Command::new(&a.cluster);
        cmd.args([
            "ctl",
            &ask.to_string(),
            "list_connections",
            "--no-table-headers",
            "port",
            "client_properties",
        ]);
        let out = run(cmd).await?;
        if !out.status.success() {
            continue;
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if !line.contains(CONSUMER_NAME) {
                continue;
            }
            let port: u16 = line.split('\t').next().unwrap_or("").trim().parse()?;
            return Ok(usize::from(port - a.node_base) + 1);
        }
    }
    bail!("no connection named {CONSUMER_NAME} in the cluster")
}

async fn wait_count(
    notify: &tokio::sync::watch::Receiver<u64>,
    n: u64,
    timeout: Duration,
) -> Result<()> {
    let mut rx = notify.clone();
    tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
        .await
        .context("timed out")?
        .context("the consumer ended")?;
    Ok(())
}

/// Milliseconds from `t0` to the first delivery after it of a message published after it
/// (id > `t0_id`) or redelivered.
async fn wait_resumed(
    arrivals: &Mutex<Vec<Arrival>>,
    notify: &tokio::sync::watch::Receiver<u64>,
    t0: Instant,
    t0_id: u64,
    timeout: Duration,
) -> Option<f64> {
    let mut rx = notify.clone();
    let deadline = t0 + timeout;
    loop {
        if let Some((at, _, _)) = lock(arrivals)
            .iter()
            .rev()
            .take_while(|x| x.0 > t0)
            .filter(|x| x.1 > t0_id || x.2)
            .last()
        {
            return Some(at.duration_since(t0).as_secs_f64() * 1000.0);
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}

/// How many of `want` have not been delivered after waiting up to `timeout`.
async fn wait_delivered(
    arrivals: &Mutex<Vec<Arrival>>,
    notify: &tokio::sync::watch::Receiver<u64>,
    want: &BTreeSet<u64>,
    timeout: Duration,
) -> usize {
    let mut rx = notify.clone();
    let deadline = Instant::now() + timeout;
    loop {
        let missing = {
            let seen: BTreeSet<u64> = lock(arrivals).iter().map(|x| x.1).collect();
            want.difference(&seen).count()
        };
        if missing == 0
            || tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
        {
            return missing;
        }
    }
}

/// Publishes ids `first`, `first + 1`, ... (8-byte big-endian bodies) at a steady pace, with
/// confirms, straight to one node.
struct Publisher {
    /// (id, when it was written), in order.
    sent: Arc<Mutex<Vec<(u64, Instant)>>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(BTreeSet<u64>, u64)>>,
}

impl Publisher {
    async fn start(node: SocketAddr, first: u64) -> Result<Publisher> {
        let (mut r, mut w) = amqp::handshake(node).await?;
        amqp::open_channel(&mut r, &mut w).await?;
        w.write_all(&amqp::method(1, 85, 10, &[0])).await?;
        amqp::expect(&mut r, 85, 11).await?;
        let sent: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let s = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            // Confirmed sequence numbers (basic.ack, multiple or not; a nack leaves the
            // message unconfirmed).
            let confirmed: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
            let c = Arc::clone(&confirmed);
            let (count_tx, mut count) = tokio::sync::watch::channel(0u64);
            let reader = tokio::spawn(async move {
                let mut acked_to = 0u64;
                loop {
                    let (kind, _, p) = amqp::read_frame(&mut r).await?;
                    if kind != 1 || p.len() < 13 || p[0..2] != [0, 60] {
                        continue;
                    }
                    let tag = u64::from_be_bytes(p[4..12].try_into().unwrap_or([0; 8]));
                    let multiple = p[12] & 1 == 1;
                    let ack = p[2..4] == [0, 80];
                    let mut c = lock(&c);
                    if multiple {
                        if ack {
                            c.extend(acked_to + 1..=tag);
                        }
                        acked_to = acked_to.max(tag);
                    } else if ack {
                        c.insert(tag);
                    }
                    let n = c.len();
                    drop(c);
                    count_tx.send_replace(n as u64);
                }
                #[allow(unreachable_code)]
                Ok::<(), anyhow::Error>(())
            });
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut id = first;
            while !*stopped.borrow_and_update() {
                tick.tick().await;
                let mut buf = Vec::new();
                for _ in 0..PUBLISH_PER_MS {
                    buf.extend(consume::message(KILL_QUEUE, &id.to_be_bytes()));
                    lock(&s).push((id, Instant::now()));
                    id += 1;
                }
                w.write_all(&buf).await?;
            }
            let published = id - first;
            // Up to 5 s for the last confirms.
            let _ =
                tokio::time::timeout(Duration::from_secs(5), count.wait_for(|n| *n >= published))
                    .await;
            reader.abort();
            let confirmed: BTreeSet<u64> =
                lock(&confirmed).iter().map(|seq| first + seq - 1).collect();
            Ok((confirmed, id - 1))
        });
        Ok(Publisher { sent, stop, task })
    }

    /// The highest id written before `t`.
    fn sent_before(&self, t: Instant) -> u64 {
        lock(&self.sent)
            .iter()
            .rev()
            .find(|x| x.1 <= t)
            .map_or(0, |x| x.0)
    }

    /// Stops publishing; the confirmed ids and the last id written.
    async fn stop(self) -> Result<(BTreeSet<u64>, u64)> {
        let _ = self.stop.send(true);
        self.task.await?
    }
}
