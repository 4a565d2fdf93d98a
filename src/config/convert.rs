//! Prints a [`Config`] as a complete warren TOML file (`warren convert`).
//!
//! Every value is written out, defaults included, so the file says exactly what runs and
//! loads back to an identical model. Only absent optional values (a timeout that is not set,
//! no pidfile) are left out, since TOML has no null. Durations use the largest exact unit.

use std::fmt::Write;
use std::time::Duration;

use super::duration;
use super::model::*;

/// The TOML text for `config`.
pub fn to_toml(config: &Config) -> String {
    let mut out = String::new();
    global(&mut out, &config.global);
    for f in &config.frontends {
        frontend(&mut out, f, config);
    }
    for b in &config.backends {
        backend(&mut out, b, &config.global);
    }
    for s in &config.stats {
        stats(&mut out, s);
    }
    userlists(&mut out, config);
    super::convert_dns::resolvers(&mut out, config);
    out
}

/// A TOML basic string, escaped.
fn q(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn d(duration: Duration) -> String {
    q(&duration::format(duration))
}

fn global(out: &mut String, g: &Global) {
    out.push_str("[global]\n");
    let _ = writeln!(out, "maxconn = {}", g.maxconn);
    let _ = writeln!(out, "daemon = {}", g.daemon);
    if let Some(n) = &g.node {
        let _ = writeln!(out, "node = {}", q(n));
    }
    if let Some(d) = &g.description {
        let _ = writeln!(out, "description = {}", q(d));
    }
    if let Some(p) = &g.pidfile {
        let _ = writeln!(out, "pidfile = {}", q(&p.display().to_string()));
    }
    if let Some(u) = &g.user {
        let _ = writeln!(out, "user = {}", q(u));
    }
    if let Some(gr) = &g.group {
        let _ = writeln!(out, "group = {}", q(gr));
    }
    if let Some(n) = g.nbthread {
        let _ = writeln!(out, "nbthread = {n}");
    }
    if let Some(s) = &g.stats_socket {
        let mut owner = String::new();
        if let Some(u) = &s.user {
            owner.push_str(&format!(", user = {}", q(u)));
        }
        if let Some(g) = &s.group {
            owner.push_str(&format!(", group = {}", q(g)));
        }
        let _ = writeln!(
            out,
            "stats_socket = {{ path = {}, mode = \"{:o}\"{owner} }}",
            q(&s.path.display().to_string()),
            s.mode
        );
    }
    if let Some(n) = g.ulimit_n {
        let _ = writeln!(out, "ulimit_n = {n}");
    }
    if !g.cpu_map.is_empty() {
        let lines: Vec<String> = g.cpu_map.iter().map(|m| q(&m.text)).collect();
        let _ = writeln!(out, "cpu_map = [{}]", lines.join(", "));
    }
    if let Some(c) = &g.chroot {
        let _ = writeln!(out, "chroot = {}", q(&c.display().to_string()));
    }
    if g.spread_checks > 0 {
        let _ = writeln!(out, "spread_checks = {}", g.spread_checks);
    }
    if let Some(d) = g.max_spread_checks {
        let _ = writeln!(
            out,
            "max_spread_checks = {}",
            q(&super::duration::format(d))
        );
    }
    if let Some(d) = g.hard_stop_after {
        let _ = writeln!(out, "hard_stop_after = {}", q(&super::duration::format(d)));
    }
    let _ = writeln!(out, "log = {}", log_targets(&g.log));
    if let Some(b) = g.bufsize {
        let _ = writeln!(out, "bufsize = {b}");
    }
}

/// The `http` table, written for HTTP-mode proxies only (it means nothing elsewhere).
/// `acls_in_rules`: the proxy's `rules` list carries its `acl` lines already (one
/// namespace: they are not written twice).
fn http(out: &mut String, mode: Mode, h: &HttpProxy, acls_in_rules: bool) {
    if mode != Mode::Http {
        return;
    }
    let mut parts = vec![format!("connection = {}", q(h.connection.name()))];
    if let Some(f) = &h.forwardfor {
        let mut t = vec![format!("header = {}", q(&f.header))];
        if let Some(e) = f.except_text() {
            t.push(format!("except = {}", q(&e)));
        }
        parts.push(format!("forwardfor = {{ {} }}", t.join(", ")));
    }
    if let Some(c) = &h.cookie {
        let list = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
            )
        };
        let mut t = vec![
            format!("name = {}", q(&c.name)),
            format!("mode = {}", q(c.mode.name())),
            format!("indirect = {}", c.indirect),
            format!("nocache = {}", c.nocache),
            format!("postonly = {}", c.postonly),
            format!("preserve = {}", c.preserve),
            format!("httponly = {}", c.httponly),
            format!("secure = {}", c.secure),
            format!("domains = {}", list(&c.domains)),
            format!("attrs = {}", list(&c.attrs)),
        ];
        if let Some(v) = c.maxidle {
            t.push(format!("maxidle = {}", d(v)));
        }
        if let Some(v) = c.maxlife {
            t.push(format!("maxlife = {}", d(v)));
        }
        parts.push(format!("cookie = {{ {} }}", t.join(", ")));
    }
    let r = &h.rules;
    let strings = |v: &mut dyn Iterator<Item = &String>| {
        format!("[{}]", v.map(|s| q(s)).collect::<Vec<_>>().join(", "))
    };
    if !r.acls.is_empty() && !acls_in_rules {
        parts.push(format!("acl = {}", strings(&mut r.acls.iter())));
    }
    if !r.request.is_empty() {
        parts.push(format!(
            "request = {}",
            strings(&mut r.request.iter().map(|x| &x.text))
        ));
    }
    if !r.response.is_empty() {
        parts.push(format!(
            "response = {}",
            strings(&mut r.response.iter().map(|x| &x.text))
        ));
    }
    if let Some(m) = &r.monitor_uri {
        parts.push(format!("monitor_uri = {}", q(m)));
    }
    if !r.errorfiles.is_empty() {
        let files: Vec<String> = r
            .errorfiles
            .iter()
            .map(|(code, _, file)| format!("{{ status = {code}, file = {} }}", q(file)))
            .collect();
        parts.push(format!("errorfiles = [{}]", files.join(", ")));
    }
    let _ = writeln!(out, "http = {{ {} }}", parts.join(", "));
}

