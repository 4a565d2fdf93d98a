//! warren's own format: TOML read with serde, unknown keys refused (`deny_unknown_fields`).
//!
//! ```text
//! text ──serde──▶ raw tables (Options, spans) ──build, fill defaults──▶ Config + lines
//! ```
//!
//! Syntax and type errors come from the `toml` crate with its span; semantic errors (an
//! unknown backend, a bad duration) use the span of the offending value, so both carry
//! `file:line`. The keys mirror HAProxy's keywords, so `warren convert` output reads
//! naturally to someone who knows `haproxy.cfg`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod check;

use super::addr;
use super::duration;
use super::model::*;
use super::report::Report;
use super::suggest;
use super::validate::{BackendLines, Origins, ProxyLines};
use crate::tls::{BindOptions, ServerOptions};

/// HAProxy's default `stats realm`, also warren's.
const DEFAULT_REALM: &str = "HAProxy Statistics";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    global: GlobalT,
    #[serde(default)]
    defaults: ProxyDefaultsT,
    #[serde(default)]
    frontend: Vec<Spanned<FrontendT>>,
    #[serde(default)]
    backend: Vec<Spanned<BackendT>>,
    #[serde(default)]
    stats: Vec<Spanned<StatsT>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GlobalT {
    maxconn: Option<u32>,
    pidfile: Option<String>,
    daemon: Option<bool>,
    user: Option<String>,
    group: Option<String>,
    nbthread: Option<Spanned<usize>>,
    hard_stop_after: Option<Spanned<String>>,
    stats_socket: Option<StatsSocketT>,
    ulimit_n: Option<u64>,
    spread_checks: Option<Spanned<u32>>,
    chroot: Option<Spanned<String>>,
    /// HAProxy's `cpu-map` arguments, one string per line: `["1/1-4 0-3"]`.
    #[serde(default)]
    cpu_map: Vec<Spanned<String>>,
    max_spread_checks: Option<Spanned<String>>,
    #[serde(default)]
    log: Vec<Spanned<LogT>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct StatsSocketT {
    path: String,
    /// Octal, as a string ("600").
    mode: Option<Spanned<String>>,
    user: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct LogT {
    /// `"127.0.0.1:514"`, `"stderr"`, `"stdout"` or an absolute file path.
    address: String,
    facility: Option<String>,
    level: Option<String>,
    format: Option<String>,
}

/// Settings shared by `[defaults]`, frontends and backends.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct ProxyDefaultsT {
    mode: Option<Spanned<String>>,
    retries: Option<u32>,
    redispatch: Option<bool>,
    balance: Option<Spanned<String>>,
    maxconn: Option<u32>,
    #[serde(default)]
    timeout: TimeoutsT,
    #[serde(default)]
    log: ProxyLogT,
    #[serde(default)]
    keepalive: KeepaliveT,
    check: Option<Spanned<toml::Value>>,
    /// For frontends: AMQP frame size allowed before `tune-ok` (`amqp-initial-frame-max`).
    initial_frame_max: Option<Spanned<u32>>,
    rate_limit: Option<RateLimitT>,
}

/// `rate_limit = { sessions = 200, sessions_per_source = 20 }`; 0 or absent means off.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RateLimitT {
    sessions: Option<u32>,
    sessions_per_source: Option<u32>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct TimeoutsT {
    client: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    connect: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
    check: Option<Spanned<String>>,
    tunnel: Option<Spanned<String>>,
    client_fin: Option<Spanned<String>>,
    server_fin: Option<Spanned<String>>,
    handshake: Option<Spanned<String>>,
    client_hs: Option<Spanned<String>>,
}

/// `keepalive = { enabled = true, idle = "30s", interval = "10s", count = 3 }`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct KeepaliveT {
    enabled: Option<bool>,
    idle: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    count: Option<Spanned<u32>>,
}

