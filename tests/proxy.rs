//! The L4 proxy over real sockets on 127.0.0.1: balancing, failover, redispatch,
//! maxconn and queueing, timeouts, half-close.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A deadline for a test that would otherwise hang; never a synchronisation delay.
const LIMIT: Duration = Duration::from_secs(10);

fn cfg(defaults: &str, backend: &str) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n{defaults}\n\
         frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
         backend be\n{backend}\n"
    )
}

async fn count_backends(addr: std::net::SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (_s, tag) = which_backend(addr).await;
        *seen.entry(tag).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn weighted_roundrobin_distribution() {
    let (a, b, c) = (
        Backend::tagged("a").await,
        Backend::tagged("b").await,
        Backend::tagged("c").await,
    );
    let w = start(&cfg(
        "",
        &format!(
            "    balance roundrobin\n    server a {} weight 1\n    server b {} weight 2\n    server c {} weight 3",
            a.addr, b.addr, c.addr
        ),
    ));
    let seen = count_backends(w.addr("fe"), 60).await;
    assert_eq!(seen.get("a"), Some(&10), "{seen:?}");
    assert_eq!(seen.get("b"), Some(&20), "{seen:?}");
    assert_eq!(seen.get("c"), Some(&30), "{seen:?}");
    w.stop().await;
}

#[tokio::test]
async fn report_weights_30_30_alternate() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    let w = start(&cfg(
        "",
        &format!(
            "    balance roundrobin\n    server a {} weight 30\n    server b {} weight 30",
            a.addr, b.addr
        ),
    ));
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(which_backend(w.addr("fe")).await.1);
    }
    for pair in order.windows(2) {
        assert_ne!(pair[0], pair[1], "equal weights must alternate: {order:?}");
    }
    w.stop().await;
}

#[tokio::test]
async fn failover_when_a_backend_stops() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    let w = start(&cfg(
        "",
        &format!(
            "    server a {} check inter 100 rise 2 fall 2\n    server b {} check inter 100 rise 2 fall 2",
            a.addr, b.addr
        ),
    ));
    let mut events = w.backend("be").events.subscribe();
    b.stop().await;
    wait_state(&mut events, "b", false, LIMIT).await;
    let seen = count_backends(w.addr("fe"), 10).await;
    assert_eq!(seen.get("a"), Some(&10), "{seen:?}");
    w.stop().await;
}

#[tokio::test]
async fn server_comes_back_up_after_rise_checks() {
    let a = Backend::tagged("a").await;
    let dead = refused_addr().await;
    let w = start(&cfg(
        "",
        &format!("    server a {} check inter 100 rise 2 fall 1\n    server b {dead} check inter 100 rise 2 fall 1", a.addr),
    ));
    let mut events = w.backend("be").events.subscribe();
    wait_state(&mut events, "b", false, LIMIT).await;
    // Bring b to life on the very address warren checks.
    let l = tokio::net::TcpListener::bind(dead)
        .await
        .expect("rebind the dead port");
    wait_state(&mut events, "b", true, LIMIT).await;
    drop(l);
    w.stop().await;
}

