//! Frames from the node: deliveries held until whole and given the client's tags,
//! confirms put on the client's sequence, answers matched to the requests they answer.

use amq_protocol::protocol::{basic, channel, parse_class, AMQPClass};
use bytes::{Bytes, BytesMut};

use super::{close_fields, close_ids, put_method, Event, Relay};
use crate::amqp::frame::{FRAME_HEADER, FRAME_METHOD};
use crate::amqp::methods::CONNECTION_FORCED;
use crate::amqp::terminate::channel::{Channel, Phase, Request};
use crate::amqp::terminate::wire::{self, id, put_patched, RawFrame, FIRST_ARG};

impl Relay {
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
