//! TLS as a configuration says it: which files, which versions, whether peers are verified.
//!
//! Only paths and options live in the model; the files are checked when the configuration
//! is loaded ([`super::pem`]) and turned into rustls configurations by the runtime, once
//! per generation (`crate::tls`), so a reload reads renewed files.
//!
//! Only TLS 1.2 and 1.3 are spoken (`ssl-min-ver TLSv1.3` narrows it).

use std::path::PathBuf;

use super::pem;

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
    /// Checks the options belong together and that the files can be used (they are read
    /// again, into rustls configurations, by the runtime).
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
        let tls = BindTls {
            crt: self.crt,
            min_version: self.min_version.unwrap_or_default(),
            ca_file: self.ca_file,
            verify,
        };
        pem::read_bind(&tls).map_err(|e| e.to_string())?;
        Ok(Some(tls))
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
        let tls = ServerTls {
            sessions: self.sessions,
            checks: self.checks,
            verify,
            ca_file: self.ca_file,
            crt: self.crt,
            name: self.name,
            min_version: self.min_version.unwrap_or_default(),
        };
        pem::read_server(&tls).map_err(|e| e.to_string())?;
        Ok(Some(tls))
    }
}
