//! Health: is each server fit to take connections?
//!
//! [`state`] is the rise/fall state machine and the check result codes, pure and time-free;
//! [`check`] holds the probes (one attempt each); [`checker`] schedules them per server and
//! is the one place where a result (active, or passive from a failed session connect)
//! changes a server's operational state.

pub mod check;
pub mod checker;
pub mod spread;
pub mod state;
mod tcp_check;

pub use check::Probe;
pub use state::{CheckStatus, HealthState, Transition};
