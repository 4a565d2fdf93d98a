//! The data phase of a terminated session: one task waits on both sockets and the timers,
//! hands whole frames to the relay, writes what it produced, and says when the session must
//! move or end.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::io::{Side, SideError, HIGH_WATER};
use super::node::Node;
use super::{Session, Turn, ADMIN_POLL, HEARTBEAT_SLACK};
use crate::amqp::methods::{connection_close, FRAME_ERROR};
use crate::amqp::terminate::relay::Event;
use crate::amqp::terminate::wire::HEARTBEAT;
use crate::log::tcplog::Cause;
use crate::state::{AdminState, ServerState};

/// Why the loop woke up.
enum Wake {
    Stop,
    Killed,
    Shed(crate::state::SheddingGuard),
    Client(bool),
    Node(bool),
    Timer,
}

impl Session<'_> {
    /// One wake-up of the data phase.
    pub(super) async fn turn(
        &mut self,
        server: &Arc<ServerState>,
        kill: &tokio_util::sync::CancellationToken,
    ) -> Turn {
        let Some(node) = self.node.as_mut() else {
            return Turn::End {
                cause: Cause::ServerAbort,
                how: "no node".into(),
            };
        };
        let budget = self.frontend.config.terminate.publish_buffer;
        let read_client = node.side.wbuf.len() < HIGH_WATER && self.relay.kept_bytes() < budget;
        let read_node = self.client.wbuf.len() < HIGH_WATER;
        let mut timer = next_timer(&self.client, self.client_heartbeat, node, self.admin_poll);
        if Instant::now() >= timer {
            // Busy sockets win the biased select below every time: timers are looked at
            // here too, or a busy session would never notice a silent node or a drain.
            self.admin_poll = Instant::now() + ADMIN_POLL;
            match self.on_timer(server) {
                Turn::Go => {}
                other => return other,
            }
            let Some(n) = self.node.as_ref() else {
                return Turn::Go;
            };
            timer = next_timer(&self.client, self.client_heartbeat, n, self.admin_poll);
        }
        let Some(node) = self.node.as_mut() else {
            return Turn::Go;
        };
        let wake = tokio::select! {
            biased;
            _ = self.process.stop.cancelled() => Wake::Stop,
            _ = kill.cancelled(), if !self.closing => Wake::Killed,
            g = server.shed_request(), if !self.closing => Wake::Shed(g),
            (r, _) = self.client.ready(read_client, self.client.wants_write()) => Wake::Client(r),
            (r, _) = node.side.ready(read_node, node.side.wants_write()) => Wake::Node(r),
            _ = tokio::time::sleep_until(timer) => Wake::Timer,
        };
        let turn = match wake {
            Wake::Stop => Turn::End {
                cause: Cause::Killed,
                how: "warren is shutting down".into(),
            },
            Wake::Killed => Turn::Move {
                why: server.kill_reason(),
                planned: server.is_up(),
            },
            Wake::Shed(guard) => {
                drop(guard);
                Turn::Move {
                    why: format!("rebalancing: {} has more than its share", server.full_name),
                    planned: true,
                }
            }
            Wake::Client(r) => {
                if r {
                    self.client_frames(true)
                } else {
                    Turn::Go
                }
            }
            Wake::Node(r) => {
                if r {
                    self.node_frames(true)
                } else {
                    Turn::Go
                }
            }
            Wake::Timer => {
                self.admin_poll = Instant::now() + ADMIN_POLL;
                self.on_timer(server)
            }
        };
        if let Turn::Go = turn {
            return self.write_out();
        }
        turn
    }

    /// Writes what waits on both sides, as far as the sockets take it.
    pub(super) fn write_out(&mut self) -> Turn {
        if let Err(e) = self.client.write_some() {
            return Turn::End {
                cause: Cause::ClientAbort,
                how: format!("client connection lost: {e}"),
            };
        }
        if let Some(node) = self.node.as_mut() {
            if let Err(e) = node.side.write_some() {
                if !self.closing {
                    return Turn::Move {
                        why: format!("connection to {} lost: {e}", node.server().full_name),
                        planned: false,
                    };
                }
            }
        }
        Turn::Go
    }

    pub(super) fn client_frames(&mut self, read: bool) -> Turn {
        let read = if read { self.client.read_some() } else { Ok(0) };
        if let Err(e) = read {
            return Turn::End {
                cause: Cause::ClientAbort,
                how: match e {
                    SideError::Eof => {
                        "client closed the connection without connection.close".into()
                    }
                    e => format!("client connection lost: {e}"),
                },
            };
        }
        let Some(node) = self.node.as_mut() else {
            return Turn::Go;
        };
        loop {
            let frame = match self.client.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Turn::Go,
                Err(e) => return self.refuse_client(FRAME_ERROR, &e.to_string()),
            };
            let update =
                frame.method() == Some(crate::amqp::terminate::wire::id::CONNECTION_UPDATE_SECRET);
            if update {
                self.creds.update_secret = Some(frame.bytes.clone());
            }
            match self
                .relay
                .client_frame(frame, &mut self.client.wbuf, &mut node.side.wbuf)
            {
                Ok(()) => {}
                Err(Event::ClientClosing) => self.closing = true,
                Err(Event::Closed) => {
                    return Turn::End {
                        cause: Cause::None,
                        how: "closed".into(),
                    }
                }
                Err(Event::ClientViolation(why)) => {
                    return self.refuse_client(crate::amqp::methods::FRAME_ERROR, &why)
                }
                Err(other) => {
                    return Turn::End {
                        cause: Cause::ClientAbort,
                        how: format!("{other:?}"),
                    }
                }
            }
        }
    }

    pub(super) fn node_frames(&mut self, read: bool) -> Turn {
        let Some(node) = self.node.as_mut() else {
            return Turn::Go;
        };
        let name = node.server().full_name.clone();
        let read = if read { node.side.read_some() } else { Ok(0) };
        if let Err(e) = read {
            if self.closing {
                return Turn::End {
                    cause: Cause::ServerAbort,
                    how: format!("{name} closed during the close handshake"),
                };
            }
            return Turn::Move {
                why: match e {
                    SideError::Eof => format!("{name} closed the connection"),
                    e => format!("connection to {name} lost: {e}"),
                },
                planned: false,
            };
        }
        loop {
            let frame = match node.side.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Turn::Go,
                Err(e) => {
                    return Turn::Move {
                        why: format!("{name} sent a bad frame: {e}"),
                        planned: false,
                    }
                }
            };
            match self
                .relay
                .node_frame(frame, &mut self.client.wbuf, &mut node.side.wbuf)
            {
                Ok(()) => {}
                Err(Event::NodeForced(text)) if !self.closing => {
                    return Turn::Move {
                        why: format!("{name} closed the connection: {text}"),
                        planned: false,
                    }
                }
                Err(Event::NodeClosed(_)) | Err(Event::NodeForced(_)) => self.closing = true,
                Err(Event::Closed) => {
                    let _ = self.client.write_some();
                    return Turn::End {
                        cause: Cause::None,
                        how: "closed".into(),
                    };
                }
                Err(other) => {
                    return Turn::End {
                        cause: Cause::ServerAbort,
                        how: format!("{other:?}"),
                    }
                }
            }
        }
    }

    /// Heartbeats out, liveness in, and the server's admin state.
    pub(super) fn on_timer(&mut self, server: &Arc<ServerState>) -> Turn {
        let now = Instant::now();
        self.client.release_idle();
        if let Some(node) = self.node.as_mut() {
            node.side.release_idle();
        }
        if self.client_heartbeat > 0 {
            let h = Duration::from_secs(u64::from(self.client_heartbeat));
            if now >= self.client.last_read + 2 * h + HEARTBEAT_SLACK {
                return Turn::End {
                    cause: Cause::ClientTimeout,
                    how: "client missed heartbeats".into(),
                };
            }
            if now >= self.client.last_write + h / 2 {
                self.client.wbuf.extend_from_slice(&HEARTBEAT);
            }
        }
        if let Some(node) = self.node.as_mut() {
            let h = node.heartbeat;
            if !h.is_zero() {
                if now >= node.side.last_read + 2 * h + HEARTBEAT_SLACK && !self.closing {
                    return Turn::Move {
                        why: format!("{} stopped answering (missed heartbeats)", server.full_name),
                        planned: false,
                    };
                }
                if now >= node.side.last_write + h / 2 {
                    node.side.wbuf.extend_from_slice(&HEARTBEAT);
                }
            }
        }
        match server.admin() {
            AdminState::Ready => Turn::Go,
            _ if self.closing => Turn::Go,
            state => Turn::Move {
                why: format!(
                    "{} is in {} (admin)",
                    server.full_name,
                    if state == AdminState::Drain {
                        "DRAIN"
                    } else {
                        "MAINT"
                    }
                ),
                planned: true,
            },
        }
    }

    /// Tells the client it broke the protocol (`connection.close` with `code`), and ends.
    pub(super) fn refuse_client(&mut self, code: u16, why: &str) -> Turn {
        self.client
            .wbuf
            .extend_from_slice(&connection_close(code, why));
        let _ = self.client.write_some();
        Turn::End {
            cause: Cause::ClientAbort,
            how: format!("told the client (connection.close {code}): {why}"),
        }
    }
}

/// The next time heartbeats or liveness need a look, or the admin poll.
pub(super) fn next_timer(
    client: &Side,
    client_heartbeat: u16,
    node: &Node,
    admin_poll: Instant,
) -> Instant {
    let mut at = admin_poll;
    if client_heartbeat > 0 {
        let h = Duration::from_secs(u64::from(client_heartbeat));
        at = at.min(client.last_write + h / 2);
        at = at.min(client.last_read + 2 * h + HEARTBEAT_SLACK);
    }
    if !node.heartbeat.is_zero() {
        let h = node.heartbeat;
        at = at.min(node.side.last_write + h / 2);
        at = at.min(node.side.last_read + 2 * h + HEARTBEAT_SLACK);
    }
    at
}
