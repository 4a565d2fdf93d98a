//! Health: is each server fit to take connections?
//!
//! [`state`] is the rise/fall state machine and the check result codes, pure and time-free
//! (it lives in `crate::state::health`, beside the server state it belongs to, and is
//! re-exported here);
//! [`check`] holds the probes (one attempt each); [`checker`] schedules them per server and
//! is the one place where a result (active, or passive from a failed session connect)
//! changes a server's operational state.

pub mod check;
pub mod checker;
pub mod observe;
pub mod spread;
mod tcp_check;
pub use crate::state::health as state;
pub use crate::state::health::{CheckStatus, HealthState, Transition};
pub use check::Probe;
