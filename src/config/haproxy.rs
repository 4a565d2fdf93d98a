//! Reads HAProxy's `haproxy.cfg` into the typed [`Config`], unchanged files welcome.
//!
//! ```text
//! files ──preprocess (tokenize, ${VAR}, .if)──▶ words per line ──section keywords──▶ Draft
//!      per section (defaults copied into each proxy) ──finish──▶ Config + line numbers
//! ```
//!
//! Several files are read one after the other as HAProxy does (`-f a.cfg -f b.cfg`): a
//! `defaults` section stays in force for the files after it, but every file starts outside
//! any section. Lines are numbered across the files; [`Report`] maps them back.
//!
//! Every keyword warren knows is handled on purpose: implemented, accepted with a warning
//! (it does not apply to warren, or only to HTTP mode, which HAProxy also only warns about),
//! or refused with a sentence saying so. Anything else is an error with a suggestion, never
//! silently ignored.

pub(super) mod acl;
mod bind;
mod cond;
mod draft;
mod fetches;
mod finish;
mod global;
mod hash_type;
mod http;
mod http_errors;
pub(super) mod http_rules;
mod log;
mod options;
mod preprocess;
mod proxy;
mod resolvers;
mod rules;
mod server;
mod ssl_defaults;
mod stats;
mod stick;
pub(super) mod tokenize;
mod userlist;

pub(crate) use rules::{compile_lines, Side};
pub(crate) use tokenize::{words, Env};

use std::collections::HashMap;

use super::model::{Config, Global, DEFAULT_GLOBAL_MAXCONN};
use super::report::Report;
use super::suggest;
use super::validate::Origins;
use draft::{Draft, Kind};

// The section keywords, for suggestions (one list for every reader of sections).
pub(super) const SECTIONS: [&str; 9] = [
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "userlist",
    "http-errors",
    "resolvers",
];

/// Which section the lines being read belong to.
enum Current {
    /// Before the first section keyword.
    Nothing,
    Global,
    Proxy(Box<Draft>),
    /// A section whose header was wrong: its lines are skipped, the error was reported.
    Broken,
    /// A section accepted with a warning whose lines do not apply to warren (`peers`).
    Skipped,
}

/// Parses `files` (name and text, in reading order) as one configuration; `env` looks up
/// environment variables. Problems go to `report`, which must number lines across the
/// same files. The config is meaningful only if `report.errors` stays empty.
pub(crate) fn parse(
    files: &[(&str, &str)],
    env: &Env<'_>,
    report: &mut Report,
) -> (Config, Origins) {
    let mut global = Global {
        maxconn: DEFAULT_GLOBAL_MAXCONN,
        ..Global::default()
    };
    let mut defaults = Draft::new(Kind::Defaults, "", 0);
    let mut named_defaults: HashMap<String, Draft> = HashMap::new();
    let mut proxies: Vec<Draft> = Vec::new();
    let mut current = Current::Nothing;
    let mut tls_defaults = ssl_defaults::TlsDefaults::default();
    let mut vars = preprocess::Vars::default();

    // Every file preprocessed first: userlists are read before the proxies, since a proxy
    // may name one defined further down (as in HAProxy).
    let mut offset = 0;
    let mut preprocessed = Vec::with_capacity(files.len());
    for (name, text) in files {
        preprocessed.push(preprocess::lines(
            text, offset, name, env, &mut vars, report,
        ));
        offset += text.lines().count();
    }
    let all_lines = preprocessed.iter().flatten().cloned().collect::<Vec<_>>();
    let userlists = std::sync::Arc::new(userlist::collect(&all_lines, report));
    let http_errors = std::sync::Arc::new(http_errors::collect(&all_lines, report));
    let resolvers = resolvers::collect(&all_lines, report);
    drop(all_lines);
    defaults.userlists = std::sync::Arc::clone(&userlists);
    defaults.http_errors = std::sync::Arc::clone(&http_errors);
    for lines in preprocessed {
        // HAProxy: each file starts outside any section.
        close(current, &mut defaults, &mut named_defaults, &mut proxies);
        current = Current::Nothing;
        for (line, words) in lines {
            if SECTIONS.contains(&words[0].as_str()) {
                close(current, &mut defaults, &mut named_defaults, &mut proxies);
                current = if matches!(words[0].as_str(), "userlist" | "http-errors" | "resolvers") {
                    // Read by `userlist::collect`, `http_errors::collect`, `resolvers::collect`.
                    Current::Skipped
                } else {
                    open(&words, line, &defaults, &named_defaults, report)
                };
                if let Current::Proxy(draft) = &mut current {
                    draft.tls_defaults = tls_defaults.clone();
                    draft.userlists = std::sync::Arc::clone(&userlists);
                    draft.http_errors = std::sync::Arc::clone(&http_errors);
                }
                continue;
            }
            if matches!(current, Current::Global)
                && ssl_defaults::KEYWORDS.contains(&words[0].as_str())
            {
                ssl_defaults::keyword(&mut tls_defaults, &words, line, report);
                continue;
            }
            keyword_line(&words, line, &mut current, &mut global, report);
        }
    }
    close(current, &mut defaults, &mut named_defaults, &mut proxies);
    let (mut config, origins) = finish::finish(global, proxies, report);
    resolvers::attach(&mut config, resolvers, &origins, report);
    (config, origins)
}

