//! Turning a [`Config`] into a running proxy, keeping it running across reloads, and
//! stopping it.
//!
//! ```text
//! Warren::bind(config) ──▶ listeners bound, Generation built ──▶ run(shutdown)
//!                                                                 ├─ accept loops, checkers, rebalancers (per generation)
//!  Handle::reload(new config) ──▶ bind new addresses ──▶ next Generation ──▶ swap
//!  shutdown resolves ──▶ stop accepting, end sessions (AMQP: connection.close 320), wait ≤ hard-stop-after
//! ```
//! Binding is a separate step from running so the caller (the binary, or a test binding
//! `127.0.0.1:0`) learns the addresses, and a bind error is reported before anything starts.

pub mod process;
mod rebalance;
mod signals;

pub use crate::state::Generation;
pub use signals::{reload_signal, stop_signal, Stop};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, StatsPage};
use crate::health::checker;
use crate::proxy::listener;
use crate::state::{BackendState, FrontendState, Process};
use crate::stats;
use crate::tls;

/// HAProxy's `hard-stop-after` default in warren: how long a stop waits for sessions to
/// finish (AMQP sessions are each told to close; this bounds their goodbyes).
pub const HARD_STOP_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("frontend '{frontend}': cannot bind {addr}: {source}")]
    Bind {
        frontend: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("warren is not running")]
    NotRunning,
    #[error("stats page '{page}': cannot bind {addr}: {source}")]
    StatsBind {
        page: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Tls {
        /// The bind or server whose files could not be used.
        what: String,
        source: crate::tls::TlsError,
    },
    #[error("cannot read the random source for the admin form token (/dev/urandom): {0}")]
    Random(std::io::Error),
    #[error("stats socket {path}: {source}")]
    StatsSocket {
        path: String,
        source: std::io::Error,
    },
}

/// A listening socket and the configured address it was bound for.
struct Bound {
    /// As configured; port 0 (tests) is never reused across reloads.
    configured: SocketAddr,
    /// How clients start (PROXY header, TLS); from the configuration in force, so a
    /// reload brings new certificates.
    accept: listener::Accept,
    frontend: String,
    socket: Socket,
}

enum Socket {
    /// Bound before the runtime started.
    Std(std::net::TcpListener),
    Tokio(Arc<TcpListener>),
}

type ReloadRequest = (Config, oneshot::Sender<Result<(), RuntimeError>>);

/// Asks a running warren to apply a new configuration.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<ReloadRequest>,
}

impl Handle {
    /// Applies `config` (already validated). On a bind error nothing changes and the old
    /// configuration keeps serving.
    pub async fn reload(&self, config: Config) -> Result<(), RuntimeError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((config, reply))
            .await
            .map_err(|_| RuntimeError::NotRunning)?;
        answer.await.map_err(|_| RuntimeError::NotRunning)?
    }
}

/// A bound warren.
pub struct Warren {
    process: Arc<Process>,
    current: Arc<ArcSwap<Generation>>,
    listeners: Vec<Bound>,
    reloads: mpsc::Receiver<ReloadRequest>,
    handle: Handle,
    hard_stop_after: Duration,
    /// Stats pages and their sockets, as the configuration in force has them; a reload
    /// keeps the sockets of addresses that stay and serves the new page settings on them.
    stats: Vec<StatsBound>,
    /// Retires the stats pages' accept loops on a reload.
    stats_retire: CancellationToken,
    /// One per process, so a form loaded before a reload still posts after it.
    csrf: String,
    stats_socket: Option<std::os::unix::net::UnixListener>,
    /// The rustls configurations the current generation uses, by the content of their
    /// files; a reload builds the next set through it.
    tls: tls::Cache,
}

