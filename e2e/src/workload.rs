//! The report's clients as tasks: four reconnecting consumers, a confirming publisher, and a
//! prober that keeps opening new connections. Everything they see goes onto a [`Board`] that
//! tests wait on (no sleeping to synchronise).

use anyhow::{bail, Result};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};

use crate::amqp::{self, EXCHANGE, QUEUES};

/// Shared state plus a change counter, so tasks can wait for a condition on it.
pub struct Board<T> {
    state: Mutex<T>,
    changed: watch::Sender<u64>,
}

impl<T> Board<T> {
    pub fn new(state: T) -> Arc<Board<T>> {
        Arc::new(Board {
            state: Mutex::new(state),
            changed: watch::channel(0).0,
        })
    }

    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let r = f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.send_modify(|n| *n += 1);
        r
    }

    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until `f` returns `Some`, re-checking on every update, for at most `within`.
    pub async fn wait<R>(
        &self,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&T) -> Option<R>,
    ) -> Result<R> {
        let deadline = Instant::now() + within;
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(r) = self.read(&mut f) {
                return Ok(r);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                bail!("timed out after {within:?} waiting for {what}");
            }
        }
    }
}

/// A consumer session: one connection generation of consumer `queue` (0-based).
#[derive(Debug, Clone)]
pub struct Session {
    pub queue: usize,
    pub name: String,
    pub consuming_at: Instant,
    pub ended_at: Option<Instant>,
    pub end_reason: Option<String>,
}

/// Everything the clients observed.
#[derive(Debug, Default)]
pub struct Observed {
    pub sessions: Vec<Session>,
    /// (arrival, queue index, message id)
    pub deliveries: Vec<(Instant, usize, u64)>,
    pub consumed: [BTreeSet<u64>; 4],
    /// (confirmed at, id, routing key)
    pub confirmed: Vec<(Instant, u64, &'static str)>,
    pub publisher_errors: Vec<(Instant, String)>,
    /// (started at, ok?, connection name or error)
    pub probes: Vec<(Instant, Result<(), String>)>,
}

impl Observed {
    /// Sessions of consumer `queue`, oldest first.
    pub fn sessions_of(&self, queue: usize) -> Vec<&Session> {
        self.sessions.iter().filter(|s| s.queue == queue).collect()
    }

    /// Confirmed ids (with their keys) published at or after `t`.
    pub fn confirmed_since(&self, t: Instant) -> Vec<(u64, &'static str)> {
        self.confirmed
            .iter()
            .filter(|(at, _, _)| *at >= t)
            .map(|(_, id, k)| (*id, *k))
            .collect()
    }

