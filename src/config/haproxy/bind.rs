//! `bind <addr>[,<addr>...] [accept-proxy] [ssl crt <pem> [ca-file <pem> verify ...]]`:
//! a frontend's listening addresses and how its clients start (PROXY header, TLS).

use super::draft::{Draft, Kind};
use crate::config::addr;
use crate::config::model::Bind;
use crate::config::report::Report;
use crate::config::{BindOptions, ClientVerify, MinVersion};

pub(super) fn bind(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_frontend() || draft.kind == Kind::Defaults {
        report.error(
            line,
            format!(
                "'bind' is not allowed in a {} section; listen in a frontend or listen section",
                draft.kind.name()
            ),
        );
        return;
    }
    let Some(list) = words.get(1) else {
        report.error(line, "'bind' needs an address, for example '0.0.0.0:5672'");
        return;
    };
    // Unix-socket and inherited listeners: warren's data path is TCP only.
    if let Some(kind) = ["unix@", "abns@", "fd@", "sockpair@", "uxst@", "/"]
        .iter()
        .find(|p| list.starts_with(**p))
    {
        report.error(line, format!("bind '{list}': warren listens on TCP addresses only ({kind} sockets are not supported); bind an address such as 127.0.0.1:5672, and point local clients at it"));
        return;
    }
    let mut accept_proxy = false;
    let mut v4v6 = false;
    let mut tls = BindOptions::default();
    let mut i = 2;
    while let Some(option) = words.get(i) {
        let value = words.get(i + 1);
        let mut takes_value = true;
        let result: Result<(), String> = match option.as_str() {
            "accept-proxy" => {
                takes_value = false;
                accept_proxy = true;
                Ok(())
            }
            "v4v6" | "v6only" => {
                takes_value = false;
                v4v6 = option == "v4v6";
                Ok(())
            }
            // Labels for HAProxy's per-listener stats (`option socket-stats`), which warren
            // does not show: accepted, they change nothing.
            "name" | "id" => match value {
                Some(_) => Ok(()),
                None => Err(format!("bind option '{option}' needs a value")),
            },
            "ssl" => {
                takes_value = false;
                tls.ssl = true;
                Ok(())
            }
            "crt" => super::server::path("crt", value).map(|p| tls.crt.push(p)),
            "ca-file" => super::server::path("ca-file", value).map(|p| tls.ca_file = Some(p)),
            "verify" => match value.and_then(|v| ClientVerify::from_name(v)) {
                Some(v) => {
                    tls.verify = Some(v);
                    Ok(())
                }
                None => Err("'verify' takes 'none', 'optional' or 'required'".to_string()),
            },
            "ssl-min-ver" => MinVersion::parse(value).map(|v| tls.min_version = Some(v)),
            // What these forbid, warren never speaks.
            "no-sslv3" | "no-tlsv10" | "no-tlsv11" | "force-tlsv12" | "force-tlsv13" => {
                takes_value = false;
                Ok(())
            }
            "ciphers" | "ciphersuites" | "curves" | "alpn" | "ecdhe" => {
                report.warn(line, format!("bind option '{option}' is ignored: warren negotiates rustls's modern defaults (TLS 1.2 and 1.3, AEAD suites only)"));
                Ok(())
            }
            _ => {
                report.error(line, format!("bind option '{option}' is not supported yet"));
                takes_value = false;
                Ok(())
            }
        };
        if let Err(message) = result {
            report.error(line, message);
        }
        i += if takes_value { 2 } else { 1 };
    }
    // Global defaults: a minimum version, and where relative certificate paths live.
    let d = &draft.tls_defaults;
    if tls.ssl {
        tls.min_version = tls.min_version.or(d.bind_min);
    }
    tls.crt = tls
        .crt
        .iter()
        .map(|p| super::ssl_defaults::TlsDefaults::under(&d.crt_base, p))
        .collect();
    tls.ca_file = tls
        .ca_file
        .map(|p| super::ssl_defaults::TlsDefaults::under(&d.ca_base, &p));
    let tls = match tls.build() {
        Ok(tls) => tls,
        Err(message) => return report.error(line, message),
    };
    for text in list.split(',').filter(|t| !t.is_empty()) {
        if let Some(addrs) = report.check(line, addr::parse_bind(text)) {
            draft.binds.extend(addrs.into_iter().map(|addr| {
                (
                    Bind {
                        addr,
                        accept_proxy,
                        tls: tls.clone(),
                        // Only an IPv6 socket has the option.
                        v4v6: v4v6 && addr.is_ipv6(),
                    },
                    line,
                )
            }));
        }
    }
}
