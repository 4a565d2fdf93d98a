//! Warren as a client of a node: reach one (the protocol header answered by
//! `connection.start` is part of connecting, so a frozen node is a failed connect), log in
//! with the client's credentials, open its vhost.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::{connection, parse_class, AMQPClass};
use bytes::Bytes;
use tokio::time::Instant;

use super::io::{Side, SideError};
use crate::amqp::frame::{PROTOCOL_HEADER, SERVER_PRE_TUNE_FRAME_MAX};
use crate::amqp::terminate::relay::method_frame;
use crate::amqp::terminate::wire::{id, RawFrame};
use crate::health::checker as checks;
use crate::health::{CheckStatus, Probe};
use crate::proxy::connect::{self, FailReason};
use crate::state::{BackendState, ServerState, Slot};

/// How long a node has to answer the protocol header when `timeout connect` is not set.
const DEFAULT_START_WAIT: Duration = Duration::from_secs(5);

/// What the client said when it logged in, to say it again to another node. Kept in
/// memory only; `Debug` never shows it.
#[derive(Clone)]
pub struct Credentials {
    /// The client's `connection.start-ok` frame (client properties, mechanism, response).
    pub start_ok: Bytes,
    /// The client's `connection.open` frame (vhost).
    pub open: Bytes,
    /// `frame_max` the client negotiated: every node is held to it so frames pass as they are.
    pub frame_max: u32,
    /// The last `connection.update-secret` the client sent, replayed after a login.
    pub update_secret: Option<Bytes>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(MASKED)")
    }
}

/// A node's `connection.tune`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tune {
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
}

/// A node warren is connected to.
pub struct Node {
    pub side: Side,
    pub slot: Slot,
    /// Heartbeat agreed with the node (zero: none).
    pub heartbeat: Duration,
    pub connect_time: Duration,
    pub retries: u32,
    /// Servers tried and left on the way to this one, with why (`left=` in log lines).
    pub left: Vec<connect::Left>,
}

impl Node {
    pub fn server(&self) -> &Arc<ServerState> {
        &self.slot.server
    }
}

/// Why a login did not happen.
#[derive(Debug)]
pub enum LoginError {
    /// The node refused: its `connection.close` frame, to be passed to the client.
    Refused { close: Bytes, text: String },
    /// The node broke off or did not answer.
    Lost(String),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Refused { text, .. } => write!(f, "refused: {text}"),
            LoginError::Lost(why) => f.write_str(why),
        }
    }
}

/// A connected node that has sent `connection.start`.
pub struct Started {
    pub side: Side,
    pub slot: Slot,
    pub start: RawFrame,
    pub connect_time: Duration,
    pub retries: u32,
    /// Servers tried and left on the way to this one, with why.
    pub left: Vec<connect::Left>,
}

/// Connects to a server of `backend` (avoiding `avoid` while others are usable), sends the
/// protocol header and waits for `connection.start` within `timeout connect`. A node that
/// accepts TCP but does not answer (frozen) counts as a failed connect against its health,
/// and the next server is tried, until `deadline`.
pub async fn reach(
    backend: &Arc<BackendState>,
    client: SocketAddr,
    destination: SocketAddr,
    avoid: &[usize],
    deadline: Instant,
) -> Result<Started, String> {
    let mut avoid = avoid.to_vec();
    let mut left = Vec::new();
    let started = Instant::now();
    // What a failure says: why, and every server left on the way.
    let failed = |why: String, left: &[connect::Left]| format!("{why}{}", left_suffix(left));
    loop {
        let attempt = tokio::time::timeout_at(
            deadline,
            connect::connect_excluding(
                backend,
                client,
                destination,
                None,
                connect::Answer::Connected,
                &avoid,
            ),
        )
        .await;
        let conn = match attempt {
            Err(_) => {
                return Err(failed(
                    "no node answered within timeout failover".into(),
                    &left,
                ))
            }
            Ok(Err(failure)) => {
                let why = match failure.reason {
                    FailReason::NoServer(e) => format!("{e:?}"),
                    FailReason::Refused => "connection refused".into(),
                    FailReason::Timeout => "connect timeout".into(),
                };
                left.extend(failure.left);
                let why = format!(
                    "no node could be reached ({why}{})",
                    failure
                        .server
                        .map(|s| format!(", last tried {s}"))
                        .unwrap_or_default()
                );
                return Err(failed(why, &left));
            }
            Ok(Ok(mut conn)) => {
                if let Some(notes) = conn.notes.take() {
                    left.extend(notes.left);
                }
                conn
            }
        };
        let server = Arc::clone(&conn.slot.server);
        let wait = backend
            .config
            .timeouts
            .connect
            .unwrap_or(DEFAULT_START_WAIT);
        let answer_by = (Instant::now() + wait).min(deadline);
        let mut side = Side::new(conn.stream, SERVER_PRE_TUNE_FRAME_MAX);
        side.wbuf.extend_from_slice(PROTOCOL_HEADER);
        let answer = async {
            side.flush_until(answer_by).await?;
            side.read_method(answer_by).await
        }
        .await;
        match answer {
            Ok(frame) if frame.method() == Some(id::CONNECTION_START) => {
                return Ok(Started {
                    side,
                    slot: conn.slot,
                    start: frame,
                    connect_time: started.elapsed(),
                    retries: conn.retries,
                    left,
                })
            }
            other => {
                let (status, info) = match other {
                    Err(SideError::Timeout) => (
                        CheckStatus::L7TimeOut,
                        "no connection.start within timeout connect".to_string(),
                    ),
                    Err(e) => (
                        CheckStatus::L7Rsp,
                        format!("lost before connection.start: {e}"),
                    ),
                    Ok(_) => (
                        CheckStatus::L7Rsp,
                        "did not answer with connection.start".into(),
                    ),
                };
                server
                    .counters
                    .connect_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if server.config.check {
                    let probe = Probe {
                        status,
                        info: format!("a session's connect failed: {info}"),
                        duration: started.elapsed(),
                    };
                    // Took the connection but did not answer: DOWN at once, as in amqp
                    // mode (`connect::Answer::AmqpStart`), not after `fall` such sessions.
                    checks::record_unusable(backend, &server, probe);
                }
                tracing::warn!(server = %server.full_name, "{info}; trying another node");
                avoid.push(server.id);
                left.push(connect::Left {
                    server: server.name().to_string(),
                    why: info.clone(),
                });
                if Instant::now() >= deadline {
                    return Err(failed(format!("{}: {info}", server.full_name), &left));
                }
            }
        }
    }
}

