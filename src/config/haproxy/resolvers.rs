//! `resolvers` sections, read before the proxies (a server may name one defined further
//! down, as in HAProxy):
//!
//! ```text
//! resolvers k8s
//!     nameserver dns1 10.96.0.10:53
//!     parse-resolv-conf
//!     resolve_retries 3
//!     timeout resolve 1s
//!     timeout retry   1s
//!     hold valid 10s
//!     hold nx 30s
//!     accepted_payload_size 8192
//! ```

use super::duration;
use crate::config::model::{Config, Nameserver, Resolvers, HOLD_KEYS};
use crate::config::report::Report;
use crate::config::suggest;
use crate::config::validate::Origins;

/// Section keywords (a resolvers section ends at the next one).
use super::SECTIONS;

const KEYWORDS: [&str; 6] = [
    "nameserver",
    "parse-resolv-conf",
    "resolve_retries",
    "timeout",
    "hold",
    "accepted_payload_size",
];

/// Every resolvers section of the configuration (its preprocessed lines, with their
/// numbers); errors go to `report` with their lines.
pub fn collect(lines: &[(usize, Vec<String>)], report: &mut Report) -> Vec<Resolvers> {
    let mut all: Vec<Resolvers> = Vec::new();
    let mut current: Option<(Resolvers, usize)> = None;
    let done = |section: Option<(Resolvers, usize)>,
                all: &mut Vec<Resolvers>,
                report: &mut Report| {
        if let Some((r, line)) = section {
            if r.nameservers.is_empty() && !r.parse_resolv_conf {
                report.warn(line, format!("resolvers '{}' has no nameservers configured: the names it should follow keep their start-up address", r.name));
            }
            all.push(r);
        }
    };
    for (line, words) in lines {
        let line = *line;
        let Some(first) = words.first() else { continue };
        if SECTIONS.contains(&first.as_str()) {
            done(current.take(), &mut all, report);
            if first == "resolvers" {
                match words.get(1) {
                    Some(name) if all.iter().any(|r| r.name == *name) => report.error(
                        line,
                        format!("a resolvers section named '{name}' already exists"),
                    ),
                    Some(name) => current = Some((Resolvers::new(name), line)),
                    None => report.error(line, "'resolvers' needs a name"),
                }
            }
            continue;
        }
        if let Some((r, _)) = current.as_mut() {
            if let Err(message) = keyword(r, words) {
                report.error(line, message);
            }
        }
    }
    done(current, &mut all, report);
    all
}

fn keyword(r: &mut Resolvers, words: &[String]) -> Result<(), String> {
    let value = words.get(1);
    match words[0].as_str() {
        "nameserver" => {
            let (Some(name), Some(addr)) = (words.get(1), words.get(2)) else {
                return Err("'nameserver' needs a name and an address, for example 'nameserver dns1 10.96.0.10:53'".into());
            };
            let text = addr
                .strip_prefix("udp@")
                .or_else(|| addr.strip_prefix("udp4@"))
                .or_else(|| addr.strip_prefix("udp6@"))
                .unwrap_or(addr);
            if text.starts_with("tcp@") {
                return Err(format!(
                    "nameserver '{name}': DNS over TCP is not supported; use a UDP address"
                ));
            }
            let addr: std::net::SocketAddr = text.parse().map_err(|_| {
                format!("nameserver '{name}' needs an IP address and port, like 10.96.0.10:53, not '{addr}'")
            })?;
            if r.nameservers.iter().any(|n| n.name == *name) {
                return Err(format!("nameserver '{name}' is given twice"));
            }
            r.nameservers.push(Nameserver {
                name: name.clone(),
                addr,
            });
        }
        "parse-resolv-conf" => r.parse_resolv_conf = true,
        "resolve_retries" => {
            r.resolve_retries = super::number("resolve_retries", value)?;
            if r.resolve_retries == 0 {
                return Err("'resolve_retries' must be at least 1".into());
            }
        }
        "timeout" => {
            let which = value.map(String::as_str);
            let d = duration("timeout", words.get(2))?;
            if d.is_zero() {
                return Err("a resolvers timeout must be above 0".into());
            }
            match which {
                Some("resolve") => r.timeout_resolve = d,
                Some("retry") => r.timeout_retry = d,
                _ => {
                    return Err(
                        "'timeout' in a resolvers section takes 'resolve' or 'retry'".into(),
                    )
                }
            }
        }
        "hold" => {
            let key = value.map(String::as_str).unwrap_or("");
            let d = duration("hold", words.get(2))?;
            if !r.hold.set(key, d) {
                return Err(format!(
                    "'hold' takes one of {} and a time, not '{key}'",
                    HOLD_KEYS.join(", ")
                ));
            }
        }
        "accepted_payload_size" => {
            let n = super::number("accepted_payload_size", value)?;
            r.accepted_payload_size =
                u16::try_from(n).ok().filter(|n| *n >= 512).ok_or_else(|| {
                    format!("'accepted_payload_size' must be from 512 to 65535, not {n}")
                })?;
        }
        other => {
            return Err(format!(
                "unknown keyword '{other}' in a resolvers section{}",
                suggest::hint(other, KEYWORDS)
            ))
        }
    }
    Ok(())
}

