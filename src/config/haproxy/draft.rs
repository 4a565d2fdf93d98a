//! One section of `haproxy.cfg` while it is being read: everything optional, with the line
//! numbers validation needs. A proxy starts as a copy of the `defaults` in force, which is
//! HAProxy's inheritance rule; [`super::finish`] turns drafts into the typed model.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::model::{
    Algorithm, Bind, CheckKind, HttpProxy, Keepalive, LogTarget, Mode, Observe, ObserveLayer,
    OnError, ProxyProtocol, RateLimit, Rebalance, Secret, Server, ServerTls, StatsUser, Timeouts,
    DEFAULT_ERROR_LIMIT,
};
use crate::config::MinVersion;

/// The four kinds of proxy section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Defaults => "defaults",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Listen => "listen",
        }
    }

    /// Accepts client connections (HAProxy's "frontend capability").
    pub fn has_frontend(self) -> bool {
        matches!(self, Kind::Defaults | Kind::Frontend | Kind::Listen)
    }

    /// Has servers (HAProxy's "backend capability").
    pub fn has_backend(self) -> bool {
        matches!(self, Kind::Defaults | Kind::Backend | Kind::Listen)
    }
}

/// A `log` line of a proxy.
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// `log global`: the global section's targets, resolved at the end.
    Global,
    Target(LogTarget),
}

/// Stats directives; any of them switches the page on, as in HAProxy.
#[derive(Debug, Clone, Default)]
pub struct StatsDraft {
    pub enabled: bool,
    pub uri: Option<String>,
    pub refresh: Option<Duration>,
    pub realm: Option<String>,
    pub users: Vec<StatsUser>,
    pub hide_version: bool,
    pub admin: bool,
    /// `show-node [name]`: `Some(None)` for the global node name.
    pub show_node: Option<Option<String>>,
    /// `show-desc [text]`: `Some(None)` for the global description.
    pub show_desc: Option<Option<String>>,
    /// First stats line written in this very section (not inherited from defaults).
    pub own_line: Option<usize>,
}

/// Server keywords, as given on a `server` or `default-server` line.
#[derive(Debug, Clone, Default)]
pub struct ServerParams {
    pub check: Option<bool>,
    pub inter: Option<Duration>,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub weight: Option<u32>,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub backup: Option<bool>,
    pub disabled: Option<bool>,
    pub slowstart: Option<Duration>,
    pub shutdown_on_down: Option<bool>,
    pub shutdown_backup_on_up: Option<bool>,
    pub send_proxy: Option<Option<ProxyProtocol>>,
    pub check_send_proxy: Option<bool>,
    pub check_port: Option<u16>,
    pub ssl: Option<bool>,
    pub check_ssl: Option<bool>,
    /// `verify required` (true) or `verify none`.
    pub verify: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub crt: Option<PathBuf>,
    /// `sni str(<name>)` or `verifyhost <name>`.
    pub tls_name: Option<String>,
    pub ssl_min_ver: Option<MinVersion>,
    pub cookie: Option<String>,
    pub observe: Option<ObserveLayer>,
    pub error_limit: Option<u32>,
    pub on_error: Option<OnError>,
    /// `id`: never inherited from `default-server` (each server's own).
    pub id: Option<u32>,
    /// `init-addr`, `resolvers`, `resolve-prefer`.
    pub init_addr: Option<Vec<crate::config::InitAddr>>,
    pub resolvers: Option<String>,
    pub resolve_prefer: Option<crate::config::Family>,
}

