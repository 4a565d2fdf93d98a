//! The typed, validated configuration: what every other module trusts.
//!
//! Both syntaxes (HAProxy's `haproxy.cfg` and warren's TOML) end up here, and nothing
//! downstream ever sees an `Option` where a default exists: defaults are filled in by the
//! parsers, which is where HAProxy's inheritance rules (`defaults` sections) live.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use super::dns::{
    Family, Hold, InitAddr, Nameserver, Resolvers, ServerDns, Template, HOLD_KEYS,
};
pub use super::http::{
    ConnMode, CookieMode, CookiePersist, ForwardFor, HttpProxy, DEFAULT_BUFSIZE, MIN_BUFSIZE,
};
pub use super::tls::{BindOptions, BindTls, ClientVerify, MinVersion, ServerOptions, ServerTls};
pub use crate::acl::Rules;

/// A whole configuration, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub global: Global,
    /// Listeners that accept client connections and hand them to a backend.
    pub frontends: Vec<Frontend>,
    /// Server pools; a `listen` section contributes one frontend and one backend of the same name.
    pub backends: Vec<Backend>,
    /// HTTP stats pages (`listen` sections in `mode http` whose only job is `stats`).
    pub stats: Vec<StatsPage>,
    /// `resolvers` sections: the DNS servers that keep named servers up to date.
    pub resolvers: Vec<Resolvers>,
}

/// Process-wide settings (`global` section).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Global {
    /// Where logs go; `log global` in a proxy refers to these.
    pub log: Vec<LogTarget>,
    pub pidfile: Option<PathBuf>,
    /// Process-wide connection ceiling. HAProxy's default when unset is derived from the
    /// file-descriptor limit; warren uses the same 4096 that HAProxy reports on a default
    /// system (`DEFAULT_GLOBAL_MAXCONN`).
    pub maxconn: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Fork into the background after start-up.
    pub daemon: bool,
    /// Worker threads; `None` lets the runtime use one per core.
    pub nbthread: Option<usize>,
    /// How long a stop waits for sessions to end (`hard-stop-after`); `None` = 30 s.
    pub hard_stop_after: Option<Duration>,
    /// The runtime API's unix socket (`stats socket`).
    pub stats_socket: Option<StatsSocket>,
    /// `ulimit-n`: the file-descriptor limit to set at start-up instead of the one derived
    /// from `maxconn`.
    pub ulimit_n: Option<u64>,
    /// `spread-checks <0..50>`: each check interval moves at random by up to this percent.
    pub spread_checks: u32,
    /// `max-spread-checks <time>`: the first checks of a backend's servers are spread over
    /// at most this long (and at most `inter`); `None`: they all start at once.
    pub max_spread_checks: Option<Duration>,
    /// `tune.bufsize`: the largest HTTP head read; `None` = [`DEFAULT_BUFSIZE`].
    pub bufsize: Option<u32>,
    /// `chroot <dir>`: the process's root after binding and reading every file.
    pub chroot: Option<PathBuf>,
    /// `cpu-map` lines: which CPUs worker threads run on.
    pub cpu_map: Vec<super::cpu_map::CpuMap>,
    /// `node`: this instance's name on stats pages with `show-node` (the host name when
    /// unset).
    pub node: Option<String>,
    /// `description`: shown by stats pages with `show-desc`.
    pub description: Option<String>,
}

impl Global {
    /// The largest HTTP request or response head, in bytes.
    pub fn bufsize(&self) -> usize {
        self.bufsize.unwrap_or(DEFAULT_BUFSIZE) as usize
    }
}

/// `stats socket <path> [mode <octal>] [level admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSocket {
    pub path: PathBuf,
    /// File permissions of the socket: who may send commands (default 0600).
    pub mode: u32,
    /// Owner and group of the socket file (`user`, `group`); `None` keeps warren's.
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Default process-wide `maxconn` when the file gives none.
pub const DEFAULT_GLOBAL_MAXCONN: u32 = 4096;