    /// Confirmed messages not (yet) consumed from a queue their key routes to.
    pub fn missing(&self, msgs: &[(u64, &'static str)]) -> Vec<(u64, usize)> {
        let mut missing = Vec::new();
        for (id, key) in msgs {
            for q in amqp::queues_for_key(key) {
                if !self.consumed[q].contains(id) {
                    missing.push((*id, q));
                }
            }
        }
        missing
    }

    /// Ids consumed from a queue their key does not route to (must stay empty).
    pub fn misrouted(&self) -> Vec<(u64, usize)> {
        let keys: std::collections::HashMap<u64, &str> =
            self.confirmed.iter().map(|(_, id, k)| (*id, *k)).collect();
        let mut bad = Vec::new();
        for (q, ids) in self.consumed.iter().enumerate() {
            for id in ids {
                if let Some(k) = keys.get(id) {
                    if !amqp::queues_for_key(k).contains(&q) {
                        bad.push((*id, q));
                    }
                }
            }
        }
        bad
    }
}

/// The running clients; dropping `stop` (or calling [`Clients::stop`]) ends them.
pub struct Clients {
    pub board: Arc<Board<Observed>>,
    /// Held by the prober for each probe; a fault injector may hold it to inject between
    /// probes (a `kill -9` is instant, so no new connection is in its handshake when it lands).
    pub probe_lock: Arc<tokio::sync::Mutex<()>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Clients {
    pub fn new() -> Clients {
        Clients {
            board: Board::new(Observed::default()),
            probe_lock: Arc::default(),
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Starts one reconnecting consumer per report queue through `uri`; names are
    /// `<prefix>-q<queue>-g<generation>`.
    pub fn spawn_consumers(&mut self, uri: &str, prefix: &str) {
        for q in 0..QUEUES.len() {
            let (uri, prefix, board, stop) = (
                uri.to_string(),
                prefix.to_string(),
                self.board.clone(),
                self.stop.subscribe(),
            );
            self.tasks
                .push(tokio::spawn(consumer(uri, prefix, q, board, stop)));
        }
    }

    /// Starts the publisher: one message every `every`, keys in turn KEY1, KEY2, COMMON.
    pub fn spawn_publisher(&mut self, uri: &str, name: &str, every: Duration) {
        let (uri, name, board, stop) = (
            uri.to_string(),
            name.to_string(),
            self.board.clone(),
            self.stop.subscribe(),
        );
        self.tasks
            .push(tokio::spawn(publisher(uri, name, every, board, stop)));
    }

    /// Starts the prober: a new connection (handshake, then close) every `every`.
    pub fn spawn_prober(&mut self, uri: &str, every: Duration) {
        let (uri, board, stop, lock) = (
            uri.to_string(),
            self.board.clone(),
            self.stop.subscribe(),
            self.probe_lock.clone(),
        );
        self.tasks
            .push(tokio::spawn(prober(uri, every, board, stop, lock)));
    }

    /// Stops all tasks and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new()
    }
}

async fn consumer(
    uri: String,
    prefix: String,
    q: usize,
    board: Arc<Board<Observed>>,
    mut stop: watch::Receiver<bool>,
) {
    let queue = QUEUES[q].0;
    let mut generation = 0;
    while !*stop.borrow() {
        let name = format!("{prefix}-q{}-g{generation}", q + 1);
        generation += 1;
        let session = async {
            let conn = amqp::connect(&uri, &name).await?;
            let ch = amqp::consumer_channel(&conn).await?;
            let consumer = ch
                .basic_consume(
                    queue,
                    &name,
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((conn, ch, consumer))
        };
        let (conn, _ch, mut deliveries) = tokio::select! {
            r = session => match r {
                Ok(s) => s,
                Err(_) => {
                    // not consuming yet (node gone, queue leader moving): a client retries
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            },
            _ = stop.changed() => return,
        };
        let idx = board.update(|o| {
            o.sessions.push(Session {
                queue: q,
                name: name.clone(),
                consuming_at: Instant::now(),
                ended_at: None,
                end_reason: None,
            });
            o.sessions.len() - 1
        });
        let reason = loop {
            tokio::select! {
                d = deliveries.next() => match d {
                    Some(Ok(d)) => {
                        let id = std::str::from_utf8(&d.data).ok().and_then(|s| s.parse::<u64>().ok());
                        let acked = d.ack(BasicAckOptions::default()).await;
                        if let Some(id) = id {
                            board.update(|o| {
                                o.deliveries.push((Instant::now(), q, id));
                                o.consumed[q].insert(id);
                            });
                        }
                        if let Err(e) = acked { break format!("ack failed: {e}"); }
                    }
                    Some(Err(e)) => break e.to_string(),
                    None => break "consumer stream ended".to_string(),
                },
                _ = stop.changed() => {
                    let _ = conn.close(200, "test over").await;
                    return;
                }
            }
        };
        board.update(|o| {
            o.sessions[idx].ended_at = Some(Instant::now());
            o.sessions[idx].end_reason = Some(reason);
        });
    }
}

async fn publisher(
    uri: String,
    name: String,
    every: Duration,
    board: Arc<Board<Observed>>,
    mut stop: watch::Receiver<bool>,
) {
    const KEYS: [&str; 3] = [amqp::KEY1, amqp::KEY2, amqp::COMMON_KEY];
    let mut id: u64 = 1;
    let mut generation = 0;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'connect: while !*stop.borrow() {
        generation += 1;
        let setup = async {
            let conn = amqp::connect(&uri, &format!("{name}-g{generation}")).await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            Ok::<_, lapin::Error>((conn, ch))
        };
        let (conn, ch) = match setup.await {
            Ok(s) => s,
            Err(e) => {
                board.update(|o| {
                    o.publisher_errors
                        .push((Instant::now(), format!("connect: {e}")))
                });
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {
                    let _ = conn.close(200, "test over").await;
                    return;
                }
            }
            let key = KEYS[(id % 3) as usize];
            let sent = async {
                ch.basic_publish(
                    EXCHANGE,
                    key,
                    BasicPublishOptions::default(),
                    id.to_string().as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?
                .await
            };
            match tokio::time::timeout(Duration::from_secs(10), sent).await {
                Ok(Ok(confirm)) if confirm.is_ack() => {
                    board.update(|o| o.confirmed.push((Instant::now(), id, key)));
                    id += 1;
                }
                Ok(Ok(confirm)) => {
                    // nack: the broker did not take it; send the same id again
                    board.update(|o| {
                        o.publisher_errors
                            .push((Instant::now(), format!("nack for {id}: {confirm:?}")))
                    });
                }
                Ok(Err(e)) => {
                    // unconfirmed: retried with the same id on a new connection (at-least-once)
                    board.update(|o| {
                        o.publisher_errors
                            .push((Instant::now(), format!("publish {id}: {e}")))
                    });
                    continue 'connect;
                }
                Err(_) => {
                    board.update(|o| {
                        o.publisher_errors
                            .push((Instant::now(), format!("publish {id}: no confirm in 10s")))
                    });
                    continue 'connect;
                }
            }
        }
    }
}

async fn prober(
    uri: String,
    every: Duration,
    board: Arc<Board<Observed>>,
    mut stop: watch::Receiver<bool>,
    lock: Arc<tokio::sync::Mutex<()>>,
) {
    let mut n = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        n += 1;
        let guard = lock.lock().await;
        let at = Instant::now();
        let name = format!("probe-{n}");
        let r = async {
            let conn = amqp::connect(&uri, &name).await?;
            conn.close(200, "probe").await
        };
        let r = match tokio::time::timeout(Duration::from_secs(10), r).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no handshake within 10s".to_string()),
        };
        drop(guard);
        board.update(|o| o.probes.push((at, r)));
    }
}
