//! Reaching a server for a session (or, in HTTP mode, a request: an idle pooled connection
//! may serve instead, see [`Via::reuse`]): pick, connect within `timeout connect`, retry,
//! and redispatch to another server when `option redispatch` allows it.
//!
//! Every failed attempt counts against the server's health at once (passive health), so
//! a node that died between two active checks stops receiving sessions after `fall`
//! failures instead of after `fall × inter`.
//!
//! In `amqp` mode a server is connected only once it has answered: warren sends the
//! protocol header and waits for the first bytes of `connection.start`, within the same
//! `timeout connect`. A frozen node (SIGSTOP, a stuck VM) still completes TCP handshakes,
//! its kernel queueing them in the backlog, but never answers; without this step the
//! client would wait for a `connection.start` that never comes. Such a node is a failed
//! connect like a refused one: retried, redispatched, and marked DOWN at once (it may
//! still pass a TCP check, so `fall` consecutive failures might never come). The
//! client's own header was read (and checked) by warren and is not sent again; what the
//! node answered is handed to the session, which passes it on first.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::amqp::frame::PROTOCOL_HEADER;
use crate::health::checker as checks;
use crate::health::observe;
use crate::health::{CheckStatus, Probe};
use crate::net::{Stream, Tls};
use crate::proxy_protocol;
use crate::state::{BackendState, NoServer, ServerState, Slot};

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
    /// Client bytes read by `tcp-request content` inspection and sent ahead of the
    /// session's data (for the log line's byte count).
    pub prefix_sent: u64,
    /// What the server answered while connecting (AMQP) and the servers left before it;
    /// boxed and absent in the common case, since it lives as long as the session.
    pub notes: Option<Box<Notes>>,
    /// An idle connection [`Via::reuse`] handed back: no connect happened.
    pub reused: bool,
}

/// What connecting learned beyond the stream.
#[derive(Debug, Default)]
pub struct Notes {
    /// AMQP: the server's first bytes (the start of `connection.start`), read to know it
    /// answers; the client has not seen them yet.
    pub greeting: Vec<u8>,
    /// Servers tried and left, in order, with why.
    pub left: Vec<Left>,
}

/// A server an attempt was given up on.
#[derive(Debug, Clone)]
pub struct Left {
    pub server: String,
    pub why: String,
}

