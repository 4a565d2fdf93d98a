//! One request and its response: a server connection (pooled or new, balanced per
//! request), the request head and body to it, the response head and body back, then the
//! connection kept (pool) or closed as the connection mode says, counters and the
//! httplog line. A `101 Switching Protocols` answer to an `Upgrade` request turns both
//! connections into a tunnel (WebSocket), bounded by `timeout tunnel`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::acl::Subject;
use super::body::{self, CopyError};
use super::head::{self, Framing, Head, HeadError};
use super::log::Record;
use super::pool::Pool;
use super::rewrite::{self, Edit, RequestPlan};
use super::rules::{self, Outcome};
use super::session::ms;
use super::upstream::{self, Upstream};
use super::{persist, reply, Shared};
use crate::config::ConnMode;
use crate::health::observe;
use crate::net::Stream;
use crate::proxy::connect::FailReason;
use crate::state::{BackendState, FrontendState, NoServer, Process};

/// What the exchanges of one client connection share.
#[derive(Clone, Copy)]
pub struct Base<'a> {
    pub process: &'a Process,
    pub frontend: &'a FrontendState,
    pub shared: &'a Shared,
    /// The client (from the PROXY header when there was one).
    pub peer: SocketAddr,
    pub destination: SocketAddr,
    /// The client came over TLS.
    pub tls: bool,
    /// The SNI the TLS client sent (`ssl_fc_sni`).
    pub sni: Option<&'a str>,
}

impl<'a> Base<'a> {
    /// The connection's facts for conditions, with `backend` as the current one.
    pub fn facts(&self, backend: Option<&'a BackendState>) -> crate::proxy::rules::Conn<'a> {
        crate::proxy::rules::Conn {
            src: self.peer,
            dst: self.destination,
            tls: self.tls.then_some(self.sni),
            payload_sni: None,
            frontend: self.frontend,
            backend,
        }
    }
}

/// One request once its backend is chosen (`use_backend`, else `default_backend`).
pub struct Ctx<'a> {
    pub base: Base<'a>,
    pub backend: &'a Arc<BackendState>,
    /// Idle connections to `backend`'s servers.
    pub pool: &'a Pool,
}

impl<'a> std::ops::Deref for Ctx<'a> {
    type Target = Base<'a>;

    fn deref(&self) -> &Base<'a> {
        &self.base
    }
}

/// The client connection and its buffers, reused from request to request.
pub struct Conn {
    pub client: Stream,
    /// Bytes read from the client and not yet forwarded (the next pipelined request).
    pub cbuf: BytesMut,
    /// Bytes read from the server.
    pub sbuf: BytesMut,
    /// Outgoing heads are built here.
    pub out: Vec<u8>,
    /// Requests already served on this connection.
    pub served: u32,
}

/// Why a response head did not come.
enum NoResponse {
    /// Closed (or failed) before a single byte.
    Nothing,
    Timeout,
    Invalid,
}

/// The request on `ctx`'s backend: its `http-request` rules, then the server; returns
/// whether the client connection stays open for another. `edits`: what the frontend's
/// rules changed.
pub async fn run<'a>(
    ctx: &Ctx<'a>,
    conn: &mut Conn,
    req: &Head,
    edits: Vec<Edit>,
    rec: &mut Record<'a>,
) -> bool {
    let fe = &ctx.frontend.config;
    let be = &ctx.backend.config;
    ctx.backend.counters.http.request();
    rec.backend = &be.name;
    let mode = fe.http.connection.max(be.http.connection);
    let keep = exchange(ctx, conn, req, mode, edits, rec).await;
    rec.beconn = ctx
        .backend
        .servers
        .iter()
        .map(|s| s.counters.current.load(Ordering::Relaxed))
        .sum();
    if rec.status > 0 {
        ctx.backend.counters.http.response(rec.status as u16);
    }
    keep
}