/// Which protocol a proxy speaks to its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes pass untouched; HAProxy's `mode tcp` semantics, timeouts included.
    Tcp,
    /// Bytes pass untouched, but warren follows AMQP 0-9-1 frames (see DESIGN.md).
    Amqp,
    /// Warren ends the client's AMQP connection itself and owns the one to the node, so
    /// the client keeps its connection while its node dies, drains or is rebalanced.
    AmqpTerminate,
    /// HTTP/1.1 reverse proxy with HAProxy's `mode http` semantics (`crate::http`);
    /// also the mode of stats pages.
    Http,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Amqp => "amqp",
            Mode::AmqpTerminate => "amqp-terminate",
            Mode::Http => "http",
        }
    }

    /// Whether warren speaks AMQP in this mode (frames followed, polite closes, heartbeats
    /// as liveness), whether or not it terminates the connection.
    pub fn is_amqp(self) -> bool {
        matches!(self, Mode::Amqp | Mode::AmqpTerminate)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A syslog facility, as named in `log <address> <facility>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u8);

impl Facility {
    pub const NAMES: [&'static str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
        "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7",
    ];

    pub fn from_name(name: &str) -> Option<Facility> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Facility(i as u8))
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .get(self.0 as usize)
            .copied()
            .unwrap_or("local0")
    }
}

/// Syslog severity; the optional third word of a `log` line sets the most verbose one sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Level {
    pub const ALL: [(&'static str, Level); 8] = [
        ("emerg", Level::Emerg),
        ("alert", Level::Alert),
        ("crit", Level::Crit),
        ("err", Level::Err),
        ("warning", Level::Warning),
        ("notice", Level::Notice),
        ("info", Level::Info),
        ("debug", Level::Debug),
    ];

    pub fn from_name(name: &str) -> Option<Level> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map(|(n, _)| *n)
            .unwrap_or("info")
    }
}

/// Where one `log` line sends messages.
#[derive(Debug, Clone, PartialEq)]
pub enum LogDestination {
    /// Syslog over UDP.
    Udp(SocketAddr),
    /// `log stderr`.
    Stderr,
    /// `log stdout`.
    Stdout,
    /// A local file (warren extension: HAProxy would need rsyslog for this).
    File(PathBuf),
}

/// How a syslog line is framed (`log ... format <name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, HAProxy's default.
    Rfc3164,
    /// `<PRI>1 ISO-TIMESTAMP host tag pid - - msg`.
    Rfc5424,
    /// `<PRI>msg`, for systemd/stderr collectors.
    Short,
    /// The message alone.
    Raw,
    /// `ISO-TIMESTAMP msg` (the cluster script's `log stderr format iso`).
    Iso,
}

impl LogFormat {
    pub const ALL: [(&'static str, LogFormat); 5] = [
        ("rfc3164", LogFormat::Rfc3164),
        ("rfc5424", LogFormat::Rfc5424),
        ("short", LogFormat::Short),
        ("raw", LogFormat::Raw),
        ("iso", LogFormat::Iso),
    ];

    pub fn from_name(name: &str) -> Option<LogFormat> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("rfc3164")
    }
}

/// One `log` line, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct LogTarget {
    pub destination: LogDestination,
    pub format: LogFormat,
    pub facility: Facility,
    /// Messages more verbose than this are not sent.
    pub max_level: Level,
}

