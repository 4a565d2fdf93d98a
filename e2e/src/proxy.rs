//! The proxy under test: its haproxy.cfg, its process, and its log.
//!
//! The same config file drives warren (`warren -f cfg`) and, as a reference, Debian's HAProxy
//! (`haproxy -db -f cfg`); `WARREN_E2E_PROXY=haproxy` picks HAProxy. Both write
//! `Server <backend>/<server> is DOWN|UP, reason: ...` on stderr, which is what the tests wait
//! on: every stderr line is kept with the instant it arrived, and waiters are woken per line.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use crate::lab::{amqp_port, workspace_root};

/// Which program serves the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyKind {
    Warren(PathBuf),
    Haproxy,
}

impl ProxyKind {
    /// `WARREN_E2E_PROXY=haproxy` → HAProxy; otherwise warren from `WARREN_BIN`, or
    /// `target/debug/warren`, or `target/release/warren` under the workspace root. The suite
    /// never builds warren itself: the CI script does, before running it.
    pub fn from_env() -> Result<ProxyKind> {
        if std::env::var("WARREN_E2E_PROXY").as_deref() == Ok("haproxy") {
            return Ok(ProxyKind::Haproxy);
        }
        if let Ok(bin) = std::env::var("WARREN_BIN") {
            return Ok(ProxyKind::Warren(PathBuf::from(bin)));
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join("target"));
        for profile in ["debug", "release"] {
            let bin = target.join(profile).join("warren");
            if bin.exists() {
                return Ok(ProxyKind::Warren(bin));
            }
        }
        bail!(
            "no warren binary: build it first (`cargo build --bin warren`), set WARREN_BIN, \
             or set WARREN_E2E_PROXY=haproxy to run the suite against HAProxy"
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            ProxyKind::Warren(_) => "warren",
            ProxyKind::Haproxy => "haproxy",
        }
    }
}

/// A port nobody listens on right now (bind `127.0.0.1:0`, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn hold_free_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

fn port_of(l: &std::net::TcpListener) -> u16 {
    l.local_addr().expect("local addr").port()
}

/// One `server` line of the backend.
#[derive(Debug, Clone)]
pub struct ServerLine {
    pub name: String,
    pub port: u16,
    pub weight: u32,
}

/// The report's haproxy.cfg with 127.0.0.1 addresses, free ports and short health timers.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub front_port: u16,
    pub stats_port: u16,
    /// `timeout client` / `timeout server`, as written in the file (`1m`, `5s`).
    pub timeout_client: String,
    pub timeout_server: String,
    pub inter_ms: u32,
    pub rise: u32,
    pub fall: u32,
    pub servers: Vec<ServerLine>,
    /// `timeout check`, as written.
    pub timeout_check: String,
    /// Warren's AMQP mode (`option amqp`); HAProxy has no such option.
    pub amqp: bool,
    /// `option amqp-check` (warren): the header must be answered with `connection.start`.
    pub amqp_check: bool,
    /// `on-marked-down shutdown-sessions` on every server line.
    pub shutdown_sessions: bool,
    /// Warren's `rebalance window <w> batch <n>` line, as written.
    pub rebalance: Option<String>,
    /// Extra words on the frontend's bind line (`ssl crt <pem>`, `accept-proxy`).
    pub bind_options: String,
    /// Extra words on every server line (`send-proxy-v2 check-send-proxy`).
    pub server_options: String,
    /// Warren's `amqp-terminate` mode: the words after `option amqp-terminate` ("" or
    /// "lenient"), and `timeout failover` as written.
    pub terminate: Option<String>,
    pub failover: Option<String>,
    /// Whole sections appended to the file as written (e.g. a `mode http` listen in front
    /// of the management plugin).
    pub extra_sections: String,
}

impl ProxyConfig {
    /// Defaults: servers clusterRabbit1/2 on nodes 1 and 2, weight 30, `inter 500 rise 3
    /// fall 3`, `timeout client/server 1m` (as in the report), fresh free ports.
    pub fn report() -> ProxyConfig {
        // Both sockets held at once: two calls to free_port() may return the same port.
        let (front, stats) = (hold_free_port(), hold_free_port());
        let (front_port, stats_port) = (port_of(&front), port_of(&stats));
        drop((front, stats));
        ProxyConfig {
            front_port,
            stats_port,
            timeout_client: "1m".into(),
            timeout_server: "1m".into(),
            inter_ms: 500,
            rise: 3,
            fall: 3,
            servers: (1..=2)
                .map(|i| ServerLine {
                    name: format!("clusterRabbit{i}"),
                    port: amqp_port(i),
                    weight: 30,
                })
                .collect(),
            timeout_check: "2s".into(),
            amqp: false,
            amqp_check: false,
            shutdown_sessions: false,
            rebalance: None,
            bind_options: String::new(),
            server_options: String::new(),
            terminate: None,
            failover: None,
            extra_sections: String::new(),
        }
    }

