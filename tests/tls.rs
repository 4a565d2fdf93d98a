//! TLS over real sockets: warren terminates TLS for clients (`bind ... ssl crt`), speaks
//! TLS to servers (`server ... ssl verify required ca-file`), checks over TLS, picks the
//! certificate by SNI, and refuses bad material with the file and line (renewals:
//! `tls_reload.rs`). Certificates are generated at test time by a test CA.

mod common;

use std::time::Duration;

use common::tls::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren::config::{self, Syntax};

#[tokio::test]
async fn a_tls_bind_terminates_tls_and_forwards_plain_bytes() {
    let ca = Ca::new();
    let dir = tempdir();
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    // HAProxy's layout: certificate chain and key in one file.
    write(&dir.join("rabbit.pem"), &format!("{cert}{key}"));
    let backend = Backend::tagged("plain").await;
    let w = start(&cfg(
        &format!("ssl crt {}", dir.join("rabbit.pem").display()),
        &backend.addr.to_string(),
    ));

    let mut c = tls_connect(w.addr("px"), &ca, "localhost")
        .await
        .expect("TLS handshake with warren");
    assert_eq!(
        line(&mut c).await,
        "plain",
        "the backend's greeting arrives decrypted by the backend, encrypted by warren"
    );
    assert_eq!(echo(&mut c, "hello over tls").await, "hello over tls");
    // A large transfer crosses many TLS records both ways.
    let big: String = "x".repeat(300_000);
    assert_eq!(echo(&mut c, &big).await.len(), big.len());
    c.shutdown().await.expect("close_notify");
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, c.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .expect("clean end");
    assert!(rest.is_empty());

    // A client that speaks plain TCP to the TLS port gets nothing through.
    let mut plain = TcpStream::connect(w.addr("px")).await.expect("connect");
    let _ = plain.write_all(b"AMQP\x00\x00\x09\x01").await;
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut plain))
        .await
        .expect("closed in time");
    assert!(
        !String::from_utf8_lossy(&got).contains("plain"),
        "no byte of the backend reaches a non-TLS client"
    );
    w.stop().await;
}