/// `rebalance = { window = "60s", batch = 1 }`; absent means off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RebalanceT {
    window: Option<Spanned<String>>,
    batch: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct ProxyLogT {
    /// Log to the `[global]` targets (HAProxy's `log global`).
    global: Option<bool>,
    targets: Option<Vec<Spanned<LogT>>>,
    tcplog: Option<bool>,
    dontlognull: Option<bool>,
    health_checks: Option<bool>,
    separate_errors: Option<bool>,
    logasap: Option<bool>,
    dontlog_normal: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontendT {
    name: String,
    #[serde(default)]
    bind: Vec<Spanned<String>>,
    /// Every bind of this frontend expects a PROXY protocol header (HAProxy: `accept-proxy`).
    accept_proxy: Option<bool>,
    /// IPv6 wildcard binds also take IPv4 clients (HAProxy: `v4v6`).
    v4v6: Option<bool>,
    /// TLS listeners of this frontend (HAProxy: `bind ... ssl crt <pem>`).
    tls: Option<Spanned<BindTlsT>>,
    backend: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    maxconn: Option<u32>,
    #[serde(default)]
    timeout: TimeoutsT,
    log: Option<ProxyLogT>,
    keepalive: Option<KeepaliveT>,
    initial_frame_max: Option<Spanned<u32>>,
    rate_limit: Option<RateLimitT>,
    /// `acl`, `tcp-request` and `use_backend` lines in HAProxy syntax (see `toml_rules`).
    rules: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendT {
    name: String,
    mode: Option<Spanned<String>>,
    balance: Option<Spanned<String>>,
    /// `"consistent"` (default) or `"map-based"` (HAProxy: `hash-type`).
    hash_type: Option<Spanned<String>>,
    retries: Option<u32>,
    redispatch: Option<bool>,
    #[serde(default)]
    timeout: TimeoutsT,
    log: Option<ProxyLogT>,
    keepalive: Option<KeepaliveT>,
    /// `"tcp"`, `"amqp"`, or a table with a `type` (see [`Builder::check`]).
    check: Option<Spanned<toml::Value>>,
    rebalance: Option<Spanned<RebalanceT>>,
    #[serde(default)]
    server: Vec<Spanned<ServerT>>,
    /// `acl`, `use-server` and `tcp-request content` lines in HAProxy syntax.
    rules: Option<Spanned<Vec<String>>>,
    /// `{ size = 100000, expire = "30m" }` (HAProxy: `stick-table` + `stick on src`).
    stick: Option<Spanned<StickT>>,
    persist: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StickT {
    size: u32,
    expire: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerT {
    name: String,
    address: Spanned<String>,
    check: Option<bool>,
    /// HAProxy's `port`: health checks go to this port.
    check_port: Option<Spanned<u16>>,
    inter: Option<Spanned<String>>,
    fastinter: Option<Spanned<String>>,
    downinter: Option<Spanned<String>>,
    rise: Option<u32>,
    fall: Option<u32>,
    weight: Option<u32>,
    maxconn: Option<u32>,
    maxqueue: Option<u32>,
    backup: Option<bool>,
    disabled: Option<bool>,
    slowstart: Option<Spanned<String>>,
    shutdown_sessions_on_down: Option<bool>,
    shutdown_backup_sessions_on_up: Option<bool>,
    /// `"v1"` or `"v2"` (HAProxy: `send-proxy`, `send-proxy-v2`).
    send_proxy: Option<Spanned<String>>,
    check_send_proxy: Option<bool>,
    /// TLS towards this server (HAProxy: `ssl verify required ca-file <pem>`).
    tls: Option<Spanned<ServerTlsT>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BindTlsT {
    bind: Vec<Spanned<String>>,
    crt: Vec<String>,
    ca_file: Option<String>,
    /// `"none"`, `"optional"` or `"required"` (client certificates).
    verify: Option<String>,
    /// `"1.2"` or `"1.3"`.
    min_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTlsT {
    /// Sessions use TLS (default true; false with `checks = true` is HAProxy's `check-ssl` alone).
    sessions: Option<bool>,
    /// Checks use TLS (default: as sessions, unless `check_port` sends them elsewhere).
    checks: Option<bool>,
    verify: Option<bool>,
    ca_file: Option<String>,
    crt: Option<String>,
    /// SNI and the name checked in the certificate.
    name: Option<String>,
    min_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsT {
    name: String,
    #[serde(default)]
    bind: Vec<Spanned<String>>,
    /// HTTPS listeners of the page.
    tls: Option<Spanned<BindTlsT>>,
    uri: Option<String>,
    refresh: Option<Spanned<String>>,
    realm: Option<String>,
    #[serde(default)]
    auth: Vec<AuthT>,
    hide_version: Option<bool>,
    admin: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthT {
    user: String,
    password: String,
}

/// A frontend's rate limits, key by key over `[defaults]`; 0 is off.
fn rate_limit(own: Option<&RateLimitT>, d: Option<&RateLimitT>) -> RateLimit {
    let pick = |f: fn(&RateLimitT) -> Option<u32>| {
        own.and_then(f).or_else(|| d.and_then(f)).filter(|n| *n > 0)
    };
    RateLimit {
        sessions: pick(|r| r.sessions),
        per_source: pick(|r| r.sessions_per_source),
    }
}

/// Turns byte offsets into 1-based line numbers.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn of(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        let mut before = &self.0.as_bytes()[..end];
        // The end of a file that ends with a newline is on its last line (an unclosed
        // array is reported there), not on a line after it that editors do not show.
        if end == self.0.len() {
            before = before.strip_suffix(b"\n").unwrap_or(before);
        }
        before.iter().filter(|b| **b == b'\n').count() + 1
    }
    fn span<T>(&self, s: &Spanned<T>) -> usize {
        self.of(s.span().start)
    }
}

/// Parses `text`; `None` when the TOML itself could not be read (the error is in `report`).
pub(crate) fn parse(text: &str, report: &mut Report) -> Option<(Config, Origins)> {
    let lines = Lines(text);
    let file: File = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| lines.of(s.start)).unwrap_or(0);
            let on_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let message = syntax_message(text, &e);
            // serde quotes the offending value ("invalid type: integer `1234`"); on a line
            // holding a secret that value may be the password, and errors reach the logs.
            let message = if holds_secret(on_line) {
                hide_values(&message)
            } else {
                message
            };
            report.error(line, message);
            return None;
        }
    };
    let mut b = Builder { lines, report };
    Some(b.build(file))
}

/// A TOML line that may carry a password or a secret header value.
fn holds_secret(line: &str) -> bool {
    ["password", "value", "auth"]
        .iter()
        .any(|k| line.contains(k))
}

/// Replaces every quoted value in a parser message (`` `…` `` or `"…"`) by "(hidden)".
fn hide_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("(hidden)");
                quote = None;
            }
            Some(_) => {}
            None if c == '`' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

/// The TOML parser's message, or, where it has none (a control character in a comment
/// gets an empty one), what it stopped at: a diagnostic must always say what is wrong.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    if !message.is_empty() {
        return message.to_string();
    }
    match e
        .span()
        .and_then(|s| text.get(s.start..))
        .and_then(|rest| rest.chars().next())
    {
        Some(c) if c.is_control() => {
            format!("invalid character U+{:04X} (control characters are allowed only as escapes in strings)", u32::from(c))
        }
        Some(c) => format!("invalid TOML: unexpected {c:?}"),
        None => "invalid TOML: unexpected end of file".to_string(),
    }
}

