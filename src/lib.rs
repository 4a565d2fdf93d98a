//! Warren: a load balancer and proxy for RabbitMQ clusters.
//!
//! The binary is a thin shell around this library: it parses the command line, loads a
//! [`config::Config`], binds a [`runtime::Warren`] and runs it. Tests start warren the
//! same way, on `127.0.0.1:0`.
//!
//! Dependencies flow one way: `acl` (pure conditions) ← `config` ← `balance`,
//! `health::state` ← `state` ← `health::checker`, `proxy` ← `runtime`.

pub mod acl;
pub mod amqp;
pub mod balance;
pub mod config;
pub mod health;
pub mod log;
pub mod proxy;
pub mod proxy_protocol;
pub mod runtime;
pub mod state;
pub mod stats;
pub mod tls;
