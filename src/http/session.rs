//! One client connection in HTTP mode: the connection-level handshakes (PROXY header,
//! TLS), then requests one after another until the client or the connection mode closes
//! it. Between requests the connection waits `timeout http-keep-alive`; a request head
//! must arrive within `timeout http-request` (else 408), must fit in `tune.bufsize` and
//! parse cleanly (else 400). A bad request closes only its own connection.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::exchange::{Base, Conn};
use super::head::{self, Head, HeadError};
use super::log::Record;
use super::{body, reply, Shared};
use crate::config::Level;
use crate::log::tcplog::connect_line;
use crate::log::LocalTime;
use crate::net::{Stream, Tls};
use crate::proxy::keepalive;
use crate::proxy::listener::{self, Accept};
use crate::proxy_protocol;
use crate::state::{FrontendState, Process};

/// Why no request head could be read.
enum NoHead {
    /// The client closed; `partial`: in the middle of a head.
    Closed {
        partial: bool,
    },
    Timeout {
        partial: bool,
    },
    Refused(HeadError),
    /// warren is stopping and the connection was idle.
    Stopped,
}

/// Runs one client connection to its end. The caller holds the `maxconn` permits.
pub async fn run(
    process: Arc<Process>,
    frontend: Arc<FrontendState>,
    shared: Arc<Shared>,
    mut tcp: TcpStream,
    mut peer: SocketAddr,
    accept: Accept,
) {
    let accepted = Instant::now();
    let _counted = frontend.enter();
    process.actconn.fetch_add(1, Ordering::Relaxed);
    let fe = &frontend.config;
    let _ = tcp.set_nodelay(true);
    keepalive::apply(&tcp, &fe.keepalive, false);
    if !fe.log.tcplog && !frontend.logger.is_empty() {
        if let Ok(local) = tcp.local_addr() {
            frontend
                .logger
                .send(Level::Info, &connect_line(peer, local, &fe.name, "http"));
        }
    }
    let request_timeout = fe.timeouts.http_request.or(fe.timeouts.client);
    let hs_deadline = accepted
        + fe.timeouts
            .client_hs
            .or(request_timeout)
            .unwrap_or(Duration::from_secs(86400));
    let mut destination = tcp.local_addr().unwrap_or(peer);
    if accept.proxy_header {
        match proxy_protocol::read(&mut tcp, hs_deadline).await {
            Ok(proxy_protocol::Header::Proxied {
                source,
                destination: d,
            }) => (peer, destination) = (source, d),
            Ok(proxy_protocol::Header::Local) => {}
            Err(_) => return leave(&process),
        }
        if !frontend.admit_source(peer.ip()) {
            process.actconn.fetch_sub(1, Ordering::Relaxed);
            return listener::refuse(tcp);
        }
    }
    let client = match &accept.tls {
        None => Stream::Plain(tcp),
        Some(config) => {
            match tokio::time::timeout_at(hs_deadline, Box::pin(Tls::accept(tcp, config))).await {
                Ok(Ok(stream)) => stream,
                _ => return leave(&process),
            }
        }
    };
    if frontend.backend.is_none() && fe.rules.use_backend.is_empty() {
        let mut client = client;
        let _ = body::write(
            &mut client,
            &reply::custom(503, true, &[&fe.http.rules]).0,
            fe.timeouts.client,
        )
        .await;
        return leave(&process);
    }
    let sni = client.server_name().map(str::to_string);
    let ctx = Base {
        process: &process,
        frontend: &frontend,
        shared: &shared,
        peer,
        destination,
        tls: accept.tls.is_some(),
        sni: sni.as_deref(),
    };
    // `tcp-request session` and `content` rules, once per connection (HAProxy runs them
    // before the first request too); a reject closes the connection without an answer.
    if !fe.rules.session.is_empty() || !fe.rules.content.is_empty() {
        let facts = ctx.facts(frontend.backend.as_deref());
        if crate::proxy::rules::admit_session(&frontend, &facts).is_err() {
            let mut client = client;
            client.shutdown_write();
            return leave(&process);
        }
    }
    let mut conn = Conn {
        client,
        cbuf: BytesMut::new(),
        sbuf: BytesMut::new(),
        out: Vec::new(),
        served: 0,
    };
    let bufsize = shared.bufsize;
    let keep_alive_timeout = fe.timeouts.http_keep_alive.or(request_timeout);
    let mut first = true;
    loop {
        let (idle, since) = if first {
            (request_timeout, accepted)
        } else {
            (keep_alive_timeout, Instant::now())
        };
        let got = read_request(
            &mut conn,
            bufsize,
            &ctx,
            first,
            idle,
            request_timeout,
            since,
        )
        .await;
        let (head, started, date) = match got {
            Ok(h) => h,
            Err(why) => {
                refuse(&ctx, &mut conn, why, first, accepted).await;
                break;
            }
        };
        let keep = super::route::run(&ctx, &mut conn, head, started, date).await;
        first = false;
        if !keep || process.stop.is_cancelled() {
            break;
        }
    }
    conn.client.shutdown_write();
    let _ = conn.client.try_flush();
    leave(&process);
}