/// A keyword line of the section in force.
fn keyword_line(
    words: &[String],
    line: usize,
    current: &mut Current,
    global: &mut Global,
    report: &mut Report,
) {
    match current {
        Current::Nothing => report.error(
            line,
            format!(
                "'{}' appears before any section in this file; start with 'global', 'defaults', 'frontend', 'backend' or 'listen'{}",
                words[0],
                suggest::hint(&words[0], SECTIONS)
            ),
        ),
        Current::Global => global::keyword(global, words, line, report),
        Current::Proxy(draft) => proxy::keyword(draft, words, line, report),
        Current::Broken | Current::Skipped => {}
    }
}

/// Starts a section from its header line.
fn open(
    words: &[String],
    line: usize,
    defaults: &Draft,
    named: &HashMap<String, Draft>,
    report: &mut Report,
) -> Current {
    let kind = match words[0].as_str() {
        "global" => {
            if words.len() > 1 {
                report.error(line, "'global' takes no name");
            }
            return Current::Global;
        }
        "peers" => {
            // HAProxy replicates stick tables between the instances of a `peers` section;
            // warren has no stick table to share, so it reads the section and moves on.
            report.warn(
                line,
                format!(
                    "the peers section '{}' is accepted but not used: warren instances share no table, each keeps its own state",
                    words.get(1).map_or("", String::as_str)
                ),
            );
            return Current::Skipped;
        }
        "defaults" => Kind::Defaults,
        "frontend" => Kind::Frontend,
        "backend" => Kind::Backend,
        _ => Kind::Listen,
    };
    let name = words.get(1).map(String::as_str).unwrap_or("");
    if name.is_empty() && kind != Kind::Defaults {
        report.error(line, format!("'{}' needs a name", kind.name()));
        return Current::Broken;
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || "-_.:".contains(*c)))
    {
        report.error(
            line,
            format!(
                "the name '{name}' contains '{bad}'; use letters, digits, '-', '_', '.' and ':'"
            ),
        );
        return Current::Broken;
    }
    // `frontend x from named_defaults` (HAProxy 2.4+); otherwise the last defaults section.
    let mut rest = &words[2.min(words.len())..];
    let mut base = defaults;
    if rest.first().map(String::as_str) == Some("from") {
        let Some(from) = rest.get(1) else {
            report.error(line, "'from' needs the name of a defaults section");
            return Current::Broken;
        };
        match named.get(from) {
            Some(d) => base = d,
            None => {
                report.error(
                    line,
                    format!(
                        "no defaults section named '{from}' before this line{}",
                        suggest::hint(from, named.keys().map(String::as_str))
                    ),
                );
                return Current::Broken;
            }
        }
        rest = &rest[2.min(rest.len())..];
    }
    let mut draft = match kind {
        // A new defaults section starts from HAProxy's built-in values, unless it says `from`.
        Kind::Defaults if std::ptr::eq(base, defaults) => Draft::new(Kind::Defaults, name, line),
        _ => Draft::inherit(base, kind, name, line),
    };
    // Old syntax: `listen stats :8081` binds on the header line.
    if !rest.is_empty() {
        if kind == Kind::Frontend || kind == Kind::Listen {
            let mut bind = vec!["bind".to_string()];
            bind.extend(rest.iter().cloned());
            proxy::keyword(&mut draft, &bind, line, report);
        } else {
            report.error(
                line,
                format!("unexpected '{}' after the {} name", rest[0], kind.name()),
            );
        }
    }
    Current::Proxy(Box::new(draft))
}

