//! DNS over real sockets: warren follows names through a `resolvers` section whose
//! nameserver is a DNS server of the test's own (`common::dns`, on 127.0.0.1:0), whose
//! records the tests change while warren runs. Backends listen on other loopback
//! addresses (127.0.0.2, 127.0.0.3, ...) with one port, so an A record picks one.
//! Tests wait on server events and on the DNS server's answer count, never on sleeps.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::dns::{Dns, Reply};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use warren::state::{BackendState, ServerEvent};

const LIMIT: Duration = Duration::from_secs(20);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Tagged echo servers on `127.0.0.<n>` for each n, all on one port.
async fn tagged_on(hosts: &[u8]) -> (u16, Vec<Backend>) {
    'retry: loop {
        let first = TcpListener::bind(format!("127.0.0.{}:0", hosts[0]))
            .await
            .unwrap();
        let port = first.local_addr().unwrap().port();
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

fn cfg(dns: &Dns, resolvers_extra: &str, backend: &str) -> String {
    format!(
        "resolvers dns\n nameserver ns1 {}\n timeout resolve 20ms\n timeout retry 200ms\n{resolvers_extra}\n\
         defaults\n mode tcp\n timeout connect 2s\n timeout client 30s\n timeout server 30s\n\
         frontend fe\n bind 127.0.0.1:0\n default_backend be\n\
         backend be\n{backend}\n",
        dns.addr
    )
}

/// Waits for an event of `server` after which `check` holds.
async fn wait_until(
    rx: &mut tokio::sync::broadcast::Receiver<ServerEvent>,
    be: &BackendState,
    check: impl Fn(&BackendState) -> bool,
) {
    tokio::time::timeout(LIMIT, async {
        while !check(be) {
            let _ = rx.recv().await;
        }
    })
    .await
    .expect("state reached within the limit");
}

fn usable(be: &BackendState, name: &str) -> bool {
    be.server(name).unwrap().usable()
}

async fn echo(s: &mut TcpStream, text: &str) {
    s.write_all(format!("{text}\n").as_bytes()).await.unwrap();
    assert_eq!(read_line(s).await, text);
}

#[tokio::test]
async fn a_server_follows_its_name_and_open_sessions_stay() {
    let mut dns = Dns::start().await;
    let (port, _backends) = tagged_on(&[2, 3]).await;
    dns.set("rabbit.test", Reply::Silent);
    let w = start(&cfg(
        &dns,
        "",
        &format!(" server r rabbit.test:{port} resolvers dns resolve-prefer ipv4 init-addr none"),
    ));
    let be = w.backend("be");
    let mut rx = be.events.subscribe();
    // Unresolved at start (init-addr none): in maintenance with the reason.
    let r = be.server("r").unwrap();
    assert_eq!(
        r.address.maint_reason().as_deref(),
        Some("no address yet for 'rabbit.test'")
    );
    assert_eq!(
        warren::stats::schema::server_status(r),
        "MAINT (resolution)"
    );
    dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.2")]));
    wait_until(&mut rx, &be, |b| usable(b, "r")).await;
    let (mut first, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "host2");

    dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.3")]));
    let moved: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    wait_until(&mut rx, &be, |b| b.server("r").unwrap().addr() == moved).await;
    let (_second, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "host3", "a new connection goes to the new address");
    echo(&mut first, "still flowing").await;
    w.stop().await;
}

#[tokio::test]
async fn nx_puts_the_server_in_maintenance_and_an_answer_brings_it_back() {
    let mut dns = Dns::start().await;
    let (port, _backends) = tagged_on(&[2]).await;
    let mut syslog = common::hostile::Syslog::bind().await;
    dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.2")]));
    let w = start(&format!(
        "global\n log 127.0.0.1:{} local0\n{}",
        syslog.port(),
        cfg(
            &dns,
            " hold nx 0s",
            &format!(" log global\n server r rabbit.test:{port} resolvers dns resolve-prefer ipv4 init-addr none"),
        )
    ));
    let be = w.backend("be");
    let mut rx = be.events.subscribe();
    wait_until(&mut rx, &be, |b| usable(b, "r")).await;
    let (mut open, _) = which_backend(w.addr("fe")).await;

    dns.set("rabbit.test", Reply::Nx);
    wait_until(&mut rx, &be, |b| !usable(b, "r")).await;
    let r = be.server("r").unwrap();
    assert_eq!(r.address.maint_reason().as_deref(), Some("DNS NX status"));
    assert_eq!(
        warren::stats::schema::server_status(r),
        "MAINT (resolution)"
    );
    syslog
        .wait_for(
            "Server be/r is going DOWN for maintenance (DNS NX status)",
            1,
        )
        .await;
    // HAProxy keeps the sessions of a server put in maintenance by DNS.
    echo(&mut open, "kept").await;

    dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.2")]));
    wait_until(&mut rx, &be, |b| usable(b, "r")).await;
    syslog
        .wait_for(
            "Server be/r administratively READY thanks to valid DNS answer",
            1,
        )
        .await;
    let (_s, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "host2");
    dns.answers(1).await;
    w.stop().await;
}
