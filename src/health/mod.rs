//! Health: is each server fit to take connections?
//!
//! [`state`] is the rise/fall state machine and the check result codes, pure and time-free;
//! the checkers (TCP, AMQP, HTTP) feed it and the scheduler asks it when to check next.

pub mod state;

pub use state::{CheckStatus, HealthState, Transition};
