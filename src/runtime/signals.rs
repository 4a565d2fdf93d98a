//! The signals an operator sends: SIGTERM (stop politely), SIGINT (stop, faster), SIGHUP
//! (reload the configuration).

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// How a stop was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: stop accepting, tell every AMQP client, wait up to `hard-stop-after`.
    Graceful,
    /// SIGINT (Ctrl-C): the same, but wait at most [`FAST_STOP`].
    Fast,
}

/// The wait bound of a fast stop.
pub const FAST_STOP: Duration = Duration::from_secs(1);

/// Resolves on SIGTERM or SIGINT.
pub async fn stop_signal() -> Stop {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install SIGTERM/SIGINT handlers; stop warren with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => { tracing::info!("SIGTERM received"); Stop::Graceful }
        _ = int.recv() => { tracing::info!("SIGINT received"); Stop::Fast }
    }
}

/// A stream of SIGHUPs.
pub fn reload_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    signal(SignalKind::hangup())
}
