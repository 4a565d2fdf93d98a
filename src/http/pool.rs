//! Idle keep-alive connections to servers, kept between requests so a request need not
//! pay for a connect (see `exchange` for which requests may take one).
//!
//! One stack per server (the most recently used connection is reused first, as the
//! likeliest to be still open); at most [`MAX_IDLE`] per server; a connection idle for
//! [`IDLE_TIMEOUT`] is closed by the purge task (HAProxy's `pool-purge-delay`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::net::Stream;

/// Most idle connections kept per server.
pub const MAX_IDLE: usize = 64;

/// Idle connections older than this are closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

struct Idle {
    stream: Stream,
    since: Instant,
}

/// Idle connections of one backend's servers, by server id.
pub struct Pool {
    servers: Vec<Mutex<Vec<Idle>>>,
}

impl Pool {
    pub fn new(servers: usize) -> Pool {
        Pool {
            servers: (0..servers).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// An idle connection to server `id` that still looks open.
    pub fn take(&self, id: usize) -> Option<Stream> {
        let slot = self.servers.get(id)?;
        loop {
            let idle = lock(slot).pop()?;
            if idle.since.elapsed() < IDLE_TIMEOUT && still_open(&idle.stream) {
                return Some(idle.stream);
            }
        }
    }

    /// Keeps a connection whose exchange ended cleanly.
    pub fn put(&self, id: usize, stream: Stream) {
        if let Some(slot) = self.servers.get(id) {
            let mut idle = lock(slot);
            if idle.len() < MAX_IDLE {
                idle.push(Idle {
                    stream,
                    since: Instant::now(),
                });
            }
        }
    }

    /// Closes connections idle for longer than [`IDLE_TIMEOUT`].
    pub fn purge(&self) {
        for slot in &self.servers {
            lock(slot).retain(|i| i.since.elapsed() < IDLE_TIMEOUT);
        }
    }

    /// Closes every idle connection (the listener's generation ended).
    pub fn clear(&self) {
        for slot in &self.servers {
            lock(slot).clear();
        }
    }

    /// Idle connections now (for tests and the stats).
    pub fn idle(&self) -> usize {
        self.servers.iter().map(|s| lock(s).len()).sum()
    }
}

/// A kept connection that became readable has been closed by its server (or sent
/// something unasked): either way it cannot carry a request.
fn still_open(stream: &Stream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.tcp().try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
