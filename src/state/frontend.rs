//! A frontend's live state: its backend, its log targets, its counters and its
//! `maxconn` gate.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::BackendState;
use crate::config::Frontend;
use crate::log::Logger;

/// Frontend counters (`scur`, `smax`, `stot`, `bin`, `bout`).
#[derive(Debug, Default)]
pub struct FrontendCounters {
    pub current: AtomicU32,
    pub max: AtomicU32,
    pub total: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

#[derive(Debug)]
pub struct FrontendState {
    pub config: Frontend,
    /// `None` when the frontend has no `default_backend`: its clients are closed at once.
    pub backend: Option<Arc<BackendState>>,
    pub logger: Arc<Logger>,
    pub counters: FrontendCounters,
    /// One permit per allowed connection; the accept loop stops accepting while none is
    /// left, so excess clients wait in the kernel backlog as with HAProxy.
    pub slots: Arc<Semaphore>,
}

impl FrontendState {
    pub fn new(config: Frontend, backend: Option<Arc<BackendState>>, logger: Arc<Logger>) -> FrontendState {
        FrontendState {
            slots: Arc::new(Semaphore::new(config.maxconn as usize)),
            config,
            backend,
            logger,
            counters: FrontendCounters::default(),
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

/// Keeps a session counted in its frontend's `scur`.
#[derive(Debug)]
pub struct FrontendGuard(Arc<FrontendState>);

impl Drop for FrontendGuard {
    fn drop(&mut self) {
        self.0.counters.current.fetch_sub(1, Ordering::Relaxed);
    }
}
