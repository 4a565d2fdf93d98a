//! `mode http`: an HTTP/1.1 reverse proxy with HAProxy's semantics, for the RabbitMQ
//! management UI and API (and Web-STOMP/Web-MQTT, whose WebSockets pass as tunnels).
//!
//! ```text
//! listener ─▶ session::run (PROXY header, TLS, then one request after another)
//!                 │ head::request (bounded by tune.bufsize, timeout http-request → 408)
//!                 ▼
//!             exchange::run ─▶ use_backend (per request) ─▶ upstream::get (balance per
//!                 │             request, pool or connect, retries)
//!                 │ rewrite::request ─▶ body::copy ─▶ head::response ─▶ rewrite::response
//!                 │ 101 Switching Protocols: both sockets become a tunnel (proxy::forward)
//!                 ▼
//!             log::Record (option httplog), counters (hrsp_*, req_tot), pool::put
//! ```
//!
//! The proxy speaks HTTP/1.x itself (httparse for the heads) rather than through hyper's
//! server and client: HAProxy's answers to bad input (400 for an oversized head, not 431;
//! 408 when `timeout http-request` strikes, not a silent close; 400 for `Content-Length`
//! with `Transfer-Encoding`), its per-request log timers, connection modes and tunnels all
//! need the bytes of the head and the connection in hand. Bodies are streamed, never
//! buffered whole.

pub mod acl;
pub mod auth;
pub mod body;
pub mod exchange;
pub mod head;
pub mod log;
pub mod persist;
pub mod pool;
pub mod reply;
pub mod rewrite;
pub mod route;
pub mod rules;
pub mod session;
pub mod tunnel;
pub mod upstream;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy::listener::{self, Accept};
use crate::state::{FrontendState, Process};

/// What the sessions of one HTTP listener share.
pub struct Shared {
    /// Idle server connections, one pool per backend of the configuration (index for
    /// index with `FrontendState::backends`): `use_backend` picks one per request.
    pub pools: Vec<pool::Pool>,
    /// `tune.bufsize`: the largest head read.
    pub bufsize: usize,
}

/// Accepts clients of an HTTP frontend until `stop` (the generation's token), with the
/// same `maxconn` and rate limits as every listener; idle server connections are purged
/// meanwhile, and closed when the loop ends.
pub async fn accept_loop(
    socket: Arc<TcpListener>,
    accept: Accept,
    frontend: Arc<FrontendState>,
    process: Arc<Process>,
    tasks: TaskTracker,
    stop: CancellationToken,
    bufsize: usize,
) {
    let shared = Arc::new(Shared {
        pools: frontend
            .backends
            .iter()
            .map(|b| pool::Pool::new(b.servers.len()))
            .collect(),
        bufsize,
    });
    let purge = tokio::spawn(Arc::clone(&shared).purge_until(stop.clone()));
    let for_sessions = Arc::clone(&shared);
    listener::serve_with(
        socket,
        accept,
        frontend,
        process,
        tasks,
        stop,
        move |p, f, c, a, acc| session::run(p, f, Arc::clone(&for_sessions), c, a, acc),
    )
    .await;
    let _ = purge.await;
}

impl Shared {
    /// Closes idle server connections past their time until `stop`, then all of them.
    async fn purge_until(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(pool::IDLE_TIMEOUT);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => self.pools.iter().for_each(pool::Pool::purge),
            }
        }
        self.pools.iter().for_each(pool::Pool::clear);
    }
}
