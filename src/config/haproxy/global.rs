//! The `global` section: process-wide settings.

use super::{log, no_more_than, number};
use crate::config::model::Global;
use crate::config::report::Report;
use crate::config::suggest;

use super::draft::LogEntry;

/// Keywords warren implements.
const KNOWN: [&str; 19] = [
    "setenv",
    "presetenv",
    "unsetenv",
    "resetenv",
    "cpu-map",
    "chroot",
    "spread-checks",
    "max-spread-checks",
    "ulimit-n",
    "master-worker",
    "log",
    "pidfile",
    "maxconn",
    "user",
    "group",
    "daemon",
    "nbthread",
    "stats",
    "hard-stop-after",
];

/// Keywords accepted with a warning because they do not apply to warren (yet); the text says
/// what happens instead.
const IGNORED: [(&str, &str); 6] = [
    (
        "nbproc",
        "warren is one process with several threads; use 'nbthread'",
    ),
    (
        "unix-bind",
        "it sets defaults for unix@ binds, which warren refuses (it listens on TCP only)",
    ),
    (
        "server-state-file",
        "warren keeps server states across reloads within its process; no file is needed",
    ),
    (
        "ssl-dh-param-file",
        "rustls uses ECDHE key exchange only, no DH parameters",
    ),
    (
        "log-send-hostname",
        "warren's RFC 3164 lines carry no host name (as HAProxy's default); use 'format rfc5424' on the log line for lines that carry it",
    ),
    ("log-tag", "syslog lines are tagged 'warren'"),
];

pub fn keyword(global: &mut Global, words: &[String], line: usize, report: &mut Report) {
    let key = words[0].as_str();
    match key {
        "log" => match log::entry(&words[1..], line, true, report) {
            Some(LogEntry::Target(t)) => global.log.push(t),
            Some(LogEntry::Global) | None => {}
        },
        "pidfile" => {
            if let Some(path) = one_word(words, line, report) {
                global.pidfile = Some(path.into());
            }
        }
        "user" => global.user = one_word(words, line, report),
        "node" => global.node = one_word(words, line, report),
        // HAProxy takes the rest of the line as the description.
        "description" if words.len() > 1 => global.description = Some(words[1..].join(" ")),
        "description" => report.error(line, "'description' needs a text"),
        "group" => global.group = one_word(words, line, report),
        "maxconn" => {
            if no_more_than(words, 2, key, report, line) {
                if let Some(n) = report.check(line, number(key, words.get(1))) {
                    global.maxconn = n;
                }
            }
        }
        "nbthread" => {
            if no_more_than(words, 2, key, report, line) {
                match report.check(line, number(key, words.get(1))) {
                    Some(0) => report.error(line, "'nbthread' must be at least 1"),
                    Some(n) => global.nbthread = Some(n as usize),
                    None => {}
                }
            }
        }
        "ulimit-n" => {
            if no_more_than(words, 2, key, report, line) {
                match report.check(line, number(key, words.get(1))) {
                    Some(0) => report.error(line, "'ulimit-n' must be at least 1"),
                    Some(n) => global.ulimit_n = Some(u64::from(n)),
                    None => {}
                }
            }
        }
        "spread-checks" => {
            if no_more_than(words, 2, key, report, line) {
                match report.check(line, number(key, words.get(1))) {
                    Some(n) if n > 50 => report.error(
                        line,
                        format!("'spread-checks' is a percentage from 0 to 50, not {n}"),
                    ),
                    Some(n) => global.spread_checks = n,
                    None => {}
                }
            }
        }
        "max-spread-checks" => {
            if let Some(value) = one_word(words, line, report) {
                match crate::config::duration::parse(&value) {
                    Ok(d) => global.max_spread_checks = (!d.is_zero()).then_some(d),
                    Err(e) => report.error(line, format!("'max-spread-checks': {e}")),
                }
            }
        }
        "cpu-map" => {
            if let Some(m) = report.check(line, crate::config::cpu_map::parse(&words[1..])) {
                global.cpu_map.push(m);
            }
        }
        // Applied while the file was read (`preprocess`): later lines saw the variables.
        "setenv" | "presetenv" | "unsetenv" | "resetenv" => {}
        "lua-load" | "lua-load-per-thread" | "lua-prepend-path" => report.error(
            line,
            format!("'{key}' is not supported: warren has no Lua; its rules are 'acl', 'tcp-request', 'use_backend' and 'use-server'"),
        ),
        "chroot" => {
            if let Some(dir) = one_word(words, line, report) {
                // Checked here, so the mistake is named with its line rather than found
                // at start-up after the sockets are bound.
                if std::path::Path::new(&dir).is_dir() {
                    global.chroot = Some(dir.into());
                } else {
                    report.error(line, format!("'chroot {dir}': no such directory"));
                }
            }
        }
        "master-worker" => report.notice(
            line,
            "'master-worker' is accepted: warren has no master process, it reloads the configuration within its one process on SIGHUP",
        ),
        "daemon" => {
            if no_more_than(words, 1, key, report, line) {
                global.daemon = true;
            }
        }
        "hard-stop-after" => {
            if let Some(value) = one_word(words, line, report) {
                match crate::config::duration::parse(&value) {
                    Ok(d) => global.hard_stop_after = Some(d),
                    Err(e) => report.error(line, format!("'hard-stop-after': {e}")),
                }
            }
        }
        "stats" => match words.get(1).map(String::as_str) {
            Some("socket") => stats_socket(global, &words[2..], line, report),
            Some("timeout") | Some("maxconn") => report.warn(
                line,
                format!(
                    "'stats {}' is ignored: the admin socket answers one request per connection",
                    words[1]
                ),
            ),
            _ => report.error(
                line,
                "in 'global', warren knows 'stats socket', 'stats timeout' and 'stats maxconn'",
            ),
        },
        "tune.bufsize" => {
            if !super::no_more_than(words, 2, key, report, line) {
                return;
            }
            if let Some(n) = report.check(line, super::number(key, words.get(1))) {
                if n < crate::config::model::MIN_BUFSIZE {
                    report.error(
                        line,
                        format!(
                            "'tune.bufsize' must be at least {} bytes",
                            crate::config::model::MIN_BUFSIZE
                        ),
                    );
                } else {
                    global.bufsize = Some(n);
                }
            }
        }
        _ if key.starts_with("tune.") => report.warn(
            line,
            format!("'{key}' is ignored: warren sizes its buffers itself"),
        ),
        _ => match IGNORED.iter().find(|(k, _)| *k == key) {
            Some((_, why)) => report.warn(line, format!("'{key}' is ignored: {why}")),
            None => report.error(
                line,
                format!(
                    "unknown keyword '{key}' in 'global' section{}",
                    suggest::hint(
                        key,
                        KNOWN.iter().copied().chain(IGNORED.iter().map(|(k, _)| *k))
                    )
                ),
            ),
        },
    }
}

