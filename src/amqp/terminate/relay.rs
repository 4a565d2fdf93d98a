//! The frames of a terminated session in its data phase: what each frame from the client
//! or from the node changes in the session's state, and what is written to each side.
//!
//! Pure: the caller reads frames off the sockets, hands them here with the two output
//! buffers, and acts on the [`Event`]s returned (a move, the end of the session). Hot
//! frames (publish, deliver, ack, confirms, bodies) are handled on their raw bytes; other
//! methods are decoded with `amq-protocol`.

use std::collections::BTreeMap;

use amq_protocol::protocol::{basic, channel, confirm, parse_class, queue, AMQPClass};
use bytes::{Bytes, BytesMut};

use super::channel::{Channel, Phase, Request};
use super::topology::Topology;
use super::wire::{self, id, put_patched, RawFrame, FIRST_ARG};
use crate::amqp::frame::{FRAME_BODY, FRAME_HEADER, FRAME_METHOD};
use crate::amqp::methods::{encode_class, CONNECTION_FORCED};

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
    pub channels: BTreeMap<u16, Channel>,
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
            channels: BTreeMap::new(),
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
        let ch = self.channels.entry(frame.channel).or_default();
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
        let ch = self.channels.entry(number).or_default();
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

    /// A frame from the node.
    pub fn node_frame(
        &mut self,
        frame: RawFrame,
        to_client: &mut BytesMut,
        to_node: &mut BytesMut,
    ) -> Result<(), Event> {
        if frame.is_heartbeat() {
            return Ok(());
        }
        if frame.channel == 0 {
            return match frame.method() {
                Some(id::CONNECTION_CLOSE) => {
                    let (code, text) = close_fields(frame.payload());
                    if code == CONNECTION_FORCED {
                        to_node.extend_from_slice(&crate::amqp::methods::connection_close_ok());
                        Err(Event::NodeForced(format!("{code} {text}")))
                    } else {
                        to_client.extend_from_slice(&frame.bytes);
                        Err(Event::NodeClosed(format!("{code} {text}")))
                    }
                }
                Some(id::CONNECTION_CLOSE_OK) => {
                    to_client.extend_from_slice(&frame.bytes);
                    Err(Event::Closed)
                }
                _ => {
                    to_client.extend_from_slice(&frame.bytes);
                    Ok(())
                }
            };
        }
        let Some(ch) = self.channels.get_mut(&frame.channel) else {
            // A channel warren does not know (the control channel's leftovers): not the
            // client's business.
            return Ok(());
        };
        if frame.kind != FRAME_METHOD {
            if ch.incoming.is_empty() {
                to_client.extend_from_slice(&frame.bytes);
                return Ok(());
            }
            let left = if frame.kind == FRAME_HEADER {
                wire::body_size(&frame).unwrap_or(0)
            } else {
                ch.incoming_left
                    .unwrap_or(0)
                    .saturating_sub(frame.payload().len() as u64)
            };
            ch.incoming.push(frame.bytes);
            ch.incoming_left = Some(left);
            if left == 0 {
                for f in ch.incoming.drain(..) {
                    to_client.extend_from_slice(&f);
                }
                ch.incoming_left = None;
            }
            return Ok(());
        }
        match frame.method() {
            Some(id::BASIC_DELIVER) => {
                let Some(at) = wire::deliver_tag_offset(&frame.bytes) else {
                    return Ok(());
                };
                let node_tag = wire::u64_at(&frame.bytes, at).unwrap_or(0);
                let tag = ch.tags.deliver(node_tag);
                let needs_ack =
                    wire::deliver_consumer_tag(&frame.bytes).is_some_and(|t| ch.needs_ack(t));
                ch.outstanding.deliver(tag, needs_ack);
                hold(ch, patched(&frame.bytes, at, tag));
            }
            Some(id::BASIC_GET_OK) => {
                let no_ack = ch.awaiting.pop_front().is_some_and(|r| r.no_ack);
                let node_tag = wire::u64_at(&frame.bytes, FIRST_ARG).unwrap_or(0);
                let tag = ch.tags.deliver(node_tag);
                ch.outstanding.deliver(tag, !no_ack);
                hold(ch, patched(&frame.bytes, FIRST_ARG, tag));
            }
            Some(id::BASIC_RETURN) => hold(ch, frame.bytes),
            Some(id::BASIC_ACK) | Some(id::BASIC_NACK) => {
                // Publisher confirms: on the client's own sequence, if it asked.
                let ack = frame.method() == Some(id::BASIC_ACK);
                if let Some((tag, multiple)) = wire::ack_fields(&frame) {
                    if let Some(c) = ch.publishes.node_confirm(tag, multiple, ack) {
                        let method = if c.ack {
                            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                                delivery_tag: c.tag,
                                multiple: c.multiple,
                            }))
                        } else {
                            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                                delivery_tag: c.tag,
                                multiple: c.multiple,
                                requeue: false,
                            }))
                        };
                        put_method(to_client, frame.channel, &method);
                    }
                }
            }
            Some(id::BASIC_CANCEL) => {
                // The node cancelled a consumer (its queue was deleted, its node left).
                if let Ok((_, AMQPClass::Basic(basic::AMQPMethod::Cancel(c)))) =
                    parse_class(frame.payload())
                {
                    ch.forget_consumer(c.consumer_tag.as_str());
                }
                to_client.extend_from_slice(&frame.bytes);
            }
            Some(id::BASIC_CANCEL_OK) if ch.cancelling > 0 => ch.cancelling -= 1,
            Some(id::CHANNEL_CLOSE) => {
                let (code, text) = close_fields(frame.payload());
                ch.phase = Phase::ClosedByNode;
                ch.awaiting.clear();
                match ch.tags.client_tag_text(&text) {
                    Some(text) => {
                        let (class_id, method_id) = close_ids(frame.payload());
                        put_method(
                            to_client,
                            frame.channel,
                            &AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                                reply_code: code,
                                reply_text: text.as_str().into(),
                                class_id,
                                method_id,
                            })),
                        );
                    }
                    None => to_client.extend_from_slice(&frame.bytes),
                }
            }
            Some(id::CHANNEL_CLOSE_OK) => {
                self.channels.remove(&frame.channel);
                to_client.extend_from_slice(&frame.bytes);
            }
            Some(id::CHANNEL_FLOW) => to_client.extend_from_slice(&frame.bytes),
            Some(_) => {
                // An answer to the oldest request.
                if let Some(request) = ch.awaiting.pop_front() {
                    self.answered(frame.channel, request, &frame);
                }
                to_client.extend_from_slice(&frame.bytes);
            }
            None => to_client.extend_from_slice(&frame.bytes),
        }
        Ok(())
    }

    /// The node answered `request` on channel `number` with `frame`.
    fn answered(&mut self, number: u16, request: Request, frame: &RawFrame) {
        let Some(ch) = self.channels.get_mut(&number) else {
            return;
        };
        match (request.id, frame.method()) {
            (id::CHANNEL_OPEN, Some(id::CHANNEL_OPEN_OK)) => ch.phase = Phase::Open,
            (id::TX_SELECT, _) => ch.tx = true,
            (id::TX_COMMIT, _) | (id::TX_ROLLBACK, _) => ch.tx_dirty = false,
            _ => {}
        }
        match request.record {
            Some(method @ AMQPClass::Basic(_)) => ch.accepted(&method),
            Some(method) => self.topology.record(&method),
            None => {}
        }
    }
}