/// A stats page's listening socket.
struct StatsBound {
    configured: SocketAddr,
    page: StatsPage,
    socket: Socket,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Warren {
    /// Builds the live state and binds every frontend address. Nothing is accepted until
    /// [`Warren::run`].
    pub fn bind(config: &Config) -> Result<Warren, RuntimeError> {
        Warren::bind_with(config, Vec::new())
    }

    /// [`Warren::bind`], taking the listening sockets in `bound` for the frontend and stats
    /// addresses they are bound to instead of binding those addresses itself (a socket
    /// handed over by a supervisor or a test, which then knows its port before warren
    /// starts and across reloads; sockets matching no address are closed).
    pub fn bind_with(
        config: &Config,
        bound: Vec<std::net::TcpListener>,
    ) -> Result<Warren, RuntimeError> {
        let mut handed = Vec::new();
        for l in bound {
            // tokio takes it over later, which needs a non-blocking socket.
            if let (Ok(addr), Ok(())) = (l.local_addr(), l.set_nonblocking(true)) {
                handed.push((addr, Socket::Std(l)));
            }
        }
        let process = Arc::new(Process::new(config.global.maxconn));
        let mut tls = tls::Cache::default();
        let none = tls::Cache::default();
        let connectors = connectors(config, &mut tls, &none)?;
        let handed: Vec<(SocketAddr, &Socket)> = handed.iter().map(|(a, s)| (*a, s)).collect();
        let listeners = bind_all(config, &handed, &mut tls, &none)?;
        let stats = bind_stats(config, &handed, &mut tls, &none)?;
        let generation = Generation::build(config.clone(), None, process.stop.child_token());
        install(&generation, connectors);
        let stats_socket = match &config.global.stats_socket {
            Some(s) => Some(
                stats::socket::bind(&s.path, s.mode)
                    .and_then(|l| {
                        process::chown(&s.path, s.user.as_deref(), s.group.as_deref())
                            .map_err(std::io::Error::other)?;
                        Ok(l)
                    })
                    .map_err(|source| RuntimeError::StatsSocket {
                        path: s.path.display().to_string(),
                        source,
                    })?,
            ),
            None => None,
        };
        let (tx, reloads) = mpsc::channel(4);
        Ok(Warren {
            process,
            current: Arc::new(ArcSwap::from_pointee(generation)),
            listeners,
            reloads,
            handle: Handle { tx },
            hard_stop_after: HARD_STOP_AFTER,
            stats,
            stats_retire: CancellationToken::new(),
            csrf: stats::auth::new_csrf_token().map_err(RuntimeError::Random)?,
            stats_socket,
            tls,
        })
    }

    /// Sets the bound on how long a stop waits for sessions (`hard-stop-after`).
    pub fn hard_stop_after(&mut self, limit: Duration) {
        self.hard_stop_after = limit;
    }

    /// The addresses a frontend actually listens on (port 0 resolved).
    pub fn local_addrs(&self, frontend: &str) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|b| b.frontend == frontend)
            .filter_map(|b| b.socket.local_addr())
            .collect()
    }

    /// The live state now; after a reload, the new generation.
    pub fn current(&self) -> Arc<ArcSwap<Generation>> {
        Arc::clone(&self.current)
    }

    /// The addresses a stats page listens on.
    pub fn stats_addrs(&self, page: &str) -> Vec<SocketAddr> {
        self.stats
            .iter()
            .filter(|s| s.page.name == page)
            .filter_map(|s| s.socket.local_addr())
            .collect()
    }

    pub fn backend(&self, name: &str) -> Option<Arc<BackendState>> {
        self.current.load().backend(name).cloned()
    }

    pub fn frontend(&self, name: &str) -> Option<Arc<FrontendState>> {
        self.current.load().frontend(name).cloned()
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serves until `shutdown` resolves, applying reloads meanwhile; then stops accepting,
    /// ends every session and waits (at most `hard-stop-after`) for them to finish. Must
    /// run inside a tokio runtime.
    pub async fn run(mut self, shutdown: impl Future<Output = Stop>) -> std::io::Result<()> {
        let tasks = TaskTracker::new();
        crate::log::start()?;
        for bound in &mut self.listeners {
            bound.socket.start()?;
        }
        self.start_generation(&tasks);
        self.start_stats()?;
        self.start_runtime_socket()?;
        tokio::pin!(shutdown);
        let stop = loop {
            tokio::select! {
                stop = &mut shutdown => break stop,
                Some((config, reply)) = self.reloads.recv() => {
                    let _ = reply.send(self.apply(config, &tasks));
                }
            }
        };
        let limit = match stop {
            Stop::Graceful => self.hard_stop_after,
            Stop::Fast => self.hard_stop_after.min(signals::FAST_STOP),
        };
        tracing::info!(
            "stopping: no new connections; ending {} sessions (waiting at most {limit:?})",
            self.process.actconn()
        );
        self.process.stop.cancel();
        tasks.close();
        if tokio::time::timeout(limit, tasks.wait()).await.is_err() {
            tracing::warn!("sessions still open after {limit:?}; exiting anyway");
        }
        Ok(())
    }

    /// Starts the stats pages' accept loops; they read whatever generation is current.
    fn start_stats(&mut self) -> std::io::Result<()> {
        self.stats_retire = self.process.stop.child_token();
        for bound in &mut self.stats {
            bound.socket.start()?;
            let Socket::Tokio(l) = &bound.socket else {
                continue;
            };
            let page = Arc::new(stats::http::Page {
                config: bound.page.clone(),
                current: Arc::clone(&self.current),
                csrf: self.csrf.clone(),
            });
            let (retire, stop) = (self.stats_retire.clone(), self.process.stop.clone());
            tokio::spawn(stats::http::serve(
                Arc::clone(l),
                page,
                bound.tls.clone(),
                retire,
                stop,
            ));
        }
        Ok(())
    }

    /// Starts the runtime API socket (bound once, at start).
    fn start_runtime_socket(&mut self) -> std::io::Result<()> {
        if let Some(l) = self.stats_socket.take() {
            let l = tokio::net::UnixListener::from_std(l)?;
            tokio::spawn(stats::socket::serve(
                l,
                Arc::clone(&self.current),
                self.process.stop.clone(),
            ));
        }
        Ok(())
    }

    /// Starts the accept loops, checkers and rebalancers of the current generation.
    fn start_generation(&self, tasks: &TaskTracker) {
        let generation = self.current.load_full();
        for bound in &self.listeners {
            let (Some(fe), Socket::Tokio(socket)) =
                (generation.frontend(&bound.frontend), &bound.socket)
            else {
                continue;
            };
            let stop = generation.tasks.clone();
            let accept = bound.accept.clone();
            if fe.config.mode == crate::config::Mode::Http {
                tokio::spawn(crate::http::accept_loop(
                    Arc::clone(socket),
                    accept,
                    Arc::clone(fe),
                    Arc::clone(&self.process),
                    tasks.clone(),
                    stop,
                    generation.config.global.bufsize(),
                ));
                continue;
            }
            tokio::spawn(listener::accept_loop(
                Arc::clone(socket),
                accept,
                Arc::clone(fe),
                Arc::clone(&self.process),
                tasks.clone(),
                stop,
            ));
        }
        crate::dns::start(&generation);
        let global = &generation.config.global;
        let spread = crate::health::spread::Spread {
            percent: global.spread_checks,
            max_first: global.max_spread_checks,
        };
        for backend in &generation.backends {
            let checked: Vec<_> = backend.servers.iter().filter(|s| s.config.check).collect();
            for (i, server) in checked.iter().enumerate() {
                let first = spread.first(i, checked.len(), server.config.inter);
                tokio::spawn(checker::run(
                    Arc::clone(backend),
                    Arc::clone(server),
                    generation.tasks.clone(),
                    spread,
                    first,
                ));
            }
            if let Some(policy) = backend.config.rebalance {
                tokio::spawn(rebalance::run(
                    Arc::clone(backend),
                    policy,
                    generation.tasks.clone(),
                ));
            }
        }
    }

    /// A reload: bind what is new, build the next generation, swap, retire the old one.
    fn apply(&mut self, config: Config, tasks: &TaskTracker) -> Result<(), RuntimeError> {
        // Every file is read again: renewed certificates and CAs take effect here.
        let mut tls = tls::Cache::default();
        let connectors = connectors(&config, &mut tls, &self.tls)?;
        let current: Vec<_> = self
            .listeners
            .iter()
            .map(|b| (b.configured, &b.socket))
            .collect();
        let mut listeners = bind_all(&config, &current, &mut tls, &self.tls)?;
        for bound in &mut listeners {
            if let Err(source) = bound.socket.start() {
                return Err(RuntimeError::Bind {
                    frontend: bound.frontend.clone(),
                    addr: bound.configured,
                    source,
                });
            }
        }
        let current: Vec<_> = self
            .stats
            .iter()
            .map(|b| (b.configured, &b.socket))
            .collect();
        let mut stats = bind_stats(&config, &current, &mut tls, &self.tls)?;
        for bound in &mut stats {
            if let Err(source) = bound.socket.start() {
                return Err(RuntimeError::StatsBind {
                    page: bound.page.name.clone(),
                    addr: bound.configured,
                    source,
                });
            }
        }
        let old = self.current.load_full();
        let next = Generation::build(config, Some(&old), self.process.stop.child_token());
        install(&next, connectors);
        self.tls = tls;
        self.process.resize(next.config.global.maxconn);
        self.current.store(Arc::new(next));
        old.tasks.cancel();
        self.listeners = listeners;
        self.start_generation(tasks);
        self.stats_retire.cancel();
        self.stats = stats;
        if let Err(e) = self.start_stats() {
            tracing::error!("stats pages after the reload: {e}");
        }
        tracing::info!("configuration reloaded");
        Ok(())
    }
}