/// Ends a section: a defaults section becomes the one in force, a proxy is kept.
fn close(
    current: Current,
    defaults: &mut Draft,
    named: &mut HashMap<String, Draft>,
    proxies: &mut Vec<Draft>,
) {
    if let Current::Proxy(draft) = current {
        let draft = *draft;
        if draft.kind == Kind::Defaults {
            if !draft.name.is_empty() {
                named.insert(draft.name.clone(), draft.clone());
            }
            *defaults = draft;
        } else {
            proxies.push(draft);
        }
    }
}

/// Parses a non-negative integer argument, naming the keyword on error.
fn number(keyword: &str, value: Option<&String>) -> Result<u32, String> {
    let Some(value) = value else {
        return Err(format!("'{keyword}' needs a number"));
    };
    value
        .parse()
        .map_err(|_| format!("'{keyword}' expects a whole number, not '{value}'"))
}

/// Parses a duration argument, naming the keyword on error.
fn duration(keyword: &str, value: Option<&String>) -> Result<std::time::Duration, String> {
    let Some(value) = value else {
        return Err(format!("'{keyword}' needs a duration (for example '10s')"));
    };
    super::duration::parse(value).map_err(|e| format!("'{keyword}': {e}"))
}

/// Errors when a keyword got more words than it takes.
fn no_more_than(
    words: &[String],
    count: usize,
    keyword: &str,
    report: &mut Report,
    line: usize,
) -> bool {
    if words.len() > count {
        report.error(
            line,
            format!(
                "too many arguments to '{keyword}': remove '{}'",
                words[count]
            ),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::config::{load_str, ConfigError, Diagnostic, Loaded, Syntax};

    const TIMEOUTS: &str =
        "defaults\n timeout connect 1s\n timeout client 1m\n timeout server 1m\n";

    fn ok(body: &str) -> Loaded {
        load_str(&format!("{TIMEOUTS}{body}"), "h.cfg", Syntax::Haproxy)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(body: &str) -> Vec<Diagnostic> {
        match load_str(&format!("{TIMEOUTS}{body}"), "h.cfg", Syntax::Haproxy) {
            Err(ConfigError::Invalid(d)) => d,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    fn has(list: &[Diagnostic], line: usize, fragment: &str) -> bool {
        list.iter()
            .any(|d| d.line == line && d.message.contains(fragment))
    }

    #[test]
    fn listen_is_a_frontend_and_a_backend() {
        let c = ok("listen l\n bind :5000\n server a 127.0.0.1:1\n").config;
        assert_eq!(c.frontends[0].name, "l");
        assert_eq!(c.frontends[0].default_backend, Some(0));
        assert_eq!(c.backends[0].name, "l");
    }

    #[test]
    fn old_listen_syntax_binds_on_the_header() {
        let c = ok("listen l 127.0.0.1:5001\n server a 127.0.0.1:1\n").config;
        assert_eq!(c.frontends[0].binds[0].addr.port(), 5001);
    }

    #[test]
    fn options_and_no_options() {
        let c = ok("defaults\n timeout connect 1s\n timeout client 1s\n timeout server 1s\n option redispatch\n option tcplog\nlisten l\n bind :5002\n no option redispatch\n option log-health-checks\n server a 127.0.0.1:1\n").config;
        assert!(!c.backends[0].redispatch);
        assert!(c.frontends[0].log.tcplog && c.frontends[0].log.health_checks);
        let e = err("listen l\n bind :5003\n option redispatc\n");
        assert!(has(&e, 7, "did you mean 'redispatch'"), "{e:?}");
    }

    #[test]
    fn ignored_keywords_warn_with_their_line() {
        let l = ok("global\n nbproc 2\n log-tag rabbit\n stats socket /run/h.sock mode 600\n tune.maxrewrite 1024\nlisten l\n bind :5004\n option abortonclose\n server a 127.0.0.1:1\n");
        for (line, fragment) in [
            (6, "nbproc"),
            (7, "log-tag"),
            (9, "tune.maxrewrite"),
            (12, "abortonclose"),
        ] {
            assert!(
                has(&l.warnings, line, fragment),
                "{line} {fragment}: {:?}",
                l.warnings
            );
        }
        let socket = l
            .config
            .global
            .stats_socket
            .as_ref()
            .map(|s| (s.path.display().to_string(), s.mode));
        assert_eq!(
            socket,
            Some(("/run/h.sock".to_string(), 0o600)),
            "'stats socket' is implemented"
        );
    }

    #[test]
    fn backend_maxconn_and_client_timeout_are_ignored_with_a_warning() {
        let l = ok("backend b\n maxconn 10\n timeout client 5s\n server a 127.0.0.1:1\n");
        assert!(has(&l.warnings, 6, "'maxconn' is ignored"));
        assert!(has(&l.warnings, 7, "'timeout client' is ignored"));
    }

    #[test]
    fn frontend_maxconn_defaults_to_global() {
        let c = ok("global\n maxconn 123\nfrontend f\n bind :5005\n").config;
        assert_eq!(c.frontends[0].maxconn, 123);
    }

    #[test]
    fn http_balance_and_other_checks_are_refused() {
        let e = err("backend b\n balance uri\n option mysql-check\n server a 127.0.0.1:1\n");
        assert!(has(&e, 6, "'balance uri' is not supported yet"));
        assert!(has(&e, 7, "'option mysql-check' is not supported yet"));
        let e = err("backend b\n balance roundrobbin\n");
        assert!(has(&e, 6, "did you mean 'roundrobin'"));
    }

    #[test]
    fn option_amqp_applies_to_tcp_mode_only() {
        use crate::config::Mode;
        let c = ok("defaults\n option amqp\nlisten l\n bind :5020\n server a 127.0.0.1:1\nlisten s\n bind :5021\n mode http\n stats enable\n").config;
        assert_eq!(
            (c.frontends[0].mode, c.backends[0].mode),
            (Mode::Amqp, Mode::Amqp)
        );
        assert_eq!(
            c.stats.len(),
            1,
            "a stats page inheriting 'option amqp' is still a stats page"
        );
        let c = ok("defaults\n option amqp\nlisten l\n bind :5022\n no option amqp\n server a 127.0.0.1:1\n").config;
        assert_eq!(c.frontends[0].mode, Mode::Tcp);
        let e = err("listen l\n bind :5023\n mode amqp\n option amqq\n");
        assert!(has(&e, 7, "write 'mode tcp' and 'option amqp'"));
        assert!(has(&e, 8, "did you mean 'amqp'"), "{e:?}");
    }

    #[test]
    fn keepalive_options_and_parameters() {
        use std::time::Duration;
        let c = ok("defaults\n option clitcpka\n clitcpka-idle 30\n srvtcpka-intvl 1500ms\nlisten l\n bind :5024\n srvtcpka-cnt 5\n server a 127.0.0.1:1\n").config;
        let (f, b) = (&c.frontends[0].keepalive, &c.backends[0].keepalive);
        assert!(f.enabled && !b.enabled);
        assert_eq!(f.idle, Some(Duration::from_secs(30)));
        assert_eq!(
            (b.interval, b.count),
            (Some(Duration::from_millis(1500)), Some(5))
        );
        let c = ok("listen l\n bind :5025\n option tcpka\n server a 127.0.0.1:1\n").config;
        assert!(c.frontends[0].keepalive.enabled && c.backends[0].keepalive.enabled);
        let l = ok("backend b\n option clitcpka\n clitcpka-cnt 2\n server a 127.0.0.1:1\n");
        assert!(has(&l.warnings, 6, "applies to client sockets"));
        assert!(has(&l.warnings, 7, "applies to client sockets"));
        let e =
            err("listen l\n bind :5026\n clitcpka-cnt 0\n srvtcpka-idle 10x\n clitcpka-idel 3\n");
        assert!(has(&e, 7, "at least 1") && has(&e, 8, "unknown time unit"));
        assert!(has(&e, 9, "did you mean 'clitcpka-idle'"), "{e:?}");
    }

    #[test]
    fn handshake_timeout_is_client_side() {
        use std::time::Duration;
        let l = ok(
            "listen l\n bind :5027\n option amqp\n timeout handshake 5s\n server a 127.0.0.1:1\n",
        );
        assert_eq!(
            l.config.frontends[0].timeouts.handshake,
            Some(Duration::from_secs(5))
        );
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let l = ok("backend b\n timeout handshake 5s\n server a 127.0.0.1:1\n");
        assert!(has(&l.warnings, 6, "applies to the client side"));
    }

    #[test]
    fn amqp_check_forms() {
        use crate::config::CheckKind;
        let c =
            ok("backend b\n option amqp-check user u password p\n server a 127.0.0.1:1 check\n")
                .config;
        let CheckKind::AmqpLogin { vhost, .. } = &c.backends[0].check else {
            panic!("login check")
        };
        assert_eq!(vhost, "/");
        let c = ok("defaults\n option amqp-check\nbackend b\n no option amqp-check\n server a 127.0.0.1:1 check\n").config;
        assert_eq!(c.backends[0].check, CheckKind::Tcp);
        let e = err("backend b\n option amqp-check password p\n option amqp-check user u passwd p\n option amqp-check user u password\n");
        assert!(has(&e, 6, "needs 'user <name>'"));
        assert!(has(&e, 7, "did you mean 'password'"));
        assert!(
            has(&e, 8, "'password' in 'option amqp-check' needs a value"),
            "{e:?}"
        );
    }

    #[test]
    fn httpchk_forms_and_http_check() {
        use crate::config::CheckKind;
        let http = |body: &str| match ok(body).config.backends[0].check.clone() {
            CheckKind::Http(h) => h,
            other => panic!("expected an HTTP check, got {other:?}"),
        };
        let h = http("backend b\n option httpchk\n server a 127.0.0.1:1 check\n");
        assert_eq!((h.method.as_str(), h.uri.as_str()), ("OPTIONS", "/"));
        let h = http("backend b\n option httpchk /health\n server a 127.0.0.1:1 check\n");
        assert_eq!((h.method.as_str(), h.uri.as_str()), ("OPTIONS", "/health"));
        // http-check lines may come first, and override the option's request.
        let h = http("backend b\n http-check send meth GET uri /api/health/checks/alarms hdr Authorization \"Basic eA==\" hdr X-A b\n option httpchk HEAD /\n http-check expect status 200\n server a 127.0.0.1:1 check\n");
        assert_eq!(
            (h.method.as_str(), h.uri.as_str()),
            ("GET", "/api/health/checks/alarms")
        );
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers[0].1 .0, "Basic eA==");
        assert!(!format!("{h:?}").contains("eA=="), "headers are masked");
        assert_eq!(h.expect_status, [200]);
        let l = ok("backend b\n option httpchk GET / HTTP/1.1\n http-check expect status 200\n server a 127.0.0.1:1 check\n");
        assert!(has(&l.warnings, 6, "HTTP version 'HTTP/1.1'"));
        let l = ok("backend b\n http-check expect status 200\n server a 127.0.0.1:1 check\n");
        assert!(has(&l.warnings, 6, "'option httpchk', which is not set"));
        let e = err("backend b\n http-check expect rstatus ok\n http-check expect status 2xx\n http-check send body x\n http-check sned\n http-check expect ! status 500\n http-check expect rstring (\n");
        assert!(has(
            &e,
            6,
            "'http-check expect rstatus' is not supported yet"
        ));
        assert!(has(&e, 11, "bad regular expression"), "{e:?}");
        let h = http("backend b\n option httpchk GET /api/health/checks/alarms\n http-check expect string '\"status\":\"ok\"'\n server a 127.0.0.1:1 check\n");
        assert_eq!(
            h.expect_body,
            Some(crate::config::BodyExpect::Contains(
                "\"status\":\"ok\"".into()
            ))
        );
        assert!(has(&e, 7, "not '2xx'"));
        assert!(has(
            &e,
            8,
            "'body' in 'http-check send' is not supported yet"
        ));
        assert!(has(&e, 9, "did you mean 'send'"));
        assert!(has(&e, 10, "negated"), "{e:?}");
    }

    #[test]
    fn rebalance_forms() {
        use crate::config::Rebalance;
        use std::time::Duration;
        let c = ok("defaults\n option amqp\n rebalance batch 3\nbackend b\n server a 127.0.0.1:1\nbackend c\n no rebalance\n server a 127.0.0.1:1\n").config;
        assert_eq!(
            c.backends[0].rebalance,
            Some(Rebalance {
                window: Duration::from_secs(60),
                batch: 3
            })
        );
        assert_eq!(c.backends[1].rebalance, None);
        let e = err("backend b\n option amqp\n rebalance batch 0\n rebalance window 0\n rebalance windw 1m\n rebalance batch\n");
        assert!(has(&e, 7, "at least 1") && has(&e, 8, "greater than 0"));
        assert!(has(&e, 9, "did you mean 'window'"));
        assert!(has(&e, 10, "'rebalance batch' needs a number"), "{e:?}");
        let e = err("backend b\n rebalance\n server a 127.0.0.1:1\n");
        assert!(has(&e, 6, "'rebalance' needs AMQP mode"));
    }

    #[test]
    fn stats_page_defaults() {
        let c = ok("listen s\n bind :5006\n mode http\n stats enable\n stats admin if TRUE\n stats hide-version\n").config;
        let s = &c.stats[0];
        assert_eq!(
            (s.uri.as_str(), s.realm.as_str()),
            ("/haproxy?stats", "HAProxy Statistics")
        );
        assert!(s.admin && s.hide_version && s.users.is_empty() && s.refresh.is_none());
        assert!(c.frontends.is_empty() && c.backends.is_empty());
    }

    #[test]
    fn stats_show_node_and_desc_take_their_words_or_the_globals() {
        let c = ok("global\n node rabbit-lb-1\n description front of the cluster\nlisten s\n bind :5006\n mode http\n stats enable\n stats show-node\n stats show-desc\n stats show-legends\nlisten t\n bind :5007\n mode http\n stats enable\n stats show-node other\n stats show-desc two words\nlisten u\n bind :5008\n mode http\n stats enable\n").config;
        let shown: Vec<_> = c
            .stats
            .iter()
            .map(|s| (s.node.as_deref(), s.description.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                (Some("rabbit-lb-1"), Some("front of the cluster")),
                (Some("other"), Some("two words")),
                (None, None)
            ]
        );
        let c = ok("listen s\n bind :5006\n mode http\n stats enable\n stats show-node\n").config;
        assert_eq!(c.stats[0].node, Some(crate::config::host_name()));
    }

    #[test]
    fn stats_in_a_tcp_proxy_warn() {
        let l = ok("listen l\n bind :5007\n stats uri /x\n server a 127.0.0.1:1\n");
        assert!(has(&l.warnings, 7, "a stats page needs 'mode http'"));
    }

    #[test]
    fn timeout_zero_means_none() {
        let c = ok("frontend f\n bind :5008\n timeout client 0\n").config;
        assert_eq!(c.frontends[0].timeouts.client, None);
    }

    #[test]
    fn sections_and_keywords_out_of_place() {
        let e = err(
            "frontend f\n bind :5009\n server a 127.0.0.1:1\nbackend b\n bind :5010\nfrontnd x\n",
        );
        assert!(has(&e, 7, "'server' is not allowed in a frontend"));
        assert!(has(&e, 9, "'bind' is not allowed in a backend"));
        assert!(has(&e, 10, "unknown keyword 'frontnd'"), "{e:?}");
    }

    #[test]
    fn unix_socket_log_is_skipped_with_a_warning() {
        let dir = std::env::temp_dir().join(format!("warren-log-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let sock = dir.join("log.sock");
        let _ = std::fs::remove_file(&sock);
        let _listener = std::os::unix::net::UnixDatagram::bind(&sock).expect("socket");
        let l = ok(&format!("global\n log {} local0\n", sock.display()));
        assert!(has(&l.warnings, 6, "unix socket"));
        assert!(l.config.global.log.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
