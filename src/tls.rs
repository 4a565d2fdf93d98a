//! TLS material: certificates and keys read from PEM files into rustls configurations,
//! once, when the configuration is loaded (a reload reads the files again, which is how
//! certificates are renewed without a restart).
//!
//! The files follow HAProxy's conventions, so an existing `haproxy.cfg` works unchanged:
//! - `crt <file>` is one PEM file holding the certificate chain and the private key; if
//!   the file has no key, `<file>.key` is read (HAProxy's `ssl-load-extra-files`);
//! - `crt <directory>` loads every file in it, in name order, except `.key`, `.issuer`,
//!   `.ocsp` and `.sctl` files; the certificate whose names match the client's SNI is
//!   presented, the first one otherwise;
//! - `ca-file <file>` holds the certificates trusted to sign the peer's certificate.
//!
//! Only TLS 1.2 and 1.3 are spoken (`ssl-min-ver TLSv1.3` narrows it), with rustls's
//! cipher suites, all of them AEAD with forward secrecy.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The lowest protocol version accepted (`ssl-min-ver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    #[default]
    Tls12,
    Tls13,
}

impl MinVersion {
    /// HAProxy's spelling (`TLSv1.2`), also accepted by the TOML syntax.
    pub fn from_name(name: &str) -> Option<MinVersion> {
        match name {
            "TLSv1.2" | "1.2" => Some(MinVersion::Tls12),
            "TLSv1.3" | "1.3" => Some(MinVersion::Tls13),
            _ => None,
        }
    }

    /// The value of `ssl-min-ver`, or what is wrong with it.
    pub fn parse(value: Option<&String>) -> Result<MinVersion, String> {
        value.and_then(|v| MinVersion::from_name(v)).ok_or_else(|| {
            "'ssl-min-ver' takes 'TLSv1.2' or 'TLSv1.3' (older versions are not spoken)".to_string()
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "TLSv1.2",
            MinVersion::Tls13 => "TLSv1.3",
        }
    }

    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            MinVersion::Tls12 => &BOTH,
            MinVersion::Tls13 => &ONLY_13,
        }
    }
}

/// Whether clients must present a certificate (`verify` on a bind with `ca-file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientVerify {
    #[default]
    None,
    Optional,
    Required,
}

impl ClientVerify {
    pub fn from_name(name: &str) -> Option<ClientVerify> {
        match name {
            "none" => Some(ClientVerify::None),
            "optional" => Some(ClientVerify::Optional),
            "required" => Some(ClientVerify::Required),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientVerify::None => "none",
            ClientVerify::Optional => "optional",
            ClientVerify::Required => "required",
        }
    }
}

/// TLS on a listening address (`bind ... ssl crt <pem>`).
#[derive(Debug, Clone, PartialEq)]
pub struct BindTls {
    /// PEM files or directories, as written.
    pub crt: Vec<PathBuf>,
    pub min_version: MinVersion,
    /// Signers of client certificates, with `verify optional|required`.
    pub ca_file: Option<PathBuf>,
    pub verify: ClientVerify,
    /// Built from the files above when the configuration was loaded.
    pub acceptor: Built<ServerConfig>,
}

/// TLS towards a server (`server ... ssl verify required ca-file <pem>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTls {
    /// Sessions reach the server over TLS (`ssl`).
    pub sessions: bool,
    /// Health checks go over TLS: `check-ssl`, or `ssl` without a separate check `port`
    /// (HAProxy's rule, applied by the parsers).
    pub checks: bool,
    /// Verify the server's certificate (HAProxy's default, `verify required`).
    pub verify: bool,
    pub ca_file: Option<PathBuf>,
    /// A client certificate for nodes that ask for one (`crt`).
    pub crt: Option<PathBuf>,
    /// The name sent as SNI and checked against the certificate (`sni str(<name>)`,
    /// `verifyhost`); the server's IP address when unset.
    pub name: Option<String>,
    pub min_version: MinVersion,
    /// Built when the configuration was loaded.
    pub connector: Built<ClientConfig>,
}

/// TLS options of a bind as written (both syntaxes), before the files are read.
#[derive(Default)]
pub struct BindOptions {
    pub ssl: bool,
    pub crt: Vec<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub verify: Option<ClientVerify>,
    pub min_version: Option<MinVersion>,
}

impl BindOptions {
    /// Checks the options belong together and reads the certificates.
    pub fn build(self) -> Result<Option<BindTls>, String> {
        if !self.ssl {
            if !self.crt.is_empty() || self.ca_file.is_some() || self.verify.is_some() {
                return Err(
                    "'crt', 'ca-file' and 'verify' need 'ssl' on the same bind line".into(),
                );
            }
            return Ok(None);
        }
        if self.crt.is_empty() {
            return Err(
                "'ssl' on a bind needs a certificate: 'crt <pem file or directory>'".into(),
            );
        }
        let verify = self.verify.unwrap_or_default();
        if verify != ClientVerify::None && self.ca_file.is_none() {
            return Err(format!(
                "'verify {}' needs 'ca-file <pem>' to check client certificates against",
                verify.name()
            ));
        }
        let min_version = self.min_version.unwrap_or_default();
        let acceptor = acceptor(&self.crt, min_version, self.ca_file.as_deref(), verify)
            .map_err(|e| e.to_string())?;
        Ok(Some(BindTls {
            crt: self.crt,
            min_version,
            ca_file: self.ca_file,
            verify,
            acceptor: Built(acceptor),
        }))
    }
}

