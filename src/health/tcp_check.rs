//! Runs an `option tcp-check` script against one server, with HAProxy's result codes:
//! `L4OK` (or `L6OK` over TLS) when the last rule was a connect, `L7OK` when every rule
//! passed after sending or expecting, `L7RSP` when an `expect` did not match (or matched
//! what it must not), `L7TOUT` when the answer did not come in time; connect failures are
//! the usual `L4CON`/`L4TOUT`/`L6*`.
//!
//! Without a leading `connect` rule the script starts with the server's usual check
//! connection (its check port, `check-send-proxy`, `check-ssl`), as in HAProxy, which
//! counts it as step 1 in messages.
//! Each `expect` looks at the bytes received since the previous one.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::check::{open, Budget, CheckTls};
use super::CheckStatus;
use crate::config::tcp_check::{TcpCheck, TcpStep};
use crate::config::ProxyProtocol;
use crate::net::Stream;

/// The most bytes an `expect` waits for before judging what it has.
const MAX_EXPECT: usize = 16 * 1024;

pub async fn run(
    script: &TcpCheck,
    addr: SocketAddr,
    budget: Budget,
    proxy: Option<ProxyProtocol>,
    tls: Option<&CheckTls>,
) -> (CheckStatus, String) {
    let deadline = Instant::now() + budget.connect + budget.read;
    let mut stream: Option<Stream> = None;
    // `Some(tls)` while the last rule run was a connect.
    let mut connected_last: Option<bool> = None;
    let starts_with_connect = matches!(
        script.rules.first().map(|r| &r.step),
        Some(TcpStep::Connect { .. })
    );
    if !starts_with_connect {
        match open(addr, budget, proxy, tls).await {
            Ok(s) => stream = Some(s),
            Err((status, info)) => {
                return (
                    status,
                    format!("{info} at initial connection step of tcp-check"),
                )
            }
        }
        connected_last = Some(tls.is_some());
    }
    let mut received: Vec<u8> = Vec::new();
    // HAProxy numbers the implicit first connect as step 1.
    let first = if starts_with_connect { 1 } else { 2 };
    for (index, rule) in script.rules.iter().enumerate() {
        let step = index + first;
        let note = |message: String| match &rule.comment {
            Some(c) => format!("{message} comment: {c}"),
            None => message,
        };
        match &rule.step {
            TcpStep::Connect {
                port,
                ssl,
                send_proxy,
            } => {
                if let Some(old) = stream.take() {
                    close(old);
                }
                let target = SocketAddr::new(addr.ip(), port.unwrap_or(addr.port()));
                let header = send_proxy.then(|| proxy.unwrap_or(ProxyProtocol::V1));
                let tls_here = match (ssl, tls) {
                    (false, _) => None,
                    (true, Some(t)) => Some(t),
                    (true, None) => {
                        return (
                            CheckStatus::L6Rsp,
                            note(format!("'tcp-check connect ssl' at step {step} needs TLS settings on the server line ('check-ssl', with 'verify' or 'ca-file')")),
                        )
                    }
                };
                match open(target, budget, header, tls_here).await {
                    Ok(s) => stream = Some(s),
                    Err((status, info)) => {
                        return (
                            status,
                            note(format!("{info} at step {step} of tcp-check (connect)")),
                        )
                    }
                }
                received.clear();
                connected_last = Some(*ssl);
            }
            TcpStep::Send(bytes) => {
                let Some(s) = stream.as_mut() else {
                    return (
                        CheckStatus::L7Rsp,
                        note(format!("no connection at step {step}")),
                    );
                };
                let sent = tokio::time::timeout_at(deadline, s.write_all(bytes)).await;
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return (
                            CheckStatus::L7Rsp,
                            note(format!("TCPCHK send failed at step {step}: {e}")),
                        )
                    }
                    Err(_) => {
                        return (
                            CheckStatus::L7TimeOut,
                            note(format!("TCPCHK send timed out at step {step}")),
                        )
                    }
                }
                connected_last = None;
            }
            TcpStep::Expect { negate, pattern } => {
                let Some(s) = stream.as_mut() else {
                    return (
                        CheckStatus::L7Rsp,
                        note(format!("no connection at step {step}")),
                    );
                };
                loop {
                    let found = pattern.matches(&received);
                    if found && *negate {
                        return (
                            CheckStatus::L7Rsp,
                            note(format!(
                                "TCPCHK matched unwanted content {pattern} at step {step}"
                            )),
                        );
                    }
                    if found {
                        break;
                    }
                    if received.len() >= MAX_EXPECT {
                        if *negate {
                            break;
                        }
                        return (
                            CheckStatus::L7Rsp,
                            note(format!(
                                "TCPCHK did not match content {pattern} at step {step}"
                            )),
                        );
                    }
                    let mut chunk = [0u8; 2048];
                    match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                        Ok(Ok(n)) if n > 0 => received.extend_from_slice(&chunk[..n]),
                        // The server closed: what it sent is all there is.
                        Ok(_) if *negate => break,
                        Ok(_) => {
                            return (
                                CheckStatus::L7Rsp,
                                note(format!(
                                    "TCPCHK did not match content {pattern} at step {step}"
                                )),
                            )
                        }
                        Err(_) => {
                            return (
                                CheckStatus::L7TimeOut,
                                note(format!(
                                    "TCPCHK timed out waiting for {pattern} at step {step}"
                                )),
                            )
                        }
                    }
                }
                received.clear();
                connected_last = None;
            }
        }
    }
    if let Some(s) = stream {
        close(s);
    }
    match connected_last {
        Some(false) => (CheckStatus::L4Ok, String::new()),
        Some(true) => (CheckStatus::L6Ok, String::new()),
        None => (CheckStatus::L7Ok, "(tcp-check)".to_string()),
    }
}

/// Closes with a reset, as HAProxy does for checks: no TIME_WAIT pile-up.
fn close(stream: Stream) {
    let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(std::time::Duration::ZERO));
    drop(stream);
}
