//! The operator's side: the stats page (HTML, CSV, JSON, Prometheus) with its admin actions,
//! and the runtime API on a unix socket. Both read the live state and change it only
//! through `state::admin`, the one mutation path; neither touches sessions directly.

pub mod auth;
pub mod export;
pub mod html;
pub mod http;
pub mod schema;
pub mod socket;