impl ServerParams {
    /// Values of `self` win; the rest come from `base` (a `default-server` line).
    pub fn over(&self, base: &ServerParams) -> ServerParams {
        ServerParams {
            check: self.check.or(base.check),
            inter: self.inter.or(base.inter),
            fastinter: self.fastinter.or(base.fastinter),
            downinter: self.downinter.or(base.downinter),
            rise: self.rise.or(base.rise),
            fall: self.fall.or(base.fall),
            weight: self.weight.or(base.weight),
            maxconn: self.maxconn.or(base.maxconn),
            maxqueue: self.maxqueue.or(base.maxqueue),
            backup: self.backup.or(base.backup),
            disabled: self.disabled.or(base.disabled),
            slowstart: self.slowstart.or(base.slowstart),
            shutdown_on_down: self.shutdown_on_down.or(base.shutdown_on_down),
            shutdown_backup_on_up: self.shutdown_backup_on_up.or(base.shutdown_backup_on_up),
            send_proxy: self.send_proxy.or(base.send_proxy),
            check_send_proxy: self.check_send_proxy.or(base.check_send_proxy),
            check_port: self.check_port.or(base.check_port),
            ssl: self.ssl.or(base.ssl),
            check_ssl: self.check_ssl.or(base.check_ssl),
            verify: self.verify.or(base.verify),
            ca_file: self.ca_file.clone().or_else(|| base.ca_file.clone()),
            crt: self.crt.clone().or_else(|| base.crt.clone()),
            tls_name: self.tls_name.clone().or_else(|| base.tls_name.clone()),
            ssl_min_ver: self.ssl_min_ver.or(base.ssl_min_ver),
            cookie: self.cookie.clone().or_else(|| base.cookie.clone()),
            observe: self.observe.or(base.observe),
            error_limit: self.error_limit.or(base.error_limit),
            on_error: self.on_error.or(base.on_error),
            id: self.id,
            init_addr: self.init_addr.clone().or_else(|| base.init_addr.clone()),
            resolvers: self.resolvers.clone().or_else(|| base.resolvers.clone()),
            resolve_prefer: self.resolve_prefer.or(base.resolve_prefer),
        }
    }

    /// The TLS side of a server: `None` without `ssl` or `check-ssl`. Reads the files.
    pub fn tls(&self) -> Result<Option<ServerTls>, String> {
        crate::config::ServerOptions {
            sessions: self.ssl.unwrap_or(false),
            // HAProxy: with `ssl`, checks use TLS too unless they go to another port.
            checks: self.check_ssl.unwrap_or(false)
                || (self.ssl.unwrap_or(false) && self.check_port.is_none()),
            verify: self.verify,
            ca_file: self.ca_file.clone(),
            crt: self.crt.clone(),
            name: self.tls_name.clone(),
            min_version: self.ssl_min_ver,
        }
        .build()
    }

    /// A server with HAProxy's defaults for everything not given.
    pub fn build(&self, name: String, addr: SocketAddr) -> Server {
        use crate::config::model::server_defaults as d;
        let inter = self.inter.unwrap_or(d::INTER);
        Server {
            name,
            addr,
            check_port: self.check_port,
            check: self.check.unwrap_or(false),
            inter,
            fastinter: self.fastinter.unwrap_or(inter),
            downinter: self.downinter.unwrap_or(inter),
            rise: self.rise.unwrap_or(d::RISE),
            fall: self.fall.unwrap_or(d::FALL),
            weight: self.weight.unwrap_or(d::WEIGHT),
            maxconn: self.maxconn.unwrap_or(0),
            maxqueue: self.maxqueue.unwrap_or(0),
            backup: self.backup.unwrap_or(false),
            disabled: self.disabled.unwrap_or(false),
            slowstart: self.slowstart,
            shutdown_on_down: self.shutdown_on_down.unwrap_or(false),
            shutdown_backup_on_up: self.shutdown_backup_on_up.unwrap_or(false),
            send_proxy: self.send_proxy.flatten(),
            check_send_proxy: self.check_send_proxy.unwrap_or(false),
            tls: None,
            cookie: self.cookie.clone(),
            observe: self.observe.map(|layer| Observe {
                layer,
                error_limit: self.error_limit.unwrap_or(DEFAULT_ERROR_LIMIT),
                on_error: self.on_error.unwrap_or_default(),
            }),
            id: self.id,
            dns: None,
        }
    }

