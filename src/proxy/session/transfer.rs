//! The data phase: bytes (tcp mode) or frames (amqp mode) both ways until a side closes,
//! a timeout strikes, or warren ends the session (server DOWN with shutdown-sessions,
//! rebalancing, stop).

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::super::amqp::Amqp;
use super::super::connect::Connected;
use super::super::forward::{self, End, Meter, Protocol, Side, Transfer};
use super::super::tcp::Tcp;
use super::end;
use crate::amqp::frame::PROTOCOL_HEADER;
use crate::config::Frontend;
use crate::net::Stream;
use crate::state::{BackendState, FrontendState, Process, ServerState, SheddingGuard};

/// Zero-copy forwarding of bulk data in tcp mode (see `splice.rs`).
const SPLICE: bool = true;

/// Forwards until the session ends. Returns the transfer, the AMQP part of the log line
/// (amqp mode), and, when rebalancing picked this session, its guard (to be dropped only
/// after the server slot, so it is never counted as settled while still open).
pub(super) async fn run(
    process: &Process,
    frontend: &FrontendState,
    backend: &BackendState,
    client: &mut Stream,
    conn: &mut Connected,
    amqp_handshake_deadline: Option<Instant>,
) -> (Transfer, Option<String>, Option<SheddingGuard>) {
    let fe: &Frontend = &frontend.config;
    let server = Arc::clone(&conn.slot.server);
    let kill = server.kill_token();
    let killed_by_server = kill.clone();
    let stop = process.stop.clone();
    match amqp_handshake_deadline {
        Some(deadline) => {
            // Built inside the boxed future below, never held in the session's own.
            let proto = (deadline, fe.initial_frame_max);
            let mut shedding = None;
            let (transfer, extra) = {
                let shed_slot = &mut shedding;
                let shed_from = Arc::clone(&server);
                let killed = async move {
                    tokio::select! {
                        _ = kill.cancelled() => {}
                        _ = stop.cancelled() => {}
                        // Rebalancing sheds only AMQP sessions: they can be told to reconnect.
                        guard = shed_from.shed_request() => *shed_slot = Some(guard),
                    }
                };
                // Pinned here and lent: moved into `forward`, it would take room there twice.
                tokio::pin!(killed);
                // Boxed: the AMQP data phase's state is larger than tcp mode's, and an unboxed
                // future would make every session's task that large, AMQP or not.
                Box::pin(amqp_data(
                    process,
                    &killed_by_server,
                    client,
                    conn,
                    proto,
                    meters(frontend, &server),
                    killed.as_mut(),
                ))
                .await
            };
            (transfer, Some(extra), shedding)
        }
        None => {
            let killed = async move {
                tokio::select! {
                    _ = kill.cancelled() => {}
                    _ = stop.cancelled() => {}
                }
            };
            tokio::pin!(killed);
            let mut tcp = Tcp {
                frontend: &fe.timeouts,
                backend: &backend.config.timeouts,
                splice: SPLICE,
            };
            let transfer = forward::forward(
                client,
                &mut conn.stream,
                &mut tcp,
                meters(frontend, &server),
                killed.as_mut(),
            )
            .await;
            (transfer, None, None)
        }
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
    (deadline, initial_frame_max): (Instant, u32),
    meters: [Meter<'_>; 2],
    killed: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> (Transfer, String) {
    let mut proto = Amqp::new(deadline, initial_frame_max);
    // The protocol header went to the server while connecting, and what the server
    // answered (the start of connection.start) was kept for the client: it goes first,
    // seen by the frame tracker like everything the loop forwards.
    let (greeting, left) = conn
        .notes
        .take()
        .map_or_else(Default::default, |n| (n.greeting, n.left));
    meters[0].add(PROTOCOL_HEADER.len());
    meters[1].add(greeting.len());
    let passed_on = if proto.observe(Side::Server, &greeting).is_err() {
        Err(End::Violation(Side::Server))
    } else {
        client
            .write_all(&greeting)
            .await
            .map_err(|_| End::ClientError)
    };
    let greeted = greeting.len() as u64;
    drop(greeting); // an idle session holds no buffer
    let mut transfer = match passed_on {
        Ok(()) => forward::forward(client, &mut conn.stream, &mut proto, meters, killed).await,
        Err(end) => Transfer {
            to_server: 0,
            to_client: 0,
            end,
            undelivered_to_client: Vec::new(),
        },
    };
    transfer.to_server += PROTOCOL_HEADER.len() as u64;
    transfer.to_client += greeted;
    let mut extra = end::amqp(process, server_kill, client, conn, &mut proto, &transfer).await;
    if !left.is_empty() {
        extra = format!("{extra} {}", super::super::connect::left_text(&left));
    }
    (transfer, extra)
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
