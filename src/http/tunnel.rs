//! `101 Switching Protocols` to an `Upgrade` request (WebSocket: Web-STOMP, Web-MQTT):
//! from then on both connections are one tunnel, bytes passed both ways by the TCP
//! forwarding loop with HAProxy's tunnel timeouts (`timeout tunnel`).

use std::sync::Arc;

use super::body;
use super::exchange::{Conn, Ctx};
use super::head::Head;
use super::log::Record;
use super::rewrite;
use super::upstream::Upstream;
use crate::proxy::forward::{self, End, Meter};
use crate::proxy::tcp::Tcp;

/// After `101 Switching Protocols`: the response head to the client, what either side
/// already sent past its head, then bytes both ways until one side ends, with HAProxy's
/// tunnel timeouts. The client connection ends with the tunnel.
pub async fn run(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    mut up: Upstream,
    res: &Head,
    rec: &mut Record<'_>,
) -> bool {
    let fe = &ctx.frontend.config;
    let be = &ctx.backend.config;
    rewrite::response(&mut conn.out, res, 1, false, &[]);
    let mut ok = body::write(&mut conn.client, &conn.out, fe.timeouts.client)
        .await
        .is_ok();
    if ok && !conn.sbuf.is_empty() {
        ok = body::write(&mut conn.client, &conn.sbuf, fe.timeouts.client)
            .await
            .is_ok();
    }
    if ok && !conn.cbuf.is_empty() {
        ok = body::write(&mut up.stream, &conn.cbuf, be.timeouts.server)
            .await
            .is_ok();
    }
    if !ok {
        (rec.cause, rec.phase) = ('C', 'D');
        return false;
    }
    let server = Arc::clone(&up.slot.server);
    let kill = server.kill_token();
    let stop = ctx.process.stop.clone();
    let killed = async move {
        tokio::select! {
            _ = kill.cancelled() => {}
            _ = stop.cancelled() => {}
        }
    };
    tokio::pin!(killed);
    let mut tcp = Tcp {
        frontend: &fe.timeouts,
        backend: &be.timeouts,
        splice: false,
    };
    let meters = [
        Meter {
            server: &server.counters.bytes_in,
            frontend: &ctx.frontend.counters.bytes_in,
        },
        Meter {
            server: &server.counters.bytes_out,
            frontend: &ctx.frontend.counters.bytes_out,
        },
    ];
    let t = forward::forward(
        &mut conn.client,
        &mut up.stream,
        &mut tcp,
        meters,
        killed.as_mut(),
    )
    .await;
    rec.bytes_to_client = conn.out.len() as u64 + t.to_client;
    (rec.cause, rec.phase) = match t.end {
        End::Closed => ('-', '-'),
        End::ClientTimeout => ('c', 'D'),
        End::ServerTimeout => ('s', 'D'),
        End::Killed => ('K', 'D'),
        End::ClientError
        | End::Eof(forward::Side::Client)
        | End::Violation(forward::Side::Client) => ('C', 'D'),
        _ => ('S', 'D'),
    };
    false
}
