//! One client connection from accept to its log line: reach a server, forward, count,
//! log.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::{self, FailReason};
use super::forward::{self, End, Side, Tcp, Timers};
use crate::config::Level;
use crate::log::tcplog::{connect_line, Cause, Phase, SessionRecord};
use crate::log::LocalTime;
use crate::state::{FrontendState, NoServer, Process};

/// Runs one session to its end. The caller holds the `maxconn` permits for its lifetime.
pub async fn run(process: Arc<Process>, frontend: Arc<FrontendState>, client: TcpStream, peer: SocketAddr) {
    let accepted = Instant::now();
    let accepted_wall = LocalTime::now();
    let _counted = frontend.enter();
    process.actconn.fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let fe = &frontend.config;
    if !fe.log.tcplog && !frontend.logger.is_empty() {
        if let Ok(local) = client.local_addr() {
            frontend.logger.send(Level::Info, &connect_line(peer, local, &fe.name, fe.mode.as_str()));
        }
    }

    let mut rec = SessionRecord {
        client: peer,
        accepted: accepted_wall,
        frontend: &fe.name,
        backend: "<NOBACKEND>",
        server: "<NOSRV>",
        queue_ms: None,
        connect_ms: None,
        total_ms: 0,
        bytes_to_client: 0,
        bytes_to_server: 0,
        cause: Cause::None,
        phase: Phase::None,
        actconn: 0,
        feconn: 0,
        beconn: 0,
        srv_conn: 0,
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
    };

    let Some(backend) = frontend.backend.as_ref() else {
        rec.cause = Cause::Proxy;
        rec.phase = Phase::Connect;
        finish(&process, &frontend, rec, accepted);
        return;
    };
    rec.backend = &backend.config.name;

    let connected = tokio::select! {
        r = connect::connect(backend, peer.ip()) => r,
        _ = process.stop.cancelled() => {
            rec.cause = Cause::Killed;
            rec.phase = Phase::Connect;
            finish(&process, &frontend, rec, accepted);
            return;
        }
    };
    let conn = match connected {
        Ok(conn) => conn,
        Err(failed) => {
            rec.queue_ms = failed.queue_time.map(ms);
            rec.retries = failed.retries;
            rec.redispatched = failed.redispatched;
            (rec.cause, rec.phase) = match failed.reason {
                FailReason::NoServer(NoServer::Unavailable) => (Cause::ServerAbort, Phase::Connect),
                FailReason::NoServer(NoServer::QueueTimeout) => (Cause::ServerTimeout, Phase::Queue),
                FailReason::NoServer(NoServer::QueueFull) => (Cause::Resource, Phase::Queue),
                FailReason::Refused => (Cause::ServerAbort, Phase::Connect),
                FailReason::Timeout => (Cause::ServerTimeout, Phase::Connect),
            };
            let server_name = failed.server.unwrap_or_default();
            if matches!(failed.reason, FailReason::NoServer(NoServer::Unavailable)) && failed.retries == 0 {
                backend.counters.no_server.fetch_add(1, Ordering::Relaxed);
            }
            if !server_name.is_empty() {
                rec.server = &server_name;
            }
            finish(&process, &frontend, rec, accepted);
            return;
        }
    };

    let server = Arc::clone(&conn.slot.server);
    rec.server = server.name();
    rec.queue_ms = Some(ms(conn.queue_time));
    rec.connect_ms = Some(ms(conn.connect_time));
    rec.retries = conn.retries;
    rec.redispatched = conn.redispatched;

    let timers = Timers {
        client: fe.timeouts.client,
        server: backend.config.timeouts.server,
        tunnel: backend.config.timeouts.tunnel,
        client_fin: fe.timeouts.client_fin,
        server_fin: backend.config.timeouts.server_fin,
    };
    let kill = server.kill_token();
    let stop = process.stop.clone();
    let killed = async move {
        tokio::select! {
            _ = kill.cancelled() => {}
            _ = stop.cancelled() => {}
        }
    };
    let transfer = forward::forward(&client, &conn.stream, &mut Tcp(&timers), killed).await;

    server.counters.bytes_in.fetch_add(transfer.to_server, Ordering::Relaxed);
    server.counters.bytes_out.fetch_add(transfer.to_client, Ordering::Relaxed);
    frontend.counters.bytes_in.fetch_add(transfer.to_server, Ordering::Relaxed);
    frontend.counters.bytes_out.fetch_add(transfer.to_client, Ordering::Relaxed);
    rec.bytes_to_client = transfer.to_client;
    rec.bytes_to_server = transfer.to_server;
    (rec.cause, rec.phase) = match transfer.end {
        End::Closed => (Cause::None, Phase::None),
        End::ClientTimeout => (Cause::ClientTimeout, Phase::Data),
        End::ServerTimeout => (Cause::ServerTimeout, Phase::Data),
        End::ClientError => (Cause::ClientAbort, Phase::Data),
        End::ServerError => (Cause::ServerAbort, Phase::Data),
        End::Killed => (Cause::Killed, Phase::Data),
        End::Eof(Side::Client) | End::Violation(Side::Client) => (Cause::ClientAbort, Phase::Data),
        End::Eof(Side::Server) | End::Violation(Side::Server) => (Cause::ServerAbort, Phase::Data),
    };
    rec.srv_conn = server.counters.current.load(Ordering::Relaxed);
    rec.beconn = backend.servers.iter().map(|s| s.counters.current.load(Ordering::Relaxed)).sum();
    drop(conn);
    finish(&process, &frontend, rec, accepted);
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Counts the session out and writes its log line.
fn finish(process: &Process, frontend: &FrontendState, mut rec: SessionRecord<'_>, accepted: Instant) {
    rec.actconn = process.actconn();
    rec.feconn = frontend.counters.current.load(Ordering::Relaxed);
    rec.total_ms = ms(accepted.elapsed());
    process.actconn.fetch_sub(1, Ordering::Relaxed);
    let log = &frontend.config.log;
    if frontend.logger.is_empty() || !log.tcplog {
        return;
    }
    // HAProxy's rule exactly: no byte from the client, no line (health checks of other
    // load balancers and port scans), whatever the outcome.
    if log.dontlognull && rec.bytes_to_server == 0 {
        return;
    }
    let level = if rec.cause == Cause::None { Level::Info } else { Level::Notice };
    frontend.logger.send(level, &rec.tcplog());
}
