//! Warren: a load balancer and proxy for RabbitMQ clusters.
//!
//! The binary is a thin shell around this library: it parses the command line, loads a
//! [`config::Config`] and calls [`runtime::run`]. Tests start warren the same way.

pub mod balance;
pub mod config;
pub mod health;
