//! The exchanges, queues and bindings a client declared, kept in order so they can be
//! declared again on the node a session moves to.
//!
//! Only what the node accepted is recorded (the session records on the `-ok`), and the log
//! is pruned as operations cancel out: a delete removes the declare and every binding of
//! the deleted entity, an unbind removes its bind, a second declare of a name replaces the
//! first. Passive declares change nothing and are not kept.

use amq_protocol::protocol::{exchange, queue, AMQPClass};

/// One recorded operation, ready to be sent again (always with `nowait` off, so the replay
/// can check each answer).
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Exchange(exchange::Declare),
    Queue(queue::Declare),
    QueueBind(queue::Bind),
    ExchangeBind(exchange::Bind),
}

impl Entry {
    /// The method to send on replay.
    pub fn method(&self) -> AMQPClass {
        match self.clone() {
            Entry::Exchange(mut m) => {
                m.nowait = false;
                AMQPClass::Exchange(exchange::AMQPMethod::Declare(m))
            }
            Entry::Queue(mut m) => {
                m.nowait = false;
                AMQPClass::Queue(queue::AMQPMethod::Declare(m))
            }
            Entry::QueueBind(mut m) => {
                m.nowait = false;
                AMQPClass::Queue(queue::AMQPMethod::Bind(m))
            }
            Entry::ExchangeBind(mut m) => {
                m.nowait = false;
                AMQPClass::Exchange(exchange::AMQPMethod::Bind(m))
            }
        }
    }

    /// What the replay reports when this entry fails.
    pub fn describe(&self) -> String {
        match self {
            Entry::Exchange(m) => format!("exchange.declare '{}'", m.exchange),
            Entry::Queue(m) => format!("queue.declare '{}'", m.queue),
            Entry::QueueBind(m) => {
                format!(
                    "queue.bind '{}' to '{}' ('{}')",
                    m.queue, m.exchange, m.routing_key
                )
            }
            Entry::ExchangeBind(m) => format!(
                "exchange.bind '{}' to '{}' ('{}')",
                m.destination, m.source, m.routing_key
            ),
        }
    }
}

/// A connection's topology log.
#[derive(Debug, Default, Clone)]
pub struct Topology {
    entries: Vec<Entry>,
}

impl Topology {
    /// The node accepted `method`; record what it changed. Other methods are ignored.
    pub fn record(&mut self, method: &AMQPClass) {
        match method {
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(m)) if !m.passive => {
                self.entries
                    .retain(|e| !matches!(e, Entry::Exchange(d) if d.exchange == m.exchange));
                self.entries.push(Entry::Exchange(m.clone()));
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Delete(m)) => {
                let name = m.exchange.as_str();
                self.entries.retain(|e| match e {
                    Entry::Exchange(d) => d.exchange.as_str() != name,
                    Entry::QueueBind(b) => b.exchange.as_str() != name,
                    Entry::ExchangeBind(b) => {
                        b.source.as_str() != name && b.destination.as_str() != name
                    }
                    Entry::Queue(_) => true,
                });
            }
            AMQPClass::Queue(queue::AMQPMethod::Declare(m)) if !m.passive => {
                self.entries
                    .retain(|e| !matches!(e, Entry::Queue(d) if d.queue == m.queue));
                self.entries.push(Entry::Queue(m.clone()));
            }
            AMQPClass::Queue(queue::AMQPMethod::Delete(m)) => {
                let name = m.queue.as_str();
                self.entries.retain(|e| match e {
                    Entry::Queue(d) => d.queue.as_str() != name,
                    Entry::QueueBind(b) => b.queue.as_str() != name,
                    _ => true,
                });
            }
            AMQPClass::Queue(queue::AMQPMethod::Bind(m)) => {
                let mut m = m.clone();
                m.nowait = false;
                if !self.entries.contains(&Entry::QueueBind(m.clone())) {
                    self.entries.push(Entry::QueueBind(m));
                }
            }
            AMQPClass::Queue(queue::AMQPMethod::Unbind(m)) => self.entries.retain(|e| {
                !matches!(e, Entry::QueueBind(b) if b.queue == m.queue
                    && b.exchange == m.exchange
                    && b.routing_key == m.routing_key
                    && b.arguments == m.arguments)
            }),
            AMQPClass::Exchange(exchange::AMQPMethod::Bind(m)) => {
                let mut m = m.clone();
                m.nowait = false;
                if !self.entries.contains(&Entry::ExchangeBind(m.clone())) {
                    self.entries.push(Entry::ExchangeBind(m));
                }
            }
            AMQPClass::Exchange(exchange::AMQPMethod::Unbind(m)) => self.entries.retain(|e| {
                !matches!(e, Entry::ExchangeBind(b) if b.destination == m.destination
                    && b.source == m.source
                    && b.routing_key == m.routing_key
                    && b.arguments == m.arguments)
            }),
            _ => {}
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Queues that die with the connection or with their last consumer: declared again on
    /// another node they are new, empty queues (and their messages are gone). Returns the
    /// first one's description.
    pub fn connection_bound_queue(&self) -> Option<String> {
        self.entries.iter().find_map(|e| match e {
            Entry::Queue(q) if q.exclusive => Some(format!("exclusive queue '{}'", q.queue)),
            Entry::Queue(q) if q.auto_delete => Some(format!("auto-delete queue '{}'", q.queue)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::FieldTable;

    fn qdeclare(name: &str, exclusive: bool) -> AMQPClass {
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: name.into(),
            passive: false,
            durable: true,
            exclusive,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        }))
    }

    fn qbind(q: &str, x: &str, rk: &str) -> queue::Bind {
        queue::Bind {
            queue: q.into(),
            exchange: x.into(),
            routing_key: rk.into(),
            nowait: true,
            arguments: FieldTable::default(),
        }
    }

    #[test]
    fn deletes_and_unbinds_prune_the_log() {
        let mut t = Topology::default();
        t.record(&qdeclare("a", false));
        t.record(&qdeclare("b", false));
        t.record(&AMQPClass::Queue(queue::AMQPMethod::Bind(qbind(
            "a", "x", "k",
        ))));
        t.record(&AMQPClass::Queue(queue::AMQPMethod::Bind(qbind(
            "a", "x", "k",
        ))));
        t.record(&AMQPClass::Queue(queue::AMQPMethod::Bind(qbind(
            "b", "x", "k",
        ))));
        assert_eq!(t.entries().len(), 4, "a repeated bind is kept once");
        t.record(&AMQPClass::Queue(queue::AMQPMethod::Unbind(
            queue::Unbind {
                queue: "b".into(),
                exchange: "x".into(),
                routing_key: "k".into(),
                arguments: FieldTable::default(),
            },
        )));
        t.record(&AMQPClass::Queue(queue::AMQPMethod::Delete(
            queue::Delete {
                queue: "a".into(),
                if_unused: false,
                if_empty: false,
                nowait: false,
            },
        )));
        let left: Vec<String> = t.entries().iter().map(Entry::describe).collect();
        assert_eq!(left, vec!["queue.declare 'b'"]);
        assert_eq!(t.connection_bound_queue(), None);
        t.record(&qdeclare("c", true));
        assert_eq!(
            t.connection_bound_queue(),
            Some("exclusive queue 'c'".into())
        );
        match t.entries()[0].method() {
            AMQPClass::Queue(queue::AMQPMethod::Declare(d)) => assert!(!d.nowait),
            other => panic!("unexpected {other:?}"),
        }
    }
}