    /// Warren's `amqp-terminate` mode (`option amqp-terminate`).
    pub fn terminate(mut self) -> Self {
        self.terminate = Some(String::new());
        self
    }

    /// Warren's AMQP mode on the frontend and backend.
    pub fn amqp(mut self) -> Self {
        self.amqp = true;
        self
    }

    /// Only these nodes as servers (weight 30 each).
    pub fn nodes(mut self, nodes: &[usize]) -> Self {
        self.servers = nodes
            .iter()
            .map(|&i| ServerLine {
                name: format!("clusterRabbit{i}"),
                port: amqp_port(i),
                weight: 30,
            })
            .collect();
        self
    }

    pub fn timeouts(mut self, client: &str, server: &str) -> Self {
        self.timeout_client = client.into();
        self.timeout_server = server.into();
        self
    }

    pub fn weights(mut self, weights: &[u32]) -> Self {
        for (s, w) in self.servers.iter_mut().zip(weights) {
            s.weight = *w;
        }
        self
    }

    /// Adds node `i` as a server `clusterRabbit<i>` with `weight`.
    pub fn with_node(mut self, i: usize, weight: u32) -> Self {
        self.servers.push(ServerLine {
            name: format!("clusterRabbit{i}"),
            port: amqp_port(i),
            weight,
        });
        self
    }

    pub const BACKEND: &'static str = "rabbitmq_cluster_back";

    /// The file: the report's, HTTP-only options included (a proxy must accept them in a tcp
    /// proxy, as HAProxy does, with a warning), except what a foreground test process cannot
    /// use (`daemon`, `user`, `pidfile`, syslog to 127.0.0.1): logs go to stderr, addresses are
    /// 127.0.0.1, ports are free ones, health timers are short.
    pub fn render(&self) -> String {
        let mut s = format!(
            "\
global
    log stderr format raw local0 info
    maxconn 4000

defaults
    log     global
    mode    tcp
    option  httplog
    option dontlognull
    option  redispatch
    option http-server-close
    #option  abortonclose
    balance roundrobin
    retries 3

    timeout http-request  10s
    timeout queue         1m
    timeout connect 2s
    timeout client {tc}
    timeout server {ts}
    timeout http-keep-alive 10s
    timeout check {tchk}
    maxconn 3000
{extra_defaults}
frontend rabbitmq_cluster_front
    bind 127.0.0.1:{front}{bind_options}
    default_backend {be}

backend {be}
    balance roundrobin
",
            tc = self.timeout_client,
            ts = self.timeout_server,
            front = self.front_port,
            be = Self::BACKEND,
            tchk = self.timeout_check,
            extra_defaults = self.extra_defaults(),
            bind_options = if self.bind_options.is_empty() {
                String::new()
            } else {
                format!(" {}", self.bind_options)
            },
        );
        if let Some(r) = &self.rebalance {
            s.push_str(&format!("    rebalance {r}\n"));
        }
        let mut on_down = if self.shutdown_sessions {
            " on-marked-down shutdown-sessions".to_string()
        } else {
            String::new()
        };
        if !self.server_options.is_empty() {
            on_down.push(' ');
            on_down.push_str(&self.server_options);
        }
        for sv in &self.servers {
            s.push_str(&format!(
                "    server {} 127.0.0.1:{} check inter {} rise {} fall {} weight {}{on_down}\n",
                sv.name, sv.port, self.inter_ms, self.rise, self.fall, sv.weight
            ));
        }
        s.push_str(&self.extra_sections);
        s.push_str(&format!(
            "
listen admin_stats
    bind 127.0.0.1:{stats}
    mode http
    option httplog
    stats refresh 30s
    stats uri /haproxy
    stats realm Haproxy\\ Manager
    stats auth duomai:shijiemori@2012
{admin}",
            stats = self.stats_port,
            admin = if self.terminate.is_some() {
                "    stats admin if TRUE\n"
            } else {
                ""
            }
        ));
        s
    }
}

impl ProxyConfig {
    fn extra_defaults(&self) -> String {
        let mut s = String::new();
        if self.amqp {
            s.push_str("    option amqp\n");
        }
        if self.amqp_check {
            s.push_str("    option amqp-check\n");
        }
        if let Some(words) = &self.terminate {
            s.push_str(&format!("    option amqp-terminate {words}\n"));
        }
        if let Some(t) = &self.failover {
            s.push_str(&format!("    timeout failover {t}\n"));
        }
        s
    }
}

/// Lines of a process's stderr with their arrival instants; waiters are woken on each line.
#[derive(Clone)]
pub struct LogLines {
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    count: watch::Receiver<usize>,
}

