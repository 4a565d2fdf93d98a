//! The stats page, its machine views, admin actions and the runtime socket, over real
//! sockets: what an operator of the report's `listen admin_stats` relies on.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(10);
const CREDS: &str = "duomai:shijiemori@2012";

/// The columns Debian's HAProxy 2.6 prints for `show stat`, in order, as read from it with
/// `echo "show stat" | socat stdio /tmp/ha-stat.sock` on this machine (up to
/// `need_conn_est`; HAProxy's per-module columns follow there).
const HAPROXY_26_COLUMNS: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est";

fn cfg(a: std::net::SocketAddr, b: std::net::SocketAddr, stats: &str) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         listen px\n    bind 127.0.0.1:0\n    balance roundrobin\n    server a {a} check inter 100 weight 30\n    server b {b} check inter 100 weight 30\n\
         listen admin_stats\n    bind 127.0.0.1:0\n    mode http\n    stats uri /haproxy\n    stats refresh 30s\n    stats realm Haproxy\\ Manager\n{stats}\n"
    )
}

async fn two_backends() -> (Backend, Backend) {
    (Backend::tagged("a").await, Backend::tagged("b").await)
}

#[tokio::test]
async fn the_page_wants_credentials_and_names_its_realm() {
    let (a, b) = two_backends().await;
    let w = start(&cfg(
        a.addr,
        b.addr,
        &format!("    stats auth {CREDS}\n    stats auth second:pw"),
    ));
    let page = w.stats_addr("admin_stats");
    let none = http(page, "GET", "/haproxy", &[], "").await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Basic realm=\"Haproxy Manager\"")
    );
    let wrong = http(
        page,
        "GET",
        "/haproxy",
        &[("Authorization", &basic("duomai:nope"))],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    for creds in [CREDS, "second:pw"] {
        let ok = http(
            page,
            "GET",
            "/haproxy",
            &[("Authorization", &basic(creds))],
            "",
        )
        .await;
        assert_eq!(ok.status, 200, "{creds}");
        assert!(ok
            .body
            .contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(
            ok.body.contains(">a<") && ok.body.contains(">b<"),
            "servers listed"
        );
        assert!(!ok.body.contains("<script"), "no JavaScript");
    }
    assert_eq!(
        http(page, "GET", "/haproxy;csv", &[], "").await.status,
        401,
        "the CSV is protected too"
    );
    assert_eq!(
        http(page, "GET", "/metrics", &[], "").await.status,
        401,
        "and the metrics"
    );
    w.stop().await;
}

#[tokio::test]
async fn csv_has_haproxys_columns_and_json_and_prometheus_agree_with_it() {
    let (a, b) = two_backends().await;
    let w = start(&cfg(a.addr, b.addr, &format!("    stats auth {CREDS}")));
    let page = w.stats_addr("admin_stats");
    for _ in 0..4 {
        let (mut s, _) = which_backend(w.addr("px")).await;
        s.write_all(b"ping\n").await.expect("write");
        assert_eq!(read_line(&mut s).await, "ping");
    }
    // The four sessions are closed; wait until warren has counted them out, so the three
    // views are taken of the same numbers.
    let fe = w.frontend_state("px");
    tokio::time::timeout(LIMIT, async {
        while fe
            .counters
            .current
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("sessions counted out");
    let auth = basic(CREDS);
    let csv = http(page, "GET", "/haproxy;csv", &[("Authorization", &auth)], "").await;
    assert_eq!(csv.status, 200);
    let mut lines = csv.body.lines();
    let header = lines.next().unwrap_or("");
    assert!(
        header.starts_with(&format!("# {HAPROXY_26_COLUMNS},")),
        "HAProxy's columns first, in its order: {header}"
    );
    let columns: Vec<&str> = HAPROXY_26_COLUMNS.split(',').collect();
    let rows: Vec<HashMap<&str, &str>> = lines
        .map(|l| columns.iter().copied().zip(l.split(',')).collect())
        .collect();
    let row = |px: &str, sv: &str| {
        rows.iter()
            .find(|r| r["pxname"] == px && r["svname"] == sv)
            .cloned()
            .expect("row")
    };
    assert_eq!(
        rows.iter().map(|r| r["svname"]).collect::<Vec<_>>(),
        ["FRONTEND", "a", "b", "BACKEND"]
    );
    let stot: u64 = ["a", "b"]
        .iter()
        .map(|s| row("px", s)["stot"].parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(stot, 4, "4 sessions counted");
    assert_eq!(row("px", "FRONTEND")["stot"], "4");
    assert_eq!(row("px", "a")["status"], "UP");

    let json = http(
        page,
        "GET",
        "/haproxy;json",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    let parsed: serde_json::Value = serde_json::from_str(&json.body).expect("valid JSON");
    let items = parsed.as_array().expect("an array");
    assert_eq!(items.len(), 4);
    for item in items {
        let r = row(
            item["pxname"].as_str().unwrap_or(""),
            item["svname"].as_str().unwrap_or(""),
        );
        for key in ["stot", "scur", "bin", "bout", "status", "weight"] {
            let j = item
                .get(key)
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default();
            assert_eq!(j, r[key], "{key} of {}/{}", r["pxname"], r["svname"]);
        }
    }

    let metrics = http(page, "GET", "/metrics", &[("Authorization", &auth)], "").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("warren_dropped_logs_total ")),
        "{}",
        metrics.body
    );
    let value = |name: &str, server: &str| -> f64 {
        let prefix = format!("{name}{{proxy=\"px\",server=\"{server}\"}} ");
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    for s in ["a", "b"] {
        assert_eq!(
            value("warren_server_sessions_total", s),
            row("px", s)["stot"].parse::<f64>().unwrap_or(-2.0)
        );
        assert_eq!(
            value("warren_server_bytes_in_total", s),
            row("px", s)["bin"].parse::<f64>().unwrap_or(-2.0)
        );
        assert_eq!(value("warren_server_up", s), 1.0);
    }
    w.stop().await;
}

/// Posts an admin form the way the page does (token and all).
async fn act(w: &Running, action: &str, server: &str, weight: &str) -> HttpAnswer {
    let page = w.stats_addr("admin_stats");
    let auth = basic(CREDS);
    let html = http(page, "GET", "/haproxy", &[("Authorization", &auth)], "")
        .await
        .body;
    let token = html
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or("")
        .to_string();
    assert_eq!(token.len(), 32, "the page carries its form token");
    let body = format!("token={token}&backend=px&server={server}&action={action}&weight={weight}");
    http(
        page,
        "POST",
        "/haproxy",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    )
    .await
}

async fn spread(w: &Running, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (_s, tag) = which_backend(w.addr("px")).await;
        *seen.entry(tag).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn admin_actions_change_routing() {
    let (a, b) = two_backends().await;
    let w = start(&cfg(
        a.addr,
        b.addr,
        &format!("    stats auth {CREDS}\n    stats admin if TRUE"),
    ));
    let (mut on_b, _) = loop {
        let (s, tag) = which_backend(w.addr("px")).await;
        if tag == "b" {
            break (s, tag);
        }
    };
    // drain: no new sessions to b, the open one stays.
    let r = act(&w, "drain", "b", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("DRAIN"));
    assert_eq!(spread(&w, 6).await.get("a"), Some(&6));
    on_b.write_all(b"still here\n").await.expect("write");
    assert_eq!(read_line(&mut on_b).await, "still here");
    // weight: ready again with weights 30/60 → 1:2.
    assert_eq!(act(&w, "ready", "b", "").await.status, 200);
    assert_eq!(act(&w, "weight", "b", "60").await.status, 200);
    let s = spread(&w, 9).await;
    assert_eq!((s.get("a"), s.get("b")), (Some(&3), Some(&6)), "{s:?}");
    // maint: b's sessions are shut down and it gets no new ones.
    assert_eq!(act(&w, "maint", "b", "").await.status, 200);
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut on_b))
        .await
        .expect("shut down");
    assert!(rest.is_empty());
    assert_eq!(spread(&w, 4).await.get("a"), Some(&4));
    assert_eq!(
        act(&w, "weight", "b", "300").await.status,
        400,
        "a bad weight is refused"
    );
    w.stop().await;
}

#[tokio::test]
async fn cross_site_and_unauthenticated_admin_posts_are_refused() {
    let (a, b) = two_backends().await;
    // A public page (no auth) with admin on: reading is open, acting is not.
    let w = start(&cfg(a.addr, b.addr, "    stats admin if TRUE"));
    let page = w.stats_addr("admin_stats");
    assert_eq!(http(page, "GET", "/haproxy", &[], "").await.status, 200);
    let form = "backend=px&server=b&action=maint";
    let r = http(
        page,
        "POST",
        "/haproxy",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form,
    )
    .await;
    assert_eq!(
        r.status, 401,
        "admin needs credentials even on a public page"
    );
    let api = http(
        page,
        "POST",
        "/haproxy/api/server",
        &[("Content-Type", "application/json")],
        r#"{"backend":"px","server":"b","action":"maint"}"#,
    )
    .await;
    assert_eq!(api.status, 401, "so does the JSON API");
    let forged = http(
        page,
        "POST",
        "/haproxy/api/server",
        &[
            ("Authorization", &basic(CREDS)),
            ("Content-Type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(
        forged.status, 401,
        "no stats auth: there is no credential to present"
    );
    assert!(
        w.backend("px")
            .server("b")
            .map(|s| s.usable())
            .unwrap_or(false),
        "nothing changed"
    );
    w.stop().await;

    let w = start(&cfg(
        a.addr,
        b.addr,
        &format!("    stats auth {CREDS}\n    stats admin if TRUE"),
    ));
    let page = w.stats_addr("admin_stats");
    let auth = basic(CREDS);
    let no_token = http(page, "POST", "/haproxy", &[("Authorization", &auth)], form).await;
    assert_eq!(no_token.status, 403);
    let html = http(page, "GET", "/haproxy", &[("Authorization", &auth)], "")
        .await
        .body;
    let token = html
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or("")
        .to_string();
    let body = format!("token={token}&{form}");
    let foreign = http(
        page,
        "POST",
        "/haproxy",
        &[("Authorization", &auth), ("Origin", "http://evil.example")],
        &body,
    )
    .await;
    assert_eq!(foreign.status, 403);
    let referred = http(
        page,
        "POST",
        "/haproxy",
        &[
            ("Authorization", &auth),
            ("Referer", "http://evil.example/page"),
        ],
        &body,
    )
    .await;
    assert_eq!(
        referred.status, 403,
        "a foreign Referer counts when there is no Origin"
    );
    let wrong = http(
        page,
        "POST",
        "/haproxy",
        &[
            ("Authorization", &basic("duomai:guess")),
            ("Origin", &format!("http://{page}")),
        ],
        &body,
    )
    .await;
    assert_eq!(wrong.status, 401, "the token alone is not enough");
    let api_foreign = http(
        page,
        "POST",
        "/haproxy/api/server",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
        ],
        r#"{"backend":"px","server":"b","action":"drain"}"#,
    )
    .await;
    assert_eq!(
        api_foreign.status, 403,
        "the JSON API refuses a browser on another site"
    );
    let api_as_form = http(
        page,
        "POST",
        "/haproxy/api/server",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(
        api_as_form.status, 415,
        "the JSON API refuses what a cross-site form can send"
    );
    let be = w.backend("px");
    assert!(
        be.server("b").map(|s| s.usable()).unwrap_or(false),
        "nothing changed"
    );
    let api = http(
        page,
        "POST",
        "/haproxy/api/server",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"backend":"px","server":"b","action":"drain"}"#,
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert!(
        !be.server("b").map(|s| s.usable()).unwrap_or(true),
        "the JSON API acted"
    );
    w.stop().await;
}

async fn socket_command(path: &std::path::Path, command: &str) -> String {
    let mut s = tokio::net::UnixStream::connect(path)
        .await
        .expect("connect to the runtime socket");
    s.write_all(format!("{command}\n").as_bytes())
        .await
        .expect("send");
    let mut out = String::new();
    tokio::time::timeout(LIMIT, s.read_to_string(&mut out))
        .await
        .expect("answer")
        .expect("read");
    out
}

#[tokio::test]
async fn runtime_socket_speaks_haproxys_commands() {
    let (a, b) = two_backends().await;
    let path = std::env::temp_dir().join(format!("warren-test-{}.sock", std::process::id()));
    let text = cfg(a.addr, b.addr, "").replace(
        "defaults\n",
        &format!(
            "global\n    stats socket {} mode 600 level admin\ndefaults\n",
            path.display()
        ),
    );
    let w = start(&text);
    assert!(socket_command(&path, "help").await.contains("set server"));
    let stat = socket_command(&path, "show stat").await;
    assert!(stat.starts_with(&format!("# {HAPROXY_26_COLUMNS},")));
    let info = socket_command(&path, "show info").await;
    assert!(
        info.lines().any(|l| l.starts_with("DroppedLogs: ")),
        "the log writer's dropped lines: {info}"
    );
    let state = socket_command(&path, "show servers state").await;
    assert!(
        state
            .lines()
            .any(|l| l.starts_with("1 px 2 b 127.0.0.1 2 0 30 30 ")),
        "{state}"
    );

    socket_command(&path, "set server px/b state drain").await;
    assert_eq!(spread(&w, 4).await.get("a"), Some(&4));
    socket_command(
        &path,
        "set server px/b state ready; set server px/a weight 0",
    )
    .await;
    assert_eq!(spread(&w, 4).await.get("b"), Some(&4));
    socket_command(&path, "set server px/a weight 30").await;
    let (mut on_a, _) = loop {
        let (s, tag) = which_backend(w.addr("px")).await;
        if tag == "a" {
            break (s, tag);
        }
    };
    let answer = socket_command(&path, "shutdown sessions server px/a").await;
    assert!(answer.contains("1 sessions shut down"), "{answer}");
    assert!(tokio::time::timeout(LIMIT, read_to_end(&mut on_a))
        .await
        .expect("closed")
        .is_empty());
    socket_command(&path, "disable server px/a").await;
    assert_eq!(spread(&w, 3).await.get("b"), Some(&3));
    socket_command(&path, "enable server px/a").await;
    assert!(socket_command(&path, "set server px/zz state drain")
        .await
        .contains("no server named 'zz'"));
    assert!(socket_command(&path, "frobnicate")
        .await
        .contains("Unknown command"));
    w.stop().await;
    let _ = std::fs::remove_file(&path);
}

/// A reload applies the stats page's new settings (here: who may log in) on the same
/// socket, as HAProxy's reload does; an address that changes is bound anew.
#[tokio::test]
async fn a_reload_applies_new_stats_settings_on_the_same_socket() {
    let (a, b) = two_backends().await;
    let (held, port) = held_listener();
    let text = |auth: &str| {
        cfg(a.addr, b.addr, &format!("    stats auth {auth}")).replace(
            "admin_stats\n    bind 127.0.0.1:0",
            &format!("admin_stats\n    bind 127.0.0.1:{port}"),
        )
    };
    let w = start_on(&text("old:pw"), vec![held]);
    let page: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(
        http(
            page,
            "GET",
            "/haproxy",
            &[("Authorization", &basic("old:pw"))],
            ""
        )
        .await
        .status,
        200
    );

    w.reload(&text("new:pw")).await.expect("reload");
    assert_eq!(
        http(
            page,
            "GET",
            "/haproxy",
            &[("Authorization", &basic("old:pw"))],
            ""
        )
        .await
        .status,
        401,
        "the old user is gone"
    );
    assert_eq!(
        http(
            page,
            "GET",
            "/haproxy",
            &[("Authorization", &basic("new:pw"))],
            ""
        )
        .await
        .status,
        200,
        "the new one works"
    );
    w.stop().await;
}
