//! The last phase of a session: in amqp mode, ending it politely (the client told why
//! with `connection.close`, the node closed cleanly); then counting it out and writing its
//! one log line.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::amqp::{self, Amqp};
use super::super::connect::Connected;
use super::super::forward::{End, Side, Transfer};
use super::ms;
use crate::config::Level;
use crate::log::tcplog::{Cause, SessionRecord};
use crate::net::Stream;
use crate::state::{FrontendState, Process};

/// After an AMQP session's data phase: tells the client why warren ended it (320) or why
/// its framing was refused (501), waits for the goodbyes within their bounds, and returns
/// the AMQP part of the log line.
pub(super) async fn amqp(
    process: &Process,
    server_kill: &CancellationToken,
    client: &mut Stream,
    conn: &mut Connected,
    proto: &mut Amqp,
    transfer: &Transfer,
) -> String {
    let server = Arc::clone(&conn.slot.server);
    let node = format!("node {} ({})", server.full_name, server.addr());
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
        let answered = amqp::await_client_close_ok(proto, client).await;
        let (code, text) = proto.handshake.close_reason.clone().unwrap_or_default();
        how = format!(
            "server sent connection.close {code} {text}{}",
            if answered { "" } else { " (no close-ok)" }
        );
    }
    if let (End::Violation(Side::Client), Some(text)) = (transfer.end, proto.frame_error.clone()) {
        // The node may hold the first bytes of the bad frame, so nothing can be slipped in
        // on its side: it is simply disconnected.
        let told = amqp::refuse_frame(proto, client, &transfer.undelivered_to_client, &text).await;
        how = if told {
            format!("told the client (connection.close 501): {text}")
        } else {
            format!("{text} (client could not be told)")
        };
    }
    if let Some((reason, server_alive)) = polite {
        let ending = amqp::end_politely(
            proto,
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
    format!(
        "{{{} {} \"{}\"}} heartbeat={} \"{}\"",
        hs.user.as_deref().unwrap_or("-"),
        hs.vhost.as_deref().unwrap_or("-"),
        hs.connection_name.as_deref().unwrap_or(""),
        hs.heartbeat
            .map_or_else(|| "-".to_string(), |h| h.to_string()),
        how
    )
}

/// Writes the session's log line; the session is still counted in `actconn` and `feconn`,
/// as in HAProxy's line.
pub(super) fn finish(
    process: &Process,
    frontend: &FrontendState,
    mut rec: SessionRecord<'_>,
    accepted: Instant,
) {
    rec.actconn = process.actconn();
    rec.feconn = frontend.counters.current.load(Ordering::Relaxed);
    rec.total_ms = ms(accepted.elapsed());
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
    // Not built when no target takes the level (`log ... notice` and a clean end).
    if frontend.logger.admits(level) {
        frontend.logger.send(level, &rec.tcplog());
    }
}