struct Builder<'a, 'r> {
    lines: Lines<'a>,
    report: &'r mut Report,
}

impl Builder<'_, '_> {
    fn build(&mut self, file: File) -> (Config, Origins) {
        let global = self.global(file.global);
        let mut config = Config {
            global,
            frontends: Vec::new(),
            backends: Vec::new(),
            stats: Vec::new(),
        };
        let mut origins = Origins::default();
        let d = file.defaults;

        for spanned in &file.backend {
            let line = self.lines.span(spanned);
            let b = spanned.get_ref();
            let mut servers = Vec::new();
            let mut server_lines = Vec::new();
            for s in &b.server {
                let sline = self.lines.span(s);
                if let Some(server) = self.server(s.get_ref()) {
                    servers.push(server);
                    server_lines.push(sline);
                }
            }
            let check_value = b.check.as_ref().or(d.check.as_ref());
            let check = check_value.map(|c| self.check(c)).unwrap_or(CheckKind::Tcp);
            let rebalance = b.rebalance.as_ref().map(|r| self.rebalance(r.get_ref()));
            config.backends.push(Backend {
                name: b.name.clone(),
                mode: self.mode(b.mode.as_ref().or(d.mode.as_ref())),
                balance: self.balance(b.balance.as_ref().or(d.balance.as_ref())),
                hash_type: match b.hash_type.as_ref() {
                    None => Default::default(),
                    Some(h) => match h.get_ref().as_str() {
                        "consistent" => crate::config::model::HashType::Consistent,
                        "map-based" => crate::config::model::HashType::MapBased,
                        other => {
                            let line = self.lines.span(h);
                            self.report.error(
                                line,
                                format!("hash_type '{other}': use \"consistent\" or \"map-based\""),
                            );
                            Default::default()
                        }
                    },
                },
                servers,
                retries: b.retries.or(d.retries).unwrap_or(3),
                redispatch: b.redispatch.or(d.redispatch).unwrap_or(false),
                timeouts: self.timeouts(&b.timeout, &d.timeout),
                check,
                keepalive: self.keepalive(b.keepalive.as_ref(), &d.keepalive),
                rebalance: rebalance.flatten(),
                log: self.proxy_log(b.log.as_ref(), &d.log, &config.global),
                rules: Default::default(),
                stick: b.stick.as_ref().and_then(|s| {
                    let st = s.get_ref();
                    let expire = self.duration(&st.expire)?;
                    if st.size == 0 || expire.is_zero() {
                        let line = self.lines.span(s);
                        self.report
                            .error(line, "stick: size and expire must be greater than 0");
                        return None;
                    }
                    Some(crate::config::model::Stick {
                        size: st.size,
                        expire,
                    })
                }),
                persist: b.persist.unwrap_or(false),
            });
            origins.backends.push(BackendLines {
                line,
                servers: server_lines,
                check: check_value
                    .filter(|c| c.get_ref().as_str() != Some("tcp"))
                    .map(|c| self.lines.span(c)),
                rebalance: b.rebalance.as_ref().map(|r| self.lines.span(r)),
            });
        }

        for spanned in &file.frontend {
            let line = self.lines.span(spanned);
            let f = spanned.get_ref();
            let (mut binds, mut bind_lines) = self.binds(&f.bind);
            if let Some(tls) = &f.tls {
                let (tls_binds, tls_lines) = self.tls_binds(tls);
                binds.extend(tls_binds);
                bind_lines.extend(tls_lines);
            }
            for b in &mut binds {
                b.accept_proxy = f.accept_proxy.unwrap_or(false);
                b.v4v6 = f.v4v6.unwrap_or(false) && b.addr.is_ipv6();
            }
            let default_backend = f.backend.as_ref().and_then(|name| {
                let found = config
                    .backends
                    .iter()
                    .position(|b| b.name == *name.get_ref());
                if found.is_none() {
                    let hint = suggest::hint(
                        name.get_ref(),
                        config.backends.iter().map(|b| b.name.as_str()),
                    );
                    self.report.error(
                        self.lines.span(name),
                        format!(
                            "frontend '{}' cannot use unknown backend '{}'{hint}",
                            f.name,
                            name.get_ref()
                        ),
                    );
                }
                found
            });
            config.frontends.push(Frontend {
                name: f.name.clone(),
                binds,
                mode: self.mode(f.mode.as_ref().or(d.mode.as_ref())),
                maxconn: f.maxconn.or(d.maxconn).unwrap_or(config.global.maxconn),
                default_backend,
                timeouts: self.timeouts(&f.timeout, &d.timeout),
                log: self.proxy_log(f.log.as_ref(), &d.log, &config.global),
                keepalive: self.keepalive(f.keepalive.as_ref(), &d.keepalive),
                initial_frame_max: self.initial_frame_max(
                    f.initial_frame_max
                        .as_ref()
                        .or(d.initial_frame_max.as_ref()),
                ),
                rate_limit: rate_limit(f.rate_limit.as_ref(), d.rate_limit.as_ref()),
                rules: Default::default(),
            });
            let handshake = f
                .timeout
                .handshake
                .as_ref()
                .or(d.timeout.handshake.as_ref());
            let frame_max = f
                .initial_frame_max
                .as_ref()
                .or(d.initial_frame_max.as_ref());
            origins.frontends.push(ProxyLines {
                line,
                binds: bind_lines,
                handshake: handshake.map(|h| self.lines.span(h)),
                initial_frame_max: frame_max.map(|v| self.lines.span(v)),
            });
        }

        let spans = |r: &Option<Spanned<Vec<String>>>| {
            r.as_ref()
                .map(|r| (r.get_ref().clone(), self.lines.span(r)))
        };
        let frontend_rules: Vec<_> = file
            .frontend
            .iter()
            .map(|f| spans(&f.get_ref().rules))
            .collect();
        let backend_rules: Vec<_> = file
            .backend
            .iter()
            .map(|b| spans(&b.get_ref().rules))
            .collect();
        super::toml_rules::apply(&mut config, &frontend_rules, &backend_rules, self.report);

        for spanned in &file.stats {
            let line = self.lines.span(spanned);
            let s = spanned.get_ref();
            let (mut binds, mut bind_lines) = self.binds(&s.bind);
            if let Some(tls) = &s.tls {
                let (tls_binds, tls_lines) = self.tls_binds(tls);
                binds.extend(tls_binds);
                bind_lines.extend(tls_lines);
            }
            config.stats.push(StatsPage {
                name: s.name.clone(),
                binds,
                uri: s
                    .uri
                    .clone()
                    .unwrap_or_else(|| DEFAULT_STATS_URI.to_string()),
                refresh: s
                    .refresh
                    .as_ref()
                    .and_then(|r| self.duration(r))
                    .filter(|d| !d.is_zero()),
                realm: s.realm.clone().unwrap_or_else(|| DEFAULT_REALM.to_string()),
                users: s
                    .auth
                    .iter()
                    .map(|a| StatsUser {
                        user: a.user.clone(),
                        password: Secret(a.password.clone()),
                    })
                    .collect(),
                hide_version: s.hide_version.unwrap_or(false),
                admin: s.admin.unwrap_or(false),
            });
            if !s.uri.as_deref().unwrap_or("/").starts_with('/') {
                self.report.error(
                    line,
                    format!("stats page '{}': 'uri' must start with '/'", s.name),
                );
            }
            origins.stats.push(ProxyLines {
                line,
                binds: bind_lines,
                ..ProxyLines::default()
            });
        }
        (config, origins)
    }

