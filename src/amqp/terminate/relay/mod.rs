//! The frames of a terminated session in its data phase: what each frame from the client
//! or from the node changes in the session's state, and what is written to each side.
//!
//! Pure: the caller reads frames off the sockets, hands them here with the two output
//! buffers, and acts on the [`Event`]s returned (a move, the end of the session). Hot
//! frames (publish, deliver, ack, confirms, bodies) are handled on their raw bytes; other
//! methods are decoded with `amq-protocol`.

use amq_protocol::protocol::{basic, channel, confirm, parse_class, queue, AMQPClass};
use bytes::{Bytes, BytesMut};

use super::channel::{Channel, Phase, Request};
use super::channels::Channels;

mod node;
use super::topology::Topology;
use super::wire::{self, id, put_patched, RawFrame, FIRST_ARG};
use crate::amqp::frame::{FRAME_BODY, FRAME_HEADER, FRAME_METHOD};
use crate::amqp::methods::encode_class;

/// What the session must do after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The node closed the connection on an operator's order (320: shutdown, drain,
    /// `close_connection`): move the session.
    NodeForced(String),
    /// The node closed the connection for the client's fault; the close was passed on and
    /// the session ends once the client answers.
    NodeClosed(String),
    /// The client closed the connection; passed on, the session ends at `close-ok`.
    ClientClosing,
    /// The close handshake is over.
    Closed,
    /// The client sent something warren cannot pass on.
    ClientViolation(String),
}

/// The session's state above the sockets.
#[derive(Debug)]
pub struct Relay {
    pub channels: Channels,
    pub topology: Topology,
    /// Prefix of the names warren gives server-named queues and consumer tags.
    names: String,
    named: u64,
    /// The channel number warren keeps for itself on the node (replay).
    pub control_channel: u16,
    /// Messages published again after moves, and messages the node refused unseen.
    pub republished: u64,
}

impl Relay {
    /// `unique` makes the names warren generates unique across sessions and processes.
    pub fn new(unique: u64, control_channel: u16) -> Relay {
        Relay {
            channels: Channels::default(),
            topology: Topology::default(),
            names: format!("{unique:016x}"),
            named: 0,
            control_channel,
            republished: 0,
        }
    }

    fn name(&mut self, what: &str) -> String {
        self.named += 1;
        format!("warren.{what}-{}-{}", self.names, self.named)
    }

    /// Bytes of publishes kept for republishing, over all channels.
    pub fn kept_bytes(&self) -> u64 {
        self.channels.values().map(|c| c.publishes.bytes()).sum()
    }

    /// A frame from the client.
    pub fn client_frame(
        &mut self,
        frame: RawFrame,
        to_client: &mut BytesMut,
        to_node: &mut BytesMut,
    ) -> Result<(), Event> {
        if frame.is_heartbeat() {
            return Ok(());
        }
        if frame.channel == 0 {
            return self.client_connection_method(frame, to_node);
        }
        if frame.channel == self.control_channel {
            return Err(Event::ClientViolation(format!(
                "channel {} is beyond the negotiated channel_max",
                frame.channel
            )));
        }
        let ch = self.channels.get_or_default(frame.channel);
        match frame.kind {
            FRAME_HEADER | FRAME_BODY => {
                if ch.publishing && !ch.tx {
                    let size = (frame.kind == FRAME_HEADER)
                        .then(|| wire::body_size(&frame))
                        .flatten();
                    ch.publishes.content(&frame.bytes, size);
                }
                to_node.extend_from_slice(&frame.bytes);
                return Ok(());
            }
            FRAME_METHOD => {}
            _ => return Ok(()),
        }
        let Some(method) = frame.method() else {
            return Err(Event::ClientViolation("method frame too short".into()));
        };
        ch.publishing = false;
        match method {
            id::BASIC_PUBLISH => {
                if ch.tx {
                    ch.tx_dirty = true;
                } else {
                    if !ch.confirms_on {
                        // Lazily, so a channel that goes transactional first can.
                        put_method(to_node, frame.channel, &confirm_select(true));
                        ch.confirms_on = true;
                    }
                    ch.publishes.publish(&frame.bytes);
                }
                ch.publishing = true;
                to_node.extend_from_slice(&frame.bytes);
            }
            id::BASIC_ACK | id::BASIC_NACK | id::BASIC_REJECT => {
                let Some((tag, multiple)) = wire::ack_fields(&frame) else {
                    return Err(Event::ClientViolation("short basic.ack".into()));
                };
                ch.tx_dirty |= ch.tx;
                ch.outstanding.settle(tag, multiple);
                match ch.tags.settle(tag, multiple) {
                    super::tags::Settle::Forward(node) => {
                        put_patched(to_node, &frame.bytes, FIRST_ARG, node)
                    }
                    super::tags::Settle::Stale => {}
                }
            }
            _ => return self.client_method(frame, method, to_client, to_node),
        }
        Ok(())
    }

