//! A backend's live state: its servers, its balancer and its queue.
//!
//! Picking a server and taking a slot on it happen under one short lock (the balancer's),
//! once per connection attempt, never per packet. When every usable server is at its
//! `maxconn`, the session waits in the backend's queue for a slot, as in HAProxy.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;

use crate::balance::{self, Balancer, Candidate};
use crate::config::Backend;
use crate::log::Logger;

use super::server::{lock, ServerState, Slot};

/// Why no server could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoServer {
    /// No server is usable (all DOWN, in maintenance, draining or at weight 0).
    Unavailable,
    /// Servers are usable but full, and the queue is full too (`maxqueue`).
    QueueFull,
    /// Waited in the queue for `timeout queue` without getting a slot.
    QueueTimeout,
}

enum Attempt {
    Got(Slot),
    Full,
    None,
}

/// Backend-wide counters (`qcur`, `qmax`, totals).
#[derive(Debug, Default)]
pub struct BackendCounters {
    pub queued: AtomicU32,
    pub queue_max: AtomicU32,
    pub total: AtomicU64,
    /// Sessions that found no usable server.
    pub no_server: AtomicU64,
    /// HTTP mode: requests and responses.
    pub http: super::HttpCounters,
}

/// A server changed operational or administrative state; tests and (later) the stats page
/// wait on these instead of polling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub server: String,
    pub up: bool,
}

pub struct BackendState {
    pub config: Backend,
    /// Where server state changes are logged (the backend's `log` targets).
    pub logger: Arc<Logger>,
    pub events: broadcast::Sender<ServerEvent>,
    pub servers: Vec<Arc<ServerState>>,
    balancer: Mutex<Box<dyn Balancer>>,
    /// Notified when a slot frees up or a server becomes usable.
    slot_freed: Arc<Notify>,
    pub counters: BackendCounters,
    /// `stick on src`: where each client went last.
    stick: Option<Mutex<super::stick::StickTable>>,
}

