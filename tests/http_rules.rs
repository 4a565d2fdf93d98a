//! `acl`, `http-request`/`http-response` rules, `userlist` auth, `monitor-uri`,
//! `errorfile` and `http-check expect string` over real sockets; every scenario HAProxy
//! also has runs against warren and against Debian's `haproxy` from the same text.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{Client, Haproxy, Origin, Proxy};
use common::{free_port, start};

const USERS: &str = "userlist admins\n    user guest insecure-password guest\n    user ops password $6$saltsalt$fIy/LDohE2R3rq6yytMB5xPT65Qt7X.GabD.3RvFJC6h8Of33i3Wzz8cBNOAS2swzjMbN984mt5K.D6KXmjKb/\n";

fn cfg(bind: &str, servers: &[SocketAddr], extra: &str) -> String {
    let mut text = format!(
        "{USERS}defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\nlisten web\n    bind {bind}\n{extra}"
    );
    for (i, s) in servers.iter().enumerate() {
        text.push_str(&format!("    server s{} {s}\n", i + 1));
    }
    text
}

async fn proxies(servers: &[SocketAddr], extra: &str) -> Vec<Proxy> {
    let mut out = vec![Proxy::Warren(start(&cfg("127.0.0.1:0", servers, extra)))];
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    if let Some(h) = Haproxy::start(&cfg(&addr.to_string(), servers, extra), addr).await {
        out.push(Proxy::Haproxy(h, addr));
    }
    out
}

/// The request head the origin received, lower-cased header names.
fn received(body: &str) -> Vec<String> {
    body.split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((n, v)) => format!("{}:{}", n.to_ascii_lowercase(), v),
            None => l.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn request_header_rules_change_what_the_server_sees() {
    let origin = Origin::start("A").await;
    let rules = "    acl is_api path_beg /headers/api\n    acl is_api path_beg /headers/other\n\
                 http-request set-header X-Set one if is_api\n\
                 http-request add-header X-Added %[src]\n\
                 http-request del-header X-Remove\n\
                 http-request replace-header X-Version v1-(.*) v2-\\1\n\
                 http-request set-header X-Method %[method] if METH_POST || { hdr(x-flag) -i YES }\n";
    let rules = rules.replace('\n', "\n    ").trim_end().to_string() + "\n";
    for p in proxies(&[origin.addr], &rules).await {
        let r = Client::connect(p.addr())
            .await
            .get(
                "/headers/api?q=1",
                "X-Remove: gone\r\nX-Version: v1-beta\r\nX-Flag: yes\r\n",
            )
            .await;
        let head = received(&r.body);
        let has = |l: &str| head.iter().any(|h| h == l);
        assert!(
            has("x-set: one") && has("x-added: 127.0.0.1"),
            "{}: {head:?}",
            p.name()
        );
        assert!(
            !head.iter().any(|h| h.starts_with("x-remove")),
            "{}: {head:?}",
            p.name()
        );
        assert!(
            has("x-version: v2-beta") && has("x-method: GET"),
            "{}: {head:?}",
            p.name()
        );
        let r = Client::connect(p.addr()).await.get("/headers/x", "").await;
        let head = received(&r.body);
        assert!(
            !head
                .iter()
                .any(|h| h.starts_with("x-set") || h.starts_with("x-method")),
            "{}: {head:?}",
            p.name()
        );
    }
}

#[tokio::test]
async fn set_path_keeps_the_query_and_the_server_sees_the_new_path() {
    let origin = Origin::start("A").await;
    for p in proxies(
        &[origin.addr],
        "    http-request set-path /headers/new if { path /old }\n",
    )
    .await
    {
        let r = Client::connect(p.addr()).await.get("/old?x=1", "").await;
        assert!(
            r.body.starts_with("GET /headers/new?x=1 HTTP/1.1"),
            "{}: {}",
            p.name(),
            r.body
        );
    }
}

#[tokio::test]
async fn deny_return_and_redirect_answer_in_warrens_name() {
    let origin = Origin::start("A").await;
    let rules = "    http-request deny if { path_beg /admin }\n\
                 \x20   http-request deny deny_status 429 if { path /busy }\n\
                 \x20   http-request return status 200 content-type text/plain string pong if { path /ping }\n\
                 \x20   http-request redirect location /new code 301 if { path /old }\n\
                 \x20   http-request redirect prefix /v2 if { path_beg /v1only }\n\
                 \x20   http-request redirect scheme https if { path /secure } !{ ssl_fc }\n";
    for p in proxies(&[origin.addr], rules).await {
        let before = origin.connections();
        let r = Client::connect(p.addr()).await.get("/admin/x", "").await;
        assert_eq!(r.status, 403, "{}", p.name());
        assert!(
            r.body
                .contains("Request forbidden by administrative rules."),
            "{}",
            p.name()
        );
        assert_eq!(
            Client::connect(p.addr())
                .await
                .get("/busy", "")
                .await
                .status,
            429,
            "{}",
            p.name()
        );
        let r = Client::connect(p.addr()).await.get("/ping", "").await;
        assert_eq!(
            (r.status, r.body.as_str(), r.header("content-type")),
            (200, "pong", Some("text/plain")),
            "{}",
            p.name()
        );
        let r = Client::connect(p.addr()).await.get("/old", "").await;
        assert_eq!(
            (r.status, r.header("location")),
            (301, Some("/new")),
            "{}",
            p.name()
        );
        let r = Client::connect(p.addr())
            .await
            .get("/v1only/a?b=c", "")
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (302, Some("/v2/v1only/a?b=c")),
            "{}",
            p.name()
        );
        let r = Client::connect(p.addr()).await.get("/secure", "").await;
        assert_eq!(
            (r.status, r.header("location")),
            (302, Some("https://test/secure")),
            "{}",
            p.name()
        );
        assert_eq!(
            origin.connections(),
            before,
            "{}: none of these reached the server",
            p.name()
        );
        // The connection stays usable after a local answer to a bodiless request.
        let mut c = Client::connect(p.addr()).await;
        assert_eq!(c.get("/ping", "").await.status, 200);
        assert_eq!(c.get("/", "").await.status, 200, "{}", p.name());
    }
}