/// TLS options of a server as written (both syntaxes), before the files are read.
#[derive(Debug, Default)]
pub struct ServerOptions {
    /// Sessions go over TLS (`ssl`).
    pub sessions: bool,
    /// Checks go over TLS (`check-ssl`, or `ssl` with checks on the same port).
    pub checks: bool,
    /// `None`: HAProxy's default, `verify required`.
    pub verify: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub crt: Option<PathBuf>,
    pub name: Option<String>,
    pub min_version: Option<MinVersion>,
}

impl ServerOptions {
    /// `None` when neither sessions nor checks use TLS. Like HAProxy, certificates are
    /// verified unless `verify none` says otherwise, and verifying needs a `ca-file`.
    pub fn build(self) -> Result<Option<ServerTls>, String> {
        if !self.sessions && !self.checks {
            if self.ca_file.is_some() || self.crt.is_some() || self.verify.is_some() {
                return Err(
                    "'verify', 'ca-file' and 'crt' need 'ssl' or 'check-ssl' on the same server"
                        .into(),
                );
            }
            return Ok(None);
        }
        let verify = self.verify.unwrap_or(true);
        if verify && self.ca_file.is_none() {
            return Err("TLS to a server verifies its certificate by default ('verify required') but no 'ca-file' is set; add 'ca-file <pem>' or write 'verify none'".into());
        }
        let min_version = self.min_version.unwrap_or_default();
        let connector = connector(
            verify,
            self.ca_file.as_deref(),
            self.crt.as_deref(),
            min_version,
        )
        .map_err(|e| e.to_string())?;
        Ok(Some(ServerTls {
            sessions: self.sessions,
            checks: self.checks,
            verify,
            ca_file: self.ca_file,
            crt: self.crt,
            name: self.name,
            min_version,
            connector: Built(connector),
        }))
    }
}

/// A rustls configuration built from files. Compares equal to any other: what it was built
/// from is compared beside it (the paths), and two loads of the same files are the same
/// configuration.
#[derive(Clone)]
pub struct Built<T>(pub Arc<T>);

impl<T> PartialEq for Built<T> {
    fn eq(&self, _: &Built<T>) -> bool {
        true
    }
}

impl<T> fmt::Debug for Built<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Built(..)")
    }
}

/// What is wrong with TLS material; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read '{}': {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("'{}' holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("'{}' is not valid PEM: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error("no private key for '{}': put it in the same PEM file or in '{}.key'", path.display(), path.display())]
    NoKey { path: PathBuf },
    #[error("the private key of '{}' cannot be used: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the private key of '{}' does not match its certificate", path.display())]
    KeyMismatch { path: PathBuf },
    #[error("directory '{}' holds no certificate file", path.display())]
    EmptyDirectory { path: PathBuf },
    #[error("'{}' holds a certificate that cannot be trusted as a CA: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor configuration of a TLS bind.
pub fn acceptor(
    crt: &[PathBuf],
    min: MinVersion,
    ca_file: Option<&Path>,
    verify: ClientVerify,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut certs = Vec::new();
    for path in crt {
        for file in crt_files(path)? {
            certs.push(certified_key(&file, &provider)?);
        }
    }
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(min.versions())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (ca_file, verify) {
        (Some(ca), ClientVerify::Optional | ClientVerify::Required) => {
            let roots = Arc::new(roots(ca)?);
            let v = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
            let v = if verify == ClientVerify::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder
                .with_client_cert_verifier(v.build().map_err(|e| TlsError::Rustls(e.to_string()))?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(BySni { certs }));
    // AMQP has no ALPN name of its own; clients that send one are not refused.
    config.alpn_protocols = Vec::new();
    Ok(Arc::new(config))
}

/// The connector configuration towards a TLS server.
pub fn connector(
    verify: bool,
    ca_file: Option<&Path>,
    crt: Option<&Path>,
    min: MinVersion,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(min.versions())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = if verify {
        let roots = match ca_file {
            Some(ca) => roots(ca)?,
            None => RootCertStore::empty(),
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
    };
    let config = match crt {
        Some(path) => {
            let (chain, key) = chain_and_key(path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                        path: path.to_path_buf(),
                    },
                    e => TlsError::BadKey {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    },
                })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The files a `crt` names: itself, or the certificate files of a directory.
fn crt_files(path: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    if !std::fs::metadata(path).map_err(read)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("key" | "issuer" | "ocsp" | "sctl")
            )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TlsError::EmptyDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificate chain of a PEM file and its private key (same file, or `<file>.key`).
fn chain_and_key(
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let pem = read(path)?;
    let bad = |e: rustls_pki_types::pem::Error| TlsError::BadPem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            let mut key_path = path.as_os_str().to_owned();
            key_path.push(".key");
            let key_path = PathBuf::from(key_path);
            if !key_path.exists() {
                return Err(TlsError::NoKey {
                    path: path.to_path_buf(),
                });
            }
            let key_pem = read(&key_path)?;
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
                rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
                    path: path.to_path_buf(),
                },
                e => TlsError::BadPem {
                    path: key_path.clone(),
                    reason: e.to_string(),
                },
            })?
        }
        Err(e) => return Err(bad(e)),
    };
    Ok((chain, key))
}

fn certified_key(path: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let (chain, key) = chain_and_key(path)?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                path: path.to_path_buf(),
            })
        }
        // The key's public half cannot be derived (some key types): nothing to compare.
        Err(_) => Ok(Arc::new(certified)),
    }
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read(path)?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        store.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    if store.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(store)
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