fn leave(process: &Process) {
    process.actconn.fetch_sub(1, Ordering::Relaxed);
}

/// Reads the next request head. Returns it with when it started (the first request:
/// at accept; later ones: at their first byte), the start of `TR`, and that moment's
/// date for the log. The first request's head must be complete `idle` after `since`
/// (accept); a later one may take `idle` (`timeout http-keep-alive`) to start, then
/// `request_timeout` from its first byte.
#[allow(clippy::too_many_arguments)]
async fn read_request(
    conn: &mut Conn,
    bufsize: usize,
    ctx: &Base<'_>,
    first: bool,
    idle: Option<Duration>,
    request_timeout: Option<Duration>,
    since: Instant,
) -> Result<(Head, Instant, LocalTime), NoHead> {
    let mut started: Option<(Instant, LocalTime)> = first.then(|| (since, LocalTime::now()));
    let mut deadline = idle.map(|t| since + t);
    loop {
        if !conn.cbuf.is_empty() {
            if started.is_none() {
                let now = Instant::now();
                started = Some((now, LocalTime::now()));
                deadline = request_timeout.map(|t| now + t);
            }
            match head::request(&conn.cbuf, bufsize) {
                Ok(Some(h)) => {
                    conn.cbuf.advance(h.raw.len());
                    let (at, date) = started.unwrap_or_else(|| (Instant::now(), LocalTime::now()));
                    return Ok((h, at, date));
                }
                Ok(None) => {}
                Err(e) => return Err(NoHead::Refused(e)),
            }
        }
        let partial = !conn.cbuf.is_empty();
        let read = body::read(&mut conn.client, &mut conn.cbuf, None);
        let stop = ctx.process.stop.cancelled();
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = read => match r {
                Ok(0) | Err(_) => return Err(NoHead::Closed { partial }),
                Ok(_) => {}
            },
            _ = timer => return Err(NoHead::Timeout { partial }),
            _ = stop, if !partial && !first => return Err(NoHead::Stopped),
        }
    }
}

/// Answers (and logs) a request that never became one: 400 for a refused head, 408
/// for a slow one; a client that closed or idled out between requests is just closed.
async fn refuse(ctx: &Base<'_>, conn: &mut Conn, why: NoHead, first: bool, accepted: Instant) {
    let fe = &ctx.frontend.config;
    let (status, cause) = match why {
        NoHead::Refused(e) => {
            tracing::debug!(client = %ctx.peer, frontend = %fe.name, "request refused: {e:?}");
            (400, 'P')
        }
        NoHead::Timeout { partial } if partial || first => (408, 'c'),
        NoHead::Closed { partial } if partial || first => (-1, 'C'),
        _ => return,
    };
    if status > 0 {
        let _ = body::write(
            &mut conn.client,
            &reply::custom(status as u16, true, &[&fe.http.rules]).0,
            fe.timeouts.client,
        )
        .await;
        ctx.frontend.counters.http.response(status as u16);
    }
    if !ctx.frontend.logger.is_empty() && fe.log.tcplog {
        let received = !conn.cbuf.is_empty();
        if fe.log.dontlognull && !received {
            return;
        }
        let rec = Record {
            client: ctx.peer,
            date: LocalTime::now(),
            frontend: &fe.name,
            tls: ctx.tls,
            backend: &fe.name,
            server: "<NOSRV>",
            t_request: None,
            t_queue: None,
            t_connect: None,
            t_response: None,
            t_total: ms(accepted.elapsed()),
            status,
            bytes_to_client: 0,
            cause,
            phase: 'R',
            cookie: ['-', '-'],
            actconn: ctx.process.actconn(),
            feconn: ctx.frontend.counters.current.load(Ordering::Relaxed),
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            request: "<BADREQ>".into(),
        };
        ctx.frontend.logger.send(Level::Notice, &rec.line());
    }
}

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
