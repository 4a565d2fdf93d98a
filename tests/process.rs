//! The process as an operator drives it: reloads (in-process and by SIGHUP), a bad file
//! on reload, SIGTERM, and `warren -c`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

const LIMIT: Duration = Duration::from_secs(15);

fn cfg(port: u16, server: SocketAddr) -> String {
    format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 {server}\n"
    )
}

#[tokio::test]
async fn reload_keeps_the_listener_and_open_sessions_and_changes_routing() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    let (held, port) = held_listener();
    let w = start_on(&cfg(port, a.addr), vec![held]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let (mut old_session, tag) = which_backend(addr).await;
    assert_eq!(tag, "a");
    w.reload(&cfg(port, b.addr)).await.expect("reload applies");
    assert_eq!(
        which_backend(addr).await.1,
        "b",
        "new sessions follow the new configuration"
    );
    old_session
        .write_all(b"still a?\n")
        .await
        .expect("old session open");
    assert_eq!(
        read_line(&mut old_session).await,
        "still a?",
        "the old session continues on its server"
    );

    // A reload that cannot bind changes nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    assert!(w.reload(&cfg(busy, a.addr)).await.is_err());
    assert_eq!(
        which_backend(addr).await.1,
        "b",
        "the previous configuration keeps serving"
    );
    w.stop().await;
}

/// The warren binary in the foreground, its stderr lines on a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn start(config: &std::path::Path) -> Proc {
        Proc::start_with(config, &[])
    }

    /// With extra command-line arguments (`-d` for debug output).
    fn start_with(config: &std::path::Path, extra: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(extra)
            .args(["-db", "-f"])
            .arg(config)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn warren");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with '{needle}' within {LIMIT:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every stderr line until the process closes it (it exited), with a bound.
    fn rest(&mut self) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.seen.clone(),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stderr still open after {LIMIT:?}"),
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(path: &std::path::Path, text: &str) {
    let mut f = std::fs::File::create(path).expect("create config");
    f.write_all(text.as_bytes()).expect("write config");
}

#[tokio::test]
async fn sighup_applies_a_good_file_and_refuses_a_bad_one_with_its_line() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    let dir = tempdir();
    let path = dir.join("warren.cfg");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    write(&path, &cfg(port, a.addr));
    let mut p = Proc::start(&path);
    p.wait_line("started with");
    assert_eq!(which_backend(addr).await.1, "a");

    write(&path, &cfg(port, b.addr));
    p.signal(libc::SIGHUP);
    p.wait_line("configuration reloaded");
    assert_eq!(which_backend(addr).await.1, "b");

    write(
        &path,
        &format!("{}    server s2 {} wieght 3\n", cfg(port, a.addr), a.addr),
    );
    p.signal(libc::SIGHUP);
    let line = p.wait_line("warren.cfg:");
    assert!(
        line.contains(":11:") && line.contains("wieght") && line.contains("weight"),
        "{line}"
    );
    assert_eq!(
        which_backend(addr).await.1,
        "b",
        "the old configuration keeps serving"
    );
}

#[tokio::test]
async fn sigterm_stops_accepting_and_exits_with_sessions_ended() {
    let a = Backend::tagged("a").await;
    let dir = tempdir();
    let path = dir.join("warren.cfg");
    let port = free_port();
    write(&path, &cfg(port, a.addr));
    let mut p = Proc::start(&path);
    p.wait_line("started with");
    let (mut session, _) = which_backend(([127, 0, 0, 1], port).into()).await;
    p.signal(libc::SIGTERM);
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut session))
        .await
        .expect("session ended");
    assert!(rest.is_empty());
    let status = wait_exit(&mut p.child);
    assert!(status.success(), "{status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer listening"
    );
}