/// The timeouts HAProxy knows for a TCP proxy. `None` means "no timeout" (HAProxy warns
/// about that at start-up, and so does warren).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// Inactivity on the client side.
    pub client: Option<Duration>,
    /// Inactivity on the server side.
    pub server: Option<Duration>,
    /// Time allowed for one TCP connect to a server.
    pub connect: Option<Duration>,
    /// Time a connection may wait for a free server slot.
    pub queue: Option<Duration>,
    /// Extra time a health check may take to answer once connected (HAProxy: `timeout check`;
    /// when unset, `inter` bounds the whole check).
    pub check: Option<Duration>,
    /// Replaces `client` and `server` once both sides are connected.
    pub tunnel: Option<Duration>,
    /// Inactivity allowed after the client half-closed.
    pub client_fin: Option<Duration>,
    /// Inactivity allowed after the server half-closed.
    pub server_fin: Option<Duration>,
    /// AMQP mode: time a client has to complete the handshake (from accept to
    /// `connection.open`); `None` means [`DEFAULT_HANDSHAKE_TIMEOUT`], RabbitMQ's own.
    pub handshake: Option<Duration>,
    /// HAProxy's `timeout client-hs`: time a client has for the connection-level handshake
    /// before any application byte, i.e. the PROXY protocol header of `accept-proxy`
    /// (and a TLS handshake, where one is terminated). `None`: `timeout client` applies,
    /// as in HAProxy.
    pub client_hs: Option<Duration>,
    /// `amqp-terminate` mode: how long a client may be held while its session moves to
    /// another node; `None` means [`DEFAULT_FAILOVER_TIMEOUT`].
    pub failover: Option<Duration>,
    /// HTTP mode: time a client has to send a complete request head (408 after it).
    /// `None`: `timeout client` applies, as in HAProxy.
    pub http_request: Option<Duration>,
    /// HTTP mode: how long a kept-alive client connection may wait for its next request.
    /// `None`: `timeout http-request`, else `timeout client`, as in HAProxy.
    pub http_keep_alive: Option<Duration>,
}

/// `timeout failover` when unset.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// `amqp-terminate` mode settings of a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminate {
    /// `option amqp-terminate lenient`: exclusive and auto-delete queues are declared
    /// again on the new node (and the log says so) instead of ending the session with 320.
    pub lenient: bool,
    /// `amqp-publish-buffer`: bytes of unconfirmed publishes warren keeps per client for
    /// republishing after a move; past it warren stops reading from the client until the
    /// node confirms (back-pressure, never a drop).
    pub publish_buffer: u64,
}

/// `amqp-publish-buffer` when unset: enough for a few thousand small messages in flight.
pub const DEFAULT_PUBLISH_BUFFER: u64 = 4 * 1024 * 1024;

impl Default for Terminate {
    fn default() -> Terminate {
        Terminate {
            lenient: false,
            publish_buffer: DEFAULT_PUBLISH_BUFFER,
        }
    }
}

/// RabbitMQ's `handshake_timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest frame an AMQP client may send before `tune-ok` negotiates `frame_max`:
/// RabbitMQ's `initial_frame_max` default (its `FRAME_MIN_SIZE`: 8192 since 4.1, raised
/// from 4096 for large JWT tokens in `start-ok`).
pub const DEFAULT_INITIAL_FRAME_MAX: u32 = 8192;

/// The bounds of `amqp-initial-frame-max`: the spec's `frame-min-size`, and a ceiling that
/// keeps what one handshaking client can make warren hold small.
pub const INITIAL_FRAME_MAX_RANGE: std::ops::RangeInclusive<u32> = 4096..=1024 * 1024;

/// How fast a frontend takes new sessions. Both off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// HAProxy's `rate-limit sessions`: at most this many new sessions per second; above
    /// it warren stops accepting for a while (clients wait in the kernel's backlog, they
    /// are not refused).
    pub sessions: Option<u32>,
    /// warren's `rate-limit sessions-per-source`: at most this many new sessions per second
    /// from one client address; more are refused (closed at once) and logged.
    pub per_source: Option<u32>,
}

