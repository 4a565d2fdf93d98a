//! The TOML file as serde reads it: every table and key warren knows, with `Option`s where
//! a key may be left out and spans for the line numbers of messages. Unknown keys are
//! refused (`deny_unknown_fields`). [`super::build`] turns these into the model.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) global: GlobalT,
    #[serde(default)]
    pub(super) defaults: ProxyDefaultsT,
    #[serde(default)]
    pub(super) frontend: Vec<Spanned<FrontendT>>,
    #[serde(default)]
    pub(super) backend: Vec<Spanned<BackendT>>,
    #[serde(default)]
    pub(super) stats: Vec<Spanned<StatsT>>,
    #[serde(default)]
    pub(super) userlist: Vec<Spanned<super::http::UserlistT>>,
    #[serde(default)]
    pub(super) resolvers: Vec<Spanned<super::dns::ResolversT>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct GlobalT {
    pub(super) maxconn: Option<u32>,
    pub(super) pidfile: Option<String>,
    pub(super) daemon: Option<bool>,
    pub(super) user: Option<String>,
    pub(super) group: Option<String>,
    pub(super) nbthread: Option<Spanned<usize>>,
    pub(super) hard_stop_after: Option<Spanned<String>>,
    pub(super) stats_socket: Option<StatsSocketT>,
    pub(super) ulimit_n: Option<u64>,
    pub(super) spread_checks: Option<Spanned<u32>>,
    pub(super) max_spread_checks: Option<Spanned<String>>,
    pub(super) chroot: Option<Spanned<String>>,
    /// HAProxy's `cpu-map` arguments, one string per line: `["1/1-4 0-3"]`.
    #[serde(default)]
    pub(super) cpu_map: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) log: Vec<Spanned<LogT>>,
    /// HAProxy's `tune.bufsize`: the largest HTTP head, in bytes.
    pub(super) bufsize: Option<Spanned<u32>>,
    pub(super) node: Option<String>,
    pub(super) description: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct StatsSocketT {
    pub(super) path: String,
    /// Octal, as a string ("600").
    pub(super) mode: Option<Spanned<String>>,
    pub(super) user: Option<String>,
    pub(super) group: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct LogT {
    /// `"127.0.0.1:514"`, `"stderr"`, `"stdout"` or an absolute file path.
    pub(super) address: String,
    pub(super) facility: Option<String>,
    pub(super) level: Option<String>,
    pub(super) format: Option<String>,
}

/// Settings shared by `[defaults]`, frontends and backends.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct ProxyDefaultsT {
    pub(super) mode: Option<Spanned<String>>,
    pub(super) retries: Option<u32>,
    pub(super) redispatch: Option<bool>,
    pub(super) balance: Option<Spanned<String>>,
    pub(super) maxconn: Option<u32>,
    #[serde(default)]
    pub(super) timeout: TimeoutsT,
    #[serde(default)]
    pub(super) log: ProxyLogT,
    #[serde(default)]
    pub(super) keepalive: KeepaliveT,
    pub(super) check: Option<Spanned<toml::Value>>,
    /// For frontends: AMQP frame size allowed before `tune-ok` (`amqp-initial-frame-max`).
    pub(super) initial_frame_max: Option<Spanned<u32>>,
    pub(super) rate_limit: Option<RateLimitT>,
    pub(super) terminate: Option<TerminateT>,
    pub(super) http: Option<super::http::HttpT>,
}

/// `terminate = { lenient = false, publish_buffer = 4194304 }`: `amqp-terminate` settings.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct TerminateT {
    pub(super) lenient: Option<bool>,
    /// Bytes of unconfirmed publishes kept per client (at least 131072).
    pub(super) publish_buffer: Option<Spanned<u64>>,
}

