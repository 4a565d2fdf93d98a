//! A frontend's live state: its backend, its log targets, its counters, its `maxconn`
//! gate and its session rates (`rate-limit sessions`, `rate-limit sessions-per-source`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::rate::{FreqCtr, SourceRates, Verdict};
use super::BackendState;
use crate::config::{Frontend, Level};
use crate::log::Logger;

/// Frontend counters (`scur`, `smax`, `stot`, `bin`, `bout`, `rate_max`, `dcon`).
#[derive(Debug, Default)]
pub struct FrontendCounters {
    pub current: AtomicU32,
    pub max: AtomicU32,
    pub total: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Highest session rate seen (sessions per second).
    pub rate_max: AtomicU32,
    /// Connections refused by `rate-limit sessions-per-source` or `tcp-request connection`
    /// rules (HAProxy's `dcon`, "denied connections").
    pub denied: AtomicU64,
    /// `amqp-terminate`: sessions moved to another node with the client kept connected.
    pub moves: AtomicU64,
    /// Moves that could not be done; the client got `connection.close` 320.
    pub moves_failed: AtomicU64,
    /// Messages published again on a new node after a move.
    pub republished: AtomicU64,
    /// Clients held right now while their session moves.
    pub held: AtomicU32,
    /// Sessions refused by `tcp-request session` rules (`dses`).
    pub denied_sessions: AtomicU64,
    /// Sessions refused by `tcp-request content` rules (`dreq`, "denied requests").
    pub denied_requests: AtomicU64,
    /// HTTP mode: requests and responses (with the request rate, in HTTP mode only).
    pub http: super::HttpCounters,
}

#[derive(Debug)]
pub struct FrontendState {
    pub config: Frontend,
    /// `None` when the frontend has no `default_backend`: its clients are closed at once.
    pub backend: Option<Arc<BackendState>>,
    /// Every backend of the configuration, index for index, when the frontend's rules need
    /// them (`use_backend`, `nbsrv(<name>)`, `be_conn(<name>)`) or it is mode http; empty
    /// otherwise.
    pub backends: Vec<Arc<BackendState>>,
    pub logger: Arc<Logger>,
    pub counters: FrontendCounters,
    /// One permit per allowed connection; the accept loop stops accepting while none is
    /// left, so excess clients wait in the kernel backlog as with HAProxy.
    pub slots: Arc<Semaphore>,
    /// New sessions per second (the stats' `rate`; what `rate-limit sessions` limits).
    /// A lock taken once per accepted connection, never across an await.
    session_rate: Mutex<FreqCtr>,
    /// Per client address, when `rate-limit sessions-per-source` is set.
    sources: Option<Mutex<SourceRates>>,
    /// `amqp-terminate`: the clients open now, for the sessions view.
    pub sessions: Arc<super::sessions::Sessions>,
}

impl FrontendState {
    pub fn new(
        config: Frontend,
        backend: Option<Arc<BackendState>>,
        logger: Arc<Logger>,
    ) -> FrontendState {
        let now = Instant::now();
        let http = if config.mode == crate::config::Mode::Http {
            super::HttpCounters::with_rate()
        } else {
            super::HttpCounters::default()
        };
        FrontendState {
            slots: Arc::new(Semaphore::new(config.maxconn as usize)),
            session_rate: Mutex::new(FreqCtr::new(now)),
            sources: config
                .rate_limit
                .per_source
                .map(|_| Mutex::new(SourceRates::new(now))),
            config,
            backend,
            backends: Vec::new(),
            logger,
            counters: FrontendCounters {
                http,
                ..FrontendCounters::default()
            },
            sessions: Arc::default(),
        }
    }

    /// With the configuration's backends, for rules that name them (and always in HTTP
    /// mode, where `use_backend` and the rules' fetches are evaluated per request).
    pub fn with_backends(mut self, backends: &[Arc<BackendState>]) -> FrontendState {
        if !self.config.rules.is_empty() || self.config.mode == crate::config::Mode::Http {
            self.backends = backends.to_vec();
        }
        self
    }

    /// `rate-limit sessions`: how long the accept loop must pause before taking one more
    /// session (zero: go ahead).
    pub fn session_wait(&self) -> Duration {
        match self.config.rate_limit.sessions {
            Some(limit) => lock(&self.session_rate).wait(Instant::now(), limit),
            None => Duration::ZERO,
        }
    }

    /// Counts a new session in the frontend's rate.
    pub fn count_session(&self) {
        let now = Instant::now();
        let rate = {
            let mut r = lock(&self.session_rate);
            r.add(now);
            r.rate(now)
        };
        self.counters.rate_max.fetch_max(rate, Ordering::Relaxed);
    }

    /// New sessions per second now.
    pub fn session_rate(&self) -> u32 {
        lock(&self.session_rate).rate(Instant::now())
    }

    /// `rate-limit sessions-per-source`: may `client` open one more session now? A refusal
    /// is counted (`dcon`), and logged once per address and second so a flood cannot
    /// flood the logs too.
    pub fn admit_source(&self, client: IpAddr) -> bool {
        let (Some(limit), Some(sources)) = (self.config.rate_limit.per_source, &self.sources)
        else {
            return true;
        };
        let verdict = lock(sources).check(client, Instant::now(), limit);
        match verdict {
            Verdict::Allowed => true,
            Verdict::Refused { first } => {
                self.counters.denied.fetch_add(1, Ordering::Relaxed);
                if first {
                    self.logger.event(
                        Level::Warning,
                        &format!(
                            "Proxy {}: refusing connections from {client}: more than {limit} new sessions per second (rate-limit sessions-per-source {limit}).",
                            self.config.name
                        ),
                    );
                }
                false
            }
        }
    }

    /// Counts a client in; the returned guard counts it out.
    pub fn enter(self: &Arc<Self>) -> FrontendGuard {
        let now = self.counters.current.fetch_add(1, Ordering::Relaxed) + 1;
        self.counters.max.fetch_max(now, Ordering::Relaxed);
        self.counters.total.fetch_add(1, Ordering::Relaxed);
        FrontendGuard(Arc::clone(self))
    }
}

/// A poisoned lock still holds valid counts (a panic cannot leave them half-written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a session counted in its frontend's `scur`.
#[derive(Debug)]
pub struct FrontendGuard(Arc<FrontendState>);

impl Drop for FrontendGuard {
    fn drop(&mut self) {
        self.0.counters.current.fetch_sub(1, Ordering::Relaxed);
    }
}