/// TCP keep-alive on one side's sockets (`option clitcpka`/`srvtcpka`/`tcpka` and
/// `clitcpka-idle` …). In AMQP mode keep-alive is always on: it is how a dead peer is
/// found when heartbeats are off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keepalive {
    pub enabled: bool,
    /// Idle time before the first probe; `None` = the system's (or, in AMQP mode, 30 s).
    pub idle: Option<Duration>,
    /// Between probes; `None` = the system's (AMQP mode: 10 s).
    pub interval: Option<Duration>,
    /// Unanswered probes before the peer is declared dead; `None` = the system's (AMQP: 3).
    pub count: Option<u32>,
}

/// Warren extension: shed sessions from over-loaded servers after a node comes back, so
/// the spread returns to the weights (AMQP mode; sessions get `connection.close` 320).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebalance {
    /// Over how long the excess is shed.
    pub window: Duration,
    /// At most this many sessions closed per step.
    pub batch: u32,
}

/// An HTTP health check (`option httpchk` / `http-check`), typically against RabbitMQ's
/// management API on the server's `port`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub method: String,
    pub uri: String,
    /// Extra request headers (`http-check send hdr Authorization "Basic ..."`).
    pub headers: Vec<(String, Secret)>,
    /// Statuses that pass (`http-check expect status 200`); empty means any 2xx or 3xx,
    /// HAProxy's default (and, with a body expectation, any status).
    pub expect_status: Vec<u16>,
    /// `http-check expect string <text>` / `rstring <regex>`: the body must contain it.
    pub expect_body: Option<BodyExpect>,
}

/// What an HTTP check's response body must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyExpect {
    /// `string <text>`: the body contains the text.
    Contains(String),
    /// `rstring <regex>`: the regex matches somewhere in the body.
    Matches(super::rules::Pattern),
}

/// One `bind` address.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub addr: SocketAddr,
    /// `accept-proxy`: clients must start with a PROXY protocol header (warren behind
    /// another load balancer); its address is the client's for balancing and logs.
    pub accept_proxy: bool,
    /// `ssl crt <pem>`: clients speak TLS (AMQPS); warren terminates it.
    pub tls: Option<BindTls>,
    /// `v4v6`: an IPv6 wildcard also takes IPv4 clients (IPV6_V6ONLY off); otherwise
    /// warren's IPv6 listeners are IPv6-only (`v6only`).
    pub v4v6: bool,
}

/// Which PROXY protocol version to send to a server (`send-proxy`, `send-proxy-v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    V1,
    V2,
}

/// Per-proxy logging switches (`option tcplog`, `option dontlognull`, `log global`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyLog {
    /// Where this proxy logs; empty means it does not log sessions.
    pub targets: Vec<LogTarget>,
    /// `option tcplog`: the detailed per-session line instead of the short one.
    pub tcplog: bool,
    /// `option dontlognull`: sessions that carried no data are not logged.
    pub dontlognull: bool,
    /// `option httplog`: in HTTP mode, one line per request in HAProxy's httplog format
    /// (in tcp mode it falls back to `tcplog`, which is then also set).
    pub httplog: bool,
    /// `option log-health-checks`: log every check result change, not only UP/DOWN.
    pub health_checks: bool,
    /// `option log-separate-errors`: session lines that end in an error (a cause other
    /// than a normal close) are sent at level `err` instead of `info`.
    pub separate_errors: bool,
    /// `option logasap`: a session's line is written once its server is reached, not
    /// when it ends (long AMQP sessions show up in the logs at once).
    pub logasap: bool,
    /// `option dontlog-normal`: only sessions that end in an error are logged.
    pub dontlog_normal: bool,
}