impl Socket {
    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Std(l) => l.local_addr().ok(),
            Socket::Tokio(l) => l.local_addr().ok(),
        }
    }

    /// Hands the socket to tokio (needs the runtime).
    fn start(&mut self) -> std::io::Result<()> {
        if let Socket::Std(l) = self {
            let l = l.try_clone()?;
            *self = Socket::Tokio(Arc::new(TcpListener::from_std(l)?));
        }
        Ok(())
    }

    /// The same listening socket for the next generation (reloads happen while running,
    /// when every socket is tokio's), or a socket handed over at start.
    fn reuse(&self) -> Option<std::io::Result<Socket>> {
        match self {
            Socket::Tokio(l) => Some(Ok(Socket::Tokio(Arc::clone(l)))),
            Socket::Std(l) => Some(l.try_clone().map(Socket::Std)),
        }
    }
}

/// The socket for `addr`: the one already bound for it among `current` (a reload never
/// closes a listening port that stays in the configuration; port 0, as in tests, is never
/// reused), else a new one.
fn reuse_or_bind<'a>(
    mut current: impl Iterator<Item = (SocketAddr, &'a Socket)>,
    bind: &crate::config::Bind,
) -> std::io::Result<Socket> {
    let addr = bind.addr;
    let reused = current
        .find(|(configured, _)| *configured == addr && addr.port() != 0)
        .and_then(|(_, s)| s.reuse())
        .transpose()?;
    match reused {
        Some(socket) => Ok(socket),
        None => listener::bind_v6only(addr, !bind.v4v6).map(Socket::Std),
    }
}

