//! One request from the frontend's side, in HAProxy's order: `monitor-uri` and the
//! frontend's `http-request` rules, then `use_backend` (the first whose condition holds on
//! the request as those rules left it, else `default_backend`), then the exchange on that
//! backend (`exchange::run`: its own rules, then a server). The httplog line and the
//! frontend's counters are written here, whatever the outcome.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::acl::Subject;
use super::body;
use super::exchange::{self, answered, Base, Conn, Ctx};
use super::head::{Framing, Head};
use super::log::Record;
use super::reply;
use super::rewrite::Edit;
use super::rules::{self, Outcome};
use super::session::ms;
use crate::acl::{Action, Rules};
use crate::config::{ConnMode, Level};
use crate::log::LocalTime;

/// Runs one request; returns whether the client connection stays open for another.
pub async fn run(
    base: &Base<'_>,
    conn: &mut Conn,
    req: Head,
    started: Instant,
    date: LocalTime,
) -> bool {
    let fe = &base.frontend.config;
    let t_request = ms(started.elapsed());
    base.frontend.counters.http.request();
    let mut rec = Record {
        client: base.peer,
        date,
        frontend: &fe.name,
        tls: base.tls,
        // Until a backend is chosen, HAProxy logs the frontend in its place.
        backend: &fe.name,
        server: "<NOSRV>",
        t_request: Some(t_request),
        t_queue: None,
        t_connect: None,
        t_response: None,
        t_total: 0,
        status: -1,
        bytes_to_client: 0,
        cause: '-',
        phase: '-',
        cookie: ['-', '-'],
        actconn: base.process.actconn(),
        feconn: base.frontend.counters.current.load(Ordering::Relaxed),
        beconn: 0,
        srv_conn: 0,
        retries: 0,
        redispatched: false,
        request: String::new(),
    };
    let logging = !base.frontend.logger.is_empty() && fe.log.tcplog;
    let keep = route(base, conn, &req, &mut rec).await;
    rec.t_total = ms(started.elapsed());
    if rec.status > 0 {
        base.frontend.counters.http.response(rec.status as u16);
    }
    if logging {
        let level = if rec.cause == '-' {
            Level::Info
        } else {
            Level::Notice
        };
        // Built only for a target that takes it: under `log ... notice` a served request
        // costs no formatting.
        if base.frontend.logger.admits(level) {
            rec.request = format!("{} {} HTTP/1.{}", req.method(), req.target(), req.minor);
            base.frontend.logger.send(level, &rec.line());
        }
    }
    keep
}

/// The frontend's rules, the choice of backend, then the exchange.
async fn route<'a>(base: &Base<'a>, conn: &mut Conn, req: &Head, rec: &mut Record<'a>) -> bool {
    let frontend = base.frontend;
    let fe = &frontend.config;
    let default = frontend.backend.as_deref();
    let no_body = req.framing == Framing::Empty;
    let mut edits: Vec<Edit> = Vec::new();
    let facts = base.facts(default);
    let errorfiles = [&fe.http.rules];
    if let Outcome::Answer {
        bytes,
        status,
        close,
        cause,
    } = rules::request(
        &fe.http.rules,
        true,
        &errorfiles,
        req,
        &mut edits,
        &facts,
        !no_body,
    ) {
        let mode = default.map_or(fe.http.connection, |b| {
            fe.http.connection.max(b.config.http.connection)
        });
        let keep = !close && !req.close && mode != ConnMode::Close;
        return answered(conn, rec, (bytes, status, cause), fe.timeouts.client, keep).await;
    }
    let subject = Subject {
        conn: &facts,
        request: req,
        request_edits: &edits,
        response: None,
    };
    let chosen = if fe.rules.use_backend.is_empty() {
        None
    } else {
        fe.rules.backend(&subject)
    };
    let routed = chosen
        .or(fe.default_backend)
        .and_then(|i| Some((frontend.backends.get(i)?, base.shared.pools.get(i)?)));
    let Some((backend, pool)) = routed else {
        // No rule chose a backend and there is no default: HAProxy's 503.
        (rec.status, rec.cause, rec.phase) = (503, 'S', 'R');
        let (page, _) = reply::custom(503, true, &errorfiles);
        rec.bytes_to_client = page.len() as u64;
        let _ = body::write(&mut conn.client, &page, fe.timeouts.client).await;
        return false;
    };
    // A backend's `tcp-request content` rules apply once it is chosen (HAProxy's order);
    // a reject closes the connection without an answer, counted in `dreq`.
    let content = &backend.config.rules.content;
    let chosen_facts = base.facts(Some(backend));
    let on_backend = Subject {
        conn: &chosen_facts,
        ..subject
    };
    if !content.is_empty() && Rules::verdict(content, &on_backend) == Action::Reject {
        frontend
            .counters
            .denied_requests
            .fetch_add(1, Ordering::Relaxed);
        (rec.cause, rec.phase) = ('P', 'R');
        return false;
    }
    let ctx = Ctx {
        base: *base,
        backend,
        pool,
    };
    exchange::run(&ctx, conn, req, edits, rec).await
}
