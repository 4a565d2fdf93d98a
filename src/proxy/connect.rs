//! Reaching a server for a session: pick, connect within `timeout connect`, retry, and
//! redispatch to another server when `option redispatch` allows it.
//!
//! Every failed attempt counts against the server's health at once (passive health), so
//! a node that died between two active checks stops receiving sessions after `fall`
//! failures instead of after `fall × inter`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use tokio::io::AsyncWriteExt;

use super::stream::{Stream, Tls};
use crate::health::checker as checks;
use crate::health::{CheckStatus, Probe};
use crate::proxy_protocol;
use crate::state::{BackendState, NoServer, Slot};

/// HAProxy waits this long before retrying the same server after a quick failure (its
/// "turn-around timer"), so a refused port is not hammered.
const TURN_AROUND: Duration = Duration::from_secs(1);

/// A connected server, with how it was reached.
pub struct Connected {
    pub stream: Stream,
    pub slot: Slot,
    /// Time spent waiting in the queue.
    pub queue_time: Duration,
    /// Time from the first attempt to success.
    pub connect_time: Duration,
    pub retries: u32,
    pub redispatched: bool,
}

/// Why a session could not reach any server.
#[derive(Debug)]
pub struct Failed {
    pub reason: FailReason,
    pub queue_time: Option<Duration>,
    pub retries: u32,
    pub redispatched: bool,
    /// The last server tried, if any.
    pub server: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    NoServer(NoServer),
    /// Every attempt failed; the last one for this reason.
    Refused,
    Timeout,
}

/// Picks a server and connects to it, with retries and redispatch.
/// `client` is the client's address (from a PROXY header when there was one) and
/// `destination` the address it connected to; both go into the PROXY header of servers
/// with `send-proxy`.
pub async fn connect(
    backend: &Arc<BackendState>,
    client_addr: SocketAddr,
    destination: SocketAddr,
    use_server: Option<usize>,
) -> Result<Connected, Failed> {
    let client = client_addr.ip();
    let cfg = &backend.config;
    let mut retries = 0u32;
    let mut redispatched = false;
    let mut exclude: Vec<usize> = Vec::new();
    let mut queue_time = Duration::ZERO;
    let mut connect_started: Option<Instant> = None;

    let queued_at = Instant::now();
    // `use-server` first, then the client's stuck server (`stick on src`; with `option
    // persist` even when DOWN).
    let chosen = match use_server {
        Some(id) => backend.acquire_server(id, &exclude),
        None => backend
            .stuck(client)
            .and_then(|id| backend.acquire_server_persist(id, &exclude, cfg.persist)),
    };
    let picked = match chosen {
        Some(slot) => Ok(slot),
        None => backend.acquire(client, &exclude).await,
    };
    let mut slot = match picked {
        Ok(slot) => slot,
        Err(e) => {
            return Err(failed(
                FailReason::NoServer(e),
                Some(queued_at.elapsed()),
                0,
                false,
                None,
            ))
        }
    };
    queue_time += queued_at.elapsed();

    loop {
        let server = Arc::clone(&slot.server);
        let last_server = Some(server.name().to_string());
        let started = Instant::now();
        connect_started.get_or_insert(started);
        let attempt = establish(
            &server.config,
            cfg.timeouts.connect,
            client_addr,
            destination,
        )
        .await;
        let err = match attempt {
            Ok(stream) => {
                let connect_time = connect_started.map_or(Duration::ZERO, |s| s.elapsed());
                return Ok(Connected {
                    stream,
                    slot,
                    queue_time,
                    connect_time,
                    retries,
                    redispatched,
                });
            }
            Err(err) => err,
        };
        server
            .counters
            .connect_errors
            .fetch_add(1, Ordering::Relaxed);
        let timed_out = err.kind() == std::io::ErrorKind::TimedOut;
        if server.config.check {
            let status = if timed_out {
                CheckStatus::L4TimeOut
            } else {
                CheckStatus::L4Con
            };
            let probe = Probe {
                status,
                info: format!("a session's connect failed: {err}"),
                duration: started.elapsed(),
            };
            checks::record(backend, &server, probe, true);
        }
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
                last_server,
            ));
        }
        retries += 1;
        server.counters.retries.fetch_add(1, Ordering::Relaxed);
        if cfg.redispatch {
            // Move to another server at once: the one that failed is excluded for the rest
            // of this session. When none is left, start over with every server, as a
            // client reconnecting would.
            exclude.push(server.id);
            drop(slot);
            let queued_at = Instant::now();
            let next = match backend.acquire(client, &exclude).await {
                Ok(s) => Ok(s),
                Err(NoServer::Unavailable) if !exclude.is_empty() => {
                    exclude.clear();
                    backend.acquire(client, &exclude).await
                }
                Err(e) => Err(e),
            };
            queue_time += queued_at.elapsed();
            slot = match next {
                Ok(s) => s,
                Err(e) => {
                    return Err(failed(
                        FailReason::NoServer(e),
                        Some(queue_time),
                        retries,
                        redispatched,
                        last_server,
                    ))
                }
            };
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
    }
}

/// A usable connection to `server`: TCP, then the PROXY header (`send-proxy`), then TLS
/// (`ssl`), all within `timeout connect`, which HAProxy also applies to the TLS handshake.
async fn establish(
    server: &crate::config::Server,
    timeout: Option<Duration>,
    client: SocketAddr,
    destination: SocketAddr,
) -> std::io::Result<Stream> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut stream = open(server.addr, timeout).await?;
    if let Some(version) = server.send_proxy {
        let header = proxy_protocol::encode(version.into(), client, destination);
        stream.write_all(&header).await?;
    }
    match &server.tls {
        Some(tls) if tls.sessions => {
            let name = crate::tls::server_name(tls.name.as_deref(), server.addr);
            let handshake = Box::pin(Tls::connect(stream, &tls.connector.0, name));
            match deadline {
                Some(d) => tokio::time::timeout_at(d, handshake).await.map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })?,
                None => handshake.await,
            }
        }
        _ => Ok(Stream::Plain(stream)),
    }
}

/// One TCP connect, bounded by `timeout` when set; the socket gets `TCP_NODELAY` since
/// warren relays whatever segments the client chose to send.
async fn open(addr: SocketAddr, timeout: Option<Duration>) -> std::io::Result<TcpStream> {
    let connect = TcpStream::connect(addr);
    let stream = match timeout {
        Some(t) => tokio::time::timeout(t, connect).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
        })??,
        None => connect.await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}