/// The `left=` part of an AMQP-mode log line: `left=n2:"no connection.start within
/// timeout connect"`, one per server left.
pub fn left_text(left: &[Left]) -> String {
    left.iter()
        .map(|l| format!("left={}:\"{}\"", l.server, l.why.replace('"', "'")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a server must do before it counts as connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// TCP (then the PROXY header and TLS, when configured) is enough: `mode tcp`.
    Connected,
    /// AMQP: the server answers the protocol header (with `connection.start`).
    AmqpStart,
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
    /// Every server left, with why.
    pub left: Vec<Left>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    NoServer(NoServer),
    /// Every attempt failed; the last one for this reason.
    Refused,
    Timeout,
}

/// An idle connection to a server (by id) that may serve instead of a new one: HTTP's
/// pool of keep-alive server connections.
pub type Reuse<'a> = &'a (dyn Fn(usize) -> Option<Stream> + Send + Sync);

/// How [`connect_via`] reaches a server, beyond the backend and the addresses.
#[derive(Clone, Copy)]
pub struct Via<'a> {
    /// The server to try first (`use-server`, HTTP's persistence cookie), taken when it is
    /// usable and has room; otherwise the client's stuck server (`stick on src`), else
    /// the balancer's pick.
    pub use_server: Option<usize>,
    pub answer: Answer,
    /// Servers (by id) never to pick while another is usable.
    pub avoid: &'a [usize],
    /// Asked once, for the first server picked: an idle connection to it, if any.
    pub reuse: Option<Reuse<'a>>,
    /// What connects, for the health log: "session" (TCP), "request" (HTTP).
    pub on_behalf: &'static str,
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
    answer: Answer,
) -> Result<Connected, Failed> {
    connect_excluding(backend, client_addr, destination, use_server, answer, &[]).await
}

/// [`connect`] as [`Via`] says (what may be reused, what to avoid).
pub async fn connect_via(
    backend: &Arc<BackendState>,
    client_addr: SocketAddr,
    destination: SocketAddr,
    via: Via<'_>,
) -> Result<Connected, Failed> {
    attempts(backend, client_addr, destination, via).await
}

/// [`connect`], never to the servers in `avoid` (by id) while another is usable: a
/// session moving off a node (`amqp-terminate`) must not land on it again.
pub async fn connect_excluding(
    backend: &Arc<BackendState>,
    client_addr: SocketAddr,
    destination: SocketAddr,
    use_server: Option<usize>,
    answer: Answer,
    avoid: &[usize],
) -> Result<Connected, Failed> {
    let via = Via {
        use_server,
        answer,
        avoid,
        reuse: None,
        on_behalf: "session",
    };
    attempts(backend, client_addr, destination, via).await
}

/// The one pick/connect/retry/redispatch loop, for TCP sessions and HTTP requests alike.
async fn attempts(
    backend: &Arc<BackendState>,
    client_addr: SocketAddr,
    destination: SocketAddr,
    via: Via<'_>,
) -> Result<Connected, Failed> {
    let Via {
        use_server,
        answer,
        avoid,
        reuse,
        on_behalf,
    } = via;
    let client = client_addr.ip();
    let cfg = &backend.config;
    let mut retries = 0u32;
    let mut redispatched = false;
    let mut exclude: Vec<usize> = avoid.to_vec();
    let mut queue_time = Duration::ZERO;
    let mut connect_started: Option<Instant> = None;
    let mut left: Vec<Left> = Vec::new();

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
        None => backend.acquire_avoiding(client, &mut exclude).await,
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
                Vec::new(),
            ))
        }
    };
    queue_time += queued_at.elapsed();
    if let Some(stream) = reuse.and_then(|take| take(slot.server.id)) {
        return Ok(Connected {
            stream,
            slot,
            queue_time,
            connect_time: Duration::ZERO,
            retries,
            redispatched,
            prefix_sent: 0,
            notes: None,
            reused: true,
        });
    }

    loop {
        let server = Arc::clone(&slot.server);
        let last_server = Some(server.name().to_string());
        let started = Instant::now();
        connect_started.get_or_insert(started);
        let deadline = cfg.timeouts.connect.map(|t| started + t);
        let attempt = match establish(&server, cfg.timeouts.connect, client_addr, destination).await
        {
            Ok(mut stream) if answer == Answer::AmqpStart => {
                match await_start(&mut stream, deadline).await {
                    Ok(greeting) => Ok((stream, greeting)),
                    Err(e) => Err((e, true)),
                }
            }
            Ok(stream) => Ok((stream, Vec::new())),
            Err(e) => Err((e, false)),
        };
        let (err, unanswered) = match attempt {
            Ok((stream, greeting)) => {
                observe::connected(&server);
                let connect_time = connect_started.map_or(Duration::ZERO, |s| s.elapsed());
                let notes = (!greeting.is_empty() || !left.is_empty())
                    .then(|| Box::new(Notes { greeting, left }));
                return Ok(Connected {
                    stream,
                    slot,
                    queue_time,
                    connect_time,
                    retries,
                    redispatched,
                    prefix_sent: 0,
                    notes,
                    reused: false,
                });
            }
            Err(e) => e,
        };
        server
            .counters
            .connect_errors
            .fetch_add(1, Ordering::Relaxed);
        let timed_out = err.kind() == std::io::ErrorKind::TimedOut;
        left.push(Left {
            server: server.name().to_string(),
            why: err.to_string(),
        });
        if server.config.check {
            // A node that took the connection but did not answer fails at layer 7, as
            // `option amqp-check` would report it.
            let status = match (unanswered, timed_out) {
                (false, true) => CheckStatus::L4TimeOut,
                (false, false) => CheckStatus::L4Con,
                (true, true) => CheckStatus::L7TimeOut,
                (true, false) => CheckStatus::L7Rsp,
            };
            let probe = Probe {
                status,
                info: format!("a {on_behalf}'s connect failed: {err}"),
                duration: started.elapsed(),
            };
            if unanswered {
                checks::record_unusable(backend, &server, probe);
            } else if server.config.observe.is_some() {
                // `observe layer4`: HAProxy's rule (`error-limit` in a row, then
                // `on-error`) instead of one failed check per failed connect.
                observe::failure(backend, &server, "L4 unsuccessful connection");
            } else {
                checks::record(backend, &server, probe, true);
            }
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
                left,
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
            let next = backend.acquire_avoiding(client, &mut exclude).await;
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
                        left,
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
    left: Vec<Left>,
) -> Failed {
    Failed {
        reason,
        queue_time,
        retries,
        redispatched,
        server,
        left,
    }
}

/// AMQP: sends the protocol header and waits, until `deadline`, for the server's first
/// bytes (its `connection.start`). Returns them, to be passed on to the client.
async fn await_start(stream: &mut Stream, deadline: Option<Instant>) -> std::io::Result<Vec<u8>> {
    let exchange = async {
        stream.write_all(PROTOCOL_HEADER).await?;
        // connection.start is a few hundred bytes; more waits in the socket for the loop.
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed the connection instead of answering the AMQP protocol header",
            ));
        }
        // Copied out: the session keeps it until the client has it, not 4 KiB.
        Ok(buf[..n].to_vec())
    };
    match deadline {
        Some(d) => tokio::time::timeout_at(d, exchange).await.map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no connection.start within timeout connect",
            )
        })?,
        None => exchange.await,
    }
}

/// A usable connection to `server`: TCP, then the PROXY header (`send-proxy`), then TLS
/// (`ssl`), all within `timeout connect`, which HAProxy also applies to the TLS handshake.
async fn establish(
    state: &ServerState,
    timeout: Option<Duration>,
    client: SocketAddr,
    destination: SocketAddr,
) -> std::io::Result<Stream> {
    let server = &state.config;
    let deadline = timeout.map(|t| Instant::now() + t);
    // One load: the address DNS gave last (a session already open keeps its own socket).
    let addr = state.addr();
    let mut stream = open(addr, timeout).await?;
    if let Some(version) = server.send_proxy {
        let header = proxy_protocol::encode(version.into(), client, destination);
        stream.write_all(&header).await?;
    }
    match &server.tls {
        Some(tls) if tls.sessions => {
            // Set by the runtime for every TLS server before traffic starts; never plain
            // bytes instead of TLS.
            let connector = state.tls.load_full().ok_or_else(|| {
                std::io::Error::other("no TLS configuration was built for this server")
            })?;
            let name = crate::tls::server_name(tls.name.as_deref(), addr);
            let handshake = Box::pin(Tls::connect(stream, &connector, name));
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
