//! Where log lines go: the `log` targets of the configuration (syslog over UDP, stderr,
//! stdout, a file), framed as HAProxy frames them.
//!
//! Process diagnostics go through `tracing` (set up by the binary); the lines an operator
//! greps (one per session, one per server state change) go to the configured targets, as
//! HAProxy sends them. When no target writes to stderr, events are also traced so a
//! foreground warren shows them. Lines for stderr, stdout and files are written by one
//! thread ([`writer`]), never on a tokio worker.

pub mod tcplog;
mod time;
mod writer;

pub use time::LocalTime;
pub use writer::{dropped, flush, start};

use std::fs::OpenOptions;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use crate::config::{Level, LogDestination, LogFormat, LogTarget};

/// Name and pid in every syslog line (`warren[1234]:`).
const TAG: &str = "warren";

enum Sink {
    /// Non-blocking: a full socket buffer drops the datagram.
    Udp { socket: UdpSocket, to: SocketAddr },
    /// Through the writer thread.
    Stream(writer::Stream),
}

struct Target {
    sink: Sink,
    config: LogTarget,
}

/// The log targets of one proxy (or of `global`).
pub struct Logger {
    targets: Vec<Target>,
    /// Set when a target already writes to the terminal, so events are not printed twice.
    has_terminal: bool,
    hostname: String,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("targets", &self.targets.len())
            .finish()
    }
}

impl Logger {
    /// Opens every target. A target that cannot be opened (unwritable file, no UDP socket)
    /// is reported through `tracing` and skipped: logging must never stop traffic.
    pub fn new(targets: &[LogTarget]) -> Logger {
        let mut opened = Vec::new();
        for t in targets {
            let sink = match &t.destination {
                LogDestination::Stderr => Ok(Sink::Stream(writer::Stream::Stderr)),
                LogDestination::Stdout => Ok(Sink::Stream(writer::Stream::Stdout)),
                LogDestination::Udp(to) => {
                    let bind: SocketAddr = if to.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        ([0u16; 8], 0).into()
                    };
                    UdpSocket::bind(bind)
                        .and_then(|s| s.set_nonblocking(true).map(|_| s))
                        .map(|socket| Sink::Udp { socket, to: *to })
                }
                LogDestination::File(path) => OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map(|f| Sink::Stream(writer::Stream::File(Arc::new(f)))),
            };
            match sink {
                Ok(sink) => opened.push(Target {
                    sink,
                    config: t.clone(),
                }),
                Err(e) => tracing::error!("cannot open log target {:?}: {e}", t.destination),
            }
        }
        let has_terminal = opened.iter().any(|t| {
            matches!(
                t.sink,
                Sink::Stream(writer::Stream::Stderr | writer::Stream::Stdout)
            )
        });
        Logger {
            targets: opened,
            has_terminal,
            hostname: hostname(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Whether some target takes messages of `level`: a line nobody takes is not built
    /// (the HTTP proxy's per-request line under `log ... notice`).
    pub fn admits(&self, level: Level) -> bool {
        self.targets.iter().any(|t| level <= t.config.max_level)
    }

    /// Sends one message to every target whose level admits it.
    pub fn send(&self, level: Level, msg: &str) {
        if self.targets.is_empty() {
            return;
        }
        let now = LocalTime::now();
        for t in &self.targets {
            if level > t.config.max_level {
                continue;
            }
            let line = self.frame(t, level, &now, msg);
            // Dropped on failure: a full socket buffer or a full disk must not stall sessions.
            match &t.sink {
                Sink::Udp { socket, to } => {
                    let _ = socket.send_to(line.as_bytes(), to);
                }
                Sink::Stream(to) => writer::global().submit(writer::Line {
                    to: to.clone(),
                    text: line,
                }),
            }
        }
    }

    /// A server state change, an alert or a warning: to the targets, and to `tracing` when
    /// no target shows it on the terminal.
    pub fn event(&self, level: Level, msg: &str) {
        self.send(level, msg);
        if !self.has_terminal {
            match level {
                Level::Emerg | Level::Alert | Level::Crit | Level::Err => tracing::error!("{msg}"),
                Level::Warning => tracing::warn!("{msg}"),
                Level::Notice | Level::Info => tracing::info!("{msg}"),
                Level::Debug => tracing::debug!("{msg}"),
            }
        }
    }

    fn frame(&self, t: &Target, level: Level, now: &LocalTime, msg: &str) -> String {
        let pri = u32::from(t.config.facility.0) * 8 + level as u32;
        let pid = std::process::id();
        let stream = !matches!(t.sink, Sink::Udp { .. });
        let mut line = match t.config.format {
            LogFormat::Rfc3164 => format!("<{pri}>{} {TAG}[{pid}]: {msg}", now.rfc3164()),
            LogFormat::Rfc5424 => format!(
                "<{pri}>1 {} {} {TAG} {pid} - - {msg}",
                now.iso(),
                self.hostname
            ),
            LogFormat::Short => format!("<{pri}>{msg}"),
            LogFormat::Raw => msg.to_string(),
            LogFormat::Iso => format!("{} {msg}", now.iso()),
        };
        if stream {
            line.push('\n');
        }
        line
    }
}

fn hostname() -> String {
    crate::config::host_name()
}
