//! The global TLS defaults (`ssl-default-bind-options`, `ssl-default-server-options`,
//! `ssl-server-verify`, `crt-base`, `ca-base`) under warren and Debian's `haproxy`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::both::{check, dash_f, tempdir, write_files, Proxy, Running};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

const DEFAULTS: &str = "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n";

/// A CA, and a certificate for 127.0.0.1 signed by it: (CA, "cert+key" PEM).
fn certificate() -> (CertifiedIssuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("sign");
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    (ca, pem)
}

/// Whether a client speaking only `version` completes a handshake with `addr`.
async fn handshake(
    ca: &CertifiedIssuer<'static, KeyPair>,
    addr: SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_default_bind_options_raise_the_minimum_and_crt_base_finds_the_file() {
    let (ca, pem) = certificate();
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let dir = tempdir("tlsdef");
        let port = free_port();
        let cfg = format!(
            "global\n    crt-base {}\n    ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets\n    ssl-default-bind-ciphers ECDHE+AESGCM\n\
             {DEFAULTS}listen fe\n    bind 127.0.0.1:{port} ssl crt site.pem\n    server s1 {}\n",
            dir.display(),
            a.addr
        );
        let files = write_files(&dir, &[("site.pem", &pem), ("t.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files[1..]), &[]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        assert!(
            handshake(&ca, addr, &rustls::version::TLS13).await,
            "{proxy:?}: TLS 1.3 refused"
        );
        assert!(
            !handshake(&ca, addr, &rustls::version::TLS12).await,
            "{proxy:?}: TLS 1.2 accepted below ssl-min-ver"
        );
    }
}

#[test]
fn ssl_server_verify_none_lets_ssl_servers_go_without_a_ca_file() {
    let dir = tempdir("tlsdef");
    let port = free_port();
    let server =
        format!("listen fe\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:5671 ssl\n");
    let strict = format!("{DEFAULTS}{server}");
    let relaxed = format!("global\n    ssl-server-verify none\n    ssl-default-server-options no-tlsv12\n{DEFAULTS}{server}");
    for proxy in Proxy::BOTH {
        let files = write_files(&dir, &[("strict.cfg", &strict)]);
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(
            !c.valid,
            "{proxy:?}: ssl without ca-file accepted:\n{}",
            c.output
        );
        let files = write_files(&dir, &[("relaxed.cfg", &relaxed)]);
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(c.valid, "{proxy:?}:\n{}", c.output);
    }
    let files = write_files(
        &dir,
        &[(
            "bad.cfg",
            "global\n    ssl-default-server-options no-tlsv13\n",
        )],
    );
    let c = check(Proxy::Warren, &dash_f(&files), &[]);
    assert!(
        !c.valid && c.output.contains("bad.cfg:2") && c.output.contains("cannot turn TLS 1.3 off"),
        "{}",
        c.output
    );
}