/// The exchange proper; fills `rec` as it goes.
async fn exchange<'a>(
    ctx: &Ctx<'a>,
    conn: &mut Conn,
    req: &Head,
    mode: ConnMode,
    mut edits: Vec<Edit>,
    rec: &mut Record<'a>,
) -> bool {
    let fe = &ctx.frontend.config;
    let be = &ctx.backend.config;
    let forwarded_for = fe
        .http
        .forwardfor
        .as_ref()
        .or(be.http.forwardfor.as_ref())
        .filter(|f| !f.excepted(ctx.peer.ip()))
        .map(|f| (f.header.as_str(), ctx.peer.ip()));
    let no_body = req.framing == Framing::Empty;
    // The backend's `http-request` rules (a listen's rules ran as its frontend's).
    let facts = ctx.facts(Some(ctx.backend));
    let errorfiles = [&fe.http.rules, &be.http.rules];
    if let Outcome::Answer {
        bytes,
        status,
        close,
        cause,
    } = rules::request(
        &be.http.rules,
        false,
        &errorfiles,
        req,
        &mut edits,
        &facts,
        !no_body,
    ) {
        let keep = !close && !req.close && mode != ConnMode::Close;
        return answered(conn, rec, (bytes, status, cause), fe.timeouts.client, keep).await;
    }
    let persist = be.http.cookie.as_ref();
    let now = unix_now();
    let found = persist
        .map(|c| persist::lookup(c, req, &ctx.backend.servers, now))
        .unwrap_or_default();
    if persist.is_some() {
        rec.cookie[0] = found.flag;
    }
    // `use-server` rules come before the cookie and take precedence (HAProxy's order); a
    // server they name that is not usable is balanced around, as for TCP sessions.
    let first = match &be.rules.use_server[..] {
        [] => found.server,
        _ => {
            let subject = Subject {
                conn: &facts,
                request: req,
                request_edits: &edits,
                response: None,
            };
            be.rules.server(&subject).or(found.server)
        }
    };
    edits.extend(found.edits.iter().cloned());
    let plan = RequestPlan {
        close: mode != ConnMode::KeepAlive,
        forwarded_for,
        edits: &edits,
    };
    rewrite::request(&mut conn.out, req, &plan);
    // A small body already read goes out with the head, in one write; the request can
    // then also be sent again whole.
    let mut framing = req.framing;
    if let (Framing::Length(n), false) = (framing, req.expect_continue) {
        if conn.cbuf.len() as u64 >= n {
            conn.out.extend_from_slice(&conn.cbuf[..n as usize]);
            bytes::Buf::advance(&mut conn.cbuf, n as usize);
            framing = Framing::Empty;
        }
    }
    let no_body = framing == Framing::Empty;
    // Idle server connections serve a client's later requests, and its first one when it
    // has no body: should the server have closed the connection meanwhile, such a request
    // is sent again on a new one, which a body already read could not be (HAProxy's
    // `http-reuse safe` never reuses for a first request; a bodiless one is as safe).
    conn.served += 1;
    let mut reuse = mode == ConnMode::KeepAlive && (no_body || conn.served > 1);
    'attempt: loop {
        conn.sbuf.clear();
        let mut up = match upstream::get(
            ctx.backend,
            ctx.pool,
            ctx.peer,
            ctx.destination,
            reuse,
            first,
        )
        .await
        {
            Ok(up) => up,
            Err(failed) => {
                rec.retries = failed.retries;
                rec.redispatched = failed.redispatched;
                rec.t_queue = failed.queue_time.map(ms);
                (rec.cause, rec.phase) = match failed.reason {
                    FailReason::NoServer(NoServer::QueueTimeout) => ('s', 'Q'),
                    FailReason::NoServer(NoServer::QueueFull) => ('R', 'Q'),
                    FailReason::NoServer(NoServer::Unavailable) => ('S', 'C'),
                    FailReason::Refused => ('S', 'C'),
                    FailReason::Timeout => ('s', 'C'),
                };
                if matches!(failed.reason, FailReason::NoServer(NoServer::Unavailable)) {
                    ctx.backend
                        .counters
                        .no_server
                        .fetch_add(1, Ordering::Relaxed);
                }
                if let Some(s) = failed.server.as_deref().and_then(|n| ctx.backend.server(n)) {
                    rec.server = named(ctx, s.id);
                }
                return answer(ctx, conn, 503, rec).await;
            }
        };
        let server = Arc::clone(&up.slot.server);
        server.counters.http.request();
        rec.server = named(ctx, server.id);
        rec.t_queue = Some(ms(up.queue_time));
        rec.t_connect = Some(up.connect_time.map_or(0, ms));
        rec.retries = up.retries;
        rec.redispatched = up.redispatched;
        rec.srv_conn = server.counters.current.load(Ordering::Relaxed);
        let sent_at = Instant::now();
        // The head, and the body unless the client waits for `100 Continue`.
        if body::write(&mut up.stream, &conn.out, be.timeouts.server)
            .await
            .is_err()
        {
            if up.reused && no_body {
                reuse = false;
                continue 'attempt;
            }
            (rec.cause, rec.phase) = ('S', 'H');
            return answer(ctx, conn, 502, rec).await;
        }
        server
            .counters
            .bytes_in
            .fetch_add(conn.out.len() as u64, Ordering::Relaxed);
        ctx.frontend
            .counters
            .bytes_in
            .fetch_add(conn.out.len() as u64, Ordering::Relaxed);
        let mut body_sent = no_body;
        // With `Expect: 100-continue` the body waits for the server's 100, unless the
        // client sent it already.
        if !no_body && (!req.expect_continue || !conn.cbuf.is_empty()) {
            if !send_body(ctx, conn, &mut up, framing, rec).await {
                return false;
            }
            body_sent = true;
        }
        let head_request = req.method() == "HEAD";
        let res = loop {
            let waiting = response_head(
                &mut up.stream,
                &mut conn.sbuf,
                ctx.shared.bufsize,
                be.timeouts.server,
                head_request,
            );
            // `Expect: 100-continue` and the body not sent yet: the client may stop
            // waiting for the 100 and send its body anyway (curl does after 1 s), and a
            // server that ignores `Expect` waits for it; whichever comes first goes on.
            let head = if body_sent {
                waiting.await
            } else {
                let client_sends = body::read(&mut conn.client, &mut conn.cbuf, fe.timeouts.client);
                tokio::select! {
                    r = waiting => r,
                    got = client_sends => {
                        if !matches!(got, Ok(n) if n > 0) {
                            (rec.cause, rec.phase) = ('C', 'D');
                            return false;
                        }
                        if !send_body(ctx, conn, &mut up, framing, rec).await {
                            return false;
                        }
                        body_sent = true;
                        continue;
                    }
                }
            };
            match head {
                Ok(res) if res.status == 100 && !body_sent => {
                    // The server wants the body: pass its 100 on, then send the body.
                    if body::write(&mut conn.client, &res.raw, fe.timeouts.client)
                        .await
                        .is_err()
                    {
                        (rec.cause, rec.phase) = ('C', 'D');
                        return false;
                    }
                    if !send_body(ctx, conn, &mut up, framing, rec).await {
                        return false;
                    }
                    body_sent = true;
                }
                Ok(res) if res.status < 200 && res.status != 101 => {
                    // Other interim answers (102, 103) go to the client as they are.
                    if body::write(&mut conn.client, &res.raw, fe.timeouts.client)
                        .await
                        .is_err()
                    {
                        (rec.cause, rec.phase) = ('C', 'D');
                        return false;
                    }
                }
                Ok(res) => break res,
                Err(NoResponse::Nothing) if up.reused && no_body => {
                    // A reused connection the server had closed: once more on a new one.
                    reuse = false;
                    continue 'attempt;
                }
                Err(NoResponse::Nothing) => {
                    observe::answered(ctx.backend, &server, Err("Close from server (http)"));
                    (rec.cause, rec.phase) = ('S', 'H');
                    return answer(ctx, conn, 502, rec).await;
                }
                Err(NoResponse::Timeout) => {
                    observe::answered(ctx.backend, &server, Err("Read timeout (http)"));
                    (rec.cause, rec.phase) = ('s', 'H');
                    return answer(ctx, conn, 504, rec).await;
                }
                Err(NoResponse::Invalid) => {
                    observe::answered(ctx.backend, &server, Err("Invalid http response"));
                    (rec.cause, rec.phase) = ('P', 'H');
                    return answer(ctx, conn, 502, rec).await;
                }
            }
        };
        rec.t_response = Some(ms(sent_at.elapsed()));
        rec.status = i32::from(res.status);
        server.counters.http.response(res.status);
        observe::answered(ctx.backend, &server, observe::status_verdict(res.status));
        if res.status == 101 && req.upgrade {
            return super::tunnel::run(ctx, conn, up, &res, rec).await;
        }
        // The client connection closes after this response when either side asked, the
        // mode says so, the body's end is the server's close, the body of the request
        // was not read (a final answer to `Expect: 100-continue`), or warren is stopping.
        let close_client = req.close
            || mode == ConnMode::Close
            || res.framing == Framing::UntilClose
            || !body_sent
            || ctx.process.stop.is_cancelled();
        // `http-response` rules: backend, then frontend.
        let mut res_edits: Vec<Edit> = Vec::new();
        let response_sets = [&be.http.rules, &fe.http.rules];
        if let Some((code, page)) =
            rules::response(&response_sets, req, &edits, &res, &mut res_edits, &facts)
        {
            // The server's answer is dropped (and its connection with it).
            (rec.cause, rec.phase) = ('P', 'H');
            rec.status = i32::from(code);
            rec.bytes_to_client = page.len() as u64;
            let _ = body::write(&mut conn.client, &page, fe.timeouts.client).await;
            return false;
        }
        if let Some(c) = persist {
            let direct = found.server == Some(server.id);
            let a = persist::answer(c, &res, &server, &found, direct, req.method(), now);
            rec.cookie[1] = a.flag;
            res_edits.extend(a.edits);
        }
        rewrite::response(&mut conn.out, &res, req.minor, close_client, &res_edits);
        // A small answer already read goes out with its head, in one write.
        let mut res_framing = res.framing;
        if let Framing::Length(n) = res_framing {
            if conn.sbuf.len() as u64 >= n {
                conn.out.extend_from_slice(&conn.sbuf[..n as usize]);
                bytes::Buf::advance(&mut conn.sbuf, n as usize);
                res_framing = Framing::Empty;
            }
        }
        if body::write(&mut conn.client, &conn.out, fe.timeouts.client)
            .await
            .is_err()
        {
            (rec.cause, rec.phase) = ('C', 'D');
            return false;
        }
        let head_len = conn.out.len() as u64;
        let copied = body::copy(
            &mut up.stream,
            &mut conn.sbuf,
            &mut conn.client,
            res_framing,
            be.timeouts.server,
            fe.timeouts.client,
        )
        .await;
        let sent = head_len + copied.unwrap_or(0);
        rec.bytes_to_client = sent;
        server.counters.bytes_out.fetch_add(sent, Ordering::Relaxed);
        ctx.frontend
            .counters
            .bytes_out
            .fetch_add(sent, Ordering::Relaxed);
        match copied {
            Ok(_) => {}
            Err(e) => {
                (rec.cause, rec.phase) = match e {
                    CopyError::ReadFailed | CopyError::Malformed => ('S', 'D'),
                    CopyError::ReadTimeout => ('s', 'D'),
                    CopyError::WriteFailed => ('C', 'D'),
                    CopyError::WriteTimeout => ('c', 'D'),
                };
                return false;
            }
        }
        let reusable = mode == ConnMode::KeepAlive
            && !res.close
            && res.framing != Framing::UntilClose
            && conn.sbuf.is_empty()
            && body_sent;
        if reusable {
            ctx.pool.put(server.id, up.stream);
        }
        return !close_client;
    }
}

