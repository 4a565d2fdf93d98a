//! Delivery tags across node epochs.
//!
//! The client sees one increasing sequence of delivery tags per channel for the whole life
//! of its connection; each node connection (an epoch) numbers its deliveries from 1 again.
//! RabbitMQ numbers a channel's deliveries and `get-ok`s one by one, so within an epoch a
//! client tag is the node's tag plus the number of tags issued before the epoch began: the
//! map is one offset, not a table, and costs nothing per message.
//!
//! An ack for an earlier epoch is dropped: the node that delivered it is gone (or was left
//! after its consumers were cancelled and their deliveries settled) and has requeued what
//! was not acknowledged. A tag never issued is passed on shifted, past anything the node
//! issued, so the node closes the channel with its own `406 PRECONDITION_FAILED`; warren
//! shifts the number in that close's text back ([`TagMap::client_tag_text`]).

/// One channel's map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagMap {
    /// Client tags issued before the current epoch.
    base: u64,
    /// The last client tag issued.
    issued: u64,
}

/// What becomes of a client's ack, nack or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Send it to the node with this tag.
    Forward(u64),
    /// Drop it: the tag belongs to an earlier epoch.
    Stale,
}

impl TagMap {
    /// A delivery (or `get-ok`) of the current epoch with the node's tag: the client's tag.
    pub fn deliver(&mut self, node_tag: u64) -> u64 {
        let tag = self.base.saturating_add(node_tag);
        self.issued = self.issued.max(tag);
        tag
    }

    /// Translates the tag of a client's ack/nack/reject. `multiple` with tag 0 means "all
    /// outstanding", which in the current epoch is the node's tag 0 too.
    pub fn settle(&self, client_tag: u64, multiple: bool) -> Settle {
        if multiple && client_tag == 0 {
            return Settle::Forward(0);
        }
        if client_tag <= self.base {
            return Settle::Stale;
        }
        Settle::Forward(client_tag - self.base)
    }

    /// A new node connection: its deliveries continue the client's sequence.
    pub fn new_epoch(&mut self) {
        self.base = self.issued;
    }

    /// The last tag issued to the client.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Whether any delivery of the current epoch has been issued.
    pub fn epoch_has_deliveries(&self) -> bool {
        self.issued > self.base
    }

    /// RabbitMQ's text for an unknown tag names the node's tag; the client must read its
    /// own. `PRECONDITION_FAILED - unknown delivery tag 3` becomes `... tag 103`.
    pub fn client_tag_text(&self, text: &str) -> Option<String> {
        const WORDS: &str = "unknown delivery tag ";
        let at = text.find(WORDS)? + WORDS.len();
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let node: u64 = digits.parse().ok()?;
        Some(format!(
            "{}{}{}",
            &text[..at],
            node.saturating_add(self.base),
            &text[at + digits.len()..]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Deliver,
        NewEpoch,
        Ack(u64, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Deliver),
            1 => Just(Op::NewEpoch),
            3 => (0u64..60, any::<bool>()).prop_map(|(t, m)| Op::Ack(t, m)),
        ]
    }

    proptest! {
        /// Against a model that keeps every issued tag's (epoch, node tag) in a table.
        #[test]
        fn the_offset_map_agrees_with_a_full_table(ops in proptest::collection::vec(op(), 0..200)) {
            let mut map = TagMap::default();
            let mut table: Vec<(u32, u64)> = Vec::new(); // index = client tag - 1
            let (mut epoch, mut node_next) = (0u32, 1u64);
            for op in ops {
                match op {
                    Op::Deliver => {
                        let client = map.deliver(node_next);
                        table.push((epoch, node_next));
                        prop_assert_eq!(client, table.len() as u64, "client tags are consecutive");
                        node_next += 1;
                    }
                    Op::NewEpoch => {
                        map.new_epoch();
                        epoch += 1;
                        node_next = 1;
                    }
                    Op::Ack(tag, multiple) => {
                        let got = map.settle(tag, multiple);
                        if multiple && tag == 0 {
                            prop_assert_eq!(got, Settle::Forward(0));
                        } else if tag == 0 {
                            prop_assert_eq!(got, Settle::Stale);
                        } else if let Some(&(e, node)) = table.get(tag as usize - 1) {
                            if e == epoch {
                                prop_assert_eq!(got, Settle::Forward(node));
                            } else {
                                prop_assert_eq!(got, Settle::Stale);
                            }
                        } else {
                            // Never issued: forwarded past what the node issued, so the node
                            // itself answers 406, and its text maps back to the client's tag.
                            let Settle::Forward(node) = got else {
                                return Err(TestCaseError::fail("an unknown tag must reach the node"));
                            };
                            prop_assert!(node >= node_next, "node tag {} was issued", node);
                            let text = format!("PRECONDITION_FAILED - unknown delivery tag {node}");
                            prop_assert_eq!(
                                map.client_tag_text(&text),
                                Some(format!("PRECONDITION_FAILED - unknown delivery tag {tag}"))
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn acks_of_an_old_epoch_are_dropped_and_new_ones_shifted() {
        let mut m = TagMap::default();
        assert_eq!((m.deliver(1), m.deliver(2), m.deliver(3)), (1, 2, 3));
        m.new_epoch();
        assert_eq!(m.deliver(1), 4);
        assert_eq!(m.settle(2, false), Settle::Stale);
        assert_eq!(m.settle(3, true), Settle::Stale);
        assert_eq!(m.settle(4, true), Settle::Forward(1));
        assert_eq!(m.settle(0, true), Settle::Forward(0));
    }
}
