//! The per-session log line, field for field HAProxy's `option tcplog`:
//!
//! ```text
//! 127.0.0.1:41234 [25/Nov/2026:06:40:12.123] front back/srv1 0/1/5007 212 -- 3/1/1/1/0 0/0
//! client           accept date               fe    be/srv   Tw/Tc/Tt bytes term conns  queues
//! ```
//! Tw: ms waiting in the queue, Tc: ms to connect (-1 if never connected), Tt: total ms;
//! bytes: server to client; term: termination state; conns:
//! actconn/feconn/beconn/srv_conn/retries (`+` before retries when redispatched).

use std::fmt::Write;
use std::net::SocketAddr;

use super::LocalTime;

/// First character of the termination state: who or what ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Ended normally (both sides closed).
    None,
    /// The client aborted (reset) or sent garbage.
    ClientAbort,
    /// The server aborted, refused the connection, or none was available.
    ServerAbort,
    /// The client-side timeout struck.
    ClientTimeout,
    /// The server-side (or connect, or queue) timeout struck.
    ServerTimeout,
    /// Warren itself refused (e.g. no backend configured).
    Proxy,
    /// An administrator or a health check killed the session (shutdown-sessions, stop).
    Killed,
    /// A local resource ran out (sockets, memory).
    Resource,
}

/// Second character: where in its life the session was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Ended normally.
    None,
    /// Waiting in the queue for a server slot.
    Queue,
    /// Connecting to the server.
    Connect,
    /// Moving data.
    Data,
    /// Waiting for, or judging, the client's first bytes (`tcp-request content` rules).
    Request,
}

impl Cause {
    fn char(self) -> char {
        match self {
            Cause::None => '-',
            Cause::ClientAbort => 'C',
            Cause::ServerAbort => 'S',
            Cause::ClientTimeout => 'c',
            Cause::ServerTimeout => 's',
            Cause::Proxy => 'P',
            Cause::Killed => 'K',
            Cause::Resource => 'R',
        }
    }
}

impl Phase {
    fn char(self) -> char {
        match self {
            Phase::None => '-',
            Phase::Queue => 'Q',
            Phase::Connect => 'C',
            Phase::Data => 'D',
            Phase::Request => 'R',
        }
    }
}

/// Everything one log line says about a finished session.
#[derive(Debug, Clone)]
pub struct SessionRecord<'a> {
    pub client: SocketAddr,
    pub accepted: LocalTime,
    pub frontend: &'a str,
    pub backend: &'a str,
    /// `<NOSRV>` when no server was reached.
    pub server: &'a str,
    pub queue_ms: Option<u64>,
    pub connect_ms: Option<u64>,
    pub total_ms: u64,
    pub bytes_to_client: u64,
    pub bytes_to_server: u64,
    pub cause: Cause,
    pub phase: Phase,
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub retries: u32,
    pub redispatched: bool,
    pub srv_queue: u32,
    pub backend_queue: u32,
    /// AMQP mode: `{user vhost "connection name"}` and how the session ended, appended
    /// after HAProxy's fields (where its captured headers would go) so tcplog parsers
    /// still read the prefix.
    pub extra: Option<String>,
    /// `option logasap`: the line is written as soon as the server is reached, so the
    /// total time and the byte count are marked `+` (more may follow), as in HAProxy.
    pub asap: bool,
    /// The line was already written (by `option logasap`): none at the end.
    pub logged: bool,
}

impl<'a> SessionRecord<'a> {
    /// A session just accepted: no backend, no server, nothing moved yet.
    pub fn new(client: SocketAddr, accepted: LocalTime, frontend: &'a str) -> SessionRecord<'a> {
        SessionRecord {
            client,
            accepted,
            frontend,
            backend: "<NOBACKEND>",
            server: "<NOSRV>",
            queue_ms: None,
            connect_ms: None,
            total_ms: 0,
            bytes_to_client: 0,
            bytes_to_server: 0,
            cause: Cause::None,
            phase: Phase::None,
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            extra: None,
            asap: false,
            logged: false,
        }
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

impl SessionRecord<'_> {
    /// The termination state, e.g. `--`, `cD`, `SC`.
    pub fn termination(&self) -> String {
        [self.cause.char(), self.phase.char()].iter().collect()
    }

    /// HAProxy's tcplog line.
    pub fn tcplog(&self) -> String {
        let mut line = String::with_capacity(160);
        let _ = write!(
            line,
            "{} [{}] {} {}/{} {}/{}/{}{} {}{} {} {}/{}/{}/{}/{}{} {}/{}",
            self.client,
            self.accepted.accept_date(),
            self.frontend,
            self.backend,
            self.server,
            ms(self.queue_ms),
            ms(self.connect_ms),
            if self.asap { "+" } else { "" },
            self.total_ms,
            if self.asap { "+" } else { "" },
            self.bytes_to_client,
            self.termination(),
            self.actconn,
            self.feconn,
            self.beconn,
            self.srv_conn,
            if self.redispatched { "+" } else { "" },
            self.retries,
            self.srv_queue,
            self.backend_queue,
        );
        if let Some(extra) = &self.extra {
            line.push(' ');
            line.push_str(extra);
        }
        line
    }
}

/// HAProxy's default (non-tcplog) line, emitted at accept time.
pub fn connect_line(client: SocketAddr, local: SocketAddr, frontend: &str, mode: &str) -> String {
    format!(
        "Connect from {client} to {local} ({frontend}/{})",
        mode.to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcplog_fields_in_haproxy_order() {
        let client = "10.0.1.2:33313".parse().unwrap_or_else(|_| unreachable!());
        let rec = SessionRecord {
            backend: "bck",
            server: "srv1",
            queue_ms: Some(0),
            connect_ms: Some(0),
            total_ms: 5007,
            bytes_to_client: 212,
            bytes_to_server: 10,
            retries: 3,
            redispatched: true,
            ..SessionRecord::new(client, LocalTime::now(), "fnt")
        };
        let line = rec.tcplog();
        let after_date = line.split("] ").nth(1).unwrap_or("");
        assert_eq!(after_date, "fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/+3 0/0");
        assert!(line.starts_with("10.0.1.2:33313 ["));
    }

    #[test]
    fn termination_codes() {
        let client = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
        let mut rec = SessionRecord {
            backend: "b",
            cause: Cause::ServerTimeout,
            phase: Phase::Queue,
            actconn: 1,
            feconn: 1,
            beconn: 1,
            ..SessionRecord::new(client, LocalTime::now(), "f")
        };
        assert_eq!(rec.termination(), "sQ");
        rec.cause = Cause::ClientTimeout;
        rec.phase = Phase::Data;
        assert_eq!(rec.termination(), "cD");
        assert!(rec.tcplog().contains(" -1/-1/0 0 cD "));
    }
}
