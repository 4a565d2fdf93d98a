//! What clients see when a node dies (`kill -9`) or freezes (`SIGSTOP`) behind a proxy.
//!
//! The tool sends the signal itself, so time zero is exact. From then on it starts a new
//! AMQP connection through the proxy every 50 ms (each one a full handshake up to
//! connection.open-ok, bounded by 2 s), and watches the proxy's log for the line
//! `<server> is DOWN` (HAProxy and warren word it the same way). It reports:
//!
//! - `failover_<sig>_first_ok_ms`: the first handshake, started after the signal, to succeed;
//! - `failover_<sig>_slowest_ok_ms`: the slowest successful handshake (retries and
//!   redispatch show up here: the client waited that long);
//! - `failover_<sig>_failed_pct`: handshakes that failed or hung past 2 s;
//! - `failover_<sig>_down_ms`: when the proxy logged the server DOWN, or `none`.
//!
//! It never sends SIGCONT: the caller thaws the node (so a crash here cannot leave a frozen
//! node behind without the caller's trap noticing).

use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::time::Instant;

/// One probe every this often.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// A probe still not through after this long counts as failed (it hangs: frozen node).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Args {
    pub addr: SocketAddr,
    pub pid: i32,
    /// `kill` (SIGKILL) or `stop` (SIGSTOP).
    pub signal: String,
    pub log: PathBuf,
    /// As it appears in the log line, e.g. `failover/node2`.
    pub server: String,
    pub secs: f64,
}

pub async fn run(a: Args) -> Result<()> {
    let sig = match a.signal.as_str() {
        "kill" => libc::SIGKILL,
        "stop" => libc::SIGSTOP,
        other => bail!("signal must be kill or stop, not {other}"),
    };
    let mut log =
        std::fs::File::open(&a.log).with_context(|| format!("cannot open {}", a.log.display()))?;
    log.seek(SeekFrom::End(0))?;
    let needle = format!("{} is DOWN", a.server);

    let start = Instant::now();
    // SAFETY: kill(2) takes plain integers; a wrong pid fails with an errno, nothing else.
    if unsafe { libc::kill(a.pid, sig) } != 0 {
        bail!(
            "cannot signal pid {}: {}",
            a.pid,
            std::io::Error::last_os_error()
        );
    }
    let end = start + Duration::from_secs_f64(a.secs);
    let mut probes = tokio::task::JoinSet::new();
    let mut seen = String::new();
    let mut down_ms: Option<u128> = None;
    let mut next_probe = start;
    while Instant::now() < end {
        if Instant::now() >= next_probe {
            let addr = a.addr;
            probes.spawn(async move {
                let began = Instant::now();
                let ok = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, crate::amqp::handshake(addr)).await,
                    Ok(Ok(_))
                );
                (began, Instant::now(), ok)
            });
            next_probe += PROBE_EVERY;
        }
        if down_ms.is_none() {
            let mut buf = Vec::new();
            log.read_to_end(&mut buf)?;
            seen.push_str(&String::from_utf8_lossy(&buf));
            if seen.contains(&needle) {
                down_ms = Some(start.elapsed().as_millis());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut total, mut failed) = (0u32, 0u32);
    let (mut first_ok, mut slowest_ok): (Option<u128>, u128) = (None, 0);
    while let Some(r) = probes.join_next().await {
        let (began, done, ok) = r?;
        total += 1;
        if !ok {
            failed += 1;
            continue;
        }
        let at = (done - start).as_millis();
        first_ok = Some(first_ok.map_or(at, |f| f.min(at)));
        slowest_ok = slowest_ok.max((done - began).as_millis());
    }
    let s = &a.signal;
    let opt = |v: Option<u128>| v.map_or("none".to_string(), |v| v.to_string());
    println!("RESULT failover_{s}_first_ok_ms {} ms", opt(first_ok));
    println!("RESULT failover_{s}_slowest_ok_ms {slowest_ok} ms");
    println!(
        "RESULT failover_{s}_failed_pct {:.1} % ({failed} of {total} handshakes)",
        100.0 * f64::from(failed) / f64::from(total.max(1))
    );
    println!(
        "RESULT failover_{s}_down_ms {} ms (watched {} s)",
        opt(down_ms),
        a.secs
    );
    Ok(())
}
