//! Keywords of `defaults`, `frontend`, `backend` and `listen` sections.

use super::draft::{Draft, HttpOnly, Kind};
use super::{duration, log, no_more_than, number, options, server, stats};
use crate::config::model::{Algorithm, Keepalive, Mode, Rebalance, INITIAL_FRAME_MAX_RANGE};
use crate::config::report::Report;
use crate::config::suggest;

/// Keywords warren implements or knowingly accepts, for suggestions.
const KNOWN: [&str; 39] = [
    "stick-table",
    "stick",
    "hash-type",
    "tcp-check",
    "acl",
    "tcp-request",
    "use_backend",
    "use-server",
    "http-request",
    "http-response",
    "monitor-uri",
    "errorfiles",
    "cookie",
    "mode",
    "bind",
    "default_backend",
    "maxconn",
    "balance",
    "retries",
    "option",
    "no",
    "timeout",
    "log",
    "stats",
    "server",
    "default-server",
    "server-template",
    "errorfile",
    "description",
    "http-check",
    "rebalance",
    "clitcpka-idle",
    "clitcpka-intvl",
    "clitcpka-cnt",
    "srvtcpka-idle",
    "srvtcpka-intvl",
    "srvtcpka-cnt",
    "rate-limit",
    "amqp-initial-frame-max",
];

/// Keywords warren knows but cannot honour yet: refusing them is safer than ignoring rules
/// the user relies on.
const UNSUPPORTED: [&str; 2] = ["tcp-response", "redirect"];

/// warren's own `rebalance` defaults: shed the excess over a minute, one session at a time.
const DEFAULT_REBALANCE: Rebalance = Rebalance {
    window: std::time::Duration::from_secs(60),
    batch: 1,
};