/// The userlists the rules name, once each, as `[[userlist]]` tables.
fn userlists(out: &mut String, config: &Config) {
    use super::rules::Password;
    use crate::acl::Fetch;
    let mut seen: Vec<&super::rules::Userlist> = Vec::new();
    let http = config
        .frontends
        .iter()
        .map(|f| &f.http.rules)
        .chain(config.backends.iter().map(|b| &b.http.rules))
        .flat_map(|r| r.request.iter().chain(&r.response))
        .filter_map(|rule| rule.condition.as_ref());
    // `http_auth()` may also decide `use_backend`, `use-server` and `tcp-request` rules.
    let tcp = config
        .frontends
        .iter()
        .map(|f| &f.rules)
        .chain(config.backends.iter().map(|b| &b.rules))
        .flat_map(|r| {
            let stages = r.connection.iter().chain(&r.session).chain(&r.content);
            stages
                .filter_map(|x| x.cond.as_ref())
                .chain(r.use_backend.iter().filter_map(|u| u.cond.as_ref()))
                .chain(r.use_server.iter().map(|u| &u.cond))
        });
    for c in http.chain(tcp) {
        for fetch in c.fetches() {
            if let Fetch::HttpAuth(u) = fetch {
                if !seen.iter().any(|s| s.name == u.name) {
                    seen.push(u);
                }
            }
        }
    }
    for u in seen {
        out.push_str("\n[[userlist]]\n");
        let _ = writeln!(out, "name = {}", q(&u.name));
        let users: Vec<String> = u
            .users
            .iter()
            .map(|user| {
                let password = match &user.password {
                    Password::Crypt(h) => format!("password = {}", q(h)),
                    Password::Plain(p) => format!("insecure_password = {}", q(&p.0)),
                };
                let groups: Vec<String> = user.groups.iter().map(|g| q(g)).collect();
                format!(
                    "{{ name = {}, {password}, groups = [{}] }}",
                    q(&user.name),
                    groups.join(", ")
                )
            })
            .collect();
        let _ = writeln!(out, "users = [{}]", users.join(", "));
    }
}

fn log_target(t: &LogTarget) -> String {
    let address = match &t.destination {
        LogDestination::Udp(a) => a.to_string(),
        LogDestination::Stderr => "stderr".into(),
        LogDestination::Stdout => "stdout".into(),
        LogDestination::File(p) => p.display().to_string(),
    };
    format!(
        "{{ address = {}, facility = {}, level = {}, format = {} }}",
        q(&address),
        q(t.facility.name()),
        q(t.max_level.name()),
        q(t.format.name())
    )
}

