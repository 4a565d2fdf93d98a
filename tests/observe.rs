//! `observe layer4`, `error-limit` and `on-error` (HAProxy's health analysis of live
//! traffic), under warren and under Debian's `haproxy`, compared on the log lines and the
//! stats page. The server's checks go to another port that always answers (`port`), so only
//! the sessions' failed connects can take it down.

mod common;

use std::net::SocketAddr;

use common::both::{dash_f, tempdir, write_files, Proxy, Running, LIMIT};
use common::*;
use tokio::io::AsyncReadExt;

fn addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// A client whose session the proxy cannot connect: it sees its connection closed.
async fn refused_session(port: u16) {
    let mut s = tokio::net::TcpStream::connect(addr(port))
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(LIMIT, s.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "no server should have answered");
}

/// Runs `server_keywords` on a server whose sessions are refused while its checks pass:
/// every `error_limit` failed sessions apply `on-error` once (`hanafail`), and the
/// `applied`-th time takes the server DOWN, logged with HAProxy's words.
async fn observed(server_keywords: &str, error_limit: usize, applied: usize) {
    let refused = refused_addr().await;
    let check_target = Backend::tagged("check").await;
    let spare = Backend::tagged("spare").await;
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "global\n    log stderr format raw local0\n\
             defaults\n    mode tcp\n    log global\n    option log-health-checks\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    retries 0\n\
             listen rabbit\n    bind 127.0.0.1:{port}\n    balance first\n\
             server flaky {refused} check port {} inter 1h {server_keywords}\n\
             server spare {} backup\n\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats enable\n    stats uri /stats\n",
            check_target.addr.port(),
            spare.addr,
        );
        let dir = tempdir("observe");
        let files = write_files(&dir, &[("o.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        // Not the proxy's own port: a probe there would be a session, and an error.
        p.wait_accepting(addr(stats_port)).await;
        // The first check has passed: the server is at full health.
        p.wait_line("rabbit/flaky succeeded");
        let sessions = error_limit * applied;
        for i in 1..sessions {
            refused_session(port).await;
            // The error was counted before the client was closed.
            let status = stats_cell(stats_port, "rabbit", "flaky", "status").await;
            assert!(status.starts_with("UP"), "{proxy:?} after {i}: {status}");
            let hana = stats_cell(stats_port, "rabbit", "flaky", "hanafail").await;
            assert_eq!(hana, (i / error_limit).to_string(), "{proxy:?} after {i}");
        }
        refused_session(port).await;
        // HAProxy says why on its health-check line, warren on that line and the DOWN one.
        let why = format!("reason: Health analyze, info: \"Detected {error_limit} consecutive errors, last one was: L4 unsuccessful connection\"");
        let line = p.wait_line(&why);
        assert!(line.contains("rabbit/flaky"), "{proxy:?}: {line}");
        p.wait_line("Server rabbit/flaky is DOWN");
        let hana = stats_cell(stats_port, "rabbit", "flaky", "hanafail").await;
        assert_eq!(hana, applied.to_string(), "{proxy:?}");
        // The next session goes to the backup.
        let mut s = tokio::net::TcpStream::connect(addr(port))
            .await
            .expect("connect");
        let mut tag = [0u8; 6];
        s.read_exact(&mut tag).await.expect("tag");
        assert_eq!(&tag, b"spare\n", "{proxy:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_down_after_error_limit_failed_connects() {
    observed(
        "rise 1 fall 3 observe layer4 error-limit 3 on-error mark-down",
        3,
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_check_by_default_counts_as_one_failed_check() {
    // `fall 2`: each time `error-limit 2` is reached is one failed check; two of them.
    observed("rise 1 fall 2 observe layer4 error-limit 2", 2, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sudden_death_leaves_one_failure_then_the_next_takes_it() {
    // `fall 5`: the first sudden death leaves the server UP one failure from DOWN; the
    // second is that failure.
    observed(
        "rise 1 fall 5 observe layer4 error-limit 2 on-error sudden-death",
        2,
        2,
    )
    .await;
}

/// An HTTP server that answers every request with `503 Service Unavailable`.
async fn unavailable() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let answer =
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer7_counts_server_errors_in_mode_http() {
    let failing = unavailable().await;
    let check_target = Backend::tagged("check").await;
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "global\n    log stderr format raw local0\n\
             defaults\n    mode http\n    log global\n    option log-health-checks\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             listen ui\n    bind 127.0.0.1:{port}\n\
             server flaky {failing} check port {} inter 1h rise 1 fall 3 observe layer7 error-limit 2 on-error mark-down\n\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats enable\n    stats uri /stats\n",
            check_target.addr.port(),
        );
        let dir = tempdir("observe7");
        let files = write_files(&dir, &[("o.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(addr(stats_port)).await;
        p.wait_line("ui/flaky succeeded");
        let first = http(addr(port), "GET", "/api/overview", &[], "").await;
        assert_eq!(first.status, 503, "{proxy:?}");
        let status = stats_cell(stats_port, "ui", "flaky", "status").await;
        assert!(status.starts_with("UP"), "{proxy:?}: {status}");
        let second = http(addr(port), "GET", "/api/overview", &[], "").await;
        assert_eq!(second.status, 503, "{proxy:?}");
        let line = p.wait_line("Detected 2 consecutive errors, last one was: Wrong http response");
        assert!(line.contains("ui/flaky"), "{proxy:?}: {line}");
        p.wait_line("Server ui/flaky is DOWN");
    }
}