/// `stats socket <path> [mode <octal>] [level user|operator|admin] [user ..] [group ..]`.
fn stats_socket(global: &mut Global, args: &[String], line: usize, report: &mut Report) {
    let Some(path) = args.first() else {
        report.error(
            line,
            "'stats socket' needs a path, for example '/run/warren/admin.sock'",
        );
        return;
    };
    if !path.starts_with('/') {
        report.error(
            line,
            format!(
                "'stats socket {path}': warren's runtime API listens on a unix socket path only"
            ),
        );
        return;
    }
    let mut socket = crate::config::model::StatsSocket {
        path: path.into(),
        mode: 0o600,
        user: None,
        group: None,
    };
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].as_str(), value) {
            ("mode", Some(v)) => match u32::from_str_radix(v, 8) {
                Ok(m) if m <= 0o777 => socket.mode = m,
                _ => report.error(
                    line,
                    format!("'stats socket ... mode {v}': not an octal file mode such as 600"),
                ),
            },
            ("level", Some(v)) => {
                if v != "admin" {
                    report.warn(
                        line,
                        format!(
                            "'level {v}' is ignored: the socket's file mode decides who may act"
                        ),
                    );
                }
            }
            ("user", Some(v)) => socket.user = Some(v.clone()),
            ("group", Some(v)) => socket.group = Some(v.clone()),
            ("expose-fd", Some(_)) => {
                report.warn(line, "'stats socket ... expose-fd' is ignored: warren reloads in its own process, no socket is handed over");
            }
            (other, _) => {
                report.error(
                    line,
                    format!(
                        "unknown 'stats socket' option '{other}' (warren knows mode, level, user and group)"
                    ),
                );
                return;
            }
        }
        i += 2;
    }
    global.stats_socket = Some(socket);
}

fn one_word(words: &[String], line: usize, report: &mut Report) -> Option<String> {
    match words.get(1) {
        Some(w) if no_more_than(words, 2, &words[0], report, line) => Some(w.clone()),
        Some(_) => None,
        None => {
            report.error(line, format!("'{}' needs a value", words[0]));
            None
        }
    }
}