#[tokio::test]
async fn the_key_may_live_beside_the_certificate_and_a_directory_serves_by_sni() {
    let ca = Ca::new();
    let dir = tempdir();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("dir");
    let (a_cert, a_key) = ca.issue(&["a.rabbit.test"]);
    let (b_cert, b_key) = ca.issue(&["b.rabbit.test"]);
    write(&certs.join("a.pem"), &a_cert);
    write(&certs.join("a.pem.key"), &a_key);
    write(&certs.join("b.pem"), &format!("{b_cert}{b_key}"));
    let backend = Backend::tagged("sni").await;
    let w = start(&cfg(
        &format!("ssl crt {}", certs.display()),
        &backend.addr.to_string(),
    ));
    for name in ["a.rabbit.test", "b.rabbit.test"] {
        // The client verifies the certificate for the name it asked: only the right one passes.
        let mut c = tls_connect(w.addr("px"), &ca, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(line(&mut c).await, "sni");
    }
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn tls_to_servers_verifies_their_certificate() {
    let ca = Ca::new();
    let dir = tempdir();
    let (cert, key) = ca.issue(&["rabbit1.test"]);
    let node = tls_backend("tls node", &cert, &key).await;
    write(&dir.join("ca.pem"), &ca.pem());
    let ca_file = dir.join("ca.pem");

    // Verified against the right CA and name: sessions flow, and the TLS check passes (L6OK).
    let w = start(&format!(
        "{}    option log-health-checks\n",
        cfg(
            "",
            &format!(
                "{node} ssl verify required ca-file {} sni str(rabbit1.test) check inter 200",
                ca_file.display()
            )
        )
    ));
    let (mut c, tag) = which_backend(w.addr("px")).await;
    assert_eq!(tag, "tls node");
    c.write_all(b"through tls\n").await.expect("write");
    assert_eq!(read_line(&mut c).await, "through tls");
    w.stop().await;

    // The wrong name: the handshake fails, the session is refused, the server is not used.
    let w = start(&cfg(
        "",
        &format!(
            "{node} ssl verify required ca-file {} sni str(other.test)",
            ca_file.display()
        ),
    ));
    let got = nothing_sent(w.addr("px")).await;
    assert!(
        got.is_empty(),
        "no byte from a server whose certificate does not verify"
    );
    w.stop().await;

    // A CA that did not sign it: the same.
    let other = Ca::new();
    write(&dir.join("other.pem"), &other.pem());
    let w = start(&cfg(
        "",
        &format!(
            "{node} ssl ca-file {} sni str(rabbit1.test)",
            dir.join("other.pem").display()
        ),
    ));
    let got = nothing_sent(w.addr("px")).await;
    assert!(got.is_empty());
    w.stop().await;

    // `verify none` accepts any certificate.
    let w = start(&cfg("", &format!("{node} ssl verify none")));
    assert_eq!(which_backend(w.addr("px")).await.1, "tls node");
    w.stop().await;
}

#[tokio::test]
async fn checks_over_tls_mark_a_server_down_when_its_handshake_fails() {
    let ca = Ca::new();
    let dir = tempdir();
    let (cert, key) = ca.issue(&["rabbit1.test"]);
    let node = tls_backend("tls node", &cert, &key).await;
    let other = Ca::new();
    write(&dir.join("other.pem"), &other.pem());
    write(&dir.join("ca.pem"), &ca.pem());
    let w = start(&cfg(
        "",
        &format!(
            "{node} ssl ca-file {} sni str(rabbit1.test) check inter 100 rise 1 fall 1",
            dir.join("other.pem").display()
        ),
    ));
    let backend = w.backend("px");
    let mut events = backend.events.subscribe();
    wait_state(&mut events, "s", false, LIMIT).await;
    let last = backend
        .server("s")
        .and_then(|s| s.health().last_check.clone())
        .expect("checked");
    assert_eq!(last.status.code(), "L6RSP", "{last:?}");
    w.stop().await;

    // Signed by the CA the server line trusts: the TLS check passes with L6OK.
    let w = start(&cfg(
        "",
        &format!(
            "{node} ssl ca-file {} sni str(rabbit1.test) check inter 100 rise 1 fall 1",
            dir.join("ca.pem").display()
        ),
    ));
    let backend = w.backend("px");
    let server = backend.server("s").expect("server");
    // It starts UP (HAProxy's rule) and stays so: no event to wait for, so poll the
    // recorded result until the first check has run.
    let status = tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(last) = server.health().last_check.clone() {
                return last.status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a check ran");
    assert_eq!(status, "L6OK");
    w.stop().await;
}

#[tokio::test]
async fn bad_certificate_material_is_refused_with_file_and_line() {
    let ca = Ca::new();
    let dir = tempdir();
    let (cert, key) = ca.issue(&["localhost"]);
    let (_, other_key) = ca.issue(&["localhost"]);
    write(&dir.join("nokey.pem"), &cert);
    write(&dir.join("mismatch.pem"), &format!("{cert}{other_key}"));
    write(&dir.join("junk.pem"), "not a certificate\n");
    write(&dir.join("ok.pem"), &format!("{cert}{key}"));
    let cases = [
        (
            format!("ssl crt {}", dir.join("missing.pem").display()),
            "cannot read",
        ),
        (
            format!("ssl crt {}", dir.join("nokey.pem").display()),
            "no private key",
        ),
        (
            format!("ssl crt {}", dir.join("mismatch.pem").display()),
            "does not match its certificate",
        ),
        (
            format!("ssl crt {}", dir.join("junk.pem").display()),
            "no PEM certificate",
        ),
        ("ssl".to_string(), "needs a certificate"),
        (
            format!("crt {}", dir.join("ok.pem").display()),
            "need 'ssl'",
        ),
        (
            format!("ssl crt {} verify required", dir.join("ok.pem").display()),
            "needs 'ca-file",
        ),
        (
            format!(
                "ssl crt {} ssl-min-ver TLSv1.0",
                dir.join("ok.pem").display()
            ),
            "ssl-min-ver",
        ),
    ];
    for (bind, expected) in cases {
        let text = cfg(&bind, "127.0.0.1:1");
        let err = config::load_str(&text, "tls.cfg", Syntax::Haproxy)
            .expect_err(&bind)
            .to_string();
        assert!(
            err.contains("tls.cfg:7:") && err.contains(expected),
            "{bind}: {err}"
        );
    }
    // The same checks in TOML, with the line of the `tls` table.
    let toml = format!(
        "[[frontend]]\nname = \"f\"\nbackend = \"b\"\ntls = {{ bind = [\"127.0.0.1:0\"], crt = [\"{}\"] }}\n\n[[backend]]\nname = \"b\"\n",
        dir.join("mismatch.pem").display()
    );
    let err = config::load_str(&toml, "tls.toml", Syntax::Toml)
        .expect_err("mismatch")
        .to_string();
    assert!(
        err.contains("tls.toml:4:") && err.contains("does not match"),
        "{err}"
    );
}

#[tokio::test]
async fn toml_tls_binds_and_servers_work_and_convert_round_trips() {
    let ca = Ca::new();
    let dir = tempdir();
    let (cert, key) = ca.issue(&["localhost"]);
    write(&dir.join("rabbit.pem"), &format!("{cert}{key}"));
    write(&dir.join("ca.pem"), &ca.pem());
    let node = tls_backend("tls node", &cert, &key).await;
    let text = cfg(
        &format!(
            "ssl crt {} ssl-min-ver TLSv1.3",
            dir.join("rabbit.pem").display()
        ),
        &format!(
            "{node} ssl verify required ca-file {} sni str(localhost)",
            dir.join("ca.pem").display()
        ),
    );
    let loaded = config::load_str(&text, "t.cfg", Syntax::Haproxy).expect("loads");
    let toml = config::to_toml(&loaded.config);
    let again =
        config::load_str(&toml, "t.toml", Syntax::Toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(loaded.config, again.config, "{toml}");
    let w = run_config(again.config);
    let mut c = tls_connect(w.addr("px"), &ca, "localhost")
        .await
        .expect("TLS 1.3 handshake");
    assert_eq!(
        c.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        line(&mut c).await,
        "tls node",
        "TLS from the client to warren, and from warren to the node"
    );
    assert_eq!(echo(&mut c, "both legs").await, "both legs");
    w.stop().await;
}

#[tokio::test]
async fn the_stats_page_can_be_served_over_https() {
    let ca = Ca::new();
    let dir = tempdir();
    let stats_pem = ca.write_pem(&dir, "stats.pem", &["localhost"]);
    let backend = Backend::tagged("b").await;
    let text = format!(
        "{}\nlisten admin_stats\n    bind 127.0.0.1:0 ssl crt {}\n    mode http\n    stats uri /haproxy\n",
        cfg("", &backend.addr.to_string()),
        stats_pem.display()
    );
    let w = start(&text);
    let mut c = tls_connect(w.stats_addr("admin_stats"), &ca, "localhost")
        .await
        .expect("HTTPS handshake");
    c.write_all(b"GET /haproxy;csv HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, c.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("# pxname,svname,"),
        "the CSV over HTTPS: {answer}"
    );
    w.stop().await;
}

/// `timeout client-hs` bounds the TLS handshake: a client that connects and never starts
/// it is closed by that timeout, long before `timeout handshake` (60 s here) would.
#[tokio::test]
async fn timeout_client_hs_bounds_the_tls_handshake() {
    let ca = Ca::new();
    let dir = tempdir();
    let rabbit_pem = ca.write_pem(&dir, "rabbit.pem", &["localhost"]);
    let backend = Backend::tagged("b").await;
    let text = cfg(
        &format!("ssl crt {}", rabbit_pem.display()),
        &backend.addr.to_string(),
    )
    .replace(
        "    timeout client 10s\n",
        "    timeout client 10s\n    timeout handshake 60s\n    timeout client-hs 300ms\n",
    );
    let w = start(&text);
    let mut silent = TcpStream::connect(w.addr("px")).await.expect("connect");
    let got = tokio::time::timeout(LIMIT, read_to_end(&mut silent))
        .await
        .expect("closed by timeout client-hs, not left to the 60 s one");
    assert!(got.is_empty());
    // A client that does the handshake is served.
    let mut c = tls_connect(w.addr("px"), &ca, "localhost")
        .await
        .expect("handshake");
    assert_eq!(line(&mut c).await, "b");
    w.stop().await;
}