/// The TLS acceptor of a bind, if it has `ssl`, built from its files as they are now.
fn acceptor(
    bind: &crate::config::Bind,
    what: impl FnOnce() -> String,
    cache: &mut tls::Cache,
    previous: &tls::Cache,
) -> Result<Option<Arc<rustls::ServerConfig>>, RuntimeError> {
    bind.tls
        .as_ref()
        .map(|t| cache.acceptor(previous, t))
        .transpose()
        .map_err(|source| RuntimeError::Tls {
            what: what(),
            source,
        })
}

/// The TLS connector of every server of `config` that has one, by backend and server
/// position, built from the files as they are now.
type Connectors = Vec<Vec<Option<Arc<rustls::ClientConfig>>>>;

fn connectors(
    config: &Config,
    cache: &mut tls::Cache,
    previous: &tls::Cache,
) -> Result<Connectors, RuntimeError> {
    config
        .backends
        .iter()
        .map(|b| {
            b.servers
                .iter()
                .map(|s| {
                    s.tls
                        .as_ref()
                        .map(|t| cache.connector(previous, t))
                        .transpose()
                        .map_err(|source| RuntimeError::Tls {
                            what: format!("server {}/{}", b.name, s.name),
                            source,
                        })
                })
                .collect()
        })
        .collect()
}

