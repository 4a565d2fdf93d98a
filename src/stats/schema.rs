//! One schema of fields, HAProxy's `show stat` (as Debian's HAProxy 2.6 prints it, read
//! off `show stat` on this project's machines), rendered as CSV, JSON, HTML and Prometheus.
//! Rows come in HAProxy's order: per proxy, its FRONTEND, its servers, its BACKEND.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use crate::state::Generation;
use crate::state::{AdminState, BackendState, FrontendState, ServerState};

/// HAProxy 2.6's `show stat` columns, in order (the general ones), then warren's own
/// (`amqp-terminate` mode), where HAProxy puts its per-module statistics.
pub const FIELDS: [&str; 103] = [
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    // warren: sessions moved to another node, moves that failed (320), messages published
    // again after moves, clients held right now while their session moves.
    "amqp_moves",
    "amqp_moves_failed",
    "amqp_republished",
    "amqp_held",
];

/// What a row describes (HAProxy's `type` column: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend,
    Backend,
    Server,
}

/// One row: a value (possibly empty) per field.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: Kind,
    values: Vec<String>,
}

impl Row {
    fn new(kind: Kind, pxname: &str, svname: &str) -> Row {
        let mut row = Row {
            kind,
            values: vec![String::new(); FIELDS.len()],
        };
        row.set("pxname", pxname);
        row.set("svname", svname);
        row.set("type", kind as u8);
        row.set("pid", 1);
        row
    }

    fn set(&mut self, field: &str, value: impl ToString) {
        if let Some(i) = FIELDS.iter().position(|f| *f == field) {
            self.values[i] = value.to_string();
        }
    }

    pub fn get(&self, field: &str) -> &str {
        FIELDS
            .iter()
            .position(|f| *f == field)
            .map_or("", |i| self.values[i].as_str())
    }

    /// (field, value) pairs in schema order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        FIELDS
            .iter()
            .copied()
            .zip(self.values.iter().map(String::as_str))
    }
}

/// Every row of the current state.
pub fn rows(generation: &Generation) -> Vec<Row> {
    let now = Instant::now();
    let mut rows = Vec::new();
    // Proxies in configuration order; a `listen` is a frontend and a backend of one name.
    let mut names: Vec<&str> = Vec::new();
    for name in generation
        .frontends
        .iter()
        .map(|f| f.config.name.as_str())
        .chain(generation.backends.iter().map(|b| b.name()))
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for (iid, name) in names.iter().enumerate() {
        if let Some(fe) = generation.frontend(name) {
            rows.push(frontend_row(fe, iid + 1));
        }
        if let Some(be) = generation.backend(name) {
            let ids: Vec<Option<u32>> = be.servers.iter().map(|s| s.config.id).collect();
            for (server, sid) in be.servers.iter().zip(crate::config::server_ids(&ids)) {
                rows.push(server_row(be, server, iid + 1, sid as usize, now));
            }
            rows.push(backend_row(be, iid + 1, now));
        }
    }
    rows
}