/// Seconds since the UNIX epoch (cookie dates).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A server's name, borrowed from the backend (which outlives the exchange).
fn named<'a>(ctx: &Ctx<'a>, id: usize) -> &'a str {
    let backend: &'a Arc<BackendState> = ctx.backend;
    backend.servers.get(id).map_or("<NOSRV>", |s| s.name())
}

/// Sends the request body; on failure sets the termination state and says so.
async fn send_body(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    up: &mut Upstream,
    framing: Framing,
    rec: &mut Record<'_>,
) -> bool {
    let fe = &ctx.frontend.config;
    let be = &ctx.backend.config;
    match body::copy(
        &mut conn.client,
        &mut conn.cbuf,
        &mut up.stream,
        framing,
        fe.timeouts.client,
        be.timeouts.server,
    )
    .await
    {
        Ok(n) => {
            up.slot
                .server
                .counters
                .bytes_in
                .fetch_add(n, Ordering::Relaxed);
            ctx.frontend
                .counters
                .bytes_in
                .fetch_add(n, Ordering::Relaxed);
            true
        }
        Err(CopyError::Malformed) => {
            (rec.cause, rec.phase) = ('P', 'D');
            let _ = body::write(
                &mut conn.client,
                &reply::custom(400, true, &[&fe.http.rules]).0,
                fe.timeouts.client,
            )
            .await;
            rec.status = 400;
            false
        }
        Err(CopyError::ReadFailed) => {
            (rec.cause, rec.phase) = ('C', 'D');
            false
        }
        Err(CopyError::ReadTimeout) => {
            (rec.cause, rec.phase) = ('c', 'D');
            let _ = body::write(
                &mut conn.client,
                &reply::custom(408, true, &[&fe.http.rules]).0,
                fe.timeouts.client,
            )
            .await;
            rec.status = 408;
            false
        }
        Err(CopyError::WriteFailed) | Err(CopyError::WriteTimeout) => {
            (rec.cause, rec.phase) = ('S', 'D');
            let _ = body::write(
                &mut conn.client,
                &reply::custom(502, true, &[&fe.http.rules, &be.http.rules]).0,
                fe.timeouts.client,
            )
            .await;
            rec.status = 502;
            false
        }
    }
}

