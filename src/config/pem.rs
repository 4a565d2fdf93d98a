//! Reading the PEM files a TLS line names: certificate chains, private keys, trusted CAs.
//!
//! The configuration holds paths only; these files are read twice: when a configuration is
//! loaded, so a bad file is an error at its `file:line` (and a reload with one keeps the old
//! configuration serving), and when the runtime builds a generation's rustls configurations
//! (`crate::tls`), which is how a renewed certificate or CA is picked up by SIGHUP. Each read
//! also returns the bytes it saw ([`Material::content`]), so the runtime reuses what it
//! built from the same content.
//!
//! The files follow HAProxy's conventions, so an existing `haproxy.cfg` works unchanged:
//! - `crt <file>` is one PEM file holding the certificate chain and the private key; if
//!   the file has no key, `<file>.key` is read (HAProxy's `ssl-load-extra-files`);
//! - `crt <directory>` loads every file in it, in name order, except `.key`, `.issuer`,
//!   `.ocsp` and `.sctl` files;
//! - `ca-file <file>` holds the certificates trusted to sign the peer's certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::tls::{BindTls, ServerTls};

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

/// The crypto provider every TLS object of warren is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The files of a TLS line, read and checked.
pub struct Material<T> {
    pub parts: T,
    /// Every byte read, with the paths: equal content, equal material.
    pub content: Vec<u8>,
}

/// A bind's certificates (each with its key, checked to match) and the CA its clients'
/// certificates are verified against.
pub struct BindParts {
    pub certs: Vec<Arc<CertifiedKey>>,
    pub client_ca: Option<RootCertStore>,
}

/// A server line's trusted CA (when its certificate is verified) and client certificate.
pub struct ServerParts {
    pub roots: Option<RootCertStore>,
    pub client: Option<ClientCert>,
}

/// A client certificate chain, its key, and the file they came from (for messages).
pub struct ClientCert {
    pub path: PathBuf,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads what a TLS bind names.
pub fn read_bind(tls: &BindTls) -> Result<Material<BindParts>, TlsError> {
    let provider = provider();
    let mut r = Reader::default();
    let mut certs = Vec::new();
    for path in &tls.crt {
        for file in crt_files(path)? {
            let (chain, key) = r.chain_and_key(&file)?;
            certs.push(certified_key(&file, chain, key, &provider)?);
        }
    }
    let client_ca = match &tls.ca_file {
        Some(ca) if tls.verify != super::tls::ClientVerify::None => Some(r.roots(ca)?),
        _ => None,
    };
    Ok(Material {
        parts: BindParts { certs, client_ca },
        content: r.content,
    })
}

/// Reads what a TLS server line names.
pub fn read_server(tls: &ServerTls) -> Result<Material<ServerParts>, TlsError> {
    let provider = provider();
    let mut r = Reader::default();
    let roots = match (&tls.ca_file, tls.verify) {
        (Some(ca), true) => Some(r.roots(ca)?),
        (None, true) => Some(RootCertStore::empty()),
        (_, false) => None,
    };
    let client = match &tls.crt {
        Some(path) => {
            let (chain, key) = r.chain_and_key(path)?;
            // Checked here so a mismatch is a load error, not a failed handshake later.
            certified_key(path, chain.clone(), key.clone_key(), &provider)?;
            Some(ClientCert {
                path: path.clone(),
                chain,
                key,
            })
        }
        None => None,
    };
    Ok(Material {
        parts: ServerParts { roots, client },
        content: r.content,
    })
}

/// Reads files, remembering what it read.
#[derive(Default)]
struct Reader {
    content: Vec<u8>,
}

impl Reader {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, TlsError> {
        let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.as_os_str().as_encoded_bytes();
        for part in [name, &bytes] {
            self.content
                .extend_from_slice(&(part.len() as u64).to_le_bytes());
            self.content.extend_from_slice(part);
        }
        Ok(bytes)
    }

    /// The certificate chain of a PEM file and its private key (same file, or `<file>.key`).
    fn chain_and_key(
        &mut self,
        path: &Path,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let pem = self.read(path)?;
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
                let key_pem = self.read(&key_path)?;
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

    fn roots(&mut self, path: &Path) -> Result<RootCertStore, TlsError> {
        let pem = self.read(path)?;
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

fn certified_key(
    path: &Path,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
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