/// Gives each server of `generation` its connector (a server state carried over from the
/// previous generation gets the one built from the files as they are now).
fn install(generation: &Generation, connectors: Connectors) {
    for (backend, connectors) in generation.backends.iter().zip(connectors) {
        for (server, connector) in backend.servers.iter().zip(connectors) {
            server.tls.store(connector);
        }
    }
}

/// One address of a frontend or a stats page (`owner`, for errors): its TLS acceptor and its
/// socket, the one of `current` when the address is unchanged.
fn bind_one(
    bind: &crate::config::Bind,
    owner: &str,
    current: &[(SocketAddr, &Socket)],
    cache: &mut tls::Cache,
    previous: &tls::Cache,
    bind_error: impl FnOnce(std::io::Error) -> RuntimeError,
) -> Result<(Option<Arc<rustls::ServerConfig>>, Socket), RuntimeError> {
    let tls = acceptor(
        bind,
        || format!("{owner} bind {}", bind.addr),
        cache,
        previous,
    )?;
    let socket = reuse_or_bind(current.iter().map(|(a, s)| (*a, *s)), bind).map_err(bind_error)?;
    Ok((tls, socket))
}

/// Binds every stats page address, reusing the sockets of `current`.
fn bind_stats(
    config: &Config,
    current: &[(SocketAddr, &Socket)],
    cache: &mut tls::Cache,
    previous: &tls::Cache,
) -> Result<Vec<StatsBound>, RuntimeError> {
    let mut out = Vec::new();
    for page in &config.stats {
        for bind in &page.binds {
            let owner = format!("stats page '{}'", page.name);
            let (tls, socket) = bind_one(bind, &owner, current, cache, previous, |source| {
                RuntimeError::StatsBind {
                    page: page.name.clone(),
                    addr: bind.addr,
                    source,
                }
            })?;
            out.push(StatsBound {
                configured: bind.addr,
                page: page.clone(),
                socket,
                tls,
            });
        }
    }
    Ok(out)
}

/// Binds every frontend address of `config`, reusing the sockets of `current`.
fn bind_all(
    config: &Config,
    current: &[(SocketAddr, &Socket)],
    cache: &mut tls::Cache,
    previous: &tls::Cache,
) -> Result<Vec<Bound>, RuntimeError> {
    let mut out = Vec::new();
    for fe in &config.frontends {
        for bind in &fe.binds {
            let owner = format!("frontend '{}'", fe.name);
            let (tls, socket) = bind_one(bind, &owner, current, cache, previous, |source| {
                RuntimeError::Bind {
                    frontend: fe.name.clone(),
                    addr: bind.addr,
                    source,
                }
            })?;
            let accept = listener::Accept {
                proxy_header: bind.accept_proxy,
                tls,
            };
            out.push(Bound {
                configured: bind.addr,
                accept,
                frontend: fe.name.clone(),
                socket,
            });
        }
    }
    Ok(out)
}
