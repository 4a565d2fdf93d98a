//! The data path: listeners, sessions, connecting to servers and forwarding bytes.
//!
//! ```text
//! listener::accept_loop ─▶ session::run ─▶ connect::connect (pick, retries, redispatch)
//!                                      └─▶ forward::forward (both ways, timeouts) ─▶ log line
//! ```

pub mod connect;
pub mod forward;
pub mod keepalive;
pub mod listener;
pub mod rules;
pub mod session;
pub mod splice;
pub mod stream;