fn log_targets(targets: &[LogTarget]) -> String {
    let items: Vec<String> = targets.iter().map(log_target).collect();
    format!("[{}]", items.join(", "))
}

fn proxy_log(out: &mut String, log: &ProxyLog, global: &Global) {
    let targets = if !log.targets.is_empty() && log.targets == global.log {
        "global = true".to_string()
    } else {
        format!("targets = {}", log_targets(&log.targets))
    };
    let _ = writeln!(
        out,
        "log = {{ {targets}, tcplog = {}, httplog = {}, dontlognull = {}, health_checks = {}, separate_errors = {}, logasap = {}, dontlog_normal = {} }}",
        log.tcplog,
        log.httplog,
        log.dontlognull,
        log.health_checks,
        log.separate_errors,
        log.logasap,
        log.dontlog_normal
    );
}

fn timeouts(out: &mut String, t: &Timeouts) {
    let all = [
        ("client", t.client),
        ("server", t.server),
        ("connect", t.connect),
        ("queue", t.queue),
        ("check", t.check),
        ("tunnel", t.tunnel),
        ("client_fin", t.client_fin),
        ("server_fin", t.server_fin),
        ("handshake", t.handshake),
        ("client_hs", t.client_hs),
        ("failover", t.failover),
        ("http_request", t.http_request),
        ("http_keep_alive", t.http_keep_alive),
    ];
    let set: Vec<String> = all
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n} = {}", d(v))))
        .collect();
    let _ = writeln!(out, "timeout = {{ {} }}", set.join(", "));
}

fn keepalive(out: &mut String, k: &Keepalive) {
    let mut parts = vec![format!("enabled = {}", k.enabled)];
    if let Some(v) = k.idle {
        parts.push(format!("idle = {}", d(v)));
    }
    if let Some(v) = k.interval {
        parts.push(format!("interval = {}", d(v)));
    }
    if let Some(n) = k.count {
        parts.push(format!("count = {n}"));
    }
    let _ = writeln!(out, "keepalive = {{ {} }}", parts.join(", "));
}

fn check(out: &mut String, c: &CheckKind) {
    let text = match c {
        CheckKind::Tcp => q("tcp"),
        CheckKind::Amqp => q("amqp"),
        CheckKind::AmqpLogin {
            user,
            password,
            vhost,
        } => format!(
            "{{ type = \"amqp-login\", user = {}, password = {}, vhost = {} }}",
            q(user),
            q(&password.0),
            q(vhost)
        ),
        CheckKind::Http(h) => {
            let headers: Vec<String> = h
                .headers
                .iter()
                .map(|(n, v)| format!("{{ name = {}, value = {} }}", q(n), q(&v.0)))
                .collect();
            let codes: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
            let body = match &h.expect_body {
                None => String::new(),
                Some(BodyExpect::Contains(s)) => format!(", expect_string = {}", q(s)),
                Some(BodyExpect::Matches(r)) => format!(", expect_rstring = {}", q(r.0.as_str())),
            };
            format!(
                "{{ type = \"http\", method = {}, uri = {}, headers = [{}], expect_status = [{}]{body} }}",
                q(&h.method),
                q(&h.uri),
                headers.join(", "),
                codes.join(", ")
            )
        }
        CheckKind::TcpCheck(t) => {
            let rules: Vec<String> = t.lines.iter().map(|l| q(l)).collect();
            format!("{{ type = \"tcp-check\", rules = [{}] }}", rules.join(", "))
        }
    };
    let _ = writeln!(out, "check = {text}");
}

fn binds<'a>(binds: impl IntoIterator<Item = &'a Bind>) -> String {
    let items: Vec<String> = binds.into_iter().map(|b| q(&b.addr.to_string())).collect();
    format!("[{}]", items.join(", "))
}

fn path(p: &std::path::Path) -> String {
    q(&p.display().to_string())
}

/// `tls = { bind = [...], crt = [...] }`: the TLS binds of a frontend. TOML has one TLS
/// setting per frontend, so a HAProxy frontend with differently configured TLS binds is
/// written with the first one's certificates.
fn tls_binds(out: &mut String, all: &[Bind]) {
    let tls: Vec<&Bind> = all.iter().filter(|b| b.tls.is_some()).collect();
    let Some(t) = tls.first().and_then(|b| b.tls.as_ref()) else {
        return;
    };
    let crt: Vec<String> = t.crt.iter().map(|p| path(p)).collect();
    let mut items = vec![
        format!("bind = {}", binds(tls.iter().copied())),
        format!("crt = [{}]", crt.join(", ")),
    ];
    if let Some(ca) = &t.ca_file {
        items.push(format!("ca_file = {}", path(ca)));
    }
    if t.verify != ClientVerify::None {
        items.push(format!("verify = {}", q(t.verify.name())));
    }
    if t.min_version != MinVersion::Tls12 {
        items.push("min_version = \"1.3\"".to_string());
    }
    let _ = writeln!(out, "tls = {{ {} }}", items.join(", "));
}

