//! The probes themselves: one attempt against one server, reported with HAProxy's
//! layered status codes. Scheduling and state live in `checker.rs` and `state.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::CheckStatus;

/// The result of one probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: CheckStatus,
    /// What went wrong, in words (the OS error), for the DOWN log line.
    pub info: String,
    pub duration: Duration,
}

/// TCP check, HAProxy's plain `check`: the server passes if it accepts a connection
/// within `timeout`. The socket is then closed at once.
pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Probe {
    let started = Instant::now();
    let (status, info) = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Linger 0 (RST on close, which never blocks) as HAProxy does for checks: no
            // TIME_WAIT pile-up at one check every `inter` per server.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            (CheckStatus::L4Ok, String::new())
        }
        Ok(Err(e)) => (CheckStatus::L4Con, e.to_string()),
        Err(_) => (CheckStatus::L4TimeOut, format!("no answer within {} ms", timeout.as_millis())),
    };
    Probe { status, info, duration: started.elapsed() }
}
