//! DNS over real sockets: warren follows names through a `resolvers` section whose
//! nameserver is a DNS server of the test's own (`common::dns`, on 127.0.0.1:0), whose
//! records the tests change while warren runs. Backends listen on other loopback
//! addresses (127.0.0.2, 127.0.0.3, ...) with one port, so an A record picks one.
//! Tests wait on server events and on the DNS server's answer count, never on sleeps.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::dns::{ip, tagged_on, Dns, Reply};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use warren::config::{self, Syntax};
use warren::state::{BackendState, ServerEvent};

const LIMIT: Duration = Duration::from_secs(20);

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
    let dns = Dns::start().await;
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
            &format!(" log global\n server r rabbit.test:{port} resolvers dns resolve-prefer ipv4 init-addr none\n\
                       listen stats\n bind 127.0.0.1:0\n mode http\n stats enable\n stats uri /stats"),
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

fn addr_of(be: &BackendState, name: &str) -> SocketAddr {
    be.server(name).unwrap().addr()
}

#[tokio::test]
async fn a_template_fills_its_slots_from_a_records_and_unchanged_servers_keep_their_sessions() {
    let dns = Dns::start().await;
    let (port, _backends) = tagged_on(&[2, 3, 4]).await;
    dns.set(
        "rabbit.test",
        Reply::Addrs(vec![ip("127.0.0.2"), ip("127.0.0.3")]),
    );
    let w = start(&cfg(
        &dns,
        "",
        &format!(" balance first\n server-template r 3 rabbit.test:{port} resolvers dns resolve-prefer ipv4 init-addr none"),
    ));
    let be = w.backend("be");
    let mut rx = be.events.subscribe();
    wait_until(&mut rx, &be, |b| usable(b, "r1") && usable(b, "r2")).await;
    let at = |h: u8| -> SocketAddr { format!("127.0.0.{h}:{port}").parse().unwrap() };
    assert_eq!((addr_of(&be, "r1"), addr_of(&be, "r2")), (at(2), at(3)));
    let r3 = be.server("r3").unwrap();
    assert!(!r3.usable());
    assert_eq!(
        warren::stats::schema::server_status(r3),
        "MAINT (resolution)"
    );

    // A session on r2 (127.0.0.3): `balance first` fills r1 first, so take r1 out by hand.
    let r1 = be.server("r1").unwrap();
    r1.set_admin(warren::state::AdminState::Drain);
    let (mut on_r2, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "host3");
    r1.set_admin(warren::state::AdminState::Ready);
    let r2 = be.server("r2").unwrap();
    let r2_total = r2.counters.total.load(std::sync::atomic::Ordering::Relaxed);

    // 127.0.0.2 leaves, 127.0.0.4 arrives: r2 keeps its address, r1 takes the new one.
    dns.set(
        "rabbit.test",
        Reply::Addrs(vec![ip("127.0.0.3"), ip("127.0.0.4")]),
    );
    wait_until(&mut rx, &be, |b| addr_of(b, "r1") == at(4)).await;
    assert_eq!(addr_of(&be, "r2"), at(3));
    assert!(usable(&be, "r2") && !usable(&be, "r3"));
    echo(&mut on_r2, "untouched").await;

    // Only 127.0.0.3 left: r1's slot is freed and goes to maintenance.
    dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.3")]));
    wait_until(&mut rx, &be, |b| !usable(b, "r1")).await;
    assert_eq!(
        r1.address.maint_reason().as_deref(),
        Some("No IP for server")
    );
    assert!(usable(&be, "r2"));
    echo(&mut on_r2, "still untouched").await;
    assert_eq!(
        r2.counters.total.load(std::sync::atomic::Ordering::Relaxed),
        r2_total,
        "no session of r2 was moved or reopened"
    );
    let (_s, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "host3");
    w.stop().await;
}

