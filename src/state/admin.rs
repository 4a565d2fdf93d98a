//! Operator actions on a server: the one place where the stats page, its JSON API and the
//! runtime socket change a server's administrative state or weight. Each change is logged
//! with its reason in HAProxy's words and wakes the backend's queue.

use std::sync::Arc;

use super::{AdminState, BackendState, ServerEvent, ServerState};
use crate::config::{server_defaults, Level};

/// What an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Back to normal (`set server B/S state ready`, `enable server`).
    Ready,
    /// No new sessions; open ones continue.
    Drain,
    /// No new sessions, no checks, and open sessions are shut down.
    Maint,
    /// Set the weight (0..=256).
    Weight(u32),
    /// End every open session of the server.
    Shutdown,
}

impl Action {
    /// Parses the words the page and the socket use: `ready`, `drain`, `maint`,
    /// `shutdown`, or `weight` with a value.
    pub fn parse(action: &str, weight: Option<&str>) -> Result<Action, AdminError> {
        match action {
            "ready" | "enable" => Ok(Action::Ready),
            "drain" => Ok(Action::Drain),
            "maint" | "disable" => Ok(Action::Maint),
            "shutdown" => Ok(Action::Shutdown),
            "weight" => {
                let text = weight.ok_or(AdminError::BadWeight(String::new()))?;
                let w: u32 = text
                    .trim()
                    .parse()
                    .map_err(|_| AdminError::BadWeight(text.to_string()))?;
                if w > server_defaults::MAX_WEIGHT {
                    return Err(AdminError::BadWeight(text.to_string()));
                }
                Ok(Action::Weight(w))
            }
            other => Err(AdminError::UnknownAction(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("no backend named '{0}'")]
    NoBackend(String),
    #[error("backend '{0}' has no server named '{1}'")]
    NoServer(String, String),
    #[error("unknown action '{0}': use ready, drain, maint, weight or shutdown")]
    UnknownAction(String),
    #[error("weight must be a whole number from 0 to 256, not '{0}'")]
    BadWeight(String),
}

/// Finds `backend/server` among `backends`.
pub fn find<'a>(
    backends: &'a [Arc<BackendState>],
    backend: &str,
    server: &str,
) -> Result<(&'a Arc<BackendState>, &'a Arc<ServerState>), AdminError> {
    let b = backends
        .iter()
        .find(|b| b.name() == backend)
        .ok_or_else(|| AdminError::NoBackend(backend.to_string()))?;
    let s = b
        .server(server)
        .ok_or_else(|| AdminError::NoServer(backend.to_string(), server.to_string()))?;
    Ok((b, s))
}

/// Applies `action`; returns what was done, in a sentence (also logged).
pub fn apply(
    backend: &BackendState,
    server: &Arc<ServerState>,
    action: Action,
    by: &str,
) -> String {
    let name = &server.full_name;
    let message = match action {
        Action::Ready => {
            server.set_admin(AdminState::Ready);
            format!("Server {name} is READY (leaving drain/maintenance, by {by}).")
        }
        Action::Drain => {
            server.set_admin(AdminState::Drain);
            format!("Server {name} enters DRAIN mode (by {by}): no new sessions, {} open ones continue.", open(server))
        }
        Action::Maint => {
            server.set_admin(AdminState::Maint);
            let killed =
                server.shutdown_sessions(&format!("node {name} was put in maintenance by {by}"));
            let (active, backup) = backend.usable_counts();
            format!(
                "Server {name} is going DOWN for maintenance (by {by}). {active} active and {backup} backup servers left. {killed} sessions shut down."
            )
        }
        Action::Weight(w) => {
            let before = server.weight();
            server.set_weight(w);
            format!("Server {name} weight changed from {before} to {w} (by {by}).")
        }
        Action::Shutdown => {
            let killed = server.shutdown_sessions(&format!(
                "the sessions of node {name} were shut down by {by}"
            ));
            format!("Server {name}: {killed} sessions shut down (by {by}).")
        }
    };
    backend.logger.event(Level::Notice, &message);
    backend.servers_changed();
    let _ = backend.events.send(ServerEvent {
        server: server.name().to_string(),
        up: server.is_up(),
    });
    message
}

fn open(server: &ServerState) -> u32 {
    server
        .counters
        .current
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_like_the_runtime_api() {
        assert_eq!(Action::parse("drain", None), Ok(Action::Drain));
        assert_eq!(Action::parse("disable", None), Ok(Action::Maint));
        assert_eq!(Action::parse("weight", Some("30")), Ok(Action::Weight(30)));
        assert_eq!(
            Action::parse("weight", Some("300")),
            Err(AdminError::BadWeight("300".into()))
        );
        assert_eq!(
            Action::parse("weight", Some("x")),
            Err(AdminError::BadWeight("x".into()))
        );
        assert!(matches!(
            Action::parse("explode", None),
            Err(AdminError::UnknownAction(_))
        ));
    }
}