/// ` left=n1:"why"` for a log line, or nothing when no server was left on the way.
pub fn left_suffix(left: &[connect::Left]) -> String {
    if left.is_empty() {
        String::new()
    } else {
        format!(" {}", connect::left_text(left))
    }
}

/// Sends the client's `start-ok`; the node's `tune`, or its refusal.
pub async fn authenticate(
    side: &mut Side,
    start_ok: &Bytes,
    deadline: Instant,
) -> Result<Tune, LoginError> {
    side.wbuf.extend_from_slice(start_ok);
    side.flush_until(deadline).await.map_err(lost)?;
    let frame = side.read_method(deadline).await.map_err(lost)?;
    match parse_class(frame.payload()) {
        Ok((_, AMQPClass::Connection(connection::AMQPMethod::Tune(t)))) => Ok(Tune {
            channel_max: t.channel_max,
            frame_max: t.frame_max,
            heartbeat: t.heartbeat,
        }),
        Ok((_, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
            Err(LoginError::Refused {
                close: frame.bytes.clone(),
                text: format!("{} {}", c.reply_code, c.reply_text),
            })
        }
        _ => Err(LoginError::Lost(
            "the node answered start-ok with something other than tune".into(),
        )),
    }
}

/// Sends `tune-ok` and the client's `open`; the node's `open-ok` frame, or its refusal.
pub async fn open(
    side: &mut Side,
    tune: Tune,
    creds: &Credentials,
    heartbeat: u16,
    deadline: Instant,
) -> Result<RawFrame, LoginError> {
    let tune_ok = method_frame(
        0,
        &AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max: creds.frame_max,
            heartbeat,
        })),
    );
    side.frame_max = creds.frame_max;
    side.wbuf.extend_from_slice(&tune_ok);
    side.wbuf.extend_from_slice(&creds.open);
    side.flush_until(deadline).await.map_err(lost)?;
    let frame = side.read_method(deadline).await.map_err(lost)?;
    match frame.method() {
        Some(id::CONNECTION_OPEN_OK) => Ok(frame),
        Some(id::CONNECTION_CLOSE) => {
            let (code, text) = crate::amqp::terminate::relay::close_fields(frame.payload());
            Err(LoginError::Refused {
                close: frame.bytes.clone(),
                text: format!("{code} {text}"),
            })
        }
        _ => Err(LoginError::Lost(
            "the node answered open with something other than open-ok".into(),
        )),
    }
}

/// The heartbeat warren asks of a node: the client's, so the whole path is watched as
/// closely as the client asked, never more often than the node proposes to allow.
pub fn heartbeat_for(client: u16, node_proposal: u16) -> u16 {
    match (client, node_proposal) {
        (0, n) => n,
        (c, 0) => c,
        (c, n) => c.min(n),
    }
}

/// Logs in again on another node with the stored credentials (a move).
pub async fn login(
    started: Started,
    creds: &Credentials,
    client_heartbeat: u16,
    deadline: Instant,
) -> Result<Node, LoginError> {
    let Started {
        mut side,
        slot,
        connect_time,
        retries,
        left,
        ..
    } = started;
    let tune = authenticate(&mut side, &creds.start_ok, deadline).await?;
    if tune.frame_max != 0 && tune.frame_max < creds.frame_max {
        return Err(LoginError::Lost(format!(
            "the node's frame_max {} is below the client's {}",
            tune.frame_max, creds.frame_max
        )));
    }
    let heartbeat = heartbeat_for(client_heartbeat, tune.heartbeat);
    open(&mut side, tune, creds, heartbeat, deadline).await?;
    if let Some(secret) = &creds.update_secret {
        side.wbuf.extend_from_slice(secret);
        side.flush_until(deadline).await.map_err(lost)?;
        let frame = side.read_method(deadline).await.map_err(lost)?;
        if frame.method() != Some(id::CONNECTION_UPDATE_SECRET_OK) {
            return Err(LoginError::Lost(
                "the node did not accept the client's updated secret".into(),
            ));
        }
    }
    Ok(Node {
        side,
        slot,
        heartbeat: Duration::from_secs(u64::from(heartbeat)),
        connect_time,
        retries,
        left,
    })
}

fn lost(e: SideError) -> LoginError {
    LoginError::Lost(format!("lost during login: {e}"))
}
