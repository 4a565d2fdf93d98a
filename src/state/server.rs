//! One server's live state, shared by the sessions, its health checker and (later) the
//! stats page.
//!
//! As in HAProxy (`include/haproxy/server-t.h`) a server has two independent states: the
//! operational one set by health checks (UP/DOWN) and the administrative one set by the
//! configuration or an operator (READY/DRAIN/MAINT). Whether it may take new sessions is
//! derived from both, never stored. Everything the data path reads is an atomic, so picking
//! a server and counting bytes take no lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::{CheckStatus, HealthState};
use crate::config::Server;

/// Administrative state, set by the configuration (`disabled`) or an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AdminState {
    Ready = 0,
    /// No new sessions; existing ones continue.
    Drain = 1,
    /// No new sessions, no health checks.
    Maint = 2,
}

impl AdminState {
    fn from_u8(v: u8) -> AdminState {
        match v {
            1 => AdminState::Drain,
            2 => AdminState::Maint,
            _ => AdminState::Ready,
        }
    }
}

/// What the last health check said, for logs and stats.
#[derive(Debug, Clone)]
pub struct LastCheck {
    pub status: CheckStatus,
    /// Free text such as the OS error ("Connection refused").
    pub info: String,
    pub duration: std::time::Duration,
}

/// Health bookkeeping that changes only on check results (never on the data path).
#[derive(Debug)]
pub struct Health {
    pub state: HealthState,
    pub last_check: Option<LastCheck>,
    /// When the operational state last flipped (or start-up).
    pub last_change: Instant,
    /// Times the server went DOWN (HAProxy's `chkdown`).
    pub down_transitions: u64,
    /// Failed checks, active and passive (HAProxy's `chkfail`).
    pub failed_checks: u64,
    /// Since when the server is DOWN (None while UP).
    pub down_since: Option<Instant>,
    /// Time spent DOWN before `down_since` (HAProxy's `downtime`).
    pub downtime: std::time::Duration,
}

impl Health {
    /// Total time spent DOWN up to `now`.
    pub fn downtime_at(&self, now: Instant) -> std::time::Duration {
        self.downtime
            + self.down_since.map_or(std::time::Duration::ZERO, |s| {
                now.saturating_duration_since(s)
            })
    }
}

/// Session and byte counters; relaxed atomics, read as a snapshot by stats.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sessions now open to this server (`scur`).
    pub current: AtomicU32,
    /// Highest `current` seen (`smax`).
    pub max: AtomicU32,
    /// Sessions ever sent to this server (`stot`).
    pub total: AtomicU64,
    /// Bytes from clients to this server (`bin`).
    pub bytes_in: AtomicU64,
    /// Bytes from this server to clients (`bout`).
    pub bytes_out: AtomicU64,
    /// Failed connection attempts (`econ`).
    pub connect_errors: AtomicU64,
    /// Retries of a connection attempt on this server (`wretr`).
    pub retries: AtomicU64,
    /// Sessions moved away from this server after it failed (`wredis`).
    pub redispatches: AtomicU64,
    /// HTTP mode: requests and responses.
    pub http: super::HttpCounters,
    /// `observe`: errors in live traffic since the last success.
    pub consecutive_errors: AtomicU32,
    /// `observe`: times `error-limit` was reached (`hanafail`).
    pub failed_hana: AtomicU64,
}

/// A server as the running process sees it.
#[derive(Debug)]
pub struct ServerState {
    /// Position in its backend (config order); balancers key their state on it.
    pub id: usize,
    /// `backend/server`, the name every log line uses.
    pub full_name: String,
    pub config: Server,
    /// Operational state from health checks; servers without `check` are always UP.
    up: AtomicBool,
    admin: AtomicU8,
    /// Configured weight; the admin API may change it at run time.
    weight: AtomicU32,
    /// While `slowstart` ramps the weight up after the server came UP: when the ramp ends,
    /// in ms since `epoch`. 0 = no ramp.
    ramp_until_ms: AtomicU64,
    epoch: Instant,
    pub counters: Counters,
    pub health: Mutex<Health>,
    /// Cancelled to end every session on this server at once (shutdown-sessions); replaced
    /// by a fresh token afterwards so new sessions are unaffected.
    kill: Mutex<CancellationToken>,
    /// Why the last shutdown happened, for the `connection.close` text AMQP clients get.
    kill_reason: Mutex<String>,
    /// Rebalancing: sessions in their data phase wait on this; on a wake-up each tries to
    /// take one of `shed_pending` and ends if it got one. No registry of sessions, and no
    /// stored permit that could end a session opened later.
    pub shed: tokio::sync::Notify,
    shed_pending: AtomicU32,
    /// Sessions told to go that have not finished closing yet; rebalancing does not count
    /// them as load, or it would shed again for the same excess.
    shedding: AtomicU32,
    /// Wakes the health checker early (passive failure → check again at `fastinter`).
    pub check_now: tokio::sync::Notify,
    /// Brings the next check forward to at most `fastinter` from now (health analysis).
    pub check_sooner: tokio::sync::Notify,
    /// The TLS connector of `ssl`/`check-ssl`, built by the runtime from the files the
    /// server line names, and replaced by each reload (which re-reads them) even when the
    /// line itself is unchanged and this state carries on. Sessions and checks take it
    /// when they connect.
    pub tls: arc_swap::ArcSwapOption<rustls::ClientConfig>,
    /// The live address (DNS may change it) and resolution maintenance.
    pub address: super::address::Address,
}

