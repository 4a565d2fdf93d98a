//! Configuration fixtures: every file in `valid/` loads (and survives a round trip through
//! warren's TOML); every file in `invalid/` fails with the `line: message` its first line
//! announces (`# expect: <line>: <fragment>`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use warren::config::{self, ConfigError, Diagnostic, LogDestination, Syntax};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn errors(result: Result<config::Loaded, ConfigError>) -> Vec<Diagnostic> {
    match result {
        Ok(_) => panic!("expected the configuration to be refused"),
        Err(ConfigError::Invalid(d)) => d,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn every_valid_fixture_loads_and_round_trips_through_toml() {
    for path in fixtures("valid").into_iter().chain(fixtures("wild")) {
        let loaded =
            config::load(&path).unwrap_or_else(|e| panic!("{} should load:\n{e}", path.display()));
        let text = config::to_toml(&loaded.config);
        let again = config::load_str(&text, "converted.toml", Syntax::Toml)
            .unwrap_or_else(|e| panic!("{} converted does not load:\n{e}\n{text}", path.display()));
        assert_eq!(
            loaded.config,
            again.config,
            "{} changed in the round trip:\n{text}",
            path.display()
        );
        // Printing the reloaded model gives the same text: the output is stable.
        assert_eq!(text, config::to_toml(&again.config));
    }
}

#[test]
fn every_invalid_fixture_fails_where_announced() {
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).expect("fixture");
        let first = text.lines().next().unwrap_or_default();
        let expect = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{}: no '# expect:' line", path.display()));
        let (line, fragment) = expect.split_once(": ").expect("'<line>: <fragment>'");
        let line: usize = line.parse().expect("line number");
        let found = errors(config::load(&path));
        assert!(
            found
                .iter()
                .any(|d| d.line == line && d.message.contains(fragment)),
            "{}: expected line {line} with '{fragment}', got:\n{}",
            path.display(),
            found
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        // The file name is in every message, so a user knows where to look.
        assert!(found
            .iter()
            .all(|d| d.to_string().starts_with(&path.display().to_string())));
    }
}

fn load(name: &str) -> config::Loaded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config/valid")
        .join(name);
    config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_reports_file_warns_about_each_http_directive_on_its_line() {
    let loaded = load("report.zh.cfg");
    let warning = |line: usize, fragment: &str| {
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.line == line && w.message.contains(fragment)),
            "no warning at line {line} about {fragment}: {:#?}",
            loaded.warnings
        );
    };
    warning(14, "'option httplog'");
    warning(17, "'option http-server-close'");
    warning(24, "'timeout http-request'");
    warning(29, "'timeout http-keep-alive'");
    warning(59, "'stats realm' takes one word");

    let c = &loaded.config;
    assert_eq!(c.global.maxconn, 4000);
    assert!(c.global.daemon);
    assert_eq!(
        c.global.log[0].destination,
        LogDestination::Udp("127.0.0.1:514".parse().unwrap())
    );
    let front = &c.frontends[0];
    assert_eq!(
        (front.name.as_str(), front.maxconn),
        ("rabbitmq_cluster_front", 3000)
    );
    assert_eq!(front.timeouts.client, Some(Duration::from_secs(60)));
    assert!(
        front.log.tcplog,
        "httplog on a tcp proxy falls back to tcplog"
    );
    let back = &c.backends[front.default_backend.expect("backend")];
    assert!(back.redispatch);
    assert_eq!(back.retries, 3);
    assert_eq!(back.servers.len(), 2);
    assert_eq!(back.servers[1].addr, "127.0.0.1:5673".parse().unwrap());
    assert_eq!(back.servers[0].weight, 30);
    let stats = &c.stats[0];
    assert_eq!(
        (stats.uri.as_str(), stats.realm.as_str()),
        ("/haproxy", "Haproxy")
    );
    assert_eq!(stats.refresh, Some(Duration::from_secs(30)));
    assert_eq!(stats.users[0].user, "duomai");
    assert_eq!(stats.users[0].password.0, "shijiemori@2012");
}

#[test]
fn the_reports_toml_matches_the_reports_cfg_except_for_the_realm() {
    let cfg = load("report.zh.cfg").config;
    let mut toml = load("report.toml").config;
    assert_eq!(toml.stats[0].realm, "Haproxy Manager");
    toml.stats[0].realm = "Haproxy".into();
    assert_eq!(cfg, toml);
}

#[test]
fn the_cluster_scripts_file_loads_without_warnings() {
    let loaded = load("cluster-script.cfg");
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    assert_eq!(loaded.config.stats[0].realm, "Haproxy Manager");
    assert_eq!(
        loaded.config.global.log[0].destination,
        LogDestination::Stderr
    );
}

