//! `server <name> <address> [keywords]` and `default-server [keywords]`.

use super::draft::{Draft, Kind, ServerParams};
use super::{duration, number};
use crate::config::addr;
use crate::config::model::{ObserveLayer, OnError, ProxyProtocol};
use crate::config::report::Report;
use crate::config::suggest;
use crate::config::MinVersion;

/// A file argument (`ca-file`, `crt`).
pub fn path(key: &str, value: Option<&String>) -> Result<std::path::PathBuf, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(std::path::PathBuf::from(v)),
        _ => Err(format!("'{key}' needs a file name")),
    }
}

/// Keywords warren implements, for suggestions.
const KNOWN: [&str; 37] = [
    "init-addr",
    "resolvers",
    "resolve-prefer",
    "check",
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "weight",
    "maxconn",
    "maxqueue",
    "backup",
    "disabled",
    "enabled",
    "slowstart",
    "on-marked-down",
    "on-marked-up",
    "port",
    "send-proxy",
    "send-proxy-v2",
    "no-send-proxy",
    "check-send-proxy",
    "ssl",
    "no-ssl",
    "check-ssl",
    "verify",
    "ca-file",
    "crt",
    "sni",
    "verifyhost",
    "ssl-min-ver",
    "cookie",
    "observe",
    "error-limit",
    "on-error",
    "id",
];

/// Keywords warren knows but cannot honour yet, with what to write instead.
const UNSUPPORTED: [(&str, &str); 7] = [
    ("addr", "checks go to the server's own address; 'port <n>' sends them to another port of it"),
    ("check-sni", "TLS checks send the server's name: write 'sni str(<name>)' (or 'verifyhost <name>')"),
    ("agent-check", "warren has no agent protocol; 'option amqp-check' or 'option httpchk' against the management API judges a node by its own answer"),
    ("agent-port", "warren has no agent protocol; 'option amqp-check' or 'option httpchk' against the management API judges a node by its own answer"),
    ("agent-inter", "warren has no agent protocol; 'option amqp-check' or 'option httpchk' against the management API judges a node by its own answer"),
    ("resolve-opts", "remove it: warren never gives two servers one address (HAProxy's default 'prevent-dup-ip') and takes SRV weights as HAProxy does"),
    ("resolve-net", "remove it, or list the addresses you prefer with 'init-addr'; warren takes the answer's addresses in its order"),
];
pub fn server(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_backend() || draft.kind == Kind::Defaults {
        report.error(line, format!("'server' is not allowed in a {} section; put servers in a backend or listen section", draft.kind.name()));
        return;
    }
    let (Some(name), Some(address)) = (words.get(1), words.get(2)) else {
        report.error(line, "'server' needs a name and an address, for example 'server rabbit1 10.0.0.1:5672 check'");
        return;
    };
    let params = params(&words[3..], line, report);
    if let Some(params) = params {
        add(draft, name.clone(), address, params, None, line, report);
    }
}

/// `server-template <prefix> <num | first-last> <fqdn>[:<port>] [params]`: servers
/// `<prefix>N` for every N of the range, filled by the `resolvers` from the name's
/// A/AAAA records (or SRV records, for a name starting with `_`); the slots an answer
/// leaves empty wait in maintenance.
pub fn template(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_backend() || draft.kind == Kind::Defaults {
        report.error(line, format!("'server-template' is not allowed in a {} section; put it in a backend or listen section", draft.kind.name()));
        return;
    }
    let (Some(prefix), Some(range), Some(address)) = (words.get(1), words.get(2), words.get(3))
    else {
        report.error(line, "'server-template' needs a prefix, a number of servers and an address, for example 'server-template rabbit 3 rabbitmq.default.svc.cluster.local:5672 check resolvers k8s'");
        return;
    };
    let Some(template) = report.check(line, crate::config::Template::parse(prefix, range)) else {
        return;
    };
    let Some(params) = params(&words[4..], line, report) else {
        return;
    };
    for (slot, n) in template.slots().enumerate() {
        let slot = Some((template.clone(), slot));
        add(
            draft,
            format!("{prefix}{n}"),
            address,
            params.clone(),
            slot,
            line,
            report,
        );
    }
}