/// Starts holding a message from the node (its method frame) until its content is whole.
fn hold(ch: &mut Channel, method: Bytes) {
    ch.incoming.clear();
    ch.incoming.push(method);
    ch.incoming_left = None;
}

/// `frame` with the u64 at `at` replaced.
fn patched(frame: &[u8], at: usize, value: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.len());
    put_patched(&mut out, frame, at, value);
    out.freeze()
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
fn close_ids(payload: &[u8]) -> (u16, u16) {
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
mod tests {
    use super::*;
    use crate::amqp::terminate::wire::cut;

    fn frames(bytes: &BytesMut) -> Vec<RawFrame> {
        let mut buf = bytes.clone();
        let mut out = Vec::new();
        while let Ok(Some(f)) = cut(&mut buf, 0) {
            out.push(f);
        }
        out
    }

    fn one(channel: u16, method: &AMQPClass) -> RawFrame {
        frames(&{
            let mut b = BytesMut::new();
            put_method(&mut b, channel, method);
            b
        })
        .remove(0)
    }

    fn content(kind: u8, channel: u16, payload: &[u8]) -> RawFrame {
        let mut b = BytesMut::new();
        wire::put_frame(&mut b, kind, channel, payload);
        frames(&b).remove(0)
    }

    fn header(channel: u16, size: u64) -> RawFrame {
        let mut p = vec![0, 60, 0, 0];
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        content(FRAME_HEADER, channel, &p)
    }

    fn open_channel(r: &mut Relay, n: u16) {
        let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
        let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
        r.client_frame(one(n, &open), &mut c, &mut s).unwrap();
        let ok = AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}));
        r.node_frame(one(n, &ok), &mut c, &mut s).unwrap();
        assert_eq!(r.channels[&n].phase, Phase::Open);
    }

    fn deliver(tag: u64) -> AMQPClass {
        AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: "c".into(),
            delivery_tag: tag,
            redelivered: false,
            exchange: "".into(),
            routing_key: "q".into(),
        }))
    }

    #[test]
    fn a_delivery_reaches_the_client_whole_with_its_tag_on_the_client_sequence() {
        let mut r = Relay::new(1, 2047);
        open_channel(&mut r, 1);
        let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
        r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
        r.node_frame(header(1, 4), &mut c, &mut s).unwrap();
        r.node_frame(content(FRAME_BODY, 1, b"ab"), &mut c, &mut s)
            .unwrap();
        assert!(c.is_empty(), "half a message was passed on");
        r.node_frame(content(FRAME_BODY, 1, b"cd"), &mut c, &mut s)
            .unwrap();
        assert_eq!(frames(&c).len(), 4);
        // A new node: its tag 1 is the client's tag 2; an ack of tag 1 (old node) is dropped.
        r.channels.get_mut(&1).unwrap().new_epoch();
        c.clear();
        r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
        r.node_frame(header(1, 0), &mut c, &mut s).unwrap();
        let f = frames(&c).remove(0);
        let at = wire::deliver_tag_offset(&f.bytes).unwrap();
        assert_eq!(wire::u64_at(&f.bytes, at), Some(2));
        let ack = |t| {
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: t,
                multiple: false,
            }))
        };
        r.client_frame(one(1, &ack(1)), &mut c, &mut s).unwrap();
        assert!(
            s.is_empty(),
            "an ack of the old node's delivery was passed on"
        );
        r.client_frame(one(1, &ack(2)), &mut c, &mut s).unwrap();
        let sent = frames(&s).remove(0);
        assert_eq!(wire::ack_fields(&sent), Some((1, false)));
    }

    #[test]
    fn a_message_lost_mid_way_is_not_half_delivered() {
        let mut r = Relay::new(1, 2047);
        open_channel(&mut r, 1);
        let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
        r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
        r.node_frame(header(1, 10), &mut c, &mut s).unwrap();
        r.channels.get_mut(&1).unwrap().new_epoch();
        r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
        r.node_frame(header(1, 1), &mut c, &mut s).unwrap();
        r.node_frame(content(FRAME_BODY, 1, b"x"), &mut c, &mut s)
            .unwrap();
        assert_eq!(
            frames(&c).len(),
            3,
            "only the whole message of the new node"
        );
    }

    #[test]
    fn publishes_are_kept_until_confirmed_and_confirms_follow_the_client_sequence() {
        let mut r = Relay::new(1, 2047);
        open_channel(&mut r, 1);
        let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
        r.client_frame(one(1, &confirm_select(false)), &mut c, &mut s)
            .unwrap();
        let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: "q".into(),
            mandatory: false,
            immediate: false,
        }));
        for _ in 0..2 {
            r.client_frame(one(1, &publish), &mut c, &mut s).unwrap();
            r.client_frame(header(1, 1), &mut c, &mut s).unwrap();
            r.client_frame(content(FRAME_BODY, 1, b"m"), &mut c, &mut s)
                .unwrap();
        }
        assert_eq!(r.channels[&1].publishes.unconfirmed(), 2);
        let node_ack = AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: 1,
            multiple: false,
        }));
        r.node_frame(one(1, &node_ack), &mut c, &mut s).unwrap();
        assert_eq!(r.channels[&1].publishes.unconfirmed(), 1);
        let told = frames(&c).pop().unwrap();
        assert_eq!(told.method(), Some(id::BASIC_ACK));
        assert_eq!(wire::ack_fields(&told), Some((1, false)));
    }

    #[test]
    fn server_named_queues_get_a_name_from_warren_and_are_recorded_on_declare_ok() {
        let mut r = Relay::new(7, 2047);
        open_channel(&mut r, 1);
        let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
        let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "".into(),
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: true,
            nowait: false,
            arguments: Default::default(),
        }));
        r.client_frame(one(1, &declare), &mut c, &mut s).unwrap();
        let sent = frames(&s).remove(0);
        let name = match parse_class(sent.payload()) {
            Ok((_, AMQPClass::Queue(queue::AMQPMethod::Declare(d)))) => d.queue.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(name.starts_with("warren.gen-"), "{name}");
        assert!(
            r.topology.entries().is_empty(),
            "recorded before the node accepted it"
        );
        let ok = AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
            queue: name.as_str().into(),
            message_count: 0,
            consumer_count: 0,
        }));
        r.node_frame(one(1, &ok), &mut c, &mut s).unwrap();
        assert_eq!(r.topology.entries().len(), 1);
        assert!(r.topology.connection_bound_queue().is_some());
    }

    #[test]
    fn an_unknown_tag_close_from_the_node_names_the_clients_tag() {
        let mut r = Relay::new(1, 2047);
        open_channel(&mut r, 1);
        let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
        for t in 1..=3 {
            r.node_frame(one(1, &deliver(t)), &mut c, &mut s).unwrap();
            r.node_frame(header(1, 0), &mut c, &mut s).unwrap();
        }
        r.channels.get_mut(&1).unwrap().new_epoch();
        c.clear();
        let close = AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: 406,
            reply_text: "PRECONDITION_FAILED - unknown delivery tag 7".into(),
            class_id: 60,
            method_id: 80,
        }));
        r.node_frame(one(1, &close), &mut c, &mut s).unwrap();
        let told = frames(&c).remove(0);
        assert_eq!(
            close_fields(told.payload()),
            (
                406,
                "PRECONDITION_FAILED - unknown delivery tag 10".to_string()
            )
        );
    }
}