    /// What a name on the server line needs (its `fqdn` is filled by `addr`).
    pub fn dns(&self) -> crate::config::ServerDns {
        crate::config::ServerDns {
            fqdn: String::new(),
            init_addr: self.init_addr.clone().unwrap_or_default(),
            resolved_by: None,
            resolvers: self.resolvers.clone(),
            prefer: self.resolve_prefer.unwrap_or_default(),
            template: None,
        }
    }
}

/// A directive that only means something in `mode http`, warned about at the end once the
/// proxy's mode is known (it may be set after the directive, or come from `defaults`).
#[derive(Debug, Clone)]
pub struct HttpOnly {
    pub line: usize,
    /// As written, e.g. `option httplog`.
    pub directive: String,
    /// What warren (like HAProxy) does instead, e.g. "falls back to 'option tcplog'".
    pub effect: &'static str,
}

/// `http-check send` and `http-check expect`: they refine `option httpchk`, in whichever
/// order they are written, so they are kept apart and merged at the end.
#[derive(Debug, Clone, Default)]
pub struct HttpCheckDraft {
    pub method: Option<String>,
    pub uri: Option<String>,
    pub headers: Vec<(String, Secret)>,
    pub expect_status: Option<Vec<u16>>,
    pub expect_body: Option<crate::config::model::BodyExpect>,
    /// First `http-check` line, to warn when there is no `option httpchk` to refine.
    pub line: Option<usize>,
}

/// One proxy or defaults section being read.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: Kind,
    pub name: String,
    pub line: usize,
    pub mode: Option<Mode>,
    pub binds: Vec<(Bind, usize)>,
    pub default_backend: Option<(String, usize)>,
    pub maxconn: Option<u32>,
    pub balance: Option<Algorithm>,
    pub hash_type: Option<crate::config::model::HashType>,
    pub retries: Option<u32>,
    pub redispatch: bool,
    pub tcplog: bool,
    pub httplog: bool,
    pub dontlognull: bool,
    pub log_health_checks: bool,
    pub log_separate_errors: bool,
    pub logasap: bool,
    pub dontlog_normal: bool,
    pub timeouts: Timeouts,
    pub logs: Vec<LogEntry>,
    pub http_only: Vec<HttpOnly>,
    pub stats: StatsDraft,
    pub default_server: ServerParams,
    pub servers: Vec<(Server, usize)>,
    /// `option amqp` / `no option amqp`, with its line.
    pub amqp: Option<(bool, usize)>,
    /// Line of an `option amqp` written in this very section (not inherited from defaults).
    pub amqp_own_line: Option<usize>,
    /// Line of the `timeout handshake` in force, for the warning outside AMQP mode.
    pub handshake_line: Option<usize>,
    /// Client-side keep-alive (`option clitcpka`/`tcpka`, `clitcpka-*`).
    pub cli_keepalive: Keepalive,
    /// Server-side keep-alive (`option srvtcpka`/`tcpka`, `srvtcpka-*`).
    pub srv_keepalive: Keepalive,
    /// The health check and the line of the option that chose it (0 for the default).
    pub check: CheckKind,
    pub check_line: usize,
    pub http_check: HttpCheckDraft,
    /// warren's `rebalance`, with its line.
    pub rebalance: Option<(Rebalance, usize)>,
    /// `rate-limit sessions` / `rate-limit sessions-per-source`.
    pub rate_limit: RateLimit,
    /// warren's `amqp-initial-frame-max`, with its line (warned about outside AMQP mode).
    pub initial_frame_max: Option<(u32, usize)>,
    /// `option amqp-terminate [lenient]` / `no option amqp-terminate`, with its line.
    pub amqp_terminate: Option<(bool, usize)>,
    /// `amqp-terminate` settings (`lenient`, `amqp-publish-buffer`).
    pub terminate: crate::config::Terminate,
    /// `acl`, `tcp-request`, `use_backend` and `use-server` lines, compiled by `finish`.
    pub rule_lines: Vec<(Vec<String>, usize)>,
    /// `tcp-request inspect-delay`.
    pub inspect_delay: Option<Duration>,
    /// `tcp-check` lines (the words after the keyword), used with `option tcp-check`.
    pub tcp_check_lines: Vec<(Vec<String>, usize)>,
    /// `stick-table` (with its line) and the line of `stick on src`.
    pub stick_table: Option<(crate::config::model::Stick, usize)>,
    pub stick_on: Option<usize>,
    /// `option persist`.
    pub persist: bool,
    /// The global TLS defaults in force when the section began.
    pub tls_defaults: super::ssl_defaults::TlsDefaults,
    /// HTTP mode: connection mode, `option forwardfor`, cookie, rules.
    pub http: HttpProxy,
    /// Every `userlist` of the file (for `http_auth()`).
    pub userlists: std::sync::Arc<Vec<crate::config::rules::Userlist>>,
    /// Every `http-errors` section of the file (for `errorfiles`).
    pub http_errors: std::sync::Arc<Vec<crate::config::rules::HttpErrors>>,
}

