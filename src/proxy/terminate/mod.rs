//! `amqp-terminate` mode: the client's AMQP connection ends at warren, which owns the
//! connection to the node and can change the node underneath (DESIGN.md).
//!
//! ```text
//! client ⇄ Side ─ Relay (channels, topology, tags, kept publishes) ─ Side ⇄ node, epoch N
//!                                  │ on loss, 320, DOWN, drain, rebalance
//!                                  └─▶ reach another node, log in, replay ─▶ epoch N+1
//! ```
//! [`handshake`] plays the broker to the client while logging in to a node with the
//! client's credentials; [`Session::run`] moves frames both ways through the relay, sends
//! heartbeats on each side on its own schedule, and moves the session when its node goes.

mod data;
mod handshake;
pub mod io;
mod moving;
pub mod node;
pub mod replay;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use self::io::Side;
use self::node::{Credentials, Node};
use crate::amqp::methods::{connection_close, CONNECTION_FORCED};
use crate::amqp::terminate::relay::Relay;
use crate::config::{Level, DEFAULT_FAILOVER_TIMEOUT};
use crate::log::tcplog::{Cause, Phase};
use crate::net::Stream;
use crate::state::sessions::{Registered, SessionInfo};
use crate::state::{BackendState, FrontendState, Process, ServerState};

/// Slack added to 2×heartbeat before a silent side is declared dead (as in `amqp` mode).
const HEARTBEAT_SLACK: Duration = Duration::from_secs(1);

/// How often a session looks at its server's admin state (drain, maintenance).
const ADMIN_POLL: Duration = Duration::from_secs(1);

/// How long warren waits for a `close-ok` it asked for.
const CLOSE_OK_WAIT: Duration = Duration::from_secs(3);

/// What the caller needs for the session's log line.
pub struct Outcome {
    pub server: Option<Arc<ServerState>>,
    pub connect_ms: Option<u64>,
    pub retries: u32,
    pub bytes_to_client: u64,
    pub bytes_to_server: u64,
    pub cause: Cause,
    pub phase: Phase,
    /// The AMQP part of the log line.
    pub extra: String,
}

/// Who the client is, for log lines.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub user: String,
    pub vhost: String,
    pub name: String,
}

/// Runs a terminated session whose client has sent the protocol header.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    process: &Process,
    frontend: &FrontendState,
    backend: &Arc<BackendState>,
    client: Stream,
    peer: SocketAddr,
    destination: SocketAddr,
    handshake_deadline: Instant,
) -> Outcome {
    let client = Side::new(client, frontend.config.initial_frame_max);
    let opened = tokio::select! {
        r = handshake::handshake(backend, client, peer, destination, handshake_deadline) => r,
        _ = process.stop.cancelled() => Err(handshake::Failed {
            cause: Cause::Killed,
            server: None,
            bytes: (0, 0),
            how: "warren is shutting down".into(),
        }),
    };
    let mut opened = match opened {
        Ok(o) => o,
        Err(f) => {
            return Outcome {
                server: f.server,
                connect_ms: None,
                retries: 0,
                bytes_to_client: f.bytes.0,
                bytes_to_server: f.bytes.1,
                cause: f.cause,
                phase: Phase::Connect,
                extra: format!("{{- - \"\"}} heartbeat=- moves=0 \"{}\"", f.how),
            }
        }
    };
    let connect_ms = Some(opened.node.connect_time.as_millis() as u64);
    let retries = opened.node.retries;
    let left = std::mem::take(&mut opened.node.left);
    let control = opened.control_channel;
    let entry = frontend.sessions.register(SessionInfo {
        client: peer,
        user: opened.who.user.clone(),
        vhost: opened.who.vhost.clone(),
        name: opened.who.name.clone(),
        node: opened.node.server().full_name.clone(),
        epoch: 1,
        moves: 0,
        since: Instant::now(),
    });
    let mut session = Session {
        entry,
        process,
        frontend,
        backend,
        peer,
        destination,
        client: opened.client,
        node: Some(opened.node),
        relay: Relay::new(unique(), control),
        creds: opened.creds,
        client_heartbeat: opened.client_heartbeat,
        who: opened.who,
        moves: 0,
        closing: false,
        admin_poll: Instant::now() + ADMIN_POLL,
    };
    let (cause, how) = session.run().await;
    let server = session.node.as_ref().map(|n| Arc::clone(n.server()));
    let bytes_to_client = session.client.bytes_out;
    let bytes_to_server = session.client.bytes_in;
    Outcome {
        server,
        connect_ms,
        retries,
        bytes_to_client,
        bytes_to_server,
        cause,
        phase: if cause == Cause::None {
            Phase::None
        } else {
            Phase::Data
        },
        extra: format!(
            "{{{} {} \"{}\"}} heartbeat={} moves={} \"{}\"{}",
            session.who.user,
            session.who.vhost,
            session.who.name,
            session.client_heartbeat,
            session.moves,
            how,
            node::left_suffix(&left)
        ),
    }
}