    fn global(&mut self, g: GlobalT) -> Global {
        let nbthread = g.nbthread.as_ref().map(|n| {
            if *n.get_ref() == 0 {
                self.report
                    .error(self.lines.span(n), "'nbthread' must be at least 1");
            }
            *n.get_ref()
        });
        Global {
            log: g.log.iter().filter_map(|l| self.log_target(l)).collect(),
            pidfile: g.pidfile.map(Into::into),
            maxconn: g.maxconn.unwrap_or(DEFAULT_GLOBAL_MAXCONN),
            user: g.user,
            group: g.group,
            daemon: g.daemon.unwrap_or(false),
            nbthread,
            hard_stop_after: g.hard_stop_after.as_ref().and_then(|d| self.duration(d)),
            ulimit_n: g.ulimit_n,
            cpu_map: g
                .cpu_map
                .iter()
                .filter_map(|m| {
                    let words: Vec<String> =
                        m.get_ref().split_whitespace().map(str::to_string).collect();
                    let line = self.lines.span(m);
                    self.report.check(
                        line,
                        crate::config::cpu_map::parse(&words).map_err(|e| format!("cpu_map: {e}")),
                    )
                })
                .collect(),
            chroot: g.chroot.as_ref().and_then(|c| {
                if std::path::Path::new(c.get_ref()).is_dir() {
                    Some(c.get_ref().into())
                } else {
                    let line = self.lines.span(c);
                    self.report
                        .error(line, format!("chroot '{}': no such directory", c.get_ref()));
                    None
                }
            }),
            spread_checks: match &g.spread_checks {
                Some(p) if *p.get_ref() > 50 => {
                    let line = self.lines.span(p);
                    self.report
                        .error(line, "spread_checks is a percentage from 0 to 50");
                    0
                }
                Some(p) => *p.get_ref(),
                None => 0,
            },
            max_spread_checks: g.max_spread_checks.as_ref().and_then(|d| self.duration(d)),
            stats_socket: g.stats_socket.as_ref().map(|s| StatsSocket {
                path: s.path.clone().into(),
                user: s.user.clone(),
                group: s.group.clone(),
                mode: match &s.mode {
                    None => 0o600,
                    Some(m) => match u32::from_str_radix(m.get_ref(), 8) {
                        Ok(mode) if mode <= 0o777 => mode,
                        _ => {
                            let line = self.lines.span(m);
                            self.report.error(line, format!("stats_socket mode '{}' is not an octal file mode such as \"600\"", m.get_ref()));
                            0o600
                        }
                    },
                },
            }),
        }
    }

