//! One client channel's state in `amqp-terminate` mode: what must be replayed on a new
//! node (qos and consumers in their order, flow, confirm or tx mode), the requests the node
//! has not answered yet, the delivery-tag map and the publishes kept.

use std::collections::VecDeque;

use amq_protocol::protocol::{basic, AMQPClass};
use bytes::Bytes;

use super::publishes::Publishes;
use super::tags::TagMap;
use super::wire::MethodId;

/// A qos or consume the node accepted, in order: a `basic.qos` applies to the consumers
/// created after it, so the order is part of the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Qos(basic::Qos),
    Consume(basic::Consume),
}

impl Op {
    /// The method to send on replay (`nowait` off, so the answer can be checked).
    pub fn method(&self) -> AMQPClass {
        match self.clone() {
            Op::Qos(q) => AMQPClass::Basic(basic::AMQPMethod::Qos(q)),
            Op::Consume(mut c) => {
                c.nowait = false;
                AMQPClass::Basic(basic::AMQPMethod::Consume(c))
            }
        }
    }
}

/// A synchronous request sent to the node and not answered yet.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method the client sent.
    pub id: MethodId,
    /// Its frame as sent to the node, to send again after a move.
    pub frame: Bytes,
    /// What to record once the node says `-ok` (declares, binds, qos, consume…).
    pub record: Option<AMQPClass>,
    /// `basic.get` with `no-ack`: its `get-ok` needs no ack.
    pub no_ack: bool,
}

/// Which deliveries of the current epoch still wait for the client's ack, as flags over
/// consecutive client tags (most are settled in order, so the window stays short).
#[derive(Debug, Clone, Default)]
pub struct Outstanding {
    /// Client tag of `flags[0]`.
    start: u64,
    flags: VecDeque<bool>,
    count: u64,
}

impl Outstanding {
    pub fn deliver(&mut self, client_tag: u64, needs_ack: bool) {
        if self.flags.is_empty() {
            self.start = client_tag;
        }
        self.flags.push_back(needs_ack);
        self.count += u64::from(needs_ack);
        self.trim();
    }

    pub fn settle(&mut self, client_tag: u64, multiple: bool) {
        let end = if multiple && client_tag == 0 {
            self.start + self.flags.len() as u64
        } else {
            client_tag.saturating_add(1)
        };
        let first = if multiple { self.start } else { client_tag };
        for tag in first.max(self.start)..end {
            if let Some(flag) = self.flags.get_mut((tag - self.start) as usize) {
                if std::mem::take(flag) {
                    self.count -= 1;
                }
            }
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.flags.front() == Some(&false) {
            self.flags.pop_front();
            self.start += 1;
        }
    }

    /// Deliveries the client has not settled.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// A new epoch: the old node requeued whatever was outstanding.
    pub fn clear(&mut self) {
        self.flags.clear();
        self.count = 0;
    }
}

/// Where a channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `channel.open` sent, `open-ok` not yet seen.
    Opening,
    Open,
    /// The node closed it (an error); waiting for the client's `close-ok`.
    ClosedByNode,
    /// The client sent `channel.close`; waiting for the node's `close-ok`.
    Closing,
}

#[derive(Debug)]
pub struct Channel {
    pub phase: Phase,
    pub tags: TagMap,
    pub outstanding: Outstanding,
    pub publishes: Publishes,
    pub ops: Vec<Op>,
    /// Consumer tags with `no-ack`, whose deliveries need no ack.
    pub no_ack: Vec<String>,
    /// `channel.flow` as the client last set it (RabbitMQ refuses inactive flow, but it
    /// is replayed as set).
    pub flow_active: bool,
    /// `tx.select` was accepted: no confirms upstream, and a move with work since the
    /// last commit cannot be done.
    pub tx: bool,
    pub tx_dirty: bool,
    /// Warren has turned confirms on for this epoch's node channel.
    pub confirms_on: bool,
    pub awaiting: VecDeque<Request>,
    /// Content frames of a publish are expected next.
    pub publishing: bool,
    /// Consumers warren itself cancelled for a planned move: their `cancel-ok` is
    /// warren's, not the client's.
    pub cancelling: usize,
    /// The channel does not exist on the current node (the node closed it, then the
    /// session moved): the client's `close-ok` is not passed on.
    pub closed_upstream: bool,
    /// A message from the node (deliver, get-ok, return) whose frames have not all
    /// arrived: held back from the client until they have, so a node lost mid-message
    /// never leaves the client with half a message.
    pub incoming: Vec<Bytes>,
    /// Body bytes of `incoming` still to come (`None`: its header has not come yet).
    pub incoming_left: Option<u64>,
}