pub fn keyword(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let key = words[0].as_str();
    match key {
        "mode" => mode(draft, words, line, report),
        "bind" => super::bind::bind(draft, words, line, report),
        "default_backend" => {
            if draft.kind == Kind::Backend {
                report.warn(line, "'default_backend' is ignored in a backend section (it belongs to frontends and listen sections)");
            } else if let Some(name) = words.get(1) {
                if no_more_than(words, 2, key, report, line) {
                    draft.default_backend = Some((name.clone(), line));
                }
            } else {
                report.error(line, "'default_backend' needs a backend name");
            }
        }
        "maxconn" => {
            if !no_more_than(words, 2, key, report, line) {
                return;
            }
            let Some(n) = report.check(line, number(key, words.get(1))) else {
                return;
            };
            if draft.kind == Kind::Backend {
                // HAProxy: "maxconn ignored because backend has no frontend capability".
                report.warn(line, format!("'maxconn' is ignored in {}: it limits frontends; limit servers with 'maxconn' on the server lines", draft.describe()));
            } else {
                draft.maxconn = Some(n);
            }
        }
        "balance" => balance(draft, words, line, report),
        "hash-type" => super::hash_type::keyword(draft, words, line, report),
        "stick-table" => super::stick::stick_table(draft, words, line, report),
        "stick" => super::stick::stick(draft, words, line, report),
        "retries" => {
            if no_more_than(words, 2, key, report, line) {
                if let Some(n) = report.check(line, number(key, words.get(1))) {
                    draft.retries = Some(n);
                }
            }
        }
        "option" => options::option(draft, &words[1..], true, line, report),
        "no" => match words.get(1).map(String::as_str) {
            Some("option") => options::option(draft, &words[2..], false, line, report),
            Some("log") => {
                if no_more_than(words, 2, "no log", report, line) {
                    draft.logs.clear();
                }
            }
            Some("rebalance") => {
                if no_more_than(words, 2, "no rebalance", report, line) {
                    draft.rebalance = None;
                }
            }
            _ => report.error(
                line,
                "'no' must be followed by 'option <name>', 'log' or 'rebalance'",
            ),
        },
        "http-check" => options::http_check(draft, words, line, report),
        "tcp-check" => {
            if draft.kind.has_backend() {
                draft.tcp_check_lines.push((words[1..].to_vec(), line));
            } else {
                report.warn(line, format!("'tcp-check' is ignored in {}: health checks belong to backends and listen sections", draft.describe()));
            }
        }
        // An `acl` is read for the mode in force where it is written (mode comes first in
        // any real section): HTTP fetches in `mode http`, TCP fetches otherwise.
        "acl" | "tcp-request" | "use_backend" | "use-server" => {
            super::rules::keyword(draft, words, line, report)
        }
        "rebalance" => rebalance(draft, words, line, report),
        "clitcpka-idle" | "clitcpka-intvl" | "clitcpka-cnt" | "srvtcpka-idle"
        | "srvtcpka-intvl" | "srvtcpka-cnt" => keepalive_param(draft, words, line, report),
        "timeout" => timeout(draft, words, line, report),
        "rate-limit" => rate_limit(draft, words, line, report),
        "amqp-initial-frame-max" => initial_frame_max(draft, words, line, report),
        "amqp-publish-buffer" => publish_buffer(draft, words, line, report),
        "log" => {
            if let Some(entry) = log::entry(&words[1..], line, false, report) {
                draft.logs.push(entry);
            }
        }
        "stats" => stats::keyword(draft, words, line, report),
        "server" => server::server(draft, words, line, report),
        "default-server" => server::default_server(draft, words, line, report),
        "server-template" => server::template(draft, words, line, report),
        "cookie" => {
            if let Some(c) = super::http::cookie(draft, words, line, report) {
                draft.http.cookie = Some(c);
                draft.http_only.push(HttpOnly {
                    line,
                    directive: "cookie".into(),
                    effect: "it is ignored",
                });
            }
        }
        "http-request" | "http-response" | "monitor-uri" | "errorfile" | "errorfiles" => {
            if super::http_rules::keyword(draft, words, line, report) {
                draft.http_only.push(HttpOnly {
                    line,
                    directive: key.to_string(),
                    effect: "it is ignored",
                });
            }
        }
        // Free text for humans; nothing to do with it yet.
        "description" => {}
        "enabled" => {}
        "fullconn" => report.warn(line, "'fullconn' is ignored: it scales servers' 'minconn', which warren does not have"),
        "backlog" => report.warn(line, "'backlog' is ignored: warren's listen backlog is 1024 (the kernel caps it at net.core.somaxconn)"),
        "id" => report.warn(line, "'id' is ignored: warren numbers proxies in file order on the stats page"),
        "disabled" => report.error(line, format!("'disabled' is not supported: comment out {} instead", draft.describe())),
        "grace" => report.error(line, "'grace' was removed from HAProxy; remove it: on SIGTERM warren stops listening at once and lets sessions finish"),
        "source" => report.error(line, "'source' is not supported: warren connects to servers from the address the system chooses; remove it (or route accordingly)"),
        "contimeout" | "clitimeout" | "srvtimeout" => {
            let new = match key {
                "contimeout" => "timeout connect",
                "clitimeout" => "timeout client",
                _ => "timeout server",
            };
            report.error(
                line,
                format!("'{key}' was removed from HAProxy; write '{new}' instead"),
            );
        }
        _ if UNSUPPORTED.contains(&key) => {
            report.error(line, format!("'{key}' is not supported in a TCP proxy: warren applies 'acl', 'tcp-request connection|session|content accept|reject', 'use_backend' and 'use-server'"));
        }
        _ => report.error(
            line,
            format!(
                "unknown keyword '{key}' in {} section{}",
                draft.kind.name(),
                suggest::hint(key, KNOWN)
            ),
        ),
    }
}

fn mode(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !no_more_than(words, 2, "mode", report, line) {
        return;
    }
    match words.get(1).map(String::as_str) {
        Some("tcp") => draft.mode = Some(Mode::Tcp),
        Some("http") => draft.mode = Some(Mode::Http),
        Some("amqp") => report.error(
            line,
            "there is no 'mode amqp' in haproxy.cfg: write 'mode tcp' and 'option amqp'",
        ),
        Some("health") => report.error(
            line,
            "'mode health' was removed from HAProxy; use 'mode tcp' with health checks",
        ),
        Some(other) => report.error(
            line,
            format!(
                "unknown mode '{other}'; use 'tcp' or 'http'{}",
                suggest::hint(other, ["tcp", "http"])
            ),
        ),
        None => report.error(line, "'mode' needs 'tcp' or 'http'"),
    }
}