#[tokio::test]
async fn a_template_on_an_srv_name_takes_ports_and_weights_from_the_records() {
    let dns = Dns::start().await;
    let one = Backend::tagged("one").await;
    let two = Backend::tagged("two").await;
    dns.set("n1.rabbit.test", Reply::Addrs(vec![ip("127.0.0.1")]));
    dns.set("n2.rabbit.test", Reply::Addrs(vec![ip("127.0.0.1")]));
    dns.set(
        "_amqp._tcp.rabbit.test",
        Reply::Srv(vec![
            ("n1.rabbit.test".into(), one.addr.port(), 256),
            ("n2.rabbit.test".into(), two.addr.port(), 512),
        ]),
    );
    let w = start(&cfg(
        &dns,
        " accepted_payload_size 8192",
        " server-template r 1-3 _amqp._tcp.rabbit.test resolvers dns resolve-prefer ipv4",
    ));
    let be = w.backend("be");
    let mut rx = be.events.subscribe();
    wait_until(&mut rx, &be, |b| usable(b, "r1") && usable(b, "r2")).await;
    assert_eq!(addr_of(&be, "r1"), one.addr);
    assert_eq!(addr_of(&be, "r2"), two.addr);
    assert_eq!(be.server("r1").unwrap().weight(), 1);
    assert_eq!(be.server("r2").unwrap().weight(), 2, "(512 + 255) / 256");
    assert!(!usable(&be, "r3"));
    let (mut on_two, _) = {
        be.server("r1")
            .unwrap()
            .set_admin(warren::state::AdminState::Drain);
        let got = which_backend(w.addr("fe")).await;
        be.server("r1")
            .unwrap()
            .set_admin(warren::state::AdminState::Ready);
        got
    };

    // n1 leaves the SRV answer: its slot goes to maintenance, r2 carries on.
    dns.set(
        "_amqp._tcp.rabbit.test",
        Reply::Srv(vec![("n2.rabbit.test".into(), two.addr.port(), 512)]),
    );
    wait_until(&mut rx, &be, |b| !usable(b, "r1")).await;
    assert_eq!(
        be.server("r1").unwrap().address.maint_reason().as_deref(),
        Some("entry removed from SRV record")
    );
    assert_eq!(addr_of(&be, "r2"), two.addr);
    echo(&mut on_two, "srv").await;
    let (_s, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "two");
    w.stop().await;
}

#[tokio::test]
async fn init_addr_methods_apply_in_order() {
    let (port, _backends) = tagged_on(&[2]).await;
    let mut syslog = common::hostile::Syslog::bind().await;
    let w = start(&format!(
        "global\n log 127.0.0.1:{} local0\n\
         defaults\n mode tcp\n log global\n timeout connect 2s\n timeout client 30s\n timeout server 30s\n\
         frontend fe\n bind 127.0.0.1:0\n default_backend be\n\
         backend be\n\
         server libc localhost:{port} init-addr libc\n\
         server fallback no-such-host.invalid:{port} init-addr libc,127.0.0.2\n\
         server none no-such-host.invalid:{port} init-addr last,libc,none\n",
        syslog.port()
    ));
    syslog
        .wait_for(
            "Server be/none is in maintenance (resolution): no address yet for 'no-such-host.invalid'.",
            1,
        )
        .await;
    let be = w.backend("be");
    assert!(addr_of(&be, "libc").ip().is_loopback());
    assert!(usable(&be, "libc"));
    assert_eq!(
        addr_of(&be, "fallback"),
        format!("127.0.0.2:{port}").parse().unwrap()
    );
    assert!(usable(&be, "fallback"));
    let none = be.server("none").unwrap();
    assert!(!none.usable());
    assert_eq!(
        warren::stats::schema::server_status(none),
        "MAINT (resolution)"
    );
    assert_eq!(
        none.address.maint_reason().as_deref(),
        Some("no address yet for 'no-such-host.invalid'")
    );
    // Without `none`, a name that does not resolve is an error with its line.
    let e = config::load_str(
        &format!("backend be\n server a no-such-host.invalid:{port} init-addr last,libc\n"),
        "t.cfg",
        Syntax::Haproxy,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("t.cfg:2: server address 'no-such-host.invalid:")
            && e.contains("could not resolve address 'no-such-host.invalid'"),
        "{e}"
    );
    w.stop().await;
}

#[tokio::test]
async fn init_addr_last_keeps_the_running_address_across_a_reload() {
    let dns = Dns::start().await;
    let (port, _backends) = tagged_on(&[2]).await;
    dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.2")]));
    let for_text = dns.clone();
    let text = |init: &str, weight: u32| {
        cfg(
            &for_text,
            "",
            &format!(" server r rabbit.test:{port} resolvers dns resolve-prefer ipv4 init-addr {init} weight {weight}"),
        )
    };
    let w = start(&text("last,none", 1));
    let be = w.backend("be");
    let mut rx = be.events.subscribe();
    wait_until(&mut rx, &be, |b| usable(b, "r")).await;
    // From now on the nameserver is silent: only `last` can give the address.
    dns.set("rabbit.test", Reply::Silent);
    w.reload(&text("last,none", 2)).await.unwrap();
    let be = w.handle_backend("be");
    assert!(
        usable(&be, "r"),
        "init-addr last: the address the process had"
    );
    assert_eq!(
        addr_of(&be, "r"),
        format!("127.0.0.2:{port}").parse().unwrap()
    );
    // `none` first: the server starts over without an address.
    w.reload(&text("none,last", 3)).await.unwrap();
    let be = w.handle_backend("be");
    assert!(!usable(&be, "r"));
    w.stop().await;
}
