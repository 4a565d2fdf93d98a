//! ACLs and the rules that use them, over real sockets, each test run under warren and
//! under Debian's `haproxy` (the reference). Clients pick their source address among
//! 127.0.0.1, .2 and .3 to match `src` ACLs.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::both::{dash_f, tempdir, write_files, Proxy, Running};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// Global and defaults every test uses: logs on stderr in tcplog form.
const HEAD: &str = "global\n    log stderr format raw local0\n\
    defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n";

/// Connects to `to` from source address `from` (any 127/8 address is local on Linux).
/// A reset can already end the connect itself when the proxy refuses at once.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    let ip: IpAddr = from.parse().expect("ip");
    socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
    socket.connect(to).await
}

/// The tag of the server a client from `from` reaches; empty when refused or closed.
async fn tag_from(from: &str, to: SocketAddr) -> String {
    match connect_from(from, to).await {
        Ok(mut s) => read_line(&mut s).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => String::new(),
        Err(e) => panic!("connect from {from} to {to}: {e}"),
    }
}

fn addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// A stats page on `port`, for the counters.
fn stats(port: u16) -> String {
    format!("listen stats\n    bind 127.0.0.1:{port}\n    mode http\n    stats enable\n    stats uri /stats\n")
}

/// Column `field` of the FRONTEND row of `proxy` in the stats CSV.
async fn frontend_counter(stats_port: u16, proxy: &str, field: &str) -> String {
    stats_cell(stats_port, proxy, "FRONTEND", field).await
}

/// Writes `cfg`, starts `proxy` on it, waits until `port` accepts.
async fn run(proxy: Proxy, cfg: &str, port: u16) -> Running {
    let dir = tempdir("acl");
    let files = write_files(&dir, &[("acl.cfg", cfg)]);
    let mut p = Running::start(proxy, &dash_f(&files), &[]);
    p.wait_accepting(addr(port)).await;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_request_connection_rules_refuse_by_source_and_count_dcon() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "{HEAD}frontend fe\n    bind 127.0.0.1:{port}\n    acl blocked src 127.0.0.2 127.0.0.3/32\n    acl local src 127.0.0.0/8\n    tcp-request connection reject if blocked\n    tcp-request connection accept if local\n    tcp-request connection reject\n    default_backend be\nbackend be\n    server s1 {}\n{}",
            a.addr,
            stats(stats_port)
        );
        let _p = run(proxy, &cfg, port).await;
        assert_eq!(tag_from("127.0.0.1", addr(port)).await, "a", "{proxy:?}");
        assert_eq!(tag_from("127.0.0.2", addr(port)).await, "", "{proxy:?}");
        assert_eq!(tag_from("127.0.0.3", addr(port)).await, "", "{proxy:?}");
        assert_eq!(
            frontend_counter(stats_port, "fe", "dcon").await,
            "2",
            "{proxy:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_request_content_reject_is_logged_and_counted_in_dreq() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "{HEAD}frontend fe\n    bind 127.0.0.1:{port}\n    tcp-request content reject if {{ src 127.0.0.2 }}\n    default_backend be\nbackend be\n    server s1 {}\n{}",
            a.addr,
            stats(stats_port)
        );
        let mut p = run(proxy, &cfg, port).await;
        assert_eq!(tag_from("127.0.0.2", addr(port)).await, "", "{proxy:?}");
        let line = p.wait_line("127.0.0.2:");
        assert!(line.contains(" PR "), "{proxy:?}: {line}");
        assert_eq!(
            frontend_counter(stats_port, "fe", "dreq").await,
            "1",
            "{proxy:?}"
        );
        assert_eq!(tag_from("127.0.0.1", addr(port)).await, "a", "{proxy:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_backend_by_source_destination_port_and_server_count() {
    let (a, b, c) = (
        Backend::tagged("a").await,
        Backend::tagged("b").await,
        Backend::tagged("c").await,
    );
    for proxy in Proxy::BOTH {
        let (p1, p2) = (free_port(), free_port());
        let cfg = format!(
            "{HEAD}frontend fe\n    bind 127.0.0.1:{p1}\n    bind 127.0.0.1:{p2}\n\
             acl second_port dst_port {p2}\n    acl from_three src 127.0.0.3\n\
             use_backend down if from_three {{ nbsrv(down) gt 0 }}\n\
             use_backend bb if second_port || from_three\n    use_backend cc if {{ src_port 0:0 }}\n\
             default_backend aa\n\
             backend aa\n    server s1 {}\nbackend bb\n    server s1 {}\nbackend cc\n    server s1 {}\n\
             backend down\n    server s1 {} disabled\n",
            a.addr, b.addr, c.addr, c.addr
        );
        let _p = run(proxy, &cfg, p1).await;
        assert_eq!(tag_from("127.0.0.1", addr(p1)).await, "a", "{proxy:?}");
        assert_eq!(tag_from("127.0.0.1", addr(p2)).await, "b", "{proxy:?}");
        // `down` has no usable server, so nbsrv(down) is 0 and the next rule applies.
        assert_eq!(tag_from("127.0.0.3", addr(p1)).await, "b", "{proxy:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_server_pins_matching_clients_and_balances_the_others() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    for proxy in Proxy::BOTH {
        let port = free_port();
        let cfg = format!(
            "{HEAD}listen fe\n    bind 127.0.0.1:{port}\n    balance roundrobin\n\
             acl pinned src 127.0.0.2\n    use-server s2 if pinned\n\
             server s1 {}\n    server s2 {}\n",
            a.addr, b.addr
        );
        let _p = run(proxy, &cfg, port).await;
        for _ in 0..4 {
            assert_eq!(tag_from("127.0.0.2", addr(port)).await, "b", "{proxy:?}");
        }
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(tag_from("127.0.0.1", addr(port)).await);
        }
        seen.sort();
        assert_eq!(seen, ["a", "a", "b", "b"], "{proxy:?}");
    }
}

