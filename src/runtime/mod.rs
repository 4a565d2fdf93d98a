//! Turning a [`Config`] into a running proxy: bind every listener, build the live state,
//! start the health checkers and accept loops, and stop them all on request.
//!
//! Binding is a separate step from running so that the caller (the binary, or a test that
//! binds `127.0.0.1:0`) learns the bound addresses, and a bind error is reported before
//! anything starts.

mod rebalance;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::config::{Config, LogTarget};
use crate::health::checker;
use crate::log::Logger;
use crate::proxy::listener;
use crate::state::{BackendState, FrontendState, Process};

/// How long a stop waits for sessions to end before giving up on them (HAProxy's
/// `hard-stop-after`; sessions are killed at once in tcp mode, so this only bounds
/// the wait for their tasks to finish).
const HARD_STOP_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("frontend '{frontend}': cannot bind {addr}: {source}")]
    Bind { frontend: String, addr: SocketAddr, source: std::io::Error },
}

/// A bound, not yet running warren.
pub struct Warren {
    process: Arc<Process>,
    frontends: Vec<Arc<FrontendState>>,
    backends: Vec<Arc<BackendState>>,
    /// Bound listeners, by index into `frontends`.
    listeners: Vec<(usize, std::net::TcpListener)>,
}

impl Warren {
    /// Builds the live state and binds every frontend address. Nothing is accepted until
    /// [`Warren::run`].
    pub fn bind(config: &Config) -> Result<Warren, RuntimeError> {
        let mut loggers: HashMap<Vec<LogKey>, Arc<Logger>> = HashMap::new();
        let mut logger = |targets: &[LogTarget]| {
            let key: Vec<LogKey> = targets.iter().map(LogKey::of).collect();
            Arc::clone(loggers.entry(key).or_insert_with(|| Arc::new(Logger::new(targets))))
        };
        let backends: Vec<Arc<BackendState>> = config
            .backends
            .iter()
            .map(|b| Arc::new(BackendState::new(b.clone(), logger(&b.log.targets))))
            .collect();
        let frontends: Vec<Arc<FrontendState>> = config
            .frontends
            .iter()
            .map(|f| {
                let backend = f.default_backend.and_then(|i| backends.get(i)).map(Arc::clone);
                Arc::new(FrontendState::new(f.clone(), backend, logger(&f.log.targets)))
            })
            .collect();
        let mut listeners = Vec::new();
        for (i, fe) in config.frontends.iter().enumerate() {
            for bind in &fe.binds {
                let l = listener::bind(bind.addr).map_err(|source| RuntimeError::Bind {
                    frontend: fe.name.clone(),
                    addr: bind.addr,
                    source,
                })?;
                listeners.push((i, l));
            }
        }
        Ok(Warren { process: Arc::new(Process::new(config.global.maxconn)), frontends, backends, listeners })
    }

    /// The addresses a frontend actually listens on (port 0 resolved).
    pub fn local_addrs(&self, frontend: &str) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(i, _)| self.frontends[*i].config.name == frontend)
            .filter_map(|(_, l)| l.local_addr().ok())
            .collect()
    }

    pub fn backend(&self, name: &str) -> Option<Arc<BackendState>> {
        self.backends.iter().find(|b| b.name() == name).cloned()
    }

    pub fn frontend(&self, name: &str) -> Option<Arc<FrontendState>> {
        self.frontends.iter().find(|f| f.config.name == name).cloned()
    }

    /// Serves until `shutdown` resolves, then stops accepting, ends every session and
    /// waits (at most `HARD_STOP_AFTER`) for them to finish. Must run inside a tokio runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let tasks = TaskTracker::new();
        for (i, l) in self.listeners {
            let listener = tokio::net::TcpListener::from_std(l)?;
            let fe = Arc::clone(&self.frontends[i]);
            tokio::spawn(listener::accept_loop(listener, fe, Arc::clone(&self.process), tasks.clone()));
        }
        for backend in &self.backends {
            for server in backend.servers.iter().filter(|s| s.config.check) {
                tokio::spawn(checker::run(Arc::clone(backend), Arc::clone(server), self.process.stop.clone()));
            }
            if let Some(policy) = backend.config.rebalance {
                tokio::spawn(rebalance::run(Arc::clone(backend), policy, self.process.stop.clone()));
            }
        }
        shutdown.await;
        tracing::info!("stopping: no new connections; ending {} sessions", self.process.actconn());
        self.process.stop.cancel();
        tasks.close();
        if tokio::time::timeout(HARD_STOP_AFTER, tasks.wait()).await.is_err() {
            tracing::warn!("sessions still open after {:?}; exiting anyway", HARD_STOP_AFTER);
        }
        Ok(())
    }
}

/// Loggers are shared between proxies with identical targets, so one UDP socket serves a
/// whole `log global`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct LogKey(String);

impl LogKey {
    fn of(t: &LogTarget) -> LogKey {
        LogKey(format!("{t:?}"))
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            // Without signal handlers the process can still be killed; never return early.
            std::future::pending::<()>().await;
        }
    }
}

/// Writes `pidfile` when the configuration names one.
pub fn write_pidfile(global: &crate::config::Global) -> std::io::Result<()> {
    if let Some(path) = &global.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write pidfile {}: {e}", path.display())))?;
    }
    Ok(())
}