    fn client_connection_method(
        &mut self,
        frame: RawFrame,
        to_node: &mut BytesMut,
    ) -> Result<(), Event> {
        match frame.method() {
            Some(id::CONNECTION_CLOSE) => {
                to_node.extend_from_slice(&frame.bytes);
                Err(Event::ClientClosing)
            }
            Some(id::CONNECTION_CLOSE_OK) => {
                to_node.extend_from_slice(&frame.bytes);
                Err(Event::Closed)
            }
            Some(id::CONNECTION_UPDATE_SECRET) | Some(id::CONNECTION_UPDATE_SECRET_OK) => {
                to_node.extend_from_slice(&frame.bytes);
                Ok(())
            }
            // blocked/unblocked from a client, or anything else on channel 0 after the
            // handshake: the node judges it.
            _ => {
                to_node.extend_from_slice(&frame.bytes);
                Ok(())
            }
        }
    }

    fn client_method(
        &mut self,
        frame: RawFrame,
        method: wire::MethodId,
        to_client: &mut BytesMut,
        to_node: &mut BytesMut,
    ) -> Result<(), Event> {
        let number = frame.channel;
        let parsed = match parse_class(frame.payload()) {
            Ok((_, class)) => class,
            Err(_) => {
                return Err(Event::ClientViolation(format!(
                    "undecodable method {}.{} on channel {number}",
                    method.0, method.1
                )))
            }
        };
        // Names warren gives, so the queue or consumer can be declared again elsewhere.
        let (parsed, rewritten) = match parsed {
            AMQPClass::Queue(queue::AMQPMethod::Declare(mut d))
                if d.queue.as_str().is_empty() && !d.passive =>
            {
                d.queue = self.name("gen").into();
                (AMQPClass::Queue(queue::AMQPMethod::Declare(d)), true)
            }
            AMQPClass::Basic(basic::AMQPMethod::Consume(mut c))
                if c.consumer_tag.as_str().is_empty() =>
            {
                c.consumer_tag = self.name("ctag").into();
                (AMQPClass::Basic(basic::AMQPMethod::Consume(c)), true)
            }
            other => (other, false),
        };
        let sent = if rewritten {
            let mut out = BytesMut::new();
            put_method(&mut out, number, &parsed);
            out.freeze()
        } else {
            frame.bytes.clone()
        };
        let ch = self.channels.get_or_default(number);
        let (answered, record, no_ack) = match &parsed {
            AMQPClass::Channel(channel::AMQPMethod::Open(_)) => {
                *ch = Channel::new();
                (true, None, false)
            }
            AMQPClass::Channel(channel::AMQPMethod::Close(_)) => {
                ch.phase = Phase::Closing;
                (true, None, false)
            }
            AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)) => {
                let upstream_gone = ch.phase == Phase::ClosedByNode && ch.closed_upstream;
                self.channels.remove(&number);
                if !upstream_gone {
                    to_node.extend_from_slice(&sent);
                }
                return Ok(());
            }
            AMQPClass::Channel(channel::AMQPMethod::Flow(f)) => {
                ch.flow_active = f.active;
                (true, None, false)
            }
            AMQPClass::Channel(channel::AMQPMethod::FlowOk(_)) => (false, None, false),
            AMQPClass::Exchange(m) => {
                let nowait = match m {
                    amq_protocol::protocol::exchange::AMQPMethod::Declare(d) => d.nowait,
                    amq_protocol::protocol::exchange::AMQPMethod::Delete(d) => d.nowait,
                    amq_protocol::protocol::exchange::AMQPMethod::Bind(d) => d.nowait,
                    amq_protocol::protocol::exchange::AMQPMethod::Unbind(d) => d.nowait,
                    _ => false,
                };
                if nowait {
                    self.topology.record(&parsed);
                    (false, None, false)
                } else {
                    (true, Some(parsed.clone()), false)
                }
            }
            AMQPClass::Queue(m) => {
                let nowait = match m {
                    queue::AMQPMethod::Declare(d) => d.nowait,
                    queue::AMQPMethod::Delete(d) => d.nowait,
                    queue::AMQPMethod::Bind(d) => d.nowait,
                    queue::AMQPMethod::Purge(d) => d.nowait,
                    _ => false,
                };
                if nowait {
                    self.topology.record(&parsed);
                    (false, None, false)
                } else {
                    (true, Some(parsed.clone()), false)
                }
            }
            AMQPClass::Basic(basic::AMQPMethod::Qos(_)) => (true, Some(parsed.clone()), false),
            AMQPClass::Basic(basic::AMQPMethod::Consume(c)) => {
                if c.nowait {
                    ch.accepted(&parsed);
                    (false, None, false)
                } else {
                    (true, Some(parsed.clone()), false)
                }
            }
            AMQPClass::Basic(basic::AMQPMethod::Cancel(c)) => {
                ch.forget_consumer(c.consumer_tag.as_str());
                (!c.nowait, None, false)
            }
            AMQPClass::Basic(basic::AMQPMethod::Get(g)) => (true, None, g.no_ack),
            AMQPClass::Basic(basic::AMQPMethod::Recover(_)) => (true, None, false),
            AMQPClass::Basic(basic::AMQPMethod::RecoverAsync(_)) => (false, None, false),
            AMQPClass::Confirm(confirm::AMQPMethod::Select(s)) => {
                ch.publishes.client_selects_confirms();
                ch.confirms_on = true;
                (!s.nowait, None, false)
            }
            AMQPClass::Tx(amq_protocol::protocol::tx::AMQPMethod::Select(_)) => {
                (true, Some(parsed.clone()), false)
            }
            AMQPClass::Tx(_) => (true, Some(parsed.clone()), false),
            _ => (false, None, false),
        };
        let _ = to_client;
        if answered {
            ch.awaiting.push_back(Request {
                id: method,
                frame: sent.clone(),
                record,
                no_ack,
            });
        }
        to_node.extend_from_slice(&sent);
        Ok(())
    }
}

