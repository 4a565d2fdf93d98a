//! `mode http` over real sockets: per-request balancing, keep-alive and the connection
//! modes, `option forwardfor`, bodies (length, chunked, until close), WebSocket tunnels,
//! timeouts (408, 504), retries and redispatch, bad input (400, other clients unaffected),
//! httplog lines and the HTTP stats columns. Each scenario that HAProxy also implements
//! runs against warren and against Debian's `haproxy` started from the same text.

mod common;

use std::net::SocketAddr;

use common::http::{Client, Haproxy, Origin, Proxy, Syslog};
use common::{free_port, start};

/// `listen web` in mode http in front of `servers`; `global`/`extra` add lines to the
/// global section and to the listen section. `bind` is where it listens.
fn cfg(bind: &str, servers: &[SocketAddr], global: &str, extra: &str) -> String {
    let mut text = format!(
        "global\n{global}defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\nlisten web\n    bind {bind}\n{extra}"
    );
    for (i, s) in servers.iter().enumerate() {
        text.push_str(&format!("    server s{} {s}\n", i + 1));
    }
    text
}

/// warren, then HAProxy (when installed), each running `cfg(...)`.
async fn proxies(servers: &[SocketAddr], global: &str, extra: &str) -> Vec<Proxy> {
    let mut out = vec![Proxy::Warren(start(&cfg(
        "127.0.0.1:0",
        servers,
        global,
        extra,
    )))];
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    if let Some(h) = Haproxy::start(&cfg(&addr.to_string(), servers, global, extra), addr).await {
        out.push(Proxy::Haproxy(h, addr));
    }
    out
}

#[tokio::test]
async fn each_request_is_balanced_over_one_client_connection() {
    let (a, b) = (Origin::start("A").await, Origin::start("B").await);
    for p in proxies(&[a.addr, b.addr], "", "    balance roundrobin\n").await {
        let mut c = Client::connect(p.addr()).await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let r = c.get("/api/overview", "").await;
            assert_eq!(r.status, 200, "{}", p.name());
            seen.push(r.header("x-server").unwrap_or("").to_string());
        }
        assert!(
            seen[0] != seen[1] && seen[0] == seen[2] && seen[1] == seen[3],
            "{}: {seen:?}",
            p.name()
        );
    }
}

#[tokio::test]
async fn keep_alive_reuses_server_connections_and_server_close_does_not() {
    for (extra, expected) in [("", 1), ("    option http-server-close\n", 3)] {
        let origin = Origin::start("A").await;
        for p in proxies(&[origin.addr], "", extra).await {
            let before = origin.connections();
            let mut c = Client::connect(p.addr()).await;
            for i in 0..3 {
                let r = c.get(&format!("/x{i}"), "").await;
                assert_eq!(r.status, 200);
                assert_ne!(
                    r.header("connection"),
                    Some("close"),
                    "{}: the client side stays open",
                    p.name()
                );
            }
            assert_eq!(
                origin.connections() - before,
                expected,
                "{} with {extra:?}",
                p.name()
            );
        }
    }
}

#[tokio::test]
async fn httpclose_and_http_1_0_close_the_client_after_the_response() {
    let origin = Origin::start("A").await;
    for p in proxies(&[origin.addr], "", "    option httpclose\n").await {
        let mut c = Client::connect(p.addr()).await;
        let r = c.get("/", "").await;
        assert_eq!(
            (r.status, r.header("connection")),
            (200, Some("close")),
            "{}",
            p.name()
        );
        assert!(c.closed().await, "{}", p.name());
    }
    for p in proxies(&[origin.addr], "", "").await {
        let mut c = Client::connect(p.addr()).await;
        c.send("GET / HTTP/1.0\r\n\r\n").await;
        let r = c.response(false).await.expect("response");
        assert_eq!(r.status, 200, "{}", p.name());
        assert!(
            c.closed().await,
            "{}: HTTP/1.0 without keep-alive",
            p.name()
        );
    }
}

