//! One resolution against a `resolvers` section's nameservers, as HAProxy runs it
//! (`src/resolvers.c`): the query goes to every nameserver at once over UDP, the first valid
//! answer wins, an error counts only once every nameserver has answered with one; with no
//! answer the query is sent again after `timeout retry`, `resolve_retries` times in all.
//! A/AAAA queries fall back to the other family when the preferred one has no record.
//! Messages are built and read with `hickory-proto`; there is no cache: warren asks at the
//! pace of `timeout resolve`, which is HAProxy's rhythm too.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use crate::config::Family;

/// How a resolution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A usable answer: the addresses (A/AAAA) or SRV targets found, possibly none of the
    /// family asked for (HAProxy then says "No IP for server").
    Valid(Vec<Entry>),
    /// NXDOMAIN.
    Nx,
    /// REFUSED.
    Refused,
    /// No answer after `resolve_retries` queries.
    Timeout,
    /// Any other failure (SERVFAIL, a truncated or unreadable answer, no record).
    Other,
}

/// One place a server may be: an address, and for SRV its port and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ip: IpAddr,
    /// From the SRV record; `None` for A/AAAA (the configured port stays).
    pub port: Option<u16>,
    /// From the SRV record, mapped as HAProxy does: `(w + 255) / 256`.
    pub weight: Option<u32>,
    /// The SRV record's target host, which the log names as HAProxy does.
    pub target: Option<String>,
}

/// Where and how to ask.
#[derive(Debug)]
pub struct Asker {
    pub nameservers: Vec<SocketAddr>,
    /// `<resolvers>/<nameserver>` for each, as HAProxy names the one that answered.
    pub names: Vec<String>,
    /// Which nameserver gave the last valid answer (an index into `nameservers`).
    pub answered_by: std::sync::atomic::AtomicUsize,
    pub retries: u32,
    pub retry: Duration,
    pub payload: u16,
}

impl Asker {
    /// The nameserver that gave the last valid answer, for the log.
    pub fn last_answer_from(&self) -> &str {
        let i = self.answered_by.load(std::sync::atomic::Ordering::Relaxed);
        self.names.get(i).map_or("DNS resolver", String::as_str)
    }

    /// Resolves `fqdn`: SRV when it starts with `_`, else A/AAAA in the order `prefer` says.
    pub async fn resolve(&self, fqdn: &str, prefer: Family) -> Outcome {
        if fqdn.starts_with('_') {
            self.srv(fqdn, prefer).await
        } else {
            self.addresses(fqdn, prefer).await
        }
    }

    async fn addresses(&self, fqdn: &str, prefer: Family) -> Outcome {
        let (first, second) = match prefer {
            Family::Ipv4 => (RecordType::A, RecordType::AAAA),
            Family::Ipv6 => (RecordType::AAAA, RecordType::A),
        };
        let outcome = self.ask(fqdn, first).await;
        match &outcome {
            Answered::Records(m) if !ips(m).is_empty() => Outcome::Valid(entries(ips(m))),
            // HAProxy's fallback: the other family, at once (NX and "no record" alike).
            Answered::Records(_) | Answered::Code(_) => match self.ask(fqdn, second).await {
                Answered::Records(m) => Outcome::Valid(entries(ips(&m))),
                other => outcome.or(other).into_outcome(),
            },
            Answered::Nothing => Outcome::Timeout,
        }
    }

    async fn srv(&self, fqdn: &str, prefer: Family) -> Outcome {
        let message = match self.ask(fqdn, RecordType::SRV).await {
            Answered::Records(m) => m,
            other => return other.into_outcome(),
        };
        let mut found = Vec::new();
        for record in &message.answers {
            let RData::SRV(srv) = &record.data else {
                continue;
            };
            // HAProxy: (weight + 255) / 256, so 0 stays 0 and 1..256 is 1.
            let weight = Some(u32::from(srv.weight).div_ceil(256));
            // The nameserver usually sends the targets' addresses along (additional
            // records); otherwise they are asked for, as HAProxy 2.2+ does.
            let mut ips: Vec<IpAddr> = message
                .additionals
                .iter()
                .filter(|r| r.name == srv.target)
                .filter_map(|r| ip_of(&r.data))
                .collect();
            if ips.is_empty() {
                let target = srv.target.to_ascii();
                if let Outcome::Valid(e) = Box::pin(self.addresses(&target, prefer)).await {
                    ips = e.into_iter().map(|e| e.ip).collect();
                }
            }
            ips.sort_by_key(|ip| !prefer.matches(ip));
            if let Some(ip) = ips.first() {
                found.push(Entry {
                    ip: *ip,
                    port: Some(srv.port),
                    weight,
                    target: Some(srv.target.to_ascii().trim_end_matches('.').to_string()),
                });
            }
        }
        Outcome::Valid(found)
    }

