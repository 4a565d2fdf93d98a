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
    let port = free_port();
    let w = start(&cfg(port, a.addr));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let (mut old_session, tag) = which_backend(addr).await;
    assert_eq!(tag, "a");
    w.reload(&cfg(port, b.addr)).await.expect("reload applies");
    assert_eq!(which_backend(addr).await.1, "b", "new sessions follow the new configuration");
    old_session.write_all(b"still a?\n").await.expect("old session open");
    assert_eq!(read_line(&mut old_session).await, "still a?", "the old session continues on its server");

    // A reload that cannot bind changes nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    assert!(w.reload(&cfg(busy, a.addr)).await.is_err());
    assert_eq!(which_backend(addr).await.1, "b", "the previous configuration keeps serving");
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
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
        Proc { child, lines, seen: Vec::new() }
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
                Err(_) => panic!("no line with '{needle}' within {LIMIT:?}; saw:\n{}", self.seen.join("\n")),
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

    write(&path, &format!("{}    server s2 {} wieght 3\n", cfg(port, a.addr), a.addr));
    p.signal(libc::SIGHUP);
    let line = p.wait_line("warren.cfg:");
    assert!(line.contains(":11:") && line.contains("wieght") && line.contains("weight"), "{line}");
    assert_eq!(which_backend(addr).await.1, "b", "the old configuration keeps serving");
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
    let rest = tokio::time::timeout(LIMIT, read_to_end(&mut session)).await.expect("session ended");
    assert!(rest.is_empty());
    let status = wait_exit(&mut p.child);
    assert!(status.success(), "{status:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no longer listening");
}

#[test]
fn check_mode_exits_1_with_file_and_line() {
    let dir = tempdir();
    let path = dir.join("bad.cfg");
    write(&path, "defaults\n    mode tcp\n    timeout conect 5s\n");
    let out = Command::new(env!("CARGO_BIN_EXE_warren")).args(["-c", "-f"]).arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.cfg:3:") && err.contains("conect"), "{err}");
    write(&path, "defaults\n    mode tcp\n    timeout connect 5s\n");
    let out = Command::new(env!("CARGO_BIN_EXE_warren")).args(["-c", "-f"]).arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "warren did not exit within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("warren-test-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
