//! A backend's stick table (`stick-table type ip size <n> expire <t>` + `stick on src`):
//! which server each client address was last sent to, so its next connections go there
//! too while that server is usable. Local to this warren (no `peers` replication). One
//! short lock per new session, never per packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Client address → (server id, when the entry expires, when it was last used).
#[derive(Debug)]
pub struct StickTable {
    size: usize,
    expire: Duration,
    entries: HashMap<IpAddr, (usize, Instant)>,
}

impl StickTable {
    pub fn new(size: usize, expire: Duration) -> StickTable {
        StickTable {
            size: size.max(1),
            expire,
            entries: HashMap::new(),
        }
    }

    /// The server `client` sticks to, if its entry has not expired.
    pub fn lookup(&mut self, client: IpAddr, now: Instant) -> Option<usize> {
        let client = client.to_canonical();
        match self.entries.get(&client) {
            Some((server, expires)) if *expires > now => Some(*server),
            Some(_) => {
                self.entries.remove(&client);
                None
            }
            None => None,
        }
    }

    /// Records (or refreshes) that `client` went to `server`. A full table first drops
    /// expired entries, then the one closest to expiring (HAProxy evicts the oldest).
    pub fn store(&mut self, client: IpAddr, server: usize, now: Instant) {
        let client = client.to_canonical();
        if !self.entries.contains_key(&client) && self.entries.len() >= self.size {
            self.entries.retain(|_, (_, expires)| *expires > now);
            if self.entries.len() >= self.size {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(ip, _)| *ip)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(client, (server, now + self.expire));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stick_expire_and_make_room() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let mut t = StickTable::new(2, s(30));
        assert_eq!(t.lookup(ip(1), now), None);
        t.store(ip(1), 3, now);
        assert_eq!(t.lookup(ip(1), now + s(29)), Some(3));
        assert_eq!(t.lookup(ip(1), now + s(30)), None, "expired");
        assert!(t.is_empty());
        t.store(ip(1), 0, now);
        t.store(ip(2), 1, now + s(1));
        t.store(ip(3), 2, now + s(2)); // full: the oldest (ip 1) goes
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(ip(1), now + s(2)), None);
        assert_eq!(t.lookup(ip(3), now + s(2)), Some(2));
        // An IPv4-mapped IPv6 client is the same client.
        let mapped: IpAddr = "::ffff:10.0.0.3".parse().expect("ip");
        assert_eq!(t.lookup(mapped, now + s(2)), Some(2));
    }
}
