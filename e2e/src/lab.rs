//! The RabbitMQ cluster under test, driven through `scripts/rabbit-cluster`.
//!
//! The script owns every process and path of the cluster; this module only calls it, so the
//! tests, the demo and a developer at a shell all act on the cluster the same way. With
//! `WARREN_E2E_CLUSTER=external` the cluster is expected to be running already (CI starts it
//! once before the suite); otherwise the first test that needs it runs `rabbit-cluster start`,
//! which is idempotent, and the nodes it started are stopped when the test binary exits.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Number of nodes the suite expects (`N` of the script).
pub fn nodes() -> usize {
    std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

/// AMQP port of node `i` (1-based), as the script assigns them.
pub fn amqp_port(i: usize) -> u16 {
    let base: u16 = std::env::var("AMQP_BASE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5672);
    base + (i as u16) - 1
}

/// Management plugin (HTTP API and UI) port of node `i` (1-based): `MGMT_BASE + i - 1`,
/// as the script assigns them with `MANAGEMENT=1`.
pub fn mgmt_port(i: usize) -> u16 {
    let base: u16 = std::env::var("MGMT_BASE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(15672);
    base + (i as u16) - 1
}

/// Node number (1-based) that listens on `port`, if it is one of ours.
pub fn node_of_port(port: u16) -> Option<usize> {
    (1..=nodes()).find(|&i| amqp_port(i) == port)
}

/// The workspace root (parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e crate lives in the workspace")
        .to_path_buf()
}

/// Where the script keeps nodes, logs and pids (`LAB` of the script).
pub fn lab_dir() -> PathBuf {
    if let Ok(lab) = std::env::var("LAB") {
        return PathBuf::from(lab);
    }
    std::env::temp_dir().join("warren-lab")
}

/// State of one node as `rabbit-cluster status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Serving,
    NotServing,
    Frozen,
    Dead,
    Absent,
}

/// Handle on the cluster. Cheap; all state lives in the script's `$LAB`.
#[derive(Debug, Clone)]
pub struct Lab {
    script: PathBuf,
}

impl Lab {
    /// The cluster, started if needed (once per process) unless `WARREN_E2E_CLUSTER=external`.
    pub fn get() -> Result<Lab> {
        static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
        let lab = Lab {
            script: workspace_root().join("scripts/rabbit-cluster"),
        };
        let started = STARTED.get_or_init(|| lab.start_once().map_err(|e| format!("{e:#}")));
        if let Err(e) = started {
            bail!("cluster not available: {e}");
        }
        Ok(lab)
    }

    fn start_once(&self) -> Result<()> {
        if std::env::var("WARREN_E2E_CLUSTER").as_deref() == Ok("external") {
            return Ok(());
        }
        let out = self.run(&["start"])?;
        // The script says which nodes it started; stop the cluster at exit only if we made it.
        if !out.contains("started now: none") {
            register_stop_at_exit(self.script.clone());
        }
        Ok(())
    }

    /// Runs the script with `args`; returns stdout+stderr, fails with both on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.script)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!(
                "rabbit-cluster {} failed ({}):\n{}",
                args.join(" "),
                out.status,
                text
            );
        }
        Ok(text)
    }

    /// Async wrapper of [`Lab::run`] so a test's other tasks keep running meanwhile.
    pub async fn run_async(&self, args: &[&str]) -> Result<String> {
        let lab = self.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            lab.run(&args)
        })
        .await?
    }

    pub fn states(&self) -> Result<Vec<NodeState>> {
        let out = self.run(&["status"])?;
        let mut states = Vec::new();
        for i in 1..=nodes() {
            let prefix = format!("rabbit{i} ");
            let line = out.lines().find(|l| l.starts_with(&prefix)).unwrap_or("");
            let state = match line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("state="))
            {
                Some("serving") => NodeState::Serving,
                Some("not-serving") => NodeState::NotServing,
                Some("frozen") => NodeState::Frozen,
                Some("dead") => NodeState::Dead,
                _ => NodeState::Absent,
            };
            states.push(state);
        }
        Ok(states)
    }

    /// Brings every node back to serving AMQP in the cluster: thaws frozen nodes, starts
    /// stopped apps, restarts killed nodes. Tests call it first so one failed test does not
    /// poison the next.
    pub async fn ensure_healthy(&self) -> Result<()> {
        let lab = self.clone();
        tokio::task::spawn_blocking(move || {
            for (idx, state) in lab.states()?.into_iter().enumerate() {
                let i = (idx + 1).to_string();
                match state {
                    NodeState::Serving => {}
                    NodeState::Frozen => {
                        lab.run(&["thaw", &i])?;
                    }
                    NodeState::NotServing => {
                        // a stopped app, or a node still booting: start_app covers both
                        lab.run(&["start-app", &i])?;
                    }
                    NodeState::Dead | NodeState::Absent => {
                        lab.run(&["restart", &i])?;
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        })
        .await?
    }

    /// Client-provided connection name → node number, for every AMQP connection in the
    /// cluster, as node `ask` sees it. The server port of a connection tells its node
    /// (`cluster_name` in the server properties is the same everywhere, so it cannot).
    pub async fn connections(&self, ask: usize) -> Result<Vec<(String, usize)>> {
        let out = self
            .run_async(&[
                "ctl",
                &ask.to_string(),
                "list_connections",
                "--no-table-headers",
                "port",
                "client_properties",
            ])
            .await?;
        Ok(parse_connections(&out))
    }

    /// The last `lines` lines of each node's log, for failure reports.
    pub fn node_log_tails(&self, lines: usize) -> String {
        let mut s = String::new();
        for i in 1..=nodes() {
            let dir = lab_dir().join(format!("nodes/rabbit{i}/log"));
            let path = dir.join(format!("rabbit{i}@localhost.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({e})"));
            let all: Vec<&str> = text.lines().collect();
            s.push_str(&format!("----- {} (last {lines} lines)\n", path.display()));
            for l in &all[all.len().saturating_sub(lines)..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

/// Parses `list_connections port client_properties` table output: one connection a line,
/// the port first, then an Erlang-ish rendering of the properties that contains
/// `{"connection_name","NAME"}`.
fn parse_connections(out: &str) -> Vec<(String, usize)> {
    let mut v = Vec::new();
    for line in out.lines() {
        let mut parts = line.splitn(2, '\t');
        let (Some(port), Some(props)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(node) = port.trim().parse().ok().and_then(node_of_port) else {
            continue;
        };
        // 3.10 renders `{"connection_name","NAME"}`; other versions put the type in between
        let start = ["\"connection_name\",\"", "\"connection_name\",longstr,\""]
            .iter()
            .find_map(|key| props.find(key).map(|p| p + key.len()));
        let Some(start) = start else { continue };
        let Some(len) = props[start..].find('"') else {
            continue;
        };
        v.push((props[start..start + len].to_string(), node));
    }
    v
}

fn register_stop_at_exit(script: PathBuf) {
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    if SCRIPT.set(script).is_err() {
        return;
    }
    extern "C" fn stop() {
        if let Some(script) = SCRIPT.get() {
            let _ = Command::new(script).arg("stop").status();
        }
    }
    // SAFETY: registers a plain extern "C" fn; the test harness exits through libc `exit`.
    unsafe {
        libc::atexit(stop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connection_lines() {
        // The ports of the nodes in force (AMQP_BASE may move them).
        let out = format!(
            "{}\t[{{\"capabilities\",[{{\"basic.nack\",true}}]}},{{\"connection_name\",\"c-2\"}},{{\"product\",\"lapin\"}}]\n\
             {}\t[{{\"connection_name\",longstr,\"c-3\"}}]\n\
             9999\t[{{\"connection_name\",longstr,\"other\"}}]\n\
             {}\t[]\n",
            amqp_port(2),
            amqp_port(3),
            amqp_port(1)
        );
        assert_eq!(
            parse_connections(&out),
            vec![("c-2".to_string(), 2), ("c-3".to_string(), 3)]
        );
    }
}