fn frontend_row(fe: &FrontendState, iid: usize) -> Row {
    let c = &fe.counters;
    let mut r = Row::new(Kind::Frontend, &fe.config.name, "FRONTEND");
    r.set("scur", c.current.load(Ordering::Relaxed));
    r.set("smax", c.max.load(Ordering::Relaxed));
    r.set("slim", fe.config.maxconn);
    r.set("stot", c.total.load(Ordering::Relaxed));
    r.set("bin", c.bytes_in.load(Ordering::Relaxed));
    r.set("bout", c.bytes_out.load(Ordering::Relaxed));
    r.set("status", "OPEN");
    r.set("iid", iid);
    r.set("sid", 0);
    r.set("mode", fe.config.mode.as_str());
    r.set("conn_tot", c.total.load(Ordering::Relaxed));
    r.set("rate", fe.session_rate());
    r.set("rate_max", c.rate_max.load(Ordering::Relaxed));
    if let Some(limit) = fe.config.rate_limit.sessions {
        r.set("rate_lim", limit);
    }
    r.set("dcon", c.denied.load(Ordering::Relaxed));
    if fe.config.mode == crate::config::Mode::AmqpTerminate {
        r.set("amqp_moves", c.moves.load(Ordering::Relaxed));
        r.set("amqp_moves_failed", c.moves_failed.load(Ordering::Relaxed));
        r.set("amqp_republished", c.republished.load(Ordering::Relaxed));
        r.set("amqp_held", c.held.load(Ordering::Relaxed));
    }
    r.set("dses", c.denied_sessions.load(Ordering::Relaxed));
    r.set("dreq", c.denied_requests.load(Ordering::Relaxed));
    if fe.config.mode == crate::config::Mode::Http {
        http_fields(&mut r, &c.http);
        r.set("req_rate", c.http.rate().unwrap_or(0));
        r.set("req_rate_max", c.http.rate_max.load(Ordering::Relaxed));
    }
    r
}

/// HTTP mode: responses by status class and requests (`hrsp_*`, `req_tot`).
fn http_fields(r: &mut Row, c: &crate::state::HttpCounters) {
    const CLASSES: [&str; 6] = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ];
    for (field, n) in CLASSES.iter().zip(c.by_class()) {
        r.set(field, n);
    }
    r.set("req_tot", c.requests.load(Ordering::Relaxed));
}

/// HAProxy's status text for a server.
pub fn server_status(s: &ServerState) -> String {
    if s.address.in_maint() && s.admin() != AdminState::Maint {
        return "MAINT (resolution)".into();
    }
    match s.admin() {
        AdminState::Maint => return "MAINT".into(),
        AdminState::Drain if s.is_up() => return "DRAIN".into(),
        _ => {}
    }
    if !s.config.check {
        return if s.weight() == 0 {
            "NOLB".into()
        } else {
            "no check".into()
        };
    }
    let text = s.health().state.status_text();
    if s.is_up() && s.weight() == 0 {
        "NOLB".into()
    } else {
        text
    }
}

fn server_row(be: &BackendState, s: &ServerState, iid: usize, sid: usize, now: Instant) -> Row {
    let c = &s.counters;
    let mut r = Row::new(Kind::Server, be.name(), s.name());
    r.set("qcur", 0);
    r.set("qmax", 0);
    r.set("scur", c.current.load(Ordering::Relaxed));
    r.set("smax", c.max.load(Ordering::Relaxed));
    if s.config.maxconn > 0 {
        r.set("slim", s.config.maxconn);
    }
    r.set("stot", c.total.load(Ordering::Relaxed));
    r.set("bin", c.bytes_in.load(Ordering::Relaxed));
    r.set("bout", c.bytes_out.load(Ordering::Relaxed));
    r.set("econ", c.connect_errors.load(Ordering::Relaxed));
    r.set("wretr", c.retries.load(Ordering::Relaxed));
    r.set("wredis", c.redispatches.load(Ordering::Relaxed));
    // As HAProxy: only a server under `observe` has the column.
    if s.config.observe.is_some() {
        r.set("hanafail", c.failed_hana.load(Ordering::Relaxed));
    }
    r.set("status", server_status(s));
    r.set("weight", s.effective_weight());
    r.set("uweight", s.weight());
    r.set("act", u8::from(!s.config.backup));
    r.set("bck", u8::from(s.config.backup));
    r.set("iid", iid);
    r.set("sid", sid);
    r.set("lbtot", c.total.load(Ordering::Relaxed));
    r.set("addr", s.addr());
    r.set("mode", be.config.mode.as_str());
    if s.config.maxqueue > 0 {
        r.set("qlimit", s.config.maxqueue);
    }
    if s.config.check {
        let h = s.health();
        r.set("chkfail", h.failed_checks);
        r.set("chkdown", h.down_transitions);
        r.set(
            "lastchg",
            now.saturating_duration_since(h.last_change).as_secs(),
        );
        r.set("downtime", h.downtime_at(now).as_secs());
        let (health, rise, fall) = h.state.counters();
        r.set("check_rise", rise);
        r.set("check_fall", fall);
        r.set("check_health", health);
        if let Some(last) = &h.last_check {
            r.set("check_status", last.status.code());
            r.set("check_duration", last.duration.as_millis());
            r.set("check_desc", last.status.description());
            r.set("last_chk", &last.info);
        }
    }
    if let Some(reason) = s.address.maint_reason() {
        // Why DNS keeps it out, where the page shows check details.
        r.set("last_chk", reason);
    }
    if be.config.mode == crate::config::Mode::Http {
        http_fields(&mut r, &c.http);
    }
    let w = s.effective_weight();
    if w < s.weight() && s.weight() > 0 {
        r.set("throttle", u64::from(w) * 100 / u64::from(s.weight()));
    }
    r
}

