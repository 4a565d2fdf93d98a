//! The data path: listeners, sessions, connecting to servers and forwarding bytes.
//!
//! ```text
//! listener::accept_loop ─▶ session::run ─▶ connect::connect (pick, retries, redispatch)
//!                                      └─▶ forward::forward (both ways, timeouts) ─▶ log line
//! ```
//!
//! [`amqp`] is the forwarding loop's view of an `amqp` mode session (the protocol itself,
//! frames and handshake, is `crate::amqp`'s); the sockets are `crate::net`'s.

pub mod amqp;
pub mod connect;
pub mod forward;
pub mod keepalive;
pub mod listener;
pub mod rules;
pub mod session;
pub mod splice;
pub mod tcp;
pub mod terminate;
