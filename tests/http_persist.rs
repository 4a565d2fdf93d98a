//! Cookie persistence in `mode http` over real sockets, against warren and Debian's
//! `haproxy` from the same text: insert (with indirect, nocache), rewrite, prefix, a
//! cookie naming a dead server with `option redispatch`, and the log's cookie flags.

mod common;

use std::net::SocketAddr;

use common::http::{Client, Haproxy, Origin, Proxy, Syslog};
use common::{free_port, start};

/// `listen web` with `cookie_line` and servers `s1`, `s2`... whose cookies are their names.
fn cfg(bind: &str, servers: &[SocketAddr], extra: &str) -> String {
    let mut text = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\nlisten web\n    bind {bind}\n{extra}"
    );
    for (i, s) in servers.iter().enumerate() {
        text.push_str(&format!("    server s{n} {s} cookie s{n}\n", n = i + 1));
    }
    text
}

async fn proxies(servers: &[SocketAddr], extra: &str) -> Vec<Proxy> {
    let mut out = vec![Proxy::Warren(start(&cfg("127.0.0.1:0", servers, extra)))];
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    if let Some(h) = Haproxy::start(&cfg(&addr.to_string(), servers, extra), addr).await {
        out.push(Proxy::Haproxy(h, addr));
    }
    out
}

#[tokio::test]
async fn insert_indirect_nocache_sticks_a_client_to_its_server() {
    let (a, b) = (Origin::start("A").await, Origin::start("B").await);
    for p in proxies(
        &[a.addr, b.addr],
        "    cookie SRV insert indirect nocache\n",
    )
    .await
    {
        let first = Client::connect(p.addr()).await.get("/", "").await;
        let set = first.header("set-cookie").unwrap_or("").to_string();
        let server = first.header("x-server").unwrap_or("").to_string();
        let id = if server == "A" { "s1" } else { "s2" };
        assert_eq!(set, format!("SRV={id}; path=/"), "{}", p.name());
        // nocache: only a response a shared cache could keep is made private.
        assert_eq!(first.header("cache-control"), None, "{}", p.name());
        let cacheable = Client::connect(p.addr()).await.get("/cacheable", "").await;
        assert!(cacheable.header("set-cookie").is_some(), "{}", p.name());
        assert_eq!(
            cacheable
                .headers
                .iter()
                .filter(|(n, _)| n == "cache-control")
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>(),
            ["max-age=60", "private"],
            "{}",
            p.name()
        );
        // Every later request with the cookie goes to the same server, on new connections
        // and on one kept-alive connection, and the server never sees the cookie.
        let mut kept = Client::connect(p.addr()).await;
        for _ in 0..4 {
            let r = Client::connect(p.addr())
                .await
                .get("/", &format!("Cookie: other=1; SRV={id}\r\n"))
                .await;
            assert_eq!(r.header("x-server"), Some(server.as_str()), "{}", p.name());
            assert_eq!(
                r.header("set-cookie"),
                None,
                "{}: no new cookie when it is valid",
                p.name()
            );
            assert!(
                r.body.contains("cookie=other=1 "),
                "{}: {}",
                p.name(),
                r.body
            );
            let r = kept.get("/", &format!("Cookie: SRV={id}\r\n")).await;
            assert_eq!(r.header("x-server"), Some(server.as_str()), "{}", p.name());
            assert!(r.body.contains("cookie=- "), "{}: {}", p.name(), r.body);
        }
        // An unknown value is balanced and gets a new cookie.
        let r = Client::connect(p.addr())
            .await
            .get("/", "Cookie: SRV=nope\r\n")
            .await;
        assert!(
            r.header("set-cookie")
                .is_some_and(|c| c.starts_with("SRV=s")),
            "{}",
            p.name()
        );
    }
}

#[tokio::test]
async fn a_cookie_for_a_dead_server_is_redispatched_and_replaced() {
    let alive = Origin::start("alive").await;
    let dead = common::refused_addr().await;
    for p in proxies(
        &[dead, alive.addr],
        "    cookie SRV insert indirect\n    option redispatch\n    retries 1\n",
    )
    .await
    {
        let r = Client::connect(p.addr())
            .await
            .get("/", "Cookie: SRV=s1\r\n")
            .await;
        assert_eq!(
            (r.status, r.header("x-server")),
            (200, Some("alive")),
            "{}",
            p.name()
        );
        assert_eq!(
            r.header("set-cookie"),
            Some("SRV=s2; path=/"),
            "{}",
            p.name()
        );
    }
}

#[tokio::test]
async fn rewrite_and_prefix_modes_change_the_servers_own_cookie() {
    let a = Origin::start("A").await;
    for (line, expected) in [
        ("    cookie SRV rewrite\n", "SRV=s1; Path=/"),
        ("    cookie SRV prefix\n", "SRV=s1~app1; Path=/"),
    ] {
        for p in proxies(&[a.addr], line).await {
            let r = Client::connect(p.addr()).await.get("/setcookie", "").await;
            assert_eq!(
                r.header("set-cookie"),
                Some(expected),
                "{} {line:?}",
                p.name()
            );
        }
    }
    // Prefix: the server id is taken off before the server sees its cookie.
    for p in proxies(&[a.addr], "    cookie SRV prefix\n").await {
        let r = Client::connect(p.addr())
            .await
            .get("/", "Cookie: SRV=s1~app1\r\n")
            .await;
        assert!(
            r.body.contains("cookie=SRV=app1 "),
            "{}: {}",
            p.name(),
            r.body
        );
    }
}

/// The two cookie characters of the httplog termination state agree with HAProxy's.
#[tokio::test]
async fn httplog_cookie_flags_match_haproxys() {
    let a = Origin::start("A").await;
    let mut flags = Vec::new();
    for use_haproxy in [false, true] {
        let mut syslog = Syslog::bind().await;
        let extra = format!(
            "    cookie SRV insert indirect\n    log 127.0.0.1:{} local0\n    option httplog\n",
            syslog.port
        );
        let Some(p) = proxies(&[a.addr], &extra)
            .await
            .into_iter()
            .nth(usize::from(use_haproxy))
        else {
            continue;
        };
        let _ = Client::connect(p.addr()).await.get("/first", "").await;
        let _ = Client::connect(p.addr())
            .await
            .get("/second", "Cookie: SRV=s1\r\n")
            .await;
        let _ = Client::connect(p.addr())
            .await
            .get("/third", "Cookie: SRV=bad\r\n")
            .await;
        let mut got = Vec::new();
        for path in ["/first", "/second", "/third"] {
            let line = syslog.line(&format!("GET {path} ")).await;
            let term = line
                .split_whitespace()
                .find(|w| w.len() == 4 && w.starts_with("--"))
                .unwrap_or("?")
                .to_string();
            got.push(term);
        }
        flags.push((p.name(), got));
    }
    assert_eq!(flags[0].1, ["--NI", "--VN", "--II"], "{flags:?}");
    if flags.len() == 2 {
        assert_eq!(flags[0].1, flags[1].1, "{flags:?}");
    }
}