#[tokio::test]
async fn basic_auth_against_a_userlist_with_plain_and_crypt_passwords() {
    let origin = Origin::start("A").await;
    let rules = "    http-request auth realm RabbitMQ unless { http_auth(admins) }\n";
    for p in proxies(&[origin.addr], rules).await {
        let r = Client::connect(p.addr())
            .await
            .get("/api/overview", "")
            .await;
        assert_eq!(r.status, 401, "{}", p.name());
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"RabbitMQ\""),
            "{}",
            p.name()
        );
        for (creds, status) in [
            ("guest:guest", 200),
            ("ops:guest", 200),
            ("guest:nope", 401),
            ("nobody:guest", 401),
        ] {
            let auth = format!("Authorization: {}\r\n", common::basic(creds));
            let r = Client::connect(p.addr())
                .await
                .get("/api/overview", &auth)
                .await;
            assert_eq!(r.status, status, "{} {creds}", p.name());
        }
    }
}

#[tokio::test]
async fn response_rules_change_or_refuse_the_answer() {
    let origin = Origin::start("A").await;
    let rules = "    http-response set-header X-Frame-Options DENY\n\
                 \x20   http-response set-header X-Was-A yes if { res.hdr(x-server) A }\n\
                 \x20   http-response del-header X-Server if { res.hdr(x-server) B }\n";
    for p in proxies(&[origin.addr], rules).await {
        let r = Client::connect(p.addr()).await.get("/", "").await;
        assert_eq!(
            (r.header("x-frame-options"), r.header("x-server")),
            (Some("DENY"), Some("A")),
            "{}",
            p.name()
        );
        assert_eq!(r.header("x-was-a"), Some("yes"), "{}", p.name());
    }
    for p in proxies(
        &[origin.addr],
        "    http-response deny if { res.hdr(x-server) A }\n",
    )
    .await
    {
        let r = Client::connect(p.addr()).await.get("/secret", "").await;
        assert_eq!(
            r.status,
            502,
            "{}: a denied response is answered with 502",
            p.name()
        );
    }
}

