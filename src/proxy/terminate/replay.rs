//! Rebuilding a session on a new node: topology on warren's own channel, then each open
//! channel with its modes, qos and consumers in order, then the unconfirmed publishes in
//! order, then the requests the old node never answered. Every answer is checked; the
//! first refusal makes the move fail.

use amq_protocol::protocol::{channel, AMQPClass};
use bytes::BytesMut;
use tokio::time::Instant;

use super::io::Side;
use crate::amqp::terminate::channel::Phase;
use crate::amqp::terminate::relay::{close_fields, confirm_select, put_method, Relay};
use crate::amqp::terminate::wire::id;

/// Replays `relay` onto the node behind `side`. Frames the node sends meanwhile that are
/// not the answers awaited (deliveries to consumers already replayed) go through the relay
/// into `to_client`. Returns how many messages were published again.
pub async fn replay(
    side: &mut Side,
    relay: &mut Relay,
    to_client: &mut BytesMut,
    deadline: Instant,
) -> Result<u64, String> {
    let control = relay.control_channel;
    if !relay.topology.entries().is_empty() {
        let entries = relay.topology.entries().to_vec();
        put_method(&mut side.wbuf, control, &channel_open());
        expect(side, relay, to_client, control, "channel.open", deadline).await?;
        for entry in &entries {
            put_method(&mut side.wbuf, control, &entry.method());
            expect(side, relay, to_client, control, &entry.describe(), deadline).await?;
        }
        put_method(&mut side.wbuf, control, &channel_close());
        expect(side, relay, to_client, control, "channel.close", deadline).await?;
    }
    let numbers: Vec<u16> = relay.channels.keys().copied().collect();
    for ch in relay.channels.values_mut() {
        ch.new_epoch();
    }
    for &n in &numbers {
        let Some(ch) = relay.channels.get_mut(&n) else {
            continue;
        };
        match ch.phase {
            // Its `channel.open` is a request not answered yet: sent again below.
            Phase::Opening => continue,
            Phase::ClosedByNode => {
                ch.closed_upstream = true;
                continue;
            }
            Phase::Open | Phase::Closing => {}
        }
        let mut steps: Vec<(AMQPClass, String)> =
            vec![(channel_open(), format!("channel.open {n}"))];
        if !ch.flow_active {
            steps.push((
                AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: false })),
                "channel.flow".into(),
            ));
        }
        if ch.tx {
            steps.push((
                AMQPClass::Tx(amq_protocol::protocol::tx::AMQPMethod::Select(
                    amq_protocol::protocol::tx::Select {},
                )),
                "tx.select".into(),
            ));
        } else if ch.publishes.client_confirms() || ch.publishes.unconfirmed() > 0 {
            steps.push((confirm_select(false), "confirm.select".into()));
            ch.confirms_on = true;
        }
        for op in &ch.ops {
            let what = match op {
                crate::amqp::terminate::channel::Op::Qos(q) => {
                    format!("basic.qos prefetch {}", q.prefetch_count)
                }
                crate::amqp::terminate::channel::Op::Consume(c) => {
                    format!("basic.consume '{}' on '{}'", c.consumer_tag, c.queue)
                }
            };
            steps.push((op.method(), what));
        }
        for (method, what) in steps {
            put_method(&mut side.wbuf, n, &method);
            expect(side, relay, to_client, n, &what, deadline).await?;
        }
    }
    let mut republished = 0u64;
    for ch in relay.channels.values_mut() {
        // Every channel's numbering starts again on the new node, kept messages or not.
        let kept = ch.publishes.new_epoch();
        if ch.tx {
            continue;
        }
        for message in kept {
            side.wbuf.extend_from_slice(&message.frames);
            republished += 1;
        }
    }
    for ch in relay.channels.values() {
        for request in &ch.awaiting {
            side.wbuf.extend_from_slice(&request.frame);
        }
    }
    side.flush_until(deadline)
        .await
        .map_err(|e| format!("lost while republishing: {e}"))?;
    relay.republished += republished;
    Ok(republished)
}

/// Sends what is buffered and reads until the answer on `channel` arrives.
async fn expect(
    side: &mut Side,
    relay: &mut Relay,
    to_client: &mut BytesMut,
    channel: u16,
    what: &str,
    deadline: Instant,
) -> Result<(), String> {
    side.flush_until(deadline)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    loop {
        let frame = side
            .read_frame(deadline)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if frame.is_heartbeat() {
            continue;
        }
        match (frame.channel, frame.method()) {
            (0, Some(id::CONNECTION_CLOSE)) => {
                let (code, text) = close_fields(frame.payload());
                return Err(format!(
                    "{what}: the node closed the connection: {code} {text}"
                ));
            }
            (c, Some(id::CHANNEL_CLOSE)) if c == channel => {
                let (code, text) = close_fields(frame.payload());
                return Err(format!("{what} refused: {code} {text}"));
            }
            (c, Some(_)) if c == channel => return Ok(()),
            _ => {
                // Deliveries to consumers replayed a moment ago, confirms...
                let mut to_node = BytesMut::new();
                let _ = relay.node_frame(frame, to_client, &mut to_node);
                side.wbuf.extend_from_slice(&to_node);
            }
        }
    }
}

fn channel_open() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))
}

fn channel_close() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
        reply_code: 200,
        reply_text: "replay done".into(),
        class_id: 0,
        method_id: 0,
    }))
}