impl Draft {
    /// A section with HAProxy's built-in defaults.
    pub fn new(kind: Kind, name: &str, line: usize) -> Draft {
        Draft {
            kind,
            name: name.to_string(),
            line,
            mode: None,
            binds: Vec::new(),
            default_backend: None,
            maxconn: None,
            balance: None,
            hash_type: None,
            retries: None,
            redispatch: false,
            tcplog: false,
            httplog: false,
            dontlognull: false,
            log_health_checks: false,
            log_separate_errors: false,
            logasap: false,
            dontlog_normal: false,
            timeouts: Timeouts::default(),
            logs: Vec::new(),
            http_only: Vec::new(),
            stats: StatsDraft::default(),
            default_server: ServerParams::default(),
            servers: Vec::new(),
            amqp: None,
            amqp_own_line: None,
            handshake_line: None,
            cli_keepalive: Keepalive::default(),
            srv_keepalive: Keepalive::default(),
            check: CheckKind::Tcp,
            check_line: 0,
            http_check: HttpCheckDraft::default(),
            rebalance: None,
            rate_limit: RateLimit::default(),
            initial_frame_max: None,
            amqp_terminate: None,
            terminate: crate::config::Terminate::default(),
            rule_lines: Vec::new(),
            inspect_delay: None,
            tcp_check_lines: Vec::new(),
            tls_defaults: Default::default(),
            http: HttpProxy::default(),
            userlists: std::sync::Arc::new(Vec::new()),
            http_errors: std::sync::Arc::new(Vec::new()),
            stick_table: None,
            stick_on: None,
            persist: false,
        }
    }

    /// A proxy section that inherits everything a `defaults` section set.
    pub fn inherit(defaults: &Draft, kind: Kind, name: &str, line: usize) -> Draft {
        let mut draft = defaults.clone();
        draft.kind = kind;
        draft.name = name.to_string();
        draft.line = line;
        draft.stats.own_line = None;
        draft.amqp_own_line = None;
        // Only these may come from defaults; binds and servers never do.
        draft.binds.clear();
        draft.servers.clear();
        draft
    }

    /// The proxy's mode: `option amqp` turns `mode tcp` into AMQP mode; with `mode http` it
    /// has no effect here (the error is reported by `finish`).
    pub fn mode(&self) -> Mode {
        match (
            self.mode.unwrap_or(Mode::Tcp),
            self.amqp,
            self.amqp_terminate,
        ) {
            // `option amqp-terminate` implies `option amqp`.
            (Mode::Tcp, _, Some((true, _))) => Mode::AmqpTerminate,
            (Mode::Tcp, Some((true, _)), _) => Mode::Amqp,
            (mode, _, _) => mode,
        }
    }

    /// `kind 'name'` for messages.
    pub fn describe(&self) -> String {
        format!("{} '{}'", self.kind.name(), self.name)
    }
}