#[tokio::test]
async fn monitor_uri_and_errorfile() {
    let origin = Origin::start("A").await;
    let dead = common::refused_addr().await;
    let errorfile = format!(
        "{}/tests/fixtures/http/503.http",
        env!("CARGO_MANIFEST_DIR")
    );
    for p in proxies(&[origin.addr], "    monitor-uri /warren-health\n").await {
        let before = origin.connections();
        let r = Client::connect(p.addr())
            .await
            .get("/warren-health", "")
            .await;
        assert_eq!(r.status, 200, "{}", p.name());
        assert!(r.body.contains("Service ready."), "{}", p.name());
        assert_eq!(origin.connections(), before, "{}", p.name());
    }
    for p in proxies(
        &[dead],
        &format!("    retries 0\n    errorfile 503 {errorfile}\n"),
    )
    .await
    {
        let r = Client::connect(p.addr()).await.get("/", "").await;
        assert_eq!(r.status, 503, "{}", p.name());
        assert_eq!(r.body, "The cluster is resting.\n\n\n", "{}", p.name());
    }
}

/// `http-errors` sections: `errorfiles <name> [<code>...]` imports some of their files
/// into a proxy, `deny ... errorfiles`/`return ... errorfile` answer with one, and a
/// plain `deny deny_status <code>` with the proxy's own. Same answers as HAProxy's.
#[tokio::test]
async fn http_errors_sections_answer_as_haproxy() {
    let origin = Origin::start("A").await;
    let dir = format!("{}/tests/fixtures/http", env!("CARGO_MANIFEST_DIR"));
    let extra = format!(
        "    errorfiles site 503\n\
         http-request deny if {{ path /denied }}\n\
         http-request deny deny_status 503 if {{ path /deny503 }}\n\
         http-request deny deny_status 403 errorfiles site if {{ path /forbidden }}\n\
         http-request return status 200 errorfiles site if {{ path /ping }}\n\
         http-request return status 200 errorfile {dir}/200.http if {{ path /ping2 }}\n\
         http-request return status 404 errorfiles site if {{ path /none }}\n\
         http-request deny deny_status 403 errorfile /dev/null if {{ path /empty }}\n"
    );
    let sections = format!(
        "http-errors site\n    errorfile 503 {dir}/503.http\n    errorfile 403 {dir}/403.http\n    errorfile 200 {dir}/200.http\n"
    );
    let build = |bind: &str| format!("{sections}{}", cfg(bind, &[origin.addr], &extra));
    let mut runs = vec![Proxy::Warren(start(&build("127.0.0.1:0")))];
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    if let Some(h) = Haproxy::start(&build(&addr.to_string()), addr).await {
        runs.push(Proxy::Haproxy(h, addr));
    }
    for p in runs {
        let (name, at) = (p.name(), p.addr());
        let get = |path: &'static str| async move { Client::connect(at).await.get(path, "").await };
        // Not imported: 403 is HAProxy's own page.
        let r = get("/denied").await;
        assert_eq!(r.status, 403, "{name}");
        assert!(r.body.contains("Request forbidden"), "{name}: {}", r.body);
        let r = get("/deny503").await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (503, "The cluster is resting.\n\n\n"),
            "{name}"
        );
        let r = get("/forbidden").await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (403, "This vhost is not for you.\n"),
            "{name}"
        );
        for path in ["/ping", "/ping2"] {
            let r = get(path).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (200, "pong\n"),
                "{name} {path}"
            );
            assert_eq!(r.header("content-type"), Some("text/plain"), "{name}");
        }
        // The section has no 404: the bare status, no body.
        let r = get("/none").await;
        assert_eq!((r.status, r.body.as_str()), (404, ""), "{name}");
        let r = get("/pass").await;
        assert_eq!(r.status, 200, "{name}");
        // An empty errorfile (HAProxy's /dev/null idiom): closed without an answer.
        let mut c = Client::connect(at).await;
        c.send("GET /empty HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let r = c.response(false).await;
        assert!(r.is_none(), "{name}: {r:?}");
    }
}