fn server_tls(out: &mut String, s: &Server) {
    let Some(t) = &s.tls else { return };
    let mut items = vec![
        format!("sessions = {}", t.sessions),
        format!("checks = {}", t.checks),
        format!("verify = {}", t.verify),
    ];
    if let Some(ca) = &t.ca_file {
        items.push(format!("ca_file = {}", path(ca)));
    }
    if let Some(crt) = &t.crt {
        items.push(format!("crt = {}", path(crt)));
    }
    if let Some(name) = &t.name {
        items.push(format!("name = {}", q(name)));
    }
    if t.min_version != MinVersion::Tls12 {
        items.push("min_version = \"1.3\"".to_string());
    }
    let _ = writeln!(out, "tls = {{ {} }}", items.join(", "));
}

fn frontend(out: &mut String, f: &Frontend, config: &Config) {
    out.push_str("\n[[frontend]]\n");
    let _ = writeln!(out, "name = {}", q(&f.name));
    let _ = writeln!(
        out,
        "bind = {}",
        binds(f.binds.iter().filter(|b| b.tls.is_none()))
    );
    tls_binds(out, &f.binds);
    // TOML says it per frontend; a HAProxy frontend mixing both kinds of bind line
    // is written with the stricter setting.
    if f.binds.iter().any(|b| b.v4v6) {
        let _ = writeln!(out, "v4v6 = true");
    }
    if f.binds.iter().any(|b| b.accept_proxy) {
        let _ = writeln!(out, "accept_proxy = true");
    }
    let _ = writeln!(out, "mode = {}", q(f.mode.as_str()));
    let _ = writeln!(out, "maxconn = {}", f.maxconn);
    if let Some(b) = f.default_backend.and_then(|i| config.backends.get(i)) {
        let _ = writeln!(out, "backend = {}", q(&b.name));
    }
    rules(out, &f.rules);
    timeouts(out, &f.timeouts);
    keepalive(out, &f.keepalive);
    // Only where it means something, so a converted tcp frontend raises no warning.
    if f.mode.is_amqp() || f.initial_frame_max != DEFAULT_INITIAL_FRAME_MAX {
        let _ = writeln!(out, "initial_frame_max = {}", f.initial_frame_max);
    }
    if f.mode == Mode::AmqpTerminate || f.terminate != Terminate::default() {
        let _ = writeln!(
            out,
            "terminate = {{ lenient = {}, publish_buffer = {} }}",
            f.terminate.lenient, f.terminate.publish_buffer
        );
    }
    let r = f.rate_limit;
    let _ = writeln!(
        out,
        "rate_limit = {{ sessions = {}, sessions_per_source = {} }}",
        r.sessions.unwrap_or(0),
        r.per_source.unwrap_or(0)
    );
    proxy_log(out, &f.log, &config.global);
    http(out, f.mode, &f.http, has_acls(&f.rules));
}

/// Whether `rules` lists `acl` lines.
fn has_acls(r: &crate::acl::Rules) -> bool {
    r.lines.iter().any(|l| l.starts_with("acl "))
}

/// `acl`/`tcp-request`/`use_backend`/`use-server` lines, in HAProxy syntax.
fn rules(out: &mut String, r: &crate::acl::Rules) {
    if r.lines.is_empty() {
        return;
    }
    let lines: Vec<String> = r.lines.iter().map(|l| q(l)).collect();
    let _ = writeln!(out, "rules = [{}]", lines.join(", "));
}

