//! The runtime API on a local unix socket (`stats socket <path> [mode <octal>]` in
//! `global`), with HAProxy's commands for what warren does:
//!
//! ```text
//! show stat                           the CSV of the stats page
//! show sess                           the AMQP clients of amqp-terminate frontends
//! show servers state                  one line per server (HAProxy's server-state format)
//! set server <b>/<s> state ready|drain|maint
//! set server <b>/<s> weight <0..256>
//! shutdown sessions server <b>/<s>
//! disable server <b>/<s>              (maint)      enable server <b>/<s>  (ready)
//! help
//! ```
//! Several commands may be sent on one line separated by `;`. The connection closes after
//! the answer, as HAProxy's non-interactive mode does. The socket file's permissions are the
//! access control (default 0600).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use super::run_action;
use super::schema;
use crate::net::AcceptBackoff;
use crate::state::AdminState;
use crate::state::Generation;

const HELP: &str = "The following commands are valid at this level:
  help                                     : this message
  show info                                : report information about the running process
  show stat                                : report counters for each proxy and server (CSV)
  show sess                                : list the AMQP clients of amqp-terminate frontends
  show servers state                       : dump volatile server information
  set server <bk>/<srv> state ready|drain|maint : change a server's administrative state
  set server <bk>/<srv> weight <0-256>     : change a server's weight
  shutdown sessions server <bk>/<srv>      : kill all sessions on a server
  disable server <bk>/<srv>                : put a server in maintenance
  enable server <bk>/<srv>                 : take a server out of maintenance
";

/// A command line longer than this is refused (the longest real one is ~80 bytes).
const MAX_LINE: usize = 4096;

/// Binds the socket file (replacing a stale one) with permissions `mode`.
pub fn bind(path: &Path, mode: u32) -> std::io::Result<std::os::unix::net::UnixListener> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves the runtime API until `stop`.
pub async fn serve(
    listener: UnixListener,
    current: Arc<ArcSwap<Generation>>,
    stop: CancellationToken,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.succeeded();
                stream
            }
            Err(e) => {
                let wait = backoff.failed();
                tracing::error!("stats socket: accept failed: {e}; retrying in {wait:?}");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        let current = Arc::clone(&current);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read).take(MAX_LINE as u64);
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let generation = current.load_full();
            let mut answer = String::new();
            for command in line.split(';').map(str::trim).filter(|c| !c.is_empty()) {
                answer.push_str(&execute(command, &generation));
            }
            let _ = write.write_all(answer.as_bytes()).await;
            let _ = write.shutdown().await;
        });
    }
}

/// Runs one command; the answer ends with a newline (an empty line after success, as
/// HAProxy prints it).
pub fn execute(command: &str, generation: &Generation) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let by = "the runtime API";
    let result = match words.as_slice() {
        ["help"] => Ok(HELP.to_string()),
        ["show", "info", ..] => Ok(info()),
        ["show", "stat", ..] => Ok(schema::csv(&schema::rows(generation))),
        ["show", "sess", ..] => Ok(super::sessions::text(generation)),
        ["show", "servers", "state", ..] => Ok(servers_state(generation)),
        ["set", "server", target, "state", state] => on(target, |b, s| {
            run_action(generation, Some(b), Some(s), Some(state), None, by)
        }),
        ["set", "server", target, "weight", w] => {
            let w = w.trim_end_matches('%');
            on(target, |b, s| {
                run_action(generation, Some(b), Some(s), Some("weight"), Some(w), by)
            })
        }
        ["shutdown", "sessions", "server", target] => on(target, |b, s| {
            run_action(generation, Some(b), Some(s), Some("shutdown"), None, by)
        }),
        ["disable", "server", target] => on(target, |b, s| {
            run_action(generation, Some(b), Some(s), Some("maint"), None, by)
        }),
        ["enable", "server", target] => on(target, |b, s| {
            run_action(generation, Some(b), Some(s), Some("ready"), None, by)
        }),
        _ => Err(format!(
            "Unknown command: '{command}'. Type 'help' for the list."
        )),
    };
    match result {
        Ok(text) if text.ends_with('\n') => format!("{text}\n"),
        Ok(text) => format!("{text}\n\n"),
        Err(e) => format!("{e}\n\n"),
    }
}

/// HAProxy's `show info`, the fields warren has (names as HAProxy spells them).
fn info() -> String {
    format!(
        "Name: warren\nVersion: {}\nPid: {}\nDroppedLogs: {}\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        crate::log::dropped()
    )
}

fn on(
    target: &str,
    f: impl FnOnce(&str, &str) -> Result<String, String>,
) -> Result<String, String> {
    match target.split_once('/') {
        Some((b, s)) if !b.is_empty() && !s.is_empty() => f(b, s),
        _ => Err(format!("Require 'backend/server', not '{target}'.")),
    }
}

/// HAProxy's `show servers state` (format 1), the fields warren has.
fn servers_state(generation: &Generation) -> String {
    let mut out = String::from(
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state \
bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n",
    );
    for (be_id, b) in generation.backends.iter().enumerate() {
        let ids: Vec<Option<u32>> = b.servers.iter().map(|s| s.config.id).collect();
        for (s, srv_id) in b.servers.iter().zip(crate::config::server_ids(&ids)) {
            let h = s.health();
            let op = if s.is_up() { 2 } else { 0 };
            let admin = match s.admin() {
                AdminState::Ready => 0,
                AdminState::Maint => 1,
                AdminState::Drain => 8,
            } | if s.address.in_maint() { 0x20 } else { 0 }; // SRV_ADMF_RMAINT
            let fqdn = s.config.dns.as_ref().map_or("-", |d| d.fqdn.as_str());
            let (health, _, _) = h.state.counters();
            let result = match &h.last_check {
                None => 0,
                Some(c) if c.status.passed() => 3,
                Some(_) => 1,
            };
            out.push_str(&format!(
                "{} {} {} {} {} {op} {admin} {} {} {} {} {result} {health} {} 0 0 0 {fqdn} {}\n",
                be_id + 1,
                b.name(),
                srv_id,
                s.name(),
                s.addr().ip(),
                s.weight(),
                s.config.weight,
                h.last_change.elapsed().as_secs(),
                h.last_check.as_ref().map_or(0, |c| c.status as u32),
                if s.config.check { 6 } else { 0 },
                s.addr().port(),
            ));
        }
    }
    out
}
