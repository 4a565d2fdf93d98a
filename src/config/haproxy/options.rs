//! `option <name>` and `no option <name>`.

use super::draft::{Draft, HttpOnly};
use crate::config::model::{CheckKind, HttpCheck, Secret};
use crate::config::report::Report;
use crate::config::suggest;

/// Options implemented by warren.
const IMPLEMENTED: [&str; 17] = [
    "allbackups",
    "dontlog-normal",
    "persist",
    "logasap",
    "log-separate-errors",
    "tcp-check",
    "redispatch",
    "amqp-terminate",
    "tcplog",
    "dontlognull",
    "log-health-checks",
    "amqp",
    "amqp-check",
    "httpchk",
    "tcpka",
    "clitcpka",
    "srvtcpka",
];

/// Options that only mean something in mode http; HAProxy warns about them in a TCP proxy.
const HTTP_ONLY: [&str; 8] = [
    "httplog",
    "http-server-close",
    "forwardfor",
    "httpclose",
    "http-keep-alive",
    "http-buffer-request",
    "forceclose",
    "http-pretend-keepalive",
];

/// Accepted but not acted on yet, with what happens instead.
const IGNORED: [(&str, &str); 8] = [
    (
        "abortonclose",
        "queued connections are not dropped early when their client leaves",
    ),
    (
        "tcp-smart-accept",
        "a kernel latency tweak; warren accepts and answers exactly as without it",
    ),
    (
        "tcp-smart-connect",
        "a kernel latency tweak; warren connects exactly as without it",
    ),
    ("splice-auto", "warren splices tcp-mode traffic by itself"),
    (
        "splice-request",
        "warren splices tcp-mode traffic by itself",
    ),
    (
        "splice-response",
        "warren splices tcp-mode traffic by itself",
    ),
    (
        "contstats",
        "warren's byte counters are updated as data moves already",
    ),
    (
        "socket-stats",
        "warren's stats page has no per-listener rows",
    ),
];

/// Options HAProxy has that warren refuses, with what to write instead.
const REFUSED: [(&str, &str); 5] = [
    (
        "nolinger",
        "warren ends sessions with a FIN (a reset only for connections it refuses); remove it",
    ),
    (
        "transparent",
        "it needs TPROXY, which warren does not do; give the servers their real addresses",
    ),
    (
        "independent-streams",
        "warren's idle timeouts already watch each direction; remove it",
    ),
    (
        "external-check",
        "warren runs no external programs; use 'option tcp-check', 'option amqp-check' or 'option httpchk'",
    ),
    (
        "checkcache",
        "it inspects HTTP responses; warren does not proxy HTTP",
    ),
];

/// Health checks warren does not have.
const OTHER_CHECKS: [&str; 7] = [
    "ssl-hello-chk",
    "mysql-check",
    "pgsql-check",
    "redis-check",
    "smtpchk",
    "ldap-check",
    "spop-check",
];

/// HAProxy's `option httpchk` request when no method or URI is given.
const DEFAULT_CHECK_METHOD: &str = "OPTIONS";
const DEFAULT_CHECK_URI: &str = "/";
/// RabbitMQ's default virtual host, for `option amqp-check user ... password ...`.
const DEFAULT_VHOST: &str = "/";