fn backend(out: &mut String, b: &Backend, global: &Global) {
    out.push_str("\n[[backend]]\n");
    let _ = writeln!(out, "name = {}", q(&b.name));
    let _ = writeln!(out, "mode = {}", q(b.mode.as_str()));
    let _ = writeln!(out, "balance = {}", q(b.balance.name()));
    if b.hash_type != Default::default() {
        let _ = writeln!(out, "hash_type = {}", q(b.hash_type.name()));
    }
    let _ = writeln!(out, "retries = {}", b.retries);
    let _ = writeln!(out, "redispatch = {}", b.redispatch);
    rules(out, &b.rules);
    if let Some(s) = b.stick {
        let _ = writeln!(
            out,
            "stick = {{ size = {}, expire = {} }}",
            s.size,
            q(&super::duration::format(s.expire))
        );
    }
    if b.persist {
        let _ = writeln!(out, "persist = true");
    }
    timeouts(out, &b.timeouts);
    keepalive(out, &b.keepalive);
    check(out, &b.check);
    if let Some(r) = b.rebalance {
        let _ = writeln!(
            out,
            "rebalance = {{ window = {}, batch = {} }}",
            d(r.window),
            r.batch
        );
    }
    proxy_log(out, &b.log, global);
    http(out, b.mode, &b.http, has_acls(&b.rules));
    for s in b.servers.iter().filter(|s| !super::convert_dns::skip(s)) {
        server(out, s);
    }
}

fn server(out: &mut String, s: &Server) {
    out.push_str("\n[[backend.server]]\n");
    let _ = writeln!(out, "name = {}", q(super::convert_dns::name(s)));
    let _ = writeln!(out, "address = {}", q(&super::convert_dns::address(s)));
    if let Some(c) = &s.cookie {
        let _ = writeln!(out, "cookie = {}", q(c));
    }
    if let Some(id) = s.id {
        let _ = writeln!(out, "id = {id}");
    }
    if let Some(o) = &s.observe {
        let _ = writeln!(out, "observe = {}", q(o.layer.name()));
        let _ = writeln!(out, "error_limit = {}", o.error_limit);
        let _ = writeln!(out, "on_error = {}", q(o.on_error.name()));
    }
    let _ = writeln!(out, "check = {}", s.check);
    if let Some(port) = s.check_port {
        let _ = writeln!(out, "check_port = {port}");
    }
    let _ = writeln!(out, "inter = {}", d(s.inter));
    let _ = writeln!(out, "fastinter = {}", d(s.fastinter));
    let _ = writeln!(out, "downinter = {}", d(s.downinter));
    let _ = writeln!(out, "rise = {}", s.rise);
    let _ = writeln!(out, "fall = {}", s.fall);
    let _ = writeln!(out, "weight = {}", s.weight);
    let _ = writeln!(out, "maxconn = {}", s.maxconn);
    let _ = writeln!(out, "maxqueue = {}", s.maxqueue);
    let _ = writeln!(out, "backup = {}", s.backup);
    let _ = writeln!(out, "disabled = {}", s.disabled);
    if let Some(v) = s.slowstart {
        let _ = writeln!(out, "slowstart = {}", d(v));
    }
    let _ = writeln!(out, "shutdown_sessions_on_down = {}", s.shutdown_on_down);
    let _ = writeln!(
        out,
        "shutdown_backup_sessions_on_up = {}",
        s.shutdown_backup_on_up
    );
    match s.send_proxy {
        Some(ProxyProtocol::V1) => out.push_str("send_proxy = \"v1\"\n"),
        Some(ProxyProtocol::V2) => out.push_str("send_proxy = \"v2\"\n"),
        None => {}
    }
    if s.check_send_proxy {
        let _ = writeln!(out, "check_send_proxy = true");
    }
    server_tls(out, s);
    super::convert_dns::server(out, s);
}

fn stats(out: &mut String, s: &StatsPage) {
    out.push_str("\n[[stats]]\n");
    let _ = writeln!(out, "name = {}", q(&s.name));
    let _ = writeln!(
        out,
        "bind = {}",
        binds(s.binds.iter().filter(|b| b.tls.is_none()))
    );
    tls_binds(out, &s.binds);
    let _ = writeln!(out, "uri = {}", q(&s.uri));
    if let Some(r) = s.refresh {
        let _ = writeln!(out, "refresh = {}", d(r));
    }
    let _ = writeln!(out, "realm = {}", q(&s.realm));
    let users: Vec<String> = s
        .users
        .iter()
        .map(|u| {
            format!(
                "{{ user = {}, password = {} }}",
                q(&u.user),
                q(&u.password.0)
            )
        })
        .collect();
    let _ = writeln!(out, "auth = [{}]", users.join(", "));
    let _ = writeln!(out, "hide_version = {}", s.hide_version);
    let _ = writeln!(out, "admin = {}", s.admin);
    if let Some(n) = &s.node {
        let _ = writeln!(out, "show_node = {}", q(n));
    }
    if let Some(d) = &s.description {
        let _ = writeln!(out, "show_desc = {}", q(d));
    }
}
