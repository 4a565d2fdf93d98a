//! rustls configurations built from the TLS material a configuration names.
//!
//! The configuration holds paths and options (`config::BindTls`, `config::ServerTls`); the
//! runtime builds what they describe here, once per generation, through a [`Cache`] keyed by
//! the files' content: a reload (SIGHUP) reads every file again, so a renewed bind
//! certificate, server `ca-file` or client `crt` is in force for new sessions and checks,
//! while unchanged files keep the configuration already built (and its session cache).
//! Sessions already open keep the TLS state they negotiated.
//!
//! Only TLS 1.2 and 1.3 are spoken (`ssl-min-ver TLSv1.3` narrows it), with rustls's
//! cipher suites, all of them AEAD with forward secrecy.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

pub use crate::config::pem::TlsError;
use crate::config::pem::{self, provider, BindParts, ServerParts};
use crate::config::{BindTls, ClientVerify, MinVersion, ServerTls};

fn versions(min: MinVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        MinVersion::Tls12 => &BOTH,
        MinVersion::Tls13 => &ONLY_13,
    }
}

/// The rustls configurations of one generation, by what they were built from (the options
/// and every byte of the files). Building the next generation's through the previous one
/// reuses each configuration whose files did not change; what the next generation does not
/// use is dropped with the previous cache.
#[derive(Default)]
pub struct Cache {
    acceptors: HashMap<Vec<u8>, Arc<ServerConfig>>,
    connectors: HashMap<Vec<u8>, Arc<ClientConfig>>,
}

impl Cache {
    /// The acceptor of a TLS bind, reading its files now; reused from `previous` (or this
    /// cache) when they hold what they held then.
    pub fn acceptor(
        &mut self,
        previous: &Cache,
        tls: &BindTls,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let material = pem::read_bind(tls)?;
        let key = key(tls, material.content);
        if let Some(c) = self
            .acceptors
            .get(&key)
            .or_else(|| previous.acceptors.get(&key))
        {
            let c = Arc::clone(c);
            self.acceptors.insert(key, Arc::clone(&c));
            return Ok(c);
        }
        let built = acceptor(tls, material.parts)?;
        self.acceptors.insert(key, Arc::clone(&built));
        Ok(built)
    }

    /// The connector towards a TLS server, as [`Cache::acceptor`] does for binds.
    pub fn connector(
        &mut self,
        previous: &Cache,
        tls: &ServerTls,
    ) -> Result<Arc<ClientConfig>, TlsError> {
        let material = pem::read_server(tls)?;
        let key = key(tls, material.content);
        if let Some(c) = self
            .connectors
            .get(&key)
            .or_else(|| previous.connectors.get(&key))
        {
            let c = Arc::clone(c);
            self.connectors.insert(key, Arc::clone(&c));
            return Ok(c);
        }
        let built = connector(tls, material.parts)?;
        self.connectors.insert(key, Arc::clone(&built));
        Ok(built)
    }
}

/// The options as written, then the files' content.
fn key(options: &impl std::fmt::Debug, content: Vec<u8>) -> Vec<u8> {
    let mut key = format!("{options:?}\n").into_bytes();
    key.extend(content);
    key
}

/// The acceptor configuration of a TLS bind.
fn acceptor(tls: &BindTls, parts: BindParts) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions(tls.min_version))
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match parts.client_ca {
        Some(roots) => {
            let v =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let v = if tls.verify == ClientVerify::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder
                .with_client_cert_verifier(v.build().map_err(|e| TlsError::Rustls(e.to_string()))?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(BySni { certs: parts.certs }));
    // AMQP has no ALPN name of its own; clients that send one are not refused.
    config.alpn_protocols = Vec::new();
    Ok(Arc::new(config))
}

/// The connector configuration towards a TLS server.
fn connector(tls: &ServerTls, parts: ServerParts) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions(tls.min_version))
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match parts.roots {
        Some(roots) => builder.with_root_certificates(roots),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            ))),
    };
    let config = match parts.client {
        Some(cert) => builder
            .with_client_auth_cert(cert.chain, cert.key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { path: cert.path },
                e => TlsError::BadKey {
                    path: cert.path,
                    reason: e.to_string(),
                },
            })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Picks the certificate for a client's SNI: the first whose names cover it, else the first.
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let first = self.certs.first().cloned();
        if self.certs.len() < 2 {
            return first;
        }
        let Some(sni) = hello
            .server_name()
            .and_then(|n| ServerName::try_from(n).ok())
        else {
            return first;
        };
        self.certs
            .iter()
            .find(|ck| {
                ck.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|ee| ee.verify_is_valid_for_subject_name(&sni).is_ok())
            })
            .cloned()
            .or(first)
    }
}

/// `verify none`: any certificate is accepted (the handshake's signatures are still
/// checked, so the peer must hold the key of the certificate it shows).
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The name a connection to `addr` presents and verifies.
pub fn server_name(name: Option<&str>, addr: std::net::SocketAddr) -> ServerName<'static> {
    name.and_then(|n| ServerName::try_from(n.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}