#[tokio::test]
async fn redispatch_moves_a_refused_connect_to_another_server() {
    let a = Backend::tagged("a").await;
    let dead = refused_addr().await;
    // No health check on b: only redispatch can save the sessions sent to it.
    let w = start(&cfg(
        "    retries 3\n    option redispatch",
        &format!(
            "    server a {} weight 1\n    server b {dead} weight 1",
            a.addr
        ),
    ));
    let seen = count_backends(w.addr("fe"), 10).await;
    assert_eq!(
        seen.get("a"),
        Some(&10),
        "every session must reach a: {seen:?}"
    );
    assert!(w
        .backend("be")
        .server("b")
        .map(|s| s
            .counters
            .connect_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .unwrap_or(false));
    w.stop().await;
}

#[tokio::test]
async fn without_redispatch_a_refused_server_fails_the_session() {
    let dead = refused_addr().await;
    let w = start(&cfg("    retries 0", &format!("    server b {dead}")));
    let mut s = TcpStream::connect(w.addr("fe")).await.expect("connect");
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("closed promptly");
    assert!(got.is_empty());
    w.stop().await;
}

#[tokio::test]
async fn no_server_up_closes_the_client_promptly() {
    let dead = refused_addr().await;
    let w = start(&cfg(
        "",
        &format!("    server b {dead} check inter 100 fall 1"),
    ));
    let mut events = w.backend("be").events.subscribe();
    wait_state(&mut events, "b", false, LIMIT).await;
    let mut s = TcpStream::connect(w.addr("fe")).await.expect("connect");
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("closed promptly");
    assert!(got.is_empty());
    w.stop().await;
}

#[tokio::test]
async fn backup_serves_only_while_no_active_server_is_up() {
    let (a, bk) = (Backend::tagged("a").await, Backend::tagged("backup").await);
    let w = start(&cfg(
        "",
        &format!(
            "    server a {} check inter 100 rise 1 fall 1\n    server bk {} backup",
            a.addr, bk.addr
        ),
    ));
    let seen = count_backends(w.addr("fe"), 4).await;
    assert_eq!(seen.get("a"), Some(&4), "{seen:?}");
    let mut events = w.backend("be").events.subscribe();
    a.stop().await;
    wait_state(&mut events, "a", false, LIMIT).await;
    let seen = count_backends(w.addr("fe"), 4).await;
    assert_eq!(seen.get("backup"), Some(&4), "{seen:?}");
    w.stop().await;
}

#[tokio::test]
async fn server_maxconn_queues_until_a_slot_frees() {
    let a = Backend::tagged("a").await;
    let w = start(&cfg(
        "    timeout queue 10s",
        &format!("    server a {} maxconn 1", a.addr),
    ));
    let (first, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "a");
    // The second client is accepted by warren but queued: no greeting while the first holds the slot.
    let mut second = TcpStream::connect(w.addr("fe")).await.expect("connect");
    let be = w.backend("be");
    tokio::time::timeout(LIMIT, async {
        while be
            .counters
            .queued
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("second session queued");
    drop(first);
    let tag = tokio::time::timeout(LIMIT, read_line(&mut second))
        .await
        .expect("served after the slot freed");
    assert_eq!(tag, "a");
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_queue_closes_a_waiting_client() {
    let a = Backend::tagged("a").await;
    let w = start(&cfg(
        "    timeout queue 200ms",
        &format!("    server a {} maxconn 1", a.addr),
    ));
    let (_first, _) = which_backend(w.addr("fe")).await;
    let mut second = TcpStream::connect(w.addr("fe")).await.expect("connect");
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut second))
        .await
        .expect("closed by timeout queue");
    assert!(
        got.is_empty(),
        "a queued client must never reach the server"
    );
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_client_cuts_an_idle_session() {
    let a = Backend::tagged("a").await;
    let w = start(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 300ms\n    timeout server 30s\n\
         listen px\n    bind 127.0.0.1:0\n    server a {}\n",
        a.addr
    ));
    let (mut s, _) = which_backend(w.addr("px")).await;
    // Activity keeps it open: each echo refreshes both sides.
    for _ in 0..3 {
        s.write_all(b"ping\n").await.expect("write");
        assert_eq!(read_line(&mut s).await, "ping");
    }
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("cut by timeout client");
    assert!(rest.is_empty());
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_server_cuts_an_idle_session() {
    let a = Backend::tagged("a").await;
    let w = start(&cfg(
        "",
        &format!("    timeout server 300ms\n    server a {}", a.addr),
    ));
    let (mut s, _) = which_backend(w.addr("fe")).await;
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("cut by timeout server");
    assert!(rest.is_empty());
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_tunnel_replaces_client_and_server() {
    let a = Backend::tagged("a").await;
    let w = start(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 100ms\n    timeout server 100ms\n    timeout tunnel 30s\n\
         listen px\n    bind 127.0.0.1:0\n    server a {}\n",
        a.addr
    ));
    let (mut s, _) = which_backend(w.addr("px")).await;
    // Wait well past client/server timeouts on a timer that is not warren's: if they
    // applied, the session would be gone. The tunnel timeout keeps it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.write_all(b"still here\n").await.expect("write");
    assert_eq!(read_line(&mut s).await, "still here");
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn timeout_connect_then_redispatch() {
    let a = Backend::tagged("a").await;
    let (hole, _fill, _sock) = blackhole();
    let w = start(&format!(
        "defaults\n    mode tcp\n    timeout connect 200ms\n    timeout client 30s\n    timeout server 30s\n    retries 2\n    option redispatch\n\
         listen px\n    bind 127.0.0.1:0\n    balance first\n    server hole {hole}\n    server a {}\n",
        a.addr
    ));
    let (_s, tag) = tokio::time::timeout(LIMIT, which_backend(w.addr("px")))
        .await
        .expect("served");
    assert_eq!(tag, "a");
    w.stop().await;
}

#[tokio::test]
async fn half_close_is_passed_on_and_the_other_direction_keeps_flowing() {
    // A server that reads everything until EOF, then answers with the byte count.
    let l = listener().await;
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let mut all = Vec::new();
            let _ = s.read_to_end(&mut all).await;
            let _ = s.write_all(format!("got {}\n", all.len()).as_bytes()).await;
        }
    });
    let w = start(&cfg("", &format!("    server a {addr}")));
    let mut s = TcpStream::connect(w.addr("fe")).await.expect("connect");
    s.write_all(&vec![7u8; 100_000]).await.expect("write");
    s.shutdown().await.expect("half-close");
    let reply = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("reply after half-close");
    assert_eq!(String::from_utf8_lossy(&reply), "got 100000\n");
    w.stop().await;
}

#[tokio::test]
async fn large_transfer_both_ways_is_intact() {
    let a = Backend::tagged("a").await;
    let w = start(&cfg("", &format!("    server a {}", a.addr)));
    let (s, _) = which_backend(w.addr("fe")).await;
    let (mut r, mut wr) = s.into_split();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await.expect("write");
        wr.shutdown().await.expect("shutdown");
    });
    let mut back = Vec::new();
    tokio::time::timeout(LIMIT, r.read_to_end(&mut back))
        .await
        .expect("echo completes")
        .expect("read");
    writer.await.expect("writer");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
    w.stop().await;
}