/// A listener that takes client connections.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    pub name: String,
    pub binds: Vec<Bind>,
    pub mode: Mode,
    /// Simultaneous client connections this frontend accepts; further clients wait in the
    /// kernel's accept backlog, as in HAProxy.
    pub maxconn: u32,
    /// Index into `Config::backends`.
    pub default_backend: Option<usize>,
    pub timeouts: Timeouts,
    pub log: ProxyLog,
    /// Keep-alive on client sockets.
    pub keepalive: Keepalive,
    /// AMQP mode: the frame size a client may send before `tune-ok`
    /// (`amqp-initial-frame-max`; default [`DEFAULT_INITIAL_FRAME_MAX`]).
    pub initial_frame_max: u32,
    pub rate_limit: RateLimit,
    /// `amqp-terminate` mode settings (defaults elsewhere).
    pub terminate: Terminate,
    /// `acl`, `tcp-request`, `use_backend`: empty when the frontend has none.
    pub rules: Rules,
    /// HTTP mode settings (ignored in the other modes).
    pub http: HttpProxy,
}

/// How a backend picks a server for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Smooth weighted round robin; weights may change at run time.
    RoundRobin,
    /// Weighted round robin fixed at start-up.
    StaticRr,
    /// Fewest active connections, weighted; ties broken round-robin.
    LeastConn,
    /// The first server (by id order) with a free slot.
    First,
    /// A consistent hash of the client address.
    Source,
    /// Power of two random choices, the less loaded wins.
    Random,
}

impl Algorithm {
    pub const ALL: [(&'static str, Algorithm); 6] = [
        ("roundrobin", Algorithm::RoundRobin),
        ("static-rr", Algorithm::StaticRr),
        ("leastconn", Algorithm::LeastConn),
        ("first", Algorithm::First),
        ("source", Algorithm::Source),
        ("random", Algorithm::Random),
    ];

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("roundrobin")
    }
}

/// How `balance source` maps a client's hash to a server (`hash-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashType {
    /// Removing a server moves only its own clients (warren's default: fewer reconnects
    /// when a RabbitMQ node leaves).
    #[default]
    Consistent,
    /// HAProxy's default: the hash modulo the total weight of the available servers; any
    /// change in that set moves most clients.
    MapBased,
}

impl HashType {
    pub fn name(self) -> &'static str {
        match self {
            HashType::Consistent => "consistent",
            HashType::MapBased => "map-based",
        }
    }
}

/// What an active health check does.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// A TCP connect that succeeds is a pass (HAProxy's default `check`).
    Tcp,
    /// `option amqp-check`: send the AMQP protocol header, expect `connection.start`
    /// within `timeout check`. Catches a frozen node, which still accepts TCP.
    Amqp,
    /// `option amqp-check user U password P [vhost V]`: the full handshake up to
    /// `connection.open-ok`, then a clean `connection.close`.
    AmqpLogin {
        user: String,
        password: Secret,
        vhost: String,
    },
    /// `option httpchk`: an HTTP request, typically to the management API.
    Http(HttpCheck),
    /// `option tcp-check` with its `tcp-check` rules (none: a connect check).
    TcpCheck(super::tcp_check::TcpCheck),
}

/// A pool of servers and the rules for reaching them.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub name: String,
    pub mode: Mode,
    pub balance: Algorithm,
    /// `hash-type`: how `balance source` spreads clients.
    pub hash_type: HashType,
    pub servers: Vec<Server>,
    /// Extra connect attempts after the first fails (`retries`, default 3).
    pub retries: u32,
    /// `option redispatch`: a retry may go to another server.
    pub redispatch: bool,
    pub timeouts: Timeouts,
    pub check: CheckKind,
    pub log: ProxyLog,
    /// Keep-alive on server sockets.
    pub keepalive: Keepalive,
    pub rebalance: Option<Rebalance>,
    /// `use-server`, and `tcp-request content` rules applied once this backend is chosen.
    pub rules: Rules,
    /// HTTP mode settings (ignored in the other modes).
    pub http: HttpProxy,
    /// `stick-table type ip size <n> expire <t>` with `stick on src`: clients go back to
    /// the server they last used.
    pub stick: Option<Stick>,
    /// `option persist`: a client stuck to a server that is DOWN still tries it first
    /// (a failed connect then retries elsewhere with `option redispatch`).
    pub persist: bool,
}