pub fn option(draft: &mut Draft, args: &[String], enabled: bool, line: usize, report: &mut Report) {
    let Some(name) = args.first().map(String::as_str) else {
        report.error(
            line,
            "'option' needs a name, for example 'option redispatch'",
        );
        return;
    };
    let written = if enabled {
        format!("option {name}")
    } else {
        format!("no option {name}")
    };
    let takes_arguments = matches!(
        name,
        "amqp-check" | "httpchk" | "amqp-terminate" | "forwardfor"
    );
    if !takes_arguments && args.len() > 1 {
        report.error(
            line,
            format!("too many arguments to '{written}': remove '{}'", args[1]),
        );
        return;
    }
    match name {
        "redispatch" => draft.redispatch = enabled,
        "tcplog" => draft.tcplog = enabled,
        "dontlognull" => draft.dontlognull = enabled,
        "log-health-checks" => draft.log_health_checks = enabled,
        "log-separate-errors" => draft.log_separate_errors = enabled,
        "logasap" => draft.logasap = enabled,
        "persist" => draft.persist = enabled,
        "amqp" => {
            draft.amqp = Some((enabled, line));
            draft.amqp_own_line = enabled.then_some(line);
        }
        "amqp-terminate" => match args.get(1).map(String::as_str) {
            None => {
                draft.amqp_terminate = Some((enabled, line));
                draft.amqp_own_line = enabled.then_some(line);
                draft.terminate.lenient = false;
            }
            Some("lenient") if enabled && args.len() == 2 => {
                draft.amqp_terminate = Some((true, line));
                draft.amqp_own_line = Some(line);
                draft.terminate.lenient = true;
            }
            Some(other) => report.error(
                line,
                format!("'{written}' takes only 'lenient' (declare exclusive and auto-delete queues again after a move), not '{other}'"),
            ),
        },
        "tcpka" => {
            draft.cli_keepalive.enabled = enabled;
            draft.srv_keepalive.enabled = enabled;
        }
        "clitcpka" => {
            if !draft.kind.has_frontend() {
                report.warn(line, format!("'{written}' is ignored in {}: it applies to client sockets (frontends and listen sections)", draft.describe()));
            } else {
                draft.cli_keepalive.enabled = enabled;
            }
        }
        "srvtcpka" => {
            if !draft.kind.has_backend() {
                report.warn(line, format!("'{written}' is ignored in {}: it applies to server sockets (backends and listen sections)", draft.describe()));
            } else {
                draft.srv_keepalive.enabled = enabled;
            }
        }
        "amqp-check" | "httpchk" => check_option(draft, name, &args[1..], enabled, line, report),
        "tcp-check" => {
            if !draft.kind.has_backend() {
                report.warn(line, format!("'{written}' is ignored in {}: health checks belong to backends and listen sections", draft.describe()));
            } else if enabled {
                draft.check = CheckKind::TcpCheck(Default::default());
                draft.check_line = line;
            } else if matches!(draft.check, CheckKind::TcpCheck(_)) {
                draft.check = CheckKind::Tcp;
                draft.check_line = 0;
            }
        }
        _ if HTTP_ONLY.contains(&name) => {
            let directive = format!("option {name}");
            draft.http_only.retain(|h| h.directive != directive);
            if !super::http::option(draft, name, &args[1..], enabled, line, report) {
                return;
            }
            if enabled {
                let effect = if name == "httplog" {
                    "sessions are logged in the tcplog format instead, as HAProxy does"
                } else {
                    "it is ignored"
                };
                draft.http_only.push(HttpOnly { line, directive, effect });
            }
        }
        _ if OTHER_CHECKS.contains(&name) => report.error(
            line,
            format!("'{written}' is not supported yet: use 'option amqp-check', 'option httpchk', or a TCP connect ('check' alone)"),
        ),
        // warren always balances over every usable backup server.
        "allbackups" => {
            if !enabled {
                report.warn(line, "'no option allbackups' is ignored: warren balances over every usable backup server when no active one is left");
            }
        }
        "dontlog-normal" => draft.dontlog_normal = enabled,
        _ if REFUSED.iter().any(|(n, _)| *n == name) => {
            let why = REFUSED.iter().find(|(n, _)| *n == name).map_or("", |(_, w)| *w);
            report.error(line, format!("'{written}' is not supported: {why}"));
        }
        _ => match IGNORED.iter().find(|(n, _)| *n == name) {
            Some((_, why)) => {
                if enabled {
                    report.warn(line, format!("'{written}' is ignored: {why}"));
                }
            }
            None => report.error(
                line,
                format!(
                    "unknown option '{name}'{}",
                    suggest::hint(
                        name,
                        IMPLEMENTED
                            .iter()
                            .chain(HTTP_ONLY.iter())
                            .chain(OTHER_CHECKS.iter())
                            .copied()
                            .chain(IGNORED.iter().map(|(n, _)| *n))
                    )
                ),
            ),
        },
    }
}

/// `option amqp-check [...]`, `option httpchk [...]` and their `no` forms.
fn check_option(
    draft: &mut Draft,
    name: &str,
    args: &[String],
    enabled: bool,
    line: usize,
    report: &mut Report,
) {
    if !draft.kind.has_backend() {
        report.warn(line, format!("'option {name}' is ignored in {}: health checks belong to backends and listen sections", draft.describe()));
        return;
    }
    if !enabled {
        if let Some(extra) = args.first() {
            report.error(
                line,
                format!("too many arguments to 'no option {name}': remove '{extra}'"),
            );
            return;
        }
        // Back to the default TCP connect, but only if this check was the one in force.
        let current = match draft.check {
            CheckKind::Amqp | CheckKind::AmqpLogin { .. } => "amqp-check",
            CheckKind::Http(_) => "httpchk",
            CheckKind::Tcp | CheckKind::TcpCheck(_) => "",
        };
        if current == name {
            draft.check = CheckKind::Tcp;
            draft.check_line = 0;
        }
        return;
    }
    let kind = if name == "amqp-check" {
        amqp_check(args)
    } else {
        httpchk(args, line, report)
    };
    if let Some(kind) = report.check(line, kind) {
        draft.check = kind;
        draft.check_line = line;
    }
}