#[test]
fn defaults_sections_apply_to_the_proxies_after_them() {
    let c = load("several-defaults.cfg").config;
    let first = &c.frontends[0];
    assert_eq!(first.timeouts.client, Some(Duration::from_secs(30)));
    assert_eq!(first.log.targets.len(), 1);
    let second = c
        .backends
        .iter()
        .find(|b| b.name == "second")
        .expect("listen backend");
    assert_eq!(
        second.retries, 3,
        "a new defaults section starts from HAProxy's values"
    );
    assert!(second.redispatch);
    assert_eq!(second.servers[0].fastinter, Duration::from_millis(500));
    assert_eq!(second.servers[0].downinter, Duration::from_secs(5));
    let third = c
        .frontends
        .iter()
        .find(|f| f.name == "third")
        .expect("third");
    assert!(third.log.targets.is_empty());
    assert_eq!(
        c.backends[third.default_backend.expect("backend")].name,
        "second"
    );
}

#[test]
fn ipv6_binds() {
    let c = load("ipv6.cfg").config;
    let addrs: Vec<String> = c.frontends[0]
        .binds
        .iter()
        .map(|b| b.addr.to_string())
        .collect();
    assert_eq!(
        addrs,
        ["[::1]:10000", "[::]:10001", "0.0.0.0:10002", "[::]:10003"]
    );
}

#[test]
fn errors_are_all_reported_at_once_in_file_order() {
    let text = "frontend f\n    bind 127.0.0.1:1\n    frobnicate\n    maxconn lots\nbackend b\n    server a 127.0.0.1:1 wieght 3\n";
    let found = errors(config::load_str(text, "haproxy.cfg", Syntax::Haproxy));
    let lines: Vec<usize> = found.iter().map(|d| d.line).collect();
    assert_eq!(lines, [3, 4, 6], "{found:#?}");
}

#[test]
fn missing_timeouts_and_missing_backend_are_warnings() {
    let text = "frontend f\n    bind 127.0.0.1:1\nbackend b\n    server a 127.0.0.1:1\n";
    let loaded = config::load_str(text, "haproxy.cfg", Syntax::Haproxy).expect("loads");
    let messages: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("haproxy.cfg:1: missing timeouts for frontend 'f'")),
        "{messages:#?}"
    );
    assert!(messages
        .iter()
        .any(|m| m.starts_with("haproxy.cfg:1: frontend 'f' has no backend")));
    assert!(messages
        .iter()
        .any(|m| m.starts_with("haproxy.cfg:3: missing timeouts for backend 'b'")));
}

#[test]
fn amqp_mode_keywords_reach_the_model() {
    use warren::config::{CheckKind, Keepalive, Mode, Rebalance};
    let loaded = load("amqp.cfg");
    let c = &loaded.config;
    let front = &c.frontends[0];
    assert_eq!(front.mode, Mode::Amqp);
    assert_eq!(front.timeouts.handshake, Some(Duration::from_secs(15)));
    let client_side = Keepalive {
        enabled: true,
        idle: Some(Duration::from_secs(30)),
        interval: Some(Duration::from_secs(10)),
        count: Some(3),
    };
    assert_eq!(
        front.keepalive, client_side,
        "bare clitcpka numbers are seconds, as in HAProxy"
    );
    let rabbits = &c.backends[0];
    assert_eq!(rabbits.mode, Mode::Amqp);
    assert_eq!(rabbits.keepalive.idle, Some(Duration::from_secs(60)));
    assert_eq!(rabbits.keepalive.interval, Some(Duration::from_secs(5)));
    assert_eq!(
        rabbits.rebalance,
        Some(Rebalance {
            window: Duration::from_secs(120),
            batch: 5
        })
    );
    match &rabbits.check {
        CheckKind::AmqpLogin {
            user,
            password,
            vhost,
        } => {
            assert_eq!(
                (user.as_str(), password.0.as_str(), vhost.as_str()),
                ("monitor", "s3cret", "/checks")
            );
            assert!(
                !format!("{:?}", rabbits.check).contains("s3cret"),
                "the password is masked"
            );
        }
        other => panic!("expected a login check, got {other:?}"),
    }
    let plain = c
        .backends
        .iter()
        .find(|b| b.name == "plain_check")
        .expect("plain_check");
    assert_eq!(plain.check, CheckKind::Amqp);
    assert!(!c.frontends[1].keepalive.enabled);
    let mgmt = c
        .backends
        .iter()
        .find(|b| b.name == "mgmt_check")
        .expect("mgmt_check");
    let CheckKind::Http(h) = &mgmt.check else {
        panic!("expected an HTTP check")
    };
    assert_eq!(
        (h.method.as_str(), h.uri.as_str()),
        ("GET", "/api/health/checks/alarms")
    );
    assert_eq!(h.headers[0].0, "Authorization");
    assert_eq!(h.expect_status, [200, 204]);
    assert_eq!(
        mgmt.rebalance,
        Some(Rebalance {
            window: Duration::from_secs(60),
            batch: 1
        })
    );
    assert_eq!(mgmt.servers[0].check_port, Some(15672));
    assert_eq!(mgmt.servers[1].check_port, Some(15673));
    let legacy = c
        .backends
        .iter()
        .find(|b| b.name == "legacy_tcp")
        .expect("legacy_tcp");
    assert_eq!(
        (
            legacy.mode,
            legacy.keepalive.enabled,
            legacy.timeouts.handshake
        ),
        (Mode::Tcp, false, None)
    );
    // The legacy listen inherits keep-alive settings without keep-alive: a warning, not an error.
    assert!(
        loaded.warnings.iter().any(|w| w
            .message
            .contains("keep-alive settings of frontend 'legacy_tcp' have no effect")),
        "{:#?}",
        loaded.warnings
    );
}