/// Client stickiness by source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stick {
    /// Entries kept at most (HAProxy's `size`, with its k/m suffixes).
    pub size: u32,
    /// How long an entry lives after its last use (HAProxy's `expire`).
    pub expire: Duration,
}

/// Defaults of the server-line keywords, as in HAProxy.
pub mod server_defaults {
    use std::time::Duration;
    pub const INTER: Duration = Duration::from_millis(2000);
    pub const RISE: u32 = 2;
    pub const FALL: u32 = 3;
    pub const WEIGHT: u32 = 1;
    pub const MAX_WEIGHT: u32 = 256;
}

/// One `server` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    /// The address at start-up: an IP as written, or what `init-addr` found for a name
    /// (`0.0.0.0:<port>` when nothing did: see `dns`). At run time the live address is
    /// `ServerState::addr`, which a `resolvers` section may change.
    pub addr: SocketAddr,
    /// `port`: health checks go to this port instead (e.g. the management API's 15672).
    pub check_port: Option<u16>,
    /// Run active health checks.
    pub check: bool,
    /// Interval between checks while the server is stably UP.
    pub inter: Duration,
    /// Interval while the state is changing (some checks failed or passed); default `inter`.
    pub fastinter: Duration,
    /// Interval while DOWN; default `inter`.
    pub downinter: Duration,
    /// Consecutive passes that bring a DOWN server UP.
    pub rise: u32,
    /// Consecutive failures that take an UP server DOWN.
    pub fall: u32,
    /// 0..=256; 0 takes the server out of balancing without marking it down.
    pub weight: u32,
    /// Concurrent connections to this server; 0 means unlimited.
    pub maxconn: u32,
    /// Connections that may wait for this server; 0 means unlimited.
    pub maxqueue: u32,
    /// Used only when no active server is usable.
    pub backup: bool,
    /// Starts in maintenance (`disabled`).
    pub disabled: bool,
    /// Time over which a server coming UP ramps its weight from 0 to full.
    pub slowstart: Option<Duration>,
    /// `on-marked-down shutdown-sessions`: close this server's sessions when it goes DOWN.
    pub shutdown_on_down: bool,
    /// `on-marked-up shutdown-backup-sessions`: when this active server comes UP, close
    /// the sessions on backup servers so clients come back to it.
    pub shutdown_backup_on_up: bool,
    /// `send-proxy` / `send-proxy-v2`: start every connection with a PROXY header, so the
    /// node (RabbitMQ with `proxy_protocol = true`) sees the real client.
    pub send_proxy: Option<ProxyProtocol>,
    /// `check-send-proxy`: health checks send the header too (a node that requires it
    /// refuses connections without one).
    pub check_send_proxy: bool,
    /// How warren speaks TLS to this server, and whether sessions and checks use it;
    /// `None` when neither does.
    pub tls: Option<ServerTls>,
    /// HTTP mode: this server's value of the backend's persistence cookie (`cookie <v>`).
    pub cookie: Option<String>,
    /// `observe layer4|layer7`: judge the server by its live traffic too.
    pub observe: Option<Observe>,
    /// `id <n>`: the server's number in its backend (`sid` on the stats page), which
    /// monitoring keys on; the free numbers from 1 go to servers without one.
    pub id: Option<u32>,
    /// A server written with a name: how it was resolved at start-up and whether a
    /// `resolvers` section follows it; `None` for an IP address.
    pub dns: Option<ServerDns>,
}

/// The number each server of a backend shows (`sid`): its `id`, or else HAProxy's
/// automatic one: a counter that moves one step per server line (with an `id` or not)
/// gives the first number at or above it that no server has taken.
pub fn server_ids(ids: &[Option<u32>]) -> Vec<u32> {
    let mut taken: std::collections::HashSet<u32> = ids.iter().flatten().copied().collect();
    let mut next = 1;
    ids.iter()
        .map(|id| {
            let sid = id.unwrap_or_else(|| {
                while taken.contains(&next) {
                    next += 1;
                }
                taken.insert(next);
                next
            });
            next += 1;
            sid
        })
        .collect()
}