/// `use_backend` in a `mode http` frontend is decided per request, with HTTP fetches and
/// connection ones (`src`, `dst_port`, `nbsrv()`) from one ACL namespace that the
/// frontend's `tcp-request` and `http-request` rules share; same routing as HAProxy.
#[tokio::test]
async fn use_backend_per_request_with_http_and_connection_fetches() {
    let (a, b) = (Origin::start("A").await, Origin::start("B").await);
    let build = |bind: &str| {
        format!(
            "{USERS}defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             userlist ops\n    user ops insecure-password ops\n\
             frontend web\n    bind {bind}\n\
             acl api path_beg /api\n    acl local src 127.0.0.0/8\n    acl b_up nbsrv(b) gt 0\n\
             acl e_up nbsrv(empty) gt 0\n    acl admin http_auth(admins)\n\
             tcp-request content reject unless local\n\
             http-request set-header X-Dst-Port %[dst_port]\n\
             http-request deny if {{ path /admin }} !admin\n\
             use_backend b if api b_up\n    use_backend b if {{ hdr(x-to) -i b }}\n\
             use_backend empty if {{ path_beg /e }} e_up\n    use_backend b if {{ http_auth(ops) }}\n    use_backend b if admin\n\
             default_backend a\n\
             backend a\n    server sa {}\n\
             backend b\n    http-request set-header X-Backend b if {{ src 127.0.0.0/8 }}\n    server sb {}\n\
             backend empty\n",
            a.addr, b.addr
        )
    };
    let mut runs = vec![Proxy::Warren(start(&build("127.0.0.1:0")))];
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    if let Some(h) = Haproxy::start(&build(&addr.to_string()), addr).await {
        runs.push(Proxy::Haproxy(h, addr));
    }
    // `warren convert` writes the shared ACLs once; the TOML reads back the same rules.
    {
        use warren::config::{self, Syntax};
        let loaded =
            config::load_str(&build("127.0.0.1:0"), "h.cfg", Syntax::Haproxy).expect("loads");
        let toml = config::to_toml(&loaded.config);
        let again = config::load_str(&toml, "c.toml", Syntax::Toml).expect("converted loads");
        assert_eq!(loaded.config.frontends, again.config.frontends, "{toml}");
    }
    let auth = format!("Authorization: {}\r\n", common::basic("guest:guest"));
    for p in runs {
        let (name, at) = (p.name(), p.addr());
        // One connection, requests routed one by one.
        let mut c = Client::connect(at).await;
        let server = |r: common::http::Response| r.header("x-server").map(str::to_string);
        assert_eq!(
            server(c.get("/x", "").await).as_deref(),
            Some("A"),
            "{name}"
        );
        assert_eq!(
            server(c.get("/api/x", "").await).as_deref(),
            Some("B"),
            "{name}"
        );
        assert_eq!(
            server(c.get("/x", "X-To: B\r\n").await).as_deref(),
            Some("B"),
            "{name}"
        );
        assert_eq!(
            server(c.get("/e", "").await).as_deref(),
            Some("A"),
            "{name}"
        );
        assert_eq!(c.get("/admin", "").await.status, 403, "{name}");
        assert_eq!(
            server(c.get("/admin", &auth).await).as_deref(),
            Some("B"),
            "{name}"
        );
        let r = c.get("/headers/x", "X-To: b\r\n").await;
        let head = received(&r.body);
        assert!(
            head.contains(&"x-backend: b".to_string()),
            "{name}: {head:?}"
        );
        let port = format!("x-dst-port: {}", at.port());
        assert!(head.contains(&port), "{name}: {head:?}");
    }
}

