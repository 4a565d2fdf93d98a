//! `option tcp-check` written the way RabbitMQ users write their AMQP check, against fake
//! servers that answer right, answer wrong, and stay silent; run under warren and under
//! Debian's `haproxy` (the reference), compared on the log lines and the stats page's
//! check codes.

mod common;

use std::net::SocketAddr;

use common::both::{dash_f, tempdir, write_files, Proxy, Running};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers the AMQP 0-9-1 protocol header with the start of a `connection.start` frame.
async fn amqp_like() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if s.read_exact(&mut header).await.is_err() {
                    return;
                }
                if &header == b"AMQP\x00\x00\x09\x01" {
                    let _ = s
                        .write_all(&[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 10, 0xce])
                        .await;
                } else {
                    let _ = s.write_all(b"AMQP\x00\x00\x09\x01").await;
                }
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest).await;
            });
        }
    });
    addr
}

/// Reads the 8-byte header, answers with an HTTP error, then closes.
async fn wrong() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if s.read_exact(&mut header).await.is_ok() {
                    let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
                }
            });
        }
    });
    addr
}

/// Accepts and never answers (a frozen node: the kernel still accepts TCP).
async fn silent() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// The `check_status` column of each server of `backend`, from the stats CSV.
async fn check_codes(stats_port: u16, backend: &str) -> Vec<(String, String)> {
    stats_csv(stats_port)
        .await
        .into_iter()
        .filter(|r| {
            r.get("pxname").map(String::as_str) == Some(backend)
                && !matches!(
                    r.get("svname").map(String::as_str),
                    Some("BACKEND" | "FRONTEND")
                )
        })
        .map(|r| {
            (
                r["svname"].clone(),
                r.get("check_status").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqp_check_written_as_tcp_check_gives_haproxys_codes() {
    let (good, bad, frozen) = (amqp_like().await, wrong().await, silent().await);
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "global\n    log stderr format raw local0\n\
             defaults\n    mode tcp\n    log global\n    option log-health-checks\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    timeout check 300ms\n\
             listen rabbit\n    bind 127.0.0.1:{port}\n    option tcp-check\n\
             tcp-check send-binary 414d5150\n    tcp-check send-binary 00000901\n\
             tcp-check comment \"AMQP handshake\"\n    tcp-check expect binary 000a000a\n\
             default-server check inter 200ms rise 1 fall 1\n\
             server good {good}\n    server bad {bad}\n    server frozen {frozen}\n\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats enable\n    stats uri /stats\n"
        );
        let dir = tempdir("tcpchk");
        let files = write_files(&dir, &[("c.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_line("rabbit/bad is DOWN");
        p.wait_line("rabbit/frozen is DOWN");
        p.wait_line("rabbit/good succeeded");
        // HAProxy gives the reason on the check line, warren on the DOWN line too.
        let line = p.wait_line("TCPCHK did not match content (binary) at step 4");
        assert!(
            line.contains("rabbit/bad") && line.contains("Layer7 invalid response"),
            "{proxy:?}: {line}"
        );
        assert!(
            line.contains("comment: AMQP handshake"),
            "{proxy:?}: {line}"
        );
        let line = p.wait_line("Layer7 timeout");
        assert!(line.contains("rabbit/frozen"), "{proxy:?}: {line}");
        let mut codes = check_codes(stats_port, "rabbit").await;
        codes.sort();
        let codes: Vec<(&str, &str)> = codes
            .iter()
            .map(|(s, c)| (s.as_str(), c.trim_start_matches(['*', ' '])))
            .collect();
        assert_eq!(
            codes,
            [("bad", "L7RSP"), ("frozen", "L7TOUT"), ("good", "L7OK")],
            "{proxy:?}"
        );
        // Sessions go to the only server left.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(b"AMQP\x00\x00\x09\x01").await.expect("send");
        let mut answer = [0u8; 12];
        s.read_exact(&mut answer).await.expect("answer");
        assert_eq!(&answer[7..11], &[0, 10, 0, 10], "{proxy:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_tcp_check_alone_is_a_connect_check() {
    let a = Backend::tagged("a").await;
    let refused = refused_addr().await;
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "global\n    log stderr format raw local0\n\
             defaults\n    mode tcp\n    log global\n    option log-health-checks\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             listen rabbit\n    bind 127.0.0.1:{port}\n    option tcp-check\n\
             default-server check inter 200ms rise 1 fall 1\n    server up {}\n    server gone {refused}\n\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats enable\n    stats uri /stats\n",
            a.addr
        );
        let dir = tempdir("tcpchk");
        let files = write_files(&dir, &[("c.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_line("rabbit/gone is DOWN");
        // HAProxy gives the reason on the check line, warren on the DOWN line too.
        let line = p.wait_line("Layer4 connection problem");
        assert!(line.contains("rabbit/gone"), "{proxy:?}: {line}");
        p.wait_line("rabbit/up succeeded");
        let mut codes = check_codes(stats_port, "rabbit").await;
        codes.sort();
        let codes: Vec<(&str, &str)> = codes
            .iter()
            .map(|(s, c)| (s.as_str(), c.trim_start_matches(['*', ' '])))
            .collect();
        assert_eq!(codes, [("gone", "L4CON"), ("up", "L4OK")], "{proxy:?}");
    }
}
