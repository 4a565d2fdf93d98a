//! PROXY protocol over real sockets: warren tells servers who the client is
//! (`send-proxy`, `send-proxy-v2`) and learns it from a balancer in front (`accept-proxy`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use warren::proxy_protocol::{self, Header, Version};

const LIMIT: Duration = Duration::from_secs(10);

/// A server that reads a PROXY header from each connection, reports it with the bytes
/// that followed it, and answers "ok".
async fn header_reader() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<(Result<Header, String>, Vec<u8>)>,
) {
    let l = listener().await;
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + LIMIT;
                let header = proxy_protocol::read(&mut s, deadline)
                    .await
                    .map_err(|e| e.to_string());
                let mut rest = [0u8; 5];
                let n = s.read(&mut rest).await.unwrap_or(0);
                let _ = s.write_all(b"ok\n").await;
                let _ = tx.send((header, rest[..n].to_vec()));
            });
        }
    });
    (addr, rx)
}

fn cfg(bind_opts: &str, server_opts: &str, server: SocketAddr) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         listen px\n    bind 127.0.0.1:0 {bind_opts}\n    server s {server} {server_opts}\n"
    )
}

#[tokio::test]
async fn send_proxy_v1_and_v2_tell_the_server_the_real_client() {
    for (opt, _version) in [("send-proxy", Version::V1), ("send-proxy-v2", Version::V2)] {
        let (server, mut seen) = header_reader().await;
        let w = start(&cfg("", opt, server));
        let mut c = TcpStream::connect(w.addr("px")).await.expect("connect");
        c.write_all(b"hello").await.expect("write");
        assert_eq!(read_line(&mut c).await, "ok");
        let (header, rest) = tokio::time::timeout(LIMIT, seen.recv())
            .await
            .expect("seen")
            .expect("open");
        let expected = Header::Proxied {
            source: c.local_addr().expect("addr"),
            destination: w.addr("px"),
        };
        assert_eq!(header, Ok(expected), "{opt}");
        assert_eq!(
            rest, b"hello",
            "{opt}: the client's bytes follow the header untouched"
        );
        w.stop().await;
    }
}

#[tokio::test]
async fn accept_proxy_takes_the_client_from_the_header_and_passes_it_on() {
    let (server, mut seen) = header_reader().await;
    let w = start(&cfg("accept-proxy", "send-proxy-v2", server));
    let mut c = TcpStream::connect(w.addr("px")).await.expect("connect");
    c.write_all(b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 5672\r\nhello")
        .await
        .expect("write");
    assert_eq!(read_line(&mut c).await, "ok");
    let (header, rest) = tokio::time::timeout(LIMIT, seen.recv())
        .await
        .expect("seen")
        .expect("open");
    let expected = Header::Proxied {
        source: "203.0.113.7:5555".parse().expect("a"),
        destination: "198.51.100.1:5672".parse().expect("a"),
    };
    assert_eq!(header, Ok(expected));
    assert_eq!(rest, b"hello");
    w.stop().await;
}

#[tokio::test]
async fn accept_proxy_refuses_a_missing_or_malformed_header() {
    let (server, mut seen) = header_reader().await;
    let w = start(&cfg("accept-proxy", "", server));
    for bad in [
        &b"AMQP\x00\x00\x09\x01"[..],
        b"PROXY TCP4 1.2.3.4 nonsense\r\n",
        b"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n",
    ] {
        let mut c = TcpStream::connect(w.addr("px")).await.expect("connect");
        c.write_all(bad).await.expect("write");
        let got = tokio::time::timeout(LIMIT, read_to_end(&mut c))
            .await
            .expect("closed");
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(bad));
    }
    // A good one still works, and it is the only connection the server ever saw.
    let mut c = TcpStream::connect(w.addr("px")).await.expect("connect");
    c.write_all(b"PROXY UNKNOWN\r\nhello").await.expect("write");
    assert_eq!(read_line(&mut c).await, "ok");
    let (header, _) = tokio::time::timeout(LIMIT, seen.recv())
        .await
        .expect("seen")
        .expect("open");
    // The client's PROXY line was consumed by warren: the server, which has no
    // send-proxy, sees the client's bytes ("hello"), not a header.
    assert_eq!(header, Err("no PROXY protocol header".to_string()));
    assert!(
        seen.try_recv().is_err(),
        "refused clients must never reach the server"
    );
    w.stop().await;
}