/// In a `mode http` backend, `use-server` picks the server per request (before any
/// cookie) and `tcp-request content` rules apply once the backend is chosen; as HAProxy.
#[tokio::test]
async fn use_server_and_backend_content_rules_per_request() {
    let (a, b) = (Origin::start("A").await, Origin::start("B").await);
    let build = |bind: &str| {
        format!(
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             frontend web\n    bind {bind}\n    use_backend closed if {{ path /closed }}\n    default_backend two\n\
             backend two\n    use-server sb if {{ path_beg /b }} {{ nbsrv ge 2 }}\n    server sa {a}\n    server sb {b}\n\
             backend closed\n    tcp-request content reject if TRUE\n    server sa {a}\n",
            a = a.addr,
            b = b.addr
        )
    };
    let mut runs = vec![Proxy::Warren(start(&build("127.0.0.1:0")))];
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    if let Some(h) = Haproxy::start(&build(&addr.to_string()), addr).await {
        runs.push(Proxy::Haproxy(h, addr));
    }
    for p in runs {
        let (name, at) = (p.name(), p.addr());
        let mut c = Client::connect(at).await;
        for _ in 0..3 {
            let r = c.get("/b/x", "").await;
            assert_eq!(r.header("x-server"), Some("B"), "{name}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let r = c.get("/x", "").await;
            seen.insert(r.header("x-server").map(str::to_string));
        }
        assert_eq!(seen.len(), 2, "{name}: balanced as usual: {seen:?}");
        let mut c = Client::connect(at).await;
        c.send("GET /closed HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let r = c.response(false).await;
        assert!(r.is_none(), "{name}: {r:?}");
    }
}

/// The diagnostics of a configuration that must not load.
fn errors_of(text: &str) -> Vec<warren::config::Diagnostic> {
    use warren::config::{self, ConfigError, Syntax};
    match config::load_str(text, "h.cfg", Syntax::Haproxy) {
        Err(ConfigError::Invalid(d)) => d,
        other => panic!("expected errors, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_rules_are_refused_with_their_line() {
    use warren::config::{self, ConfigError, Syntax};
    let text = "defaults\n mode http\n timeout connect 1s\n timeout client 1s\n timeout server 1s\nlisten web\n bind 127.0.0.1:0\n acl a path_bgn /x\n http-request deny if b\n http-request set-heder X y\n http-request deny if { http_auth(nobody) }\n http-response redirect location /x\n acl c hdr_reg(host) (\n errorfile 999 /x\n errorfiles nope\n http-request return status 200 errorfiles nope\n server s 127.0.0.1:1\n";
    let errors = match config::load_str(text, "h.cfg", Syntax::Haproxy) {
        Err(ConfigError::Invalid(d)) => d,
        other => panic!("expected errors, got {other:?}"),
    };
    let has = |line: usize, text: &str| {
        errors
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    };
    assert!(has(8, "did you mean 'path_beg'"), "{errors:?}");
    assert!(has(9, "unknown ACL 'b'"), "{errors:?}");
    assert!(has(10, "did you mean 'set-header'"), "{errors:?}");
    assert!(has(11, "no userlist named 'nobody'"), "{errors:?}");
    assert!(has(12, "http-response cannot use it"), "{errors:?}");
    assert!(has(13, "bad regular expression"), "{errors:?}");
    assert!(has(14, "replaces only these statuses"), "{errors:?}");
    assert!(has(15, "no http-errors section named 'nope'"), "{errors:?}");
    assert!(has(16, "no http-errors section named 'nope'"), "{errors:?}");
    let text = "defaults\n mode http\n timeout connect 1s\n timeout client 1s\n timeout server 1s\nlisten web\n bind 127.0.0.1:0\n http-response deny if { path /x }\n";
    let errors = errors_of(text);
    assert!(
        errors
            .iter()
            .any(|d| d.line == 8 && d.message.contains("cannot see")),
        "{errors:?}"
    );
    // One namespace, but each rule reads only what exists when it runs.
    let text = "defaults\n mode http\n timeout connect 1s\n timeout client 1s\n timeout server 1s\nfrontend web\n bind 127.0.0.1:0\n acl api path_beg /api\n tcp-request content reject if api\n http-request deny if { res.hdr(x) -m found }\n tcp-request content accept if { req.ssl_sni -m found }\n use_backend t if api\n default_backend b\nbackend b\n server s 127.0.0.1:1\nbackend t\n mode tcp\n server s 127.0.0.1:1\n";
    let errors = errors_of(text);
    let has = |line: usize, text: &str| {
        errors
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    };
    assert!(has(9, "use an http-request rule"), "{errors:?}");
    assert!(has(10, "only http-response rules"), "{errors:?}");
    assert!(has(11, "reads HTTP requests"), "{errors:?}");
    assert!(has(6, "names a mode tcp backend"), "{errors:?}");
}

/// `tcp-request session` rules of an HTTP frontend apply once per connection, before any
/// request: a rejected client is closed without an answer and counted.
#[tokio::test]
async fn tcp_request_rules_guard_an_http_frontend() {
    let origin = Origin::start("A").await;
    let w = start(&cfg(
        "127.0.0.1:0",
        &[origin.addr],
        "    acl local src 127.0.0.0/8\n    tcp-request session reject if local !{ ssl_fc }\n",
    ));
    let mut c = Client::connect(w.addr("web")).await;
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        c.response(false).await.is_none(),
        "closed without an answer"
    );
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
async fn rules_in_toml_work_and_convert_round_trips() {
    use warren::config::{self, Syntax};
    let origin = Origin::start("A").await;
    let text = format!(
        "[[userlist]]\nname = \"admins\"\nusers = [{{ name = \"guest\", insecure_password = \"guest\" }}]\n\n\
         [[frontend]]\nname = \"web\"\nmode = \"http\"\nbind = [\"127.0.0.1:0\"]\nbackend = \"b\"\n\
         timeout = {{ client = \"5s\" }}\n\
         http = {{ acl = [\"api path_beg /api\"], request = [\"auth realm R if api !{{ http_auth(admins) }}\", \"set-header X-Via warren\"], monitor_uri = \"/mon\" }}\n\n\
         [[backend]]\nname = \"b\"\nmode = \"http\"\ntimeout = {{ connect = \"1s\", server = \"5s\" }}\n\n\
         [[backend.server]]\nname = \"s1\"\naddress = \"{}\"\n",
        origin.addr
    );
    let loaded = config::load_str(&text, "w.toml", Syntax::Toml).expect("loads");
    let again = config::load_str(&config::to_toml(&loaded.config), "c.toml", Syntax::Toml)
        .expect("converted loads");
    assert_eq!(loaded.config, again.config);
    let w = common::run_config(loaded.config);
    let r = Client::connect(w.addr("web")).await.get("/api/x", "").await;
    assert_eq!(r.status, 401);
    let auth = format!("Authorization: {}\r\n", common::basic("guest:guest"));
    let r = Client::connect(w.addr("web"))
        .await
        .get("/headers/api", &auth)
        .await;
    assert!(r.body.contains("X-Via: warren"), "{}", r.body);
    assert_eq!(
        Client::connect(w.addr("web"))
            .await
            .get("/mon", "")
            .await
            .status,
        200
    );
}

/// `http-check expect string`: a node whose health endpoint answers 200 with a failed
/// status in its body is DOWN, as with HAProxy.
#[tokio::test]
async fn http_check_expect_string_reads_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn health(body: &'static str) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        addr
    }
    let good = health("{\"status\":\"ok\"}").await;
    let bad = health("{\"status\":\"failed\",\"reason\":\"alarms\"}").await;
    let text = format!(
        "defaults\n mode http\n timeout connect 1s\n timeout client 5s\n timeout server 5s\nbackend b\n option httpchk GET /api/health/checks/alarms\n http-check expect string '\"status\":\"ok\"'\n server good {good} check inter 100ms rise 1 fall 1\n server bad {bad} check inter 100ms rise 1 fall 1\nfrontend f\n bind 127.0.0.1:0\n default_backend b\n"
    );
    let w = start(&text);
    let b = w.backend("b");
    let mut events = b.events.subscribe();
    common::wait_state(&mut events, "bad", false, Duration::from_secs(10)).await;
    assert!(b.server("good").is_some_and(|s| s.is_up()));
}
