//! Health checks over real sockets: the AMQP check catches a frozen node that a TCP
//! check cannot see; the login check and the HTTP check judge the answer.

mod common;

use std::time::Duration;

use common::amqp::Node;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warren::config::{CheckKind, Config, HttpCheck, Secret};

const LIMIT: Duration = Duration::from_secs(10);

fn with_check(kind: CheckKind) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        for b in &mut c.backends {
            b.check = kind.clone();
        }
    }
}

fn cfg(servers: &str) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    timeout check 200ms\n\
         listen px\n    bind 127.0.0.1:0\n{servers}\n"
    )
}

/// A "frozen" node: the kernel completes TCP handshakes into the backlog, nobody answers.
async fn frozen() -> (std::net::SocketAddr, tokio::net::TcpListener) {
    let l = listener().await;
    (l.local_addr().expect("addr"), l)
}

#[tokio::test]
async fn amqp_check_marks_a_frozen_node_down_and_a_live_one_stays_up() {
    let (addr, _frozen) = frozen().await;
    let node = Node::start(0).await;
    let w = start_adjusted(
        &cfg(&format!(
            "    server frozen {addr} check inter 100 rise 2 fall 2\n    server live {} check inter 100 rise 2 fall 2",
            node.addr
        )),
        with_check(CheckKind::Amqp),
    );
    let be = w.backend("px");
    let mut events = be.events.subscribe();
    wait_state(&mut events, "frozen", false, LIMIT).await;
    let last = be
        .server("frozen")
        .and_then(|s| s.health().last_check.clone())
        .expect("checked");
    assert_eq!(last.status.code(), "L7TOUT", "{last:?}");
    let live = be.server("live").expect("live");
    assert!(live.is_up());
    assert_eq!(
        live.health().last_check.as_ref().map(|c| c.status.code()),
        Some("L7OK")
    );
    w.stop().await;
}

#[tokio::test]
async fn tcp_check_cannot_see_a_frozen_node() {
    let (addr, _frozen) = frozen().await;
    let w = start(&cfg(&format!(
        "    server frozen {addr} check inter 50 rise 1 fall 1"
    )));
    let be = w.backend("px");
    let s = be.server("frozen").expect("server").clone();
    // Wait for several completed checks (an event, not a delay): all pass at layer 4.
    tokio::time::timeout(LIMIT, async {
        loop {
            let checks = s.health().last_check.is_some();
            if checks && s.health().failed_checks == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a check ran");
    assert!(s.is_up());
    assert_eq!(
        s.health().last_check.as_ref().map(|c| c.status.code()),
        Some("L4OK")
    );
    w.stop().await;
}

#[tokio::test]
async fn amqp_login_check_passes_a_serving_node_and_fails_a_refusing_one() {
    let node = Node::start(0).await;
    // A node that answers the header with connection.start, then closes (as RabbitMQ
    // does on bad credentials).
    let l = listener().await;
    let refusing = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if s.read_exact(&mut header).await.is_ok() {
                    let _ = s.write_all(&common::amqp::start()).await;
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                }
            });
        }
    });
    let login = CheckKind::AmqpLogin {
        user: "guest".into(),
        password: Secret("guest".into()),
        vhost: "/".into(),
    };
    let w = start_adjusted(
        &cfg(&format!(
            "    server good {} check inter 100 rise 1 fall 1\n    server bad {refusing} check inter 100 rise 1 fall 1",
            node.addr
        )),
        with_check(login),
    );
    let be = w.backend("px");
    let mut events = be.events.subscribe();
    wait_state(&mut events, "bad", false, LIMIT).await;
    let bad = be
        .server("bad")
        .and_then(|s| s.health().last_check.clone())
        .expect("checked");
    assert_eq!(bad.status.code(), "L7RSP");
    assert!(bad.info.contains("guest"), "{}", bad.info);
    let good = be.server("good").expect("good");
    tokio::time::timeout(LIMIT, async {
        while good.health().last_check.is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("checked");
    assert_eq!(
        good.health().last_check.as_ref().map(|c| c.status.code()),
        Some("L7OK")
    );
    assert!(good.is_up());
    w.stop().await;
}

/// A one-status HTTP server, like the management API's health endpoint.
async fn http_status(code: u16) -> std::net::SocketAddr {
    let l = listener().await;
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let auth = String::from_utf8_lossy(&buf[..n])
                    .contains("Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=");
                let code = if auth { code } else { 401 };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_check_with_basic_auth_takes_503_as_down() {
    let (ok, draining) = (http_status(200).await, http_status(503).await);
    let backend = Backend::tagged("amqp").await;
    let check = CheckKind::Http(HttpCheck {
        method: "GET".into(),
        uri: "/api/health/checks/ready-to-serve-clients".into(),
        headers: vec![(
            "Authorization".into(),
            Secret("Basic Z3Vlc3Q6Z3Vlc3Q=".into()),
        )],
        expect_status: vec![200],
        expect_body: None,
    });
    // Traffic goes to the AMQP port; checks go to each server's `port`.
    let w = start_adjusted(
        &cfg(&format!(
            "    server up {} check inter 100 rise 1 fall 1\n    server draining {} check inter 100 rise 1 fall 1",
            backend.addr, backend.addr,
        )),
        |c| {
            with_check(check)(c);
            for s in &mut c.backends[0].servers {
                s.check_port = Some(if s.name == "up" { ok.port() } else { draining.port() });
            }
        },
    );
    let be = w.backend("px");
    let mut events = be.events.subscribe();
    wait_state(&mut events, "draining", false, LIMIT).await;
    let last = be
        .server("draining")
        .and_then(|s| s.health().last_check.clone())
        .expect("checked");
    assert_eq!(last.status.code(), "L7STS");
    assert!(last.info.contains("503"));
    assert!(be.server("up").map(|s| s.is_up()).unwrap_or(false));
    w.stop().await;
}