    fn log_target(&mut self, spanned: &Spanned<LogT>) -> Option<LogTarget> {
        let line = self.lines.span(spanned);
        let l = spanned.get_ref();
        let destination = self
            .report
            .check(line, addr::parse_log_destination(&l.address))?;
        let facility_name = l.facility.as_deref().unwrap_or("local0");
        let Some(facility) = Facility::from_name(facility_name) else {
            self.report.error(
                line,
                format!(
                    "unknown syslog facility '{facility_name}'{}",
                    suggest::hint(facility_name, Facility::NAMES)
                ),
            );
            return None;
        };
        let level_name = l.level.as_deref().unwrap_or("debug");
        let Some(max_level) = Level::from_name(level_name) else {
            self.report.error(
                line,
                format!(
                    "unknown log level '{level_name}'{}",
                    suggest::hint(level_name, Level::ALL.iter().map(|(n, _)| *n))
                ),
            );
            return None;
        };
        let format_name = l.format.as_deref().unwrap_or("rfc3164");
        let Some(format) = LogFormat::from_name(format_name) else {
            self.report.error(
                line,
                format!(
                    "unknown log format '{format_name}'{}",
                    suggest::hint(format_name, LogFormat::ALL.iter().map(|(n, _)| *n))
                ),
            );
            return None;
        };
        Some(LogTarget {
            destination,
            format,
            facility,
            max_level,
        })
    }

