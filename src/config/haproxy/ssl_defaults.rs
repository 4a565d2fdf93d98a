//! The `global` keywords that set TLS defaults for the `bind` and `server` lines after
//! them (HAProxy applies them when each line is read, so order matters there too):
//! `ssl-default-bind-options`, `ssl-default-server-options` (protocol versions),
//! `ssl-server-verify`, `ca-base`, `crt-base`; the cipher lists are rustls's own.

use std::path::{Path, PathBuf};

use crate::config::report::Report;
use crate::config::MinVersion;

/// TLS defaults in force while the sections after the `global` lines are read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsDefaults {
    pub bind_min: Option<MinVersion>,
    pub server_min: Option<MinVersion>,
    /// `ssl-server-verify none|required`: the default of `verify` on `ssl` servers.
    pub server_verify: Option<bool>,
    /// Where relative `ca-file` paths are looked up.
    pub ca_base: Option<PathBuf>,
    /// Where relative `crt` paths are looked up.
    pub crt_base: Option<PathBuf>,
}

impl TlsDefaults {
    /// `path` under `base` when it is relative, as HAProxy does with `ca-base`/`crt-base`.
    pub fn under(base: &Option<PathBuf>, path: &Path) -> PathBuf {
        match base {
            Some(b) if path.is_relative() => b.join(path),
            _ => path.to_path_buf(),
        }
    }
}

/// The keywords handled here.
pub const KEYWORDS: [&str; 11] = [
    "ssl-default-bind-options",
    "ssl-default-server-options",
    "ssl-server-verify",
    "ca-base",
    "crt-base",
    "ssl-default-bind-ciphers",
    "ssl-default-bind-ciphersuites",
    "ssl-default-server-ciphers",
    "ssl-default-server-ciphersuites",
    "ssl-default-bind-curves",
    "ssl-default-server-curves",
];

pub fn keyword(d: &mut TlsDefaults, words: &[String], line: usize, report: &mut Report) {
    let key = words[0].as_str();
    match key {
        "ssl-default-bind-options" => {
            if let Some(v) = report.check(line, versions(key, &words[1..])) {
                d.bind_min = v.or(d.bind_min);
            }
        }
        "ssl-default-server-options" => {
            if let Some(v) = report.check(line, versions(key, &words[1..])) {
                d.server_min = v.or(d.server_min);
            }
        }
        "ssl-server-verify" => match (words.get(1).map(String::as_str), words.len()) {
            (Some("none"), 2) => d.server_verify = Some(false),
            (Some("required"), 2) => d.server_verify = Some(true),
            _ => report.error(line, "'ssl-server-verify' takes 'none' or 'required'"),
        },
        "ca-base" | "crt-base" => match (words.get(1), words.len()) {
            (Some(dir), 2) => {
                let dir = PathBuf::from(dir);
                if key == "ca-base" {
                    d.ca_base = Some(dir);
                } else {
                    d.crt_base = Some(dir);
                }
            }
            _ => report.error(line, format!("'{key}' takes one directory")),
        },
        _ => report.warn(
            line,
            format!("'{key}' is ignored: warren's TLS (rustls) negotiates its own modern suites and curves (TLS 1.2 and 1.3, AEAD only)"),
        ),
    }
}

/// The protocol versions an options list allows: `Some(min)` when it raises the minimum.
fn versions(key: &str, options: &[String]) -> Result<Option<MinVersion>, String> {
    let mut min = None;
    let mut i = 0;
    while let Some(o) = options.get(i) {
        match o.as_str() {
            "ssl-min-ver" => {
                i += 1;
                let v = options.get(i);
                min = Some(match v.map(String::as_str) {
                    // Older versions are never spoken: a lower minimum is TLS 1.2.
                    Some("SSLv3" | "TLSv1.0" | "TLSv1.1") => MinVersion::Tls12,
                    _ => MinVersion::parse(v)?,
                });
            }
            "ssl-max-ver" => {
                i += 1;
                match options.get(i).map(String::as_str) {
                    Some("TLSv1.3") => {}
                    other => {
                        return Err(format!(
                            "'{key} ssl-max-ver {}': warren always offers TLS 1.3; it can raise the minimum (ssl-min-ver TLSv1.3), not lower the maximum",
                            other.unwrap_or("")
                        ))
                    }
                }
            }
            "no-tlsv12" | "force-tlsv13" => min = Some(MinVersion::Tls13),
            // What these forbid, warren never speaks.
            "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
            "no-tlsv13" | "force-tlsv12" => {
                return Err(format!(
                    "'{key} {o}': warren cannot turn TLS 1.3 off; remove it (TLS 1.2 stays available)"
                ))
            }
            // Session resumption and cipher preference: rustls's defaults apply.
            "no-tls-tickets" | "prefer-client-ciphers" | "strict-sni" | "allow-0rtt" => {}
            other => {
                return Err(format!(
                    "unknown option '{other}' in '{key}' (warren knows ssl-min-ver, ssl-max-ver TLSv1.3, no-sslv3, no-tlsv10, no-tlsv11, no-tlsv12, force-tlsv13, no-tls-tickets, prefer-client-ciphers)"
                ))
            }
        }
        i += 1;
    }
    Ok(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_and_defaults() {
        let mut d = TlsDefaults::default();
        let mut r = Report::new("g.cfg");
        for line in [
            "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
            "ssl-default-server-options no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12",
            "ssl-server-verify none",
            "ca-base /etc/ssl/certs",
            "crt-base /etc/ssl/private",
            "ssl-default-bind-ciphers ECDHE+AESGCM",
        ] {
            keyword(&mut d, &w(line), 1, &mut r);
        }
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(d.bind_min, Some(MinVersion::Tls12));
        assert_eq!(d.server_min, Some(MinVersion::Tls13));
        assert_eq!(d.server_verify, Some(false));
        assert_eq!(
            TlsDefaults::under(&d.crt_base, Path::new("site.pem")),
            PathBuf::from("/etc/ssl/private/site.pem")
        );
        assert_eq!(
            TlsDefaults::under(&d.ca_base, Path::new("/abs/ca.pem")),
            PathBuf::from("/abs/ca.pem")
        );
        for bad in [
            "ssl-default-bind-options no-tlsv13",
            "ssl-default-server-options ssl-max-ver TLSv1.2",
            "ssl-default-bind-options bogus",
            "ssl-server-verify maybe",
        ] {
            let mut r = Report::new("g.cfg");
            keyword(&mut d, &w(bad), 1, &mut r);
            assert_eq!(r.errors.len(), 1, "{bad}");
        }
    }
}
