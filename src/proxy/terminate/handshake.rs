//! The opening of a terminated session: warren answers the client as a broker would while
//! it logs in to a node with the client's own credentials, so the client sees the node's
//! `connection.start` (server properties, capabilities, mechanisms), the node's limits in
//! `tune`, and the node's own answer to its login. Every mechanism is passed on as the
//! client chose it: EXTERNAL authenticates whatever certificate the node sees, which is
//! warren's own (`ssl crt` on the server line), exactly as in `amqp` mode.

use std::net::SocketAddr;
use std::sync::Arc;

use amq_protocol::protocol::{connection, parse_class, AMQPClass};
use tokio::time::Instant;

use super::io::Side;
use super::node::{self, Credentials, LoginError, Node};
use super::{moving, Identity};
use crate::amqp::terminate::relay::method_frame;
use crate::amqp::terminate::wire::id;
use crate::log::tcplog::Cause;
use crate::state::{BackendState, ServerState};

/// A session ready for its data phase.
pub struct Opened {
    pub client: Side,
    pub node: Node,
    pub creds: Credentials,
    pub client_heartbeat: u16,
    pub who: Identity,
    /// The channel warren keeps for itself on nodes: one past what the client may use.
    pub control_channel: u16,
}

/// A session that never opened.
pub struct Failed {
    pub cause: Cause,
    pub server: Option<Arc<ServerState>>,
    /// Bytes (to the client, from the client).
    pub bytes: (u64, u64),
    pub how: String,
}

pub async fn handshake(
    backend: &Arc<BackendState>,
    mut client: Side,
    peer: SocketAddr,
    destination: SocketAddr,
    deadline: Instant,
) -> Result<Opened, Failed> {
    // The protocol header was read by the caller.
    client.bytes_in = 8;
    let fail = |client: &Side, cause, server: Option<&Arc<ServerState>>, how: String| Failed {
        cause,
        server: server.cloned(),
        bytes: (client.bytes_out, client.bytes_in),
        how,
    };
    let started = match node::reach(backend, peer, destination, &[], deadline).await {
        Ok(s) => s,
        Err(why) => return Err(fail(&client, Cause::ServerAbort, None, why)),
    };
    let server = Arc::clone(&started.slot.server);
    client.wbuf.extend_from_slice(&started.start.bytes);
    let start_ok = exchange(
        &mut client,
        Some(id::CONNECTION_START_OK),
        "start-ok",
        deadline,
    )
    .await
    .map_err(|(cause, how)| fail(&client, cause, Some(&server), how))?;
    let mut who = Identity::default();
    if let Ok((_, AMQPClass::Connection(connection::AMQPMethod::StartOk(m)))) =
        parse_class(start_ok.payload())
    {
        who.user = crate::amqp::handshake::user_of(m.mechanism.as_str(), m.response.as_bytes())
            .unwrap_or_else(|| "-".into());
        who.name = crate::amqp::handshake::string_property(&m.client_properties, "connection_name")
            .unwrap_or_default();
    }
    let mut node_side = started.side;
    let tune = match node::authenticate(&mut node_side, &start_ok.bytes, deadline).await {
        Ok(t) => t,
        Err(e) => return Err(refused(&mut client, e, &server, deadline).await),
    };
    // One channel number is kept back for warren's own replay channel.
    let (client_channel_max, control_channel) = match tune.channel_max {
        0 | u16::MAX => (u16::MAX - 1, u16::MAX),
        1 => (1, 2),
        n => (n - 1, n),
    };
    client.wbuf.extend_from_slice(&method_frame(
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
            channel_max: client_channel_max,
            frame_max: tune.frame_max,
            heartbeat: tune.heartbeat,
        })),
    ));
    let tune_ok = exchange(
        &mut client,
        Some(id::CONNECTION_TUNE_OK),
        "tune-ok",
        deadline,
    )
    .await
    .map_err(|(cause, how)| fail(&client, cause, Some(&server), how))?;
    let Ok((_, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok)))) =
        parse_class(tune_ok.payload())
    else {
        let how = "client sent an undecodable tune-ok".to_string();
        return Err(fail(&client, Cause::ClientAbort, Some(&server), how));
    };
    let frame_max = match (tune_ok.frame_max, tune.frame_max) {
        (0, n) => n,
        (c, 0) => c,
        (c, n) => c.min(n),
    };
    client.frame_max = frame_max;
    let open = exchange(
        &mut client,
        Some(id::CONNECTION_OPEN),
        "connection.open",
        deadline,
    )
    .await
    .map_err(|(cause, how)| fail(&client, cause, Some(&server), how))?;
    if let Ok((_, AMQPClass::Connection(connection::AMQPMethod::Open(o)))) =
        parse_class(open.payload())
    {
        who.vhost = o.virtual_host.to_string();
    }
    // Copied out: as slices they would keep the whole read buffers they were cut from
    // alive for the session's life (measured: 33 KiB per idle client).
    let creds = Credentials {
        start_ok: bytes::Bytes::copy_from_slice(&start_ok.bytes),
        open: bytes::Bytes::copy_from_slice(&open.bytes),
        frame_max,
        update_secret: None,
    };
    let heartbeat = node::heartbeat_for(tune_ok.heartbeat, tune.heartbeat);
    let open_ok = match node::open(&mut node_side, tune, &creds, heartbeat, deadline).await {
        Ok(f) => f,
        Err(e) => return Err(refused(&mut client, e, &server, deadline).await),
    };
    client.wbuf.extend_from_slice(&open_ok.bytes);
    if client.flush_until(deadline).await.is_err() {
        return Err(fail(
            &client,
            Cause::ClientAbort,
            Some(&server),
            "client left".into(),
        ));
    }
    Ok(Opened {
        client,
        node: Node {
            side: node_side,
            slot: started.slot,
            heartbeat: std::time::Duration::from_secs(u64::from(heartbeat)),
            connect_time: started.connect_time,
            retries: started.retries,
            left: started.left,
        },
        creds,
        client_heartbeat: tune_ok.heartbeat,
        who,
        control_channel,
    })
}

/// Sends what waits for the client, then reads its next method, which must be `want`.
async fn exchange(
    client: &mut Side,
    want: Option<crate::amqp::terminate::wire::MethodId>,
    what: &str,
    deadline: Instant,
) -> Result<crate::amqp::terminate::wire::RawFrame, (Cause, String)> {
    if client.flush_until(deadline).await.is_err() {
        return Err((Cause::ClientAbort, "client left".into()));
    }
    match client.read_method(deadline).await {
        Ok(f) if f.method() == want => Ok(f),
        Ok(_) => Err((Cause::ClientAbort, format!("client did not send {what}"))),
        Err(e) => Err((Cause::ClientTimeout, format!("handshake not finished: {e}"))),
    }
}

/// The node refused the login (its close goes to the client as it is) or broke off.
async fn refused(
    client: &mut Side,
    e: LoginError,
    server: &Arc<ServerState>,
    deadline: Instant,
) -> Failed {
    let how = match &e {
        LoginError::Refused { close, text } => {
            client.wbuf.extend_from_slice(close);
            if client.flush_until(deadline).await.is_ok() {
                moving::await_close_ok(client, deadline).await;
            }
            format!("the node refused the client: {text}")
        }
        LoginError::Lost(why) => format!("{}: {why}", server.full_name),
    };
    Failed {
        cause: match e {
            LoginError::Refused { .. } => Cause::ClientAbort,
            LoginError::Lost(_) => Cause::ServerAbort,
        },
        server: Some(Arc::clone(server)),
        bytes: (client.bytes_out, client.bytes_in),
        how,
    }
}
