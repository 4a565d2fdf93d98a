//! One thread writes the log lines bound for stderr, stdout and files, so a slow terminal or
//! disk never blocks a tokio worker (or a session, or a health check holding its lock).
//!
//! Lines reach it through a bounded channel. When the channel is full the line is dropped
//! and counted, as HAProxy's ring buffer does: a burst of sessions ending never waits on
//! the log. The count is the process's `DroppedLogs` (`show info`, `/metrics`). Syslog
//! over UDP does not come here: its socket is non-blocking and a full buffer drops the
//! datagram, as HAProxy's does.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Lines the channel holds before new ones are dropped.
const CAPACITY: usize = 4096;

/// Where a line goes.
#[derive(Clone)]
pub(crate) enum Stream {
    Stderr,
    Stdout,
    File(Arc<File>),
}

/// A framed line and its destination.
pub(crate) struct Line {
    pub to: Stream,
    pub text: String,
}

/// What the writer thread receives.
enum Msg {
    Line(Line),
    /// Answered once every line queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The sending side of the writer.
pub(crate) struct Writer {
    tx: SyncSender<Msg>,
    /// The thread's side until [`start`] hands it to the thread.
    rx: Mutex<Option<Receiver<Msg>>>,
    dropped: AtomicU64,
}

impl Writer {
    /// A writer whose lines nobody takes yet (they wait in the channel, up to its
    /// capacity, until [`start`]).
    fn unstarted(capacity: usize) -> Writer {
        let (tx, rx) = sync_channel(capacity);
        Writer {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `line`, or drops and counts it when the writer is behind.
    pub fn submit(&self, line: Line) {
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes what arrives until every sender is gone. Write errors (a full disk, a closed
/// terminal) lose the line; nothing else can be done with it.
fn write_all(rx: Receiver<Msg>) {
    for msg in rx {
        let line = match msg {
            Msg::Line(line) => line,
            Msg::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let bytes = line.text.as_bytes();
        let _ = match &line.to {
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
            Stream::Stdout => std::io::stdout().lock().write_all(bytes),
            Stream::File(f) => (&**f).write_all(bytes),
        };
    }
}

/// The process's writer.
pub(crate) fn global() -> &'static Writer {
    static WRITER: OnceLock<Writer> = OnceLock::new();
    WRITER.get_or_init(|| Writer::unstarted(CAPACITY))
}

/// Starts the writer thread (once; later calls do nothing). The runtime calls it when it
/// starts serving, after any fork into the background (a thread does not survive a fork;
/// lines logged before wait in the channel).
pub fn start() -> std::io::Result<()> {
    let rx = global().rx.lock().ok().and_then(|mut rx| rx.take());
    if let Some(rx) = rx {
        std::thread::Builder::new()
            .name("warren-log".into())
            .spawn(move || write_all(rx))?;
    }
    Ok(())
}

/// Waits, at most `limit`, until every line logged so far is written (before the process
/// exits, so the last sessions' lines are not lost with it).
pub fn flush(limit: Duration) {
    let started = global().rx.lock().is_ok_and(|rx| rx.is_none());
    if !started {
        return;
    }
    let (done, written) = channel();
    let tx = global().tx.clone();
    // Queued from a helper thread: a blocking send must not outlast `limit` here.
    let queued = std::thread::Builder::new()
        .name("warren-log-flush".into())
        .spawn(move || {
            let _ = tx.send(Msg::Flush(done));
        });
    if queued.is_ok() {
        let _ = written.recv_timeout(limit);
    }
}

/// Log lines dropped because the writer was behind (HAProxy's `DroppedLogs`).
pub fn dropped() -> u64 {
    global().dropped()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Line {
            to: Stream::Stdout,
            text: text.to_string(),
        }
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let writer = Writer::unstarted(2);
        for n in 0..5 {
            writer.submit(line(&n.to_string()));
        }
        assert_eq!(writer.dropped(), 3);
        let rx = writer.rx.lock().expect("lock").take().expect("receiver");
        let kept: Vec<String> = rx
            .try_iter()
            .filter_map(|m| match m {
                Msg::Line(l) => Some(l.text),
                Msg::Flush(_) => None,
            })
            .collect();
        assert_eq!(kept, ["0", "1"], "the first lines, in order");
        writer.submit(line("5"));
        assert_eq!(writer.dropped(), 3, "room again once the writer caught up");
        drop(rx);
        writer.submit(line("6"));
        assert_eq!(writer.dropped(), 4, "no writer: dropped and counted");
    }
}
