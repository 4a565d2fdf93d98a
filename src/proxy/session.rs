//! One client connection from accept to its log line, in phases:
//!
//! ```text
//! edge handshakes (PROXY header, TLS; amqp: protocol header)   edge.rs
//!   ─▶ connect (pick, queue, retries, redispatch)              connect.rs
//!   ─▶ transfer (bytes or frames both ways, timeouts)          transfer.rs
//!   ─▶ end (amqp: connection.close; the log line)              end.rs
//! ```
//! An [`Active`] guard keeps the session counted in `actconn` on every way out.

mod edge;
mod end;
mod transfer;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::{self, Connected, FailReason};
use super::forward::{End, Side};
use super::keepalive;
use super::listener::{self, Accept};
use crate::config::{Frontend, Level, Mode, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::log::tcplog::{connect_line, Cause, Phase, SessionRecord};
use crate::log::LocalTime;
use crate::state::{BackendState, FrontendState, NoServer, Process};
use end::finish;

/// Counts a session in the process's `actconn` for as long as it lives.
struct Active<'a>(&'a Process);

impl<'a> Active<'a> {
    fn enter(process: &'a Process) -> Active<'a> {
        process.actconn.fetch_add(1, Ordering::Relaxed);
        Active(process)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.actconn.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The deadlines of a session's handshakes, from its accept.
struct Deadlines {
    /// The AMQP handshake (`timeout handshake`, 10 s by default).
    amqp: Instant,
    /// The connection-level handshakes (PROXY header, TLS): HAProxy's `timeout client-hs`
    /// when set, else `timeout handshake`. In AMQP mode the AMQP handshake, which starts
    /// at accept, bounds them too.
    connection: Instant,
}

impl Deadlines {
    fn new(fe: &Frontend, accepted: Instant) -> Deadlines {
        let amqp = accepted + fe.timeouts.handshake.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        let connection = fe.timeouts.client_hs.map_or(amqp, |t| accepted + t);
        let connection = if fe.mode == Mode::Amqp {
            connection.min(amqp)
        } else {
            connection
        };
        Deadlines { amqp, connection }
    }
}

/// Runs one session to its end. The caller holds the `maxconn` permits for its lifetime.
/// A plain `fn` returning an `async move` block rather than an `async fn`: an `async fn`
/// copies its arguments into the body's own locals and keeps both slots for the task's
/// whole life; the block uses its captures in place (idle sessions must stay small).
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub fn run(
    process: Arc<Process>,
    frontend: Arc<FrontendState>,
    tcp: TcpStream,
    peer: SocketAddr,
    accept: Accept,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let accepted = Instant::now();
        let accepted_wall = LocalTime::now();
        let _counted = frontend.enter();
        let _active = Active::enter(&process);
        let _ = tcp.set_nodelay(true);
        let fe = &frontend.config;
        let amqp_mode = fe.mode.is_amqp();
        keepalive::apply(&tcp, &fe.keepalive, amqp_mode);
        if !fe.log.tcplog && !frontend.logger.is_empty() {
            if let Ok(local) = tcp.local_addr() {
                frontend.logger.send(
                    Level::Info,
                    &connect_line(peer, local, &fe.name, fe.mode.as_str()),
                );
            }
        }
        // Destructured: only what is still needed stays in the session's future.
        let Deadlines {
            amqp: amqp_deadline,
            connection,
        } = Deadlines::new(fe, accepted);

        // Matched at once: a `Result` kept in a local would stay in the future too.
        let mut edge = match edge::handshakes(&frontend, tcp, peer, &accept, connection).await {
            Ok(edge) => edge,
            Err(edge::Stop::Refused(tcp)) => return listener::refuse(tcp),
            Err(edge::Stop::Failed(failure)) => {
                let rec = failed(
                    SessionRecord::new(failure.peer, accepted_wall, &fe.name),
                    failure,
                );
                return finish(&process, &frontend, rec, accepted);
            }
        };
        if edge.peer != peer {
            tracing::Span::current().record("client", tracing::field::display(edge.peer));
        }
        let mut rec = SessionRecord::new(edge.peer, accepted_wall, &fe.name);
        // Rules (tcp-request session/content, use_backend, use-server): nothing to do
        // without any. Boxed: only sessions with rules pay for their state.
        let routed = if super::rules::apply(&frontend) {
            Box::pin(super::rules::route(
                &frontend,
                &mut edge.client,
                edge.peer,
                edge.destination,
            ))
            .await
        } else {
            Ok(super::rules::Route::to(frontend.backend.clone()))
        };
        // Destructured: only the backend stays in the session's future; the server and the
        // inspected bytes go to the (boxed) connect phase.
        let super::rules::Route {
            backend: routed,
            server: use_server,
            prefix,
            ..
        } = match routed {
            Ok(route) => route,
            Err(super::rules::Denied::Session) => return,
            Err(super::rules::Denied::Content) => {
                (rec.cause, rec.phase) = (Cause::Proxy, Phase::Request);
                return finish(&process, &frontend, rec, accepted);
            }
        };
        let Some(backend) = routed.as_ref() else {
            (rec.cause, rec.phase) = (Cause::Proxy, Phase::Connect);
            return finish(&process, &frontend, rec, accepted);
        };
        rec.backend = &backend.config.name;
        if amqp_mode {
            if let Err(failure) = edge::amqp_header(&mut edge, amqp_deadline).await {
                return finish(&process, &frontend, failed(rec, failure), accepted);
            }
        }

        if fe.mode == Mode::AmqpTerminate {
            // Boxed: only terminated sessions should pay for their state.
            let out = Box::pin(super::terminate::serve(
                &process,
                &frontend,
                backend,
                edge.client,
                edge.peer,
                edge.destination,
                amqp_deadline,
            ))
            .await;
            if let Some(server) = &out.server {
                rec.server = server.name();
                rec.srv_conn = server.counters.current.load(Ordering::Relaxed);
            }
            rec.connect_ms = out.connect_ms;
            rec.queue_ms = Some(0);
            rec.retries = out.retries;
            rec.bytes_to_client = out.bytes_to_client;
            rec.bytes_to_server = out.bytes_to_server;
            (rec.cause, rec.phase) = (out.cause, out.phase);
            rec.extra = Some(out.extra);
            rec.beconn = backend_sessions(backend);
            return finish(&process, &frontend, rec, accepted);
        }

        let mut conn = match Box::pin(connect(
            &process, backend, &edge, use_server, prefix, amqp_mode,
        ))
        .await
        {
            Ok(conn) => conn,
            Err(failure) => {
                let server_name = failure.server;
                if amqp_mode && !failure.left.is_empty() {
                    rec.extra = Some(connect::left_text(&failure.left));
                }
                rec.queue_ms = failure.queue_ms;
                rec.retries = failure.retries;
                rec.redispatched = failure.redispatched;
                (rec.cause, rec.phase) = (failure.cause, failure.phase);
                if !server_name.is_empty() {
                    rec.server = &server_name;
                }
                return finish(&process, &frontend, rec, accepted);
            }
        };
        let server = Arc::clone(&conn.slot.server);
        tracing::Span::current().record("server", server.name());
        backend.stick(edge.peer.ip(), server.id);
        rec.server = server.name();
        rec.queue_ms = Some(ms(conn.queue_time));
        rec.connect_ms = Some(ms(conn.connect_time));
        rec.retries = conn.retries;
        rec.redispatched = conn.redispatched;
        if fe.log.logasap && fe.log.tcplog && !frontend.logger.is_empty() {
            // `option logasap`: the line now, marked `+`; none at the end.
            let mut early = rec.clone();
            early.asap = true;
            early.actconn = process.actconn();
            early.feconn = frontend.counters.current.load(Ordering::Relaxed);
            early.srv_conn = server.counters.current.load(Ordering::Relaxed);
            early.total_ms = ms(accepted.elapsed());
            frontend.logger.send(Level::Info, &early.tcplog());
            rec.logged = true;
        }
        keepalive::apply(conn.stream.tcp(), &backend.config.keepalive, amqp_mode);

        let amqp = amqp_mode.then_some(amqp_deadline);
        let (transfer, extra, shedding) = transfer::run(
            &process,
            &frontend,
            backend,
            &mut edge.client,
            &mut conn,
            amqp,
        )
        .await;
        rec.extra = extra;
        rec.bytes_to_client = transfer.to_client;
        rec.bytes_to_server = transfer.to_server + conn.prefix_sent;
        (rec.cause, rec.phase) = match transfer.end {
            End::Closed => (Cause::None, Phase::None),
            End::ClientTimeout => (Cause::ClientTimeout, Phase::Data),
            End::ServerTimeout => (Cause::ServerTimeout, Phase::Data),
            End::ClientError | End::Eof(Side::Client) | End::Violation(Side::Client) => {
                (Cause::ClientAbort, Phase::Data)
            }
            End::ServerError | End::Eof(Side::Server) | End::Violation(Side::Server) => {
                (Cause::ServerAbort, Phase::Data)
            }
            End::Killed => (Cause::Killed, Phase::Data),
        };
        rec.srv_conn = server.counters.current.load(Ordering::Relaxed);
        rec.beconn = backend_sessions(backend);
        drop(conn);
        drop(shedding); // after the slot: never counted as settled while still open
        finish(&process, &frontend, rec, accepted);
    }
}

/// The record of a session that ended at its edge.
fn failed<'a>(mut rec: SessionRecord<'a>, failure: edge::Failure) -> SessionRecord<'a> {
    rec.bytes_to_server = failure.bytes_to_server;
    (rec.cause, rec.phase, rec.extra) = (failure.cause, failure.phase, failure.extra);
    rec
}