    fn proxy_log(
        &mut self,
        own: Option<&ProxyLogT>,
        defaults: &ProxyLogT,
        global: &Global,
    ) -> ProxyLog {
        let empty = ProxyLogT::default();
        let own = own.unwrap_or(&empty);
        let mut targets = Vec::new();
        if own.global.or(defaults.global).unwrap_or(false) {
            targets.extend(global.log.iter().cloned());
        }
        if let Some(list) = own.targets.as_ref().or(defaults.targets.as_ref()) {
            targets.extend(list.iter().filter_map(|l| self.log_target(l)));
        }
        ProxyLog {
            targets,
            tcplog: own.tcplog.or(defaults.tcplog).unwrap_or(false),
            dontlognull: own.dontlognull.or(defaults.dontlognull).unwrap_or(false),
            health_checks: own
                .health_checks
                .or(defaults.health_checks)
                .unwrap_or(false),
            separate_errors: own
                .separate_errors
                .or(defaults.separate_errors)
                .unwrap_or(false),
            logasap: own.logasap.or(defaults.logasap).unwrap_or(false),
            dontlog_normal: own
                .dontlog_normal
                .or(defaults.dontlog_normal)
                .unwrap_or(false),
        }
    }

    fn mode(&mut self, mode: Option<&Spanned<String>>) -> Mode {
        // Warren's own format defaults to AMQP mode (DESIGN: the mode a RabbitMQ operator
        // wants; it costs within 5% of tcp mode, bench/RESULTS.md); haproxy.cfg keeps `mode tcp`.
        let Some(spanned) = mode else {
            return Mode::Amqp;
        };
        let line = self.lines.span(spanned);
        match spanned.get_ref().as_str() {
            "tcp" => Mode::Tcp,
            "amqp" => Mode::Amqp,
            "http" => {
                self.report.error(
                    line,
                    "warren does not proxy HTTP; use a [[stats]] section for the stats page",
                );
                Mode::Tcp
            }
            other => {
                self.report.error(
                    line,
                    format!(
                        "unknown mode '{other}'; use \"amqp\" or \"tcp\"{}",
                        suggest::hint(other, ["tcp", "amqp"])
                    ),
                );
                Mode::Tcp
            }
        }
    }

    fn balance(&mut self, balance: Option<&Spanned<String>>) -> Algorithm {
        let Some(spanned) = balance else {
            return Algorithm::RoundRobin;
        };
        let name = spanned.get_ref().as_str();
        let name = if name == "random(2)" { "random" } else { name };
        Algorithm::from_name(name).unwrap_or_else(|| {
            self.report.error(
                self.lines.span(spanned),
                format!(
                    "unknown balance algorithm '{name}'{}",
                    suggest::hint(name, Algorithm::ALL.iter().map(|(n, _)| *n))
                ),
            );
            Algorithm::RoundRobin
        })
    }

    fn duration(&mut self, value: &Spanned<String>) -> Option<Duration> {
        let line = self.lines.span(value);
        self.report.check(line, duration::parse(value.get_ref()))
    }

    /// A timeout of the proxy, else of `[defaults]`; "0" means none, as in HAProxy.
    fn timeout(
        &mut self,
        own: &Option<Spanned<String>>,
        default: &Option<Spanned<String>>,
    ) -> Option<Duration> {
        let value = own.as_ref().or(default.as_ref())?;
        self.duration(value).filter(|d| !d.is_zero())
    }

    fn timeouts(&mut self, own: &TimeoutsT, d: &TimeoutsT) -> Timeouts {
        Timeouts {
            client: self.timeout(&own.client, &d.client),
            server: self.timeout(&own.server, &d.server),
            connect: self.timeout(&own.connect, &d.connect),
            queue: self.timeout(&own.queue, &d.queue),
            check: self.timeout(&own.check, &d.check),
            tunnel: self.timeout(&own.tunnel, &d.tunnel),
            client_fin: self.timeout(&own.client_fin, &d.client_fin),
            server_fin: self.timeout(&own.server_fin, &d.server_fin),
            handshake: self.timeout(&own.handshake, &d.handshake),
            client_hs: self.timeout(&own.client_hs, &d.client_hs),
        }
    }

