//! The per-request line of `option httplog`, field for field HAProxy's:
//!
//! ```text
//! 127.0.0.1:41234 [25/Nov/2026:06:40:12.123] mgmt mgmt/rabbit1 0/0/1/3/4 200 1523 - - ---- 1/1/0/1/0 0/0 "GET /api/overview HTTP/1.1"
//! client           request date               fe   be/srv       TR/Tw/Tc/Tr/Ta st bytes cookies term conns queues request
//! ```
//! TR: ms to receive the request head; Tw: in the queue; Tc: to connect; Tr: for the
//! server's response head; Ta: the whole request, until the last byte to the client (-1
//! where a phase was not reached). Termination state: who ended it (`-` nobody, `C`/`S`
//! client/server abort, `c`/`s` their timeouts, `P` warren refused it, `K` killed),
//! where (`R` request, `Q` queue, `C` connect, `H` response head, `D` data, `-` done),
//! then the two cookie-persistence characters (`--`: none).

use std::fmt::Write;
use std::net::SocketAddr;

use crate::log::LocalTime;

/// Everything one httplog line says.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub client: SocketAddr,
    pub date: LocalTime,
    pub frontend: &'a str,
    /// The frontend accepted TLS: HAProxy prints its name with a `~`.
    pub tls: bool,
    pub backend: &'a str,
    pub server: &'a str,
    pub t_request: Option<u64>,
    pub t_queue: Option<u64>,
    pub t_connect: Option<u64>,
    pub t_response: Option<u64>,
    pub t_total: u64,
    /// -1 when no status was sent.
    pub status: i32,
    pub bytes_to_client: u64,
    pub cause: char,
    pub phase: char,
    /// Cookie persistence, request and response side (`-` without persistence).
    pub cookie: [char; 2],
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub retries: u32,
    pub redispatched: bool,
    /// `METHOD target HTTP/1.x`, or `<BADREQ>`.
    pub request: String,
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

impl Record<'_> {
    pub fn line(&self) -> String {
        let mut line = String::with_capacity(200);
        let _ = write!(
            line,
            "{} [{}] {}{} {}/{} {}/{}/{}/{}/{} {} {} - - {}{}{}{} {}/{}/{}/{}/{}{} 0/0 \"{}\"",
            self.client,
            self.date.accept_date(),
            self.frontend,
            if self.tls { "~" } else { "" },
            self.backend,
            self.server,
            ms(self.t_request),
            ms(self.t_queue),
            ms(self.t_connect),
            ms(self.t_response),
            self.t_total,
            self.status,
            self.bytes_to_client,
            self.cause,
            self.phase,
            self.cookie[0],
            self.cookie[1],
            self.actconn,
            self.feconn,
            self.beconn,
            self.srv_conn,
            if self.redispatched { "+" } else { "" },
            self.retries,
            self.request.replace('"', "\\\""),
        );
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn httplog_fields_in_haproxy_order() {
        let r = Record {
            client: "10.0.1.2:33317".parse().unwrap_or_else(|_| unreachable!()),
            date: LocalTime::now(),
            frontend: "http-in",
            tls: false,
            backend: "static",
            server: "srv1",
            t_request: Some(10),
            t_queue: Some(0),
            t_connect: Some(30),
            t_response: Some(69),
            t_total: 109,
            status: 200,
            bytes_to_client: 2750,
            cause: '-',
            phase: '-',
            cookie: ['-', '-'],
            actconn: 1,
            feconn: 1,
            beconn: 1,
            srv_conn: 1,
            retries: 0,
            redispatched: false,
            request: "GET /index.html HTTP/1.1".into(),
        };
        let line = r.line();
        assert_eq!(
            line.split("] ").nth(1),
            Some("http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 \"GET /index.html HTTP/1.1\"")
        );
    }
}
