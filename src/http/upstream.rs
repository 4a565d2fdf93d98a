//! A server connection for one request: pick a server (the backend's balancer, per
//! request), take an idle connection to it from the pool or open one, with `retries` and
//! `option redispatch` as for TCP sessions. A failed connect counts against the server's
//! health at once (passive health), exactly as in `proxy::connect`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::pool::Pool;
use crate::health::checker as checks;
use crate::health::{CheckStatus, Probe};
use crate::net::Stream;
use crate::proxy::connect::{establish, FailReason, Failed};
use crate::state::{BackendState, Slot};

/// HAProxy's pause before retrying the same server after a quick failure.
const TURN_AROUND: Duration = Duration::from_secs(1);

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
/// `option redispatch`, as for any server.
pub async fn get(
    backend: &Arc<BackendState>,
    pool: &Pool,
    client: SocketAddr,
    destination: SocketAddr,
    reuse: bool,
    direct: Option<usize>,
) -> Result<Upstream, Failed> {
    let cfg = &backend.config;
    let (mut retries, mut redispatched) = (0u32, false);
    let mut exclude: Vec<usize> = Vec::new();
    let queued_at = Instant::now();
    let mut slot = match direct.and_then(|id| backend.acquire_server(id, &[])) {
        Some(slot) => slot,
        None => backend.acquire(client.ip(), &exclude).await.map_err(|e| {
            failed(
                FailReason::NoServer(e),
                Some(queued_at.elapsed()),
                0,
                false,
                None,
            )
        })?,
    };
    let mut queue_time = queued_at.elapsed();
    if reuse {
        if let Some(stream) = pool.take(slot.server.id) {
            return Ok(Upstream {
                stream,
                slot,
                reused: true,
                queue_time,
                connect_time: None,
                retries,
                redispatched,
            });
        }
    }
    let started = Instant::now();
    loop {
        let server = Arc::clone(&slot.server);
        let attempt_start = Instant::now();
        let err = match establish(&server, cfg.timeouts.connect, client, destination).await {
            Ok(stream) => {
                let _ = stream.tcp().set_nodelay(true);
                return Ok(Upstream {
                    stream,
                    slot,
                    reused: false,
                    queue_time,
                    connect_time: Some(started.elapsed()),
                    retries,
                    redispatched,
                });
            }
            Err(e) => e,
        };
        server
            .counters
            .connect_errors
            .fetch_add(1, Ordering::Relaxed);
        let timed_out = err.kind() == std::io::ErrorKind::TimedOut;
        if server.config.check {
            let probe = Probe {
                status: if timed_out {
                    CheckStatus::L4TimeOut
                } else {
                    CheckStatus::L4Con
                },
                info: format!("a request's connect failed: {err}"),
                duration: attempt_start.elapsed(),
            };
            checks::record(backend, &server, probe, true);
        }
        let last = Some(server.name().to_string());
        if retries >= cfg.retries {
            let reason = if timed_out {
                FailReason::Timeout
            } else {
                FailReason::Refused
            };
            return Err(failed(
                reason,
                Some(queue_time),
                retries,
                redispatched,
                last,
            ));
        }
        retries += 1;
        server.counters.retries.fetch_add(1, Ordering::Relaxed);
        if cfg.redispatch {
            exclude.push(server.id);
            drop(slot);
            let again = Instant::now();
            let next = backend.acquire_avoiding(client.ip(), &mut exclude).await;
            queue_time += again.elapsed();
            slot = next.map_err(|e| {
                failed(
                    FailReason::NoServer(e),
                    Some(queue_time),
                    retries,
                    redispatched,
                    last.clone(),
                )
            })?;
            if slot.server.id != server.id {
                redispatched = true;
                server.counters.redispatches.fetch_add(1, Ordering::Relaxed);
            }
        } else if !timed_out {
            tokio::time::sleep(TURN_AROUND).await;
        }
    }
}

fn failed(
    reason: FailReason,
    queue_time: Option<Duration>,
    retries: u32,
    redispatched: bool,
    server: Option<String>,
) -> Failed {
    Failed {
        reason,
        queue_time,
        retries,
        redispatched,
        server,
        left: Vec::new(),
    }
}