fn balance(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let Some(name) = words.get(1) else {
        report.error(
            line,
            "'balance' needs an algorithm, for example 'roundrobin'",
        );
        return;
    };
    if draft.kind == Kind::Frontend {
        report.warn(
            line,
            "'balance' is ignored in a frontend section (it belongs to backends)",
        );
        return;
    }
    let algorithm = match name.as_str() {
        "random(2)" => Some(Algorithm::Random),
        n if n.starts_with("random(") => {
            report.error(line, format!("'balance {n}' is not supported: warren's random balancing draws 2 servers; write 'random'"));
            return;
        }
        "uri" | "url_param" | "hdr" | "hash" => None,
        n if n.starts_with("hdr(") => None,
        "rdp-cookie" => {
            report.error(line, "'balance rdp-cookie' is not supported");
            return;
        }
        n if n.starts_with("rdp-cookie(") => {
            report.error(line, "'balance rdp-cookie' is not supported");
            return;
        }
        n => match Algorithm::from_name(n) {
            Some(a) => Some(a),
            None => {
                report.error(
                    line,
                    format!(
                        "unknown balance algorithm '{n}'{}",
                        suggest::hint(n, Algorithm::ALL.iter().map(|(n, _)| *n))
                    ),
                );
                return;
            }
        },
    };
    let Some(algorithm) = algorithm else {
        report.error(
            line,
            format!(
                "'balance {name}' is not supported yet; use roundrobin, leastconn, source, ..."
            ),
        );
        return;
    };
    if no_more_than(words, 2, "balance", report, line) {
        draft.balance = Some(algorithm);
    }
}

/// `timeout <name> <duration>`; 0 means "no timeout", as in HAProxy.
fn timeout(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    const NAMES: [&str; 13] = [
        "failover",
        "client",
        "server",
        "connect",
        "queue",
        "check",
        "tunnel",
        "client-fin",
        "server-fin",
        "http-request",
        "http-keep-alive",
        "handshake",
        "client-hs",
    ];
    let Some(name) = words.get(1).map(String::as_str) else {
        report.error(
            line,
            "'timeout' needs a name and a duration, for example 'timeout client 1m'",
        );
        return;
    };
    if !NAMES.contains(&name) {
        report.error(
            line,
            format!("unknown timeout '{name}'{}", suggest::hint(name, NAMES)),
        );
        return;
    }
    if !no_more_than(words, 3, &format!("timeout {name}"), report, line) {
        return;
    }
    let keyword = format!("timeout {name}");
    let Some(value) = report.check(line, duration(&keyword, words.get(2))) else {
        return;
    };
    let value = (!value.is_zero()).then_some(value);
    let frontend_side = matches!(
        name,
        "client"
            | "client-fin"
            | "http-request"
            | "http-keep-alive"
            | "handshake"
            | "client-hs"
            | "failover"
    );
    if frontend_side && !draft.kind.has_frontend() {
        report.warn(line, format!("'{keyword}' is ignored in {}: it applies to the client side (frontends and listen sections)", draft.describe()));
        return;
    }
    if !frontend_side && !draft.kind.has_backend() {
        report.warn(line, format!("'{keyword}' is ignored in {}: it applies to the server side (backends and listen sections)", draft.describe()));
        return;
    }
    let t = &mut draft.timeouts;
    match name {
        "client" => t.client = value,
        "server" => t.server = value,
        "http-request" | "http-keep-alive" => {
            if name == "http-request" {
                t.http_request = value;
            } else {
                t.http_keep_alive = value;
            }
            draft.http_only.push(HttpOnly {
                line,
                directive: keyword,
                effect: "it is ignored",
            });
        }
        "connect" => t.connect = value,
        "queue" => t.queue = value,
        "check" => t.check = value,
        "tunnel" => t.tunnel = value,
        "client-fin" => t.client_fin = value,
        "server-fin" => t.server_fin = value,
        "handshake" => {
            t.handshake = value;
            draft.handshake_line = value.map(|_| line);
        }
        "client-hs" => t.client_hs = value,
        "failover" => t.failover = value,
        _ => draft.http_only.push(HttpOnly {
            line,
            directive: keyword,
            effect: "it is ignored",
        }),
    }
}