#[test]
fn amqp_toml_matches_amqp_cfg() {
    assert_eq!(load("amqp.cfg").config, load("amqp.toml").config);
}

#[test]
fn amqp_warnings() {
    let text = "frontend f\n    bind 127.0.0.1:1\n    timeout handshake 5s\n    default_backend b\nbackend b\n    option amqp\n    option httpchk\n    server a 127.0.0.1:1\n";
    let found = errors(config::load_str(text, "haproxy.cfg", Syntax::Haproxy));
    assert!(
        found.iter().any(|d| d.line == 1
            && d.message
                .contains("is mode tcp but its backend 'b' is mode amqp")),
        "{found:#?}"
    );
    let text = "frontend f\n    option amqp\n    bind 127.0.0.1:1\n    default_backend b\nfrontend g\n    bind 127.0.0.1:2\n    timeout handshake 5s\nbackend b\n    option amqp\n    timeout connect 1s\n    option httpchk\n    server a 127.0.0.1:1\n";
    let loaded = config::load_str(text, "haproxy.cfg", Syntax::Haproxy).expect("loads");
    let messages: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(messages.iter().any(|m| m.starts_with("haproxy.cfg:7: 'timeout handshake' is ignored in frontend 'g'")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.starts_with("haproxy.cfg:11: 'option httpchk' in backend 'b': no server has 'check', the check is never run")), "{messages:#?}");
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("frontend 'f'") && m.contains("timeout")),
        "amqp mode needs no 'timeout client': {messages:#?}"
    );
}

#[test]
fn toml_proxies_default_to_amqp_mode_and_haproxy_cfg_to_tcp() {
    let toml = "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:0\"]\nbackend = \"b\"\n\n[[backend]]\nname = \"b\"\n\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:5672\"\n";
    let loaded = config::load_str(toml, "t.toml", Syntax::Toml).expect("loads");
    assert_eq!(loaded.config.frontends[0].mode, config::Mode::Amqp);
    assert_eq!(loaded.config.backends[0].mode, config::Mode::Amqp);
    let cfg = "frontend f\n    bind 127.0.0.1:0\n    default_backend b\nbackend b\n    server s 127.0.0.1:5672\n";
    let loaded = config::load_str(cfg, "t.cfg", Syntax::Haproxy).expect("loads");
    assert_eq!(loaded.config.frontends[0].mode, config::Mode::Tcp);
}

#[test]
fn limit_keywords_reach_the_model_in_both_syntaxes() {
    use warren::config::RateLimit;
    let loaded = load("limits.cfg");
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = &loaded.config;
    let front = &c.frontends[0];
    assert_eq!(front.initial_frame_max, 16 * 1024);
    assert_eq!(
        front.rate_limit,
        RateLimit {
            sessions: Some(500),
            per_source: Some(20)
        },
        "sessions comes from defaults"
    );
    assert_eq!(front.timeouts.client_hs, Some(Duration::from_secs(5)));
    let unlimited = &c.frontends[1];
    assert_eq!(
        unlimited.rate_limit,
        RateLimit::default(),
        "0 turns the inherited limit off"
    );
    assert_eq!(
        unlimited.initial_frame_max, 8192,
        "RabbitMQ's initial_frame_max by default"
    );
    assert_eq!(load("limits.toml").config, loaded.config);
}

