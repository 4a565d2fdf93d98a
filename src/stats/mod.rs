//! The operator's side: the stats page (HTML, CSV, JSON, Prometheus) with its admin actions,
//! and the runtime API on a unix socket. Both read the live state and change it only
//! through `state::admin`, the one mutation path; neither touches sessions directly.

pub mod auth;
pub mod export;
pub mod html;
pub mod http;
pub mod schema;
pub mod sessions;
pub mod socket;

use crate::state::admin::{self, Action};
use crate::state::Generation;

/// Looks up the server and applies the action through the one mutation path; shared by
/// the page, its JSON API and the runtime socket.
pub fn run_action(
    generation: &Generation,
    backend: Option<&str>,
    server: Option<&str>,
    action: Option<&str>,
    weight: Option<&str>,
    by: &str,
) -> Result<String, String> {
    let (Some(backend), Some(server), Some(action)) = (backend, server, action) else {
        return Err("backend, server and action are required".into());
    };
    let action = Action::parse(action, weight).map_err(|e| e.to_string())?;
    let (b, s) = admin::find(&generation.backends, backend, server).map_err(|e| e.to_string())?;
    Ok(admin::apply(b, s, action, by))
}
