//! Process-wide state: the global `maxconn` gate, `actconn`, and the stop signal.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Process {
    /// Global `maxconn`: permits held by every client connection.
    pub slots: Arc<Semaphore>,
    /// Client connections now open (tcplog's `actconn`).
    pub actconn: AtomicU32,
    /// Cancelled when warren stops: listeners close, sessions end, checkers return.
    pub stop: CancellationToken,
    /// The limit `slots` was sized for.
    maxconn: std::sync::Mutex<u32>,
}

impl Process {
    pub fn new(maxconn: u32) -> Process {
        Process {
            slots: Arc::new(Semaphore::new(maxconn as usize)),
            actconn: AtomicU32::new(0),
            stop: CancellationToken::new(),
            maxconn: std::sync::Mutex::new(maxconn),
        }
    }

    /// Applies a new global `maxconn` (reload): adds permits, or withdraws free ones
    /// (connections above a lowered limit are not cut; they just are not replaced).
    pub fn resize(&self, maxconn: u32) {
        let mut current = self.maxconn.lock().unwrap_or_else(|e| e.into_inner());
        if maxconn > *current {
            self.slots.add_permits((maxconn - *current) as usize);
        } else {
            self.slots.forget_permits((*current - maxconn) as usize);
        }
        *current = maxconn;
    }

    pub fn actconn(&self) -> u32 {
        self.actconn.load(Ordering::Relaxed)
    }
}
