//! Publishes kept until the node confirmed them.
//!
//! Warren turns publisher confirms on for every non-transactional channel it opens on a
//! node, whether or not the client asked, and keeps each message (its method, header and
//! body frames) until the node's `basic.ack`. After a move the messages still kept are
//! published again on the new node, in their order, before anything new: at-least-once,
//! never a silent loss. A client that asked for confirms (`confirm.select`) gets them on
//! its own sequence, which goes on across moves while the node's starts at 1 each time.

use std::collections::VecDeque;

use bytes::Bytes;

/// Room reserved for a message's header and body frames beyond its method frame: most
/// messages then take one allocation.
const ROOM: usize = 256;

/// One message as the client sent it.
#[derive(Debug, Clone)]
pub struct Message {
    /// The node's publish sequence number in the current epoch.
    pub node_seq: u64,
    /// The client's sequence number, when the client asked for confirms.
    pub client_seq: Option<u64>,
    /// Its frames, as received (method, header, bodies), one after the other. Copied, so
    /// a kept message never pins the read buffer it was cut from.
    pub frames: Vec<u8>,
    /// Body bytes still to come from the client.
    body_left: Option<u64>,
}

/// A confirm to give the client, on its own sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfirm {
    pub tag: u64,
    pub multiple: bool,
    pub ack: bool,
}

/// One channel's publishes.
#[derive(Debug, Default)]
pub struct Publishes {
    /// The node's next sequence number (1 after `confirm.select` on a node).
    node_next: u64,
    /// The client's next sequence number, once it selected confirms.
    client_next: Option<u64>,
    kept: VecDeque<Message>,
    /// Bytes of the frames kept.
    bytes: u64,
    /// Messages the node refused (`basic.nack`) while the client had no confirms to learn it.
    pub refused_unseen: u64,
}

impl Publishes {
    pub fn new() -> Publishes {
        Publishes {
            node_next: 1,
            ..Publishes::default()
        }
    }

    /// The client sent `confirm.select`.
    pub fn client_selects_confirms(&mut self) {
        self.client_next.get_or_insert(1);
    }

    pub fn client_confirms(&self) -> bool {
        self.client_next.is_some()
    }

    /// A `basic.publish` method frame: a new message begins.
    pub fn publish(&mut self, method: &Bytes) {
        let client_seq = self.client_next;
        if let Some(n) = client_seq {
            self.client_next = Some(n + 1);
        }
        let node_seq = self.node_next;
        self.node_next += 1;
        let mut message = Message {
            node_seq,
            client_seq,
            frames: Vec::with_capacity(method.len() + ROOM),
            body_left: None,
        };
        self.keep(&mut message, method);
        self.kept.push_back(message);
    }

    /// A content header or body frame of the message being published on this channel.
    /// `body_size` is given for the header.
    pub fn content(&mut self, frame: &Bytes, body_size: Option<u64>) {
        let Some(mut message) = self.kept.pop_back() else {
            return;
        };
        if let Some(size) = body_size {
            message.body_left = Some(size);
        } else if let Some(left) = message.body_left.as_mut() {
            *left = left.saturating_sub((frame.len() as u64).saturating_sub(8));
        }
        self.keep(&mut message, frame);
        self.kept.push_back(message);
    }

    fn keep(&mut self, message: &mut Message, frame: &Bytes) {
        self.bytes += frame.len() as u64;
        message.frames.extend_from_slice(frame);
    }

    /// The node confirmed (`ack`) or refused (`nack`) `tag` (and all before it with
    /// `multiple`). Returns the confirm the client should get, if it asked for confirms.
    pub fn node_confirm(&mut self, tag: u64, multiple: bool, ack: bool) -> Option<ClientConfirm> {
        let mut last_client = None;
        let mut count = 0u64;
        if multiple {
            while self.kept.front().is_some_and(|m| m.node_seq <= tag) {
                if let Some(m) = self.kept.pop_front() {
                    last_client = m.client_seq.or(last_client);
                    self.forget(&m);
                    count += 1;
                }
            }
        } else if let Ok(i) = self.kept.binary_search_by_key(&tag, |m| m.node_seq) {
            if let Some(m) = self.kept.remove(i) {
                last_client = m.client_seq;
                self.forget(&m);
                count = 1;
            }
        }
        if !ack && self.client_next.is_none() {
            self.refused_unseen += count;
        }
        last_client.map(|tag| ClientConfirm { tag, multiple, ack })
    }

    fn forget(&mut self, m: &Message) {
        self.bytes -= m.frames.len() as u64;
    }

    /// Bytes kept for republishing.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Messages not yet confirmed.
    pub fn unconfirmed(&self) -> usize {
        self.kept.len()
    }

    /// A new node: every kept message gets a new node sequence number, in order. Returns
    /// them for republishing (the last one may still be waiting for body frames).
    pub fn new_epoch(&mut self) -> impl Iterator<Item = &Message> {
        self.node_next = 1;
        for m in self.kept.iter_mut() {
            m.node_seq = self.node_next;
            self.node_next += 1;
        }
        self.kept.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(p: &mut Publishes, body: &'static [u8]) {
        p.publish(&Bytes::from_static(b"method"));
        p.content(&Bytes::from_static(b"header"), Some(body.len() as u64));
        p.content(&Bytes::from_static(body), None);
    }

    #[test]
    fn multiple_acks_confirm_the_client_on_its_own_sequence_across_epochs() {
        let mut p = Publishes::new();
        p.client_selects_confirms();
        for _ in 0..3 {
            publish(&mut p, b"x");
        }
        assert_eq!(
            p.node_confirm(1, false, true),
            Some(ClientConfirm {
                tag: 1,
                multiple: false,
                ack: true
            })
        );
        // The node died with 2 and 3 unconfirmed: they get node numbers 1 and 2.
        let seqs: Vec<_> = p.new_epoch().map(|m| (m.node_seq, m.client_seq)).collect();
        assert_eq!(seqs, vec![(1, Some(2)), (2, Some(3))]);
        publish(&mut p, b"y");
        assert_eq!(
            p.node_confirm(3, true, true),
            Some(ClientConfirm {
                tag: 4,
                multiple: true,
                ack: true
            })
        );
        assert_eq!((p.unconfirmed(), p.bytes()), (0, 0));
    }

    #[test]
    fn without_client_confirms_nothing_is_told_but_refusals_are_counted() {
        let mut p = Publishes::new();
        publish(&mut p, b"a");
        publish(&mut p, b"b");
        assert!(p.bytes() > 0);
        assert_eq!(p.node_confirm(1, false, false), None);
        assert_eq!(p.node_confirm(2, false, true), None);
        assert_eq!((p.refused_unseen, p.unconfirmed()), (1, 0));
    }
}