/// HAProxy's health analysis (`observe`, `error-limit`, `on-error`): `error_limit`
/// consecutive errors in live traffic trigger `on_error`; a success resets the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observe {
    pub layer: ObserveLayer,
    pub error_limit: u32,
    pub on_error: OnError,
}

/// What live traffic counts: connects (`layer4`), and in `mode http` responses too
/// (`layer7`: a 5xx other than 501 and 505, or no valid response, is an error; only a
/// good response resets the count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserveLayer {
    Layer4,
    Layer7,
}

impl ObserveLayer {
    pub fn name(self) -> &'static str {
        match self {
            ObserveLayer::Layer4 => "layer4",
            ObserveLayer::Layer7 => "layer7",
        }
    }
}

/// `on-error`: what `error-limit` consecutive errors do. Every one also checks again at
/// `fastinter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Only check again sooner.
    FastInter,
    /// Count as one failed check (HAProxy's default).
    #[default]
    FailCheck,
    /// Leave the server one failed check away from DOWN, and count this one.
    SuddenDeath,
    /// DOWN at once.
    MarkDown,
}

impl OnError {
    pub const NAMES: [&'static str; 4] = ["fastinter", "fail-check", "sudden-death", "mark-down"];

    pub fn parse(word: &str) -> Option<OnError> {
        Some(match word {
            "fastinter" => OnError::FastInter,
            "fail-check" => OnError::FailCheck,
            "sudden-death" => OnError::SuddenDeath,
            "mark-down" => OnError::MarkDown,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            OnError::FastInter => "fastinter",
            OnError::FailCheck => "fail-check",
            OnError::SuddenDeath => "sudden-death",
            OnError::MarkDown => "mark-down",
        }
    }
}

/// HAProxy's `error-limit` default.
pub const DEFAULT_ERROR_LIMIT: u32 = 10;

/// Credentials for a stats page; the password is masked in `Debug` so it never reaches a log.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

/// One `stats auth user:password`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsUser {
    pub user: String,
    pub password: Secret,
}

/// A stats page (`listen admin_stats` in the report).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPage {
    pub name: String,
    pub binds: Vec<Bind>,
    /// `stats uri`; HAProxy's default (`/haproxy?stats`) when unset, so tooling finds it.
    pub uri: String,
    /// `stats refresh`: the page reloads itself this often.
    pub refresh: Option<Duration>,
    /// `stats realm`: the basic-auth realm shown by browsers.
    pub realm: String,
    /// Empty means the page is public.
    pub users: Vec<StatsUser>,
    /// `stats hide-version`.
    pub hide_version: bool,
    /// `stats admin if TRUE`: authenticated users may change server states.
    pub admin: bool,
    /// `stats show-node`: the instance's name under the title.
    pub node: Option<String>,
    /// `stats show-desc`: a description under the title.
    pub description: Option<String>,
}

/// HAProxy's default stats URI.
pub const DEFAULT_STATS_URI: &str = "/haproxy?stats";

#[cfg(test)]
mod tests {
    use super::server_ids;

    #[test]
    fn servers_without_an_id_are_numbered_as_haproxy_numbers_them() {
        assert_eq!(server_ids(&[None, None, None]), [1, 2, 3]);
        assert_eq!(server_ids(&[None, Some(1), None, Some(3)]), [2, 1, 4, 3]);
        // The counter moves past servers with an id too (HAProxy's rule).
        assert_eq!(server_ids(&[Some(10), None]), [10, 2]);
        assert_eq!(server_ids(&[None, Some(1), Some(7), None]), [2, 1, 7, 5]);
    }
}
