//! `option <name>` and `no option <name>`.

use super::draft::{Draft, HttpOnly};
use crate::config::report::Report;
use crate::config::suggest;

/// Options implemented by warren.
const IMPLEMENTED: [&str; 4] = ["redispatch", "tcplog", "dontlognull", "log-health-checks"];

/// Options that only mean something in mode http; HAProxy warns about them in a TCP proxy.
const HTTP_ONLY: [&str; 8] = [
    "httplog", "http-server-close", "forwardfor", "httpclose", "http-keep-alive",
    "http-buffer-request", "forceclose", "http-pretend-keepalive",
];

/// Accepted but not acted on yet, with what happens instead.
const IGNORED: [(&str, &str); 4] = [
    ("abortonclose", "queued connections are not dropped early when their client leaves"),
    ("tcpka", "warren does not enable TCP keep-alive on its sockets yet"),
    ("clitcpka", "warren does not enable TCP keep-alive on client sockets yet"),
    ("srvtcpka", "warren does not enable TCP keep-alive on server sockets yet"),
];

/// Health checks other than a TCP connect.
const OTHER_CHECKS: [&str; 9] = [
    "httpchk", "tcp-check", "ssl-hello-chk", "mysql-check", "pgsql-check", "redis-check",
    "smtpchk", "ldap-check", "spop-check",
];

pub fn option(draft: &mut Draft, args: &[String], enabled: bool, line: usize, report: &mut Report) {
    let Some(name) = args.first().map(String::as_str) else {
        report.error(line, "'option' needs a name, for example 'option redispatch'");
        return;
    };
    let written = if enabled { format!("option {name}") } else { format!("no option {name}") };
    match name {
        "redispatch" => draft.redispatch = enabled,
        "tcplog" => draft.tcplog = enabled,
        "dontlognull" => draft.dontlognull = enabled,
        "log-health-checks" => draft.log_health_checks = enabled,
        "amqp" | "amqp-check" => {
            report.error(line, format!("option {name}: AMQP mode is not implemented yet in this version"));
        }
        _ if HTTP_ONLY.contains(&name) => {
            let directive = format!("option {name}");
            draft.http_only.retain(|h| h.directive != directive);
            if name == "httplog" {
                draft.httplog = enabled;
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
            format!("'{written}' is not supported yet: health checks are TCP connects ('check' on the server line)"),
        ),
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
                        IMPLEMENTED.iter().chain(HTTP_ONLY.iter()).copied().chain(IGNORED.iter().map(|(n, _)| *n))
                    )
                ),
            ),
        },
    }
}
