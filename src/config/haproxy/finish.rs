//! Turns the drafts of every section into the typed model: modes decided, `log global`
//! resolved, backend names turned into indices, HTTP-only directives warned about once the
//! proxy's mode is known.

use std::collections::BTreeMap;

use super::draft::{Draft, Kind, LogEntry};
use crate::config::model::{
    Backend, CheckKind, Config, Frontend, Global, Mode, ProxyLog, StatsPage,
    DEFAULT_INITIAL_FRAME_MAX, DEFAULT_STATS_URI,
};
use crate::config::report::Report;
use crate::config::suggest;
use crate::config::validate::{BackendLines, Origins, ProxyLines};

/// HAProxy's default `stats realm`.
const DEFAULT_REALM: &str = "HAProxy Statistics";
/// HAProxy's default `retries`.
const DEFAULT_RETRIES: u32 = 3;

pub fn finish(global: Global, drafts: Vec<Draft>, report: &mut Report) -> (Config, Origins) {
    let mut config = Config {
        global,
        frontends: Vec::new(),
        backends: Vec::new(),
        stats: Vec::new(),
        resolvers: Vec::new(),
    };
    let mut origins = Origins::default();
    // (line, directive) → (effect, proxies in a mode other than http)
    let mut http_only: BTreeMap<(usize, String), (&'static str, Vec<String>)> = BTreeMap::new();
    // Per frontend: the backend it names and where.
    let mut wanted: Vec<Option<(String, usize)>> = Vec::new();
    let (backend_names, frontend_names) = super::rules::indices(&drafts);
    let scope = super::acl::Scope {
        backends: &backend_names,
        frontends: &frontend_names,
        // Set per proxy by `rules::compile`.
        userlists: &[],
        http: false,
    };

    for d in drafts {
        let mode = d.mode();
        if let (Some(line), Mode::Http) = (d.amqp_own_line, mode) {
            report.error(
                line,
                format!("'option amqp' needs 'mode tcp', but {} is mode http: AMQP mode follows AMQP frames over TCP", d.describe()),
            );
        }
        if mode != Mode::Http {
            for h in &d.http_only {
                let entry = http_only
                    .entry((h.line, h.directive.clone()))
                    .or_insert((h.effect, Vec::new()));
                entry.1.push(d.describe());
            }
            if let Some(line) = d.stats.own_line {
                report.warn(
                    line,
                    format!(
                        "'stats' directives are ignored in {}: a stats page needs 'mode http'",
                        d.describe()
                    ),
                );
            }
        }
        if mode == Mode::Http && d.stats.enabled {
            stats_page(d, &mut config, &mut origins, report);
            continue;
        }
        let mut d = d;
        if mode != Mode::Http {
            // HTTP settings were warned about above; a tcp proxy carries none of them.
            d.http = Default::default();
            d.timeouts.http_request = None;
            d.timeouts.http_keep_alive = None;
        }
        let log = proxy_log(&d, &config.global);
        let servers: Vec<&str> = d.servers.iter().map(|(s, _)| s.name.as_str()).collect();
        let rules = super::rules::compile(&d, &scope, &servers, report);
        if mode == Mode::Http {
            d.http.rules.acls = super::rules::http_acls(&rules);
            d.http.rules.request = rules.http_request;
            d.http.rules.response = rules.http_response;
        }
        if d.kind.has_frontend() {
            config.frontends.push(Frontend {
                name: d.name.clone(),
                binds: d.binds.iter().map(|(bind, _)| bind.clone()).collect(),
                mode,
                maxconn: d.maxconn.unwrap_or(config.global.maxconn),
                default_backend: None,
                timeouts: d.timeouts,
                log: log.clone(),
                keepalive: d.cli_keepalive,
                initial_frame_max: d
                    .initial_frame_max
                    .map_or(DEFAULT_INITIAL_FRAME_MAX, |(n, _)| n),
                rate_limit: d.rate_limit,
                terminate: d.terminate,
                rules: rules.frontend,
                http: d.http.clone(),
            });
            origins.frontends.push(ProxyLines {
                line: d.line,
                binds: d.binds.iter().map(|(_, l)| *l).collect(),
                handshake: d.handshake_line,
                initial_frame_max: d.initial_frame_max.map(|(_, l)| l),
            });
            let target = match (&d.default_backend, d.kind) {
                (Some(named), _) => Some(named.clone()),
                (None, Kind::Listen) => Some((d.name.clone(), d.line)),
                (None, _) => None,
            };
            wanted.push(target);
        }
        if d.kind.has_backend() {
            let check = backend_check(&d, report);
            let mut http = d.http.clone();
            if d.kind == Kind::Listen {
                // One proxy in HAProxy: its rules run once, with the frontend's.
                http.rules = Default::default();
            }
            config.backends.push(Backend {
                name: d.name.clone(),
                mode,
                balance: d
                    .balance
                    .unwrap_or(crate::config::model::Algorithm::RoundRobin),
                hash_type: d.hash_type.unwrap_or_default(),
                servers: d.servers.iter().map(|(s, _)| s.clone()).collect(),
                retries: d.retries.unwrap_or(DEFAULT_RETRIES),
                redispatch: d.redispatch,
                timeouts: d.timeouts,
                check,
                keepalive: d.srv_keepalive,
                rebalance: d.rebalance.map(|(r, _)| r),
                log,
                rules: rules.backend,
                http,
                stick: match (d.stick_table, d.stick_on) {
                    (Some((table, _)), Some(_)) => Some(table),
                    (None, Some(line)) => {
                        report.error(line, format!("'stick on src' in {} needs a 'stick-table type ip size <n> expire <time>' in the same section", d.describe()));
                        None
                    }
                    (Some((_, line)), None) => {
                        report.warn(line, format!("the stick-table of {} is not used: add 'stick on src'", d.describe()));
                        None
                    }
                    (None, None) => None,
                },
                persist: d.persist,
            });
            origins.backends.push(BackendLines {
                line: d.line,
                servers: d.servers.iter().map(|(_, l)| *l).collect(),
                check: (d.check_line > 0).then_some(d.check_line),
                rebalance: d.rebalance.map(|(_, l)| l),
            });
        }
    }

    for ((line, directive), (effect, proxies)) in http_only {
        let verb = if proxies.len() == 1 { "is" } else { "are" };
        report.warn(
            line,
            format!(
                "'{directive}' only applies to mode http, and {} {verb} mode tcp: {effect}",
                proxies.join(", ")
            ),
        );
    }

    for (index, target) in wanted.into_iter().enumerate() {
        let Some((name, line)) = target else { continue };
        match config.backends.iter().position(|b| b.name == name) {
            Some(b) => config.frontends[index].default_backend = Some(b),
            None => {
                let what = if config.frontends.iter().any(|f| f.name == name)
                    || config.stats.iter().any(|s| s.name == name)
                {
                    format!("'{name}' is not a backend")
                } else {
                    format!(
                        "unknown backend '{name}'{}",
                        suggest::hint(&name, config.backends.iter().map(|b| b.name.as_str()))
                    )
                };
                report.error(
                    line,
                    format!(
                        "frontend '{}' cannot use {what}",
                        config.frontends[index].name
                    ),
                );
            }
        }
    }
    (config, origins)
}

/// A `mode http` section with `stats enable`: a stats page, which serves nothing else.
fn stats_page(d: Draft, config: &mut Config, origins: &mut Origins, report: &mut Report) {
    if !d.servers.is_empty() || d.default_backend.is_some() || d.kind == Kind::Backend {
        report.error(d.line, format!("{} is a stats page and also proxies (it has servers or a backend): warren serves the stats page on its own; move the 'stats' lines to a separate listen section", d.describe()));
        return;
    }
    let s = d.stats;
    config.stats.push(StatsPage {
        name: d.name,
        binds: d.binds.iter().map(|(bind, _)| bind.clone()).collect(),
        uri: s.uri.unwrap_or_else(|| DEFAULT_STATS_URI.to_string()),
        refresh: s.refresh,
        realm: s.realm.unwrap_or_else(|| DEFAULT_REALM.to_string()),
        users: s.users,
        hide_version: s.hide_version,
        admin: s.admin,
        node: s.show_node.map(|name| {
            name.or_else(|| config.global.node.clone())
                .unwrap_or_else(crate::config::host_name)
        }),
        description: s
            .show_desc
            .and_then(|text| text.or_else(|| config.global.description.clone())),
    });
    origins.stats.push(ProxyLines {
        line: d.line,
        binds: d.binds.iter().map(|(_, l)| *l).collect(),
        ..ProxyLines::default()
    });
}

/// The backend's health check: `option httpchk` refined by the `http-check` lines.
fn backend_check(d: &Draft, report: &mut Report) -> CheckKind {
    let h = &d.http_check;
    match &d.check {
        CheckKind::Http(base) => {
            let mut check = base.clone();
            if let Some(method) = &h.method {
                check.method = method.clone();
            }
            if let Some(uri) = &h.uri {
                check.uri = uri.clone();
            }
            check.headers.extend(h.headers.iter().cloned());
            if let Some(b) = &h.expect_body {
                check.expect_body = Some(b.clone());
            }
            if let Some(codes) = &h.expect_status {
                check.expect_status = codes.clone();
            }
            CheckKind::Http(check)
        }
        CheckKind::TcpCheck(_) => {
            let mut check = crate::config::tcp_check::TcpCheck::default();
            let mut comment = None;
            for (words, line) in &d.tcp_check_lines {
                match crate::config::tcp_check::parse(words, &mut comment) {
                    Ok(Some(rule)) => check.rules.push(rule),
                    Ok(None) => {}
                    Err(e) => report.error(*line, e),
                }
                check.lines.push(
                    words
                        .iter()
                        .map(|w| super::acl::quote(w))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            CheckKind::TcpCheck(check)
        }
        other => {
            if let Some((_, line)) = d.tcp_check_lines.first() {
                report.warn(*line, format!("'tcp-check' is ignored in {}: it scripts 'option tcp-check', which is not set", d.describe()));
            }
            if let Some(line) = h.line {
                report.warn(line, format!("'http-check' is ignored in {}: it refines 'option httpchk', which is not set", d.describe()));
            }
            other.clone()
        }
    }
}

fn proxy_log(d: &Draft, global: &Global) -> ProxyLog {
    let mut targets = Vec::new();
    for entry in &d.logs {
        match entry {
            LogEntry::Global => targets.extend(global.log.iter().cloned()),
            LogEntry::Target(t) => targets.push(t.clone()),
        }
    }
    ProxyLog {
        targets,
        // HAProxy falls back to tcplog when httplog is set on a TCP proxy.
        tcplog: d.tcplog || d.httplog,
        httplog: d.httplog && d.mode() == Mode::Http,
        dontlognull: d.dontlognull,
        health_checks: d.log_health_checks,
        separate_errors: d.log_separate_errors,
        logasap: d.logasap,
        dontlog_normal: d.dontlog_normal,
    }
}