impl ServerState {
    pub fn new(id: usize, backend: &str, config: Server) -> ServerState {
        let health = HealthState::new(config.rise, config.fall);
        ServerState {
            id,
            full_name: format!("{backend}/{}", config.name),
            up: AtomicBool::new(health.is_up()),
            admin: AtomicU8::new(if config.disabled {
                AdminState::Maint
            } else {
                AdminState::Ready
            } as u8),
            weight: AtomicU32::new(config.weight),
            ramp_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            counters: Counters::default(),
            health: Mutex::new(Health {
                state: health,
                last_check: None,
                last_change: Instant::now(),
                down_transitions: 0,
                failed_checks: 0,
                down_since: None,
                downtime: std::time::Duration::ZERO,
            }),
            kill: Mutex::new(CancellationToken::new()),
            kill_reason: Mutex::new(String::new()),
            check_now: tokio::sync::Notify::new(),
            check_sooner: tokio::sync::Notify::new(),
            shed: tokio::sync::Notify::new(),
            shed_pending: AtomicU32::new(0),
            shedding: AtomicU32::new(0),
            tls: arc_swap::ArcSwapOption::empty(),
            address: super::address::Address::new(&config),
            config,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// A new state for a changed server line that keeps what the running process knew of
    /// the server with the same name: UP/DOWN, admin state, weight set at run time (when
    /// the configured weight did not change), and the health counters when rise/fall did
    /// not change. HAProxy's `server-state-file` carries the same things across reloads.
    pub fn carried_over(
        id: usize,
        backend: &str,
        config: Server,
        old: &ServerState,
    ) -> ServerState {
        let new = ServerState::new(id, backend, config);
        new.set_up(old.is_up());
        if new.config.disabled == old.config.disabled {
            new.set_admin(old.admin());
        }
        if new.config.weight == old.config.weight {
            new.set_weight(old.weight());
        }
        {
            let old_health = old.health();
            let mut health = new.health();
            if (new.config.rise, new.config.fall) == (old.config.rise, old.config.fall) {
                health.state = old_health.state.clone();
            } else if !old.is_up() {
                health.state = HealthState::new_down(new.config.rise, new.config.fall);
            }
            health.last_check = old_health.last_check.clone();
            health.last_change = old_health.last_change;
            health.down_transitions = old_health.down_transitions;
            health.failed_checks = old_health.failed_checks;
            health.down_since = old_health.down_since;
            health.downtime = old_health.downtime;
        }
        if keeps_last_address(&new.config, &old.config) {
            new.address.copy_from(&old.address);
        }
        new
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    pub fn admin(&self) -> AdminState {
        AdminState::from_u8(self.admin.load(Ordering::Acquire))
    }

    pub fn set_admin(&self, state: AdminState) {
        self.admin.store(state as u8, Ordering::Release);
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    /// The weight balancing uses now: the configured one, scaled down while `slowstart`
    /// ramps it up after the server came back (never below 1, as in HAProxy).
    pub fn effective_weight(&self) -> u32 {
        let weight = self.weight();
        let until = self.ramp_until_ms.load(Ordering::Relaxed);
        let (Some(ramp), true) = (self.config.slowstart, until > 0) else {
            return weight;
        };
        let now = self.epoch.elapsed().as_millis() as u64;
        if now >= until {
            return weight;
        }
        let ramp_ms = ramp.as_millis().max(1) as u64;
        let elapsed = ramp_ms.saturating_sub(until - now);
        ((u64::from(weight) * elapsed / ramp_ms) as u32).max(1)
    }

    /// Starts the `slowstart` ramp (called when the server comes UP).
    pub fn start_ramp(&self) {
        if let Some(ramp) = self.config.slowstart {
            let until = self.epoch.elapsed() + ramp;
            self.ramp_until_ms
                .store(until.as_millis() as u64, Ordering::Relaxed);
        }
    }

    /// May this server take a new session? (UP, READY, weight > 0, an address.)
    pub fn usable(&self) -> bool {
        self.is_up()
            && self.admin() == AdminState::Ready
            && self.weight() > 0
            && !self.address.in_maint()
    }

    /// Where a new connection to this server goes now.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.address.get()
    }

    /// In maintenance, by an operator or because DNS has no address for it: no checks.
    pub fn in_maint(&self) -> bool {
        self.admin() == AdminState::Maint || self.address.in_maint()
    }

    /// Below its `maxconn` (0 = unlimited)?
    pub fn has_free_slot(&self) -> bool {
        let max = self.config.maxconn;
        max == 0 || self.counters.current.load(Ordering::Relaxed) < max
    }

    /// The token a new session watches to learn it must end.
    pub fn kill_token(&self) -> CancellationToken {
        lock(&self.kill).clone()
    }

    /// End every session now open on this server (`shutdown sessions server`,
    /// `on-marked-down shutdown-sessions`). `reason` is what AMQP clients are told.
    /// Returns how many were open.
    pub fn shutdown_sessions(&self, reason: &str) -> u32 {
        *lock(&self.kill_reason) = reason.to_string();
        let old = std::mem::take(&mut *lock(&self.kill));
        old.cancel();
        self.counters.current.load(Ordering::Relaxed)
    }

    /// Asks `n` sessions of this server to end (rebalancing). Replaces any request not
    /// taken up yet.
    pub fn shed_sessions(&self, n: u32) {
        self.shed_pending.store(n, Ordering::Release);
        self.shed.notify_waiters();
    }

    /// Called by a woken session: true if it is one of those to go. It then counts as
    /// `shedding` until the returned guard drops.
    pub fn take_shed(self: &Arc<Self>) -> Option<SheddingGuard> {
        self.shed_pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| {
                self.shedding.fetch_add(1, Ordering::Relaxed);
                SheddingGuard(Arc::clone(self))
            })
    }

    /// Resolves when rebalancing picks the waiting session to go (it then holds the guard
    /// until it has closed).
    pub async fn shed_request(self: &Arc<Self>) -> SheddingGuard {
        loop {
            self.shed.notified().await;
            if let Some(guard) = self.take_shed() {
                return guard;
            }
        }
    }

    /// Sessions that count as load for rebalancing: open and not already told to go.
    pub fn settled_sessions(&self) -> u32 {
        let current = self.counters.current.load(Ordering::Relaxed);
        current.saturating_sub(self.shedding.load(Ordering::Relaxed))
    }

    /// The reason given to the last [`shutdown_sessions`](Self::shutdown_sessions).
    pub fn kill_reason(&self) -> String {
        lock(&self.kill_reason).clone()
    }

    pub fn health(&self) -> MutexGuard<'_, Health> {
        lock(&self.health)
    }
}

/// `init-addr last`: the running process's address wins when `last` comes before the
/// method that gave the new configuration its address (or none did), for the same name.
/// Warren keeps no server-state file; this is what HAProxy's `last` reads from one.
fn keeps_last_address(new: &Server, old: &Server) -> bool {
    use crate::config::InitAddr;
    let (Some(n), Some(o)) = (&new.dns, &old.dns) else {
        return false;
    };
    if n.fqdn != o.fqdn || n.template != o.template {
        return false;
    }
    let methods = n.methods();
    let last = methods.iter().position(|m| *m == InitAddr::Last);
    let used = n
        .resolved_by
        .and_then(|r| methods.iter().position(|m| *m == r))
        .unwrap_or(usize::MAX);
    last.is_some_and(|l| l < used)
}

/// A poisoned lock only means another task panicked mid-update of plain bookkeeping; the
/// data is still meaningful, so keep serving rather than cascading the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a shed session counted in `shedding` until it has closed.
#[derive(Debug)]
pub struct SheddingGuard(Arc<ServerState>);

impl Drop for SheddingGuard {
    fn drop(&mut self) {
        self.0.shedding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a session against its server for as long as it lives.
#[derive(Debug)]
pub struct Slot {
    pub server: Arc<ServerState>,
    freed: Arc<tokio::sync::Notify>,
}

impl Slot {
    /// Takes one slot on `server`; `freed` is notified when it is released so a queued
    /// session can take it.
    pub fn take(server: Arc<ServerState>, freed: Arc<tokio::sync::Notify>) -> Slot {
        let now = server.counters.current.fetch_add(1, Ordering::Relaxed) + 1;
        server.counters.max.fetch_max(now, Ordering::Relaxed);
        server.counters.total.fetch_add(1, Ordering::Relaxed);
        Slot { server, freed }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.server.counters.current.fetch_sub(1, Ordering::Relaxed);
        self.freed.notify_one();
    }
}
