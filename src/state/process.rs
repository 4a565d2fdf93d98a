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
}

impl Process {
    pub fn new(maxconn: u32) -> Process {
        Process {
            slots: Arc::new(Semaphore::new(maxconn as usize)),
            actconn: AtomicU32::new(0),
            stop: CancellationToken::new(),
        }
    }

    pub fn actconn(&self) -> u32 {
        self.actconn.load(Ordering::Relaxed)
    }
}