/// A value no other session of this or another warren process is likely to share, for
/// the names warren gives server-named queues and consumer tags.
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// What ends a turn of the loop.
enum Turn {
    Go,
    Move { why: String, planned: bool },
    End { cause: Cause, how: String },
}

struct Session<'a> {
    /// This session in the frontend's sessions view.
    entry: Registered,
    process: &'a Process,
    frontend: &'a FrontendState,
    backend: &'a Arc<BackendState>,
    peer: SocketAddr,
    destination: SocketAddr,
    client: Side,
    /// The node of the current epoch (`None` only while moving).
    node: Option<Node>,
    relay: Relay,
    creds: Credentials,
    /// Heartbeat negotiated with the client, seconds (0: none).
    client_heartbeat: u16,
    who: Identity,
    moves: u32,
    /// A close handshake is under way (client's or node's): no move any more.
    closing: bool,
    /// When to look at the server's admin state next.
    admin_poll: Instant,
}

impl Session<'_> {
    async fn run(&mut self) -> (Cause, String) {
        // Frames that came with the last handshake or replay reads are handled first.
        let mut turn = self.buffered();
        loop {
            let Some(node) = self.node.as_ref() else {
                return (Cause::ServerAbort, "no node".into());
            };
            let server = Arc::clone(node.server());
            let kill = server.kill_token();
            while let Turn::Go = turn {
                turn = self.turn(&server, &kill).await;
            }
            match std::mem::replace(&mut turn, Turn::Go) {
                Turn::Go => {}
                Turn::End { cause, how } => return self.end(cause, how).await,
                Turn::Move { why, planned } => match self.move_session(&why, planned).await {
                    Ok(()) => turn = self.buffered(),
                    Err(moving::NotMoved::Ended(cause, how)) => return self.end(cause, how).await,
                    Err(moving::NotMoved::Fallback(reason)) => {
                        self.frontend
                            .counters
                            .moves_failed
                            .fetch_add(1, Ordering::Relaxed);
                        self.log(
                            Level::Warning,
                            &format!("could not move the session ({why}): {reason}"),
                        );
                        return self
                            .end(
                                Cause::ServerAbort,
                                format!("{why}; could not move: {reason}"),
                            )
                            .await;
                    }
                },
            }
        }
    }

    /// Handles frames already read but not yet handled, then writes.
    fn buffered(&mut self) -> Turn {
        match self.client_frames(false) {
            Turn::Go => {}
            other => return other,
        }
        match self.node_frames(false) {
            Turn::Go => self.write_out(),
            other => other,
        }
    }

    /// Ends the session: a close handshake that is over, or warren's own `connection.close`
    /// 320 to the client; the node gets a clean close either way.
    async fn end(&mut self, cause: Cause, how: String) -> (Cause, String) {
        let deadline = Instant::now() + CLOSE_OK_WAIT;
        if let Some(node) = self.node.as_mut() {
            if !node.side.gone && cause != Cause::None {
                node.side
                    .wbuf
                    .extend_from_slice(&connection_close(200, "client session ended"));
            }
            let _ = node.side.flush_until(deadline).await;
        }
        let tell = matches!(
            cause,
            Cause::Killed | Cause::ServerAbort | Cause::ServerTimeout
        ) && !self.client.gone;
        if !tell {
            let _ = self.client.flush_until(deadline).await;
            return (cause, how);
        }
        let reason = format!("{how}; reconnect");
        self.client
            .wbuf
            .extend_from_slice(&connection_close(CONNECTION_FORCED, &reason));
        let told = self.client.flush_until(deadline).await.is_ok();
        let answered = told && moving::await_close_ok(&mut self.client, deadline).await;
        let how = match (told, answered) {
            (true, true) => format!("told the client (connection.close 320): {reason}"),
            (true, false) => {
                format!("told the client (connection.close 320): {reason} (no close-ok)")
            }
            (false, _) => format!("{reason} (client could not be told)"),
        };
        (cause, how)
    }

    fn log(&self, level: Level, what: &str) {
        let line = format!(
            "{} {{{} {} \"{}\"}} {}",
            self.peer, self.who.user, self.who.vhost, self.who.name, what
        );
        if self.frontend.logger.is_empty() {
            tracing::info!("{line}");
        } else {
            self.frontend.logger.send(level, &line);
        }
    }
}

/// A fresh buffer (what a relay writes during replay before the client is written to).
fn scratch() -> BytesMut {
    BytesMut::new()
}

impl Session<'_> {
    fn failover_timeout(&self) -> Duration {
        self.frontend
            .config
            .timeouts
            .failover
            .unwrap_or(DEFAULT_FAILOVER_TIMEOUT)
    }
}