impl std::fmt::Debug for BackendState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendState")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl BackendState {
    pub fn new(config: Backend, logger: Arc<Logger>) -> BackendState {
        let servers: Vec<Arc<ServerState>> = config
            .servers
            .iter()
            .enumerate()
            .map(|(id, s)| Arc::new(ServerState::new(id, &config.name, s.clone())))
            .collect();
        BackendState::with_servers(config, logger, servers)
    }

    /// A backend over given server states (a reload keeps the unchanged ones, so their
    /// counters, health and open sessions carry over). `servers[i].id` must be `i`.
    pub fn with_servers(
        config: Backend,
        logger: Arc<Logger>,
        servers: Vec<Arc<ServerState>>,
    ) -> BackendState {
        let weights: Vec<u32> = config.servers.iter().map(|s| s.weight).collect();
        BackendState {
            balancer: Mutex::new(balance::new(config.balance, &weights, config.hash_type)),
            servers,
            slot_freed: Arc::new(Notify::new()),
            logger,
            events: broadcast::channel(64).0,
            counters: BackendCounters::default(),
            stick: config
                .stick
                .map(|s| Mutex::new(super::stick::StickTable::new(s.size as usize, s.expire))),
            config,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn server(&self, name: &str) -> Option<&Arc<ServerState>> {
        self.servers.iter().find(|s| s.name() == name)
    }

    /// Usable servers left, as (active, backup), for log lines like HAProxy's.
    pub fn usable_counts(&self) -> (usize, usize) {
        let usable = self.servers.iter().filter(|s| s.usable());
        usable.fold((0, 0), |(a, b), s| {
            if s.config.backup {
                (a, b + 1)
            } else {
                (a + 1, b)
            }
        })
    }

    /// Wake queued sessions: a server came UP, its weight or admin state changed.
    pub fn servers_changed(&self) {
        self.slot_freed.notify_waiters();
    }

    /// [`acquire`](Self::acquire), avoiding the servers in `exclude` while another is
    /// usable; when none is, `exclude` is cleared and every server may be picked again, as
    /// a client reconnecting would (redispatch, a session moving off a node).
    pub async fn acquire_avoiding(
        &self,
        client: IpAddr,
        exclude: &mut Vec<usize>,
    ) -> Result<Slot, NoServer> {
        match self.acquire(client, exclude).await {
            Err(NoServer::Unavailable) if !exclude.is_empty() => {
                exclude.clear();
                self.acquire(client, exclude).await
            }
            other => other,
        }
    }

    /// Picks a server and takes a slot on it, waiting in the queue up to `timeout queue`
    /// when all usable servers are full. `exclude` lists servers this session already
    /// failed to reach (redispatch never returns to them).
    pub async fn acquire(&self, client: IpAddr, exclude: &[usize]) -> Result<Slot, NoServer> {
        match self.try_acquire(client, exclude) {
            Attempt::Got(slot) => return Ok(slot),
            Attempt::None => return Err(NoServer::Unavailable),
            Attempt::Full => {}
        }
        if self.queue_full() {
            return Err(NoServer::QueueFull);
        }
        let _queued = QueuedGuard::new(&self.counters);
        let deadline = self.config.timeouts.queue.map(|t| Instant::now() + t);
        loop {
            let notified = self.slot_freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_acquire(client, exclude) {
                Attempt::Got(slot) => return Ok(slot),
                Attempt::None => return Err(NoServer::Unavailable),
                Attempt::Full => {}
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(NoServer::QueueTimeout);
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The server `client` sticks to (`stick on src`), if any.
    pub fn stuck(&self, client: IpAddr) -> Option<usize> {
        let table = self.stick.as_ref()?;
        lock(table).lookup(client, Instant::now())
    }

    /// Records where `client` went (`stick on src`).
    pub fn stick(&self, client: IpAddr, server: usize) {
        if let Some(table) = &self.stick {
            lock(table).store(client, server, Instant::now());
        }
    }

    /// `use-server`: a slot on server `id` when it is usable, not excluded and has room;
    /// otherwise `None` and the session is balanced as usual (HAProxy ignores a
    /// `use-server` naming a server that is down). `even_down`: `option persist` for a
    /// stuck client, whose server is tried unless in maintenance.
    pub fn acquire_server(&self, id: usize, exclude: &[usize]) -> Option<Slot> {
        self.acquire_server_persist(id, exclude, false)
    }

    pub fn acquire_server_persist(
        &self,
        id: usize,
        exclude: &[usize],
        even_down: bool,
    ) -> Option<Slot> {
        let _balancer = lock(&self.balancer); // the same lock as any pick: no double take
        let server = self.servers.get(id)?;
        let allowed = server.usable()
            || (even_down && server.admin() != super::AdminState::Maint && server.weight() > 0);
        if !allowed || exclude.contains(&id) || !server.has_free_slot() {
            return None;
        }
        self.counters.total.fetch_add(1, Ordering::Relaxed);
        Some(Slot::take(Arc::clone(server), Arc::clone(&self.slot_freed)))
    }

    /// The queue is bounded only when every usable server sets `maxqueue`.
    fn queue_full(&self) -> bool {
        let mut limit = 0u32;
        for s in self.servers.iter().filter(|s| s.usable()) {
            if s.config.maxqueue == 0 {
                return false;
            }
            limit = limit.saturating_add(s.config.maxqueue);
        }
        self.counters.queued.load(Ordering::Relaxed) >= limit
    }

    fn try_acquire(&self, client: IpAddr, exclude: &[usize]) -> Attempt {
        // Held while reading slot counts and taking one, so two sessions cannot both take
        // a server's last slot.
        let mut balancer = lock(&self.balancer);
        let usable = |s: &&Arc<ServerState>| s.usable() && !exclude.contains(&s.id);
        // Backup servers serve only when no active server is usable (HAProxy's rule).
        let active_usable = self
            .servers
            .iter()
            .filter(|s| !s.config.backup)
            .any(|s| usable(&s));
        let pool = self
            .servers
            .iter()
            .filter(|s| s.config.backup != active_usable)
            .filter(usable);
        let mut any_usable = false;
        let mut candidates = Vec::with_capacity(self.servers.len());
        for s in pool {
            any_usable = true;
            if s.has_free_slot() {
                candidates.push(Candidate {
                    id: s.id,
                    weight: s.effective_weight(),
                    active: s.counters.current.load(Ordering::Relaxed),
                });
            }
        }
        if !any_usable {
            return Attempt::None;
        }
        if self.config.rebalance.is_some() {
            prefer_below_share(
                &mut candidates,
                self.servers
                    .iter()
                    .filter(|s| s.usable())
                    .map(|s| s.counters.current.load(Ordering::Relaxed))
                    .sum(),
            );
        }
        match balancer.pick(&candidates, client) {
            Some(i) => {
                let server = Arc::clone(&self.servers[candidates[i].id]);
                self.counters.total.fetch_add(1, Ordering::Relaxed);
                Attempt::Got(Slot::take(server, Arc::clone(&self.slot_freed)))
            }
            None => Attempt::Full,
        }
    }
}

/// With rebalancing on, new sessions go to servers below their weighted share when there
/// are any: otherwise the sessions shed from a crowded node would be dealt out round robin
/// and land back on it.
fn prefer_below_share(candidates: &mut Vec<Candidate>, total: u32) {
    let weights: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
    let below = |c: &Candidate| {
        u64::from(c.active) * weights < (u64::from(total) + 1) * u64::from(c.weight)
    };
    if candidates.iter().any(below) {
        candidates.retain(below);
    }
}

/// Counts a session in the backend queue while it waits.
struct QueuedGuard<'a>(&'a BackendCounters);

impl<'a> QueuedGuard<'a> {
    fn new(counters: &'a BackendCounters) -> Self {
        let now = counters.queued.fetch_add(1, Ordering::Relaxed) + 1;
        counters.queue_max.fetch_max(now, Ordering::Relaxed);
        QueuedGuard(counters)
    }
}

impl Drop for QueuedGuard<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: usize, weight: u32, active: u32) -> Candidate {
        Candidate { id, weight, active }
    }

    #[test]
    fn rebalancing_prefers_servers_below_their_share() {
        // 10/10/0 with equal weights: only the empty node is below its share.
        let mut v = vec![c(0, 1, 10), c(1, 1, 10), c(2, 1, 0)];
        prefer_below_share(&mut v, 20);
        assert_eq!(v.iter().map(|c| c.id).collect::<Vec<_>>(), vec![2]);
        // Balanced: everyone stays a candidate.
        let mut v = vec![c(0, 1, 10), c(1, 1, 10), c(2, 1, 10)];
        prefer_below_share(&mut v, 30);
        assert_eq!(v.len(), 3);
        // Weights count: 2:1 with 20/10 is balanced.
        let mut v = vec![c(0, 2, 20), c(1, 1, 10)];
        prefer_below_share(&mut v, 30);
        assert_eq!(v.len(), 2);
    }
}