/// A minimal TLS ClientHello record carrying `name` as SNI.
fn client_hello(name: &str) -> Vec<u8> {
    let n = name.as_bytes();
    let mut sni = ((n.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(n.len() as u16).to_be_bytes());
    sni.extend_from_slice(n);
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    rec.extend_from_slice(&msg);
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_ssl_sni_routes_tls_passthrough_and_the_hello_reaches_the_server() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    for proxy in Proxy::BOTH {
        let port = free_port();
        let cfg = format!(
            "{HEAD}frontend fe\n    bind 127.0.0.1:{port}\n    tcp-request inspect-delay 5s\n\
             tcp-request content reject if {{ req.ssl_sni -m end .blocked.example }}\n\
             tcp-request content accept if {{ req_ssl_sni -m found }}\n\
             use_backend bb if {{ req.ssl_sni -i rabbit-b.example }}\n    default_backend aa\n\
             backend aa\n    server s1 {}\nbackend bb\n    server s1 {}\n",
            a.addr, b.addr
        );
        let _p = run(proxy, &cfg, port).await;
        for (name, tag) in [
            ("RABBIT-B.example", "b"),
            ("rabbit-a.example", "a"),
            ("x.blocked.example", ""),
        ] {
            let mut s = TcpStream::connect(addr(port)).await.expect("connect");
            let hello = client_hello(name);
            s.write_all(&hello).await.expect("send hello");
            assert_eq!(read_line(&mut s).await, tag, "{proxy:?} {name}");
            if !tag.is_empty() {
                // The echo server got the hello unchanged: it comes back.
                let mut back = vec![0u8; hello.len()];
                tokio::io::AsyncReadExt::read_exact(&mut s, &mut back)
                    .await
                    .expect("echo");
                assert_eq!(back, hello, "{proxy:?}");
            }
        }
    }
}

#[test]
fn rules_warren_refuses_say_what_to_write() {
    let dir = tempdir("acl");
    for (body, fragment) in [
        (
            "frontend fe\n    bind 127.0.0.1:1\n    use_backend nope if TRUE\n",
            "no backend named 'nope'",
        ),
        (
            "frontend fe\n    bind 127.0.0.1:1\n    use_backend be if unknown\nbackend be\n",
            "no ACL named 'unknown'",
        ),
        (
            "frontend fe\n    bind 127.0.0.1:1\n    tcp-request content set-var(txn.x) int(1)\n",
            "warren applies 'accept' and 'reject'",
        ),
        (
            "frontend fe\n    bind 127.0.0.1:1\n    acl h hdr(host) -i x\n",
            "reads HTTP",
        ),
        (
            "backend be\n    tcp-request connection reject\n",
            "write it in the frontend or listen section",
        ),
    ] {
        let files = write_files(&dir, &[("bad.cfg", &format!("{HEAD}{body}"))]);
        let c = common::both::check(Proxy::Warren, &dash_f(&files), &[]);
        assert!(!c.valid, "{body}:\n{}", c.output);
        assert!(c.output.contains(fragment), "{body}:\n{}", c.output);
        // HAProxy refuses the same files, except those warren refuses by choice.
        let h = common::both::check(Proxy::Haproxy, &dash_f(&files), &[]);
        if !fragment.contains("warren applies") && !fragment.contains("reads HTTP") {
            assert!(!h.valid, "{body}:\n{}", h.output);
        }
    }
}