/// `option amqp-check [user <u> password <p> [vhost <v>]]`.
fn amqp_check(args: &[String]) -> Result<CheckKind, String> {
    if args.is_empty() {
        return Ok(CheckKind::Amqp);
    }
    let (mut user, mut password, mut vhost) = (None, None, None);
    let mut rest = args.iter();
    while let Some(key) = rest.next() {
        let slot = match key.as_str() {
            "user" => &mut user,
            "password" => &mut password,
            "vhost" => &mut vhost,
            // After the password, a stray word may be the rest of it (a password with an
            // unescaped space): errors reach the logs, so it is not repeated.
            _ if password.is_some() => {
                return Err("unexpected word after the password in 'option amqp-check' (not shown: it may be part of the password); quote or escape a password that contains spaces".to_string())
            }
            other => {
                return Err(format!(
                    "unknown argument '{other}' to 'option amqp-check'; it takes 'user <name> password <password> [vhost <vhost>]'{}",
                    suggest::hint(other, ["user", "password", "vhost"])
                ))
            }
        };
        let Some(value) = rest.next() else {
            return Err(format!("'{key}' in 'option amqp-check' needs a value"));
        };
        if slot.replace(value.clone()).is_some() {
            return Err(format!("'{key}' is given twice in 'option amqp-check'"));
        }
    }
    match (user, password) {
        (Some(user), Some(password)) => Ok(CheckKind::AmqpLogin {
            user,
            password: Secret(password),
            vhost: vhost.unwrap_or_else(|| DEFAULT_VHOST.to_string()),
        }),
        (Some(user), None) => Err(format!(
            "'option amqp-check user {user}' needs 'password <password>' too (the check logs in)"
        )),
        (None, _) => Err(
            "'option amqp-check' with 'password' or 'vhost' needs 'user <name>' too".to_string(),
        ),
    }
}

/// `option httpchk`, `option httpchk <uri>`, `option httpchk <method> <uri> [<version>]`.
fn httpchk(args: &[String], line: usize, report: &mut Report) -> Result<CheckKind, String> {
    let (method, uri) = match args {
        [] => (DEFAULT_CHECK_METHOD, DEFAULT_CHECK_URI),
        [uri] => (DEFAULT_CHECK_METHOD, uri.as_str()),
        [method, uri] => (method.as_str(), uri.as_str()),
        [method, uri, version] => {
            report.warn(
                line,
                format!("the HTTP version '{version}' of 'option httpchk' is ignored: warren chooses the version; add headers with 'http-check send hdr <name> <value>'"),
            );
            (method.as_str(), uri.as_str())
        }
        [_, _, _, extra, ..] => {
            return Err(format!(
                "too many arguments to 'option httpchk': remove '{extra}'"
            ))
        }
    };
    // `*` is HAProxy's classic `option httpchk OPTIONS * HTTP/1.1` (the asterisk form).
    if uri != "*" && !uri.starts_with('/') {
        let hint = if args.len() == 1 {
            format!(" (one argument is the URI; for a method write 'option httpchk {uri} /')")
        } else {
            String::new()
        };
        return Err(format!(
            "the URI of 'option httpchk' must start with '/' (or be '*'), not '{uri}'{hint}"
        ));
    }
    Ok(CheckKind::Http(HttpCheck {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: Vec::new(),
        expect_status: Vec::new(),
        expect_body: None,
    }))
}

/// `http-check send ...` and `http-check expect status <codes>`.
pub fn http_check(draft: &mut Draft, words: &[String], line: usize, report: &mut Report) {
    if !draft.kind.has_backend() {
        report.warn(line, format!("'http-check' is ignored in {}: health checks belong to backends and listen sections", draft.describe()));
        return;
    }
    let result = match words.get(1).map(String::as_str) {
        Some("send") => http_check_send(draft, &words[2..], line, report),
        Some("expect") => http_check_expect(&words[2..]).map(|e| match e {
            Ok(codes) => draft.http_check.expect_status = Some(codes),
            Err(body) => draft.http_check.expect_body = Some(body),
        }),
        Some(
            other @ ("connect" | "disable-on-404" | "send-state" | "comment" | "set-var"
            | "unset-var" | "set-var-fmt"),
        ) => Err(format!("'http-check {other}' is not supported yet")),
        Some(other) => Err(format!(
            "unknown 'http-check {other}'; use 'http-check send' or 'http-check expect'{}",
            suggest::hint(other, ["send", "expect"])
        )),
        None => Err("'http-check' needs 'send' or 'expect'".to_string()),
    };
    if report.check(line, result).is_some() {
        draft.http_check.line.get_or_insert(line);
    }
}