/// Why no server was reached, for the log line.
struct ConnectFailure {
    cause: Cause,
    phase: Phase,
    queue_ms: Option<u64>,
    retries: u32,
    redispatched: bool,
    /// The last server tried; empty when none was.
    server: String,
    /// Every server left, with why.
    left: Vec<connect::Left>,
}

/// The connect phase: a server picked (queueing for a slot), connected, with retries and
/// redispatch; a stop cancels it.
async fn connect(
    process: &Process,
    backend: &Arc<BackendState>,
    edge: &edge::Edge,
    use_server: Option<usize>,
    prefix: Vec<u8>,
    amqp_mode: bool,
) -> Result<Connected, ConnectFailure> {
    // AMQP: a server is connected once it answered the protocol header (a frozen node
    // accepts TCP but never answers).
    let answer = if amqp_mode {
        connect::Answer::AmqpStart
    } else {
        connect::Answer::Connected
    };
    let attempt = tokio::select! {
        // Boxed: connecting (queue, retries, timers) needs more state than forwarding, and
        // only for a moment; unboxed it would stay reserved in every idle session's task.
        r = Box::pin(connect::connect(backend, edge.peer, edge.destination, use_server, answer)) => r,
        _ = process.stop.cancelled() => {
            return Err(ConnectFailure {
                cause: Cause::Killed,
                phase: Phase::Connect,
                queue_ms: None,
                retries: 0,
                redispatched: false,
                server: String::new(),
                left: Vec::new(),
            });
        }
    };
    let failed = match attempt {
        Ok(mut conn) => {
            // Bytes read by content inspection go first.
            if !prefix.is_empty() && conn.stream.write_all(&prefix).await.is_ok() {
                conn.prefix_sent = prefix.len() as u64;
            }
            return Ok(conn);
        }
        Err(failed) => failed,
    };
    let (cause, phase) = match failed.reason {
        FailReason::NoServer(NoServer::Unavailable) => (Cause::ServerAbort, Phase::Connect),
        FailReason::NoServer(NoServer::QueueTimeout) => (Cause::ServerTimeout, Phase::Queue),
        FailReason::NoServer(NoServer::QueueFull) => (Cause::Resource, Phase::Queue),
        FailReason::Refused => (Cause::ServerAbort, Phase::Connect),
        FailReason::Timeout => (Cause::ServerTimeout, Phase::Connect),
    };
    if matches!(failed.reason, FailReason::NoServer(NoServer::Unavailable)) && failed.retries == 0 {
        backend.counters.no_server.fetch_add(1, Ordering::Relaxed);
    }
    Err(ConnectFailure {
        cause,
        phase,
        queue_ms: failed.queue_time.map(ms),
        retries: failed.retries,
        redispatched: failed.redispatched,
        server: failed.server.unwrap_or_default(),
        left: failed.left,
    })
}