/// `rate-limit sessions <n>` (HAProxy: new sessions per second; above it the frontend
/// pauses accepting) and warren's `rate-limit sessions-per-source <n>` (per client address;
/// above it connections are refused). 0 turns a limit off, as in HAProxy.
fn rate_limit(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    const KINDS: [&str; 2] = ["sessions", "sessions-per-source"];
    let Some(kind) = words.get(1).map(String::as_str) else {
        report.error(
            line,
            "'rate-limit' needs 'sessions <n>' or 'sessions-per-source <n>'",
        );
        return;
    };
    if !KINDS.contains(&kind) {
        report.error(
            line,
            format!(
                "unknown 'rate-limit {kind}': use 'sessions <n>' or 'sessions-per-source <n>'{}",
                suggest::hint(kind, KINDS)
            ),
        );
        return;
    }
    let keyword = format!("rate-limit {kind}");
    if !no_more_than(words, 3, &keyword, report, line) {
        return;
    }
    let Some(n) = report.check(line, number(&keyword, words.get(2))) else {
        return;
    };
    if !draft.kind.has_frontend() {
        // HAProxy: "'rate-limit' ignored because backend has no frontend capability".
        report.warn(
            line,
            format!(
                "'{keyword}' is ignored in {}: it limits frontends",
                draft.describe()
            ),
        );
        return;
    }
    let value = (n > 0).then_some(n);
    if kind == "sessions" {
        draft.rate_limit.sessions = value;
    } else {
        draft.rate_limit.per_source = value;
    }
}

/// warren extension: `amqp-initial-frame-max <size>`, the frame size a client may send
/// before `tune-ok` (RabbitMQ's `initial_frame_max`). HAProxy's size format: bytes, or
/// with a `k` or `m` suffix (×1024).
fn initial_frame_max(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let key = "amqp-initial-frame-max";
    if !no_more_than(words, 2, key, report, line) {
        return;
    }
    let Some(n) = report.check(line, size(key, words.get(1))) else {
        return;
    };
    if !INITIAL_FRAME_MAX_RANGE.contains(&n) {
        report.error(
            line,
            format!(
                "'{key}' must be from {} to {} bytes (RabbitMQ's default initial_frame_max is 8192), not {n}",
                INITIAL_FRAME_MAX_RANGE.start(),
                INITIAL_FRAME_MAX_RANGE.end()
            ),
        );
        return;
    }
    if !draft.kind.has_frontend() {
        report.warn(
            line,
            format!(
                "'{key}' is ignored in {}: it applies to clients (frontends and listen sections)",
                draft.describe()
            ),
        );
        return;
    }
    draft.initial_frame_max = Some((n, line));
}

/// A size in HAProxy's format: a number of bytes, or with a `k`, `m` or `g` suffix.
/// warren extension: `amqp-publish-buffer <size>`, the unconfirmed publishes an
/// `amqp-terminate` session keeps for republishing (at least one frame's worth: 128k).
fn publish_buffer(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let key = "amqp-publish-buffer";
    if !no_more_than(words, 2, key, report, line) {
        return;
    }
    let Some(n) = report.check(line, size(key, words.get(1))) else {
        return;
    };
    if n < 128 * 1024 {
        report.error(
            line,
            format!("'{key}' must be at least 128k (one message of RabbitMQ's default frame_max), not {n}"),
        );
        return;
    }
    draft.terminate.publish_buffer = u64::from(n);
}