    /// `initial_frame_max` in bytes, within [`INITIAL_FRAME_MAX_RANGE`].
    fn initial_frame_max(&mut self, value: Option<&Spanned<u32>>) -> u32 {
        let Some(v) = value else {
            return DEFAULT_INITIAL_FRAME_MAX;
        };
        let n = *v.get_ref();
        if !INITIAL_FRAME_MAX_RANGE.contains(&n) {
            self.report.error(
                self.lines.span(v),
                format!(
                    "initial_frame_max must be from {} to {} bytes (RabbitMQ's default initial_frame_max is 8192), not {n}",
                    INITIAL_FRAME_MAX_RANGE.start(),
                    INITIAL_FRAME_MAX_RANGE.end()
                ),
            );
        }
        n
    }

    /// Keep-alive of a proxy, key by key over `[defaults]`.
    fn keepalive(&mut self, own: Option<&KeepaliveT>, d: &KeepaliveT) -> Keepalive {
        let empty = KeepaliveT::default();
        let own = own.unwrap_or(&empty);
        let mut positive = |v: Option<&Spanned<String>>, what: &str| {
            let v = v?;
            let d = self.duration(v)?;
            if d.is_zero() {
                self.report.error(
                    self.lines.span(v),
                    format!("keepalive {what} must be greater than 0"),
                );
            }
            Some(d)
        };
        let idle = positive(own.idle.as_ref().or(d.idle.as_ref()), "idle");
        let interval = positive(own.interval.as_ref().or(d.interval.as_ref()), "interval");
        let count = own.count.as_ref().or(d.count.as_ref()).map(|c| {
            if *c.get_ref() == 0 {
                self.report
                    .error(self.lines.span(c), "keepalive count must be at least 1");
            }
            *c.get_ref()
        });
        Keepalive {
            enabled: own.enabled.or(d.enabled).unwrap_or(false),
            idle,
            interval,
            count,
        }
    }

    /// `rebalance = { window, batch }`, defaults 60 s and 1.
    fn rebalance(&mut self, r: &RebalanceT) -> Option<Rebalance> {
        let window = match &r.window {
            Some(w) => {
                let d = self.duration(w)?;
                if d.is_zero() {
                    self.report.error(
                        self.lines.span(w),
                        "rebalance window must be greater than 0",
                    );
                }
                d
            }
            None => Duration::from_secs(60),
        };
        let batch = match &r.batch {
            Some(b) => {
                if *b.get_ref() == 0 {
                    self.report
                        .error(self.lines.span(b), "rebalance batch must be at least 1");
                }
                *b.get_ref()
            }
            None => 1,
        };
        Some(Rebalance { window, batch })
    }

    /// `check = "tcp" | "amqp"`, or a table:
    /// `{ type = "amqp-login", user, password, vhost = "/" }`,
    /// `{ type = "http", method = "OPTIONS", uri = "/", headers = [{ name, value }], expect_status = [200] }`.
    fn check(&mut self, value: &Spanned<toml::Value>) -> CheckKind {
        let line = self.lines.span(value);
        match check::parse(value.get_ref()) {
            Ok(kind) => kind,
            Err(message) => {
                self.report.error(line, format!("check: {message}"));
                CheckKind::Tcp
            }
        }
    }

    fn binds(&mut self, list: &[Spanned<String>]) -> (Vec<Bind>, Vec<usize>) {
        let mut binds = Vec::new();
        let mut lines = Vec::new();
        for text in list {
            let line = self.lines.span(text);
            if let Some(addrs) = self.report.check(line, addr::parse_bind(text.get_ref())) {
                for a in addrs {
                    binds.push(Bind {
                        addr: a,
                        accept_proxy: false,
                        tls: None,
                        v4v6: false,
                    });
                    lines.push(line);
                }
            }
        }
        (binds, lines)
    }

    /// The TLS binds of a frontend, with the certificates read.
    fn tls_binds(&mut self, t: &Spanned<BindTlsT>) -> (Vec<Bind>, Vec<usize>) {
        let line = self.lines.span(t);
        let t = t.get_ref();
        let mut options = BindOptions {
            ssl: true,
            crt: t.crt.iter().map(PathBuf::from).collect(),
            ca_file: t.ca_file.as_ref().map(PathBuf::from),
            ..BindOptions::default()
        };
        if let Some(v) = &t.verify {
            options.verify = ClientVerify::from_name(v);
            if options.verify.is_none() {
                self.report.error(
                    line,
                    format!(
                        "tls.verify must be \"none\", \"optional\" or \"required\", not \"{v}\""
                    ),
                );
            }
        }
        options.min_version = self.min_version(line, t.min_version.as_deref()).flatten();
        let tls = match options.build() {
            Ok(tls) => tls,
            Err(message) => {
                self.report.error(line, format!("tls: {message}"));
                return (Vec::new(), Vec::new());
            }
        };
        let (mut binds, lines) = self.binds(&t.bind);
        for b in &mut binds {
            b.tls = tls.clone();
        }
        (binds, lines)
    }