impl LogLines {
    /// First line at index ≥ `from` containing `needle`, waiting until `deadline`.
    /// Returns its index and arrival instant.
    pub async fn wait_for(
        &self,
        needle: &str,
        from: usize,
        within: Duration,
    ) -> Result<(usize, Instant)> {
        let deadline = Instant::now() + within;
        let mut rx = self.count.clone();
        loop {
            if let Some(hit) = self.find(needle, from) {
                return Ok(hit);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    // the process is gone; one last look
                    return self
                        .find(needle, from)
                        .with_context(|| format!("proxy exited before logging {needle:?}"));
                }
                Err(_) => bail!("no log line containing {needle:?} within {within:?}"),
            }
        }
    }

    fn find(&self, needle: &str, from: usize) -> Option<(usize, Instant)> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, (_, l))| l.contains(needle))
            .map(|(i, (t, _))| (i, *t))
    }

    /// Number of lines so far (a mark to wait for lines after it).
    pub fn mark(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn dump(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }
}

/// A running proxy; killed when dropped.
pub struct Proxy {
    pub kind: ProxyKind,
    pub config: ProxyConfig,
    pub cfg_path: PathBuf,
    pub log: LogLines,
    child: Child,
}

impl Proxy {
    /// Writes the config to a fresh file, starts the proxy, waits until the frontend accepts.
    pub async fn start(kind: ProxyKind, config: ProxyConfig) -> Result<Proxy> {
        let dir = std::env::temp_dir().join(format!("warren-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let cfg_path = dir.join(format!("haproxy-{}.cfg", config.front_port));
        std::fs::write(&cfg_path, config.render())?;
        let mut cmd = match &kind {
            ProxyKind::Warren(bin) => {
                let mut c = Command::new(bin);
                c.arg("-f").arg(&cfg_path);
                c
            }
            ProxyKind::Haproxy => {
                let mut c = Command::new("haproxy");
                c.arg("-db").arg("-f").arg(&cfg_path);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {:?}", kind))?;

        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(0usize);
        let tx = Arc::new(tx);
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let n = {
                        let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                        l.push((Instant::now(), line));
                        l.len()
                    };
                    tx.send_replace(n);
                }
            });
        }
        let log = LogLines { lines, count: rx };
        let mut proxy = Proxy {
            kind,
            config,
            cfg_path,
            log,
            child,
        };
        proxy.wait_listening().await?;
        Ok(proxy)
    }

    async fn wait_listening(&mut self) -> Result<()> {
        // No event says "listening": poll connects, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited at start ({status}); its output:\n{}",
                    self.kind.name(),
                    self.log.dump()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.config.front_port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on :{} within 10s; output:\n{}",
                    self.kind.name(),
                    self.config.front_port,
                    self.log.dump()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `amqp://guest:guest@127.0.0.1:<front>/%2f`, with `query` appended (`heartbeat=5`).
    pub fn amqp_uri(&self, query: &str) -> String {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f{q}",
            self.config.front_port
        )
    }

    /// Waits for `Server <backend>/<server> is <state>` after log line `from`.
    pub async fn wait_server_state(
        &self,
        server: &str,
        state: &str,
        from: usize,
        within: Duration,
    ) -> Result<Instant> {
        let needle = format!("Server {}/{} is {}", ProxyConfig::BACKEND, server, state);
        Ok(self.log.wait_for(&needle, from, within).await?.1)
    }

    pub fn stats_url(&self) -> String {
        format!(
            "http://duomai:shijiemori%402012@127.0.0.1:{}/haproxy",
            self.config.stats_port
        )
    }

    /// An admin action on a server through the stats page's JSON API (`stats admin`):
    /// `drain`, `maint`, `ready`, `shutdown`. Returns the answer's body.
    pub async fn admin(&self, server: &str, action: &str) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = format!(
            "{{\"backend\":\"{}\",\"server\":\"{server}\",\"action\":\"{action}\"}}",
            ProxyConfig::BACKEND
        );
        let request = format!(
            "POST /haproxy/api/server HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic ZHVvbWFpOnNoaWppZW1vcmlAMjAxMg==\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len(),
            port = self.config.stats_port
        );
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.config.stats_port)).await?;
        s.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        anyhow::ensure!(
            answer.starts_with("HTTP/1.1 200"),
            "admin {action} {server}: {answer}"
        );
        Ok(answer)
    }

    /// `GET /haproxy<suffix>` on the stats page (with its credentials); the body.
    pub async fn stats_get(&self, suffix: &str) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!(
            "GET /haproxy{suffix} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic ZHVvbWFpOnNoaWppZW1vcmlAMjAxMg==\r\nConnection: close\r\n\r\n"
        );
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.config.stats_port)).await?;
        s.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET {suffix}: {head}");
        Ok(body.to_string())
    }

    /// Stops the proxy (SIGKILL) and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