#[tokio::test]
async fn forwardfor_names_the_client_unless_excepted() {
    let origin = Origin::start("A").await;
    for (extra, xff) in [
        ("    option forwardfor\n", "xff=127.0.0.1"),
        ("    option forwardfor except 127.0.0.0/8\n", "xff=-"),
        ("    option forwardfor header X-Client\n", "xff=-"),
    ] {
        for p in proxies(&[origin.addr], "", extra).await {
            let r = Client::connect(p.addr()).await.get("/", "").await;
            assert!(r.body.contains(xff), "{} {extra:?}: {}", p.name(), r.body);
        }
    }
}

#[tokio::test]
async fn bodies_pass_by_length_chunked_and_until_close() {
    let origin = Origin::start("A").await;
    for p in proxies(&[origin.addr], "", "").await {
        let mut c = Client::connect(p.addr()).await;
        c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            .await;
        let r = c.response(false).await.expect("response");
        assert!(r.body.ends_with("body=hello"), "{}: {}", p.name(), r.body);
        // A chunked request body reaches the server whole (HAProxy may re-frame it).
        c.send("POST /q HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").await;
        let r = c.response(false).await.expect("response");
        assert_eq!(r.status, 200, "{}", p.name());
        let r = c.get("/chunked", "").await;
        assert!(
            r.body.starts_with("A GET /chunked"),
            "{}: {}",
            p.name(),
            r.body
        );
        let r = c.get("/close", "").await;
        assert!(
            r.body.starts_with("A GET /close"),
            "{}: {}",
            p.name(),
            r.body
        );
        assert!(
            c.closed().await,
            "{}: a body that ends with the server's close",
            p.name()
        );
    }
}

#[tokio::test]
async fn websocket_upgrades_become_tunnels() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start("A").await;
    for p in proxies(&[origin.addr], "", "    timeout tunnel 1h\n").await {
        let mut c = Client::connect(p.addr()).await;
        c.send("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await;
        let r = c.response(false).await.expect("response");
        assert_eq!(r.status, 101, "{}", p.name());
        c.stream
            .write_all(b"ping over the tunnel")
            .await
            .expect("write");
        let mut got = vec![0u8; 20];
        c.stream.read_exact(&mut got).await.expect("echo");
        assert_eq!(&got, b"ping over the tunnel", "{}", p.name());
    }
}

#[tokio::test]
async fn a_dead_server_is_retried_elsewhere_with_redispatch() {
    let alive = Origin::start("alive").await;
    let dead = common::refused_addr().await;
    for p in proxies(
        &[dead, alive.addr],
        "",
        "    retries 1\n    option redispatch\n",
    )
    .await
    {
        for _ in 0..4 {
            let r = Client::connect(p.addr()).await.get("/", "").await;
            assert_eq!(
                (r.status, r.header("x-server")),
                (200, Some("alive")),
                "{}",
                p.name()
            );
        }
    }
}

#[tokio::test]
async fn no_server_is_503_and_a_silent_server_is_504() {
    let dead = common::refused_addr().await;
    for p in proxies(&[dead], "", "    retries 0\n").await {
        let r = Client::connect(p.addr()).await.get("/", "").await;
        assert_eq!(r.status, 503, "{}", p.name());
    }
    let origin = Origin::start("A").await;
    for p in proxies(&[origin.addr], "", "    timeout server 300ms\n").await {
        let r = Client::connect(p.addr()).await.get("/hang", "").await;
        assert_eq!(r.status, 504, "{}", p.name());
    }
}

#[tokio::test]
async fn oversized_and_ambiguous_requests_get_400_and_others_are_served() {
    let origin = Origin::start("A").await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(6000)
    );
    let cases: [(&str, &str); 4] = [
        ("oversized head", &big),
        (
            "invalid header name",
            "GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        ),
        (
            "conflicting lengths",
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        ),
        ("bare CR", "GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n"),
    ];
    for p in proxies(&[origin.addr], "    tune.bufsize 4096\n", "").await {
        let mut good = Client::connect(p.addr()).await;
        assert_eq!(good.get("/", "").await.status, 200);
        for (what, raw) in cases {
            let mut bad = Client::connect(p.addr()).await;
            bad.send(raw).await;
            let r = bad.response(false).await;
            assert_eq!(r.map(|r| r.status), Some(400), "{}: {what}", p.name());
            assert!(
                bad.closed().await,
                "{}: {what} closes its connection",
                p.name()
            );
            // The other client's connection is unaffected.
            assert_eq!(
                good.get("/", "").await.status,
                200,
                "{}: after {what}",
                p.name()
            );
        }
    }
}

