//! A server connection for one request: pick a server (the backend's balancer, per
//! request), take an idle connection to it from the pool or open one, with `retries` and
//! `option redispatch`: `proxy::connect`'s loop, told what the pool holds. A failed
//! connect counts against the server's health at once (passive health).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::pool::Pool;
use crate::net::Stream;
use crate::proxy::connect::{connect_via, Answer, Failed, Reuse, Via};
use crate::state::{BackendState, Slot};

/// A server connection ready for a request.
pub struct Upstream {
    pub stream: Stream,
    /// Counts the request against its server (`scur`, `maxconn`, leastconn) until dropped.
    pub slot: Slot,
    /// Taken from the pool rather than opened for this request.
    pub reused: bool,
    pub queue_time: Duration,
    /// `None` when reused (no connect happened).
    pub connect_time: Option<Duration>,
    pub retries: u32,
    pub redispatched: bool,
}

/// Picks a server and gets a connection to it. `reuse`: an idle pooled connection may
/// serve (false in `http-server-close`/`httpclose` modes and for a retry after a reused
/// connection failed). `direct`: the server the persistence cookie named, taken when it
/// is usable and has room; its failed connects are retried on it unless
/// `option redispatch`, as for any server. The pick, retries, redispatch and passive
/// health are `proxy::connect`'s, the same as for TCP sessions.
pub async fn get(
    backend: &Arc<BackendState>,
    pool: &Pool,
    client: SocketAddr,
    destination: SocketAddr,
    reuse: bool,
    direct: Option<usize>,
) -> Result<Upstream, Failed> {
    let take = |id: usize| pool.take(id);
    let via = Via {
        use_server: direct,
        answer: Answer::Connected,
        avoid: &[],
        reuse: reuse.then_some(&take as Reuse<'_>),
        on_behalf: "request",
    };
    let c = connect_via(backend, client, destination, via).await?;
    Ok(Upstream {
        stream: c.stream,
        slot: c.slot,
        reused: c.reused,
        queue_time: c.queue_time,
        connect_time: (!c.reused).then_some(c.connect_time),
        retries: c.retries,
        redispatched: c.redispatched,
    })
}