/// Attaches the sections to `config` and checks that each server's `resolvers` names one
/// (at the server's line) and that each section can reach a DNS server.
pub fn attach(config: &mut Config, all: Vec<Resolvers>, origins: &Origins, report: &mut Report) {
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    for (b, lines) in config.backends.iter().zip(&origins.backends) {
        for (s, line) in b.servers.iter().zip(&lines.servers) {
            let Some(wanted) = s.dns.as_ref().and_then(|d| d.resolvers.as_deref()) else {
                continue;
            };
            if !names.contains(&wanted) {
                report.error(
                    *line,
                    format!(
                        "server '{}' names resolvers '{wanted}', but there is no such section{}",
                        s.name,
                        suggest::hint(wanted, names.iter().copied())
                    ),
                );
            }
        }
    }
    config.resolvers = all;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lines(text: &str) -> Vec<(usize, Vec<String>)> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split_whitespace().map(String::from).collect()))
            .filter(|(_, w): &(usize, Vec<String>)| !w.is_empty())
            .collect()
    }

    #[test]
    fn a_whole_section() {
        let mut r = Report::new("t.cfg");
        let all = collect(
            &lines("resolvers dns\n nameserver a 127.0.0.1:5353\n resolve_retries 2\n timeout retry 200ms\n hold nx 5s\n hold obsolete 1s\n accepted_payload_size 8192\nbackend b\n"),
            &mut r,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let d = &all[0];
        assert_eq!(d.nameservers[0].addr, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(d.resolve_retries, 2);
        assert_eq!(d.timeout_retry, Duration::from_millis(200));
        assert_eq!(d.hold.nx, Duration::from_secs(5));
        assert_eq!(d.hold.obsolete, Duration::from_secs(1));
        assert_eq!(d.hold.valid, Duration::from_secs(10));
        assert_eq!(d.accepted_payload_size, 8192);
    }

    #[test]
    fn errors_name_their_line() {
        let mut r = Report::new("t.cfg");
        collect(
            &lines("resolvers dns\n nameserver a localhost\n hold forever 1s\n accepted_payload_size 100\n nameservr b 1.1.1.1:53\n"),
            &mut r,
        );
        let text: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].starts_with("t.cfg:2: nameserver 'a' needs an IP address"));
        assert!(text[1].starts_with("t.cfg:3: 'hold' takes one of"));
        assert!(text[2].contains("from 512 to 65535"));
        assert!(text[3].contains("did you mean 'nameserver'"), "{}", text[3]);
    }

    #[test]
    fn no_nameserver_is_a_warning_as_in_haproxy() {
        let mut r = Report::new("t.cfg");
        collect(&lines("resolvers dns\n timeout resolve 1s\n"), &mut r);
        assert!(r.errors.is_empty());
        assert!(
            r.warnings[0]
                .to_string()
                .starts_with("t.cfg:1: resolvers 'dns' has no nameservers"),
            "{:?}",
            r.warnings
        );
    }
}