fn http_check_send(
    draft: &mut Draft,
    args: &[String],
    line: usize,
    report: &mut Report,
) -> Result<(), String> {
    let mut method = None;
    let mut uri = None;
    let mut headers = Vec::new();
    let mut rest = args.iter();
    while let Some(key) = rest.next() {
        let mut value = |what: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("'{key}' in 'http-check send' needs {what}"))
        };
        match key.as_str() {
            "meth" => method = Some(value("a method")?),
            "uri" => {
                let u = value("a URI")?;
                if u != "*" && !u.starts_with('/') {
                    return Err(format!("the URI of 'http-check send' must start with '/' (or be '*'), not '{u}'"));
                }
                uri = Some(u);
            }
            "ver" => {
                let version = value("a version")?;
                report.warn(line, format!("the HTTP version '{version}' of 'http-check send' is ignored: warren chooses the version"));
            }
            "hdr" => {
                let name = value("a header name and a value")?;
                let val = value("a header name and a value")?;
                headers.push((name, Secret(val)));
            }
            other @ ("body" | "body-lf" | "uri-lf" | "hdr-lf" | "comment") => {
                return Err(format!("'{other}' in 'http-check send' is not supported yet"))
            }
            // Header values are secrets (basic auth); a stray word after one may be the
            // rest of it, so it is not repeated.
            _ if !headers.is_empty() => {
                return Err("unexpected word after a header value in 'http-check send' (not shown: it may be part of the value); quote a value that contains spaces".to_string())
            }
            other => {
                return Err(format!(
                    "unknown argument '{other}' to 'http-check send'; it takes 'meth', 'uri' and 'hdr'{}",
                    suggest::hint(other, ["meth", "uri", "hdr", "ver"])
                ))
            }
        }
    }
    // Like HAProxy, a later `http-check send` replaces the request of an earlier one.
    draft.http_check.method = method.or(draft.http_check.method.take());
    draft.http_check.uri = uri.or(draft.http_check.uri.take());
    if !headers.is_empty() {
        draft.http_check.headers = headers;
    }
    Ok(())
}

/// `http-check expect status <code>[,<code>...]` (`Ok(Ok(codes))`), `string <text>` or
/// `rstring <regex>` (`Ok(Err(body))`); other matches are refused.
#[allow(clippy::type_complexity)]
fn http_check_expect(
    args: &[String],
) -> Result<Result<Vec<u16>, crate::config::model::BodyExpect>, String> {
    use crate::config::model::BodyExpect;
    match args {
        [kind, pattern] if kind == "status" => pattern
            .split(',')
            .map(|code| match code.parse::<u16>() {
                Ok(n) if (100..=599).contains(&n) => Ok(n),
                _ => Err(format!("'http-check expect status' expects HTTP status codes (100 to 599), not '{code}'")),
            })
            .collect::<Result<Vec<u16>, String>>()
            .map(Ok),
        [kind, text] if kind == "string" => Ok(Err(BodyExpect::Contains(text.clone()))),
        [kind, re] if kind == "rstring" => regex::Regex::new(re)
            .map(|r| Err(BodyExpect::Matches(crate::config::rules::Pattern(r))))
            .map_err(|e| format!("bad regular expression '{re}' in 'http-check expect rstring': {e}")),
        [kind, ..] if kind == "!" => Err("'http-check expect !' (a negated match) is not supported yet".to_string()),
        [kind, ..] if matches!(kind.as_str(), "string" | "rstring") => {
            Err(format!("'http-check expect {kind}' needs one pattern (quote one with spaces)"))
        }
        [kind, ..] if matches!(kind.as_str(), "rstatus" | "hdr" | "fhdr" | "custom") => {
            Err(format!("'http-check expect {kind}' is not supported yet: use 'status', 'string' or 'rstring'"))
        }
        [kind, ..] if kind == "status" => Err("'http-check expect status' needs one code or a comma-separated list, for example '200'".to_string()),
        [kind, ..] if matches!(kind.as_str(), "min-recv" | "comment" | "ok-status" | "error-status" | "tout-status" | "on-success" | "on-error" | "status-code") => {
            Err(format!("'{kind}' in 'http-check expect' is not supported yet"))
        }
        [kind, ..] => Err(format!("unknown match '{kind}' in 'http-check expect'; use 'status <code>'{}", suggest::hint(kind, ["status"]))),
        [] => Err("'http-check expect' needs 'status <code>'".to_string()),
    }
}
