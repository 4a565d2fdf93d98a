//! TLS material renewed on disk and picked up by a reload: a bind's certificate, and a
//! server line's CA and client certificate, for new sessions and checks, while sessions
//! opened before go on.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::tls::*;
use common::*;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_reload_reads_renewed_certificates() {
    let ca = Ca::new();
    let dir = tempdir();
    let pem = dir.join("rabbit.pem");
    let (cert, key) = ca.issue(&["old.rabbit.test"]);
    write(&pem, &format!("{cert}{key}"));
    let backend = Backend::tagged("b").await;
    let (held, port) = held_listener();
    let text = cfg(
        &format!("ssl crt {}", pem.display()),
        &backend.addr.to_string(),
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let w = start_on(&text, vec![held]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut old = tls_connect(addr, &ca, "old.rabbit.test")
        .await
        .expect("old certificate");
    assert_eq!(line(&mut old).await, "b");

    // Renewed in place, as certbot or an operator would, then reloaded.
    let (cert, key) = ca.issue(&["new.rabbit.test"]);
    write(&pem, &format!("{cert}{key}"));
    w.reload(&text).await.expect("reload");
    let mut c = tls_connect(addr, &ca, "new.rabbit.test")
        .await
        .expect("the renewed certificate is served");
    assert_eq!(line(&mut c).await, "b");
    assert!(
        tls_connect(addr, &ca, "old.rabbit.test").await.is_err(),
        "the old certificate is gone"
    );
    assert_eq!(
        echo(&mut old, "still here").await,
        "still here",
        "sessions opened before the reload go on"
    );
    w.stop().await;
}

/// A TLS node that asks for a client certificate, whose certificate and accepted client
/// CA can be renewed while it runs (at the same address, as a real node's would be).
struct MtlsNode {
    addr: SocketAddr,
    config: Arc<std::sync::Mutex<Arc<rustls::ServerConfig>>>,
}

impl MtlsNode {
    async fn start(tag: &str, ca: &Ca) -> MtlsNode {
        let config = Arc::new(std::sync::Mutex::new(MtlsNode::config(ca)));
        let l = listener().await;
        let addr = l.local_addr().expect("addr");
        let (tag, current) = (format!("{tag}\n"), Arc::clone(&config));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let config = Arc::clone(&current.lock().expect("lock"));
                let tag = tag.clone();
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if s.write_all(tag.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        MtlsNode { addr, config }
    }

    /// A certificate for `rabbit.test` from `ca`, and client certificates from `ca` only.
    fn config(ca: &Ca) -> Arc<rustls::ServerConfig> {
        let (cert, key) = ca.issue(&["rabbit.test"]);
        let certs: Vec<CertificateDer<'static>> =
            rustls_pki_types::pem::PemObject::pem_slice_iter(cert.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certs");
        let key = rustls_pki_types::pem::PemObject::from_pem_slice(key.as_bytes()).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(ca.roots()),
            Arc::clone(&provider),
        )
        .build()
        .expect("verifier");
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .expect("server config"),
        )
    }

    fn renew(&self, ca: &Ca) {
        *self.config.lock().expect("lock") = MtlsNode::config(ca);
    }
}

/// The server side of a renewal: the node gets a certificate from a new CA and accepts
/// only client certificates from it; the operator puts the new `ca-file` and client `crt`
/// in place (same paths, same configuration text) and reloads. Checks and new sessions use
/// the files as they are now; a session opened before goes on.
#[tokio::test]
async fn a_reload_reads_a_renewed_server_ca_and_client_certificate() {
    let (old_ca, new_ca) = (Ca::new(), Ca::new());
    let dir = tempdir();
    let (ca_file, crt) = (dir.join("ca.pem"), dir.join("client.pem"));
    write(&ca_file, &old_ca.pem());
    old_ca.write_pem(&dir, "client.pem", &["warren.test"]);
    let node = MtlsNode::start("node", &old_ca).await;
    let (held, port) = held_listener();
    let text = cfg(
        "",
        &format!(
            "{} ssl verify required ca-file {} crt {} sni str(rabbit.test) check inter 100 rise 1 fall 1",
            node.addr,
            ca_file.display(),
            crt.display()
        ),
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let w = start_on(&text, vec![held]);
    let backend = w.backend("px");
    let mut events = backend.events.subscribe();
    let (mut old, tag) = which_backend(w.addr("px")).await;
    assert_eq!(tag, "node", "the node took warren's client certificate");

    node.renew(&new_ca);
    wait_state(&mut events, "s", false, LIMIT).await;
    let last = backend
        .server("s")
        .and_then(|s| s.health().last_check.clone())
        .expect("checked");
    assert_eq!(
        last.status.code(),
        "L6RSP",
        "the old CA does not trust the renewed node: {last:?}"
    );

    write(&ca_file, &new_ca.pem());
    new_ca.write_pem(&dir, "client.pem", &["warren.test"]);
    w.reload(&text).await.expect("reload");
    wait_state(&mut events, "s", true, LIMIT).await;
    let (_new, tag) = which_backend(w.addr("px")).await;
    assert_eq!(
        tag, "node",
        "a new session trusts the new CA and shows the new client certificate"
    );
    assert_eq!(
        echo(&mut old, "still here").await,
        "still here",
        "the session opened before the renewal goes on"
    );
    w.stop().await;
}