    /// A `tls.min_version` as written: `Some(None)` when absent, `None` when wrong (reported).
    fn min_version(&mut self, line: usize, v: Option<&str>) -> Option<Option<MinVersion>> {
        let Some(v) = v else { return Some(None) };
        let parsed = MinVersion::from_name(v);
        if parsed.is_none() {
            self.report.error(
                line,
                format!("tls.min_version must be \"1.2\" or \"1.3\", not \"{v}\""),
            );
        }
        parsed.map(Some)
    }

    fn server_tls(&mut self, s: &ServerT) -> Option<ServerTls> {
        let t = s.tls.as_ref()?;
        let line = self.lines.span(t);
        let t = t.get_ref();
        let sessions = t.sessions.unwrap_or(true);
        let min_version = self.min_version(line, t.min_version.as_deref())?;
        let options = ServerOptions {
            sessions,
            checks: t.checks.unwrap_or(sessions && s.check_port.is_none()),
            verify: t.verify,
            ca_file: t.ca_file.as_ref().map(PathBuf::from),
            crt: t.crt.as_ref().map(PathBuf::from),
            name: t.name.clone(),
            min_version,
        };
        match options.build() {
            Ok(tls) => tls,
            Err(message) => {
                self.report
                    .error(line, format!("server '{}': {message}", s.name));
                None
            }
        }
    }

    fn server(&mut self, s: &ServerT) -> Option<Server> {
        let tls = self.server_tls(s);
        let addr = self.report.check(
            self.lines.span(&s.address),
            addr::parse_server(s.address.get_ref()),
        );
        let inter = match &s.inter {
            Some(v) => self.duration(v)?,
            None => server_defaults::INTER,
        };
        let mut optional = |v: &Option<Spanned<String>>| match v {
            Some(v) => self.duration(v).map(Some),
            None => Some(None),
        };
        let fastinter = optional(&s.fastinter)?.unwrap_or(inter);
        let downinter = optional(&s.downinter)?.unwrap_or(inter);
        let slowstart = optional(&s.slowstart)?.filter(|d| !d.is_zero());
        Some(Server {
            name: s.name.clone(),
            addr: addr?,
            check_port: s.check_port.as_ref().map(|p| {
                if *p.get_ref() == 0 {
                    self.report.error(
                        self.lines.span(p),
                        "check_port must be a port number from 1 to 65535",
                    );
                }
                *p.get_ref()
            }),
            check: s.check.unwrap_or(false),
            inter,
            fastinter,
            downinter,
            rise: s.rise.unwrap_or(server_defaults::RISE),
            fall: s.fall.unwrap_or(server_defaults::FALL),
            weight: s.weight.unwrap_or(server_defaults::WEIGHT),
            maxconn: s.maxconn.unwrap_or(0),
            maxqueue: s.maxqueue.unwrap_or(0),
            backup: s.backup.unwrap_or(false),
            disabled: s.disabled.unwrap_or(false),
            slowstart,
            shutdown_on_down: s.shutdown_sessions_on_down.unwrap_or(false),
            shutdown_backup_on_up: s.shutdown_backup_sessions_on_up.unwrap_or(false),
            send_proxy: match s.send_proxy.as_ref() {
                None => None,
                Some(v) => match v.get_ref().as_str() {
                    "v1" => Some(ProxyProtocol::V1),
                    "v2" => Some(ProxyProtocol::V2),
                    other => {
                        self.report.error(
                            self.lines.span(v),
                            format!("send_proxy must be \"v1\" or \"v2\", not \"{other}\""),
                        );
                        None
                    }
                },
            },
            check_send_proxy: s.check_send_proxy.unwrap_or(false),
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_password_is_not_echoed_in_the_error() {
        let text = "[[stats]]\nname = \"s\"\nbind = [\"127.0.0.1:0\"]\nauth = [{ user = \"a\", password = 918273645 }]\n";
        let mut report = Report::new("w.toml");
        assert!(parse(text, &mut report).is_none());
        let all: Vec<String> = report.errors.iter().map(|d| d.to_string()).collect();
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(
            all[0].starts_with("w.toml:4: invalid type: integer (hidden), expected a string"),
            "{all:?}"
        );
        assert!(!all[0].contains("918273645"));
        // Elsewhere the value stays, to help.
        let mut report = Report::new("w.toml");
        assert!(parse("[global]\nmaxconn = \"lots\"\n", &mut report).is_none());
        assert!(
            report.errors[0].message.contains("lots"),
            "{:?}",
            report.errors
        );
    }
}