#[test]
fn limit_keywords_warn_where_they_do_nothing() {
    let text = "frontend f\n    bind 127.0.0.1:1\n    timeout client 1m\n    amqp-initial-frame-max 64k\n    default_backend b\n\
                backend b\n    rate-limit sessions 10\n    timeout client-hs 5s\n    timeout connect 1s\n    timeout server 1m\n    server a 127.0.0.1:1\n";
    let loaded = config::load_str(text, "haproxy.cfg", Syntax::Haproxy).expect("loads");
    let messages: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    for expected in [
        "haproxy.cfg:4: 'amqp-initial-frame-max' is ignored in frontend 'f': it only applies in AMQP mode",
        "haproxy.cfg:7: 'rate-limit sessions' is ignored in backend 'b': it limits frontends",
        "haproxy.cfg:8: 'timeout client-hs' is ignored in backend 'b'",
    ] {
        assert!(messages.iter().any(|m| m.starts_with(expected)), "{expected}\n{messages:#?}");
    }
    let toml = "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\ninitial_frame_max = 65536\nmode = \"tcp\"\ntimeout = { client = \"1m\" }\n";
    let loaded = config::load_str(toml, "warren.toml", Syntax::Toml).expect("loads");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.line == 4 && w.message.contains("only applies in AMQP mode")),
        "{:#?}",
        loaded.warnings
    );
}

#[test]
fn stats_admin_without_auth_warns_that_admin_actions_are_refused() {
    let text = "listen admin_stats\n    bind 127.0.0.1:0\n    mode http\n    stats uri /haproxy\n    stats admin if TRUE\n";
    let loaded = config::load_str(text, "haproxy.cfg", Syntax::Haproxy).expect("loads");
    assert!(
        loaded.warnings.iter().any(|w| w.line == 1
            && w.message
                .contains("warren refuses admin actions without credentials")),
        "{:#?}",
        loaded.warnings
    );
    let toml = "[[stats]]\nname = \"s\"\nbind = [\"127.0.0.1:0\"]\nadmin = true\n";
    let loaded = config::load_str(toml, "warren.toml", Syntax::Toml).expect("loads");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.line == 1 && w.message.contains("no 'stats auth'")),
        "{:#?}",
        loaded.warnings
    );
}

#[test]
fn errors_on_lines_with_secrets_do_not_repeat_them() {
    // Passwords with an unescaped space: the stray half is not echoed (errors are logged).
    let text = "backend b\n    option amqp-check user monitor password correct horse\n    server a 127.0.0.1:1 check\n\
                backend c\n    option httpchk\n    http-check send hdr Authorization Basic bW9uaXRvcjpzM2NyZXQ=\n    server a 127.0.0.1:1 check\n";
    let found = errors(config::load_str(text, "haproxy.cfg", Syntax::Haproxy));
    let all: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        found.iter().map(|d| d.line).collect::<Vec<_>>(),
        [2, 6],
        "{all:#?}"
    );
    for d in &all {
        assert!(
            !d.contains("horse") && !d.contains("bW9uaXRvcjpzM2NyZXQ="),
            "{d}"
        );
    }
}

#[test]
fn terminate_keywords_reach_the_model_in_both_syntaxes() {
    use std::time::Duration;
    let cfg = load("terminate.cfg").config;
    let (strict, lenient) = (&cfg.frontends[0], &cfg.frontends[1]);
    assert_eq!(strict.mode, config::Mode::AmqpTerminate);
    assert_eq!(cfg.backends[0].mode, config::Mode::AmqpTerminate);
    assert_eq!(strict.timeouts.failover, Some(Duration::from_secs(20)));
    assert_eq!(
        (strict.terminate.lenient, strict.terminate.publish_buffer),
        (false, 8 * 1024 * 1024)
    );
    assert!(lenient.terminate.lenient, "option amqp-terminate lenient");
    let toml = load("terminate.toml").config;
    let f = &toml.frontends[0];
    assert_eq!(f.mode, config::Mode::AmqpTerminate);
    assert_eq!(f.timeouts.failover, Some(Duration::from_secs(20)));
    assert_eq!(f.terminate.publish_buffer, 8 * 1024 * 1024);
    // convert names the mode and the settings.
    let text = config::to_toml(&cfg);
    assert!(text.contains("mode = \"amqp-terminate\""), "{text}");
    assert!(
        text.contains("terminate = { lenient = true, publish_buffer = 8388608 }"),
        "{text}"
    );
}