/// `confirm.select`.
pub fn confirm_select(nowait: bool) -> AMQPClass {
    AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait }))
}

/// Appends a method frame.
pub fn put_method(out: &mut BytesMut, channel: u16, method: &AMQPClass) {
    // Encoding a well-formed method cannot fail; an empty payload would be refused by the
    // peer rather than crash warren if it ever did.
    wire::put_frame(
        out,
        FRAME_METHOD,
        channel,
        &encode_class(method).unwrap_or_default(),
    );
}

/// A method frame as bytes.
pub fn method_frame(channel: u16, method: &AMQPClass) -> Bytes {
    let mut out = BytesMut::new();
    put_method(&mut out, channel, method);
    out.freeze()
}

/// Reply code and text of a `connection.close` or `channel.close` payload.
pub fn close_fields(payload: &[u8]) -> (u16, String) {
    let code = payload
        .get(4..6)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let text = wire::short_str(payload, 6)
        .map(|(t, _)| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    (code, text)
}

/// Class and method ids named by a `close` payload (what the closing side objected to).
pub(super) fn close_ids(payload: &[u8]) -> (u16, u16) {
    let after = wire::short_str(payload, 6).map_or(payload.len(), |(_, end)| end);
    match payload.get(after..after + 4) {
        Some(b) => (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        ),
        None => (0, 0),
    }
}

#[cfg(test)]
mod tests;
