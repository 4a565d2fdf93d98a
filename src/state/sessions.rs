//! The AMQP clients of a terminating frontend, for the sessions view (stats page, JSON,
//! `show sess`): who each client is, which node serves it now, how often it moved.
//!
//! A session registers once, and updates its entry when it moves: a lock taken a few times
//! in a session's life, never per frame.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::server::lock;

/// One client as the sessions view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub client: SocketAddr,
    pub user: String,
    pub vhost: String,
    /// The client property `connection_name`.
    pub name: String,
    /// `backend/server` serving the session now.
    pub node: String,
    /// Node connections so far: 1 + moves.
    pub epoch: u32,
    pub moves: u32,
    pub since: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, SessionInfo>>,
}

impl Sessions {
    /// Adds a session; it is listed until the returned entry is dropped.
    pub fn register(self: &Arc<Self>, info: SessionInfo) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id, info);
        Registered {
            sessions: Arc::clone(self),
            id,
        }
    }

    /// The sessions open now, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        lock(&self.open).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A session's entry in [`Sessions`].
#[derive(Debug)]
pub struct Registered {
    sessions: Arc<Sessions>,
    id: u64,
}

impl Registered {
    /// The session moved to `node`.
    pub fn moved(&self, node: &str) {
        if let Some(s) = lock(&self.sessions.open).get_mut(&self.id) {
            s.node = node.to_string();
            s.epoch += 1;
            s.moves += 1;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.sessions.open).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_listed_while_registered_and_its_moves_are_counted() {
        let sessions = Arc::new(Sessions::default());
        let info = SessionInfo {
            client: "127.0.0.1:1".parse().unwrap(),
            user: "guest".into(),
            vhost: "/".into(),
            name: "c".into(),
            node: "b/s1".into(),
            epoch: 1,
            moves: 0,
            since: Instant::now(),
        };
        let entry = sessions.register(info);
        entry.moved("b/s2");
        let listed = sessions.list();
        assert_eq!(
            (listed[0].node.as_str(), listed[0].epoch, listed[0].moves),
            ("b/s2", 2, 1)
        );
        drop(entry);
        assert!(sessions.is_empty());
    }
}