/// One server of a `server` line or of a template.
fn add(
    draft: &mut Draft,
    name: String,
    address: &str,
    params: ServerParams,
    slot: Option<(crate::config::Template, usize)>,
    line: usize,
    report: &mut Report,
) {
    {
        let mut params = params.over(&draft.default_server);
        let mut dns = params.dns();
        let index = slot.as_ref().map(|(_, i)| *i);
        dns.template = slot.map(|(t, _)| t);
        let Some((addr, dns)) = report.check(line, addr::server_with_dns(address, dns, index))
        else {
            return;
        };
        let d = &draft.tls_defaults;
        if params.ssl.unwrap_or(false) || params.check_ssl.unwrap_or(false) {
            params.verify = params.verify.or(d.server_verify);
            params.ssl_min_ver = params.ssl_min_ver.or(d.server_min);
        }
        params.ca_file = params
            .ca_file
            .map(|p| super::ssl_defaults::TlsDefaults::under(&d.ca_base, &p));
        params.crt = params
            .crt
            .map(|p| super::ssl_defaults::TlsDefaults::under(&d.crt_base, &p));
        let mut server = params.build(name.clone(), addr);
        server.dns = dns;
        match params.tls() {
            Ok(tls) => server.tls = tls,
            Err(message) => return report.error(line, format!("server '{name}': {message}")),
        }
        draft.servers.push((server, line));
    }
}

pub fn default_server(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_backend() {
        report.error(
            line,
            "'default-server' is not allowed in a frontend section",
        );
        return;
    }
    if let Some(params) = params(&words[1..], line, report) {
        draft.default_server = params.over(&draft.default_server);
    }
}

