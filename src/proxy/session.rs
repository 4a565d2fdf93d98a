//! One client connection from accept to its log line: (AMQP: check the protocol header),
//! reach a server, forward, end (AMQP: politely), count, log.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::{self, Connected, FailReason};
use super::forward::{self, End, Meter, Side, Tcp, Transfer};
use super::keepalive;
use super::listener::{self, Accept};
use super::stream::{Stream, Tls};
use crate::amqp::frame::PROTOCOL_HEADER;
use crate::amqp::session::{self as amqp, Amqp, HeaderError};
use crate::config::{Level, Mode, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::log::tcplog::{connect_line, Cause, Phase, SessionRecord};
use crate::log::LocalTime;
use crate::proxy_protocol;
use crate::state::{BackendState, FrontendState, NoServer, Process, ServerState};

/// Zero-copy forwarding of bulk data in tcp mode (see `splice.rs`).
const SPLICE: bool = true;

/// Runs one session to its end. The caller holds the `maxconn` permits for its lifetime.
/// A plain `fn` returning an `async move` block rather than an `async fn`: an `async fn`
/// copies its arguments into the body's own locals and keeps both slots for the task's
/// whole life; the block uses its captures in place (idle sessions must stay small).
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub fn run(
    process: Arc<Process>,
    frontend: Arc<FrontendState>,
    mut tcp: TcpStream,
    mut peer: SocketAddr,
    accept: Accept,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let accepted = Instant::now();
        let accepted_wall = LocalTime::now();
        let _counted = frontend.enter();
        process.actconn.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let fe = &frontend.config;
        let amqp_mode = fe.mode == Mode::Amqp;
        keepalive::apply(&tcp, &fe.keepalive, amqp_mode);
        if !fe.log.tcplog && !frontend.logger.is_empty() {
            if let Ok(local) = tcp.local_addr() {
                frontend.logger.send(
                    Level::Info,
                    &connect_line(peer, local, &fe.name, fe.mode.as_str()),
                );
            }
        }
        let handshake_deadline =
            accepted + fe.timeouts.handshake.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        // The connection-level handshakes (PROXY header, TLS): HAProxy's `timeout client-hs`
        // when set, else `timeout handshake`. In AMQP mode the AMQP handshake, which starts
        // at accept, bounds them too.
        let connection_hs = fe
            .timeouts
            .client_hs
            .map_or(handshake_deadline, |t| accepted + t);
        let connection_hs = if amqp_mode {
            connection_hs.min(handshake_deadline)
        } else {
            connection_hs
        };
        // Warren behind another balancer: the header says who the client really is, and
        // that address is the one balanced on, logged, and passed on.
        let mut destination = tcp.local_addr().unwrap_or(peer);
        if accept.proxy_header {
            match proxy_protocol::read(&mut tcp, connection_hs).await {
                Ok(proxy_protocol::Header::Proxied {
                    source,
                    destination: d,
                }) => (peer, destination) = (source, d),
                Ok(proxy_protocol::Header::Local) => {}
                Err(e) => {
                    let mut rec = SessionRecord::new(peer, accepted_wall, &fe.name);
                    (rec.cause, rec.phase, rec.extra) =
                        (Cause::ClientAbort, Phase::Connect, Some(format!("{{{e}}}")));
                    return finish(&process, &frontend, rec, accepted);
                }
            }
            // Only now is the client known: the accept loop saw the balancer in front.
            if !frontend.admit_source(peer.ip()) {
                process.actconn.fetch_sub(1, Ordering::Relaxed);
                return listener::refuse(tcp);
            }
        }
        let mut rec = SessionRecord::new(peer, accepted_wall, &fe.name);
        // AMQPS: the TLS handshake, bounded like the PROXY header above.
        let mut client = match &accept.tls {
            None => Stream::Plain(tcp),
            // Boxed: only TLS sessions should pay for the handshake's state.
            Some(config) => {
                match tokio::time::timeout_at(connection_hs, Box::pin(Tls::accept(tcp, config)))
                    .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        (rec.cause, rec.phase, rec.extra) = (
                            Cause::ClientAbort,
                            Phase::Connect,
                            Some(format!("{{TLS handshake failed: {e}}}")),
                        );
                        return finish(&process, &frontend, rec, accepted);
                    }
                    Err(_) => {
                        (rec.cause, rec.phase, rec.extra) =
                        (Cause::ClientTimeout, Phase::Connect, Some("{no TLS handshake in time (timeout client-hs, else timeout handshake)}".into()));
                        return finish(&process, &frontend, rec, accepted);
                    }
                }
            }
        };

        // Rules (tcp-request session/content, use_backend, use-server): nothing to do
        // without any. Boxed: only sessions with rules pay for their state.
        let routed = if super::rules::apply(&frontend) {
            Box::pin(super::rules::route(
                &frontend,
                &mut client,
                peer,
                destination,
            ))
            .await
        } else {
            Ok(super::rules::Route::to(frontend.backend.clone()))
        };
        let mut route = match routed {
            Ok(route) => route,
            Err(super::rules::Denied::Session) => {
                process.actconn.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Err(super::rules::Denied::Content) => {
                (rec.cause, rec.phase) = (Cause::Proxy, Phase::Request);
                return finish(&process, &frontend, rec, accepted);
            }
        };
        let Some(backend) = route.backend.as_ref() else {
            (rec.cause, rec.phase) = (Cause::Proxy, Phase::Connect);
            return finish(&process, &frontend, rec, accepted);
        };
        rec.backend = &backend.config.name;

        // AMQP: refuse what is not AMQP 0-9-1 before bothering a node with it.
        if amqp_mode {
            let (header, got) = amqp::read_protocol_header(&mut client, handshake_deadline).await;
            if let Err(e) = header {
                // What the client sent counts, so a slow or wrong header is logged even with
                // `option dontlognull`.
                rec.bytes_to_server = got as u64;
                (rec.cause, rec.phase, rec.extra) = match e {
                    HeaderError::NotAmqp => (
                        Cause::ClientAbort,
                        Phase::Connect,
                        Some("{not an AMQP 0-9-1 client}".into()),
                    ),
                    HeaderError::Timeout => (
                        Cause::ClientTimeout,
                        Phase::Connect,
                        Some("{no AMQP header within timeout handshake}".into()),
                    ),
                    HeaderError::Closed => (Cause::ClientAbort, Phase::Connect, None),
                };
                return finish(&process, &frontend, rec, accepted);
            }
        }

        let mut conn = match tokio::select! {
            // Boxed: connecting (queue, retries, timers) needs more state than forwarding, and
            // only for a moment; unboxed it would stay reserved in every idle session's task.
            r = Box::pin(connect::connect(backend, peer, destination, route.server)) => r,
            _ = process.stop.cancelled() => {
                (rec.cause, rec.phase) = (Cause::Killed, Phase::Connect);
                return finish(&process, &frontend, rec, accepted);
            }
        } {
            Ok(conn) => conn,
            Err(failed) => {
                rec.queue_ms = failed.queue_time.map(ms);
                rec.retries = failed.retries;
                rec.redispatched = failed.redispatched;
                (rec.cause, rec.phase) = match failed.reason {
                    FailReason::NoServer(NoServer::Unavailable) => {
                        (Cause::ServerAbort, Phase::Connect)
                    }
                    FailReason::NoServer(NoServer::QueueTimeout) => {
                        (Cause::ServerTimeout, Phase::Queue)
                    }
                    FailReason::NoServer(NoServer::QueueFull) => (Cause::Resource, Phase::Queue),
                    FailReason::Refused => (Cause::ServerAbort, Phase::Connect),
                    FailReason::Timeout => (Cause::ServerTimeout, Phase::Connect),
                };
                if matches!(failed.reason, FailReason::NoServer(NoServer::Unavailable))
                    && failed.retries == 0
                {
                    backend.counters.no_server.fetch_add(1, Ordering::Relaxed);
                }
                let server_name = failed.server.unwrap_or_default();
                if !server_name.is_empty() {
                    rec.server = &server_name;
                }
                return finish(&process, &frontend, rec, accepted);
            }
        };

        let server = Arc::clone(&conn.slot.server);
        backend.stick(peer.ip(), server.id);
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

        let kill = server.kill_token();
        let killed_by_server = kill.clone();
        let stop = process.stop.clone();
        let shed_from = Arc::clone(&server);
        let mut shedding = None;
        let shed_slot = &mut shedding;
        let transfer = if amqp_mode {
            let killed = async move {
                tokio::select! {
                    _ = kill.cancelled() => {}
                    _ = stop.cancelled() => {}
                    // Rebalancing sheds only AMQP sessions: they can be told to reconnect.
                    guard = shed(&shed_from) => *shed_slot = Some(guard),
                }
            };
            // Pinned here and lent: moved into `forward`, it would take room there twice.
            tokio::pin!(killed);
            // Boxed: the AMQP data phase's state is larger than tcp mode's, and an unboxed
            // future would make every session's task that large, AMQP or not.
            let (transfer, extra) = Box::pin(amqp_data(
                &process,
                &killed_by_server,
                &mut client,
                &mut conn,
                Amqp::new(handshake_deadline, fe.initial_frame_max),
                meters(&frontend, &server),
                killed.as_mut(),
            ))
            .await;
            rec.extra = Some(extra);
            transfer
        } else {
            let killed = async move {
                tokio::select! {
                    _ = kill.cancelled() => {}
                    _ = stop.cancelled() => {}
                }
            };
            tokio::pin!(killed);
            // Bytes read by content inspection go first (then their buffer is freed).
            let prefix = std::mem::take(&mut route.prefix);
            if !prefix.is_empty() && conn.stream.write_all(&prefix).await.is_ok() {
                meters(&frontend, &server)[0].add(prefix.len());
                route.prefix_len = prefix.len();
            }
            let mut tcp = Tcp {
                frontend: &fe.timeouts,
                backend: &backend.config.timeouts,
                splice: SPLICE,
            };
            forward::forward(
                &mut client,
                &mut conn.stream,
                &mut tcp,
                meters(&frontend, &server),
                killed.as_mut(),
            )
            .await
        };

        rec.bytes_to_client = transfer.to_client;
        rec.bytes_to_server = transfer.to_server + route.prefix_len as u64;
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

/// The data phase in AMQP mode: forward with frame tracking, then end politely when
/// warren (not the peers) ends the session. Returns the transfer and the AMQP part of the
/// log line.
async fn amqp_data(
    process: &Process,
    server_kill: &tokio_util::sync::CancellationToken,
    client: &mut Stream,
    conn: &mut Connected,
    mut proto: Amqp,
    meters: [Meter<'_>; 2],
    killed: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> (Transfer, String) {
    let server = Arc::clone(&conn.slot.server);
    let transfer = match conn.stream.write_all(PROTOCOL_HEADER).await {
        Ok(()) => {
            meters[0].add(PROTOCOL_HEADER.len());
            let mut t =
                forward::forward(client, &mut conn.stream, &mut proto, meters, killed).await;
            t.to_server += PROTOCOL_HEADER.len() as u64;
            t
        }
        Err(_) => Transfer {
            to_server: 0,
            to_client: 0,
            end: End::ServerError,
            undelivered_to_client: Vec::new(),
        },
    };
    let node = format!("node {} ({})", server.full_name, server.config.addr);
    let server_gone = matches!(transfer.end, End::Eof(Side::Server) | End::ServerError);
    // (reason told to the client, whether the server is still worth a clean close)
    let polite: Option<(String, bool)> = match transfer.end {
        _ if server_gone && proto.handshake.server_closing => None,
        End::Killed if process.stop.is_cancelled() => {
            Some(("warren is shutting down; reconnect".into(), true))
        }
        End::Killed if server_kill.is_cancelled() => Some((
            format!("{}; reconnect", server.kill_reason()),
            server.is_up(),
        )),
        End::Killed => Some((
            format!("rebalancing: {node} has more than its share of sessions; reconnect"),
            true,
        )),
        End::Eof(Side::Server) => Some((format!("{node} closed the connection; reconnect"), false)),
        End::ServerError => Some((format!("connection to {node} was lost; reconnect"), false)),
        End::ServerTimeout if proto.handshake.opened => Some((
            format!("{node} stopped answering (missed heartbeats); reconnect"),
            false,
        )),
        End::ServerTimeout => Some((
            format!("{node} did not answer the handshake; reconnect"),
            false,
        )),
        _ => None,
    };
    let mut how = match transfer.end {
        End::Closed => "closed".to_string(),
        End::ClientTimeout if proto.handshake.opened => "client missed heartbeats".to_string(),
        End::ClientTimeout => "handshake not finished within timeout handshake".to_string(),
        End::Violation(_) => proto
            .violation
            .clone()
            .unwrap_or_else(|| "protocol violation".into()),
        End::ClientError | End::Eof(Side::Client) => "client connection lost".to_string(),
        _ => String::new(),
    };
    if server_gone && proto.handshake.server_closing {
        let answered = amqp::await_client_close_ok(&mut proto, client).await;
        let (code, text) = proto.handshake.close_reason.clone().unwrap_or_default();
        how = format!(
            "server sent connection.close {code} {text}{}",
            if answered { "" } else { " (no close-ok)" }
        );
    }
    if let (End::Violation(Side::Client), Some(text)) = (transfer.end, proto.frame_error.clone()) {
        // The node may hold the first bytes of the bad frame, so nothing can be slipped in
        // on its side: it is simply disconnected.
        let told = amqp::refuse_frame(&proto, client, &transfer.undelivered_to_client, &text).await;
        how = if told {
            format!("told the client (connection.close 501): {text}")
        } else {
            format!("{text} (client could not be told)")
        };
    }
    if let Some((reason, server_alive)) = polite {
        let ending = amqp::end_politely(
            &mut proto,
            client,
            &mut conn.stream,
            &transfer.undelivered_to_client,
            &reason,
            server_alive,
        )
        .await;
        how = if ending.client_told {
            format!(
                "told the client (connection.close 320): {reason}{}",
                if ending.client_acknowledged {
                    ""
                } else {
                    " (no close-ok)"
                }
            )
        } else {
            format!("{reason} (client could not be told)")
        };
    }
    let hs = &proto.handshake;
    let extra = format!(
        "{{{} {} \"{}\"}} heartbeat={} \"{}\"",
        hs.user.as_deref().unwrap_or("-"),
        hs.vhost.as_deref().unwrap_or("-"),
        hs.connection_name.as_deref().unwrap_or(""),
        hs.heartbeat
            .map_or_else(|| "-".to_string(), |h| h.to_string()),
        how
    );
    (transfer, extra)
}

/// Resolves when rebalancing picks this session to go.
async fn shed(server: &Arc<ServerState>) -> crate::state::SheddingGuard {
    loop {
        server.shed.notified().await;
        if let Some(guard) = server.take_shed() {
            return guard;
        }
    }
}

/// Live byte counters of a session: client → server into `bin`, server → client into `bout`.
fn meters<'a>(frontend: &'a FrontendState, server: &'a ServerState) -> [Meter<'a>; 2] {
    [
        Meter {
            server: &server.counters.bytes_in,
            frontend: &frontend.counters.bytes_in,
        },
        Meter {
            server: &server.counters.bytes_out,
            frontend: &frontend.counters.bytes_out,
        },
    ]
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

/// Counts the session out and writes its log line.
fn finish(
    process: &Process,
    frontend: &FrontendState,
    mut rec: SessionRecord<'_>,
    accepted: Instant,
) {
    rec.actconn = process.actconn();
    rec.feconn = frontend.counters.current.load(Ordering::Relaxed);
    rec.total_ms = ms(accepted.elapsed());
    process.actconn.fetch_sub(1, Ordering::Relaxed);
    let log = &frontend.config.log;
    if frontend.logger.is_empty() || !log.tcplog || rec.logged {
        return;
    }
    // HAProxy's rule exactly: no byte from the client, no line (health checks of other
    // load balancers and port scans), whatever the outcome.
    if log.dontlognull && rec.bytes_to_server == 0 {
        return;
    }
    // `option dontlog-normal`: only what ended in an error.
    if log.dontlog_normal && rec.cause == Cause::None {
        return;
    }
    let level = if rec.cause == Cause::None {
        Level::Info
    } else if log.separate_errors {
        // `option log-separate-errors`: errors stand out at level err.
        Level::Err
    } else {
        Level::Notice
    };
    frontend.logger.send(level, &rec.tcplog());
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
            // 1376 bytes since the forwarding loop polls readiness by hand (2408 before);
            // an array on the stack of any phase (a 4 KiB read buffer once was), or a
            // future kept twice, would show here.
            assert!(size <= 1536, "a session's future is {size} bytes");

        });
    }
}