/// warren refuses these too; HAProxy 2.6 accepts them in its own way (it drops the
/// `Content-Length` beside a `Transfer-Encoding`, and reads a bare LF as a line end), so
/// these run against warren only. Neither reaches the server in a form two parsers could
/// read differently.
#[tokio::test]
async fn warren_refuses_content_length_with_transfer_encoding_and_bare_lf() {
    let origin = Origin::start("A").await;
    let w = start(&cfg("127.0.0.1:0", &[origin.addr], "", ""));
    for (what, raw) in [
        ("both lengths", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("bare LF", "GET / HTTP/1.1\nHost: t\r\n\r\n"),
    ] {
        let mut bad = Client::connect(w.addr("web")).await;
        bad.send(raw).await;
        assert_eq!(bad.response(false).await.map(|r| r.status), Some(400), "{what}");
    }
    assert_eq!(origin.connections(), 0, "nothing reached the server");
}

#[tokio::test]
async fn a_slow_request_gets_408_while_others_are_served() {
    let origin = Origin::start("A").await;
    for p in proxies(&[origin.addr], "", "    timeout http-request 500ms\n").await {
        let mut slow = Client::connect(p.addr()).await;
        slow.send("GET / HTTP/1.1\r\nHost: t\r\n").await;
        let mut good = Client::connect(p.addr()).await;
        assert_eq!(good.get("/", "").await.status, 200, "{}", p.name());
        let r = slow.response(false).await;
        assert_eq!(r.map(|r| r.status), Some(408), "{}", p.name());
        assert!(slow.closed().await, "{}", p.name());
        // (The first good connection idled past `timeout http-keep-alive`, which defaults
        // to `timeout http-request`, and is closed by now, in both.)
        let mut again = Client::connect(p.addr()).await;
        assert_eq!(again.get("/", "").await.status, 200, "{}", p.name());
    }
}

/// The httplog line has HAProxy's fields, in its order; with the numbers masked, warren's
/// line and HAProxy's for the same request are the same.
#[tokio::test]
async fn httplog_lines_match_haproxys() {
    let origin = Origin::start("A").await;
    let mut shapes = Vec::new();
    for use_haproxy in [false, true] {
        let mut syslog = Syslog::bind().await;
        let extra = format!(
            "    log 127.0.0.1:{} local0\n    option httplog\n",
            syslog.port
        );
        let all = proxies(&[origin.addr], "", &extra).await;
        let Some(p) = all.into_iter().nth(usize::from(use_haproxy)) else {
            continue;
        };
        let r = Client::connect(p.addr())
            .await
            .get("/api/overview?x=1", "")
            .await;
        assert_eq!(r.status, 200);
        let line = syslog.line("GET /api/overview").await;
        let fields = line.split("] ").nth(1).unwrap_or("").to_string();
        let masked: String = fields
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect::<String>()
            .split_whitespace()
            .map(|w| {
                if w.chars().all(|c| c == '9' || c == '/') {
                    "N"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        shapes.push((p.name(), masked));
    }
    assert_eq!(
        shapes[0].1, "web web/s9 N N N - - ---- N N \"GET /api/overview?x=9 HTTP/9.9\"",
        "{shapes:?}"
    );
    if shapes.len() == 2 {
        assert_eq!(shapes[0].1, shapes[1].1, "{shapes:?}");
    }
}

#[tokio::test]
async fn http_counters_reach_csv_json_and_metrics() {
    let origin = Origin::start("A").await;
    let text = format!(
        "{}listen stats\n    bind 127.0.0.1:0\n    mode http\n    stats enable\n    stats uri /st\n",
        cfg("127.0.0.1:0", &[origin.addr], "", "")
    );
    let w = start(&text);
    let mut c = Client::connect(w.addr("web")).await;
    for _ in 0..3 {
        assert_eq!(c.get("/", "").await.status, 200);
    }
    let dead = Client::connect(w.addr("web")).await;
    drop(dead);
    let mut bad = Client::connect(w.addr("web")).await;
    bad.send("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").await;
    assert_eq!(bad.response(false).await.map(|r| r.status), Some(400));
    let stats = w.stats_addr("stats");
    let csv = common::http(stats, "GET", "/st;csv", &[], "").await.body;
    let header: Vec<&str> = csv
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let fe: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("web,FRONTEND,"))
        .unwrap_or("")
        .split(',')
        .collect();
    assert_eq!(
        (fe[col("hrsp_2xx")], fe[col("hrsp_4xx")], fe[col("req_tot")]),
        ("3", "1", "3"),
        "{csv}"
    );
    let srv: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("web,s1,"))
        .unwrap_or("")
        .split(',')
        .collect();
    assert_eq!(
        (srv[col("hrsp_2xx")], srv[col("req_tot")]),
        ("3", "3"),
        "{csv}"
    );
    let json = common::http(stats, "GET", "/st;json", &[], "").await.body;
    assert!(
        json.contains("\"hrsp_2xx\":3") && json.contains("\"req_tot\":3"),
        "{json}"
    );
    let metrics = common::http(stats, "GET", "/metrics", &[], "").await.body;
    assert!(
        metrics.contains(
            "warren_http_responses_total{proxy=\"web\",server=\"frontend\",code=\"2xx\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("warren_http_requests_total{proxy=\"web\",server=\"s1\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tls_is_terminated_on_an_http_bind() {
    use std::sync::Arc;
    let origin = Origin::start("A").await;
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let dir = std::env::temp_dir().join(format!("warren-http-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pem = dir.join("web.pem");
    std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).expect("pem");
    let w = start(&cfg(
        &format!("127.0.0.1:0 ssl crt {}", pem.display()),
        &[origin.addr],
        "",
        "",
    ));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(w.addr("web"))
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost".to_string()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /secure HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("A GET /secure"),
        "{answer}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_toml_http_table_and_its_errors() {
    use warren::config::{self, ConfigError, ConnMode, Mode, Syntax};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config/valid/management.toml");
    let c = config::load(&path).expect("loads").config;
    let f = &c.frontends[0];
    assert_eq!(
        (f.mode, f.http.connection),
        (Mode::Http, ConnMode::ServerClose)
    );
    assert_eq!(
        f.http.forwardfor.as_ref().and_then(|f| f.except_text()),
        Some("127.0.0.0/8".to_string())
    );
    assert!(f.log.httplog && f.log.tcplog);
    assert_eq!(c.global.bufsize(), 32768);
    let bad = "[defaults]\nmode = \"http\"\n\n[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:0\"]\nhttp = { connection = \"server_close\" }\n";
    match config::load_str(bad, "w.toml", Syntax::Toml) {
        Err(ConfigError::Invalid(d)) => assert!(
            d.iter()
                .any(|d| d.line == 7 && d.message.contains("did you mean 'server-close'")),
            "{d:?}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// `Expect: 100-continue` to a server that ignores it: the client sends its body anyway
/// (as curl does after a second), and the request completes.
#[tokio::test]
async fn expect_continue_with_a_server_that_ignores_it() {
    let origin = Origin::start("A").await;
    for p in proxies(&[origin.addr], "", "").await {
        let mut c = Client::connect(p.addr()).await;
        c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            .await;
        c.send("data").await;
        let mut r = c.response(false).await.expect("response");
        if r.status == 100 {
            r = c.response(false).await.expect("final response");
        }
        assert_eq!(r.status, 200, "{}", p.name());
        assert!(r.body.ends_with("body=data"), "{}: {}", p.name(), r.body);
    }
}