#[tokio::test]
async fn shutdown_sessions_on_marked_down() {
    let a = Backend::tagged("a").await;
    let b = Backend::tagged("b").await;
    let w = start(&cfg(
        "",
        &format!(
            "    balance first\n    server a {} check inter 100 fall 1 on-marked-down shutdown-sessions\n    server b {}",
            a.addr, b.addr
        ),
    ));
    let (mut s, tag) = which_backend(w.addr("fe")).await;
    assert_eq!(tag, "a");
    let mut events = w.backend("be").events.subscribe();
    a.stop().await; // its listener closes; the established session would survive on its own
    wait_state(&mut events, "a", false, LIMIT).await;
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("session shut down");
    assert!(rest.is_empty());
    w.stop().await;
}

#[tokio::test]
async fn stop_ends_open_sessions() {
    let a = Backend::tagged("a").await;
    let w = start(&cfg("", &format!("    server a {}", a.addr)));
    let (mut s, _) = which_backend(w.addr("fe")).await;
    tokio::time::timeout(LIMIT, w.stop())
        .await
        .expect("stops within the limit");
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut s))
        .await
        .expect("closed on stop");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn frontend_maxconn_leaves_extra_clients_in_the_backlog() {
    let a = Backend::tagged("a").await;
    let w = start(&format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:0\n    maxconn 1\n    default_backend be\n\
         backend be\n    server a {}\n",
        a.addr
    ));
    let (first, _) = which_backend(w.addr("fe")).await;
    // The kernel completes the handshake, but warren does not accept: no greeting yet.
    let mut second = TcpStream::connect(w.addr("fe")).await.expect("connect");
    let early = tokio::time::timeout(Duration::from_millis(300), read_line(&mut second)).await;
    assert!(
        early.is_err(),
        "a second client must wait while maxconn 1 is used"
    );
    drop(first);
    let tag = tokio::time::timeout(LIMIT, read_line(&mut second))
        .await
        .expect("accepted once the first left");
    assert_eq!(tag, "a");
    w.stop().await;
}

#[tokio::test]
async fn session_and_state_change_lines_reach_syslog_over_udp() {
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    let port = syslog.local_addr().expect("addr").port();
    let a = Backend::tagged("a").await;
    let dead = refused_addr().await;
    let w = start(&format!(
        "global\n    log 127.0.0.1:{port} local3\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n\
         backend be\n    server a {}\n    server b {dead} check inter 100 fall 1\n",
        a.addr
    ));
    // b fails its first check: the DOWN alert (local3 = 19, alert = 1: <153>).
    let down = datagram(&syslog).await;
    assert!(down.starts_with("<153>"), "{down}");
    assert!(
        down.contains("Server be/b is DOWN, reason: Layer4 connection problem"),
        "{down}"
    );
    // One session: its tcplog line when it ends (info = 6: <158>).
    let (mut s, _) = which_backend(w.addr("fe")).await;
    s.write_all(b"hi\n").await.expect("write");
    assert_eq!(read_line(&mut s).await, "hi");
    drop(s);
    let line = loop {
        let line = datagram(&syslog).await;
        if line.contains(" fe be/a ") {
            break line;
        }
    };
    assert!(line.starts_with("<158>"), "{line}");
    assert!(line.contains("warren["), "{line}");
    assert!(
        line.contains(" 2 -- ") || line.contains(" 5 -- "),
        "bytes to client then termination state: {line}"
    );
    w.stop().await;
}

async fn datagram(socket: &tokio::net::UdpSocket) -> String {
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(LIMIT, socket.recv(&mut buf))
        .await
        .expect("a syslog datagram")
        .expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn bytes_are_counted_while_the_session_is_open() {
    let a = Backend::tagged("a").await;
    let w = start(&cfg("", &format!("    server a {}", a.addr)));
    let (mut s, _) = which_backend(w.addr("fe")).await;
    s.write_all(b"12345\n").await.expect("write");
    assert_eq!(read_line(&mut s).await, "12345");
    let server = w.backend("be").server("a").cloned().expect("server");
    let bin = server
        .counters
        .bytes_in
        .load(std::sync::atomic::Ordering::Relaxed);
    let bout = server
        .counters
        .bytes_out
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(bin, 6, "client → server bytes, counted live");
    assert_eq!(bout, 2 + 6, "greeting and echo, counted live");
    drop(s);
    w.stop().await;
}
