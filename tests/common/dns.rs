//! A small authoritative DNS server over UDP on 127.0.0.1:0, built with hickory-proto,
//! whose records a test changes while warren runs: A, AAAA and SRV answers (SRV targets'
//! addresses go along as additional records), NXDOMAIN, REFUSED, or silence.
//! Every query it answers is counted on a watch channel, so a test can wait for "the next
//! resolution has happened" instead of sleeping.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::{TcpListener, UdpSocket};

use super::Backend;
use tokio::sync::watch;

/// What the server says about one name.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A/AAAA records (the query type picks the family).
    Addrs(Vec<IpAddr>),
    /// SRV records: (target, port, weight), with the targets' addresses in `Addrs` entries.
    Srv(Vec<(String, u16, u16)>),
    Nx,
    Refused,
    /// No answer at all (a timeout for the resolver).
    Silent,
}

#[derive(Clone)]
pub struct Dns {
    pub addr: SocketAddr,
    zone: Arc<Mutex<HashMap<String, Reply>>>,
    /// Queries answered so far.
    pub answered: watch::Receiver<u64>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Dns {
    pub async fn start() -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = socket.local_addr().expect("addr");
        let zone: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let (count, answered) = watch::channel(0u64);
        let z = Arc::clone(&zone);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(reply) = answer(&query, &z) else {
                    continue;
                };
                let bytes = reply.to_vec().expect("encode");
                let _ = socket.send_to(&bytes, from).await;
                count.send_modify(|c| *c += 1);
            }
        });
        Dns {
            addr,
            zone,
            answered,
        }
    }

    pub fn set(&self, name: &str, reply: Reply) {
        self.zone.lock().unwrap().insert(key(name), reply);
    }

    /// Waits until `n` more queries have been answered (resolution rounds of warren).
    pub async fn answers(&mut self, n: u64) {
        let target = *self.answered.borrow_and_update() + n;
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.answered.wait_for(|c| *c >= target),
        )
        .await
        .expect("DNS queries within 20 s")
        .expect("DNS server running");
    }
}

fn answer(query: &Message, zone: &Mutex<HashMap<String, Reply>>) -> Option<Message> {
    let q = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.add_query(q.clone());
    let zone = zone.lock().unwrap();
    let name = q.name.clone();
    let addrs = |ips: &[IpAddr], owner: &Name, kind: RecordType| -> Vec<Record> {
        ips.iter()
            .filter_map(|ip| match (ip, kind) {
                (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|data| Record::from_rdata(owner.clone(), 1, data))
            .collect()
    };
    match zone.get(&key(&name.to_ascii())) {
        None | Some(Reply::Nx) => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(Reply::Refused) => reply.metadata.response_code = ResponseCode::Refused,
        Some(Reply::Silent) => return None,
        Some(Reply::Addrs(ips)) => {
            for r in addrs(ips, &name, q.query_type) {
                reply.add_answer(r);
            }
        }
        Some(Reply::Srv(targets)) if q.query_type == RecordType::SRV => {
            for (target, port, weight) in targets {
                let t = Name::from_ascii(format!("{}.", key(target))).expect("name");
                reply.add_answer(Record::from_rdata(
                    name.clone(),
                    1,
                    RData::SRV(SRV::new(0, *weight, *port, t.clone())),
                ));
                if let Some(Reply::Addrs(ips)) = zone.get(&key(target)) {
                    for r in addrs(ips, &t, RecordType::A) {
                        reply.add_additional(r);
                    }
                }
            }
        }
        Some(Reply::Srv(_)) => {}
    }
    Some(reply)
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

/// Tagged echo servers on `127.0.0.<n>` for each n, all on one port.
pub async fn tagged_on(hosts: &[u8]) -> (u16, Vec<Backend>) {
    'retry: loop {
        let first = TcpListener::bind(format!("127.0.0.{}:0", hosts[0]))
            .await
            .expect("bind");
        let port = first.local_addr().expect("addr").port();
        let mut listeners = vec![first];
        for h in &hosts[1..] {
            match TcpListener::bind(format!("127.0.0.{h}:{port}")).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'retry, // the port is taken there: another one
            }
        }
        let backends = listeners
            .into_iter()
            .zip(hosts)
            .map(|(l, h)| Backend::serve(l, &format!("host{h}")))
            .collect();
        return (port, backends);
    }
}