fn size(keyword: &str, value: Option<&String>) -> Result<u32, String> {
    let Some(value) = value else {
        return Err(format!("'{keyword}' needs a size (for example '8k')"));
    };
    let (digits, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => value.split_at(i),
        None => (value.as_str(), ""),
    };
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1024,
        "m" => 1024 * 1024,
        "g" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "'{keyword}' expects a size such as 8192 or 8k, not '{value}'"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("'{keyword}' expects a size such as 8192 or 8k, not '{value}'"))
}

/// warren extension: `rebalance [window <time>] [batch <n>]`.
fn rebalance(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_backend() {
        report.warn(
            line,
            format!(
                "'rebalance' is ignored in {}: it applies to backends and listen sections",
                draft.describe()
            ),
        );
        return;
    }
    let mut r = DEFAULT_REBALANCE;
    let mut rest = words[1..].iter();
    while let Some(key) = rest.next() {
        let value = rest.next();
        let result = match key.as_str() {
            "window" => duration("rebalance window", value).map(|d| r.window = d),
            "batch" => number("rebalance batch", value).map(|n| r.batch = n),
            other => Err(format!(
                "unknown argument '{other}' to 'rebalance'; it takes 'window <time>' and 'batch <n>'{}",
                suggest::hint(other, ["window", "batch"])
            )),
        };
        if report.check(line, result).is_none() {
            return;
        }
    }
    if r.window.is_zero() {
        report.error(line, "'rebalance window' must be greater than 0");
    } else if r.batch == 0 {
        report.error(line, "'rebalance batch' must be at least 1");
    } else {
        draft.rebalance = Some((r, line));
    }
}

/// `clitcpka-idle|intvl|cnt` and `srvtcpka-*` (HAProxy 2.2+): the socket's TCP_KEEPIDLE,
/// TCP_KEEPINTVL and TCP_KEEPCNT. They tune keep-alive, they do not turn it on. As in
/// HAProxy, a bare number of seconds is meant here, not milliseconds.
fn keepalive_param(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    let key = words[0].as_str();
    if !no_more_than(words, 2, key, report, line) {
        return;
    }
    let client = key.starts_with("cli");
    if client && !draft.kind.has_frontend() {
        report.warn(line, format!("'{key}' is ignored in {}: it applies to client sockets (frontends and listen sections)", draft.describe()));
        return;
    }
    if !client && !draft.kind.has_backend() {
        report.warn(line, format!("'{key}' is ignored in {}: it applies to server sockets (backends and listen sections)", draft.describe()));
        return;
    }
    let target: &mut Keepalive = if client {
        &mut draft.cli_keepalive
    } else {
        &mut draft.srv_keepalive
    };
    let result = if key.ends_with("-cnt") {
        number(key, words.get(1)).and_then(|n| {
            if n == 0 {
                Err(format!("'{key}' must be at least 1"))
            } else {
                target.count = Some(n);
                Ok(())
            }
        })
    } else {
        seconds(key, words.get(1)).and_then(|d| {
            if d.is_zero() {
                return Err(format!("'{key}' must be greater than 0"));
            }
            if key.ends_with("-idle") {
                target.idle = Some(d);
            } else {
                target.interval = Some(d);
            }
            Ok(())
        })
    };
    report.check(line, result);
}

/// A duration whose bare numbers are seconds (HAProxy's TIME_UNIT_S keywords).
fn seconds(keyword: &str, value: Option<&String>) -> Result<std::time::Duration, String> {
    match value {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            duration(keyword, Some(&format!("{v}s")))
        }
        other => duration(keyword, other),
    }
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_in_haproxys_format() {
        let s = |v: &str| size("k", Some(&v.to_string()));
        assert_eq!(s("8192"), Ok(8192));
        assert_eq!(s("8k"), Ok(8192));
        assert_eq!(s("1M"), Ok(1024 * 1024));
        assert!(s("8kb").is_err());
        assert!(s("k").is_err());
        assert!(s("-1").is_err());
        assert!(s("4g").is_err(), "does not fit 32 bits");
        assert!(size("k", None).is_err());
    }
}
