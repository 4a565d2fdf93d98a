//! The TLS tests' kit: a made-up CA, TLS clients and servers, line-oriented reads.
//! Shared by `tls.rs` and `tls_reload.rs`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const LIMIT: Duration = Duration::from_secs(10);

/// A certificate authority made up for one test.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses): (certificate PEM, key PEM).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// A certificate for `names` written as HAProxy wants it (chain and key in one file).
    pub fn write_pem(&self, dir: &Path, file: &str, names: &[&str]) -> PathBuf {
        let (cert, key) = self.issue(names);
        let path = dir.join(file);
        write(&path, &format!("{cert}{key}"));
        path
    }

    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).expect("root");
        roots
    }

    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(self.roots())
                .with_no_client_auth(),
        )
    }
}

/// A fresh directory under the system's temporary directory.
pub fn tempdir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warren-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// Connects with TLS, verifying the certificate against `ca` for `name`.
pub async fn tls_connect(
    addr: SocketAddr,
    ca: &Ca,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).expect("name");
    let connector = tokio_rustls::TlsConnector::from(ca.client_config());
    tokio::time::timeout(LIMIT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// Connects with plain TCP, sends nothing, and reads until warren closes: what came back.
pub async fn nothing_sent(addr: SocketAddr) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    tokio::time::timeout(LIMIT, read_to_end(&mut c))
        .await
        .expect("closed in time")
}

/// Reads one line (the tagged backend's greeting, or an echo).
pub async fn line(s: &mut (impl AsyncRead + Unpin)) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while tokio::time::timeout(LIMIT, s.read(&mut b))
        .await
        .expect("line in time")
        .unwrap_or(0)
        == 1
    {
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn echo(s: &mut (impl AsyncRead + AsyncWrite + Unpin), text: &str) -> String {
    s.write_all(format!("{text}\n").as_bytes())
        .await
        .expect("write");
    line(s).await
}

/// A TLS server that greets with `tag` and echoes, using the certificate given.
pub async fn tls_backend(tag: &str, cert_pem: &str, key_pem: &str) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> =
        rustls_pki_types::pem::PemObject::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("certs");
    let key = rustls_pki_types::pem::PemObject::from_pem_slice(key_pem.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = listener().await;
    let addr = l.local_addr().expect("addr");
    let tag = format!("{tag}\n");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            // No Nagle delay (kernel time a paused test clock would jump past).
            let _ = tcp.set_nodelay(true);
            let (acceptor, tag) = (acceptor.clone(), tag.clone());
            tokio::spawn(async move {
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
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

pub fn cfg(bind: &str, server: &str) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen px\n    bind 127.0.0.1:0 {bind}\n    server s {server}\n"
    )
}
