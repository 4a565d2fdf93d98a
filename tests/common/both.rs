//! The same configuration under warren's binary and under Debian's `haproxy`, for tests of
//! HAProxy features: what HAProxy does is the reference, so each behaviour test runs
//! against both where the feature exists in both.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long any wait in these tests may take before it fails.
pub const LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Warren,
    Haproxy,
}

impl Proxy {
    pub const BOTH: [Proxy; 2] = [Proxy::Warren, Proxy::Haproxy];

    fn command(self) -> Command {
        match self {
            Proxy::Warren => Command::new(env!("CARGO_BIN_EXE_warren")),
            Proxy::Haproxy => Command::new("haproxy"),
        }
    }
}

/// A fresh directory for one test's files.
pub fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warren-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes `files` (name, text) into `dir`; returns their paths.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> Vec<PathBuf> {
    files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, text).expect("write");
            path
        })
        .collect()
}

/// `-f` for each path.
pub fn dash_f(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .flat_map(|p| ["-f".to_string(), p.display().to_string()])
        .collect()
}

/// The outcome of `<proxy> -c`: whether it said valid, and everything it printed.
#[derive(Debug)]
pub struct Checked {
    pub valid: bool,
    pub output: String,
}

/// Runs `<proxy> -c <args>` with `env` added to the environment.
pub fn check(proxy: Proxy, args: &[String], env: &[(&str, &str)]) -> Checked {
    let out = proxy
        .command()
        .arg("-c")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the proxy");
    Checked {
        valid: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A proxy running in the foreground, its output lines on a channel; killed on drop.
pub struct Running {
    pub proxy: Proxy,
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Starts `<proxy> -db <args>` with `env` added.
    pub fn start(proxy: Proxy, args: &[String], env: &[(&str, &str)]) -> Running {
        let mut child = proxy
            .command()
            .arg("-db")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the proxy");
        let (tx, lines) = mpsc::channel();
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            proxy,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for an output line containing `needle` (or finds it among those already
    /// seen: lines of independent events come in any order); returns it.
    pub fn wait_line(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
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
                    "{:?}: no line with '{needle}' within {LIMIT:?}; saw:\n{}",
                    self.proxy,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits until `addr` accepts connections. HAProxy announces nothing when it listens,
    /// so this polls connects (a refused connect returns at once), bounded by [`LIMIT`].
    pub async fn wait_accepting(&mut self, addr: SocketAddr) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
                    self.seen.push(line);
                }
                panic!(
                    "{:?} exited ({status}) before listening on {addr}:\n{}",
                    self.proxy,
                    self.seen.join("\n")
                );
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?} not listening on {addr} within {LIMIT:?}",
                self.proxy
            );
            // A poll, bounded above: there is no event to wait on.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