/// Reads a response head from the server.
async fn response_head(
    server: &mut Stream,
    buf: &mut BytesMut,
    bufsize: usize,
    timeout: Option<Duration>,
    head_request: bool,
) -> Result<Head, NoResponse> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if !buf.is_empty() {
            match head::response(buf, bufsize, head_request) {
                Ok(Some(h)) => {
                    bytes::Buf::advance(buf, h.raw.len());
                    return Ok(h);
                }
                Ok(None) => {}
                Err(HeadError::TooLarge) | Err(HeadError::Invalid(_)) => {
                    return Err(NoResponse::Invalid)
                }
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match body::read(server, buf, left).await {
            Ok(0) | Err(false) if buf.is_empty() => return Err(NoResponse::Nothing),
            Ok(0) | Err(false) => return Err(NoResponse::Invalid),
            Err(true) => return Err(NoResponse::Timeout),
            Ok(_) => {}
        }
    }
}

/// Sends an answer the rules gave (`bytes`, its status and the log's termination cause)
/// and records it; returns whether the connection stays open (`keep`, if sent).
pub(super) async fn answered(
    conn: &mut Conn,
    rec: &mut Record<'_>,
    (bytes, status, cause): (Vec<u8>, u16, char),
    timeout: Option<Duration>,
    keep: bool,
) -> bool {
    (rec.status, rec.cause, rec.phase) = (i32::from(status), cause, 'R');
    rec.bytes_to_client = bytes.len() as u64;
    let sent = body::write(&mut conn.client, &bytes, timeout).await;
    sent.is_ok() && keep
}

/// warren's own answer (HAProxy's error page); the client connection then closes.
async fn answer(ctx: &Ctx<'_>, conn: &mut Conn, status: u16, rec: &mut Record<'_>) -> bool {
    rec.status = i32::from(status);
    let sets = [
        &ctx.frontend.config.http.rules,
        &ctx.backend.config.http.rules,
    ];
    let (page, _) = reply::custom(status, true, &sets);
    rec.bytes_to_client = page.len() as u64;
    let _ = body::write(&mut conn.client, &page, ctx.frontend.config.timeouts.client).await;
    false
}