/// Parses the keywords after the address; `None` if any was wrong (all are reported).
fn params(words: &[String], line: usize, report: &mut Report) -> Option<ServerParams> {
    let mut p = ServerParams::default();
    let mut ok = true;
    let mut i = 0;
    while i < words.len() {
        let key = words[i].as_str();
        let value = words.get(i + 1);
        let mut takes_value = true;
        let result: Result<(), String> = match key {
            "check" => {
                takes_value = false;
                p.check = Some(true);
                Ok(())
            }
            "no-check" => {
                takes_value = false;
                p.check = Some(false);
                Ok(())
            }
            "backup" => {
                takes_value = false;
                p.backup = Some(true);
                Ok(())
            }
            "send-proxy" | "send-proxy-v2" | "no-send-proxy" => {
                takes_value = false;
                p.send_proxy = Some(match key {
                    "send-proxy" => Some(ProxyProtocol::V1),
                    "send-proxy-v2" => Some(ProxyProtocol::V2),
                    _ => None,
                });
                Ok(())
            }
            "check-send-proxy" => {
                takes_value = false;
                p.check_send_proxy = Some(true);
                Ok(())
            }
            "ssl" | "no-ssl" => {
                takes_value = false;
                p.ssl = Some(key == "ssl");
                Ok(())
            }
            "check-ssl" => {
                takes_value = false;
                p.check_ssl = Some(true);
                Ok(())
            }
            "verify" => match value.map(String::as_str) {
                Some("none") => {
                    p.verify = Some(false);
                    Ok(())
                }
                Some("required") => {
                    p.verify = Some(true);
                    Ok(())
                }
                _ => Err("'verify' takes 'none' or 'required'".to_string()),
            },
            "cookie" => match value {
                Some(v) if !v.is_empty() && !v.contains([';', ',', '|', '~', ' ']) => {
                    p.cookie = Some(v.clone());
                    Ok(())
                }
                Some(v) => Err(format!(
                    "'cookie' value '{v}' may not contain ';', ',', '|', '~' or spaces"
                )),
                None => Err("'cookie' needs the value that names this server".to_string()),
            },
            "ca-file" => path(key, value).map(|v| p.ca_file = Some(v)),
            "crt" => path(key, value).map(|v| p.crt = Some(v)),
            "verifyhost" => value
                .ok_or_else(|| "'verifyhost' needs a host name".to_string())
                .map(|v| p.tls_name = Some(v.clone())),
            "sni" => match value
                .and_then(|v| v.strip_prefix("str("))
                .and_then(|v| v.strip_suffix(')'))
            {
                Some(name) if !name.is_empty() => {
                    p.tls_name = Some(name.to_string());
                    Ok(())
                }
                _ => Err("'sni' supports a fixed name only, written 'sni str(<name>)'".to_string()),
            },
            "ssl-min-ver" => MinVersion::parse(value).map(|v| p.ssl_min_ver = Some(v)),
            "disabled" | "enabled" => {
                takes_value = false;
                p.disabled = Some(key == "disabled");
                Ok(())
            }
            "inter" => duration(key, value).map(|d| p.inter = Some(d)),
            "fastinter" => duration(key, value).map(|d| p.fastinter = Some(d)),
            "downinter" => duration(key, value).map(|d| p.downinter = Some(d)),
            "slowstart" => duration(key, value).map(|d| p.slowstart = (!d.is_zero()).then_some(d)),
            "rise" => number(key, value).map(|n| p.rise = Some(n)),
            "fall" => number(key, value).map(|n| p.fall = Some(n)),
            "weight" => number(key, value).map(|n| p.weight = Some(n)),
            "maxconn" => number(key, value).map(|n| p.maxconn = Some(n)),
            "maxqueue" => number(key, value).map(|n| p.maxqueue = Some(n)),
            "port" => number(key, value).and_then(|n| match u16::try_from(n) {
                Ok(port) if port > 0 => {
                    p.check_port = Some(port);
                    Ok(())
                }
                _ => Err(format!(
                    "'port' must be a port number from 1 to 65535, not {n}"
                )),
            }),
            "init-addr" => value
                .ok_or_else(|| {
                    "'init-addr' needs methods, for example 'init-addr last,libc,none'".to_string()
                })
                .and_then(|v| crate::config::InitAddr::parse_list(v))
                .map(|v| p.init_addr = Some(v)),
            "resolvers" => value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| "'resolvers' needs the name of a resolvers section".to_string())
                .map(|v| p.resolvers = Some(v.clone())),
            "resolve-prefer" => value
                .ok_or_else(|| "'resolve-prefer' takes 'ipv4' or 'ipv6'".to_string())
                .and_then(|v| crate::config::Family::parse(v))
                .map(|f| p.resolve_prefer = Some(f)),
            "on-marked-down" => match value.map(String::as_str) {
                Some("shutdown-sessions") => {
                    p.shutdown_on_down = Some(true);
                    Ok(())
                }
                _ => Err("'on-marked-down' supports 'shutdown-sessions' only".to_string()),
            },
            "id" => number(key, value).and_then(|n| {
                if n == 0 {
                    return Err("'id' must be a positive number".to_string());
                }
                p.id = Some(n);
                Ok(())
            }),
            "observe" => match value.map(String::as_str) {
                Some("layer4") => {
                    p.observe = Some(ObserveLayer::Layer4);
                    Ok(())
                }
                Some("layer7") => {
                    p.observe = Some(ObserveLayer::Layer7);
                    Ok(())
                }
                _ => Err("'observe' takes 'layer4' or 'layer7'".to_string()),
            },
            "error-limit" => number(key, value).and_then(|n| {
                if n == 0 {
                    return Err("'error-limit' must be at least 1".to_string());
                }
                p.error_limit = Some(n);
                Ok(())
            }),
            "on-error" => match value.map(|v| OnError::parse(v)) {
                Some(Some(action)) => {
                    p.on_error = Some(action);
                    Ok(())
                }
                _ => Err(format!(
                    "'on-error' takes one of {}",
                    OnError::NAMES.join(", ")
                )),
            },
            "on-marked-up" => match value.map(String::as_str) {
                Some("shutdown-backup-sessions") => {
                    p.shutdown_backup_on_up = Some(true);
                    Ok(())
                }
                _ => Err("'on-marked-up' supports 'shutdown-backup-sessions' only".to_string()),
            },
            _ => match UNSUPPORTED.iter().find(|(k, _)| *k == key) {
                Some((_, advice)) => {
                    Err(format!("server keyword '{key}' is not supported: {advice}"))
                }
                None => {
                    // Unknown: its value (if any) cannot be told apart, so stop here.
                    report.error(
                        line,
                        format!(
                            "unknown keyword '{key}' on server line{}",
                            suggest::hint(key, KNOWN)
                        ),
                    );
                    return None;
                }
            },
        };
        if let Err(message) = result {
            report.error(line, message);
            ok = false;
        }
        i += if takes_value { 2 } else { 1 };
    }
    ok.then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn backend() -> Draft {
        Draft::new(Kind::Backend, "b", 1)
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn report_server_line() {
        let mut d = backend();
        let mut r = Report::new("t.cfg");
        server(
            &mut d,
            &words("server clusterRabbit1 127.0.0.1:5672 check inter 2000 rise 3 fall 3 weight 30"),
            7,
            &mut r,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let s = &d.servers[0].0;
        assert!(s.check);
        assert_eq!(s.inter, Duration::from_secs(2));
        assert_eq!(s.fastinter, Duration::from_secs(2));
        assert_eq!(s.downinter, Duration::from_secs(2));
        assert_eq!((s.rise, s.fall, s.weight), (3, 3, 30));
    }

    #[test]
    fn defaults_match_haproxy() {
        let mut d = backend();
        let mut r = Report::new("t.cfg");
        server(&mut d, &words("server a 127.0.0.1:1"), 1, &mut r);
        let s = &d.servers[0].0;
        assert!(!s.check);
        assert_eq!(
            (s.inter, s.rise, s.fall, s.weight),
            (Duration::from_secs(2), 2, 3, 1)
        );
        assert_eq!(
            (s.maxconn, s.maxqueue, s.backup, s.disabled),
            (0, 0, false, false)
        );
    }

    #[test]
    fn default_server_then_override() {
        let mut d = backend();
        let mut r = Report::new("t.cfg");
        default_server(
            &mut d,
            &words("default-server inter 3s fall 5 on-marked-down shutdown-sessions"),
            1,
            &mut r,
        );
        server(
            &mut d,
            &words("server a 127.0.0.1:1 check fall 2 fastinter 500ms backup slowstart 1m"),
            2,
            &mut r,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let s = &d.servers[0].0;
        assert_eq!(
            (s.inter, s.fall, s.fastinter),
            (Duration::from_secs(3), 2, Duration::from_millis(500))
        );
        assert!(s.shutdown_on_down && s.backup);
        assert_eq!(s.slowstart, Some(Duration::from_secs(60)));
    }

    #[test]
    fn typo_gets_a_suggestion() {
        let mut d = backend();
        let mut r = Report::new("haproxy.cfg");
        server(
            &mut d,
            &words("server a 127.0.0.1:1 check wieght 30"),
            46,
            &mut r,
        );
        assert_eq!(
            r.errors[0].to_string(),
            "haproxy.cfg:46: unknown keyword 'wieght' on server line (did you mean 'weight'?)"
        );
    }

    #[test]
    fn bad_values() {
        let mut d = backend();
        let mut r = Report::new("t.cfg");
        server(
            &mut d,
            &words("server a 127.0.0.1:1 inter 2x rise many"),
            3,
            &mut r,
        );
        assert_eq!(r.errors.len(), 2);
        assert!(d.servers.is_empty());
        server(
            &mut d,
            &words("server a 127.0.0.1:1 addr 10.0.0.1"),
            4,
            &mut r,
        );
        assert!(
            r.errors[2]
                .message
                .contains("is not supported: checks go to")
                && r.errors[2].message.contains("'port <n>'"),
            "says what to write instead: {}",
            r.errors[2].message
        );
        server(&mut d, &words("server a 127.0.0.1:1 port 70000"), 5, &mut r);
        assert!(
            r.errors[3].message.contains("from 1 to 65535"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn check_port_from_the_server_or_default_server() {
        let mut d = backend();
        let mut r = Report::new("t.cfg");
        default_server(&mut d, &words("default-server port 15672"), 1, &mut r);
        server(&mut d, &words("server a 127.0.0.1:5672 check"), 2, &mut r);
        server(
            &mut d,
            &words("server b 127.0.0.1:5673 check port 15673"),
            3,
            &mut r,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(d.servers[0].0.check_port, Some(15672));
        assert_eq!(d.servers[1].0.check_port, Some(15673));
    }
}