impl Channel {
    pub fn new() -> Channel {
        Channel {
            phase: Phase::Opening,
            tags: TagMap::default(),
            outstanding: Outstanding::default(),
            publishes: Publishes::new(),
            ops: Vec::new(),
            no_ack: Vec::new(),
            flow_active: true,
            tx: false,
            tx_dirty: false,
            confirms_on: false,
            awaiting: VecDeque::new(),
            publishing: false,
            cancelling: 0,
            closed_upstream: false,
            incoming: Vec::new(),
            incoming_left: None,
        }
    }

    /// The node accepted a request: record what it changed.
    pub fn accepted(&mut self, method: &AMQPClass) {
        match method {
            AMQPClass::Basic(basic::AMQPMethod::Qos(q)) => {
                if let Some(Op::Qos(last)) = self.ops.last_mut() {
                    if last.global == q.global {
                        *last = q.clone();
                        return;
                    }
                }
                self.ops.push(Op::Qos(q.clone()));
            }
            AMQPClass::Basic(basic::AMQPMethod::Consume(c)) => {
                if c.no_ack {
                    self.no_ack.push(c.consumer_tag.to_string());
                }
                self.ops.push(Op::Consume(c.clone()));
            }
            _ => {}
        }
    }

    /// A consumer is gone (cancelled by the client or by the node).
    pub fn forget_consumer(&mut self, tag: &str) {
        self.ops
            .retain(|op| !matches!(op, Op::Consume(c) if c.consumer_tag.as_str() == tag));
        self.no_ack.retain(|t| t != tag);
    }

    pub fn consumer_tags(&self) -> impl Iterator<Item = &str> {
        self.ops.iter().filter_map(|op| match op {
            Op::Consume(c) => Some(c.consumer_tag.as_str()),
            Op::Qos(_) => None,
        })
    }

    /// Whether a delivery for `consumer_tag` must be acked by the client.
    pub fn needs_ack(&self, consumer_tag: &[u8]) -> bool {
        !self.no_ack.iter().any(|t| t.as_bytes() == consumer_tag)
    }

    /// A new node connection.
    pub fn new_epoch(&mut self) {
        self.tags.new_epoch();
        self.outstanding.clear();
        self.confirms_on = false;
        self.cancelling = 0;
        self.incoming.clear();
        self.incoming_left = None;
    }
}

impl Default for Channel {
    fn default() -> Channel {
        Channel::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outstanding_counts_what_the_client_has_not_settled() {
        let mut o = Outstanding::default();
        for tag in 1..=5 {
            o.deliver(tag, tag != 3);
        }
        assert_eq!(o.count(), 4);
        o.settle(2, true);
        assert_eq!(o.count(), 2);
        o.settle(5, false);
        assert_eq!(o.count(), 1);
        o.settle(0, true);
        assert_eq!(o.count(), 0);
        o.deliver(6, true);
        o.clear();
        assert_eq!(o.count(), 0);
    }

    #[test]
    fn qos_replaces_the_previous_one_unless_a_consumer_came_between() {
        let mut c = Channel::new();
        let qos = |n| {
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: n,
                global: false,
            }))
        };
        c.accepted(&qos(10));
        c.accepted(&qos(50));
        assert_eq!(c.ops.len(), 1);
        c.accepted(&AMQPClass::Basic(basic::AMQPMethod::Consume(
            basic::Consume {
                queue: "q".into(),
                consumer_tag: "t".into(),
                no_local: false,
                no_ack: true,
                exclusive: false,
                nowait: false,
                arguments: Default::default(),
            },
        )));
        c.accepted(&qos(5));
        assert_eq!(c.ops.len(), 3);
        assert!(!c.needs_ack(b"t"));
        c.forget_consumer("t");
        assert_eq!(c.consumer_tags().count(), 0);
        assert!(c.needs_ack(b"t"));
    }
}