fn backend_sessions(backend: &BackendState) -> u32 {
    backend
        .servers
        .iter()
        .map(|s| s.counters.current.load(Ordering::Relaxed))
        .sum()
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idle sessions cost what their task's future holds; keep it small (the benchmark's
    /// idle-memory scenario is where this number is argued).
    #[test]
    fn a_session_future_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
            let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let client = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
            let config = crate::config::load_str(
                &format!("defaults\n mode tcp\n timeout connect 1s\n timeout client 1s\n timeout server 1s\nlisten p\n bind 127.0.0.1:0\n server s {addr}\n"),
                "t.cfg",
                crate::config::Syntax::Haproxy,
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
            let w = crate::runtime::Warren::bind(&config).unwrap_or_else(|e| panic!("{e}"));
            let fe = w.frontend("p").unwrap_or_else(|| panic!("frontend"));
            let process = Arc::new(Process::new(10));
            let fut = run(process, fe, client, addr, Accept::default());
            let size = std::mem::size_of_val(&fut);
            println!("session future: {size} bytes");
            // 1584 bytes with rules routing (`use_backend`, `use-server`, inspected bytes)
            // and `option logasap` (1472 before them, with the session split into phases;
            // 1376 in one function; 2408 before the forwarding loop polled readiness by hand);
            // an array on the stack of any phase (a 4 KiB read buffer once was), or a
            // future kept twice, would show here.
            assert!(size <= 1600, "a session's future is {size} bytes");

        });
    }
}