    /// One question, asked up to `retries` times; the first valid answer of any
    /// nameserver, or an error once all of them answered with one.
    async fn ask(&self, fqdn: &str, kind: RecordType) -> Answered {
        let Ok(name) = Name::from_ascii(fqdn.trim_end_matches('.').to_string() + ".") else {
            return Answered::Code(ResponseCode::FormErr);
        };
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name, kind));
        if self.payload > 512 {
            let mut edns = Edns::new();
            edns.set_max_payload(self.payload);
            message.set_edns(edns);
        }
        let Ok(bytes) = message.to_vec() else {
            return Answered::Code(ResponseCode::FormErr);
        };
        let id = message.metadata.id;
        let Some(socket) = self.socket().await else {
            return Answered::Nothing;
        };
        let mut buf = vec![0u8; usize::from(self.payload.max(512))];
        for _ in 0..self.retries.max(1) {
            for ns in &self.nameservers {
                // A nameserver that cannot be reached is one that does not answer.
                let _ = socket.send_to(&bytes, ns).await;
            }
            let mut errors = Vec::new();
            let deadline = tokio::time::Instant::now() + self.retry;
            while let Ok(Ok((n, from))) =
                tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
            {
                let Some(from) = self.nameservers.iter().position(|ns| *ns == from) else {
                    continue;
                };
                let Ok(answer) = Message::from_vec(&buf[..n]) else {
                    errors.push(ResponseCode::FormErr);
                    continue;
                };
                if answer.metadata.id != id {
                    continue; // a late answer to an earlier query
                }
                match answer.metadata.response_code {
                    ResponseCode::NoError if !answer.metadata.truncation => {
                        self.answered_by
                            .store(from, std::sync::atomic::Ordering::Relaxed);
                        return Answered::Records(answer);
                    }
                    ResponseCode::NoError => errors.push(ResponseCode::ServFail),
                    code => errors.push(code),
                }
                if errors.len() >= self.nameservers.len() {
                    // HAProxy reports the last error when every nameserver gave one.
                    return Answered::Code(errors[errors.len() - 1]);
                }
            }
            if let Some(code) = errors.last() {
                return Answered::Code(*code);
            }
        }
        Answered::Nothing
    }

    /// A UDP socket of the nameservers' family (the first one's).
    async fn socket(&self) -> Option<UdpSocket> {
        let local: SocketAddr = match self.nameservers.first()? {
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(_) => ([0u16; 8], 0).into(),
        };
        match UdpSocket::bind(local).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("DNS: cannot open a UDP socket: {e}");
                None
            }
        }
    }
}

/// What one question got.
enum Answered {
    Records(Message),
    Code(ResponseCode),
    Nothing,
}

impl Answered {
    /// The first question's error wins over the fallback's, unless the fallback answered.
    fn or(self, other: Answered) -> Answered {
        match (self, other) {
            (_, Answered::Records(m)) => Answered::Records(m),
            (Answered::Records(m), _) => Answered::Records(m),
            (Answered::Code(c), _) => Answered::Code(c),
            (Answered::Nothing, other) => other,
        }
    }

    fn into_outcome(self) -> Outcome {
        match self {
            Answered::Records(m) => Outcome::Valid(entries(ips(&m))),
            Answered::Code(ResponseCode::NXDomain) => Outcome::Nx,
            Answered::Code(ResponseCode::Refused) => Outcome::Refused,
            Answered::Code(_) => Outcome::Other,
            Answered::Nothing => Outcome::Timeout,
        }
    }
}

fn ip_of(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// The addresses of an answer (CNAME chains included: every A/AAAA record counts), in
/// answer order without duplicates.
fn ips(message: &Message) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in message.answers.iter().filter_map(|r| ip_of(&r.data)) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

fn entries(ips: Vec<IpAddr>) -> Vec<Entry> {
    ips.into_iter()
        .map(|ip| Entry {
            ip,
            port: None,
            weight: None,
            target: None,
        })
        .collect()
}