#[test]
fn check_mode_exits_1_with_file_and_line() {
    let dir = tempdir();
    let path = dir.join("bad.cfg");
    write(&path, "defaults\n    mode tcp\n    timeout conect 5s\n");
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.cfg:3:") && err.contains("conect"),
        "{err}"
    );
    write(&path, "defaults\n    mode tcp\n    timeout connect 5s\n");
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "warren did not exit within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tempdir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warren-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// What a log reader could see of the credentials: nothing, whatever happens, at debug
/// level: bad and good stats logins, admin actions, a client's AMQP login, the AMQP and
/// HTTP health checks' credentials, and a reload refused for a bad line.
#[tokio::test]
async fn credentials_never_reach_the_logs() {
    use base64::Engine;
    const SECRETS: [&str; 5] = [
        "StatsPw-0815",
        "Wrong-Guess-99",
        "CheckPw-4711",
        "ClientPw-1234",
        "HdrSecret-5150",
    ];
    let node = common::amqp::Node::start(0).await;
    let web = Backend::tagged("not http").await;
    let dir = tempdir();
    let path = dir.join("warren.cfg");
    let [port, stats_port] = free_ports();
    let hdr = base64::engine::general_purpose::STANDARD.encode("monitor:HdrSecret-5150");
    let text = format!(
        "global\n    log stderr local0 debug\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    option log-health-checks\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         listen amqp\n    bind 127.0.0.1:{port}\n    option amqp\n    option amqp-check user monitor password CheckPw-4711 vhost /\n    server n {node} check inter 200\n\
         listen mgmt\n    bind 127.0.0.1:0\n    option httpchk GET /api/health\n    http-check send hdr Authorization \"Basic {hdr}\"\n    server m {web} check inter 200\n\
         listen admin_stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats uri /haproxy\n    stats auth admin:StatsPw-0815\n    stats admin if TRUE\n",
        node = node.addr,
        web = web.addr,
    );
    write(&path, &text);
    let mut p = Proc::start_with(&path, &["-d"]);
    p.wait_line("started with");
    let page: SocketAddr = ([127, 0, 0, 1], stats_port).into();
    assert_eq!(
        http(
            page,
            "GET",
            "/haproxy",
            &[("Authorization", &basic("admin:Wrong-Guess-99"))],
            ""
        )
        .await
        .status,
        401
    );
    assert_eq!(
        http(
            page,
            "GET",
            "/haproxy",
            &[("Authorization", &basic("admin:StatsPw-0815"))],
            ""
        )
        .await
        .status,
        200
    );
    let api = http(
        page,
        "POST",
        "/haproxy/api/server",
        &[
            ("Authorization", &basic("admin:StatsPw-0815")),
            ("Content-Type", "application/json"),
        ],
        r#"{"backend":"mgmt","server":"m","action":"drain"}"#,
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.body);
    p.wait_line("enters DRAIN mode");
    // A client logs in through warren (PLAIN, its password in start-ok).
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(warren::amqp::frame::PROTOCOL_HEADER)
        .await
        .expect("header");
    let mut tracker = warren::amqp::frame::FrameTracker::server();
    common::amqp::next_frame(&mut s, &mut tracker)
        .await
        .expect("connection.start");
    s.write_all(&warren::amqp::methods::start_ok_plain(
        "guest",
        "ClientPw-1234",
    ))
    .await
    .expect("start-ok");
    common::amqp::next_frame(&mut s, &mut tracker)
        .await
        .expect("connection.tune");
    s.write_all(&warren::amqp::methods::tune_ok(2047, 131072))
        .await
        .expect("tune-ok");
    s.write_all(&warren::amqp::methods::open("/"))
        .await
        .expect("open");
    common::amqp::next_frame(&mut s, &mut tracker)
        .await
        .expect("connection.open-ok");
    s.write_all(&warren::amqp::methods::connection_close(200, "bye"))
        .await
        .expect("close");
    common::amqp::next_frame(&mut s, &mut tracker)
        .await
        .expect("connection.close-ok");
    drop(s);
    p.wait_line("{guest");
    // A reload refused for a bad line next to the secrets.
    write(&path, &text.replace("vhost /\n", "vhost / CheckPw-4711\n"));
    p.signal(libc::SIGHUP);
    p.wait_line("reload failed");
    p.wait_line("not shown: it may be part of the password");
    // And a TOML file with a mistyped (numeric) password.
    let toml = dir.join("warren.toml");
    write(&toml, "[[stats]]\nname = \"s\"\nbind = [\"127.0.0.1:0\"]\nauth = [{ user = \"admin\", password = 4711 }]\n");
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["-c", "-f"])
        .arg(&toml)
        .output()
        .expect("run");
    // The file's own path is left out of the search: the test directory is named after
    // the process id, which may contain the digits of the password.
    let checked =
        String::from_utf8_lossy(&out.stderr).replace(&toml.display().to_string(), "warren.toml");
    assert!(
        checked.contains("warren.toml:4:") && !checked.contains("4711"),
        "{checked}"
    );
    p.signal(libc::SIGTERM);
    let all = p.rest().join("\n");
    for secret in SECRETS.iter().map(|s| s.to_string()).chain([
        hdr.clone(),
        basic("admin:StatsPw-0815"),
        basic("admin:Wrong-Guess-99"),
    ]) {
        let bare = secret.trim_start_matches("Basic ");
        assert!(
            !all.contains(bare),
            "'{secret}' appears in the logs:\n{all}"
        );
    }
    assert!(wait_exit(&mut p.child).success());
}
