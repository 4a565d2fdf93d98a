//! Checks that do not depend on the syntax, run once on the model both parsers build.
//!
//! The parsers pass the line of every object beside the model ([`Origins`]), so each
//! problem is reported at the `file:line` of the frontend, backend, server or bind that
//! causes it.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::model::{server_defaults, CheckKind, Config, Keepalive, Mode, ObserveLayer};
use super::report::Report;

/// Where each object of a [`Config`] was written, index for index.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    pub frontends: Vec<ProxyLines>,
    pub backends: Vec<BackendLines>,
    pub stats: Vec<ProxyLines>,
}

#[derive(Debug, Default)]
pub(crate) struct ProxyLines {
    pub line: usize,
    /// One line per entry of the proxy's `binds`.
    pub binds: Vec<usize>,
    /// Where `timeout handshake` was set, if it was.
    pub handshake: Option<usize>,
    /// Where `amqp-initial-frame-max` was set, if it was.
    pub initial_frame_max: Option<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct BackendLines {
    pub line: usize,
    /// One line per entry of the backend's `servers`.
    pub servers: Vec<usize>,
    /// Where a check other than the TCP connect was chosen (`option amqp-check`/`httpchk`).
    pub check: Option<usize>,
    /// Where `rebalance` was set.
    pub rebalance: Option<usize>,
}

/// Lines are looked up leniently: a missing entry reports at line 0 (the whole file)
/// rather than panicking.
fn at(lines: &[usize], index: usize) -> usize {
    lines.get(index).copied().unwrap_or(0)
}

pub(crate) fn validate(config: &Config, origins: &Origins, report: &mut Report) {
    let frontend_lines: Vec<usize> = origins.frontends.iter().map(|o| o.line).collect();
    let backend_lines: Vec<usize> = origins.backends.iter().map(|o| o.line).collect();
    let stats_lines: Vec<usize> = origins.stats.iter().map(|o| o.line).collect();

    if config.global.maxconn == 0 {
        report.error(0, "global maxconn must be greater than 0");
    }

    // Names: a frontend and a backend may share a name (a `listen` section is both), but two
    // frontends, two backends, or a stats page and a frontend may not.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let listeners = config
        .frontends
        .iter()
        .map(|f| f.name.as_str())
        .zip(&frontend_lines);
    let pages = config
        .stats
        .iter()
        .map(|s| s.name.as_str())
        .zip(&stats_lines);
    for (name, line) in listeners.chain(pages) {
        if let Some(first) = seen.insert(name, *line) {
            report.error(
                *line,
                format!(
                    "the name '{name}' is already used by the proxy at {}",
                    report.place(first)
                ),
            );
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (b, line) in config.backends.iter().zip(&backend_lines) {
        if let Some(first) = seen.insert(b.name.as_str(), *line) {
            report.error(
                *line,
                format!(
                    "the backend name '{}' is already used at {}",
                    b.name,
                    report.place(first)
                ),
            );
        }
    }

    for (i, f) in config.frontends.iter().enumerate() {
        let line = at(&frontend_lines, i);
        if f.binds.is_empty() {
            report.error(
                line,
                format!(
                    "frontend '{}' has no bind address, so it accepts no connections",
                    f.name
                ),
            );
        }
        if f.maxconn == 0 {
            report.error(
                line,
                format!("maxconn of frontend '{}' must be greater than 0", f.name),
            );
        }
        match f.default_backend.and_then(|b| config.backends.get(b)) {
            None if !f.rules.use_backend.is_empty() => {}
            None => report.warn(
                line,
                format!("frontend '{}' has no backend: its connections will be closed at once (as HAProxy does); add 'default_backend'", f.name),
            ),
            Some(b) if b.mode != f.mode => report.error(
                line,
                format!("frontend '{}' is mode {} but its backend '{}' is mode {}; use the same mode on both", f.name, f.mode, b.name, b.mode),
            ),
            Some(_) => {}
        }
        // `use_backend` targets: an HTTP frontend passes requests, a TCP one bytes.
        for u in &f.rules.use_backend {
            let Some(b) = config.backends.get(u.backend) else {
                continue;
            };
            if (b.mode == Mode::Http) != (f.mode == Mode::Http) {
                report.error(
                    line,
                    format!("frontend '{}' is mode {} but 'use_backend {}' names a mode {} backend; use the same mode on both", f.name, f.mode, b.name, b.mode),
                );
            }
        }
        // In tcp mode `timeout handshake` only bounds the connection-level handshakes (PROXY
        // header, TLS), and only when `timeout client-hs` does not.
        let connection_hs = f.binds.iter().any(|b| b.tls.is_some() || b.accept_proxy)
            && f.timeouts.client_hs.is_none();
        if !f.mode.is_amqp() && f.timeouts.handshake.is_some() && !connection_hs {
            let at_line = origins
                .frontends
                .get(i)
                .and_then(|o| o.handshake)
                .unwrap_or(line);
            report.warn(
                at_line,
                format!("'timeout handshake' is ignored in frontend '{}': it only applies in AMQP mode ('option amqp') and to TLS handshakes and PROXY headers ('bind ... ssl', 'accept-proxy') when 'timeout client-hs' is not set", f.name),
            );
        }
        if let (true, Some(at_line)) = (
            !f.mode.is_amqp(),
            origins.frontends.get(i).and_then(|o| o.initial_frame_max),
        ) {
            report.warn(
                at_line,
                format!("'amqp-initial-frame-max' is ignored in frontend '{}': it only applies in AMQP mode ('option amqp')", f.name),
            );
        }
        keepalive_tunes_nothing(
            &f.keepalive,
            f.mode,
            &format!("frontend '{}'", f.name),
            line,
            report,
        );
        if f.mode != Mode::Amqp && f.timeouts.client.is_none() {
            report.warn(
                line,
                format!("missing timeouts for frontend '{}': 'timeout client' is not set, so idle clients are never disconnected; set it (for example 'timeout client 1m')", f.name),
            );
        }
    }

    for (i, b) in config.backends.iter().enumerate() {
        let lines = origins.backends.get(i);
        let line = lines.map(|o| o.line).unwrap_or(0);
        let server_lines = lines.map(|o| o.servers.as_slice()).unwrap_or(&[]);
        // In AMQP mode an idle server is fine (heartbeats and keep-alive find dead ones), but
        // a connect still needs a bound.
        let needed: &[_] = match b.mode {
            Mode::Tcp | Mode::Http => &[
                ("connect", b.timeouts.connect),
                ("server", b.timeouts.server),
            ],
            Mode::Amqp | Mode::AmqpTerminate => &[("connect", b.timeouts.connect)],
        };
        {
            let missing: Vec<&str> = needed
                .iter()
                .filter(|(_, t)| t.is_none())
                .map(|(n, _)| *n)
                .collect();
            if !missing.is_empty() {
                report.warn(
                    line,
                    format!(
                        "missing timeouts for backend '{}': {} not set, so {} forever; set {}",
                        b.name,
                        missing
                            .iter()
                            .map(|n| format!("'timeout {n}'"))
                            .collect::<Vec<_>>()
                            .join(" and "),
                        if b.mode != Mode::Amqp {
                            "connects and idle servers wait"
                        } else {
                            "connects wait"
                        },
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                );
            }
        }
        if b.check != CheckKind::Tcp && !b.servers.iter().any(|s| s.check) {
            let what = match b.check {
                CheckKind::Http(_) => "option httpchk",
                CheckKind::TcpCheck(_) => "option tcp-check",
                _ => "option amqp-check",
            };
            report.warn(
                lines.and_then(|o| o.check).unwrap_or(line),
                format!(
                    "'{what}' in backend '{}': no server has 'check', the check is never run",
                    b.name
                ),
            );
        }
        if b.rebalance.is_some() && !b.mode.is_amqp() {
            report.error(
                lines.and_then(|o| o.rebalance).unwrap_or(line),
                format!("'rebalance' needs AMQP mode, and backend '{}' is mode {}: only AMQP mode can close sessions politely (connection.close); add 'option amqp'", b.name, b.mode),
            );
        }
        super::http::check_backend(b, line, server_lines, report);
        keepalive_tunes_nothing(
            &b.keepalive,
            b.mode,
            &format!("backend '{}'", b.name),
            line,
            report,
        );
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut ids: HashMap<u32, usize> = HashMap::new();
        for (j, s) in b.servers.iter().enumerate() {
            let sline = at(server_lines, j);
            if let Some(first) = s.id.and_then(|id| ids.insert(id, sline)) {
                report.error(
                    sline,
                    format!(
                        "server '{}/{}' has id {}, which the server at {} has already",
                        b.name,
                        s.name,
                        s.id.unwrap_or_default(),
                        report.place(first)
                    ),
                );
            }
            if let Some(first) = names.insert(s.name.as_str(), sline) {
                report.error(
                    sline,
                    format!(
                        "backend '{}' already has a server named '{}' ({})",
                        b.name,
                        s.name,
                        report.place(first)
                    ),
                );
            }
            if let Some(o) = s.observe {
                if o.layer == ObserveLayer::Layer7 && b.mode != Mode::Http {
                    report.error(
                        sline,
                        format!("'observe layer7' of server '{}/{}' judges HTTP responses, and backend '{}' is mode {}: use 'observe layer4' (as HAProxy, which refuses it too)", b.name, s.name, b.name, b.mode),
                    );
                }
            }
            if s.weight > server_defaults::MAX_WEIGHT {
                report.error(
                    sline,
                    format!(
                        "weight {} of server '{}/{}' is out of range: use 0 to {}",
                        s.weight,
                        b.name,
                        s.name,
                        server_defaults::MAX_WEIGHT
                    ),
                );
            }
            if s.rise == 0 {
                report.error(
                    sline,
                    format!("rise of server '{}/{}' must be at least 1", b.name, s.name),
                );
            }
            if s.fall == 0 {
                report.error(
                    sline,
                    format!("fall of server '{}/{}' must be at least 1", b.name, s.name),
                );
            }
            if s.check && (s.inter.is_zero() || s.fastinter.is_zero() || s.downinter.is_zero()) {
                report.error(
                    sline,
                    format!(
                        "check intervals of server '{}/{}' must be greater than 0",
                        b.name, s.name
                    ),
                );
            }
        }
    }

    for (i, s) in config.stats.iter().enumerate() {
        if s.binds.is_empty() {
            report.error(
                at(&stats_lines, i),
                format!("stats page '{}' has no bind address", s.name),
            );
        }
        if s.admin && s.users.is_empty() {
            report.warn(
                at(&stats_lines, i),
                format!("stats page '{}' has 'stats admin' but no 'stats auth': warren refuses admin actions without credentials (HAProxy would accept them from anyone); add 'stats auth <user>:<password>'", s.name),
            );
        }
    }

    listeners_are_distinct(config, origins, report);
}

/// Keep-alive settings without keep-alive: in tcp mode, `clitcpka-idle` and friends only
/// tune probes that `option tcpka` (or `clitcpka`/`srvtcpka`) turns on, as in HAProxy.
fn keepalive_tunes_nothing(
    k: &Keepalive,
    mode: Mode,
    what: &str,
    line: usize,
    report: &mut Report,
) {
    let tuned = k.idle.is_some() || k.interval.is_some() || k.count.is_some();
    if tuned && !k.enabled && mode != Mode::Amqp {
        report.warn(
            line,
            format!("keep-alive settings of {what} have no effect: keep-alive is off in tcp mode unless 'option tcpka' (or clitcpka/srvtcpka) is set"),
        );
    }
}

/// Two listeners on the same address (or a specific address under a wildcard on the same
/// port) cannot both bind. Port 0 asks the system for a free port, so it never clashes.
fn listeners_are_distinct(config: &Config, origins: &Origins, report: &mut Report) {
    let mut all: Vec<(SocketAddr, usize, &str)> = Vec::new();
    let proxies = config
        .frontends
        .iter()
        .map(|f| (&f.name, &f.binds))
        .zip(&origins.frontends);
    let pages = config
        .stats
        .iter()
        .map(|s| (&s.name, &s.binds))
        .zip(&origins.stats);
    for ((name, binds), lines) in proxies.chain(pages) {
        for (k, bind) in binds.iter().enumerate() {
            all.push((bind.addr, at(&lines.binds, k), name.as_str()));
        }
    }
    for (i, (a, line, name)) in all.iter().enumerate() {
        if a.port() == 0 {
            continue;
        }
        let clash = all[..i].iter().find(|(b, _, _)| {
            b.port() == a.port()
                && b.is_ipv4() == a.is_ipv4()
                && (b.ip() == a.ip() || b.ip().is_unspecified() || a.ip().is_unspecified())
        });
        if let Some((b, first, other)) = clash {
            report.error(
                *line,
                format!(
                    "'{name}' listens on {a}, which '{other}' already uses ({b}, {})",
                    report.place(*first)
                ),
            );
        }
    }
}