/// `rate_limit = { sessions = 200, sessions_per_source = 20 }`; 0 or absent means off.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitT {
    pub(super) sessions: Option<u32>,
    pub(super) sessions_per_source: Option<u32>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeoutsT {
    pub(super) client: Option<Spanned<String>>,
    pub(super) server: Option<Spanned<String>>,
    pub(super) connect: Option<Spanned<String>>,
    pub(super) queue: Option<Spanned<String>>,
    pub(super) check: Option<Spanned<String>>,
    pub(super) tunnel: Option<Spanned<String>>,
    pub(super) client_fin: Option<Spanned<String>>,
    pub(super) server_fin: Option<Spanned<String>>,
    pub(super) handshake: Option<Spanned<String>>,
    pub(super) client_hs: Option<Spanned<String>>,
    pub(super) failover: Option<Spanned<String>>,
    pub(super) http_request: Option<Spanned<String>>,
    pub(super) http_keep_alive: Option<Spanned<String>>,
}

/// `keepalive = { enabled = true, idle = "30s", interval = "10s", count = 3 }`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct KeepaliveT {
    pub(super) enabled: Option<bool>,
    pub(super) idle: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) count: Option<Spanned<u32>>,
}

/// `rebalance = { window = "60s", batch = 1 }`; absent means off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RebalanceT {
    pub(super) window: Option<Spanned<String>>,
    pub(super) batch: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct ProxyLogT {
    /// Log to the `[global]` targets (HAProxy's `log global`).
    pub(super) global: Option<bool>,
    pub(super) targets: Option<Vec<Spanned<LogT>>>,
    pub(super) tcplog: Option<bool>,
    /// HTTP mode: one line per request in HAProxy's httplog format.
    pub(super) httplog: Option<bool>,
    pub(super) dontlognull: Option<bool>,
    pub(super) health_checks: Option<bool>,
    pub(super) separate_errors: Option<bool>,
    pub(super) logasap: Option<bool>,
    pub(super) dontlog_normal: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FrontendT {
    pub(super) name: String,
    #[serde(default)]
    pub(super) bind: Vec<Spanned<String>>,
    /// Every bind of this frontend expects a PROXY protocol header (HAProxy: `accept-proxy`).
    pub(super) accept_proxy: Option<bool>,
    /// IPv6 wildcard binds also take IPv4 clients (HAProxy: `v4v6`).
    pub(super) v4v6: Option<bool>,
    /// TLS listeners of this frontend (HAProxy: `bind ... ssl crt <pem>`).
    pub(super) tls: Option<Spanned<BindTlsT>>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) maxconn: Option<u32>,
    #[serde(default)]
    pub(super) timeout: TimeoutsT,
    pub(super) log: Option<ProxyLogT>,
    pub(super) keepalive: Option<KeepaliveT>,
    pub(super) initial_frame_max: Option<Spanned<u32>>,
    pub(super) rate_limit: Option<RateLimitT>,
    /// `acl`, `tcp-request` and `use_backend` lines in HAProxy syntax (see `toml_rules`).
    pub(super) rules: Option<Spanned<Vec<String>>>,
    pub(super) terminate: Option<TerminateT>,
    pub(super) http: Option<super::http::HttpT>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackendT {
    pub(super) name: String,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) balance: Option<Spanned<String>>,
    /// `"consistent"` (default) or `"map-based"` (HAProxy: `hash-type`).
    pub(super) hash_type: Option<Spanned<String>>,
    pub(super) retries: Option<u32>,
    pub(super) redispatch: Option<bool>,
    #[serde(default)]
    pub(super) timeout: TimeoutsT,
    pub(super) log: Option<ProxyLogT>,
    pub(super) keepalive: Option<KeepaliveT>,
    /// `"tcp"`, `"amqp"`, or a table with a `type` (see [`Builder::check`]).
    pub(super) check: Option<Spanned<toml::Value>>,
    pub(super) http: Option<super::http::HttpT>,
    /// `{ size = 100000, expire = "30m" }` (HAProxy: `stick-table` + `stick on src`).
    pub(super) stick: Option<Spanned<StickT>>,
    pub(super) persist: Option<bool>,
    pub(super) rebalance: Option<Spanned<RebalanceT>>,
    #[serde(default)]
    pub(super) server: Vec<Spanned<ServerT>>,
    /// `acl`, `use-server` and `tcp-request content` lines in HAProxy syntax.
    pub(super) rules: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerT {
    pub(super) name: String,
    pub(super) address: Spanned<String>,
    /// HTTP mode: this server's value of the backend's persistence cookie.
    pub(super) cookie: Option<String>,
    /// `"layer4"` or `"layer7"` (HAProxy: `observe`), with `error_limit` and `on_error`.
    pub(super) observe: Option<Spanned<String>>,
    pub(super) error_limit: Option<Spanned<u32>>,
    pub(super) on_error: Option<Spanned<String>>,
    /// HAProxy's `id`: the server's number on the stats page.
    pub(super) id: Option<Spanned<u32>>,
    pub(super) check: Option<bool>,
    /// HAProxy's `port`: health checks go to this port.
    pub(super) check_port: Option<Spanned<u16>>,
    pub(super) inter: Option<Spanned<String>>,
    pub(super) fastinter: Option<Spanned<String>>,
    pub(super) downinter: Option<Spanned<String>>,
    pub(super) rise: Option<u32>,
    pub(super) fall: Option<u32>,
    pub(super) weight: Option<u32>,
    pub(super) maxconn: Option<u32>,
    pub(super) maxqueue: Option<u32>,
    pub(super) backup: Option<bool>,
    pub(super) disabled: Option<bool>,
    pub(super) slowstart: Option<Spanned<String>>,
    pub(super) shutdown_sessions_on_down: Option<bool>,
    pub(super) shutdown_backup_sessions_on_up: Option<bool>,
    /// `"v1"` or `"v2"` (HAProxy: `send-proxy`, `send-proxy-v2`).
    pub(super) send_proxy: Option<Spanned<String>>,
    pub(super) check_send_proxy: Option<bool>,
    /// TLS towards this server (HAProxy: `ssl verify required ca-file <pem>`).
    pub(super) tls: Option<Spanned<ServerTlsT>>,
    /// HAProxy's `init-addr`, as written there: `"last,libc,none"`.
    pub(super) init_addr: Option<Spanned<String>>,
    /// The `[[resolvers]]` table that follows this server's name at run time.
    pub(super) resolvers: Option<Spanned<String>>,
    /// `"ipv4"` or `"ipv6"` (HAProxy's default).
    pub(super) resolve_prefer: Option<Spanned<String>>,
    /// HAProxy's `server-template`: servers `<name>1..N` filled from DNS answers.
    pub(super) template: Option<Spanned<super::dns::SlotsT>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BindTlsT {
    pub(super) bind: Vec<Spanned<String>>,
    pub(super) crt: Vec<String>,
    pub(super) ca_file: Option<String>,
    /// `"none"`, `"optional"` or `"required"` (client certificates).
    pub(super) verify: Option<String>,
    /// `"1.2"` or `"1.3"`.
    pub(super) min_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerTlsT {
    /// Sessions use TLS (default true; false with `checks = true` is HAProxy's `check-ssl` alone).
    pub(super) sessions: Option<bool>,
    /// Checks use TLS (default: as sessions, unless `check_port` sends them elsewhere).
    pub(super) checks: Option<bool>,
    pub(super) verify: Option<bool>,
    pub(super) ca_file: Option<String>,
    pub(super) crt: Option<String>,
    /// SNI and the name checked in the certificate.
    pub(super) name: Option<String>,
    pub(super) min_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatsT {
    pub(super) name: String,
    #[serde(default)]
    pub(super) bind: Vec<Spanned<String>>,
    /// HTTPS listeners of the page.
    pub(super) tls: Option<Spanned<BindTlsT>>,
    pub(super) uri: Option<String>,
    pub(super) refresh: Option<Spanned<String>>,
    pub(super) realm: Option<String>,
    #[serde(default)]
    pub(super) auth: Vec<AuthT>,
    pub(super) hide_version: Option<bool>,
    pub(super) admin: Option<bool>,
    /// The name and the description shown under the title (HAProxy: `stats show-node`,
    /// `stats show-desc`).
    pub(super) show_node: Option<String>,
    pub(super) show_desc: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthT {
    pub(super) user: String,
    pub(super) password: String,
}

/// `stick = { size = 100000, expire = "30m" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StickT {
    pub(super) size: u32,
    pub(super) expire: Spanned<String>,
}
