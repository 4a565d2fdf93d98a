//! Clients for the `amqp-terminate` tests: a consumer and a confirming publisher that
//! record what they see, with lapin's own recovery off, so any close the client sees is a
//! failure the test can report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::amqp;

/// What a client saw go wrong with its connection (lapin's `on_error`), with a watch
/// bumped on each error to wait on.
#[derive(Clone)]
pub struct Errors {
    list: Arc<Mutex<Vec<String>>>,
    count: watch::Sender<usize>,
}

impl Errors {
    pub fn watch(conn: &Connection) -> Errors {
        let errors = Errors {
            list: Arc::default(),
            count: watch::channel(0).0,
        };
        let e = errors.clone();
        conn.on_error(move |err| {
            e.list
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(err.to_string());
            e.count.send_modify(|n| *n += 1);
        });
        errors
    }

    pub fn list(&self) -> Vec<String> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for the first error containing `needle`, until `deadline`.
    pub async fn wait_for(&self, needle: &str, deadline: Instant) -> Option<String> {
        let mut seen = self.count.subscribe();
        loop {
            if let Some(e) = self.list().into_iter().find(|e| e.contains(needle)) {
                return Some(e);
            }
            if tokio::time::timeout_at(deadline, seen.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }
}

/// Deliveries seen by a consumer: message id → how many times, and when each arrived.
#[derive(Default)]
pub struct Seen {
    pub counts: BTreeMap<u64, u32>,
    pub arrivals: Vec<Instant>,
}

impl Seen {
    pub fn duplicates(&self) -> u32 {
        self.counts.values().map(|n| n - 1).sum()
    }

    /// The longest pause between two deliveries that spans `t` or starts after it: how long
    /// deliveries stopped around an event.
    pub fn pause_around(&self, t: Instant) -> Option<std::time::Duration> {
        self.arrivals
            .windows(2)
            .filter(|w| w[1] >= t)
            .map(|w| w[1].duration_since(w[0]))
            .max()
    }
}

pub struct Consumer {
    pub conn: Connection,
    pub errors: Errors,
    pub seen: Arc<Mutex<Seen>>,
    /// Bumped on every delivery, to wait on.
    pub delivered: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Consumer {
    /// Consumes `queue` with `prefetch`, acking each message after recording it.
    pub async fn start(uri: &str, name: &str, queue: &str, prefetch: u16) -> Result<Consumer> {
        let conn = amqp::connect(uri, name).await.context("consumer connect")?;
        let errors = Errors::watch(&conn);
        let ch = conn.create_channel().await?;
        ch.basic_qos(prefetch, Default::default()).await?;
        let mut stream = ch
            .basic_consume(
                queue,
                name,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, delivered) = watch::channel(0usize);
        let s = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Some(Ok(d)) = stream.next().await {
                let id: u64 = std::str::from_utf8(&d.data)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                {
                    let mut seen = s.lock().unwrap_or_else(|p| p.into_inner());
                    *seen.counts.entry(id).or_default() += 1;
                    seen.arrivals.push(Instant::now());
                }
                if d.acker.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Ok(Consumer {
            conn,
            errors,
            seen,
            delivered,
            task,
        })
    }

    pub fn ids(&self) -> BTreeSet<u64> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .keys()
            .copied()
            .collect()
    }

    /// Waits until every id in `want` has been delivered, or `timeout`.
    pub async fn wait_for(&mut self, want: &BTreeSet<u64>, timeout: std::time::Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if want.is_subset(&self.ids()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.delivered.changed())
                .await
                .is_err()
            {
                return want.is_subset(&self.ids());
            }
        }
    }

    pub fn stop(self) -> Connection {
        self.task.abort();
        self.conn
    }
}

/// Publishes ids 1, 2, 3… to `key`, one at a time, each waited for until confirmed.
pub struct Publisher {
    pub conn: Connection,
    pub errors: Errors,
    pub confirmed: Arc<Mutex<BTreeSet<u64>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
}

impl Publisher {
    pub async fn start(
        uri: &str,
        name: &str,
        key: &'static str,
        every: std::time::Duration,
    ) -> Result<Publisher> {
        let conn = amqp::connect(uri, name)
            .await
            .context("publisher connect")?;
        let errors = Errors::watch(&conn);
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let confirmed = Arc::new(Mutex::new(BTreeSet::new()));
        let (stop, mut stopped) = watch::channel(false);
        let c = Arc::clone(&confirmed);
        let task = tokio::spawn(async move {
            let mut id = 0u64;
            let mut tick = tokio::time::interval(every);
            while !*stopped.borrow() {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                id += 1;
                let confirm = ch
                    .basic_publish(
                        amqp::EXCHANGE,
                        key,
                        BasicPublishOptions::default(),
                        id.to_string().as_bytes(),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .with_context(|| format!("publishing {id}"))?
                    .await
                    .with_context(|| format!("confirm of {id}"))?;
                if confirm.is_ack() {
                    c.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                }
            }
            Ok(())
        });
        Ok(Publisher {
            conn,
            errors,
            confirmed,
            stop,
            task,
        })
    }

    /// Stops publishing; the ids the node confirmed.
    pub async fn stop(self) -> Result<(Connection, BTreeSet<u64>)> {
        let _ = self.stop.send(true);
        self.task.await.context("publisher task")??;
        let confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok((self.conn, confirmed))
    }
}