fn backend_row(be: &BackendState, iid: usize, now: Instant) -> Row {
    let mut r = Row::new(Kind::Backend, be.name(), "BACKEND");
    let sum = |f: &dyn Fn(&ServerState) -> u64| be.servers.iter().map(|s| f(s)).sum::<u64>();
    let (active, backup) = be.usable_counts();
    r.set("qcur", be.counters.queued.load(Ordering::Relaxed));
    r.set("qmax", be.counters.queue_max.load(Ordering::Relaxed));
    r.set(
        "scur",
        sum(&|s| u64::from(s.counters.current.load(Ordering::Relaxed))),
    );
    r.set(
        "smax",
        sum(&|s| u64::from(s.counters.max.load(Ordering::Relaxed))),
    );
    r.set("stot", be.counters.total.load(Ordering::Relaxed));
    r.set("bin", sum(&|s| s.counters.bytes_in.load(Ordering::Relaxed)));
    r.set(
        "bout",
        sum(&|s| s.counters.bytes_out.load(Ordering::Relaxed)),
    );
    r.set(
        "econ",
        sum(&|s| s.counters.connect_errors.load(Ordering::Relaxed)),
    );
    r.set(
        "wretr",
        sum(&|s| s.counters.retries.load(Ordering::Relaxed)),
    );
    r.set(
        "wredis",
        sum(&|s| s.counters.redispatches.load(Ordering::Relaxed)),
    );
    r.set("status", if active + backup > 0 { "UP" } else { "DOWN" });
    r.set(
        "weight",
        be.servers
            .iter()
            .filter(|s| s.usable())
            .map(|s| u64::from(s.effective_weight()))
            .sum::<u64>(),
    );
    r.set("act", active);
    r.set("bck", backup);
    r.set("chkdown", sum(&|s| s.health().down_transitions));
    r.set(
        "downtime",
        be.servers
            .iter()
            .map(|s| s.health().downtime_at(now).as_secs())
            .min()
            .unwrap_or(0),
    );
    r.set("iid", iid);
    r.set("sid", 0);
    r.set("lbtot", be.counters.total.load(Ordering::Relaxed));
    r.set("mode", be.config.mode.as_str());
    r.set("algo", be.config.balance.name());
    if be.config.mode == crate::config::Mode::Http {
        http_fields(&mut r, &be.counters.http);
    }
    r
}

/// The CSV of `show stat` / `;csv`: a `# `-prefixed header, one line per row, trailing commas
/// as HAProxy prints them.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::with_capacity(256 * (rows.len() + 1));
    out.push_str("# ");
    for f in FIELDS {
        out.push_str(f);
        out.push(',');
    }
    out.push('\n');
    for row in rows {
        for (_, v) in row.fields() {
            // Values never hold a comma except free text; keep the column count exact.
            out.push_str(&v.replace(',', ";"));
            out.push(',');
        }
        out.push('\n');
    }
    out
}
